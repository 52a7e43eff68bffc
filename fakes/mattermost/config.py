"""Server settings of the fake (the subset of Mattermost's config that changes its behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

#: Default maximum post length in runes (`PostMessageMaxRunesV2`).
DEFAULT_MAX_POST_LENGTH = 16383
#: `ServiceSettings.MaximumPayloadSizeBytes` default.
DEFAULT_MAX_PAYLOAD_BYTES = 300_000
#: Version reported in `X-Version-Id` (`<version>.<build>.<config hash>.<licensed>`).
SERVER_VERSION = "10.6.0"
VERSION_ID = "10.6.0.dev.0f6c1b1e0fake0000000000000000000.false"


@dataclass(frozen=True)
class ServerConfig:
    """Behaviour switches; defaults are the real server's except where a test server needs more.

    `enable_user_access_tokens` and `enable_bot_account_creation` default to True (the real server
    defaults them to False) so an administrator can create bots and tokens through the API.
    """

    max_post_length: int = DEFAULT_MAX_POST_LENGTH
    etags: bool = True
    enable_user_access_tokens: bool = True
    enable_bot_account_creation: bool = True
    enable_open_server: bool = False
    #: Seconds after creation during which a message may be edited; -1 means unlimited.
    post_edit_time_limit: int = -1
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    def __post_init__(self) -> None:
        if self.max_post_length < 1:
            raise ValueError("max_post_length must be at least 1")
        if self.max_payload_bytes < 1:
            raise ValueError("max_payload_bytes must be at least 1")
