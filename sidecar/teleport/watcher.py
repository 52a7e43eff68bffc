"""The watcher: one WatchEvents stream at a time (access requests and access monitoring rules), reconnecting.

Algorithm (Go `watcherjob` semantics, with the sidecar's improvements):
1. Open a stream (the caller's opener names the kinds: `access_request`, and `access_monitoring_rule` when
   routing by rules) with AllowPartialSuccess. The first event must be INIT and must arrive within
   `init_timeout` (15 s); its WatchStatus lists the kinds the server accepted. If `access_request` is not
   among them the watcher cannot work at all: that is fatal.
2. With a `rules` feed, `rules.started(connection, granted)` runs next, before any event of the stream is
   read: `granted` says whether `access_monitoring_rule` was accepted, and the feed lists the rules (so a
   request that follows a rule in the stream is routed with it). A FatalError it raises stops the watcher (a
   plugin that cannot load its rules at start-up must not run, as in Go); a TransientError re-opens the
   stream, which lists again.
3. Then the watcher is ready. Every later event goes by its kind: an access monitoring rule change to
   `rules.changed` (applied at once, in stream order), anything else is converted to a RequestEvent and
   handed to `sink` (the dispatcher), which queues it and returns at once, so a slow handler never stalls
   the stream. An event that cannot be converted is logged and skipped.
4. A stream that ends (EOF) or fails with a transient error is re-opened after a decorrelated-jitter
   backoff (20 ms .. 5 s, reset after each successful start). With `fail_fast` (TELEPORT_PLUGIN_FAIL_FAST)
   these become fatal instead, for parity with the Go plugin. Any other error is fatal.
Existing requests are not replayed by the stream (as in Go): `on_connected` runs after every INIT, so the
caller can list what the stream did not deliver (the reconcile), and `on_disconnected` when a stream is lost.
Both default to doing nothing; an error raised by either is logged, never fatal to the watch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import SidecarError, TransientError, WatcherError
from sidecar.domain.model import RequestEvent, RuleChange
from sidecar.teleport.convert import KIND_ACCESS_MONITORING_RULE, event_kind, rule_change_from_proto
from sidecar.teleport.wire import event_pb2

log = logging.getLogger("sidecar.watcher")

ACCESS_REQUEST_KIND = "access_request"

StreamOpener = Callable[[], AsyncIterator[event_pb2.Event]]
EventSink = Callable[[RequestEvent], Awaitable[None]]
Converter = Callable[[event_pb2.Event], RequestEvent]
#: Called with the number of the connection (1 for the first) once its INIT has arrived.
ConnectedHook = Callable[[int], Awaitable[None]]
DisconnectedHook = Callable[[], Awaitable[None]]


class RuleFeed(Protocol):
    """Where access monitoring rule news goes (sidecar/engine/rule_cache.py RuleSync)."""

    async def started(self, connection: int, granted: bool) -> None:
        """A stream's INIT arrived; `granted` is whether it watches access_monitoring_rule. May list the rules.

        Raises FatalError to stop the watcher, TransientError to re-open the stream.
        """
        ...

    def changed(self, change: RuleChange) -> None:
        """A rule was written or deleted."""
        ...


async def _nothing(*_: object) -> None:
    return None


class Watcher:
    """Keeps one watch stream open and feeds converted events to the sink."""

    def __init__(
        self,
        open_stream: StreamOpener,
        convert: Converter,
        sink: EventSink,
        *,
        backoff: Backoff,
        init_timeout: float = 15.0,
        fail_fast: bool = False,
        on_connected: ConnectedHook = _nothing,
        on_disconnected: DisconnectedHook = _nothing,
        rules: RuleFeed | None = None,
    ) -> None:
        self._rules = rules
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._open_stream = open_stream
        self._convert = convert
        self._sink = sink
        self._backoff = backoff
        self._init_timeout = init_timeout
        self._fail_fast = fail_fast
        self.ready = asyncio.Event()
        self.connections = 0

    async def run(self) -> None:
        """Watch until cancelled; raises WatcherError when the watcher cannot go on."""
        while True:
            try:
                await self._run_stream()
                problem = "Watcher stream closed attempting to reconnect"
                cause: BaseException | None = None
            except TransientError as exc:
                problem = "Connection problem detected, attempting to reconnect"
                cause = exc
            if self._fail_fast:
                raise WatcherError(f"watch stream lost and TELEPORT_PLUGIN_FAIL_FAST is set: {cause or 'EOF'}")
            log.error(problem, extra={"error": str(cause)} if cause else {})
            self.ready.clear()
            await self._call_hook("on_disconnected", self._on_disconnected())
            await self._backoff.wait()

    async def _run_stream(self) -> None:
        stream = self._open_stream()
        try:
            try:
                async with asyncio.timeout(self._init_timeout):
                    first = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TransientError("watcher initialization timed out") from None
            granted = self._check_init(first)
            self.connections += 1
            log.debug("Watcher connected", extra={"kinds": sorted(granted)})
            if self._rules is not None:
                await self._rules.started(self.connections, KIND_ACCESS_MONITORING_RULE in granted)
            self._backoff.reset()
            self.ready.set()
            await self._call_hook("on_connected", self._on_connected(self.connections))
            async for event in stream:
                if event.Type == event_pb2.INIT:
                    raise TransientError("unexpected second INIT event on the watch stream")
                await self._dispatch(event)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _dispatch(self, event: event_pb2.Event) -> None:
        try:
            if self._rules is not None and event_kind(event) == KIND_ACCESS_MONITORING_RULE:
                self._rules.changed(rule_change_from_proto(event))
                return
            converted = self._convert(event)
        except SidecarError as exc:
            # A malformed event must not kill the stream; the next PUT for the resource carries it all.
            log.error("Skipping malformed watch event", extra={"error": str(exc)})
            return
        await self._sink(converted)

    @staticmethod
    async def _call_hook(name: str, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception as exc:  # a hook's bug must not stop the watch; it is reported instead
            log.error("Watcher hook failed", extra={"hook": name, "error": str(exc) or type(exc).__name__})

    @staticmethod
    def _check_init(first: event_pb2.Event) -> set[str]:
        if first.Type != event_pb2.INIT:
            raise TransientError(f"expected the INIT event first, got {event_pb2.Operation.Name(first.Type)}")
        accepted = {k.Kind for k in first.WatchStatus.Spec.Kinds} if first.HasField("WatchStatus") else set()
        if ACCESS_REQUEST_KIND not in accepted:
            raise WatcherError(
                "failed to initialize watcher for all the required resources: "
                f"the server did not confirm {ACCESS_REQUEST_KIND!r} (confirmed: {sorted(accepted) or 'none'})"
            )
        return accepted
