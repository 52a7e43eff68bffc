"""Decorrelated-jitter backoff (Teleport `lib/backoff/decorr.go`), with injected randomness and sleep.

    delay(n) = min(cap, base + U[0, 3·delay(n-1) − base)),   delay(0) = base

Used by the CAS loop (1 ms → 1 s), the watcher reconnect (20 ms → 5 s) and event retries. Tests pass a
fake sleep and a fixed random source, so nothing waits for real.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

__all__ = ["Backoff", "Sleep", "sleep_unless_stopped"]

Sleep = Callable[[float], Awaitable[None]]

_MULTIPLIER = 3


class Backoff:
    """One backoff sequence; create a new one (or `reset`) for each operation being retried."""

    def __init__(
        self,
        base: float,
        cap: float,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self._rand = rand
        self._sleep = sleep
        self._previous = base

    def reset(self) -> None:
        """Start the sequence over (after a success)."""
        self._previous = self.base

    def next_delay(self) -> float:
        """Advance the sequence and return the next delay in seconds."""
        spread = _MULTIPLIER * self._previous - self.base
        delay = min(self.cap, self.base + self._rand() * spread)
        self._previous = delay
        return delay

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Sleep for the next delay. Returns False when `stop` was set first (the wait is cut short).

        Cancellation propagates as usual, so a cancelled task never sleeps on.
        """
        delay = self.next_delay()
        if stop is None:
            await self._sleep(delay)
            return True
        return await sleep_unless_stopped(self._sleep, delay, stop)


async def sleep_unless_stopped(sleep: Sleep, delay: float, stop: asyncio.Event) -> bool:
    """Sleep `delay` with `sleep` unless `stop` is set first; True when the whole delay passed.

    Cancellation propagates as usual, and an error raised by `sleep` is raised here.
    """
    if stop.is_set():
        return False
    sleeper = asyncio.ensure_future(sleep(delay))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((sleeper, stopper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)
    if sleeper.done() and not sleeper.cancelled():
        sleeper.result()
    return not stop.is_set()
