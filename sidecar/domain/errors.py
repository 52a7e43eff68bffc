"""Every error the sidecar raises on purpose, in one tree organised by what the caller should do.

    SidecarError
    ├── FatalError             the sidecar cannot run: stop, exit 1, the message is the one-line reason
    │   ├── ConfigError        bad configuration
    │   │   └── DurationError  a malformed Go duration (also a ValueError)
    │   ├── IdentityError      unreadable, malformed or expired identity (on a reload: keep the old one)
    │   ├── VersionError       Teleport's version is malformed or older than the minimum
    │   ├── WatcherError       the watch stream cannot serve what the plugin needs
    │   └── StartupError       another start-up step failed; the message names it
    ├── TransientError         retry with backoff (5xx, timeouts, connection problems, UNAVAILABLE)
    │   └── RateLimited        wait exactly `retry_after` seconds, and pause every Mattermost call meanwhile
    ├── PermanentError         retrying the same call cannot help: report it and move on
    │   ├── Unauthorized       the token or certificate is refused (401 / UNAUTHENTICATED)
    │   ├── AccessDenied       authenticated but not allowed (403 / PERMISSION_DENIED)
    │   ├── NotFound           the thing does not exist (404 / NOT_FOUND)
    │   │   └── RouteNotFound  Mattermost has no such API route (older server): try another way or report
    │   ├── Rejected           the server refused the input (other 4xx / INVALID_ARGUMENT)
    │   ├── Unimplemented      the server lacks the RPC (UNIMPLEMENTED): fall back to an older one or report
    │   ├── RecipientError     a configured recipient cannot be resolved; `hint` says how to fix it
    │   ├── MalformedResponse  Mattermost answered with a body we cannot use
    │   ├── ConversionError    a Teleport wire message cannot become a domain value
    │   ├── PluginDataError    stored plugin data cannot be decoded (or a record cannot be encoded)
    │   ├── ResolutionConflict an event tries to resolve a request already shown as resolved
    │   ├── CasGaveUp          compare-and-swap kept conflicting for its whole budget
    │   ├── ClickRefused       an in-chat review click or dialog refused at one step; the message tells the clicker
    │   └── ConditionError     an access monitoring rule condition cannot decide (the rule does not match)
    │       ├── ConditionParseError  the condition does not parse or type-check (Teleport rejects the rule)
    │       └── ConditionEvalError   the condition failed while evaluated against one request
    ├── CompareFailed          compare-and-swap lost a race: re-read and decide again
    ├── AlreadyExists          the thing was already created: treat as done
    └── StepsFailed            some steps of an event failed; `failures` says which calls to repeat
        └── RetryableStepsFailed   ...and then a transient error stopped the event (also a TransientError)

Ports (sidecar/domain/ports.py) raise only these, never grpc or aiohttp exceptions: the adapters map
them in one place each (sidecar/teleport/client.py `map_rpc_error`, sidecar/mattermost/client.py).
Messages never contain tokens, keys or certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "CasGaveUp",
    "ClickRefused",
    "CompareFailed",
    "ConditionError",
    "ConditionEvalError",
    "ConditionParseError",
    "ConfigError",
    "ConversionError",
    "DescribedStep",
    "DurationError",
    "FatalError",
    "IdentityError",
    "MalformedResponse",
    "NotFound",
    "PermanentError",
    "PluginDataError",
    "RateLimited",
    "RecipientError",
    "Rejected",
    "ResolutionConflict",
    "RetryableStepsFailed",
    "RouteNotFound",
    "SidecarError",
    "StartupError",
    "StepFailure",
    "StepsFailed",
    "TransientError",
    "Unauthorized",
    "Unimplemented",
    "VersionError",
    "WatcherError",
]


class SidecarError(Exception):
    """Base of every error the sidecar raises on purpose."""


# --- fatal: stop with a one-line reason ----------------------------------------------------------


class FatalError(SidecarError):
    """The sidecar cannot run; the message is the one-line reason shown to the operator."""


class ConfigError(FatalError):
    """The configuration is invalid."""


class DurationError(ConfigError, ValueError):
    """A Go duration string cannot be parsed (the message quotes it as Go's time.ParseDuration does)."""


class IdentityError(FatalError):
    """An identity (file or key pair) cannot be used; the message names the file and the problem."""


class VersionError(FatalError):
    """The server's version is malformed or too old."""


class WatcherError(FatalError):
    """The watcher cannot continue (e.g. the server will not watch access requests for this identity)."""


class StartupError(FatalError):
    """A start-up step failed; the message names the step."""


# --- transient: retry ----------------------------------------------------------------------------


class TransientError(SidecarError):
    """Worth retrying after a backoff."""


class RateLimited(TransientError):
    """The server asked us to slow down for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- permanent: report and move on ---------------------------------------------------------------


class PermanentError(SidecarError):
    """Retrying the same call cannot succeed."""


class Unauthorized(PermanentError):
    """Credentials refused."""


class AccessDenied(PermanentError):
    """Authenticated, but not permitted."""


class NotFound(PermanentError):
    """The target does not exist."""


class RouteNotFound(NotFound):
    """404 `api.context.404.app_error`: the server has no such API route (an invalid name, or an older
    server or a fake without the endpoint), as opposed to a missing user, team or channel."""


class Rejected(PermanentError):
    """The server refused the request as invalid."""

    def __init__(self, message: str, status: int = 0, server_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_id = server_id


class Unimplemented(PermanentError):
    """The server does not implement the RPC (gRPC UNIMPLEMENTED)."""


class RecipientError(PermanentError):
    """A recipient string cannot be resolved to a channel; `hint` says how to fix it when we know."""

    def __init__(self, recipient: str, reason: str, hint: str = "") -> None:
        super().__init__(f"recipient {recipient!r}: {reason}" + (f" ({hint})" if hint else ""))
        self.recipient = recipient
        self.reason = reason
        self.hint = hint


class MalformedResponse(PermanentError):
    """The server answered with a body we cannot use (not JSON, wrong shape, missing field)."""


class ConversionError(PermanentError):
    """A wire message cannot be turned into a domain value (wrong kind, missing id, unknown state)."""


class PluginDataError(PermanentError):
    """A stored value cannot be decoded, or a record cannot be encoded without corrupting it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"plugin data key {key!r}: {problem}")
        self.key = key
        self.problem = problem


