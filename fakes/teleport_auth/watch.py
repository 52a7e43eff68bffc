"""Watch fan-out: every watcher gets the events that match its kinds, in publication order.

Each watcher has its own bounded queue, so a slow watcher never blocks the publisher or other watchers. When a
watcher's queue overflows it is closed with a ConnectionProblem (UNAVAILABLE), as Teleport's fanout closes a
watcher that falls behind; the client is expected to reconnect and resynchronise.

The fan-out also counts, per request, the events it has handed to watch streams (queued for a watcher and not
discarded when that watcher closed): the admin API reports them, so a test can wait until a client has
finished with every event it was sent.

While `losing_events` is set (the admin API's lose-events fault) the fan-out drops every event instead of
queueing it, as if the stream had carried it into a process that died: the watchers stay open and see nothing,
the drops are counted in `lost` and never in the per-request count.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.teleport.wire import event_pb2, types_pb2

from .errors import AuthError, BadParameter, ConnectionProblem

KIND_ACCESS_REQUEST = "access_request"
SUPPORTED_KINDS = frozenset({KIND_ACCESS_REQUEST})
DEFAULT_QUEUE_SIZE = 1024

_FILTER_KEYS = ("id", "user", "state")


@dataclass(frozen=True)
class RequestFilter:
    """An `access_request` watch filter (Teleport `AccessRequestFilter.FromMap`)."""

    id: str = ""
    user: str = ""
    state: types_pb2.RequestState.ValueType = types_pb2.NONE

    @classmethod
    def from_map(cls, values: Mapping[str, str]) -> RequestFilter:
        """Parse the WatchKind filter map; keys other than id/user/state are a BadParameter."""
        for key in values:
            if key not in _FILTER_KEYS:
                raise BadParameter(f'unknown filter key "{key}" for kind "{KIND_ACCESS_REQUEST}"')
        state_name = values.get("state", "")
        state = types_pb2.NONE
        if state_name:
            try:
                state = types_pb2.RequestState.Value(state_name)
            except ValueError:
                raise BadParameter(f'unknown request state "{state_name}"') from None
        return cls(id=values.get("id", ""), user=values.get("user", ""), state=state)

    def matches(self, request: types_pb2.AccessRequestV3, deleted: bool = False) -> bool:
        """Whether a request event passes this filter.

        A DELETE is matched on id and user only: a watcher filtering on a state still learns that a request it
        saw has gone.
        """
        if self.id and request.Metadata.Name != self.id:
            return False
        if self.user and request.Spec.User != self.user:
            return False
        return deleted or self.state == types_pb2.NONE or request.Spec.State == self.state


class Watcher:
    """One subscriber: a bounded queue of events, closed with an error on overflow or when dropped."""

    def __init__(self, fanout: Fanout, filters: list[RequestFilter], maxsize: int) -> None:
        self._fanout = fanout
        self._filters = filters
        self._queue: asyncio.Queue[event_pb2.Event | None] = asyncio.Queue(maxsize=maxsize)
        self._error: AuthError | None = None

    def wants(self, request: types_pb2.AccessRequestV3, deleted: bool) -> bool:
        """Whether any of this watcher's kinds matches the request event."""
        return any(f.matches(request, deleted) for f in self._filters)

    def offer(self, event: event_pb2.Event) -> None:
        """Queue an event; close the watcher if it has fallen too far behind."""
        if self._error is not None:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.fail(ConnectionProblem("watcher queue overflow: the client is too slow, reconnect"))
            return
        self._fanout.count_emitted(event, 1)

    def fail(self, error: AuthError) -> None:
        """Close the watcher: its consumer gets `error` after the events already queued are discarded."""
        if self._error is not None:
            return
        self._error = error
        self._discard_queued()
        self._queue.put_nowait(None)
        self._fanout.unsubscribe(self)

    async def next(self) -> event_pb2.Event:
        """The next event, in order; raises the closing error once the watcher is closed."""
        event = await self._queue.get()
        if event is None:
            assert self._error is not None
            raise self._error
        return event

    def close(self) -> None:
        """Unsubscribe (the consumer has gone); events it did not take are never sent."""
        self._discard_queued()
        self._fanout.unsubscribe(self)

    def _discard_queued(self) -> None:
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not None:
                self._fanout.count_emitted(event, -1)


class Fanout:
    """The set of live watchers."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._watchers: list[Watcher] = []
        self._queue_size = queue_size
        self._emitted: collections.Counter[str] = collections.Counter()
        self.losing_events = False
        self.lost = 0  # events dropped by the lose-events fault, one per watcher that would have had them

    def subscribe(self, filters: list[RequestFilter]) -> Watcher:
        """Register a watcher; events published from now on are queued for it."""
        watcher = Watcher(self, filters, self._queue_size)
        self._watchers.append(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        """Forget a watcher (idempotent)."""
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    @property
    def count(self) -> int:
        """Number of live watchers."""
        return len(self._watchers)

    def emitted(self, request_id: str) -> int:
        """How many events about `request_id` went to watch streams, summed over every watcher there has been."""
        return self._emitted[request_id]

    def count_emitted(self, event: event_pb2.Event, delta: int) -> None:
        """Count an event queued for a watcher (+1), or discarded unsent when its watcher closed (-1)."""
        self._emitted[_request_id(event)] += delta

    def publish_put(self, request: types_pb2.AccessRequestV3) -> None:
        """Send a PUT with a snapshot of the request to matching watchers."""
        event = event_pb2.Event(Type=event_pb2.PUT)
        event.AccessRequest.CopyFrom(request)
        self._deliver(event, request, deleted=False)

    def publish_delete(self, request: types_pb2.AccessRequestV3) -> None:
        """Send a DELETE (resource header only) for a request that is gone."""
        event = event_pb2.Event(Type=event_pb2.DELETE)
        header = event.ResourceHeader
        header.Kind = KIND_ACCESS_REQUEST
        header.Version = "v3"
        header.Metadata.Name = request.Metadata.Name
        header.Metadata.Namespace = "default"
        self._deliver(event, request, deleted=True)

    def _deliver(self, event: event_pb2.Event, request: types_pb2.AccessRequestV3, deleted: bool) -> None:
        for watcher in list(self._watchers):
            if not watcher.wants(request, deleted):
                continue
            if self.losing_events:
                self.lost += 1
            else:
                watcher.offer(event)

    def drop_all(self, reason: str) -> int:
        """Close every watcher with UNAVAILABLE; returns how many were closed."""
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.fail(ConnectionProblem(reason))
        return len(watchers)


def _request_id(event: event_pb2.Event) -> str:
    if event.WhichOneof("Resource") == "AccessRequest":
        return event.AccessRequest.Metadata.Name
    return event.ResourceHeader.Metadata.Name
