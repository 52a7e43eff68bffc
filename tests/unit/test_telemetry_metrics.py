"""Telemetry → Prometheus: every port method lands in the metric it names, with bounded labels only."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.domain.telemetry import NullTelemetry, Telemetry
from sidecar.observability.metrics import PREFIX, Metrics, status_class
from sidecar.observability.readiness import Readiness
from sidecar.observability.recorder import Recorder

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = "8d2c6a57-6c5f-4d43-9d2b-0e8d1c2f3a4b"
POST_ID = "q3xwz7h9ejbndyp8kgm1ftu5ra"  # a 26-character Mattermost id
ALLOWED_LABELS = {"kind", "op", "target_kind", "result", "route", "status_class", "what", "version", "le"}


def recorder() -> Recorder:
    return Recorder(Metrics(version="9.9.9"), Readiness(identity_margin=60, mattermost_stale_after=90))


def value(rec: Recorder, name: str, **labels: str) -> float | None:
    return rec.metrics.registry.get_sample_value(name, labels)


def families(rec: Recorder) -> dict[str, str]:
    """Family name → type, parsed back from the exposition."""
    return {f.name: f.type for f in text_string_to_metric_families(rec.metrics.exposition().decode())}


def exercise(rec: Telemetry) -> None:
    """Call every method once, with realistic arguments (some of them mention a request)."""
    rec.event("access_request", "put")
    rec.notification("dm", "ok")
    rec.owed_work(3)
    rec.retry("event")
    rec.cas_conflict()
    rec.reconcile(4)
    rec.permanent_failure(f"post to myteam/x for request {REQUEST_ID}", "HTTP 403 bot not in channel", "add the bot")
    rec.mattermost_call("PUT /api/v4/posts/{post_id}", 200, 0.25)
    rec.rate_limit_pause(2.5)
    rec.mattermost_reachable(True, "health check passed")
    rec.watcher_connected(True)
    rec.identity_expiry(1_900_000_000.0)


def test_every_method_updates_its_metric() -> None:
    rec = recorder()
    exercise(rec)
    p = PREFIX
    assert value(rec, f"{p}events_total", kind="access_request", op="put") == 1
    assert value(rec, f"{p}notifications_total", target_kind="dm", result="ok") == 1
    assert value(rec, f"{p}notifications_total", target_kind="channel", result="failed") == 0  # pre-created
    assert value(rec, f"{p}owed_steps") == 3
    assert value(rec, f"{p}retries_total", what="event") == 1
    assert value(rec, f"{p}cas_conflicts_total") == 1
    assert value(rec, f"{p}reconcile_runs_total") == 1
    assert value(rec, f"{p}reconcile_findings_total") == 4
    assert value(rec, f"{p}permanent_failures_total") == 1
    route = "PUT /api/v4/posts/{post_id}"
    assert value(rec, f"{p}mattermost_requests_total", route=route, status_class="2xx") == 1
    assert value(rec, f"{p}mattermost_request_duration_seconds_sum", route=route) == 0.25
    assert value(rec, f"{p}mattermost_request_duration_seconds_bucket", route=route, le="0.25") == 1
    assert value(rec, f"{p}mattermost_request_duration_seconds_bucket", route=route, le="0.1") == 0
    assert value(rec, f"{p}rate_limit_pauses_total") == 1
    assert value(rec, f"{p}rate_limit_pause_seconds_total") == 2.5
    assert value(rec, f"{p}mattermost_reachable") == 1
    assert value(rec, f"{p}watcher_connected") == 1
    assert value(rec, f"{p}identity_expiry_timestamp_seconds") == 1_900_000_000.0
    assert value(rec, f"{p}build_info", version="9.9.9") == 1


def test_names_follow_the_prometheus_rules() -> None:
    rec = recorder()
    exercise(rec)
    found = families(rec)
    ours = {name: kind for name, kind in found.items() if name.startswith(PREFIX)}
    assert set(found) - set(ours) == {name for name in found if name.startswith("process_")}
    text = rec.metrics.exposition().decode()
    for name, kind in ours.items():
        if kind == "counter":
            assert f"# TYPE {name}_total counter" in text, name
        else:
            assert not name.endswith("_total"), name
    assert ours[f"{PREFIX}mattermost_request_duration_seconds"] == "histogram"
    assert ours[f"{PREFIX}identity_expiry_timestamp_seconds"] == "gauge"
    assert ours[f"{PREFIX}rate_limit_pause_seconds"] == "counter"
    assert "_created" not in text  # one series per counter, not two
    assert {
        f"{PREFIX}{name}"
        for name in ("events", "notifications", "mattermost_requests", "owed_steps", "retries", "cas_conflicts",
                     "reconcile_runs", "reconcile_findings", "watcher_connected", "rate_limit_pauses")
    } <= set(ours)


def test_no_request_ids_or_unbounded_labels_in_the_exposition() -> None:
    rec = recorder()
    exercise(rec)
    text = rec.metrics.exposition().decode()
    assert REQUEST_ID not in text and POST_ID not in text and "myteam" not in text and "403" not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (201, "2xx"), (304, "3xx"), (403, "4xx"), (404, "4xx"), (429, "429"), (500, "5xx"),
     (503, "5xx"), (None, "error"), (0, "error"), (99, "error"), (600, "error")],
)
def test_status_classes(status: int | None, expected: str) -> None:
    assert status_class(status) == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.event("access_request", REQUEST_ID),
        lambda r: r.event("Access-Request", "put"),
        lambda r: r.retry("event 2"),
        lambda r: r.notification("email", "ok"),
        lambda r: r.notification("dm", "maybe"),
        lambda r: r.mattermost_call(f"GET /api/v4/posts/{POST_ID}", 200, 0.1),
        lambda r: r.mattermost_call("GET /api/v4/channels/{channel_id}/posts?since=1", 200, 0.1),
        lambda r: r.mattermost_call("/api/v4/posts", 200, 0.1),
        lambda r: r.mattermost_call("GET /api/v4/users/me", 200, -1.0),
        lambda r: r.owed_work(-1),
        lambda r: r.reconcile(-2),
        lambda r: r.rate_limit_pause(float("nan")),
    ],
)
def test_bad_labels_and_values_are_refused_with_a_clear_error(call: Callable[[Recorder], None]) -> None:
    rec = recorder()
    with pytest.raises(ValueError, match=r"telemetry|notification"):
        call(rec)
    assert REQUEST_ID not in rec.metrics.exposition().decode()


def test_every_route_the_client_uses_is_accepted() -> None:
    # The client reports `METHOD template` for each call; a template the recorder refused would fail the call.
    source = (ROOT / "sidecar" / "mattermost" / "client.py").read_text()
    routes = re.findall(r'_call\(\s*"([A-Z]+)",\s*"([^"]+)"', source)
    assert len(routes) >= 10
    rec = recorder()
    for method, template in routes:
        rec.mattermost_call(f"{method} {template}", 200, 0.01)
        assert value(rec, f"{PREFIX}mattermost_requests_total", route=f"{method} {template}", status_class="2xx") == 1


def test_registries_are_independent() -> None:
    first, second = recorder(), recorder()
    first.cas_conflict()
    assert value(first, f"{PREFIX}cas_conflicts_total") == 1
    assert value(second, f"{PREFIX}cas_conflicts_total") == 0


def test_null_telemetry_and_recorder_implement_every_method_of_the_port() -> None:
    port = {name for name, _ in inspect.getmembers(Telemetry, inspect.isfunction) if not name.startswith("_")}
    assert len(port) == 12
    for implementation in (NullTelemetry, Recorder):
        for name in port:
            assert inspect.signature(getattr(implementation, name)) == inspect.signature(getattr(Telemetry, name))
    exercise(NullTelemetry())  # accepts everything and does nothing
