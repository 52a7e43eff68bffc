"""The state machine: stored record + one request event → the new record, or why nothing changes. Pure.

The record says what is owed to Mattermost (sidecar/domain/record.py Delivery); what to send follows from
it (sidecar/engine/owed.py), so a step that fails stays owed and a restart finds it there.

    event                       stored record                   plan
    ─────────────────────────── ─────────────────────────────── ─────────────────────────────────────────
    PUT PENDING                 none                            Apply(new record: a root post owed to every
                                                                      recipient, replies owed for reviews it
                                                                      already has, then a re-update; the facts
                                                                      and the requester's address when kept)
    PUT PENDING, no new reviews any                             NoOp(ALREADY_ANNOUNCED)
    PUT PENDING, new reviews    Go's, with no posts yet         NoOp(AWAITING_POSTS)       (retry later)
                                resolved                        NoOp(ALREADY_RESOLVED)
                                unresolved                      Apply(count; replies owed in every thread,
                                                                      then the pending re-update)
    PUT APPROVED/DENIED/PROMOTED none                           NoOp(NOTHING_POSTED)
                                Go's, with no posts yet         NoOp(AWAITING_POSTS) if reviews, else
                                                                NoOp(NOTHING_POSTED)
                                resolved the same way           NoOp(ALREADY_RESOLVED)
                                resolved otherwise              NoOp(RESOLUTION_CONFLICT)  (Go logs an error)
                                unresolved                      Apply(count + tag + reason; replies, edits)
    DELETE                      none / nothing announced        NoOp(NOTHING_POSTED)
                                resolved                        NoOp(RESOLUTION_CONFLICT)
                                unresolved                      Apply(tag EXPIRED; edits)
    RESUME (ours)               any                             NoOp(RESUME): only finish what is owed
    PUT in state NONE           any                             NoOp(UNKNOWN_STATE)

Counts and resolutions are committed before anything is sent, as in Go. The "pending re-update" (an edit
with unchanged text after new reviews on a pending request) is kept because the Go test-suite counts it.
Deviation: a resolved event for a request already resolved the same way is ignored quietly (Go reports a
conflict), so replaying events, as the reconcile does, is harmless.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState
from sidecar.domain.record import Delivery, Facts, PluginData, Resolution
from sidecar.engine.views import with_reviews

__all__ = ["Apply", "NoOp", "NoOpReason", "Plan", "decide", "initial_record", "tracked"]


class NoOpReason(enum.Enum):
    """Why an event changes nothing."""

    NOTHING_POSTED = "plugin data is missing"
    ALREADY_ANNOUNCED = "request is already announced"
    AWAITING_POSTS = "existing sentMessages is empty"
    ALREADY_RESOLVED = "request is already resolved"
    RESOLUTION_CONFLICT = "cannot change the resolution tag of an already resolved request"
    UNKNOWN_STATE = "unknown request state"
    RESUME = "finish what is owed"


@dataclass(frozen=True)
class NoOp:
    """Nothing to store. `detail` adds context (e.g. the two tags of a conflict)."""

    reason: NoOpReason
    detail: str = ""

    @property
    def retry(self) -> bool:
        """True when the same event may succeed once another writer stores the posts."""
        return self.reason is NoOpReason.AWAITING_POSTS


@dataclass(frozen=True)
class Apply:
    """Store `new_record` (compare-and-swap); what it owes is then sent."""

    new_record: PluginData


Plan = NoOp | Apply

_STATE_TAGS: dict[RequestState, Resolution] = {
    RequestState.APPROVED: Resolution.APPROVED,
    RequestState.DENIED: Resolution.DENIED,
    RequestState.PROMOTED: Resolution.PROMOTED,
}


def initial_record(request: AccessRequest, logins_by_role: Mapping[str, Sequence[str]] | None = None) -> PluginData:
    """The record stored when a request is first announced (Go's Create data), before any delivery."""
    return PluginData(
        user=request.user,
        roles=request.roles,
        resources=request.resources,
        request_reason=request.request_reason,
        system_annotations={key: tuple(values) for key, values in request.system_annotations.items()},
        logins_by_role={role: tuple(logins) for role, logins in (logins_by_role or {}).items()},
    )


def tracked(record: PluginData) -> Delivery:
    """The record's delivery state, starting to track one the Go plugin wrote: what Go did is owed no more."""
    delivery = record.delivery
    if delivery.tracked:
        return delivery
    done = {post.post_id: record.reviews_count for post in record.messages}
    return Delivery(tracked=True, replies_done=done, edits_done={post.post_id: 0 for post in record.messages})


def _announced(record: PluginData) -> bool:
    return bool(record.messages) or bool(record.delivery.roots_owed)


def _with_reviews(record: PluginData, request: AccessRequest, *, bump: bool) -> PluginData:
    """Count the request's reviews (never backwards); with new ones (or `bump`), owe every post a new edit."""
    count = max(record.reviews_count, len(request.reviews))
    delivery = tracked(record)
    if count > record.reviews_count or bump:
        delivery = dataclasses.replace(delivery, edit_version=delivery.edit_version + 1)
    facts = with_reviews(record.facts, request, count)
    return dataclasses.replace(record, reviews_count=count, delivery=delivery, facts=facts)


def _on_pending(
    record: PluginData | None,
    request: AccessRequest,
    logins_by_role: Mapping[str, Sequence[str]] | None,
    recipients: Sequence[str],
    now_ms: int,
    facts: Facts | None,
    requester: str,
) -> Plan:
    if record is None:
        delivery = Delivery(
            tracked=True,
            since_ms=now_ms,
            roots_owed=tuple(recipients),
            # A request first seen with reviews gets the pending re-update after its replies, as in Go.
            edit_version=1 if request.reviews else 0,
            requester=requester if facts is not None else "",
        )
        created = dataclasses.replace(
            initial_record(request, logins_by_role),
            reviews_count=len(request.reviews),
            delivery=delivery,
            facts=facts,
        )
        return Apply(created)
    if len(request.reviews) <= record.reviews_count:
        return NoOp(NoOpReason.ALREADY_ANNOUNCED)
    if not _announced(record):
        return NoOp(NoOpReason.AWAITING_POSTS if not record.delivery.tracked else NoOpReason.NOTHING_POSTED)
    if record.resolution is not Resolution.UNRESOLVED:
        return NoOp(NoOpReason.ALREADY_RESOLVED)
    return Apply(_with_reviews(record, request, bump=False))


def _on_resolved(record: PluginData | None, request: AccessRequest) -> Plan:
    tag = _STATE_TAGS[request.state]
    if record is None:
        return NoOp(NoOpReason.NOTHING_POSTED)
    if not _announced(record):
        waiting = request.reviews and not record.delivery.tracked  # Go's announcement may still land
        return NoOp(NoOpReason.AWAITING_POSTS if waiting else NoOpReason.NOTHING_POSTED)
    if record.resolution is tag:
        return NoOp(NoOpReason.ALREADY_RESOLVED)
    if record.resolution is not Resolution.UNRESOLVED:
        return NoOp(NoOpReason.RESOLUTION_CONFLICT, f"existing: {record.resolution.value}, event: {tag.value}")
    counted = _with_reviews(record, request, bump=True)
    return Apply(dataclasses.replace(counted, resolution=tag, resolve_reason=request.resolve_reason))


def _on_deleted(record: PluginData | None) -> Plan:
    if record is None or not _announced(record):
        return NoOp(NoOpReason.NOTHING_POSTED)
    if record.resolution is not Resolution.UNRESOLVED:
        detail = f"existing: {record.resolution.value}, event: {Resolution.EXPIRED.value}"
        return NoOp(NoOpReason.RESOLUTION_CONFLICT, detail)
    delivery = tracked(record)
    delivery = dataclasses.replace(delivery, edit_version=delivery.edit_version + 1)
    return Apply(dataclasses.replace(record, resolution=Resolution.EXPIRED, resolve_reason="", delivery=delivery))


def decide(
    record: PluginData | None,
    event: RequestEvent,
    *,
    logins_by_role: Mapping[str, Sequence[str]] | None = None,
    recipients: Sequence[str] = (),
    now_ms: int = 0,
    facts: Facts | None = None,
    requester: str = "",
) -> Plan:
    """The plan for `event` given the stored `record` (None when nothing is stored).

    `logins_by_role`, `recipients` (who gets a root post), `now_ms`, `facts` (kept for the rich texts, the
    requester's messages and reminders) and `requester` (the email the requester's messages go to, "" for none;
    only with facts) only matter when the plan creates the record.
    """
    if event.op is EventOp.RESUME:
        return NoOp(NoOpReason.RESUME)
    if event.op is EventOp.DELETE:
        return _on_deleted(record)
    request = event.request
    if request is None:
        return NoOp(NoOpReason.UNKNOWN_STATE, "put event without a request")
    if request.state is RequestState.PENDING:
        return _on_pending(record, request, logins_by_role, recipients, now_ms, facts, requester)
    if request.state.is_resolved:
        return _on_resolved(record, request)
    return NoOp(NoOpReason.UNKNOWN_STATE, f"state {request.state.value}")
