"""Mattermost's rate limiter: GCRA (a token bucket in disguise) from the throttled library.

Quota `per_sec` with `burst`: from idle a key may send `burst + 1` requests at once, then one every
`1 / per_sec` seconds. Header values follow throttled + Mattermost's `setRateLimitHeaders`:
`X-RateLimit-Limit` is `burst + 1`, `X-RateLimit-Reset` and `Retry-After` are relative seconds (ceil).

The arithmetic is throttled's, in integer nanoseconds (Go's `time.Duration`): in float seconds
`(now + interval) - interval` can exceed `now`, which refused a request at a full bucket when the burst is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fakes.mattermost.clock import Clock


@dataclass(frozen=True)
class RateLimitConfig:
    """`RateLimitSettings.PerSec` and `MaxBurst` (defaults are the server's: 10 and 100)."""

    per_sec: float = 10.0
    burst: int = 100

    def __post_init__(self) -> None:
        if not self.per_sec > 0:
            raise ValueError("rate limit per_sec must be positive")
        if self.burst < 0:
            raise ValueError("rate limit burst must not be negative")


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against the limiter, with its header values."""

    limited: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float

    def headers(self) -> dict[str, str]:
        """The `X-RateLimit-*` (and, when limited, `Retry-After`) headers."""
        out = {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(math.ceil(self.reset_after)),
        }
        if self.limited:
            out["Retry-After"] = str(math.ceil(self.retry_after))
        return out


_NS = 1_000_000_000


class RateLimiter:
    """Per-key GCRA state: the theoretical arrival time (TAT) of each key, in nanoseconds."""

    def __init__(self, config: RateLimitConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        # throttled.PerSec(n) is Rate{time.Second / time.Duration(n)}: an integer number of nanoseconds.
        self._interval = int(_NS / config.per_sec)
        self._tolerance = self._interval * (config.burst + 1)
        self._tat: dict[str, int] = {}

    def reset(self) -> None:
        """Forget every key (all buckets full again)."""
        self._tat.clear()

    def check(self, key: str) -> RateDecision:
        """Count one request for `key` and say whether it is allowed (throttled's `GCRARateLimiter.RateLimit`)."""
        # Whole microseconds: a float epoch has no finer resolution, and rounding keeps the float noise out.
        now = round(self._clock.now() * 1_000_000) * 1_000
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + self._interval
        allow_at = new_tat - self._tolerance
        limit = self.config.burst + 1
        if now < allow_at:
            ttl = tat - now
            return RateDecision(True, limit, self._remaining(ttl), ttl / _NS, (allow_at - now) / _NS)
        self._tat[key] = new_tat
        ttl = new_tat - now
        return RateDecision(False, limit, self._remaining(ttl), ttl / _NS, 0.0)

    def _remaining(self, ttl: int) -> int:
        spare = self._tolerance - ttl
        # Go divides Durations with truncation toward zero, so a spare in (-interval, 0) gives 0 too.
        return spare // self._interval if spare > 0 else 0
