"""Fixtures: a fake Mattermost on loopback (manual clock) and a small typed HTTP helper."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from fakes.mattermost.clock import ManualClock
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
