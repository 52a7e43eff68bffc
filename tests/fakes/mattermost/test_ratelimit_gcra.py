"""The fake's limiter against a line-by-line transliteration of the real one, and its headers on every answer.

The reference below is throttled v2's `GCRARateLimiter.RateLimit` (quantity 1) and Mattermost's
`setRateLimitHeaders` (server/channels/app/ratelimit.go), in Go's integer nanoseconds. The pacer of the
sidecar learns the rate from these headers, so the fake must send exactly what the real server sends.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.ratelimit import RateLimitConfig, RateLimiter
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client, Response

BOT = "teleport-bot-token"
ADMIN = "admin-token"
SECOND = 1_000_000_000
RATE_HEADERS = ("X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset")


@dataclass
class Throttled:
    """throttled's GCRA in integer nanoseconds, with Mattermost's header rendering."""

    per_sec: int
    burst: int
    tat: dict[str, int] = field(default_factory=dict)

    def rate_limit(self, key: str, now: int) -> tuple[bool, dict[str, str]]:
        emission_interval = SECOND // self.per_sec  # throttled.PerSec(n): time.Second / time.Duration(n)
        tolerance = emission_interval * (self.burst + 1)
        limit, remaining, retry_after = self.burst + 1, 0, -1
        tat = self.tat.get(key, now)  # a missing key: tat = now
        increment = emission_interval
        new_tat = now + increment if now > tat else tat + increment
        allow_at = new_tat - tolerance
        diff = now - allow_at
        if diff < 0:
            if increment <= tolerance:
                retry_after = -diff
            ttl = tat - now
            limited = True
        else:
            ttl = new_tat - now
            self.tat[key] = new_tat
            limited = False
        nxt = tolerance - ttl
        if nxt > -emission_interval:
            remaining = abs(nxt) // emission_interval * (1 if nxt >= 0 else -1)  # Go truncates toward zero
        headers = {"X-Ratelimit-Limit": str(limit)}
        if remaining >= 0:
            headers["X-Ratelimit-Remaining"] = str(remaining)
        if ttl >= 0:
            headers["X-Ratelimit-Reset"] = str(-(-ttl // SECOND))  # int(math.Ceil(d.Seconds()))
        if retry_after >= 0:
            headers["Retry-After"] = str(-(-retry_after // SECOND))
        return limited, headers


@pytest.mark.parametrize(("per_sec", "burst"), [(10, 100), (10, 20), (2, 1), (4, 0), (3, 5), (1, 0)])
@pytest.mark.parametrize("start", [0.0, 1_700_000_000.0])
def test_the_fake_limiter_is_throttleds_gcra(per_sec: int, burst: int, start: float) -> None:
    """Random bursts and pauses, microsecond-grained: every decision and every header value must match."""
    rng = random.Random(f"{per_sec}/{burst}/{start}")
    clock = ManualClock(start)
    fake = RateLimiter(RateLimitConfig(per_sec=per_sec, burst=burst), clock)
    real = Throttled(per_sec, burst)
    micros = 0
    limited_seen = allowed_seen = 0
    for _ in range(3000):
        draw = rng.random()  # mostly bursts, sometimes pauses long enough to refill part or all of the bucket
        step = (0 if draw < 0.75 else rng.randrange(1, 2_000) if draw < 0.95
                else rng.randrange(1, 400_000) if draw < 0.995 else rng.randrange(1, 3_000_000))
        micros += step
        clock.advance(step / 1_000_000)
        key = rng.choice(["a", "a", "a", "b"])
        decision = fake.check(key)
        limited, headers = real.rate_limit(key, micros * 1_000)
        assert (decision.limited, decision.headers()) == (limited, headers), f"at {micros} µs, key {key}"
        limited_seen += limited
        allowed_seen += not limited
    assert limited_seen > 20 and allowed_seen > 20  # both branches were exercised


def test_a_full_bucket_with_no_burst_admits_a_request() -> None:
    """With MaxBurst 0 float seconds made `(now + interval) - interval > now` and refused it."""
    clock = ManualClock(3.8095238095238093)
    limiter = RateLimiter(RateLimitConfig(per_sec=4, burst=0), clock)
    assert limiter.check("k").limited is False
    clock.advance(0.25)
    assert limiter.check("k").limited is False
    assert limiter.check("k").limited is True


def test_sustained_rate_after_the_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimitConfig(per_sec=8, burst=20), clock)
    assert sum(not limiter.check("k").limited for _ in range(50)) == 21
    admitted = 0
    for _ in range(320):  # 10 s of a request every 1/32 s (exact in binary floating point): 80 refills
        clock.advance(1 / 32)
        admitted += not limiter.check("k").limited
    assert admitted == 80


# ---- over HTTP: the three headers on every answer ----------------------------------------------


@pytest.fixture
async def limited_mm(clock: ManualClock) -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost(rate_limit=RateLimitConfig(per_sec=10, burst=100), clock=clock) as server:
        yield server


async def test_every_api_answer_carries_the_rate_limit_headers(
    limited_mm: FakeMattermost, http: aiohttp.ClientSession
) -> None:
    api = Client(http, limited_mm.url)
    town = limited_mm.control.channel_id("myteam", "town-square")
    off_topic = limited_mm.control.channel_id("myteam", "off-topic")
    me = await api.call("GET", "/api/v4/users/me", BOT)
    revalidate = {"If-None-Match": me.headers["ETag"]}
    answers: dict[str, Response] = {
        "200 GET": me,
        "304 revalidated": await api.call("GET", "/api/v4/users/me", BOT, headers=revalidate),
        "201 POST": await api.call("POST", "/api/v4/posts", BOT, {"channel_id": town, "message": "hi"}),
        "400 bad input": await api.call("POST", "/api/v4/posts", BOT, raw=b"{not json"),
        "401 no token": await api.call("GET", "/api/v4/users/me"),
        "403 not a member": await api.call("POST", "/api/v4/posts", BOT, {"channel_id": off_topic, "message": "x"}),
        "404 missing user": await api.call("GET", "/api/v4/users/email/nobody@example.com", BOT),
        "404 unknown route": await api.call("GET", "/api/v4/no/such/route", BOT),
        "404 outside the API": await api.call("GET", "/static/nothing.js", BOT),
    }
    assert [name.split()[0] for name in answers] == [str(a.status) for a in answers.values()]
    for name, answer in answers.items():
        assert all(h in answer.headers for h in RATE_HEADERS), f"{name}: {dict(answer.headers)}"
        assert "Retry-After" not in answer.headers, name
    # One bucket per token (the clock is frozen, so nothing refills): each answer counts one request.
    bot = [int(a.headers["X-Ratelimit-Remaining"]) for name, a in answers.items() if name != "401 no token"]
    assert bot == list(range(100, 100 - len(bot), -1))
    assert answers["401 no token"].headers["X-Ratelimit-Remaining"] == "100"


async def test_the_test_face_is_not_rate_limited(limited_mm: FakeMattermost, http: aiohttp.ClientSession) -> None:
    api = Client(http, limited_mm.url)
    answer = await api.call("GET", "/fake/requests", ADMIN)
    assert answer.status == 200
    assert not any(h in answer.headers for h in RATE_HEADERS)
