"""The health listener on 127.0.0.1:0: /livez, /readyz, /metrics, errors, and the periodic Mattermost check."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.domain.errors import StartupError, TransientError
from sidecar.domain.telemetry import NullTelemetry
from sidecar.observability.metrics import CONTENT_TYPE, PREFIX, Metrics
from sidecar.observability.reachability import check_reachability
from sidecar.observability.readiness import Readiness
from sidecar.observability.recorder import Recorder
from sidecar.observability.server import LISTENING, HealthServer, health_listener

NOW = 1_800_000_000.0


@pytest.fixture
def recorder() -> Recorder:
    readiness = Readiness(identity_margin=60, mattermost_stale_after=90, clock=lambda: NOW)
    return Recorder(Metrics(version="1.2.3"), readiness)


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[HealthServer]:
    async with HealthServer("127.0.0.1", 0, readiness=recorder.readiness, metrics=recorder.metrics) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get(http: aiohttp.ClientSession, server: HealthServer, path: str) -> tuple[int, str, Any]:
    async with http.get(f"http://127.0.0.1:{server.port}{path}") as resp:
        body = await resp.text()
        parsed = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, resp.headers.get("Content-Type", ""), parsed if parsed is not None else body


async def test_livez_answers_while_teleport_and_mattermost_are_both_down(
    server: HealthServer, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    recorder.watcher_connected(False)
    recorder.mattermost_reachable(False, "GET /api/v4/users/me: cannot connect (Connection refused)")
    status, _, body = await get(http, server, "/livez")
    assert (status, body) == (200, {"status": "ok"})
    status, _, body = await get(http, server, "/readyz")
    assert status == 503 and body["ready"] is False


async def test_readyz_is_503_with_every_check_until_ready_then_200(
    server: HealthServer, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    status, content_type, body = await get(http, server, "/readyz")
    assert status == 503 and content_type.startswith("application/json")
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("watch", False), ("identity", False), ("mattermost", False)
    ]
    assert all(c["detail"] for c in body["checks"])
    recorder.watcher_connected(True)
    recorder.identity_expiry(NOW + 3600)
    recorder.mattermost_call("GET /api/v4/users/me", 200, 0.01)
    recorder.permanent_failure("post to myteam/off-topic", "HTTP 403 bot not in channel", "add the bot")
    status, _, body = await get(http, server, "/readyz")
    assert status == 200 and body["ready"] is True
    assert [f["what"] for f in body["permanent_failures"]] == ["post to myteam/off-topic"]


async def test_metrics_is_the_prometheus_exposition(
    server: HealthServer, http: aiohttp.ClientSession, recorder: Recorder
) -> None:
    recorder.notification("channel", "ok")
    status, content_type, body = await get(http, server, "/metrics")
    assert status == 200 and content_type == CONTENT_TYPE
    assert f'{PREFIX}notifications_total{{result="ok",target_kind="channel"}} 1.0' in body
    assert f'{PREFIX}build_info{{version="1.2.3"}} 1.0' in body


async def test_unknown_paths_and_methods(server: HealthServer, http: aiohttp.ClientSession) -> None:
    status, _, _ = await get(http, server, "/healthz")
    assert status == 404
    async with http.post(f"http://127.0.0.1:{server.port}/livez") as resp:
        assert resp.status == 405


async def test_a_port_in_use_is_a_startup_error_naming_the_key(recorder: Recorder) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer("127.0.0.1", port, readiness=recorder.readiness, metrics=recorder.metrics)
        with pytest.raises(StartupError, match=rf"cannot listen on health.listen_addr 127.0.0.1:{port}: "):
            await server.start()
    await server.stop()  # nothing to stop: safe


async def test_stop_closes_the_port_and_is_idempotent(recorder: Recorder, http: aiohttp.ClientSession) -> None:
    server = HealthServer("127.0.0.1", 0, readiness=recorder.readiness, metrics=recorder.metrics)
    await server.start()
    assert server.address == f"127.0.0.1:{server.port}"
    await server.stop()
    await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(http, server, "/livez")


async def test_health_listener_serves_its_recorder_and_logs_the_address(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.health")
    async with health_listener("127.0.0.1", 0, identity_margin=60, version="4.5.6") as recorder:
        [record] = [r for r in caplog.records if r.getMessage() == LISTENING]
        address = record.__dict__["address"]
        recorder.cas_conflict()
        async with http.get(f"http://{address}/metrics") as resp:
            assert f"{PREFIX}cas_conflicts_total 1.0" in await resp.text()
        async with http.get(f"http://{address}/readyz") as resp:
            assert resp.status == 503
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"http://{address}/livez")


# --- the periodic Mattermost check -------------------------------------------------------------


class Stop(Exception):
    """Ends the check loop from the fake sleep."""


async def test_reachability_check_reports_each_result_every_interval() -> None:
    sleeps: list[float] = []
    results = iter([None, TransientError("GET /api/v4/users/me: cannot connect (Connection refused)"), None])

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 3:
            raise Stop

    async def check() -> None:
        outcome = next(results)
        if outcome is not None:
            raise outcome

    readiness = Readiness(identity_margin=60, mattermost_stale_after=90, clock=lambda: NOW)
    recorder = Recorder(Metrics(), readiness)
    seen: list[tuple[bool, str]] = []

    class Spy(NullTelemetry):
        def mattermost_reachable(self, ok: bool, detail: str = "") -> None:
            seen.append((ok, detail))
            recorder.mattermost_reachable(ok, detail)

    with pytest.raises(Stop):
        await check_reachability(check, Spy(), interval=30, sleep=sleep)
    assert sleeps == [30, 30, 30, 30]
    assert seen == [
        (True, "health check passed"),
        (False, "GET /api/v4/users/me: cannot connect (Connection refused)"),
        (True, "health check passed"),
    ]


async def test_reachability_interval_must_be_positive() -> None:
    async def check() -> None:
        return None

    with pytest.raises(ValueError, match="interval must be positive"):
        await check_reachability(check, NullTelemetry(), interval=0)
