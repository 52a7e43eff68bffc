"""The Prometheus metrics of one sidecar, in a registry of their own (so tests can build several side by side).

Names follow Prometheus' rules: the `teleport_mattermost_` prefix, `_total` on counters, base units (`_seconds`),
and labels only from bounded sets (operations, route templates, status classes); never a request id, a user,
a channel or a message. The standard `process_*` metrics (memory, CPU, open files) are included too.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from sidecar.domain.telemetry import NOTIFICATION_RESULTS, TARGET_KINDS

__all__ = ["CONTENT_TYPE", "PREFIX", "STATUS_CLASSES", "Metrics", "status_class"]

PREFIX: Final = "teleport_mattermost_"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# 3xx is where ETag revalidations (304) land; `error` is an exchange that got no HTTP answer at all.
STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "429", "5xx", "error")
# Mattermost calls time out after 10 s; the buckets span a fast loopback answer to that limit.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def status_class(status: int | None) -> str:
    """The `status_class` label of an HTTP status: `2xx`, `3xx`, `4xx`, `429`, `5xx`, or `error` (no answer)."""
    if status == 429:
        return "429"
    if status is not None and 200 <= status < 600:
        return f"{status // 100}xx"
    return "error"


class Metrics:
    """Every metric the sidecar exports; `exposition()` renders them in the Prometheus text format."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "") -> None:
        # `_created` series (a timestamp per counter series) double the exposition for nothing a graph needs.
        # The switch is process-wide, which suits the sidecar: these are its only metrics.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = PREFIX
        self.build_info = Gauge(f"{p}build_info", "Always 1; the version label says which sidecar runs.",
                                ["version"], registry=r)
        self.build_info.labels(version=version or "unknown").set(1)
        self.events = Counter(f"{p}events_total", "Watch events handled, by resource kind and operation.",
                              ["kind", "op"], registry=r)
        self.notifications = Counter(
            f"{p}notifications_total",
            "Attempts to notify one recipient of a request, by target kind (channel|dm) and result (ok|retry|failed).",
            ["target_kind", "result"], registry=r,
        )
        self.mattermost_requests = Counter(
            f"{p}mattermost_requests_total",
            "HTTP exchanges with Mattermost, by route template and status class (2xx|3xx|4xx|429|5xx|error).",
            ["route", "status_class"], registry=r,
        )
        self.mattermost_latency = Histogram(
            f"{p}mattermost_request_duration_seconds", "Duration of HTTP exchanges with Mattermost, by route template.",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.mattermost_reachable = Gauge(
            f"{p}mattermost_reachable", "1 when the last Mattermost health check or call got a usable answer.",
            registry=r,
        )
        self.owed_steps = Gauge(f"{p}owed_steps", "Posts, replies and edits owed to Mattermost right now.",
                                registry=r)
        self.retries = Counter(f"{p}retries_total", "Work tried again after a transient failure, by what it was.",
                               ["what"], registry=r)
        self.cas_conflicts = Counter(f"{p}cas_conflicts_total",
                                     "Plugin-data compare-and-swap writes that lost a race and were re-read.",
                                     registry=r)
        self.reconcile_runs = Counter(f"{p}reconcile_runs_total", "Reconcile runs finished.", registry=r)
        self.reconcile_findings = Counter(f"{p}reconcile_findings_total",
                                          "Requests reconcile runs handed to the engine to finish what the watch "
                                          "stream missed (a no-op for a request that is up to date).", registry=r)
        self.permanent_failures = Counter(f"{p}permanent_failures_total",
                                          "Deliveries that failed for good (details on /readyz).", registry=r)
        self.watcher_connected = Gauge(f"{p}watcher_connected",
                                       "1 while the Teleport watch stream is open and its INIT has arrived.",
                                       registry=r)
        self.identity_expiry = Gauge(f"{p}identity_expiry_timestamp_seconds",
                                     "When the Teleport identity in use expires (unix seconds).", registry=r)
        self.rate_limit_pauses = Counter(f"{p}rate_limit_pauses_total",
                                         "429 answers that paused every Mattermost call.", registry=r)
        self.rate_limit_pause_seconds = Counter(f"{p}rate_limit_pause_seconds_total",
                                                "Seconds the 429 pauses added to the wait of Mattermost calls.",
                                                registry=r)
        # Series of closed label sets start at 0, so rate() and absence alerts work before the first event.
        for target_kind in TARGET_KINDS:
            for result in NOTIFICATION_RESULTS:
                self.notifications.labels(target_kind=target_kind, result=result)
        ProcessCollector(registry=r)

    def exposition(self) -> bytes:
        """All metrics in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
