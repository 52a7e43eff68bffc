"""Rate limiting: GCRA per token, Mattermost's headers and the plain-text 429."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.ratelimit import RateLimitConfig, RateLimiter
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
ADMIN = "admin-token"


def test_burst_then_refill() -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimitConfig(per_sec=2, burst=3), clock)
    decisions = [limiter.check("k") for _ in range(5)]
    assert [d.limited for d in decisions] == [False, False, False, False, True]
    assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
    assert decisions[0].limit == 4
    assert decisions[4].retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.check("k").limited is False
    assert limiter.check("k").limited is True
    assert limiter.check("other").limited is False


def test_headers_are_relative_seconds() -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimitConfig(per_sec=1, burst=2), clock)
    first = limiter.check("k").headers()
    assert first == {"X-Ratelimit-Limit": "3", "X-Ratelimit-Remaining": "2", "X-Ratelimit-Reset": "1"}
    limiter.check("k")
    limiter.check("k")
    limited = limiter.check("k").headers()
    assert limited["X-Ratelimit-Remaining"] == "0"
    assert limited["X-Ratelimit-Reset"] == "3"
    assert limited["Retry-After"] == "1"


def test_invalid_config() -> None:
    with pytest.raises(ValueError, match="per_sec"):
        RateLimitConfig(per_sec=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimitConfig(burst=-1)


@pytest.fixture
async def limited(clock: ManualClock) -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost(rate_limit=RateLimitConfig(per_sec=1, burst=1), clock=clock) as server:
        yield server


async def test_server_429_shape(limited: FakeMattermost, http: aiohttp.ClientSession, clock: ManualClock) -> None:
    api = Client(http, limited.url)
    first = await api.call("GET", "/api/v4/users/me", BOT)
    assert first.status == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Reset"] == "1"
    second = await api.call("GET", "/api/v4/users/me", BOT)
    assert second.status == 200
    assert second.headers["X-RateLimit-Remaining"] == "0"
    third = await api.call("GET", "/api/v4/users/me", BOT)
    assert third.status == 429
    assert third.raw == b"limit exceeded\n"
    assert third.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert third.headers["Retry-After"] == "1"
    assert third.headers["X-RateLimit-Limit"] == "2"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    assert third.headers["X-RateLimit-Reset"] == "2"
    other = await api.call("GET", "/api/v4/users/me", ADMIN)
    assert other.status == 200
    clock.advance(1)
    refilled = await api.call("GET", "/api/v4/users/me", BOT)
    assert refilled.status == 200
    assert [r.status for r in limited.control.requests()] == [200, 200, 429, 200, 200]


async def test_no_headers_without_rate_limit(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", BOT)
    assert "X-RateLimit-Limit" not in reply.headers


async def test_reset_refills_buckets(limited: FakeMattermost, http: aiohttp.ClientSession) -> None:
    api = Client(http, limited.url)
    for _ in range(2):
        await api.call("GET", "/api/v4/users/me", BOT)
    assert (await api.call("GET", "/api/v4/users/me", BOT)).status == 429
    limited.control.reset()
    assert (await api.call("GET", "/api/v4/users/me", BOT)).status == 200
