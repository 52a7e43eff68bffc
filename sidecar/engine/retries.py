"""Retries of owed work: one timer per request, jittered exponential backoff, until nothing is owed.

When a step fails for a transient reason it stays owed in the record; the engine then asks for a retry
here, and after the backoff a RESUME event for the request is submitted (through the dispatcher, so it is
ordered with the request's other events). Success resets the request's backoff. There is no attempt limit:
the work is retried until it succeeds, fails permanently, or the request is gone (nothing is owed then).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from sidecar.domain.backoff import Backoff, Sleep
from sidecar.domain.model import EventOp, RequestEvent

__all__ = ["RetryScheduler"]

_log = logging.getLogger("sidecar.engine.retries")

#: Decorrelated jitter from 1 s up to 5 min between attempts of one request's owed work.
RETRY_BASE = 1.0
RETRY_CAP = 300.0


class RetryScheduler:
    """Submits a RESUME for a request after its backoff; at most one pending timer per request."""

    def __init__(
        self,
        submit: Callable[[RequestEvent], None],
        *,
        base: float = RETRY_BASE,
        cap: float = RETRY_CAP,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._submit = submit
        self._base = base
        self._cap = cap
        self._sleep = sleep
        self._rand = rand
        self._backoffs: dict[str, Backoff] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests with a retry waiting."""
        return len(self._timers)

    def schedule(self, request_id: str, *, delay: float | None = None) -> None:
        """Retry the request's owed work after its next backoff (or after `delay` seconds, when given)."""
        if self._closed or request_id in self._timers:
            return
        backoff = self._backoffs.setdefault(
            request_id, Backoff(self._base, self._cap, rand=self._rand, sleep=self._sleep)
        )
        wait = backoff.next_delay() if delay is None else delay
        self._timers[request_id] = asyncio.create_task(self._fire(request_id, wait), name=f"retry:{request_id}")

    def succeeded(self, request_id: str) -> None:
        """Nothing is owed any more: forget the request's backoff."""
        self._backoffs.pop(request_id, None)

    async def _fire(self, request_id: str, wait: float) -> None:
        try:
            await self._sleep(wait)
        finally:
            self._timers.pop(request_id, None)
        try:
            self._submit(RequestEvent(EventOp.RESUME, request_id))
        except RuntimeError as exc:  # the dispatcher is shutting down: the record keeps the work for next time
            _log.debug("Owed work not retried: %s", exc, extra={"request_id": request_id})

    async def close(self) -> None:
        """Cancel every pending retry (the work stays owed in plugin data). Idempotent."""
        self._closed = True
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._timers.clear()
