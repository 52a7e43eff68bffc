"""`Recorder`: the Telemetry port implemented over the Prometheus metrics and the readiness state.

Label values are checked before they reach a metric: a label that could carry a request id, a user or a path
with ids in it would make one time series per request, which is how a metrics endpoint takes a server down.
Closed sets are checked against their members; free words must be short lower-case words without digits;
routes must be `METHOD /template` whose segments are `{placeholders}`, short lower-case words or an API version
(`/api/v4/posts/{post_id}`): a 26-character Mattermost id in a path is refused.
"""

from __future__ import annotations

import re
from typing import Final

from sidecar.domain.telemetry import NOTIFICATION_RESULTS, TARGET_KINDS, NotificationResult, TargetKind
from sidecar.observability.metrics import Metrics, status_class
from sidecar.observability.readiness import Readiness

__all__ = ["Recorder"]

_WORD: Final = re.compile(r"[a-z][a-z_]{0,31}")
_SEGMENT: Final = r"(\{[a-z_]{1,32}\}|[a-z_]{1,20}|v[0-9]{1,2})"
_ROUTE: Final = re.compile(rf"(GET|POST|PUT|PATCH|DELETE|HEAD) (/{_SEGMENT}){{1,12}}")


def _word(name: str, value: str) -> str:
    if not _WORD.fullmatch(value):
        raise ValueError(f"telemetry label {name} must be a lower-case word (letters and _), got {value!r}")
    return value


def _count(name: str, value: float) -> float:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"telemetry {name} must not be negative, got {value!r}")
    return value


def _reachable(status: int | None) -> bool:
    """Whether an answer shows Mattermost usable: any answer but a 5xx, or a 401 (the token is refused)."""
    return status is not None and status < 500 and status != 401


class Recorder:
    """Implements `sidecar.domain.telemetry.Telemetry`: updates `metrics` and `readiness`."""

    def __init__(self, metrics: Metrics, readiness: Readiness) -> None:
        self.metrics = metrics
        self.readiness = readiness

    def event(self, kind: str, op: str) -> None:
        """Count one handled watch event."""
        self.metrics.events.labels(kind=_word("kind", kind), op=_word("op", op)).inc()

    def notification(self, target_kind: TargetKind, result: NotificationResult) -> None:
        """Count one notification attempt."""
        if target_kind not in TARGET_KINDS or result not in NOTIFICATION_RESULTS:
            raise ValueError(
                f"notification target_kind must be one of {TARGET_KINDS} and result one of {NOTIFICATION_RESULTS}, "
                f"got {target_kind!r}, {result!r}"
            )
        self.metrics.notifications.labels(target_kind=target_kind, result=result).inc()

    def owed_work(self, count: int) -> None:
        """Set the owed-steps gauge."""
        self.metrics.owed_steps.set(_count("owed_work", count))

    def retry(self, what: str) -> None:
        """Count one retry."""
        self.metrics.retries.labels(what=_word("what", what)).inc()

    def cas_conflict(self) -> None:
        """Count one lost compare-and-swap."""
        self.metrics.cas_conflicts.inc()

    def reconcile(self, findings: int) -> None:
        """Count one reconcile run and what it found."""
        self.metrics.reconcile_findings.inc(_count("reconcile findings", findings))
        self.metrics.reconcile_runs.inc()

    def permanent_failure(self, what: str, error: str, fix: str) -> None:
        """Count a permanent failure and list it on /readyz."""
        self.metrics.permanent_failures.inc()
        self.readiness.permanent_failure(what, error, fix)

    def mattermost_call(self, route: str, status: int | None, seconds: float) -> None:
        """Count and time one HTTP exchange; its answer also tells readiness whether Mattermost is usable."""
        if not _ROUTE.fullmatch(route):
            raise ValueError(f"telemetry route must be 'METHOD /path/{{template}}' without a query, got {route!r}")
        self.metrics.mattermost_requests.labels(route=route, status_class=status_class(status)).inc()
        self.metrics.mattermost_latency.labels(route=route).observe(_count("seconds", seconds))
        ok = _reachable(status)
        self.metrics.mattermost_reachable.set(ok)
        answer = f"answered HTTP {status}" if status is not None else "got no answer (timeout or connection failure)"
        self.readiness.mattermost_result(ok, f"{route} {answer}")

    def rate_limit_pause(self, seconds: float) -> None:
        """Count one 429 pause and the wait it added."""
        self.metrics.rate_limit_pauses.inc()
        self.metrics.rate_limit_pause_seconds.inc(_count("pause seconds", seconds))

    def mattermost_reachable(self, ok: bool, detail: str = "") -> None:
        """Record a health check's result."""
        self.metrics.mattermost_reachable.set(ok)
        self.readiness.mattermost_result(ok, detail or ("health check passed" if ok else "health check failed"))

    def watcher_connected(self, connected: bool) -> None:
        """Set the watcher gauge and the watch check."""
        self.metrics.watcher_connected.set(connected)
        self.readiness.watcher_connected(connected)

    def identity_expiry(self, expires_at: float) -> None:
        """Set the identity expiry gauge and the identity check."""
        self.metrics.identity_expiry.set(expires_at)
        self.readiness.identity_expiry(expires_at)
