"""The watcher: INIT handling, ordering, reconnects and fatal cases, with scripted in-memory streams; and the two
kinds it watches (access requests to the sink, access monitoring rules to the rule feed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import StartupError, TransientError, WatcherError
from sidecar.domain.model import EventOp, RequestEvent, RuleChange
from sidecar.teleport.watcher import Watcher
from sidecar.teleport.wire import access_monitoring_rules_pb2, event_pb2, header_metadata_pb2, types_pb2


def init(*kinds: str) -> event_pb2.Event:
    ev = event_pb2.Event(Type=event_pb2.INIT)
    ev.WatchStatus.Kind = "watch_status"
    for kind in kinds:
        ev.WatchStatus.Spec.Kinds.add(Kind=kind)
    return ev


def delete(request_id: str) -> event_pb2.Event:
    ev = event_pb2.Event(Type=event_pb2.DELETE)
    ev.ResourceHeader.CopyFrom(
        types_pb2.ResourceHeader(Kind="access_request", Version="v3", Metadata=types_pb2.Metadata(Name=request_id))
    )
    return ev


def convert(ev: event_pb2.Event) -> RequestEvent:
    return RequestEvent(EventOp.DELETE, ev.ResourceHeader.Metadata.Name)


class Script:
    """Each call to open() plays the next scripted stream: events, then an optional error (else EOF)."""

    def __init__(self, *streams: tuple[list[event_pb2.Event], BaseException | None]) -> None:
        self.streams = list(streams)
        self.opened = 0
        self.closed = 0

    def open(self) -> AsyncIterator[event_pb2.Event]:
        self.opened += 1
        if not self.streams:
            return self._forever()
        events, error = self.streams.pop(0)
        return self._play(events, error)

    async def _play(self, events: list[event_pb2.Event], error: BaseException | None) -> AsyncIterator[event_pb2.Event]:
        try:
            for ev in events:
                yield ev
            if error is not None:
                raise error
        finally:
            self.closed += 1

    async def _forever(self) -> AsyncIterator[event_pb2.Event]:
        yield init("access_request")
        await asyncio.Event().wait()


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def make(script: Script, seen: list[RequestEvent], **kw: object) -> Watcher:
    async def sink(ev: RequestEvent) -> None:
        seen.append(ev)

    return Watcher(script.open, convert, sink, backoff=Backoff(0.02, 5, sleep=no_sleep), **kw)  # type: ignore[arg-type]


async def run_until(watcher: Watcher, predicate: object, seen: list[RequestEvent]) -> None:
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            while not predicate():  # type: ignore[operator]
                if task.done():
                    task.result()
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_events_after_init_in_order_and_reconnect_after_eof_and_transient() -> None:
    script = Script(
        ([init("access_request"), delete("a"), delete("b")], None),
        ([init("access_request"), delete("c")], TransientError("unavailable")),
        ([init("access_request"), delete("d")], None),
    )
    seen: list[RequestEvent] = []
    watcher = make(script, seen)
    await run_until(watcher, lambda: len(seen) == 4, seen)
    assert [e.request_id for e in seen] == ["a", "b", "c", "d"]
    assert watcher.connections >= 3
    assert script.closed >= 3


async def test_ready_only_after_init() -> None:
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[event_pb2.Event]:
        await gate.wait()
        yield init("access_request")
        await asyncio.Event().wait()

    watcher = Watcher(slow, convert, lambda e: asyncio.sleep(0), backoff=Backoff(0.02, 5, sleep=no_sleep))
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.01)
        assert not watcher.ready.is_set()
        gate.set()
        async with asyncio.timeout(5):
            await watcher.ready.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_missing_access_request_kind_is_fatal() -> None:
    script = Script(([init("access_monitoring_rule")], None))
    watcher = make(script, [])
    with pytest.raises(WatcherError, match="failed to initialize watcher for all the required resources"):
        async with asyncio.timeout(5):
            await watcher.run()


async def test_first_event_not_init_reconnects() -> None:
    script = Script(([delete("x")], None), ([init("access_request"), delete("y")], None))
    seen: list[RequestEvent] = []
    await run_until(make(script, seen), lambda: bool(seen), seen)
    assert [e.request_id for e in seen] == ["y"]


async def test_init_timeout_reconnects() -> None:
    opened: list[int] = []
    second = asyncio.Event()

    async def never() -> AsyncIterator[event_pb2.Event]:
        opened.append(1)
        if len(opened) == 2:
            second.set()
        await asyncio.Event().wait()
        yield init("access_request")

    watcher = Watcher(never, convert, lambda e: asyncio.sleep(0), backoff=Backoff(0.001, 0.001, sleep=no_sleep),
                      init_timeout=0.01)
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            await second.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_fail_fast_makes_stream_loss_fatal() -> None:
    script = Script(([init("access_request")], TransientError("unavailable")))
    watcher = make(script, [], fail_fast=True)
    with pytest.raises(WatcherError, match="TELEPORT_PLUGIN_FAIL_FAST"):
        async with asyncio.timeout(5):
            await watcher.run()


async def test_other_errors_are_fatal() -> None:
    script = Script(([init("access_request")], RuntimeError("boom")))
    watcher = make(script, [])
    with pytest.raises(RuntimeError, match="boom"):
        async with asyncio.timeout(5):
            await watcher.run()


async def test_hooks_run_after_each_init_and_each_lost_stream() -> None:
    script = Script(
        ([init("access_request"), delete("a")], None),
        ([init("access_request"), delete("b")], TransientError("unavailable")),
    )
    seen: list[RequestEvent] = []
    calls: list[str] = []

    async def connected(number: int) -> None:
        # Runs before any event of the new stream reaches the sink.
        calls.append(f"connected {number} after {len(seen)} events")

    async def disconnected() -> None:
        calls.append("disconnected")

    watcher = make(script, seen, on_connected=connected, on_disconnected=disconnected)
    await run_until(watcher, lambda: len(calls) >= 5, seen)
    assert calls[:5] == [
        "connected 1 after 0 events",
        "disconnected",
        "connected 2 after 1 events",
        "disconnected",
        "connected 3 after 2 events",
    ]


async def test_a_failing_hook_does_not_stop_the_watch(caplog: pytest.LogCaptureFixture) -> None:
    script = Script(([init("access_request"), delete("a")], None), ([init("access_request"), delete("b")], None))
    seen: list[RequestEvent] = []

    async def broken(number: int) -> None:
        raise RuntimeError(f"hook bug {number}")

    watcher = make(script, seen, on_connected=broken)
    await run_until(watcher, lambda: len(seen) == 2, seen)
    assert [e.request_id for e in seen] == ["a", "b"]
    failures = [r for r in caplog.records if r.getMessage() == "Watcher hook failed"]
    assert failures and failures[0].error == "hook bug 1"  # type: ignore[attr-defined]


# ---- access monitoring rules ----------------------------------------------------------------------------------

AMR = "access_monitoring_rule"


def rule_put(name: str, kind: str = AMR) -> event_pb2.Event:
    rule = access_monitoring_rules_pb2.AccessMonitoringRule(
        kind=kind, version="v1", metadata=header_metadata_pb2.Metadata(name=name, revision="r1"),
        spec=access_monitoring_rules_pb2.AccessMonitoringRuleSpec(
            subjects=["access_request"], condition="true",
            notification=access_monitoring_rules_pb2.Notification(name="mattermost", recipients=["a@example.com"]),
        ),
    )
    return event_pb2.Event(Type=event_pb2.PUT, AccessMonitoringRule=rule)


def rule_delete(name: str) -> event_pb2.Event:
    header = types_pb2.ResourceHeader(Kind=AMR, Version="v1", Metadata=types_pb2.Metadata(Name=name))
    return event_pb2.Event(Type=event_pb2.DELETE, ResourceHeader=header)


class Feed:
    """A RuleFeed recording what it was told, in one list shared with the sink's events."""

    def __init__(self, log: list[str], fail: list[BaseException] | None = None) -> None:
        self.log = log
        self.fail = list(fail or [])

    async def started(self, connection: int, granted: bool) -> None:
        self.log.append(f"started {connection} granted={granted}")
        if self.fail:
            raise self.fail.pop(0)

    def changed(self, change: RuleChange) -> None:
        self.log.append(f"rule {change.op.value} {change.name}")


