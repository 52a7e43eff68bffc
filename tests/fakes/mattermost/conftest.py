"""Fixtures: a fake Mattermost on loopback (manual clock), a small typed HTTP helper, a loopback integration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import IntegrationSettings, ServerConfig
from fakes.mattermost.server import FakeMattermost


@dataclass
class Response:
    """A finished HTTP exchange."""

    status: int
    headers: CIMultiDict[str]
    raw: bytes

    @property
    def body(self) -> Any:
        """Decoded JSON body."""
        return json.loads(self.raw)


class Client:
    """Talks to the fake with a given token; keeps the headers a Go client would send."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request; `body` is JSON-encoded, `raw` is sent as is."""
        sent = {"Accept": "application/json"}
        if token is not None:
            sent["Authorization"] = f"BEARER {token}"
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        async with self.session.request(method, self.base + path, data=data, headers=sent) as response:
            payload = await response.read()
            return Response(response.status, CIMultiDict(response.headers), payload)


@pytest.fixture
def clock() -> ManualClock:
    """The fake's time source."""
    return ManualClock()


@pytest.fixture
async def mm(clock: ManualClock) -> AsyncIterator[FakeMattermost]:
    """A running fake with the default seed."""
    async with FakeMattermost(clock=clock) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session (no cookie jar: tests set cookies explicitly)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture
def api(mm: FakeMattermost, http: aiohttp.ClientSession) -> Client:
    """HTTP helper bound to the fake."""
    return Client(http, mm.url)


@dataclass
class Hook:
    """A loopback integration: records each call and answers with `status` and `answer` after `delay` seconds."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answer: bytes = b""
    status: int = 200
    delay: float = 0.0

    def reply_with(self, doc: Any, status: int = 200) -> None:
        """Answer every call with this JSON document."""
        self.answer = json.dumps(doc).encode()
        self.status = status


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """An integration on 127.0.0.1 (stopped by the fixture even when the test fails)."""
    recorder = Hook()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        recorder.raw.append(body)
        recorder.calls.append(json.loads(body))
        recorder.headers.append(dict(request.headers))
        if recorder.delay:
            await asyncio.sleep(recorder.delay)
        return web.Response(status=recorder.status, body=recorder.answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        yield recorder
    finally:
        await runner.cleanup()


#: Integration settings for tests whose integrations listen on loopback (the real default refuses them).
LOOPBACK_ALLOWED = IntegrationSettings(allowed_untrusted_internal_connections="127.0.0.1")


@pytest.fixture
async def mmi(clock: ManualClock) -> AsyncIterator[FakeMattermost]:
    """A running fake with the default seed that may call integrations on 127.0.0.1."""
    async with FakeMattermost(clock=clock, config=ServerConfig(integrations=LOOPBACK_ALLOWED)) as server:
        yield server


@pytest.fixture
def apii(mmi: FakeMattermost, http: aiohttp.ClientSession) -> Client:
    """HTTP helper bound to `mmi`."""
    return Client(http, mmi.url)
