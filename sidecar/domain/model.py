"""Domain values the engine works on. Plain frozen dataclasses: no protobuf, no HTTP.

The Teleport client converts wire messages into these (sidecar/teleport/convert.py), so the engine,
the renderer and the tests never touch generated protobuf classes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class RequestState(enum.Enum):
    """Teleport's types.RequestState, by name."""

    NONE = "NONE"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    PROMOTED = "PROMOTED"

    @property
    def is_resolved(self) -> bool:
        """APPROVED, DENIED and PROMOTED are final (Teleport's IsResolved)."""
        return self in (RequestState.APPROVED, RequestState.DENIED, RequestState.PROMOTED)


@dataclass(frozen=True)
class Review:
    """One access review, as the request carries it.

    `submitted_by` (AccessReview.SubmittedBy) is "" for a review its author submitted, and names the identity that
    submitted it on the author's behalf otherwise (Auth fills it in; in-chat review's buttons are one such way).
    """

    author: str
    proposed_state: RequestState
    reason: str
    created: datetime
    submitted_by: str = ""


@dataclass(frozen=True)
class AccessRequest:
    """The parts of types.AccessRequestV3 the plugin reads."""

    id: str
    user: str
    roles: tuple[str, ...]
    state: RequestState
    request_reason: str = ""
    resolve_reason: str = ""
    suggested_reviewers: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    system_annotations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    resources: tuple[str, ...] = ()
    created: datetime | None = None
    expires: datetime | None = None
    # When the access would end (Teleport's Expiry(): Spec.ResourceExpiry, else Metadata.Expires); routing
    # conditions read it as `access_request.spec.expiry`.
    expiry: datetime | None = None
    # How many approvals resolve the request (its review thresholds, every approval counting toward each); None
    # when the thresholds cannot tell (none on the request, or threshold filters that pick which reviews count).
    approvals_required: int | None = None
    # Spec.MaxDuration: the latest time the granted access may last until (an absolute time, not a duration).
    max_duration: datetime | None = None
    # Spec.AssumeStartTime: when the granted roles can first be used (None: as soon as approved).
    assume_start_time: datetime | None = None
    # Spec.RequestKind is LONG_TERM (access granted through an access list): never reviewed from chat.
    long_term: bool = False


class EventOp(enum.Enum):
    """What happened to a request. A delete means deleted or expired: Teleport does not tell them apart.

    RESUME is the sidecar's own: nothing happened, finish whatever is still owed for the request.
    """

    PUT = "put"
    DELETE = "delete"
    RESUME = "resume"


@dataclass(frozen=True)
class RequestEvent:
    """One watch event for an access request. `request` is set for PUT and None for DELETE.

    `listed` marks a PUT the reconcile made from a listing rather than the watch: such a request has most
    likely been handled before, so the engine reads its record first instead of assuming there is none.
    """

    op: EventOp
    request_id: str
    request: AccessRequest | None = None
    listed: bool = False


@dataclass(frozen=True)
class Channel:
    """A resolved Mattermost destination: a team channel or the bot's DM channel with a user."""

    id: str
    recipient: str  # what the config or the request named: "team/channel" or an email


@dataclass(frozen=True)
class PostRef:
    """A post we made, as stored in plugin data (`<channel_id>/<post_id>`)."""

    channel_id: str
    post_id: str


class PostKind(enum.Enum):
    """What a post of ours is to its request."""

    ROOT = "root"
    REPLY = "reply"
    DM = "dm"  # a direct message to the requester; its index is its place among the request's notices
    REMINDER = "reminder"  # a threaded reminder; its index is the round
    ESCALATION = "escalation"  # the escalation note in the thread of an escalation recipient's root post


@dataclass(frozen=True)
class PostMarker:
    """Names one logical post: the same marker for every attempt, so a post made before a crash is found again.

    The chat adapter derives the post's idempotency key from it and stores it with the post.
    """

    request_id: str
    recipient: str  # the channel id the post goes to
    kind: PostKind
    review_index: int = -1  # for replies: the review it answers; for DMs and reminders: their number


@dataclass(frozen=True)
class MonitoringRule:
    """The parts of an access monitoring rule (`teleport.accessmonitoringrules.v1`) that routing reads.

    `notification_name` is "" when the rule has no notification; `revision` changes on every write, so a
    compiled condition can be kept per (name, revision).
    """

    name: str
    subjects: tuple[str, ...]
    condition: str
    notification_name: str = ""
    recipients: tuple[str, ...] = ()
    revision: str = ""


@dataclass(frozen=True)
class RuleChange:
    """One watch event for an access monitoring rule: PUT carries the rule, DELETE only its name."""

    op: EventOp
    name: str
    rule: MonitoringRule | None = None
