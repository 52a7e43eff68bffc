"""The reconcile: every listed request reaches the dispatcher's background lane, bounded, retried, coalesced."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import AccessDenied, TransientError
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState
from sidecar.domain.ports import RequestSource, UnreadableRequest
from sidecar.engine.dispatcher import Dispatcher
from sidecar.engine.reconcile import RECONCILE_FINISHED, ReconcileFindings, Reconciler

Listed = AccessRequest | UnreadableRequest


class Progress:
    """Something to await instead of polling: `note()` on every change, `until(condition)` to wait for one."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def note(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()


def _request(request_id: str, state: RequestState = RequestState.PENDING) -> AccessRequest:
    return AccessRequest(id=request_id, user="u@example.com", roles=("editor",), state=state)


class FakeSource:
    """A RequestSource over a list; can fail listings, and block at an item until released."""

    def __init__(self, items: list[Listed]) -> None:
        self.items = items
        self.failures: list[tuple[int, Exception]] = []  # (after how many items, error), one per listing
        self.listings = 0
        self.active = 0
        self.peak_active = 0
        self.yielded = 0
        self.hold: asyncio.Event | None = None  # when set to an unset event, each listing waits on it first
        self.progress = Progress()

    async def list_requests(self) -> AsyncIterator[Listed]:
        self.listings += 1
        self.progress.note()
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            if self.hold is not None:
                await self.hold.wait()
            fail_after, error = self.failures.pop(0) if self.failures else (-1, None)
            for index, item in enumerate(self.items):
                if index == fail_after:
                    assert error is not None
                    raise error
                self.yielded += 1
                self.progress.note()
                yield item
        finally:
            self.active -= 1


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def _reconciler(
    source: RequestSource,
    dispatcher: Dispatcher,
    sleep: FakeSleep | None = None,
    on_finished: Callable[[ReconcileFindings], None] | None = None,
) -> Reconciler:
    fake_sleep = sleep or FakeSleep()
    return Reconciler(
        source,
        dispatcher,
        backoff=lambda: Backoff(0.5, 30.0, rand=lambda: 0.5, sleep=fake_sleep),
        on_finished=on_finished or (lambda findings: None),
    )


