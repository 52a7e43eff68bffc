"""What MattermostClient reports to telemetry: each HTTP exchange (route template, status, duration) and 429 pauses."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sidecar.domain.errors import AccessDenied, TransientError
from sidecar.domain.telemetry import NullTelemetry
from sidecar.mattermost.retry import NO_RETRY
from tests.mattermost.conftest import make_client
from tests.mattermost.stub import BOT, CHAN_ID, Answer, FakeTime, StubServer, app_error, user

POST_OK = Answer(201, {"id": "postid", "channel_id": CHAN_ID, "message": "hi", "root_id": ""})


class Recording(NullTelemetry):
    """Keeps what the client reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, float]] = []
        self.pauses: list[float] = []

    def mattermost_call(self, route: str, status: int | None, seconds: float) -> None:
        self.calls.append((route, status, seconds))

    def rate_limit_pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def ticking(step: float) -> itertools.count[float]:
    return itertools.count(100.0, step)


async def test_each_exchange_is_reported_with_its_template_status_and_duration(
    stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("GET", "/api/v4/users/email/alice@example.com", Answer(200, user()))
    stub.on("POST", "/api/v4/posts", Answer(403, app_error(403, "api.context.permissions.app_error", "denied")))
    telemetry = Recording()
    clock = ticking(0.25)
    async with make_client(stub.url, fake_time, telemetry=telemetry, clock=lambda: next(clock)) as client:
        await client.get_user_by_email("alice@example.com")
        with pytest.raises(AccessDenied):
            await client.create_post(CHAN_ID, "hi")
    # The template, never the expanded path: one series per route, whatever the email or channel.
    assert telemetry.calls == [
        ("GET /api/v4/users/email/{email}", 200, 0.25),
        ("POST /api/v4/posts", 403, 0.25),
    ]


async def test_retries_are_reported_one_exchange_each_and_no_answer_is_none(
    stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("GET", "/api/v4/users/me", Answer(502, "bad gateway"), Answer(200, BOT))
    telemetry = Recording()
    async with make_client(stub.url, fake_time, telemetry=telemetry) as client:
        await client.get_me()
    assert [(route, status) for route, status, _ in telemetry.calls] == [
        ("GET /api/v4/users/me", 502), ("GET /api/v4/users/me", 200)
    ]

    stopped = Recording()
    # Nothing listens on port 1: the connection is refused and no HTTP status exists.
    async with make_client("http://127.0.0.1:1", fake_time, telemetry=stopped, retry=NO_RETRY) as client:
        with pytest.raises(TransientError):
            await client.get_me()
    assert [(route, status) for route, status, _ in stopped.calls] == [("GET /api/v4/users/me", None)]


async def test_a_429_pause_is_reported_with_the_wait_it_added(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("POST", "/api/v4/posts", Answer(429, "limit exceeded\n", {"Retry-After": "30"}), POST_OK)
    telemetry = Recording()
    async with make_client(stub.url, fake_time, telemetry=telemetry) as client:
        await client.create_post(CHAN_ID, "hi")
    assert telemetry.pauses == [30.0]
    assert [status for _, status, _ in telemetry.calls] == [429, 201]


async def test_a_429_inside_a_pause_already_running_adds_no_wait(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("POST", "/api/v4/posts", Answer(429, "limit exceeded\n", {"Retry-After": "5"}, hang=True), POST_OK)
    telemetry = Recording()
    async with make_client(stub.url, fake_time, telemetry=telemetry) as client:
        post = asyncio.ensure_future(client.create_post(CHAN_ID, "a"))
        await stub.arrived.wait()
        client.gate.pause(60)  # meanwhile another call's 429 paused every call for a minute
        stub.release.set()
        await post
    assert telemetry.pauses == [0.0]
    assert fake_time.sleeps == [60.0]
