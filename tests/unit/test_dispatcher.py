"""The dispatcher: ordering per request, concurrency cap, deadline, retries, drain and close."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from fakes.stack import handled_events
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import NotFound, RateLimited, TransientError
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState, Review
from sidecar.engine.cas import Cas
from sidecar.engine.dispatcher import EVENT_HANDLED, Dispatcher, Handler
from sidecar.engine.engine import Engine, EngineSettings
from sidecar.logs import JsonFormatter, TextFormatter
from tests.unit.fakes_ports import FakeChat, FakePluginDataStore, FakeRoleLookup


def _event(request_id: str, n: int = 0, op: EventOp = EventOp.PUT) -> RequestEvent:
    if op is EventOp.DELETE:
        return RequestEvent(op, request_id)
    request = AccessRequest(id=request_id, user=f"user-{n}", roles=("editor",), state=RequestState.PENDING)
    return RequestEvent(op, request_id, request)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def _dispatcher(
    handler: Handler,
    sleep: FakeSleep | None = None,
    *,
    max_concurrency: int = 128,
    event_timeout: float = 5.0,
    max_attempts: int = 5,
) -> Dispatcher:
    return Dispatcher(
        handler,
        max_concurrency=max_concurrency,
        event_timeout=event_timeout,
        max_attempts=max_attempts,
        backoff=lambda: Backoff(0.02, 5.0, rand=lambda: 0.5),
        sleep=sleep or FakeSleep(),
    )


async def test_same_request_in_order_different_requests_concurrently() -> None:
    log: list[tuple[str, str, int]] = []
    running: defaultdict[str, int] = defaultdict(int)
    gate = asyncio.Event()
    both_started = asyncio.Event()

    async def handler(event: RequestEvent) -> None:
        assert event.request is not None
        running[event.request_id] += 1
        assert running[event.request_id] == 1, "two events of one request overlapped"
        log.append(("start", event.request_id, int(event.request.user.split("-")[1])))
        if sum(1 for kind, _, _ in log if kind == "start") == 2:
            both_started.set()
        await gate.wait()
        log.append(("end", event.request_id, int(event.request.user.split("-")[1])))
        running[event.request_id] -= 1

    async with _dispatcher(handler) as dispatcher:
        for n in range(5):
            dispatcher.submit(_event("a", n))
            dispatcher.submit(_event("b", n))
        # Both requests are in flight at the same time (concurrency across requests).
        await both_started.wait()
        assert {rid for kind, rid, _ in log if kind == "start"} == {"a", "b"}
        gate.set()
        await dispatcher.join()
    for rid in ("a", "b"):
        assert [n for kind, r, n in log if r == rid and kind == "end"] == [0, 1, 2, 3, 4]
    assert dispatcher.stats.handled == 10


async def test_concurrency_is_capped() -> None:
    active = 0
    peak = 0
    release = asyncio.Event()
    two_running = asyncio.Event()

    async def handler(event: RequestEvent) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active == 2:
            two_running.set()
        await release.wait()
        active -= 1

    async with _dispatcher(handler, max_concurrency=2) as dispatcher:
        for n in range(6):
            dispatcher.submit(_event(f"r{n}"))
        await two_running.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        assert active == 2
        release.set()
        await dispatcher.join()
    assert peak == 2
    assert dispatcher.stats.handled == 6


async def test_transient_errors_are_retried_in_place_keeping_order() -> None:
    calls: list[tuple[str, int]] = []
    failures = {"first": 2}

    async def handler(event: RequestEvent) -> None:
        assert event.request is not None
        calls.append((event.request_id, int(event.request.user.split("-")[1])))
        if event.request.user == "user-0" and failures["first"] > 0:
            failures["first"] -= 1
            raise TransientError("mattermost 503")

    sleep = FakeSleep()
    async with _dispatcher(handler, sleep) as dispatcher:
        dispatcher.submit(_event("a", 0))
        dispatcher.submit(_event("a", 1))
        await dispatcher.join()
    assert calls == [("a", 0), ("a", 0), ("a", 0), ("a", 1)]
    assert dispatcher.stats.retried == 2
    assert dispatcher.stats.handled == 2
    assert dispatcher.stats.failed == 0
    # Decorrelated jitter with rand=0.5: 0.02 + 0.5·(0.06 − 0.02) = 0.04, then 0.02 + 0.5·(0.12 − 0.02) = 0.07.
    assert sleep.delays == pytest.approx([0.04, 0.07])


async def test_rate_limited_waits_retry_after() -> None:
    attempts = 0

    async def handler(event: RequestEvent) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RateLimited("429", retry_after=7.5)

    sleep = FakeSleep()
    async with _dispatcher(handler, sleep) as dispatcher:
        dispatcher.submit(_event("a"))
        await dispatcher.join()
    assert sleep.delays == [7.5]
    assert dispatcher.stats.handled == 1


async def test_retries_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.engine.dispatcher")
    calls = 0

    async def handler(event: RequestEvent) -> None:
        nonlocal calls
        calls += 1
        raise TransientError("still down")

    async with _dispatcher(handler, max_attempts=3) as dispatcher:
        dispatcher.submit(_event("a"))
        await dispatcher.join()
    assert calls == 3
    assert dispatcher.stats.retried == 2
    assert dispatcher.stats.failed == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Failed to process request"]
    assert errors[0].error == "still down"  # type: ignore[attr-defined]
    assert errors[0].attempts == 3  # type: ignore[attr-defined]


async def test_permanent_errors_are_logged_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sidecar.engine.dispatcher")
    seen: list[RequestEvent] = []

    async def handler(event: RequestEvent) -> None:
        seen.append(event)
        raise NotFound("post not found")

    async with _dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a"))
        dispatcher.submit(_event("a", op=EventOp.DELETE))
        await dispatcher.join()
    assert len(seen) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to process request",
        "Failed to process deleted request",
    ]
    first, second = caplog.records
    assert (first.request_id, first.request_op, first.request_state) == ("a", "put", "PENDING")  # type: ignore[attr-defined]
    assert (second.request_op, second.error) == ("delete", "post not found")  # type: ignore[attr-defined]
    assert first.exc_info is None
    assert dispatcher.stats.failed == 2


async def test_unexpected_exception_is_logged_with_traceback_and_worker_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="sidecar.engine.dispatcher")
    handled: list[int] = []

    async def handler(event: RequestEvent) -> None:
        assert event.request is not None
        if event.request.user == "user-0":
            raise ValueError("bug")
        handled.append(1)

    async with _dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a", 0))
        dispatcher.submit(_event("a", 1))
        await dispatcher.join()
    assert handled == [1]
    assert caplog.records[0].exc_info is not None


async def test_every_finished_event_is_logged_once_with_its_outcome(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.engine.dispatcher")
    failures = {"a": 1, "b": 99}  # "a" succeeds on its second run, "b" never does

    async def handler(event: RequestEvent) -> None:
        if event.op is EventOp.PUT and failures.get(event.request_id, 0) > 0:
            failures[event.request_id] -= 1
            raise TransientError("down")

    async with _dispatcher(handler, max_attempts=2) as dispatcher:
        dispatcher.submit(_event("a"))
        dispatcher.submit(_event("a", op=EventOp.DELETE))
        dispatcher.submit(_event("b"))
        await dispatcher.join()
        await dispatcher.submit_background(_event("c"))  # a reconcile event: logged, but not as a watch event
        await dispatcher.join_background()
    finished = sorted(
        (r.request_id, r.request_op, r.outcome, r.attempts, r.source)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == EVENT_HANDLED
    )
    assert finished == [
        ("a", "delete", "succeeded", 1, "watch"),
        ("a", "put", "succeeded", 2, "watch"),
        ("b", "put", "failed", 2, "watch"),
        ("c", "put", "succeeded", 1, "reconcile"),
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.getMessage() == EVENT_HANDLED)
    # The e2e stacks count these lines in the sidecar's log, in either format, to know it is done.
    for formatter in (TextFormatter(), JsonFormatter()):
        log = "\n".join(formatter.format(r) for r in caplog.records)
        assert (handled_events(log, "a"), handled_events(log, "b"), handled_events(log, "")) == (2, 1, 0)
        assert (handled_events(log, "c"), handled_events(log, "c", source="reconcile")) == (0, 1)


async def test_deadline_cuts_a_hung_handler_and_is_retried() -> None:
    calls = 0

    async def handler(event: RequestEvent) -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    async with _dispatcher(handler, event_timeout=0.01, max_attempts=2) as dispatcher:
        dispatcher.submit(_event("a"))
        await dispatcher.join()
    assert calls == 2
    assert dispatcher.stats.failed == 1


async def test_drain_stops_intake_and_finishes_in_flight_work() -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    finished: list[int] = []

    async def handler(event: RequestEvent) -> None:
        assert event.request is not None
        started.set()
        await release.wait()
        finished.append(int(event.request.user.split("-")[1]))

    async with _dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a", 0))
        dispatcher.submit(_event("a", 1))
        await started.wait()
        drain = asyncio.create_task(dispatcher.drain(timeout=30))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="shutting down"):
            dispatcher.submit(_event("b"))
        release.set()
        assert await drain is True
    assert finished == [0, 1]


async def test_drain_timeout_reports_unfinished_and_close_cancels() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(event: RequestEvent) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    dispatcher = _dispatcher(handler, event_timeout=60)
    dispatcher.submit(_event("a"))
    await started.wait()
    assert await dispatcher.drain(timeout=0.01) is False
    await dispatcher.close()
    assert cancelled.is_set()
    assert dispatcher.pending == 0
    await dispatcher.close()  # idempotent


async def test_drain_cuts_retry_waits_short() -> None:
    waiting = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    async def handler(event: RequestEvent) -> None:
        raise TransientError("down")

    dispatcher = Dispatcher(handler, sleep=endless_sleep)
    dispatcher.submit(_event("a"))
    await waiting.wait()
    assert await dispatcher.drain(timeout=30) is True
    assert dispatcher.stats.failed == 1
    assert dispatcher.stats.retried == 1


def test_invalid_settings_are_refused() -> None:
    async def handler(event: RequestEvent) -> None:
        return None

    with pytest.raises(ValueError, match="max_concurrency"):
        Dispatcher(handler, max_concurrency=0)


async def test_engine_behind_dispatcher_handles_interleaved_requests() -> None:
    store = FakePluginDataStore()
    chat = FakeChat(channels={"reviewer1@example.com": "dm-1"})
    engine = Engine(
        store=store,
        roles=FakeRoleLookup({"editor": []}),
        chat=chat,
        settings=EngineSettings(),
        cas=Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=FakeSleep())),
    )
    review = Review("reviewer1@example.com", RequestState.DENIED, "", datetime(2025, 1, 2, tzinfo=UTC))
    ids = [f"req-{n}" for n in range(20)]
    async with _dispatcher(engine.handle) as dispatcher:
        for state, reviews in ((RequestState.PENDING, ()), (RequestState.DENIED, (review,))):
            for rid in ids:
                request = AccessRequest(
                    id=rid,
                    user="u@example.com",
                    roles=("editor",),
                    state=state,
                    suggested_reviewers=("reviewer1@example.com",),
                    reviews=reviews,
                )
                dispatcher.submit(RequestEvent(EventOp.PUT, rid, request))
        await dispatcher.join()
    assert dispatcher.stats.handled == 40 and dispatcher.stats.failed == 0
    assert len(chat.root_posts()) == 20
    assert len(chat.replies()) == 20
    assert len(chat.edits) == 20
    # Per-request order held: every request was announced before its denial was handled.
    assert all(store.entries[rid]["resolution"] == "DENIED" for rid in ids)
    # No logins allowed for the role: Go stores a nil slice, i.e. null.
    assert store.entries["req-0"]["logins_by_role"] == '{"editor":null}'