def make_with_feed(script: Script, log: list[str], feed: Feed) -> Watcher:
    async def sink(ev: RequestEvent) -> None:
        log.append(f"request {ev.request_id}")

    return Watcher(script.open, convert, sink, backoff=Backoff(0.02, 5, sleep=no_sleep), rules=feed)


async def test_rule_events_go_to_the_feed_and_request_events_to_the_sink_in_stream_order() -> None:
    script = Script(([init("access_request", AMR), rule_put("r1"), delete("a"), rule_delete("r1"), delete("b")], None))
    log: list[str] = []
    watcher = make_with_feed(script, log, Feed(log))
    await run_until(watcher, lambda: "request b" in log, [])
    assert log[:5] == ["started 1 granted=True", "rule put r1", "request a", "rule delete r1", "request b"]


async def test_the_feed_hears_when_rules_are_not_granted() -> None:
    script = Script(([init("access_request"), delete("a")], None))
    log: list[str] = []
    watcher = make_with_feed(script, log, Feed(log))
    await run_until(watcher, lambda: "request a" in log, [])
    assert log[:2] == ["started 1 granted=False", "request a"]


async def test_ready_waits_for_the_rules_and_a_fatal_error_from_the_feed_stops_the_watcher() -> None:
    script = Script(([init("access_request", AMR), delete("a")], None))
    log: list[str] = []
    watcher = make_with_feed(script, log, Feed(log, [StartupError("initializing Access Monitoring Rule cache: no")]))
    with pytest.raises(StartupError, match="initializing Access Monitoring Rule cache"):
        async with asyncio.timeout(5):
            await watcher.run()
    assert not watcher.ready.is_set()
    assert "request a" not in log


async def test_a_transient_error_from_the_feed_reopens_the_stream_which_lists_again() -> None:
    script = Script(
        ([init("access_request", AMR), delete("lost")], None),
        ([init("access_request", AMR), delete("a")], None),
    )
    log: list[str] = []
    watcher = make_with_feed(script, log, Feed(log, [TransientError("unavailable")]))
    await run_until(watcher, lambda: "request a" in log, [])
    assert log[:3] == ["started 1 granted=True", "started 2 granted=True", "request a"]


async def test_r18_a_rule_without_its_kind_is_skipped_and_the_stream_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    script = Script(([init("access_request", AMR), rule_put("no-kind", kind=""), rule_put("ok"), delete("a")], None))
    log: list[str] = []
    watcher = make_with_feed(script, log, Feed(log))
    await run_until(watcher, lambda: "request a" in log, [])
    assert log[:3] == ["started 1 granted=True", "rule put ok", "request a"]
    # The PUT carries a rule, so it is a rule event; its empty kind is refused as Go refuses it.
    skipped = [r for r in caplog.records if r.getMessage() == "Skipping malformed watch event"]
    assert [r.error for r in skipped] == ["expected access_monitoring_rule resource kind, got ''"]  # type: ignore[attr-defined]
