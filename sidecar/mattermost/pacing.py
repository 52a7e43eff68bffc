"""Client-side pacing: spend Mattermost's rate-limit allowance slowly enough that a burst draws no 429.

Mattermost's limiter (throttled's GCRA, upstream `server/channels/app/ratelimit.go`) answers every call with
`X-RateLimit-Limit` L (MaxBurst + 1), `X-RateLimit-Remaining` R (calls still allowed at once, rounded down)
and `X-RateLimit-Reset` S (whole seconds, rounded up, until the allowance is full again). The refill rate,
PerSec, is never sent, but every answer brackets it: the bucket is between L - R - 1 and L - R calls short of
full (and at least one call short after an allowed call) and refills in more than S - 1 and at most S
seconds. `RateBounds` intersects these brackets over the answers; a few answers into a burst the bracket is
within about 10 % of the true rate either way, and tighter the larger MaxBurst is.

`Pacer` keeps a local token bucket that mirrors the server's. It is re-synchronised with Remaining on every
answer, less every call the server may have counted after the answered one (those in flight when it was sent,
and those sent after it: concurrent calls reach the server in any order), so the estimate never runs ahead of
the server. The learned rate only fills the gaps between answers: the bucket refills at the middle of the
bracket, but never more than `overshoot` (5 %) above its proven lower bound, and `reserve` calls are kept in
hand, which also absorbs network jitter. A server that sends no headers (rate limiting off) is never waited
for. The 429 pause (`RateLimitGate`) stays the backstop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.mattermost.ratelimit import Clock, RateLimitGate, Sleep

LIMIT_HEADER = "x-ratelimit-limit"
REMAINING_HEADER = "x-ratelimit-remaining"
RESET_HEADER = "x-ratelimit-reset"
# Bounds further apart than this relative error cannot both hold: the server's settings changed.
_CONSISTENT = 1e-9
# Token counts closer than this are equal (float dust must not turn into an endless series of tiny sleeps).
_EPSILON = 1e-9


@dataclass(frozen=True)
class Allowance:
    """The rate-limit headers of one answer: `limit` calls at once from idle, `remaining` now, full in `reset` s."""

    limit: int
    remaining: int
    reset: float


def allowance_from_headers(headers: Mapping[str, str]) -> Allowance | None:
    """The three `X-RateLimit-*` headers (any case), or None when one is missing or not a sensible number."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        limit = int(lowered[LIMIT_HEADER])
        remaining = int(lowered[REMAINING_HEADER])
        reset = float(lowered[RESET_HEADER])
    except (KeyError, ValueError):
        return None
    if limit < 1 or remaining < 0 or not math.isfinite(reset) or reset < 0:
        return None
    return Allowance(limit, remaining, reset)


@dataclass(frozen=True)
class RateBounds:
    """What the answers so far say about the server's refill rate, in calls per second: within [low, high]."""

    low: float
    high: float

    @classmethod
    def from_answer(cls, allowance: Allowance, *, limited: bool) -> RateBounds | None:
        """The bracket one answer gives, or None when it gives none (a full bucket, or no reset time)."""
        short_most = allowance.limit - allowance.remaining
        # An allowed call itself pushed the bucket a whole call away from full; a refused one did not.
        short_least = max(short_most - 1, 0 if limited else 1)
        if short_most <= 0 or allowance.reset <= 0:
            return None
        high = short_most / (allowance.reset - 1) if allowance.reset > 1 else math.inf
        return cls(short_least / allowance.reset, high)

    def pace(self, overshoot: float) -> float:
        """A working estimate: the middle of the bracket, at most `overshoot` (a fraction) above `low`."""
        return min((self.low + self.high) / 2, self.low * (1 + overshoot))

    def narrowed(self, other: RateBounds) -> RateBounds:
        """Both brackets at once; when they contradict each other the server changed, so `other` wins."""
        low, high = max(self.low, other.low), min(self.high, other.high)
        if low > high * (1 + _CONSISTENT):
            return other
        return RateBounds(low, high)


