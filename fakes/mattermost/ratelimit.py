"""Mattermost's rate limiter: GCRA (a token bucket in disguise) from the throttled library.

Quota `per_sec` with `burst`: from idle a key may send `burst + 1` requests at once, then one every
`1 / per_sec` seconds. Header values follow throttled + Mattermost's `setRateLimitHeaders`:
`X-RateLimit-Limit` is `burst + 1`, `X-RateLimit-Reset` and `Retry-After` are relative seconds (ceil).
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


class RateLimiter:
    """Per-key GCRA state: the theoretical arrival time (TAT) of each key."""

    def __init__(self, config: RateLimitConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._interval = 1.0 / config.per_sec
        self._tolerance = self._interval * (config.burst + 1)
        self._tat: dict[str, float] = {}

    def reset(self) -> None:
        """Forget every key (all buckets full again)."""
        self._tat.clear()

    def check(self, key: str) -> RateDecision:
        """Count one request for `key` and say whether it is allowed."""
        now = self._clock.now()
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + self._interval
        allow_at = new_tat - self._tolerance
        limit = self.config.burst + 1
        if now < allow_at:
            ttl = tat - now
            return RateDecision(True, limit, self._remaining(ttl), ttl, allow_at - now)
        self._tat[key] = new_tat
        ttl = new_tat - now
        return RateDecision(False, limit, self._remaining(ttl), ttl, 0.0)

    def _remaining(self, ttl: float) -> int:
        spare = self._tolerance - ttl
        if spare > -self._interval:
            # A tiny epsilon: float division must not turn 3.0 into 2.9999.
            return max(0, int(spare / self._interval + 1e-9))
        return 0