class Recorder:
    """A dispatcher handler that records events; `gate` (when given) holds reconcile events until set."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.events: list[RequestEvent] = []
        self.gate = gate
        self.live_done = asyncio.Event()
        self.progress = Progress()

    async def __call__(self, event: RequestEvent) -> None:
        self.events.append(event)
        self.progress.note()
        if event.request_id == "live":
            self.live_done.set()
        elif self.gate is not None:
            await self.gate.wait()


async def test_every_listed_request_is_submitted_as_a_put_of_its_current_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.engine.reconcile")
    approved = _request("r2", RequestState.APPROVED)
    source = FakeSource([_request("r1"), approved])
    handler = Recorder()
    findings: list[ReconcileFindings] = []
    async with Dispatcher(handler) as dispatcher:
        result = await _reconciler(source, dispatcher, on_finished=findings.append).run("start-up")
        # run() returns once its events have been handled, not merely queued.
        assert [e.request_id for e in handler.events] == ["r1", "r2"]
    assert result == ReconcileFindings("start-up", listed=2, submitted=2)
    assert findings == [result]
    assert handler.events[1] == RequestEvent(EventOp.PUT, "r2", approved, listed=True)
    [line] = [r for r in caplog.records if r.getMessage() == RECONCILE_FINISHED]
    assert line.levelno == logging.INFO
    counts = (line.trigger, line.listed, line.submitted, line.skipped, line.retries)  # type: ignore[attr-defined]
    assert counts == ("start-up", 2, 2, 0, 0)


async def test_an_unreadable_request_is_skipped_with_one_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.engine.reconcile")
    source = FakeSource([_request("r1"), UnreadableRequest("bad-1", "unknown access request state 9"), _request("r3")])
    handler = Recorder()
    async with Dispatcher(handler) as dispatcher:
        result = await _reconciler(source, dispatcher).run("reconnect")
    assert result is not None
    assert (result.listed, result.submitted, result.unreadable, result.skipped) == (3, 2, 1, 1)
    assert [e.request_id for e in handler.events] == ["r1", "r3"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "Skipping access request that cannot be read"
    assert (warning.request_id, warning.error) == ("bad-1", "unknown access request state 9")  # type: ignore[attr-defined]


async def test_a_request_listed_twice_while_its_event_waits_is_submitted_once() -> None:
    # Paging while requests change can return one twice; its first event is still queued behind a watch event.
    gate = asyncio.Event()
    started = asyncio.Event()

    async def handler(event: RequestEvent) -> None:
        if event.op is EventOp.DELETE:
            started.set()
            await gate.wait()

    source = FakeSource([_request("r1"), _request("r1")])
    async with Dispatcher(handler) as dispatcher:
        dispatcher.submit(RequestEvent(EventOp.DELETE, "r1"))
        await started.wait()
        run = asyncio.create_task(_reconciler(source, dispatcher).run("start-up"))
        await source.progress.until(lambda: source.yielded == 2)
        gate.set()
        result = await run
    assert result is not None
    assert (result.listed, result.submitted, result.already_queued, result.skipped) == (2, 1, 1, 1)
    assert dispatcher.stats.handled == 2


async def test_listing_advances_only_as_events_finish() -> None:
    gate = asyncio.Event()
    handler = Recorder(gate)
    source = FakeSource([_request(f"r{n}") for n in range(100)])
    async with Dispatcher(handler, background_limit=4, event_timeout=60) as dispatcher:
        run = asyncio.create_task(_reconciler(source, dispatcher).run("start-up"))
        await handler.progress.until(lambda: len(handler.events) == 4)
        for _ in range(10):
            await asyncio.sleep(0)
        # Four events in the lane, and the fifth request in hand waiting for a slot: nothing more was read.
        assert (source.yielded, dispatcher.background_pending, len(handler.events)) == (5, 4, 4)
        gate.set()
        result = await run
    assert result is not None and result.submitted == 100


async def test_a_watch_event_goes_ahead_of_ten_thousand_reconcile_events() -> None:
    gate = asyncio.Event()
    handler = Recorder(gate)
    source = FakeSource([_request(f"r{n}") for n in range(10_000)])
    async with Dispatcher(handler, background_limit=8, event_timeout=60) as dispatcher:
        run = asyncio.create_task(_reconciler(source, dispatcher).run("start-up"))
        await handler.progress.until(lambda: len(handler.events) == 8)
        dispatcher.submit(RequestEvent(EventOp.PUT, "live", _request("live")))
        await handler.live_done.wait()
        # Handled while the first eight reconcile events still run and the ninth request waits for a slot.
        assert (len(handler.events), source.yielded, dispatcher.background_pending) == (9, 9, 8)
        gate.set()
        result = await run
    assert result is not None and result.submitted == 10_000
    assert dispatcher.stats.handled == 10_001


async def test_a_transient_listing_failure_is_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.engine.reconcile")
    source = FakeSource([_request("r1"), _request("r2")])
    source.failures = [(0, TransientError("ListAccessRequests: UNAVAILABLE")), (1, TransientError("cut mid-way"))]
    sleep = FakeSleep()
    handler = Recorder()
    async with Dispatcher(handler) as dispatcher:
        result = await _reconciler(source, dispatcher, sleep).run("start-up")
    assert result is not None
    assert (result.listed, result.submitted, result.retries) == (2, 2, 2)
    assert source.listings == 3
    # Decorrelated jitter with rand=0.5: 0.5 + 0.5·(1.5 − 0.5) = 1.0, then 0.5 + 0.5·(3.0 − 0.5) = 1.75.
    assert sleep.delays == pytest.approx([1.0, 1.75])
    warnings = [(r.getMessage(), r.attempt) for r in caplog.records if r.levelno == logging.WARNING]  # type: ignore[attr-defined]
    assert warnings == [("Reconcile could not list access requests, retrying", n) for n in (1, 2)]
    # r1 from the cut listing, then r1 and r2 again: handling a request twice is harmless.
    assert [e.request_id for e in handler.events] == ["r1", "r1", "r2"]


async def test_a_permanent_failure_ends_the_run_and_the_next_trigger_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="sidecar.engine.reconcile")
    source = FakeSource([_request("r1")])
    source.failures = [(0, AccessDenied("ListAccessRequests: PERMISSION_DENIED"))]
    finished: asyncio.Queue[ReconcileFindings] = asyncio.Queue()
    async with Dispatcher(Recorder()) as dispatcher:
        reconciler = _reconciler(source, dispatcher, on_finished=finished.put_nowait)
        assert await reconciler.run("start-up") is None
        [error] = caplog.records
        assert (error.getMessage(), error.error) == ("Reconcile failed", "ListAccessRequests: PERMISSION_DENIED")  # type: ignore[attr-defined]
        assert error.exc_info is None
        serving = asyncio.create_task(reconciler.serve())
        reconciler.trigger("reconnect")
        assert (await finished.get()).submitted == 1
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert reconciler.runs == 2


async def test_triggers_during_a_run_coalesce_into_one_more_run() -> None:
    source = FakeSource([_request("r1")])
    source.hold = asyncio.Event()
    finished: asyncio.Queue[ReconcileFindings] = asyncio.Queue()
    async with Dispatcher(Recorder()) as dispatcher:
        reconciler = _reconciler(source, dispatcher, on_finished=finished.put_nowait)
        serving = asyncio.create_task(reconciler.serve())
        reconciler.trigger("start-up")
        await source.progress.until(lambda: source.listings == 1)
        for n in range(2, 6):  # four reconnects while the first run is still listing
            reconciler.trigger(f"reconnect {n}")
        source.hold.set()
        assert (await finished.get()).trigger == "start-up"
        assert (await finished.get()).trigger == "reconnect 5"
        reconciler.trigger("later")
        assert (await finished.get()).trigger == "later"
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert source.listings == 3
    assert source.peak_active == 1


async def test_a_dispatcher_shutting_down_ends_the_run_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sidecar.engine.reconcile")
    dispatcher = Dispatcher(Recorder())
    await dispatcher.drain(timeout=1)
    assert await _reconciler(FakeSource([_request("r1")]), dispatcher).run("reconnect") is None
    assert [r.getMessage() for r in caplog.records] == ["Reconcile failed"]
    await dispatcher.close()