class Pacer:
    """One per client: every call awaits `acquire()` before it is sent, reports its answer to `observe()` and,
    answered or not, ends with `done()`.

    Waiting calls queue in order (one asyncio.Lock); only the head of the queue sleeps, in steps of at most
    `max_step` seconds so that a better estimate from answers arriving meanwhile is used at once. The clock,
    the sleep and the gate are injectable so tests need no real time.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        gate: RateLimitGate | None = None,
        reserve: float = 2.0,
        overshoot: float = 0.05,
        max_step: float = 0.1,
    ) -> None:
        if not reserve >= 0:
            raise ValueError(f"Pacer reserve must be >= 0, got {reserve}")
        if not 0 <= overshoot <= 1:
            raise ValueError(f"Pacer overshoot must be in [0, 1], got {overshoot}")
        if not max_step > 0:
            raise ValueError(f"Pacer max_step must be > 0, got {max_step}")
        self._clock = clock
        self._sleep = sleep
        self._gate = gate
        self._reserve = reserve
        self._overshoot = overshoot
        self._max_step = max_step
        self._limit = 0  # X-RateLimit-Limit of the answers; 0 until one carries the headers: never wait
        self._bounds: RateBounds | None = None
        self._tokens = 0.0  # the server's Remaining as we estimate it at `_stamp`
        self._stamp = 0.0
        self._sent = 0  # calls let through so far; a call's number orders it against the others
        self._synced = -1  # number of the newest call whose answer set `_tokens`
        self._in_flight: dict[int, int] = {}  # unfinished call -> how many others were unfinished when it was sent
        self._queue = asyncio.Lock()

    @property
    def rate(self) -> float | None:
        """Calls per second the pacer allows once the allowance is spent; None while it does not pace."""
        if not self._limit or self._bounds is None or self._bounds.low <= 0:
            return None
        return self._bounds.pace(self._overshoot)

    @property
    def bounds(self) -> RateBounds | None:
        """The learned bracket of the server's refill rate, if any."""
        return self._bounds

    def tokens(self) -> float:
        """The estimated number of calls the server would still allow at once (0 before any headers)."""
        self._refill(self._clock())
        return self._tokens

    async def acquire(self) -> int:
        """Wait until a call can be sent with `reserve` calls to spare; returns its number for `observe`."""
        gate_open = self._gate is None or self._gate.remaining() <= 0
        if gate_open and not self._queue.locked() and self._delay() <= 0:
            return self._take()
        async with self._queue:
            while True:
                if self._gate is not None:
                    await self._gate.wait()  # a 429 seen meanwhile pauses the queue too
                delay = self._delay()
                if delay <= 0:
                    return self._take()
                await self._sleep(min(delay, self._max_step))

    def observe(self, call: int, status: int, headers: Mapping[str, str]) -> None:
        """Learn from the answer to call number `call` (from `acquire`)."""
        ahead = self._in_flight.pop(call, 0)  # answered: the server is done with it
        allowance = allowance_from_headers(headers)
        if allowance is None:
            if not any(name.lower() == LIMIT_HEADER for name in headers) and status < 500 and status != 429:
                # Mattermost itself answered without the headers: rate limiting is off there.
                self._forget()
            return
        now = self._clock()
        resized = allowance.limit != self._limit
        if resized:  # new settings (or the first headers): what we learned before no longer holds
            self._limit, self._bounds = allowance.limit, None
        else:
            self._refill(now)
        bracket = RateBounds.from_answer(allowance, limited=status == 429)
        if bracket is not None:
            self._bounds = bracket if self._bounds is None else self._bounds.narrowed(bracket)
        if call > self._synced or resized:
            # The newest answer so far. The calls in flight when it was sent and those sent after it may have
            # reached the server after it: count them as spent (those that came first are counted twice, safely).
            self._synced = max(self._synced, call)
            counted_later = ahead + (self._sent - 1 - call)
            self._tokens = min(allowance.remaining, self._limit) - counted_later
            self._stamp = now

    def done(self, call: int) -> None:
        """Call number `call` is over, answered or not (a lost call must not count as in flight forever)."""
        self._in_flight.pop(call, None)

    def _delay(self) -> float:
        rate = self.rate
        if rate is None:
            return 0.0
        self._refill(self._clock())
        # Never ask for more than a full bucket holds (a tiny MaxBurst leaves less than the reserve).
        needed = 1 + min(self._reserve, self._limit - 1)
        short = needed - self._tokens
        return short / rate if short > _EPSILON else 0.0

    def _take(self) -> int:
        call = self._sent
        self._sent += 1
        self._in_flight[call] = len(self._in_flight)
        if self._limit:
            self._refill(self._clock())
            self._tokens -= 1
        return call

    def _refill(self, now: float) -> None:
        rate = self.rate
        if rate is not None and now > self._stamp:
            self._tokens = min(float(self._limit), self._tokens + rate * (now - self._stamp))
            self._stamp = now

    def _forget(self) -> None:
        self._limit, self._bounds, self._tokens = 0, None, 0.0
