"""Pure pieces: Retry-After parsing, the gate, the caches and the backoff policy."""

from __future__ import annotations

import pytest

from sidecar.mattermost.cache import LruCache, TtlCache
from sidecar.mattermost.ratelimit import MAX_RETRY_AFTER, RateLimitGate, retry_after_from_headers
from sidecar.mattermost.retry import RetryPolicy
from tests.mattermost.stub import FakeTime

WALL = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),  # HTTP date, 10 s after WALL
        ({"X-RateLimit-Reset": "9"}, 9.0),  # Mattermost: relative seconds
        ({"X-RateLimit-Reset": str(int(WALL) + 12)}, 12.0),  # old docs: an epoch
        ({"Retry-After": "junk", "X-RateLimit-Reset": "5"}, 5.0),
        ({"Retry-After": "nan"}, 1.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "999999"}, MAX_RETRY_AFTER),
        ({}, 1.0),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float) -> None:
    assert retry_after_from_headers(headers, wall_clock=lambda: WALL) == pytest.approx(expected)


async def test_gate_pause_is_never_shortened_and_wait_sleeps_it_out() -> None:
    time = FakeTime()
    gate = RateLimitGate(clock=time.clock, sleep=time.sleep)
    await gate.wait()
    assert time.sleeps == []  # open gate: no sleep at all
    gate.pause(10)
    gate.pause(3)
    assert gate.remaining() == 10
    await gate.wait()
    assert time.sleeps == [10]
    assert gate.remaining() == 0


async def test_gate_wait_honours_a_pause_extended_while_sleeping() -> None:
    time = FakeTime()
    gate = RateLimitGate(clock=time.clock)

    async def sleep_and_get_limited_again(seconds: float) -> None:
        await time.sleep(seconds)
        if len(time.sleeps) == 1:
            gate.pause(5)  # another call saw a second 429 meanwhile

    gate._sleep = sleep_and_get_limited_again
    gate.pause(2)
    await gate.wait()
    assert time.sleeps == [2, 5]


def test_lru_evicts_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_ttl_cache_expires_and_drops_by_value() -> None:
    time = FakeTime()
    cache: TtlCache[str, str] = TtlCache(60, clock=time.clock)
    cache.put("x", "chan1")
    cache.put("y", "chan2")
    time.now = 59.9
    assert cache.get("x") == "chan1"
    cache.drop_where(lambda value: value == "chan2")
    assert cache.get("y") is None
    time.now = 60
    assert cache.get("x") is None


async def test_retry_policy_backoff_is_fresh_per_call_and_capped() -> None:
    time = FakeTime()
    policy = RetryPolicy(base=1.0, cap=10.0, rand=lambda: 1.0)
    first = policy.backoff(time.sleep)
    for _ in range(3):
        await first.wait()
    await policy.backoff(time.sleep).wait()
    assert time.sleeps == [3.0, 9.0, 10.0, 3.0]


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": 0.0}, {"base": 5.0, "cap": 1.0}])
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
