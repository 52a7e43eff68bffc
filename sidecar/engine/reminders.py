"""Reminders and escalation for requests nobody decides: when they are due, what they change, and the timer.

    due times    reminder 1 is due `after` the announcement (the record's `since`), each next one `every` after
                 the previous was made owed, at most `max`; the escalation `escalate_after` the announcement
    advance      pure: record + now → the record with the next reminder round made owed (one per call, so a
                 sidecar back from a long outage catches up one `every` at a time instead of posting a burst),
                 and the escalation recipients added to the root posts owed (once)
    DueTimer     one timer per request, armed by the engine after every event with the record's next due time;
                 when it fires, a RESUME event for the request goes through the dispatcher, and the engine
                 advances the record with compare-and-swap, so replicas and restarts neither skip nor repeat
                 a reminder (the count is in the record); at start-up the reconcile's events re-arm them

Only pending requests get reminders: a resolution or an expiry stops them, and a timer firing later finds
nothing due. Times are unix milliseconds from the engine's injected clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.domain.backoff import Sleep
from sidecar.domain.model import EventOp, RequestEvent
from sidecar.domain.record import PluginData, Resolution

__all__ = ["DueTimer", "ReminderSettings", "advance", "escalation_due_ms", "next_due_ms", "reminder_due_ms"]

_log = logging.getLogger("sidecar.engine.reminders")


@dataclass(frozen=True)
class ReminderSettings:
    """`[reminders]` in seconds; `after` None: no reminders; no `escalate_to`: no escalation."""

    after: float | None = None
    every: float | None = None  # default `after`
    max: int = 3
    escalate_to: tuple[str, ...] = ()
    escalate_after: float | None = None

    @property
    def enabled(self) -> bool:
        """True when reminders or an escalation can ever be due."""
        return (self.after is not None and self.max > 0) or (bool(self.escalate_to) and self.escalate_after is not None)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _undecided(record: PluginData) -> bool:
    # A record the Go plugin made has no announcement time of ours: nothing to count from.
    delivery = record.delivery
    return delivery.tracked and delivery.since_ms > 0 and record.resolution is Resolution.UNRESOLVED


def reminder_due_ms(record: PluginData, settings: ReminderSettings) -> int | None:
    """When the next reminder round is due, or None (none configured, all sent, no thread to remind in)."""
    delivery = record.delivery
    if settings.after is None or delivery.reminder_rounds >= settings.max or not record.messages:
        return None
    if not _undecided(record):
        return None
    if delivery.reminder_rounds == 0:
        return delivery.since_ms + _ms(settings.after)
    return delivery.reminder_last_ms + _ms(settings.every if settings.every is not None else settings.after)


def escalation_due_ms(record: PluginData, settings: ReminderSettings) -> int | None:
    """When the request is to be escalated, or None (no escalation configured, done already, or decided)."""
    if not settings.escalate_to or settings.escalate_after is None or record.delivery.escalated:
        return None
    if not _undecided(record):
        return None
    return record.delivery.since_ms + _ms(settings.escalate_after)


def next_due_ms(record: PluginData, settings: ReminderSettings) -> int | None:
    """The earliest time something is due for the record, or None."""
    due = [t for t in (reminder_due_ms(record, settings), escalation_due_ms(record, settings)) if t is not None]
    return min(due) if due else None


def advance(record: PluginData, now_ms: int, settings: ReminderSettings) -> PluginData | None:
    """The record with what is due at `now_ms` made owed, or None when nothing is due."""
    delivery = record.delivery
    changed = delivery
    reminder = reminder_due_ms(record, settings)
    if reminder is not None and now_ms >= reminder:
        changed = dataclasses.replace(changed, reminder_rounds=delivery.reminder_rounds + 1, reminder_last_ms=now_ms)
    escalation = escalation_due_ms(record, settings)
    if escalation is not None and now_ms >= escalation:
        new = tuple(r for r in settings.escalate_to if r not in delivery.roots_owed)
        changed = dataclasses.replace(
            changed,
            escalated=True,
            roots_owed=(*changed.roots_owed, *new),
            escalation_owed=(*changed.escalation_owed, *new),
        )
    return dataclasses.replace(record, delivery=changed) if changed is not delivery else None


class DueTimer:
    """Submits a RESUME for a request when its next reminder or escalation is due; one timer per request.

    `arm` replaces a later timer with an earlier one and keeps an earlier one (when it fires, the engine arms
    the next); `arm(request_id, None)` cancels. `clock` is wall-clock seconds, `sleep` injectable for tests.
    """

    def __init__(
        self,
        submit: Callable[[RequestEvent], None],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._submit = submit
        self._clock = clock
        self._sleep = sleep
        self._timers: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests with a timer armed."""
        return len(self._timers)

    def due(self, request_id: str) -> float | None:
        """When the request's timer fires (wall-clock seconds), or None."""
        armed = self._timers.get(request_id)
        return armed[0] if armed is not None else None

    def arm(self, request_id: str, at: float | None) -> None:
        """Fire a RESUME for the request at `at` (wall-clock seconds); None cancels its timer."""
        if self._closed:
            return
        armed = self._timers.get(request_id)
        if armed is not None:
            if at is not None and armed[0] <= at:
                return
            armed[1].cancel()
            del self._timers[request_id]
        if at is None:
            return
        task = asyncio.create_task(self._fire(request_id, at), name=f"due:{request_id}")
        self._timers[request_id] = (at, task)

    async def _fire(self, request_id: str, at: float) -> None:
        await self._sleep(max(at - self._clock(), 0.0))
        armed = self._timers.get(request_id)
        if armed is not None and armed[0] == at:
            del self._timers[request_id]
        try:
            self._submit(RequestEvent(EventOp.RESUME, request_id))
        except RuntimeError as exc:  # shutting down: the record keeps the schedule for the next start
            _log.debug("Reminder not handled: %s", exc, extra={"request_id": request_id})

    async def close(self) -> None:
        """Cancel every timer (the schedule stays in plugin data). Idempotent."""
        self._closed = True
        tasks = [task for _, task in self._timers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()
