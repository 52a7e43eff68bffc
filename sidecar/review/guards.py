"""Abuse guards for the callback routes: a per-user click budget and a cap on clicks handled at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Final

from sidecar.review.texts import BUSY, RATE_LIMITED, Outcome, refused

__all__ = ["ClickLimiter", "Concurrency"]

PER_USER: Final = 20  # clicks (and dialog submissions) per user per window: far above any honest use
WINDOW: Final = 60.0
TRACKED_USERS: Final = 10_000


class ClickLimiter:
    """At most `per_user` clicks per user in any `window` seconds.

    Charged only after the clicker is proven (trigger id or dialog state), so nobody can spend another user's
    budget by posting their id. The least recently seen users are forgotten beyond `tracked` users.
    """

    def __init__(self, per_user: int = PER_USER, window: float = WINDOW, tracked: int = TRACKED_USERS) -> None:
        self._per_user = per_user
        self._window = window
        self._tracked = tracked
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def charge(self, user_id: str, now: float) -> None:
        """Count one click for `user_id`; raises ClickRefused (RATE_LIMITED) when over the budget."""
        times = self._seen.pop(user_id, None) or deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        self._seen[user_id] = times
        while len(self._seen) > self._tracked:
            self._seen.popitem(last=False)
        if len(times) >= self._per_user:
            raise refused(Outcome.RATE_LIMITED, RATE_LIMITED)
        times.append(now)


class Concurrency:
    """At most `limit` clicks in the pipeline at once; a click that cannot start within `wait` seconds is refused."""

    def __init__(self, limit: int = 16, wait: float = 5.0) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._wait = wait

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; raises ClickRefused (BUSY) when none frees up in time."""
        try:
            async with asyncio.timeout(self._wait):
                await self._semaphore.acquire()
        except TimeoutError:
            raise refused(Outcome.BUSY, BUSY) from None
        try:
            yield
        finally:
            self._semaphore.release()
