"""The pacer: learning Mattermost's rate limit from its headers and spacing calls out, on fake time.

The "server" of the pure tests is the fake Mattermost's GCRA limiter (fakes/mattermost/ratelimit.py, itself
checked against a transliteration of throttled in tests/fakes/mattermost/test_ratelimit_gcra.py) driven by
the same fake clock as the pacer; answers arrive the moment a call is sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest

from fakes.mattermost.ratelimit import RateDecision, RateLimitConfig, RateLimiter
from fakes.mattermost.server import FakeMattermost
from sidecar.mattermost.pacing import Allowance, Pacer, RateBounds, allowance_from_headers
from sidecar.mattermost.ratelimit import RateLimitGate
from tests.mattermost.conftest import make_client
from tests.mattermost.stub import BOT, Answer, FakeTime, StubServer, channel

ME = "/api/v4/users/me"


class _FakeClock:
    """The fake Mattermost's clock interface over the tests' FakeTime (epoch-like, so post times look real)."""

    def __init__(self, time: FakeTime, start: float = 0.0) -> None:
        self._time = time
        self._start = start

    def now(self) -> float:
        return self._start + self._time.now


def headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(remaining), "X-Ratelimit-Reset": str(reset)}


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def pacer(time: FakeTime) -> Pacer:
    return Pacer(clock=time.clock, sleep=time.sleep)


class Sent:
    """What a burst did: when each call went out and what the server said."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.decisions: list[RateDecision] = []

    @property
    def limited(self) -> int:
        return sum(d.limited for d in self.decisions)


async def burst(pacer: Pacer, limiter: RateLimiter, time: FakeTime, calls: int) -> Sent:
    """`calls` concurrent calls, each answered by `limiter` as soon as it is sent."""
    sent = Sent()

    async def one() -> None:
        call = await pacer.acquire()
        sent.at.append(time.now)
        decision = limiter.check("bot")
        sent.decisions.append(decision)
        pacer.observe(call, 429 if decision.limited else 200, decision.headers())

    await asyncio.gather(*(one() for _ in range(calls)))
    return sent


async def test_without_headers_nothing_ever_waits(pacer: Pacer, time: FakeTime) -> None:
    for _ in range(500):
        pacer.observe(await pacer.acquire(), 200, {"Content-Type": "application/json"})
    assert time.sleeps == []
    assert pacer.rate is None


async def test_a_burst_beyond_the_allowance_is_spread_at_the_learned_rate(pacer: Pacer, time: FakeTime) -> None:
    limiter = RateLimiter(RateLimitConfig(per_sec=10, burst=20), _FakeClock(time))
    await burst(pacer, limiter, time, 1)  # the health check: the pacer now knows Limit 21, Remaining 20
    assert time.sleeps == []

    sent = await burst(pacer, limiter, time, 80)

    assert sent.limited == 0
    assert min(d.remaining for d in sent.decisions) >= 1  # spaced out before Remaining reached 0
    assert sent.at[:18] == [0.0] * 18  # Remaining 20 minus the reserve of 2 goes out at once
    assert sent.at[18] > 0
    bounds = pacer.bounds
    assert bounds is not None and bounds.low <= 10 <= bounds.high
    assert pacer.rate is not None and 9 <= pacer.rate <= 10
    # The other 62 follow at the server's sustained rate: never faster than it allows (no 429 above), and
    # no slower than 95 % of it, since every answer's Remaining hands back what the estimate held back.
    assert 62 / 10 <= sent.at[-1] <= 62 / (0.95 * 10)
    gaps = [b - a for a, b in zip(sent.at[18:], sent.at[19:], strict=False)]
    assert all(gap == 0 or gap == pytest.approx(1 / pacer.rate) for gap in gaps)


async def test_a_burst_within_the_allowance_is_not_delayed(pacer: Pacer, time: FakeTime) -> None:
    limiter = RateLimiter(RateLimitConfig(per_sec=10, burst=100), _FakeClock(time))
    sent = await burst(pacer, limiter, time, 60)
    assert time.sleeps == []
    assert sent.limited == 0


@pytest.mark.parametrize(
    "phases",
    [
        [(10.0, 20), (2.0, 20), (20.0, 20), (5.0, 6)],
        [(10.0, 100), (3.0, 100), (10.0, 30)],
    ],
)
async def test_the_learned_rate_follows_the_servers_settings(
    pacer: Pacer, time: FakeTime, phases: list[tuple[float, int]]
) -> None:
    clock = _FakeClock(time)
    for per_sec, burst_size in phases:
        limiter = RateLimiter(RateLimitConfig(per_sec=per_sec, burst=burst_size), clock)
        started = time.now
        sent = await burst(pacer, limiter, time, 60 + burst_size)
        where = f"{per_sec}/s burst {burst_size}"
        assert sent.limited == 0, where
        bounds = pacer.bounds
        assert bounds is not None and bounds.low <= per_sec <= bounds.high, f"{where}: {bounds}"
        assert pacer.rate is not None and 0.8 * per_sec <= pacer.rate <= 1.05 * per_sec, where
        # Beyond the fresh limiter's burst, 60 calls at its rate, give or take the time to notice the change.
        assert 59 / per_sec <= time.now - started <= 1.25 * 60 / per_sec, where


