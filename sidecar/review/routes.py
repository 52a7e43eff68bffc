"""The callback routes Mattermost calls, mountable on any aiohttp application, and the listener that serves them.

Review runs its own listener (`review.listen_addr`, optional TLS) rather than sharing the health listener:

* different audiences: the callback must be reachable from the Mattermost servers, often across a network
  boundary and through `AllowedUntrustedInternalConnections`, while `/metrics` and `/readyz` are for probes and
  scrapers inside the cluster; one port for both would expose the metrics to Mattermost's network, or force the
  callback onto the probes' network;
* TLS applies to the callback only, with its own certificate;
* off means off: with `[review] enabled = false` no port is opened, whatever `[health]` says.

`ReviewRoutes.mount` still works on any `web.Application` should someone prefer one port.

Answers are always HTTP 200 with JSON: Mattermost shows the clicker only a generic error for any other status,
while the JSON carries the text that says what to do. Bodies are read up to `MAX_BODY` bytes.
"""

from __future__ import annotations

import json
import logging
import ssl
from types import TracebackType
from typing import Any, Final

from aiohttp import web

from sidecar.domain.errors import StartupError
from sidecar.review.pipeline import ClickPipeline
from sidecar.review.settings import ReviewSettings
from sidecar.review.urls import ACTION_PATH, DIALOG_PATH, PING_PATH, served_paths

__all__ = ["LISTENING", "MAX_BODY", "ReviewRoutes", "ReviewServer"]

log = logging.getLogger("sidecar.review")

LISTENING: Final = "Review callbacks listening"
MAX_BODY: Final = 64 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store"}


class ReviewRoutes:
    """`POST` action and dialog callbacks, and `GET` ping, at the root and under `public_url`'s path prefix."""

    def __init__(self, pipeline: ClickPipeline, public_url: str) -> None:
        self._pipeline = pipeline
        self._public_url = public_url

    def mount(self, app: web.Application) -> None:
        """Add the routes to `app` (before it starts)."""
        for path in served_paths(self._public_url, ACTION_PATH):
            app.router.add_post(path, self._action)
        for path in served_paths(self._public_url, DIALOG_PATH):
            app.router.add_post(path, self._dialog)
        for path in served_paths(self._public_url, PING_PATH):
            app.router.add_get(path, self._ping)

    async def _action(self, request: web.Request) -> web.Response:
        return _json(await self._pipeline.handle_action(await _body(request)))

    async def _dialog(self, request: web.Request) -> web.Response:
        return _json(await self._pipeline.handle_dialog(await _body(request)))

    async def _ping(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})


async def _body(request: web.Request) -> object:
    """The JSON body, or None when it is missing, too large or not JSON (the pipeline refuses None)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return None


def _json(payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, headers=_NO_STORE)


class ReviewServer:
    """The review listener; `async with ReviewServer(settings, routes)` listens inside the block.

    Port 0 picks a free port (see `port` once started).
    """

    def __init__(self, settings: ReviewSettings, routes: ReviewRoutes) -> None:
        self._settings = settings
        self._routes = routes
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> ReviewServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; raises StartupError naming the key when the address or the certificate cannot be used."""
        if self._runner is not None:
            raise RuntimeError("the review server is already running")
        context = _tls_context(self._settings) if self._settings.tls else None
        app = web.Application(client_max_size=MAX_BODY)
        self._routes.mount(app)
        # Clicks in flight get a moment to finish: a cut click leaves its clicker with a generic error.
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        host, port = self._settings.host, self._settings.port
        try:
            await web.TCPSite(runner, host or None, port, ssl_context=context).start()
        except OSError as exc:
            await runner.cleanup()
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = exc.strerror or type(exc).__name__
            raise StartupError(f"cannot listen on review.listen_addr {shown}: {reason}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info(LISTENING, extra={"address": self.address, "public_url": self._settings.public_url})

    @property
    def address(self) -> str:
        """`host:port` as listened on ("*" for every interface)."""
        host = self._settings.host or "*"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _tls_context(settings: ReviewSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise StartupError(f"cannot use review.tls_cert and review.tls_key: {reason}") from None
    return context
