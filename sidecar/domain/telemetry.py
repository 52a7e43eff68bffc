"""The telemetry port: what the sidecar reports for its metrics and its readiness, one method per fact.

Components call these methods and never see Prometheus or HTTP; `sidecar/observability/` implements the port
when `[health] listen_addr` is set, and `NullTelemetry` (the default everywhere) ignores every call, so nothing
changes when health is off. Every method is synchronous, cheap and never raises on valid input: reporting must
not slow down or break the work it reports on.

Label values are bounded by design: methods take closed sets (the `Literal` types below), route templates, or
short fixed words, never a request id, user, channel or message. Who calls what:

    engine side     event, notification, owed_work, retry, cas_conflict, reconcile, permanent_failure
    Mattermost      mattermost_call (every HTTP exchange), rate_limit_pause (every 429 pause),
                    mattermost_reachable (the periodic health check)
    Teleport        watcher_connected (INIT received / stream lost), identity_expiry (every identity loaded)
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

__all__ = [
    "NOTIFICATION_RESULTS",
    "TARGET_KINDS",
    "NotificationResult",
    "NullTelemetry",
    "TargetKind",
    "Telemetry",
]

TargetKind = Literal["channel", "dm"]
# ok: delivered; retry: failed for a transient reason and will be tried again; failed: given up on.
NotificationResult = Literal["ok", "retry", "failed"]

TARGET_KINDS: Final[tuple[TargetKind, ...]] = ("channel", "dm")
NOTIFICATION_RESULTS: Final[tuple[NotificationResult, ...]] = ("ok", "retry", "failed")


class Telemetry(Protocol):
    """Facts worth a metric or a readiness check. Implementations must be cheap and must not raise on valid input."""

    def event(self, kind: str, op: str) -> None:
        """One watch event handled: `kind` is the resource kind (`access_request`), `op` is `put`, `delete`
        or `resume`. Both are lower-case words (letters and `_`); anything else is a ValueError."""
        ...

    def notification(self, target_kind: TargetKind, result: NotificationResult) -> None:
        """One attempt to tell one recipient about a request (a root post to a channel or a DM)."""
        ...

    def owed_work(self, count: int) -> None:
        """How many steps (posts, replies, edits) are owed to Mattermost right now, over all requests."""
        ...

    def retry(self, what: str) -> None:
        """Something is tried again after a transient failure; `what` is a fixed word such as `event`."""
        ...

    def cas_conflict(self) -> None:
        """A plugin-data compare-and-swap lost a race and is re-read."""
        ...

    def reconcile(self, findings: int) -> None:
        """One reconcile run finished, having handed `findings` requests to the engine (those it listed and
        could read) so whatever the watch stream missed is finished."""
        ...

    def permanent_failure(self, what: str, error: str, fix: str) -> None:
        """A delivery failed for good, e.g. what=`post to team/x`, error=`403 bot not in channel`,
        fix=`add the bot to the channel`. Shown on /readyz (bounded), never in a metric label."""
        ...

    def mattermost_call(self, route: str, status: int | None, seconds: float) -> None:
        """One HTTP exchange with Mattermost: `route` is `METHOD /path/{template}`, `status` the HTTP status
        (None when no answer came: timeout, connection refused or reset), `seconds` its duration."""
        ...

    def rate_limit_pause(self, seconds: float) -> None:
        """A 429 paused every Mattermost call; `seconds` is how much longer the pause made the wait."""
        ...

    def mattermost_reachable(self, ok: bool, detail: str = "") -> None:
        """The result of a Mattermost health check (`detail` says what failed)."""
        ...

    def watcher_connected(self, connected: bool) -> None:
        """True once a watch stream's INIT has arrived; False when the stream is lost."""
        ...

    def identity_expiry(self, expires_at: float) -> None:
        """The identity in use is valid until `expires_at` (unix seconds)."""
        ...


class NullTelemetry:
    """Reports nothing: the default wherever telemetry is optional."""

    def event(self, kind: str, op: str) -> None:
        """Ignored."""

    def notification(self, target_kind: TargetKind, result: NotificationResult) -> None:
        """Ignored."""

    def owed_work(self, count: int) -> None:
        """Ignored."""

    def retry(self, what: str) -> None:
        """Ignored."""

    def cas_conflict(self) -> None:
        """Ignored."""

    def reconcile(self, findings: int) -> None:
        """Ignored."""

    def permanent_failure(self, what: str, error: str, fix: str) -> None:
        """Ignored."""

    def mattermost_call(self, route: str, status: int | None, seconds: float) -> None:
        """Ignored."""

    def rate_limit_pause(self, seconds: float) -> None:
        """Ignored."""

    def mattermost_reachable(self, ok: bool, detail: str = "") -> None:
        """Ignored."""

    def watcher_connected(self, connected: bool) -> None:
        """Ignored."""

    def identity_expiry(self, expires_at: float) -> None:
        """Ignored."""
