"""The shared rate-limit gate: one 429 pauses every Mattermost call until the server's reset time.

Mattermost's limiter is keyed by client IP (or token), so when one call is told to slow down, every
other call from this process would be refused too. The gate turns that into one pause for all.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_RETRY_AFTER = 1.0
# A server (or proxy) asking for more than this is treated as asking for this: the pause is a
# courtesy, and an absurd header must not freeze the sidecar for hours.
MAX_RETRY_AFTER = 600.0
# Mattermost sends X-RateLimit-Reset as seconds from now; its old docs describe an epoch. Values this
# large can only be an epoch.
_EPOCH_THRESHOLD = 1_000_000_000.0


def retry_after_from_headers(headers: Mapping[str, str], *, wall_clock: Clock = time.time) -> float:
    """Seconds to wait after a 429, from `Retry-After` (seconds or HTTP date) or `X-RateLimit-Reset`.

    Falls back to DEFAULT_RETRY_AFTER when neither header is usable; clamps to [0, MAX_RETRY_AFTER].
    """
    for name in ("Retry-After", "X-RateLimit-Reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        seconds = _parse_seconds(raw.strip(), wall_clock)
        if seconds is not None:
            return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return DEFAULT_RETRY_AFTER


def _parse_seconds(raw: str, wall_clock: Clock) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return when.timestamp() - wall_clock()
    if not math.isfinite(value):
        return None
    if value >= _EPOCH_THRESHOLD:
        return value - wall_clock()
    return value


class RateLimitGate:
    """Every call awaits `wait()` before it is sent; a 429 calls `pause()`. Clock and sleep are injectable."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._resume_at = -math.inf

    def pause(self, seconds: float) -> None:
        """Hold every call for `seconds` from now; a later pause never shortens an earlier one."""
        self._resume_at = max(self._resume_at, self._clock() + max(seconds, 0.0))

    @property
    def clock(self) -> Clock:
        """The clock pauses are measured on; the client's `Pacer` shares it."""
        return self._clock

    def remaining(self) -> float:
        """Seconds left in the current pause (0 when open)."""
        return max(0.0, self._resume_at - self._clock())

    async def wait(self) -> None:
        """Return once the gate is open; loops because another 429 may extend the pause meanwhile."""
        while (delay := self.remaining()) > 0:
            await self._sleep(delay)
