"""The dispatcher: same request strictly in order, different requests concurrently, bounded, nothing lost.

Algorithm (compare Teleport's watcherjob.eventLoop):

* `submit(event)` appends the event to the FIFO of its request id. If that request has no worker, a
  worker task is started for it (tracked in a set; none is left behind by `close`).
* A worker pops its request's events one at a time, so events of one request never overlap or reorder.
  Each run of the handler for a watch event holds one slot of a semaphore (`max_concurrency`, Go's 128);
  every run has its own deadline (`event_timeout`, Go's 5 s). When the FIFO is empty the worker removes it and ends.
* A handler that raises TransientError (or runs out of time; re-running is safe because the engine
  decides from the stored record) is retried in place after a backoff, `RateLimited.retry_after` when
  given, up to `max_attempts` runs; later events of that request wait behind it, keeping the order.
  The semaphore slot is released while waiting. Retries and final failures are counted in `stats`.
* Any other error is final: logged as ERROR `Failed to process request` (or `Failed to process deleted
  request`) with `error`, and the worker moves on to the next event.
* `submit_background(event)` is the background lane (the reconcile's): it waits until fewer than
  `background_limit` background events are queued or running, then appends the event to the same FIFO of its
  request, so it runs in order with that request's watch events. The slot is held until the event has been
  handled or given up on. Background runs do not take the semaphore's slots (they have their own bound), so a
  long reconcile never delays watch events of other requests. A request that already has a background event
  waiting gets no second one: events are idempotent and the waiting one will do.
* Every event that finishes, handled or given up on, is logged once as DEBUG `Event handled` with its
  `outcome` (`succeeded` or `failed`), `attempts` and `source` (`watch`, or the background lane's label such as
  `reconcile`): a test counts the `watch` lines per request to know the sidecar is done with the events the
  watch stream delivered.
* `drain(timeout)` stops intake, cuts retry waits short (no further retries are started), lets queued and
  running events finish, and reports whether everything finished in time. `close()` cancels whatever is
  still running. `async with` closes on exit.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sidecar.domain.backoff import Backoff, Sleep, sleep_unless_stopped
from sidecar.domain.errors import RateLimited, SidecarError, TransientError
from sidecar.domain.model import EventOp, RequestEvent

__all__ = ["EVENT_HANDLED", "SOURCE_RECONCILE", "SOURCE_WATCH", "Dispatcher", "DispatcherStats", "Handler"]

_log = logging.getLogger("sidecar.engine.dispatcher")

Handler = Callable[[RequestEvent], Awaitable[None]]

# Logged once per finished event; the end-to-end stacks count these lines (fakes/stack.py `settled`).
EVENT_HANDLED = "Event handled"
# The `source` field of those lines: where the event came from.
SOURCE_WATCH = "watch"
SOURCE_RECONCILE = "reconcile"
# Go has no reconcile; 8 background events at a time keep a large backlog from flooding Mattermost.
BACKGROUND_LIMIT = 8

# Event retries back off like the watcher reconnect (decorrelated jitter, 20 ms → 5 s).
RETRY_BACKOFF_BASE = 0.02
RETRY_BACKOFF_CAP = 5.0


@dataclass
class DispatcherStats:
    """Counters for metrics and tests."""

    handled: int = 0  # events whose handler finally succeeded
    retried: int = 0  # handler re-runs after a transient error or timeout
    failed: int = 0  # events given up on


@dataclass(frozen=True)
class _Queued:
    event: RequestEvent
    source: str
    background: bool


def _context(item: _Queued) -> dict[str, Any]:
    event = item.event
    context: dict[str, Any] = {"request_id": event.request_id, "request_op": event.op.value}
    if event.request is not None:
        context["request_state"] = event.request.state.value
    context["source"] = item.source
    return context


class Dispatcher:
    """Runs `handler` for submitted events with per-request ordering and a concurrency cap."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_concurrency: int = 128,
        event_timeout: float = 5.0,
        max_attempts: int = 5,
        background_limit: int = BACKGROUND_LIMIT,
        backoff: Callable[[], Backoff] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_concurrency < 1 or max_attempts < 1 or background_limit < 1 or event_timeout <= 0:
            raise ValueError(
                "max_concurrency, max_attempts and background_limit must be >= 1 and event_timeout > 0"
            )
        self._handler = handler
        self._slots = asyncio.Semaphore(max_concurrency)
        self._event_timeout = event_timeout
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._new_backoff = backoff or (lambda: Backoff(RETRY_BACKOFF_BASE, RETRY_BACKOFF_CAP))
        self._queues: dict[str, collections.deque[_Queued]] = {}
        self._background_slots = asyncio.Semaphore(background_limit)
        self._background_waiting: set[str] = set()  # requests with a background event queued, not yet started
        self._background_pending = 0
        self._background_idle = asyncio.Event()
        self._background_idle.set()
        self._workers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.stats = DispatcherStats()

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pending(self) -> int:
        """Events queued or running."""
        return sum(len(queue) for queue in self._queues.values()) + len(self._workers)

    @property
    def background_pending(self) -> int:
        """Background events queued or running (at most `background_limit`)."""
        return self._background_pending

    def submit(self, event: RequestEvent) -> None:
        """Queue a watch event. Raises RuntimeError once drain() or close() has begun."""
        self._check_open()
        self._enqueue(_Queued(event, SOURCE_WATCH, background=False))

    async def submit_background(self, event: RequestEvent, *, source: str = SOURCE_RECONCILE) -> bool:
        """Queue a background event once a background slot is free; `source` labels it in the logs.

        Returns False, queueing nothing, when the request already has a background event waiting to start.
        Raises RuntimeError once drain() or close() has begun, including while waiting for a slot.
        """
        self._check_open()
        if event.request_id in self._background_waiting:
            return False
        await self._background_slots.acquire()
        if self._stopping.is_set() or self._closed or event.request_id in self._background_waiting:
            self._background_slots.release()
            self._check_open()
            return False
        self._background_waiting.add(event.request_id)
        self._background_pending += 1
        self._background_idle.clear()
        self._enqueue(_Queued(event, source, background=True))
        return True

    async def join_background(self) -> None:
        """Wait until no background event is queued or running (returns at once after close())."""
        await self._background_idle.wait()

    def _check_open(self) -> None:
        if self._stopping.is_set() or self._closed:
            raise RuntimeError("dispatcher is shutting down and accepts no more events")

    def _enqueue(self, item: _Queued) -> None:
        request_id = item.event.request_id
        queue = self._queues.get(request_id)
        if queue is not None:
            queue.append(item)
            return
        self._queues[request_id] = collections.deque([item])
        self._idle.clear()
        task = asyncio.create_task(self._work(request_id), name=f"dispatch:{request_id}")
        self._workers.add(task)
        task.add_done_callback(self._forget)

    def _background_finished(self, item: _Queued) -> None:
        """Give back the slot of a background event that was handled, given up on, or dropped by close()."""
        if not item.background:
            return
        self._background_pending -= 1
        self._background_slots.release()
        if self._background_pending == 0:
            self._background_idle.set()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not self._workers:
            self._idle.set()

    async def join(self) -> None:
        """Wait until every submitted event has been handled or given up on."""
        await self._idle.wait()

    async def drain(self, timeout: float) -> bool:
        """Stop intake and let queued and running events finish; True if all finished within `timeout`."""
        self._stopping.set()
        if not self._workers:
            return True
        _done, still_running = await asyncio.wait(set(self._workers), timeout=timeout)
        return not still_running

    async def close(self) -> None:
        """Cancel everything still running and wait for it to stop. Idempotent."""
        self._closed = True
        self._stopping.set()
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        # Workers cancelled before they first ran never reached their `finally`: their events are dropped here.
        for queue in self._queues.values():
            for item in queue:
                self._background_finished(item)
        self._queues.clear()
        self._background_waiting.clear()
        self._background_idle.set()

    async def _work(self, request_id: str) -> None:
        queue = self._queues[request_id]
        try:
            while queue:
                item = queue.popleft()
                if item.background:  # started: a newer background event for the request may queue now
                    self._background_waiting.discard(request_id)
                try:
                    await self._process(item)
                finally:
                    self._background_finished(item)
        finally:
            del self._queues[request_id]
            for item in queue:  # cancelled by close() with events still queued
                self._background_finished(item)

    async def _process(self, item: _Queued) -> None:
        event = item.event
        backoff = self._new_backoff()
        attempt = 0
        while True:
            attempt += 1
            error = await self._run_once(item)
            if error is None:
                self.stats.handled += 1
                _log_finished(item, "succeeded", attempt)
                return
            retryable = isinstance(error, TransientError | TimeoutError)
            if retryable and attempt < self._max_attempts and not self._stopping.is_set():
                self.stats.retried += 1
                _log.warning(
                    "Retrying request event after a transient error",
                    extra={**_context(item), "error": str(error) or type(error).__name__, "attempt": attempt},
                )
                delay = error.retry_after if isinstance(error, RateLimited) else backoff.next_delay()
                if await self._pause(delay):
                    continue
            self.stats.failed += 1
            message = "Failed to process deleted request" if event.op is EventOp.DELETE else "Failed to process request"
            _log.error(
                message,
                extra={**_context(item), "error": str(error) or type(error).__name__, "attempts": attempt},
                exc_info=None if _expected(error) else error,
            )
            _log_finished(item, "failed", attempt)
            return

    async def _run_once(self, item: _Queued) -> Exception | None:
        if item.background:  # bounded by its own slots, so it never holds one a watch event could use
            return await self._call_handler(item.event)
        async with self._slots:
            return await self._call_handler(item.event)

    async def _call_handler(self, event: RequestEvent) -> Exception | None:
        try:
            async with asyncio.timeout(self._event_timeout):
                await self._handler(event)
        except TimeoutError:
            return TimeoutError(f"event handling exceeded its {self._event_timeout:g} s deadline")
        except Exception as exc:  # one bad event must not stop the worker; it is logged by the caller
            return exc
        return None

    async def _pause(self, delay: float) -> bool:
        """Sleep `delay` unless drain/close starts first; True when the full delay passed."""
        return await sleep_unless_stopped(self._sleep, delay, self._stopping)


def _log_finished(item: _Queued, outcome: str, attempts: int) -> None:
    _log.debug(EVENT_HANDLED, extra={**_context(item), "outcome": outcome, "attempts": attempts})


def _expected(error: Exception) -> bool:
    # Errors raised on purpose (the sidecar's own classes, deadlines) need no traceback; anything else is a bug.
    return isinstance(error, SidecarError | TimeoutError)
