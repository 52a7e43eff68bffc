"""Watch fan-out: every watcher gets the events that match its kinds, in publication order.

Access requests and access monitoring rules share each watcher's one queue, so a stream carries them in the
order they were written (a rule created before a request reaches the client before that request's PUT).

Each watcher has its own bounded queue, so a slow watcher never blocks the publisher or other watchers. When a
watcher's queue overflows it is closed with a ConnectionProblem (UNAVAILABLE), as Teleport's fanout closes a
watcher that falls behind; the client is expected to reconnect and resynchronise.

The fan-out also counts, per request (and per rule), the events it has handed to watch streams (queued for a
watcher and not discarded when that watcher closed): the admin API reports them, so a test can wait until a
client has finished with every event it was sent.

While `losing_events` is set (the admin API's lose-events fault) the fan-out drops every event instead of
queueing it, as if the stream had carried it into a process that died: the watchers stay open and see nothing,
the drops are counted in `lost` and never in the per-request count.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import event_pb2, types_pb2

from .errors import AuthError, BadParameter, ConnectionProblem
from .rule_validation import KIND_ACCESS_MONITORING_RULE, RULE_VERSION

KIND_ACCESS_REQUEST = "access_request"
SUPPORTED_KINDS = frozenset({KIND_ACCESS_REQUEST, KIND_ACCESS_MONITORING_RULE})
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
    """One subscriber: a bounded queue of events, closed with an error on overflow or when dropped.

    `filters` has one entry per watched `access_request` kind (none: requests are not watched); `rules` says
    whether the `access_monitoring_rule` kind was granted.
    """

    def __init__(self, fanout: Fanout, filters: list[RequestFilter], maxsize: int, rules: bool = False) -> None:
        self._fanout = fanout
        self._filters = filters
        self.rules = rules
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
        self._emitted: collections.Counter[tuple[str, str]] = collections.Counter()  # by (kind, name)
        self.losing_events = False
        self.lost = 0  # events dropped by the lose-events fault, one per watcher that would have had them

    def subscribe(self, filters: list[RequestFilter], rules: bool = False) -> Watcher:
        """Register a watcher (of requests through `filters`, of rules if `rules`); later events are queued for it."""
        watcher = Watcher(self, filters, self._queue_size, rules)
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
        return self._emitted[(KIND_ACCESS_REQUEST, request_id)]

    def emitted_rule(self, name: str) -> int:
        """How many events about the access monitoring rule `name` went to watch streams (as `emitted`)."""
        return self._emitted[(KIND_ACCESS_MONITORING_RULE, name)]

    def count_emitted(self, event: event_pb2.Event, delta: int) -> None:
        """Count an event queued for a watcher (+1), or discarded unsent when its watcher closed (-1)."""
        self._emitted[_resource_key(event)] += delta

    def publish_put(self, request: types_pb2.AccessRequestV3) -> None:
        """Send a PUT with a snapshot of the request to matching watchers."""
        event = event_pb2.Event(Type=event_pb2.PUT)
        event.AccessRequest.CopyFrom(request)
        self._deliver(event, lambda w: w.wants(request, deleted=False))

    def publish_delete(self, request: types_pb2.AccessRequestV3) -> None:
        """Send a DELETE (resource header only) for a request that is gone."""
        event = event_pb2.Event(Type=event_pb2.DELETE)
        header = event.ResourceHeader
        header.Kind = KIND_ACCESS_REQUEST
        header.Version = "v3"
        header.Metadata.Name = request.Metadata.Name
        header.Metadata.Namespace = "default"
        self._deliver(event, lambda w: w.wants(request, deleted=True))

    def publish_rule_put(self, rule: amr_pb2.AccessMonitoringRule) -> None:
        """Send a PUT with the full stored rule (field 54) to watchers granted the rule kind."""
        event = event_pb2.Event(Type=event_pb2.PUT)
        event.AccessMonitoringRule.CopyFrom(rule)
        self._deliver(event, lambda w: w.rules)

    def publish_rule_delete(self, name: str) -> None:
        """Send a DELETE for a rule: only a `types.ResourceHeader` (field 2), as Teleport's event parser does."""
        event = event_pb2.Event(Type=event_pb2.DELETE)
        header = event.ResourceHeader
        header.Kind = KIND_ACCESS_MONITORING_RULE
        header.Version = RULE_VERSION
        header.Metadata.Name = name
        header.Metadata.Namespace = "default"
        self._deliver(event, lambda w: w.rules)

    def _deliver(self, event: event_pb2.Event, wants: Callable[[Watcher], bool]) -> None:
        for watcher in list(self._watchers):
            if not wants(watcher):
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


def _resource_key(event: event_pb2.Event) -> tuple[str, str]:
    """(kind, name) of the resource an event is about."""
    which = event.WhichOneof("Resource")
    if which == "AccessRequest":
        return KIND_ACCESS_REQUEST, event.AccessRequest.Metadata.Name
    if which == "AccessMonitoringRule":
        return KIND_ACCESS_MONITORING_RULE, event.AccessMonitoringRule.metadata.name
    return event.ResourceHeader.Kind, event.ResourceHeader.Metadata.Name
