"""Retry policy for Mattermost calls: bounded attempts with decorrelated-jitter backoff.

Which calls may be retried is the client's decision (GET/PUT always, POST only when idempotent);
this module only answers "how many times" and "how long to wait".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

Uniform = Callable[[float, float], float]


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` counts the first try; delays follow decorrelated jitter between `base` and `cap` seconds."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 5.0
    uniform: Uniform = field(default=random.uniform, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 < self.base <= self.cap:
            raise ValueError("RetryPolicy needs 0 < base <= cap")

    def next_delay(self, previous: float) -> float:
        """The wait before the next attempt, given the previous wait (0 before the first retry)."""
        upper = max(self.base, previous * 3)
        return min(self.cap, self.uniform(self.base, upper))


NO_RETRY = RetryPolicy(attempts=1)