class ResolutionConflict(PermanentError):
    """An event tried to resolve a request whose posts already show a resolution (Go logs this as an error)."""


class CasGaveUp(PermanentError):
    """The plugin-data compare-and-swap kept conflicting (or kept waiting for posts) until its budget ran out.

    Permanent for the event: the loop already retried for its whole budget, and the usual cause, a review
    on a request whose announcement posted nothing, does not heal by retrying the event.
    """


class ClickRefused(PermanentError):
    """An in-chat review click (or its reason dialog) was refused; nothing was submitted to Teleport.

    The message is the text shown to the clicker (it says what to do and never holds a secret); `outcome`
    names the refusing step for the log line; `detail` is extra context for the log only.
    """

    def __init__(self, outcome: str, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.detail = detail


class ConditionError(PermanentError):
    """An access monitoring rule condition cannot decide; the plugin warns and treats the rule as not matching."""


class ConditionParseError(ConditionError):
    """The condition does not parse or type-check; the message is the innermost Go error text where we know it."""


class ConditionEvalError(ConditionError):
    """The condition parsed but failed while evaluated against one request (e.g. `time.RFC3339` of bad text)."""


# --- races and duplicates ------------------------------------------------------------------------


class CompareFailed(SidecarError):
    """A compare-and-swap found different data than expected."""


class AlreadyExists(SidecarError):
    """Creation found the thing already there."""


# --- partial failure of an event -----------------------------------------------------------------


class DescribedStep(Protocol):
    """A step of a plan that can say, in a few words, which call it makes."""

    def describe(self) -> str:
        """E.g. `edit post p1`: names the target, never the text."""
        ...


@dataclass(frozen=True)
class StepFailure:
    """A step that did not happen, and why."""

    step: DescribedStep
    error: SidecarError


class StepsFailed(SidecarError):
    """Some steps of a request's handling failed; `failures` says which, so they can be repeated."""

    def __init__(self, request_id: str, failures: Sequence[StepFailure]) -> None:
        details = "; ".join(f"{f.step.describe()}: {f.error}" for f in failures)
        super().__init__(f"request {request_id}: {len(failures)} step(s) failed: {details}")
        self.request_id = request_id
        self.failures = tuple(failures)

    @property
    def transient(self) -> bool:
        """True when every failure is worth retrying."""
        return all(isinstance(f.error, TransientError) for f in self.failures)


class RetryableStepsFailed(StepsFailed, TransientError):
    """Steps failed and then a transient error stopped processing: retry the event, keep the steps."""
