"""The dispatcher's background lane (the reconcile's): bounded, in order with watch events, never in their way."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fakes.stack import handled_events
from sidecar.domain.errors import NotFound
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState
from sidecar.engine.dispatcher import EVENT_HANDLED, SOURCE_RECONCILE, Dispatcher
from sidecar.logs import JsonFormatter, TextFormatter


def _event(request_id: str, label: str = "") -> RequestEvent:
    request = AccessRequest(id=request_id, user=label or request_id, roles=("editor",), state=RequestState.PENDING)
    return RequestEvent(EventOp.PUT, request_id, request)


def _label(event: RequestEvent) -> str:
    assert event.request is not None
    return event.request.user


class Gated:
    """A handler that blocks the events it is told to until `gate` opens, and records what ran and when."""

    def __init__(self, blocked: set[str] | None = None) -> None:
        self.gate = asyncio.Event()
        self.blocked = blocked  # labels that wait for the gate; None = every event
        self.started: list[str] = []
        self.finished: list[str] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: RequestEvent) -> None:
        label = _label(event)
        self.started.append(label)
        self.changed.set()
        if self.blocked is None or label in self.blocked:
            await self.gate.wait()
        self.finished.append(label)
        self.changed.set()

    async def until(self, condition: object) -> None:
        assert callable(condition)
        while not condition():
            self.changed.clear()
            await self.changed.wait()


async def _feed(dispatcher: Dispatcher, events: list[RequestEvent], fed: list[str]) -> None:
    for event in events:
        if await dispatcher.submit_background(event):
            fed.append(event.request_id)


async def test_at_most_k_background_events_are_queued_or_running() -> None:
    handler = Gated()
    seen_pending: list[int] = []  # the lane's occupancy each time an event starts

    async def measuring(event: RequestEvent) -> None:
        seen_pending.append(dispatcher.background_pending)
        await handler(event)

    async with Dispatcher(measuring, background_limit=3, event_timeout=60) as dispatcher:
        fed: list[str] = []
        feeder = asyncio.create_task(_feed(dispatcher, [_event(f"r{n}") for n in range(10)], fed))
        await handler.until(lambda: len(handler.started) == 3)
        for _ in range(10):  # the feeder had every chance to run on: it is held at the bound
            await asyncio.sleep(0)
        assert (len(fed), dispatcher.background_pending) == (3, 3)
        handler.gate.set()
        await feeder
        await dispatcher.join_background()
    assert max(seen_pending) == 3
    assert sorted(handler.finished) == sorted(f"r{n}" for n in range(10))
    assert dispatcher.background_pending == 0
    assert dispatcher.stats.handled == 10


async def test_a_watch_event_is_handled_while_ten_thousand_background_events_wait() -> None:
    live_done = asyncio.Event()
    eight_running = asyncio.Event()
    running = 0

    async def handler(event: RequestEvent) -> None:
        nonlocal running
        if event.request_id == "live":
            live_done.set()
            return
        running += 1
        if running == 8:
            eight_running.set()
        await gate.wait()

    gate = asyncio.Event()
    # Only 2 slots for watch events, 8 background events running: the background lane takes none of them.
    async with Dispatcher(handler, max_concurrency=2, background_limit=8, event_timeout=60) as dispatcher:
        fed: list[str] = []
        feeder = asyncio.create_task(_feed(dispatcher, [_event(f"r{n}") for n in range(10_000)], fed))
        await eight_running.wait()
        dispatcher.submit(_event("live"))
        await live_done.wait()
        assert (len(fed), dispatcher.background_pending, dispatcher.stats.handled) == (8, 8, 1)
        gate.set()
        await feeder
        await dispatcher.join_background()
    assert len(fed) == 10_000
    assert dispatcher.stats.handled == 10_001


async def test_background_events_keep_their_place_in_the_request_fifo() -> None:
    handler = Gated(blocked={"w1"})
    async with Dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a", "w1"))
        await handler.until(lambda: handler.started == ["w1"])
        assert await dispatcher.submit_background(_event("a", "b1")) is True
        dispatcher.submit(_event("a", "w2"))
        dispatcher.submit(_event("other", "o1"))  # another request is not held up by any of it
        await handler.until(lambda: "o1" in handler.finished)
        assert handler.finished == ["o1"]
        handler.gate.set()
        await dispatcher.join()
    assert handler.finished == ["o1", "w1", "b1", "w2"]


async def test_a_second_background_event_waits_only_once_the_first_has_started() -> None:
    handler = Gated(blocked={"w1", "b2"})
    async with Dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a", "w1"))
        await handler.until(lambda: handler.started == ["w1"])
        assert await dispatcher.submit_background(_event("a", "b1")) is True
        assert await dispatcher.submit_background(_event("a", "b-dup")) is False  # b1 has not started yet
        assert dispatcher.background_pending == 1
        handler.gate.set()
        await handler.until(lambda: handler.finished == ["w1", "b1"])
        handler.gate.clear()
        assert await dispatcher.submit_background(_event("a", "b2")) is True
        await handler.until(lambda: handler.started[-1] == "b2")
        # b2 is running: a newer snapshot may queue behind it.
        assert await dispatcher.submit_background(_event("a", "b3")) is True
        handler.gate.set()
        await dispatcher.join_background()
    assert handler.finished == ["w1", "b1", "b2", "b3"]


async def test_a_failed_background_event_gives_its_slot_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.engine.dispatcher")
    handled: list[str] = []

    async def handler(event: RequestEvent) -> None:
        if event.request_id == "bad":
            raise NotFound("gone")
        handled.append(event.request_id)

    async with Dispatcher(handler, background_limit=1) as dispatcher:
        assert await dispatcher.submit_background(_event("bad")) is True
        assert await dispatcher.submit_background(_event("good")) is True  # waited for the failed one's slot
        await dispatcher.join_background()
    assert handled == ["good"]
    assert (dispatcher.stats.failed, dispatcher.stats.handled) == (1, 1)
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert (failure.getMessage(), failure.source) == ("Failed to process request", SOURCE_RECONCILE)  # type: ignore[attr-defined]


async def test_shutdown_refuses_background_events_and_releases_waiters() -> None:
    handler = Gated()
    dispatcher = Dispatcher(handler, background_limit=1, event_timeout=60)
    assert await dispatcher.submit_background(_event("a")) is True
    await handler.until(lambda: handler.started == ["a"])
    waiting = asyncio.create_task(dispatcher.submit_background(_event("b")))
    joined = asyncio.create_task(dispatcher.join_background())
    await asyncio.sleep(0)
    assert not waiting.done() and not joined.done()
    drain = asyncio.create_task(dispatcher.drain(timeout=30))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="shutting down"):
        await dispatcher.submit_background(_event("c"))
    handler.gate.set()
    assert await drain is True
    with pytest.raises(RuntimeError, match="shutting down"):
        await waiting  # its slot came free only after the drain began
    await joined
    await dispatcher.close()
    assert handler.finished == ["a"]
    assert dispatcher.background_pending == 0


async def test_close_drops_queued_background_events_and_their_slots() -> None:
    handler = Gated()
    dispatcher = Dispatcher(handler, background_limit=4, event_timeout=60)
    dispatcher.submit(_event("a", "w1"))
    for label in ("b1", "b2"):
        await dispatcher.submit_background(_event(label))
    await dispatcher.submit_background(_event("a", "b3"))  # queued behind w1
    await handler.until(lambda: len(handler.started) == 3)
    await dispatcher.close()
    assert dispatcher.background_pending == 0
    await dispatcher.join_background()  # returns at once: nothing is left to wait for
    assert handler.finished == []


async def test_handled_lines_say_where_the_event_came_from(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.engine.dispatcher")

    async def handler(event: RequestEvent) -> None:
        return None

    async with Dispatcher(handler) as dispatcher:
        dispatcher.submit(_event("a"))
        await dispatcher.join()
        await dispatcher.submit_background(_event("a"))
        await dispatcher.join_background()
        dispatcher.submit(_event("a"))
        await dispatcher.join()
    lines = [r for r in caplog.records if r.getMessage() == EVENT_HANDLED]
    assert [r.source for r in lines] == ["watch", SOURCE_RECONCILE, "watch"]  # type: ignore[attr-defined]
    # The e2e barrier compares watch events with what the fake Auth sent; the reconcile's are counted apart.
    for formatter in (TextFormatter(), JsonFormatter()):
        log = "\n".join(formatter.format(r) for r in caplog.records)
        assert (handled_events(log, "a"), handled_events(log, "a", source=SOURCE_RECONCILE)) == (2, 1)


def test_background_limit_must_be_positive() -> None:
    async def handler(event: RequestEvent) -> None:
        return None

    with pytest.raises(ValueError, match="background_limit"):
        Dispatcher(handler, background_limit=0)
