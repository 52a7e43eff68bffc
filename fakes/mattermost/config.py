"""Server settings of the fake (the subset of Mattermost's config that changes its behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

#: Default maximum post length in runes (`PostMessageMaxRunesV2`).
DEFAULT_MAX_POST_LENGTH = 16383
#: `ServiceSettings.MaximumPayloadSizeBytes` default.
DEFAULT_MAX_PAYLOAD_BYTES = 300_000
#: Version reported in `X-Version-Id` (`<version>.<build>.<config hash>.<licensed>`) and the client config.
SERVER_VERSION = "10.6.0"
BUILD_NUMBER = "dev"
VERSION_ID = "10.6.0.dev.0f6c1b1e0fake0000000000000000000.false"
#: `ServiceSettings.OutgoingIntegrationRequestsTimeout` default, in seconds.
DEFAULT_OUTGOING_TIMEOUT = 30


@dataclass(frozen=True)
class IntegrationSettings:
    """The `ServiceSettings` that govern calls to button and dialog integrations; real defaults.

    `allowed_untrusted_internal_connections` (`AllowedUntrustedInternalConnections`): host names, IPs or
    CIDRs separated by spaces or commas. A call whose URL host is listed literally goes out; otherwise every
    address the host resolves to that is private, loopback or otherwise reserved must lie in a listed CIDR, or
    the call is refused. Empty (the default) refuses every reserved address, 127.0.0.1 included.
    `outgoing_integration_requests_timeout` (`OutgoingIntegrationRequestsTimeout`, seconds): the budget of one
    integration call, and how long a trigger id may be used to open a dialog.
    """

    allowed_untrusted_internal_connections: str = ""
    outgoing_integration_requests_timeout: int = DEFAULT_OUTGOING_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_untrusted_internal_connections, str):
            raise ValueError("allowed_untrusted_internal_connections must be a string")
        timeout = self.outgoing_integration_requests_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError("outgoing_integration_requests_timeout must be a positive number of seconds")

    def updated(self, changes: dict[str, Any]) -> IntegrationSettings:
        """A copy with `changes` applied; ValueError names an unknown key or a bad value."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The settings by their field names."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


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
    #: `PrivacySettings.ShowEmailAddress` / `ShowFullName`: what non-admins see of other users.
    show_email_address: bool = True
    show_full_name: bool = True
    #: `EmailSettings.RequireEmailVerification` (reported in the client config).
    require_email_verification: bool = False
    #: Calls to integrations. None: the seed's `[settings]` over the real defaults; given: these, whatever the
    #: seed says. The test face may change them until the next reset.
    integrations: IntegrationSettings | None = None

    def __post_init__(self) -> None:
        if self.max_post_length < 1:
            raise ValueError("max_post_length must be at least 1")
        if self.max_payload_bytes < 1:
            raise ValueError("max_payload_bytes must be at least 1")
