"""Retry policy for Mattermost calls: bounded attempts, waits from the shared decorrelated-jitter `Backoff`.

Which calls may be retried is the client's decision (GET/PUT always, POST only when idempotent);
this module only answers "how many times" and "how long to wait".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.domain.backoff import Backoff, Sleep


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` counts the first try; waits between attempts grow from `base` to `cap` seconds.

    `rate_limited_attempts` bounds how many 429 answers one call waits out (each pause lasts as long as the
    server asks); they do not count as failed attempts.
    """

    attempts: int = 4
    rate_limited_attempts: int = 30
    base: float = 0.2
    cap: float = 5.0
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.rate_limited_attempts < 1:
            raise ValueError("RetryPolicy.attempts and rate_limited_attempts must be at least 1")
        if not 0 < self.base <= self.cap:
            raise ValueError("RetryPolicy needs 0 < base <= cap")

    def backoff(self, sleep: Sleep) -> Backoff:
        """A fresh backoff sequence for one logical call."""
        return Backoff(self.base, self.cap, rand=self.rand, sleep=sleep)


NO_RETRY = RetryPolicy(attempts=1, rate_limited_attempts=1)
