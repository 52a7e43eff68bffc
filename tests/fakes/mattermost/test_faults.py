"""Fault injection: injected statuses, rates, latency, outages, commit-then-drop and hangs."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from fakes.mattermost.faults import FaultBook, FaultPlan, FaultSpec, FaultSpecError
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
POSTS = "/api/v4/posts"


async def test_injected_status_is_an_app_error(api: Client, mm: FakeMattermost) -> None:
    fault = mm.control.add_fault(FaultSpec(route="/api/v4/users/{user_id}", status=503, times=1))
    reply = await api.call("GET", "/api/v4/users/me", BOT)
    assert reply.status == 503
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body["status_code"] == 503
    assert reply.body["request_id"] == reply.headers["X-Request-Id"]
    assert (await api.call("GET", "/api/v4/users/me", BOT)).status == 200  # spent after one use
    [first, second] = mm.control.requests(route="/api/v4/users/{user_id}")
    assert first.faults == (fault.id,)
    assert second.faults == ()


async def test_injected_429_uses_the_rate_limit_shape(api: Client, mm: FakeMattermost) -> None:
    mm.control.add_fault(FaultSpec(route=POSTS, method="POST", status=429))
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", POSTS, BOT, {"channel_id": channel, "message": "x"})
    assert reply.status == 429
    assert reply.raw == b"limit exceeded\n"
    assert reply.headers["Retry-After"] == "1"
    assert mm.control.posts() == []


async def test_method_and_glob_matching(api: Client, mm: FakeMattermost) -> None:
    mm.control.add_fault(FaultSpec(route="/api/v4/teams/*", method="GET", status=500))
    assert (await api.call("GET", "/api/v4/teams/name/myteam", BOT)).status == 500
    assert (await api.call("GET", "/api/v4/teams/name/myteam/channels/name/general", BOT)).status == 500
    assert (await api.call("GET", "/api/v4/users/me", BOT)).status == 200


async def test_rate_is_a_fraction(http: aiohttp.ClientSession) -> None:
    async with FakeMattermost(fault_seed=7) as server:
        api = Client(http, server.url)
        server.control.add_fault(FaultSpec(route="/api/v4/system/ping", status=500, rate=0.5))
        statuses = [(await api.call("GET", "/api/v4/system/ping")).status for _ in range(40)]
        assert 5 < statuses.count(500) < 35
        assert statuses.count(200) == 40 - statuses.count(500)


async def test_latency_still_answers(api: Client, mm: FakeMattermost) -> None:
    fault = mm.control.add_fault(FaultSpec(route="/api/v4/system/ping", latency_ms=20))
    reply = await api.call("GET", "/api/v4/system/ping")
    assert reply.status == 200
    assert mm.control.requests()[-1].faults == (fault.id,)


async def test_outage_closes_the_connection_without_effect(api: Client, mm: FakeMattermost) -> None:
    mm.control.add_fault(FaultSpec(outage=True))
    channel = mm.control.channel_id("myteam", "town-square")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.call("POST", POSTS, BOT, {"channel_id": channel, "message": "lost"})
    assert mm.control.posts() == []
    [record] = mm.control.requests()
    assert record.dropped is True
    assert record.status is None


async def test_commit_then_drop_creates_the_post(api: Client, mm: FakeMattermost) -> None:
    mm.control.add_fault(FaultSpec(route=POSTS, method="POST", drop_after_commit=True, times=1))
    channel = mm.control.channel_id("myteam", "town-square")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.call("POST", POSTS, BOT, {"channel_id": channel, "message": "ghost", "pending_post_id": "k1"})
    [stored] = mm.control.posts(channel)
    assert stored.message == "ghost"
    retry = await api.call("POST", POSTS, BOT, {"channel_id": channel, "message": "ghost", "pending_post_id": "k1"})
    assert retry.status == 201
    assert retry.body["id"] == stored.id
    assert len(mm.control.posts(channel)) == 1


async def test_hang_then_drop_looks_like_a_timeout(http: aiohttp.ClientSession) -> None:
    async with FakeMattermost() as server:
        server.control.add_fault(FaultSpec(route=POSTS, method="POST", drop_after_commit=True, hang_ms=60_000))
        channel = server.control.channel_id("myteam", "town-square")
        timeout = aiohttp.ClientTimeout(total=0.3)
        with pytest.raises(TimeoutError):
            async with http.post(
                server.url + POSTS,
                json={"channel_id": channel, "message": "slow"},
                headers={"Authorization": f"Bearer {BOT}"},
                timeout=timeout,
            ) as response:
                await response.read()
        assert len(server.control.posts(channel)) == 1
    # Leaving the context stopped the server although the hang had 60 s to go.


@pytest.mark.parametrize(
    "spec",
    [
        FaultSpec(route=POSTS, method="POST", latency_ms=30_000),
        FaultSpec(route=POSTS, method="POST", drop_after_commit=True, hang_ms=30_000),
    ],
    ids=["latency", "hang"],
)
async def test_stopping_the_server_ends_a_held_request(
    http: aiohttp.ClientSession, spec: FaultSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeMattermost() as server:
        server.control.add_fault(spec)
        channel = server.control.channel_id("myteam", "town-square")
        # The middleware plans a request's faults on arrival, just before the fault holds it.
        arrived = asyncio.Event()
        plan = server.control.faults.plan

        def planned(method: str, route: str) -> FaultPlan:
            arrived.set()
            return plan(method, route)

        monkeypatch.setattr(server.control.faults, "plan", planned)
        call = Client(http, server.url).call("POST", POSTS, BOT, {"channel_id": channel, "message": "held"})
        held = asyncio.create_task(call)
        try:
            # A safety net far below the 30 s delay: a stop that waited the delay out would trip it.
            async with asyncio.timeout(10):
                await arrived.wait()
                await server.stop()
                with pytest.raises(aiohttp.ClientConnectionError):
                    await held
        finally:
            held.cancel()
    [record] = server.control.requests()
    assert record.dropped is True
    assert record.status is None


def test_spec_validation() -> None:
    with pytest.raises(FaultSpecError, match="needs one of"):
        FaultSpec(route="*")
    with pytest.raises(FaultSpecError, match="status"):
        FaultSpec(status=200)
    with pytest.raises(FaultSpecError, match="rate"):
        FaultSpec(status=500, rate=1.5)
    with pytest.raises(FaultSpecError, match="method"):
        FaultSpec(status=500, method="FETCH")
    with pytest.raises(FaultSpecError, match="outage"):
        FaultSpec(outage=True, status=500)
    with pytest.raises(FaultSpecError, match="drop_after_commit"):
        FaultSpec(status=500, drop_after_commit=True)
    with pytest.raises(FaultSpecError, match="times"):
        FaultSpec(status=500, times=0)
    with pytest.raises(FaultSpecError, match="unknown"):
        FaultSpec.from_json({"status": 500, "colour": "red"})
    with pytest.raises(FaultSpecError, match="wrong type"):
        FaultSpec.from_json({"status": "500"})
    with pytest.raises(FaultSpecError, match="wrong type"):
        FaultSpec.from_json({"status": True})
    with pytest.raises(FaultSpecError, match="JSON object"):
        FaultSpec.from_json([])
    assert FaultSpec.from_json({"status": 500, "method": "post"}).method == "POST"


def test_book_merges_matching_rules() -> None:
    book = FaultBook()
    slow = book.add(FaultSpec(latency_ms=10))
    fail = book.add(FaultSpec(route=POSTS, status=502))
    plan = book.plan("POST", POSTS)
    assert plan.fault_ids == (slow.id, fail.id)
    assert plan.latency_ms == 10
    assert plan.status == 502
    assert book.plan("GET", "/api/v4/users/{user_id}").status is None
    assert book.remove(fail.id) is True
    assert book.remove(fail.id) is False
