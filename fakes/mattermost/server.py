"""`FakeMattermost`: the aiohttp server as an async context manager, plus the HTTP middleware.

The middleware does, in order, what the real server's handler chain does around a handler:
fault injection (test only), rate limiting, request id and standard headers, the `Handle404` answer
for unknown routes, authentication, the handler itself with `AppError` rendering, and ETags.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from types import TracebackType

import aiohttp
from aiohttp import web

from fakes.mattermost import errors, users
from fakes.mattermost.auth import COOKIE_NAME, TokenSource, csrf_ok, find_token
from fakes.mattermost.clock import Clock, SystemClock, millis
from fakes.mattermost.config import SERVER_VERSION, VERSION_ID, ServerConfig
from fakes.mattermost.control import Control, RequestRecord
from fakes.mattermost.driver import UserDriver
from fakes.mattermost.faults import FaultBook, FaultPlan
from fakes.mattermost.ids import random_id
from fakes.mattermost.ratelimit import RateLimitConfig, RateLimiter
from fakes.mattermost.routes import PUBLIC_ROUTES, SESSION_KEY, Api, Handler, json_response
from fakes.mattermost.seed import Seed, default_seed
from fakes.mattermost.state import State

UNMATCHED_ROUTE = "<unmatched>"
#: GET routes the real server answers without an ETag.
_NO_ETAG = frozenset({"/api/v4/system/ping", "/api/v4/config/client"})


class _Dropped(Exception):
    """The response is deliberately not sent (fault injection)."""


class FakeMattermost:
    """A fake Mattermost REST v4 server on loopback.

    Usage::

        async with FakeMattermost() as mm:          # default seed, port 0
            mm.url, mm.admin_token, mm.bot_token
            mm.control.count("POST", "/api/v4/posts")
    """

    def __init__(
        self,
        seed: Seed | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: RateLimitConfig | None = None,
        config: ServerConfig | None = None,
        clock: Clock | None = None,
        fault_seed: int = 0,
    ) -> None:
        self.seed = seed if seed is not None else default_seed()
        self.config = config if config is not None else ServerConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._host = host
        self._port = port
        self.state = State(self.seed, self.config, self.clock)
        self.limiter = RateLimiter(rate_limit, self.clock) if rate_limit is not None else None
        book = FaultBook()
        book.rng.seed(fault_seed)
        self.control = Control(self.state, book, self.limiter)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self.url = ""

    @property
    def admin_token(self) -> str:
        """The seeded administrator's token."""
        return self.seed.admin.token

    @property
    def bot_token(self) -> str:
        """The first seeded bot's token (the default seed's `teleport` bot)."""
        if not self.seed.bots:
            raise LookupError("the seed defines no bot")
        return self.seed.bots[0].token

    @property
    def bot_username(self) -> str:
        """The first seeded bot's username."""
        if not self.seed.bots:
            raise LookupError("the seed defines no bot")
        return self.seed.bots[0].username

    async def __aenter__(self) -> FakeMattermost:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind and serve; `url` is valid afterwards."""
        self._closing.clear()  # a server may be started again after `stop()`
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        # A generous aiohttp limit: the 413 check of MaximumPayloadSizeBytes is ours.
        app = web.Application(middlewares=[self._middleware], client_max_size=self.config.max_payload_bytes * 4)
        Api(self.state, self._http).register(app)
        self.control.register(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            await self._cleanup()
            raise
        site = web.SockSite(self._runner, sock)
        await site.start()
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        self.state.site_url = self.url
        self.control.driver = UserDriver(self.state, self._http, self.url)

    async def stop(self) -> None:
        """Stop serving and release the socket (safe to call twice)."""
        # Set before the runner's cleanup, which waits for running handlers: requests held by a latency or
        # hang fault end now instead of holding the shutdown for the rest of their delay.
        self._closing.set()
        await self._cleanup()

    async def _cleanup(self) -> None:
        self.control.driver = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ middleware

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/fake/") or request.path == "/fake":
            return await self._control_gate(request, handler)
        route = _route_template(request)
        record = RequestRecord(request.method, route, request.path, millis(self.clock))
        self.control.log.append(record)
        plan = self.control.faults.plan(request.method, route)
        record.faults = plan.fault_ids
        try:
            response = await self._api(request, handler, route, plan, record)
        except _Dropped:
            record.dropped = True
            await self._drop(request, plan)
            # The transport is gone; aiohttp discards whatever is returned.
            return web.Response(status=500)
        record.status = response.status
        return response

    async def _control_gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        found = find_token(request)
        if found.source is not TokenSource.HEADER or found.token != self.admin_token:
            return web.json_response({"error": "the /fake/ routes need the admin token as a Bearer token"}, status=401)
        return await handler(request)

    async def _hold(self, ms: int) -> bool:
        """Wait `ms` milliseconds, or less if the server starts closing; True when it is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), ms / 1000)
        return self._closing.is_set()

    async def _drop(self, request: web.Request, plan: FaultPlan) -> None:
        if plan.hang_ms:
            # Hold the connection (the client may time out first) unless the server is stopping.
            await self._hold(plan.hang_ms)
        transport = request.transport
        if transport is not None:
            transport.abort()

    async def _api(
        self, request: web.Request, handler: Handler, route: str, plan: FaultPlan, record: RequestRecord
    ) -> web.StreamResponse:
        if plan.outage:
            raise _Dropped
        if plan.latency_ms and await self._hold(plan.latency_ms):
            # A closing server does not answer what it was still delaying: the connection just goes away.
            raise _Dropped
        rate_headers: dict[str, str] = {}
        if self.limiter is not None:
            found = find_token(request)
            key = f"token:{found.token}" if found.token else f"addr:{request.remote}"
            decision = self.limiter.check(key)
            rate_headers = decision.headers()
            if decision.limited:
                return _limit_exceeded(rate_headers)
        if plan.status == 429:
            return _limit_exceeded({"Retry-After": "1"})
        if request.match_info.http_exception is not None:
            return _handle_404(request, rate_headers)
        request_id = random_id()
        if plan.status is not None:
            injected = errors.ApiError(plan.status, "fake.injected_fault.app_error", "Injected fault.")
            response: web.StreamResponse = _error_response(injected, request_id)
        else:
            response = await self._authenticated(request, handler, route, request_id, record)
            if plan.drop_after_commit:
                raise _Dropped
        _standard_headers(request, response, request_id, rate_headers)
        return response

    async def _authenticated(
        self, request: web.Request, handler: Handler, route: str, request_id: str, record: RequestRecord
    ) -> web.StreamResponse:
        required = (request.method, route) not in PUBLIC_ROUTES
        found = find_token(request)
        try:
            if found.token:
                session = users.session_for(self.state, found.token)
                if found.source is TokenSource.QUERY:
                    if required:
                        raise errors.token_in_query()
                elif session is None:
                    if required:
                        expired = _error_response(errors.session_expired(), request_id)
                        expired.set_cookie(COOKIE_NAME, "", path="/", max_age=0, httponly=True)
                        return expired
                elif found.source is TokenSource.COOKIE and not csrf_ok(request):
                    if required:
                        raise errors.session_expired()
                else:
                    request[SESSION_KEY] = session
                    record.user_id = session.user.id
            elif required:
                raise errors.session_expired()
            response = await handler(request)
        except errors.ApiError as exc:
            return _error_response(exc, request_id)
        if self.config.etags and request.method == "GET" and response.status == 200 and route not in _NO_ETAG:
            return _apply_etag(request, response)
        return response


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED_ROUTE
    return resource.canonical


