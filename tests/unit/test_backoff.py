"""Decorrelated-jitter backoff with a fake sleep and a scripted random source."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sidecar.domain.backoff import Backoff


class FakeSleep:
    """Records requested delays; never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _scripted(values: list[float]) -> Iterator[float]:
    yield from values


def test_sequence_follows_decorrelated_jitter_formula() -> None:
    rand = _scripted([0.0, 1.0, 0.5, 1.0, 1.0, 1.0])
    backoff = Backoff(0.001, 1.0, rand=lambda: next(rand))
    # prev=base: base + 0 × (3·base − base) = base
    assert backoff.next_delay() == pytest.approx(0.001)
    # base + 1 × (3·0.001 − 0.001) = 0.003
    assert backoff.next_delay() == pytest.approx(0.003)
    # base + 0.5 × (3·0.003 − 0.001) = 0.005
    assert backoff.next_delay() == pytest.approx(0.005)
    assert backoff.next_delay() == pytest.approx(0.015)
    assert backoff.next_delay() == pytest.approx(0.045)
    assert backoff.next_delay() == pytest.approx(0.135)


def test_delay_is_capped_and_reset_restarts() -> None:
    backoff = Backoff(0.02, 5.0, rand=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert max(delays) == 5.0
    assert delays[-1] == 5.0
    assert all(0.02 <= delay <= 5.0 for delay in delays)
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.06)


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_invalid_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base, cap)


async def test_wait_uses_injected_sleep() -> None:
    sleep = FakeSleep()
    backoff = Backoff(0.001, 1.0, rand=lambda: 1.0, sleep=sleep)
    assert await backoff.wait() is True
    assert await backoff.wait() is True
    assert sleep.delays == pytest.approx([0.003, 0.009])


async def test_wait_is_interrupted_by_stop_event() -> None:
    started = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        started.set()
        await asyncio.Event().wait()

    stop = asyncio.Event()
    backoff = Backoff(1.0, 10.0, sleep=endless_sleep)
    waiter = asyncio.create_task(backoff.wait(stop))
    await started.wait()
    stop.set()
    assert await waiter is False


async def test_wait_with_stop_already_set_returns_at_once() -> None:
    sleep = FakeSleep()
    stop = asyncio.Event()
    stop.set()
    assert await Backoff(1.0, 10.0, sleep=sleep).wait(stop) is False
    assert sleep.delays == []


async def test_wait_with_unset_stop_completes_normally() -> None:
    sleep = FakeSleep()
    assert await Backoff(1.0, 10.0, rand=lambda: 0.0, sleep=sleep).wait(asyncio.Event()) is True
    assert sleep.delays == [1.0]


async def test_wait_is_cancellable() -> None:
    started = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        started.set()
        await asyncio.Event().wait()

    waiter = asyncio.create_task(Backoff(1.0, 10.0, sleep=endless_sleep).wait(asyncio.Event()))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
