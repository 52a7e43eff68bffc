"""A scripted HTTP server on 127.0.0.1 for the client tests: each route answers from a queue we control.

Unlike the full fake (fakes/mattermost), it lets a test choose every status, header and byte, and see
every request exactly as it arrived.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "s3cr3t-token-value-7x9q"
BOT_ID = "botuserid00000000000000000"
USER_ID = "aliceid0000000000000000000"
DM_ID = "dmchannelid000000000000000"
CHAN_ID = "chanid00000000000000000000"
TEAM_ID = "teamid00000000000000000000"


def app_error(status: int, error_id: str, message: str) -> dict[str, object]:
    """A Mattermost AppError body."""
    return {"id": error_id, "message": message, "detailed_error": "", "request_id": "r" * 26, "status_code": status}


def user(user_id: str = USER_ID, username: str = "alice", email: str = "alice@example.com") -> dict[str, object]:
    return {"id": user_id, "username": username, "email": email, "is_bot": False, "roles": "system_user"}


BOT = {"id": BOT_ID, "username": "teleport", "email": "teleport@localhost", "is_bot": True}


def channel(channel_id: str = CHAN_ID, name: str = "town-square", display: str = "Town Square") -> dict[str, object]:
    return {"id": channel_id, "type": "O", "name": name, "display_name": display, "team_id": TEAM_ID}


DM = {"id": DM_ID, "type": "D", "name": f"{USER_ID}__{BOT_ID}", "display_name": "", "team_id": ""}
TEAM = {"id": TEAM_ID, "name": "myteam", "display_name": "My Team", "type": "O"}


@dataclass
class Answer:
    """One scripted answer. `body` is JSON-encoded unless it is bytes/str; `hang` never answers."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    chunked: bool = False


@dataclass
class Seen:
    """A request as the server saw it."""

    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    body: object
    at: float


NOT_FOUND = Answer(404, app_error(404, "api.context.404.app_error", "Sorry, we could not find the page."))


class StubServer:
    """Routes map (METHOD, decoded path) to a list of replies; the last reply repeats."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self._clock = clock
        self._server: TestServer | None = None

    def on(self, method: str, path: str, *replies: Answer) -> None:
        """Script the answers of one route (replacing earlier ones)."""
        self.routes[(method, path)] = list(replies)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and (path is None or s.path == path)]

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()

    async def close(self) -> None:
        self.release.set()  # let hanging handlers finish so shutdown does not wait for them
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: object = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.seen.append(
            Seen(request.method, request.path, request.raw_path, dict(request.headers), body, self._clock())
        )
        self.arrived.set()
        queue = self.routes.get((request.method, request.path))
        reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else NOT_FOUND
        if reply.hang:
            await self.release.wait()
        if isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            headers = {"Content-Type": "text/plain; charset=utf-8", **reply.headers}
        elif reply.body is None:
            payload, headers = b"", dict(reply.headers)
        else:
            payload = json.dumps(reply.body).encode()
            headers = {"Content-Type": "application/json", **reply.headers}
        if not reply.chunked:
            return web.Response(status=reply.status, body=payload, headers=headers)
        stream = web.StreamResponse(status=reply.status, headers=headers)
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        for start in range(0, len(payload), 1000):
            await stream.write(payload[start : start + 1000])
        await stream.write_eof()
        return stream


class FakeTime:
    """A monotonic clock that only moves when someone sleeps; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