def _error_response(error: errors.ApiError, request_id: str) -> web.Response:
    return json_response(error.body(request_id), status=error.status)


def _limit_exceeded(headers: dict[str, str]) -> web.Response:
    # Go's http.Error: plain text with a trailing newline, not an AppError.
    response = web.Response(status=429, body=b"limit exceeded\n")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.update(headers)
    return response


def _handle_404(request: web.Request, rate_headers: dict[str, str]) -> web.Response:
    if not request.path.startswith("/api/v4/"):
        response = web.Response(status=404, body=b"404 page not found\n")
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
    else:
        # Handle404 runs outside the normal handler: no X-Request-Id, no request_id in the body.
        response = json_response(errors.handle_404_body(request.path), status=404)
    response.headers.update(rate_headers)
    return response


def _standard_headers(
    request: web.Request, response: web.StreamResponse, request_id: str, rate_headers: dict[str, str]
) -> None:
    headers = response.headers
    headers["X-Request-Id"] = request_id
    headers["X-Version-Id"] = VERSION_ID
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Permissions-Policy"] = ""
    if request.method == "GET":
        headers["Expires"] = "0"
    headers.update(rate_headers)


def _apply_etag(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    etag = f"{SERVER_VERSION}.{hashlib.sha256(response.body).hexdigest()[:32]}"
    if request.headers.get("If-None-Match") == etag:
        not_modified = web.Response(status=304)
        not_modified.headers["Content-Type"] = "application/json"
        not_modified.headers["ETag"] = etag
        return not_modified
    response.headers["ETag"] = etag
    return response

