"""The state machine: stored plugin data + one request event → an explicit plan. Pure; no I/O.

    event                       stored record                   plan
    ─────────────────────────── ─────────────────────────────── ─────────────────────────────────────────
    PUT PENDING                 none                            Apply(create record, [BroadcastRoot, with a
                                                                      reply per review it already has])
    PUT PENDING, no reviews     any                             NoOp(ALREADY_ANNOUNCED)
    PUT PENDING, reviews        no posts yet                    NoOp(AWAITING_POSTS)       (retry later)
                                resolved                        NoOp(ALREADY_RESOLVED)
                                unresolved                      Apply(count, [Reply per post × new review,
                                                                       Edit per post, same PENDING text])
    PUT APPROVED/DENIED/PROMOTED none                           NoOp(NOTHING_POSTED)
                                no posts yet                    NoOp(AWAITING_POSTS) if reviews, else
                                                                NoOp(NOTHING_POSTED)
                                resolved                        NoOp(RESOLUTION_CONFLICT)  (Go logs an error)
                                unresolved                      Apply(count + tag + reason,
                                                                      [Reply…, Edit per post with new text])
    DELETE                      none / no posts yet             NoOp(NOTHING_POSTED)
                                resolved                        NoOp(RESOLUTION_CONFLICT)
                                unresolved                      Apply(tag EXPIRED, [Edit per post])
    PUT in state NONE           any                             NoOp(UNKNOWN_STATE)

Replies go to every stored post, only for reviews beyond the stored `reviews_count`, in review order;
the plan's record already holds the new count, so the count is committed before anything is sent, as
in Go. The "pending re-update" (an Edit with unchanged text after reviews on a pending request) is
kept because the Go test-suite counts it; a request first seen with reviews gets the same treatment
in the threads of its new posts (BroadcastRoot.replies). Every step names its target and full text,
so re-running a step from the stored record gives the same call: edits are idempotent, replies carry
their review index so an idempotent-posting layer can key on (post, index).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.domain.model import AccessRequest, EventOp, PostRef, RequestEvent, RequestState
from sidecar.domain.record import PluginData, Resolution
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text

__all__ = [
    "Apply",
    "BroadcastRoot",
    "Edit",
    "NoOp",
    "NoOpReason",
    "Plan",
    "ReviewReply",
    "Step",
    "ThreadReply",
    "decide",
    "initial_record",
]


class NoOpReason(enum.Enum):
    """Why an event changes nothing."""

    NOTHING_POSTED = "plugin data is missing"
    ALREADY_ANNOUNCED = "request is already announced"
    AWAITING_POSTS = "existing sentMessages is empty"
    ALREADY_RESOLVED = "request is already resolved"
    RESOLUTION_CONFLICT = "cannot change the resolution tag of an already resolved request"
    UNKNOWN_STATE = "unknown request state"


@dataclass(frozen=True)
class NoOp:
    """Nothing to store and nothing to send. `detail` adds context (e.g. the two tags of a conflict)."""

    reason: NoOpReason
    detail: str = ""

    @property
    def retry(self) -> bool:
        """True when the same event may succeed once another writer stores the posts."""
        return self.reason is NoOpReason.AWAITING_POSTS


@dataclass(frozen=True)
class ReviewReply:
    """The thread reply for the review at `review_index`, to post under posts that do not exist yet."""

    review_index: int
    text: str


@dataclass(frozen=True)
class BroadcastRoot:
    """Post `text` as a new root post to every resolved recipient, then store where the posts landed.

    When the request already had reviews, `replies` are then posted in every new thread, followed by
    the pending re-update of each new post (what Go does for a request first seen with reviews).
    """

    text: str
    replies: tuple[ReviewReply, ...] = ()

    def describe(self) -> str:
        """What the step does, without its text."""
        return "announce the request"


@dataclass(frozen=True)
class ThreadReply:
    """Reply in the thread of `post` for the review at `review_index` of the request."""

    post: PostRef
    review_index: int
    text: str

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"reply to review {self.review_index} in thread {self.post.post_id}"


@dataclass(frozen=True)
class Edit:
    """Replace the text of `post`."""

    post: PostRef
    text: str

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"edit post {self.post.post_id}"


Step = BroadcastRoot | ThreadReply | Edit


@dataclass(frozen=True)
class Apply:
    """Store `new_record` (compare-and-swap), then perform `steps` in order."""

    new_record: PluginData
    steps: tuple[Step, ...]


Plan = NoOp | Apply

_STATE_TAGS: dict[RequestState, Resolution] = {
    RequestState.APPROVED: Resolution.APPROVED,
    RequestState.DENIED: Resolution.DENIED,
    RequestState.PROMOTED: Resolution.PROMOTED,
}


def initial_record(request: AccessRequest, logins_by_role: Mapping[str, Sequence[str]] | None = None) -> PluginData:
    """The record stored when a request is first announced (Go's Create data)."""
    return PluginData(
        user=request.user,
        roles=request.roles,
        resources=request.resources,
        request_reason=request.request_reason,
        system_annotations={key: tuple(values) for key, values in request.system_annotations.items()},
        logins_by_role={role: tuple(logins) for role, logins in (logins_by_role or {}).items()},
    )


def _edits(request_id: str, record: PluginData, settings: RenderSettings) -> list[Edit]:
    text = root_post_text(request_id, record, settings)
    return [Edit(post, text) for post in record.messages]


def _replies(record: PluginData, request: AccessRequest) -> list[ThreadReply]:
    first_new = record.reviews_count
    new_reviews = list(enumerate(request.reviews))[first_new:]
    return [
        ThreadReply(post, index, review_reply_text(review))
        for post in record.messages
        for index, review in new_reviews
    ]


def _with_count(record: PluginData, request: AccessRequest) -> PluginData:
    count = max(record.reviews_count, len(request.reviews))
    return dataclasses.replace(record, reviews_count=count)


def _conflict(record: PluginData, tag: Resolution) -> NoOp:
    detail = f"existing: {record.resolution.value}, event: {tag.value}"
    return NoOp(NoOpReason.RESOLUTION_CONFLICT, detail)


def _on_pending(
    record: PluginData | None,
    request: AccessRequest,
    settings: RenderSettings,
    logins_by_role: Mapping[str, Sequence[str]] | None,
) -> Plan:
    if record is None:
        created = _with_count(initial_record(request, logins_by_role), request)
        replies = tuple(ReviewReply(index, review_reply_text(review)) for index, review in enumerate(request.reviews))
        return Apply(created, (BroadcastRoot(root_post_text(request.id, created, settings), replies),))
    if not request.reviews:
        return NoOp(NoOpReason.ALREADY_ANNOUNCED)
    if not record.messages:
        return NoOp(NoOpReason.AWAITING_POSTS)
    if record.resolution is not Resolution.UNRESOLVED:
        return NoOp(NoOpReason.ALREADY_RESOLVED)
    updated = _with_count(record, request)
    # Go re-PUTs every post with the unchanged PENDING text after replying (the "pending re-update").
    return Apply(updated, (*_replies(record, request), *_edits(request.id, updated, settings)))


def _on_resolved(record: PluginData | None, request: AccessRequest, settings: RenderSettings) -> Plan:
    tag = _STATE_TAGS[request.state]
    if record is None:
        return NoOp(NoOpReason.NOTHING_POSTED)
    if not record.messages:
        return NoOp(NoOpReason.AWAITING_POSTS if request.reviews else NoOpReason.NOTHING_POSTED)
    if record.resolution is not Resolution.UNRESOLVED:
        return _conflict(record, tag)
    updated = dataclasses.replace(_with_count(record, request), resolution=tag, resolve_reason=request.resolve_reason)
    return Apply(updated, (*_replies(record, request), *_edits(request.id, updated, settings)))


def _on_deleted(record: PluginData | None, request_id: str, settings: RenderSettings) -> Plan:
    if record is None or not record.messages:
        return NoOp(NoOpReason.NOTHING_POSTED)
    if record.resolution is not Resolution.UNRESOLVED:
        return _conflict(record, Resolution.EXPIRED)
    updated = dataclasses.replace(record, resolution=Resolution.EXPIRED, resolve_reason="")
    return Apply(updated, tuple(_edits(request_id, updated, settings)))


def decide(
    record: PluginData | None,
    event: RequestEvent,
    settings: RenderSettings,
    *,
    logins_by_role: Mapping[str, Sequence[str]] | None = None,
) -> Plan:
    """The plan for `event` given the stored `record` (None when nothing is stored).

    `logins_by_role` only matters when the plan creates the record.
    """
    if event.op is EventOp.DELETE:
        return _on_deleted(record, event.request_id, settings)
    request = event.request
    if request is None:
        return NoOp(NoOpReason.UNKNOWN_STATE, "put event without a request")
    if request.state is RequestState.PENDING:
        return _on_pending(record, request, settings, logins_by_role)
    if request.state.is_resolved:
        return _on_resolved(record, request, settings)
    return NoOp(NoOpReason.UNKNOWN_STATE, f"state {request.state.value}")
