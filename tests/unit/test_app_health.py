"""The app's health wiring: off by default, the listener's telemetry when `[health] listen_addr` is set."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import pytest

from sidecar.app import IDENTITY_MARGIN_MIN, in_turn, telemetry_for
from sidecar.config import Config, load_config
from sidecar.domain.telemetry import NullTelemetry
from sidecar.observability.recorder import Recorder
from sidecar.observability.server import LISTENING


def config(tmp_path: Path, *, teleport: str = "", extra: str = "") -> Config:
    path = tmp_path / "teleport-mattermost.toml"
    path.write_text(
        f'[teleport]\nidentity = "/var/lib/teleport/identity"\n{teleport}'
        f'[mattermost]\nurl = "https://mm.example.com"\ntoken = "tok-app-health"\n{extra}'
    )
    return load_config(path, env={})


async def test_without_health_nothing_listens_and_telemetry_is_null(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.health")
    async with telemetry_for(config(tmp_path)) as telemetry:
        assert isinstance(telemetry, NullTelemetry)
    assert not [r for r in caplog.records if r.getMessage() == LISTENING]


@pytest.mark.parametrize(("interval", "margin"), [("30s", IDENTITY_MARGIN_MIN), ("5m", 300.0)])
async def test_with_health_the_listener_serves_the_telemetry_it_yields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, interval: str, margin: float
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.health")
    teleport = f'refresh_identity_interval = "{interval}"\n'
    settings = config(tmp_path, teleport=teleport, extra='[health]\nlisten_addr = "127.0.0.1:0"\n')
    async with telemetry_for(settings) as telemetry:
        assert isinstance(telemetry, Recorder)
        [record] = [r for r in caplog.records if r.getMessage() == LISTENING]
        telemetry.watcher_connected(True)
        async with aiohttp.ClientSession() as http, http.get(f"http://{record.__dict__['address']}/metrics") as resp:
            assert "teleport_mattermost_watcher_connected 1.0" in await resp.text()
        # The identity must outlast one refresh interval, and at least a minute.
        telemetry.identity_expiry(time.time() + 3600)
        [identity] = [c for c in telemetry.readiness.report().checks if c.name == "identity"]
        assert identity.ok and identity.detail.endswith(f"margin {margin:.0f} s)")


async def test_in_turn_runs_every_hook_in_order() -> None:
    calls: list[tuple[str, int]] = []

    async def first(number: int) -> None:
        calls.append(("first", number))

    async def second(number: int) -> None:
        calls.append(("second", number))

    await in_turn(first, second)(3)
    assert calls == [("first", 3), ("second", 3)]
