"""Errors, organised by what the caller should do about them.

    SidecarError
    ├── ConfigError            bad configuration: exit 1 with a one-line reason
    ├── IdentityError          unreadable, malformed or expired identity: exit 1 (or keep the old one on reload)
    ├── TransientError         retry with backoff (5xx, timeouts, connection problems, UNAVAILABLE)
    │   └── RateLimited        wait exactly `retry_after` seconds, and pause every Mattermost call meanwhile
    ├── PermanentError         retrying cannot help; record it and move on
    │   ├── Unauthorized       the token or certificate is refused (401 / UNAUTHENTICATED)
    │   ├── AccessDenied       authenticated but not allowed (403 / PERMISSION_DENIED)
    │   ├── NotFound           the thing does not exist (404 / NOT_FOUND)
    │   ├── Rejected           the server refused the input (other 4xx / INVALID_ARGUMENT)
    │   └── RecipientError     a configured recipient cannot be resolved
    ├── CompareFailed          plugin-data compare-and-swap lost a race: re-read and decide again
    └── AlreadyExists          the thing was already created

Messages never contain tokens, keys or certificates. Ports (sidecar/domain/ports.py) raise only these.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every error the sidecar raises on purpose."""


class ConfigError(SidecarError):
    """The configuration is invalid; the message is the one-line reason shown to the user."""


class IdentityError(SidecarError):
    """An identity (file or key pair) cannot be used; the message names the file and the problem."""


class TransientError(SidecarError):
    """Worth retrying after a backoff."""


class RateLimited(TransientError):
    """The server asked us to slow down for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SidecarError):
    """Retrying the same call cannot succeed."""


class Unauthorized(PermanentError):
    """Credentials refused."""


class AccessDenied(PermanentError):
    """Authenticated, but not permitted."""


class NotFound(PermanentError):
    """The target does not exist."""


class Rejected(PermanentError):
    """The server refused the request as invalid."""

    def __init__(self, message: str, status: int = 0, server_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_id = server_id


class RecipientError(PermanentError):
    """A recipient string cannot be resolved to a channel; `hint` says how to fix it when we know."""

    def __init__(self, recipient: str, reason: str, hint: str = "") -> None:
        super().__init__(f"recipient {recipient!r}: {reason}" + (f" ({hint})" if hint else ""))
        self.recipient = recipient
        self.reason = reason
        self.hint = hint


class CompareFailed(SidecarError):
    """A compare-and-swap found different data than expected."""


class AlreadyExists(SidecarError):
    """Creation found the thing already there."""


class PluginDataError(PermanentError):
    """A stored value cannot be decoded, or a record cannot be encoded without corrupting it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"plugin data key {key!r}: {problem}")
        self.key = key
        self.problem = problem