async def test_a_gate_pause_holds_the_queue_and_a_429_spends_the_allowance(time: FakeTime) -> None:
    gate = RateLimitGate(clock=time.clock, sleep=time.sleep)
    pacer = Pacer(clock=time.clock, sleep=time.sleep, gate=gate)
    pacer.observe(await pacer.acquire(), 200, headers(101, 100, 1))
    gate.pause(5)
    await pacer.acquire()  # plenty of allowance, but the gate is closed
    assert time.sleeps == [5]

    # Another client on the same key spent the allowance: our next call is refused after all.
    refused = await pacer.acquire()
    pacer.observe(refused, 429, {"Retry-After": "1", **headers(3, 0, 1)})
    gate.pause(1)
    await pacer.acquire()
    assert time.sleeps[1] == 1  # first the gate's pause ...
    assert sum(time.sleeps[2:]) > 0  # ... then the pacer's wait until two calls are in hand again
    assert pacer.tokens() >= 0


def test_allowance_from_headers() -> None:
    assert allowance_from_headers(headers(101, 7, 3)) == Allowance(101, 7, 3.0)
    lower = {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    assert allowance_from_headers(lower) == Allowance(2, 0, 1.0)
    assert allowance_from_headers({}) is None
    assert allowance_from_headers({**headers(101, 7, 3), "X-Ratelimit-Remaining": "many"}) is None
    assert allowance_from_headers(headers(0, 0, 1)) is None
    assert allowance_from_headers({**headers(101, 7, 3), "X-Ratelimit-Reset": "inf"}) is None


@pytest.mark.parametrize(
    ("allowance", "limited", "low", "high"),
    [
        (Allowance(21, 20, 1), False, 1.0, math.inf),  # one call from idle: at least one call per Reset
        (Allowance(21, 0, 3), False, 20 / 3, 21 / 2),
        (Allowance(21, 0, 3), True, 20 / 3, 21 / 2),
        (Allowance(2, 1, 1), False, 1.0, math.inf),
        (Allowance(1, 0, 1), True, 0.0, math.inf),  # MaxBurst 0, refused: no lower bound at all
    ],
)
def test_one_answer_brackets_the_rate(allowance: Allowance, limited: bool, low: float, high: float) -> None:
    assert RateBounds.from_answer(allowance, limited=limited) == RateBounds(low, high)


def test_answers_without_a_bracket() -> None:
    assert RateBounds.from_answer(Allowance(21, 21, 0), limited=False) is None  # full bucket
    assert RateBounds.from_answer(Allowance(21, 3, 0), limited=False) is None  # no reset time


def test_brackets_narrow_and_a_contradiction_means_new_settings() -> None:
    known = RateBounds(9.0, 11.0)
    assert known.narrowed(RateBounds(9.5, math.inf)) == RateBounds(9.5, 11.0)
    assert known.narrowed(RateBounds(1.0, 3.0)) == RateBounds(1.0, 3.0)


async def test_calls_the_server_may_count_after_the_answered_one_are_spent(pacer: Pacer) -> None:
    pacer.observe(await pacer.acquire(), 200, headers(101, 100, 1))
    calls = [await pacer.acquire() for _ in range(5)]  # five at once: the server may count them in any order
    assert pacer.tokens() == 95
    pacer.observe(calls[0], 200, headers(101, 99, 1))
    assert pacer.tokens() == 95  # the four sent after it may already have been counted
    pacer.observe(calls[3], 200, headers(101, 96, 1))
    assert pacer.tokens() == 92  # three were in flight when it was sent, one was sent after it
    pacer.observe(calls[1], 200, headers(101, 98, 1))  # older than the answer already used: no resync
    assert pacer.tokens() == 92
    pacer.observe(calls[2], 200, headers(101, 97, 1))
    pacer.observe(calls[4], 200, headers(101, 95, 1))
    assert pacer.tokens() == 91  # four were in flight when it was sent
    alone = await pacer.acquire()  # sent and answered with nothing else in flight: the server's word is exact
    pacer.observe(alone, 200, headers(101, 94, 1))
    assert pacer.tokens() == 94


async def test_the_last_call_counted_first_does_not_inflate_the_estimate(pacer: Pacer, time: FakeTime) -> None:
    """Concurrent calls reach the server in any order: the newest call, counted first, still sees the others."""
    pacer.observe(await pacer.acquire(), 200, headers(21, 20, 1))
    calls = [await pacer.acquire() for _ in range(18)]
    assert time.sleeps == []
    pacer.observe(calls[-1], 200, headers(21, 19, 1))  # counted before the 17 others
    assert pacer.tokens() <= 2  # what is truly left once the other 17 are counted too
    await pacer.acquire()
    assert time.sleeps != []  # so the next call waits for a refill


async def test_a_lost_call_stops_counting_as_in_flight(pacer: Pacer) -> None:
    pacer.observe(await pacer.acquire(), 200, headers(101, 100, 1))
    lost = await pacer.acquire()
    pacer.done(lost)  # e.g. a timeout: no answer will ever come
    later = await pacer.acquire()
    pacer.observe(later, 200, headers(101, 98, 1))
    assert pacer.tokens() == 98  # nothing was in flight when `later` was sent


async def test_headers_disappearing_from_mattermost_turn_pacing_off(pacer: Pacer, time: FakeTime) -> None:
    pacer.observe(await pacer.acquire(), 200, headers(101, 100, 3))
    assert pacer.rate is not None
    pacer.observe(await pacer.acquire(), 502, {})  # a proxy's error page says nothing about Mattermost
    pacer.observe(await pacer.acquire(), 429, {"Retry-After": "1"})
    pacer.observe(await pacer.acquire(), 200, {**headers(101, 0, 3), "X-Ratelimit-Limit": "lots"})  # ignored
    assert pacer.rate is not None and pacer.tokens() == 97
    pacer.observe(await pacer.acquire(), 200, {})
    assert pacer.rate is None
    assert pacer.tokens() == 0
    for _ in range(100):
        await pacer.acquire()
    assert time.sleeps == []


async def test_a_tiny_burst_still_lets_calls_through(pacer: Pacer, time: FakeTime) -> None:
    """MaxBurst 0 (Limit 1): the reserve shrinks to nothing, and Reset (whole seconds) proves 1 call/s at least."""
    limiter = RateLimiter(RateLimitConfig(per_sec=4, burst=0), _FakeClock(time))
    sent = await burst(pacer, limiter, time, 12)
    assert sent.limited == 0
    assert pacer.rate == pytest.approx(1.05)
    assert time.now <= 11 / 1.0


@pytest.mark.parametrize("kwargs", [{"reserve": -1.0}, {"overshoot": -0.1}, {"overshoot": 1.5}, {"max_step": 0.0}])
def test_pacer_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Pacer"):
        Pacer(**kwargs)  # type: ignore[arg-type]


# ---- through the client -------------------------------------------------------------------------


async def test_the_client_paces_every_call_from_the_answers_headers(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("GET", ME, *(Answer(200, BOT, headers(5, remaining, 1)) for remaining in (4, 3, 2, 1)))
    async with make_client(stub.url, fake_time) as mm:
        for _ in range(5):
            await mm.get_me()
    # Remaining 4, 3: sent at once; Remaining 2 is the reserve, so from then on each call waits for a refill.
    times = [s.at for s in stub.seen]
    assert times[:3] == [0, 0, 0]
    assert 0 < times[3] < times[4]


async def test_the_client_still_pauses_on_429(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("GET", ME, Answer(429, "limit exceeded\n", {"Retry-After": "5", **headers(101, 0, 11)}),
            Answer(200, BOT, headers(101, 99, 10)))
    async with make_client(stub.url, fake_time) as mm:
        assert (await mm.get_me()).id == BOT["id"]
        assert mm.pacer.rate is not None
    assert fake_time.sleeps[0] == 5
    assert stub.seen[1].at >= 5


@pytest.fixture
async def limited_fake(fake_time: FakeTime) -> AsyncIterator[FakeMattermost]:
    clock = _FakeClock(fake_time, start=1_700_000_000.0)
    async with FakeMattermost(rate_limit=RateLimitConfig(per_sec=10, burst=20), clock=clock) as server:
        yield server


async def test_a_burst_of_posts_against_the_limited_fake_draws_no_429(
    limited_fake: FakeMattermost, fake_time: FakeTime
) -> None:
    async with make_client(limited_fake.url, fake_time, token=limited_fake.bot_token) as mm:
        channel = limited_fake.control.channel_id("myteam", "town-square")
        await mm.get_me()
        posts = await asyncio.gather(*(mm.create_post(channel, f"post {i}") for i in range(60)))
    assert len({p.id for p in posts}) == 60
    statuses = [r.status for r in limited_fake.control.requests()]
    assert statuses == [200] + [201] * 60
    assert fake_time.now >= (60 - 20) / 10  # the spread was real, on the server's clock too


async def test_concurrent_calls_of_every_kind_share_one_pacer(stub: StubServer, fake_time: FakeTime) -> None:
    channel_path = "/api/v4/teams/name/myteam/channels/name/town-square"
    stub.on("GET", ME, Answer(200, BOT, headers(3, 0, 1)))
    stub.on("GET", channel_path, Answer(200, channel(), headers(3, 0, 1)))
    async with make_client(stub.url, fake_time) as mm:
        await mm.get_me()
        await asyncio.gather(mm.get_me(), mm.get_channel_by_team_and_name("myteam", "town-square"), mm.get_me())
    # Every answer says the allowance is spent, so each call waits for the refill, whatever its route.
    times = [s.at for s in stub.seen]
    assert times == sorted(times) and len(set(times)) == 4
