"""The health listener: `GET /livez`, `GET /readyz` and `GET /metrics` on `[health] listen_addr`.

* `/livez` answers 200 whenever the event loop runs: it depends on nothing else, so a probe restarts the
  process only when the process is stuck, never because Teleport or Mattermost is down.
* `/readyz` answers 200 when every readiness check passes and 503 otherwise, always with the JSON report
  (`ready`, `checks` with name, ok and detail, `permanent_failures`).
* `/metrics` is the Prometheus text exposition.

No access log: probes every few seconds would drown the sidecar's own log lines.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Final

from aiohttp import web

from sidecar.domain.errors import StartupError
from sidecar.observability.metrics import CONTENT_TYPE, Metrics
from sidecar.observability.reachability import STALE_AFTER
from sidecar.observability.readiness import Readiness
from sidecar.observability.recorder import Recorder

__all__ = ["LISTENING", "HealthServer", "health_listener"]

log = logging.getLogger("sidecar.health")

# Logged at INFO with `address` once the listener is up (port 0 picks a free port; this line names it).
LISTENING: Final = "Health endpoints listening"
_NO_STORE: Final = {"Cache-Control": "no-store"}


class HealthServer:
    """Serves the health endpoints; `async with HealthServer(host, port, ...)` listens inside the block.

    `host` "" listens on every interface; port 0 picks a free port (see `port` once started).
    """

    def __init__(self, host: str, port: int, *, readiness: Readiness, metrics: Metrics) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; raises StartupError naming `health.listen_addr` when the address cannot be used."""
        if self._runner is not None:
            raise RuntimeError("the health server is already running")
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        # A short shutdown: a probe or a scrape in flight is cheap to cut, and shutdown has a 15 s budget.
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host or None, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            shown = f"{self._host}:{self._port}" if ":" not in self._host else f"[{self._host}]:{self._port}"
            reason = exc.strerror or type(exc).__name__
            raise StartupError(f"cannot listen on health.listen_addr {shown}: {reason}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info(LISTENING, extra={"address": self.address})

    @property
    def address(self) -> str:
        """`host:port` as listened on ("*" for every interface)."""
        host = self._host or "*"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _livez(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers=_NO_STORE)

    async def _readyz(self, request: web.Request) -> web.Response:
        report = self._readiness.report()
        return web.json_response(report.to_json(), status=200 if report.ready else 503, headers=_NO_STORE)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE, **_NO_STORE})


@contextlib.asynccontextmanager
async def health_listener(
    host: str, port: int, *, identity_margin: float, version: str = ""
) -> AsyncIterator[Recorder]:
    """Fresh metrics and readiness, served on host:port inside the block; yields the telemetry to report to."""
    readiness = Readiness(identity_margin=identity_margin, mattermost_stale_after=STALE_AFTER)
    recorder = Recorder(Metrics(version=version), readiness)
    async with HealthServer(host, port, readiness=readiness, metrics=recorder.metrics):
        yield recorder
