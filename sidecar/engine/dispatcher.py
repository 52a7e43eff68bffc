"""The dispatcher: same request strictly in order, different requests concurrently, bounded, nothing lost.

Algorithm (compare Teleport's watcherjob.eventLoop):

* `submit(event)` appends the event to the FIFO of its request id. If that request has no worker, a
  worker task is started for it (tracked in a set; none is left behind by `close`).
* A worker pops its request's events one at a time, so events of one request never overlap or reorder.
  Each run of the handler holds one slot of a semaphore (`max_concurrency`, Go's 128) and has its own
  deadline (`event_timeout`, Go's 5 s). When the FIFO is empty the worker removes it and ends.
* A handler that raises TransientError (or runs out of time; re-running is safe because the engine
  decides from the stored record) is retried in place after a backoff, `RateLimited.retry_after` when
  given, up to `max_attempts` runs; later events of that request wait behind it, keeping the order.
  The semaphore slot is released while waiting. Retries and final failures are counted in `stats`.
* Any other error is final: logged as ERROR `Failed to process request` (or `Failed to process deleted
  request`) with `error`, and the worker moves on to the next event.
* Every event that finishes, handled or given up on, is logged once as DEBUG `Event handled` with its
  `outcome` (`succeeded` or `failed`) and `attempts`: a test can count these lines per request to know the
  sidecar is done with the events it received.
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

__all__ = ["EVENT_HANDLED", "Dispatcher", "DispatcherStats", "Handler"]

_log = logging.getLogger("sidecar.engine.dispatcher")

Handler = Callable[[RequestEvent], Awaitable[None]]

# Logged once per finished event; the end-to-end stacks count these lines (fakes/stack.py `settled`).
EVENT_HANDLED = "Event handled"

# Event retries back off like the watcher reconnect (decorrelated jitter, 20 ms → 5 s).
RETRY_BACKOFF_BASE = 0.02
RETRY_BACKOFF_CAP = 5.0


@dataclass
class DispatcherStats:
    """Counters for metrics and tests."""

    handled: int = 0  # events whose handler finally succeeded
    retried: int = 0  # handler re-runs after a transient error or timeout
    failed: int = 0  # events given up on


def _context(event: RequestEvent) -> dict[str, Any]:
    context: dict[str, Any] = {"request_id": event.request_id, "request_op": event.op.value}
    if event.request is not None:
        context["request_state"] = event.request.state.value
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
        backoff: Callable[[], Backoff] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_concurrency < 1 or max_attempts < 1 or event_timeout <= 0:
            raise ValueError("max_concurrency and max_attempts must be >= 1 and event_timeout > 0")
        self._handler = handler
        self._slots = asyncio.Semaphore(max_concurrency)
        self._event_timeout = event_timeout
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._new_backoff = backoff or (lambda: Backoff(RETRY_BACKOFF_BASE, RETRY_BACKOFF_CAP))
        self._queues: dict[str, collections.deque[RequestEvent]] = {}
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

    def submit(self, event: RequestEvent) -> None:
        """Queue an event. Raises RuntimeError once drain() or close() has begun."""
        if self._stopping.is_set() or self._closed:
            raise RuntimeError("dispatcher is shutting down and accepts no more events")
        queue = self._queues.get(event.request_id)
        if queue is not None:
            queue.append(event)
            return
        self._queues[event.request_id] = collections.deque([event])
        self._idle.clear()
        task = asyncio.create_task(self._work(event.request_id), name=f"dispatch:{event.request_id}")
        self._workers.add(task)
        task.add_done_callback(self._forget)

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
        self._queues.clear()

    async def _work(self, request_id: str) -> None:
        queue = self._queues[request_id]
        try:
            while queue:
                await self._process(queue.popleft())
        finally:
            del self._queues[request_id]

    async def _process(self, event: RequestEvent) -> None:
        backoff = self._new_backoff()
        attempt = 0
        while True:
            attempt += 1
            error = await self._run_once(event)
            if error is None:
                self.stats.handled += 1
                _log_finished(event, "succeeded", attempt)
                return
            retryable = isinstance(error, TransientError | TimeoutError)
            if retryable and attempt < self._max_attempts and not self._stopping.is_set():
                self.stats.retried += 1
                _log.warning(
                    "Retrying request event after a transient error",
                    extra={**_context(event), "error": str(error) or type(error).__name__, "attempt": attempt},
                )
                delay = error.retry_after if isinstance(error, RateLimited) else backoff.next_delay()
                if await self._pause(delay):
                    continue
            self.stats.failed += 1
            message = "Failed to process deleted request" if event.op is EventOp.DELETE else "Failed to process request"
            _log.error(
                message,
                extra={**_context(event), "error": str(error) or type(error).__name__, "attempts": attempt},
                exc_info=None if _expected(error) else error,
            )
            _log_finished(event, "failed", attempt)
            return

    async def _run_once(self, event: RequestEvent) -> Exception | None:
        async with self._slots:
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


def _log_finished(event: RequestEvent, outcome: str, attempts: int) -> None:
    _log.debug(EVENT_HANDLED, extra={**_context(event), "outcome": outcome, "attempts": attempts})


def _expected(error: Exception) -> bool:
    # Errors raised on purpose (the sidecar's own classes, deadlines) need no traceback; anything else is a bug.
    return isinstance(error, SidecarError | TimeoutError)
