"""What a record still owes Mattermost, as steps, and how a step's outcome changes the record. Pure.

    owed(record, request) →  PostRoot per recipient still waiting for its root post,
                             ThreadReply per root post × review it has not answered yet (in review order),
                             Reminder per root post × reminder round its thread lacks, and the escalation
                             note for an escalation recipient's new post (pending requests only),
                             Edit per root post showing an older version of the text than it must,
                             RequesterDM per notice the requester has not had yet (announced, once the
                             root posts are done; each review; the outcome), in order
    settle(record, outcomes) → the record with the sent steps done, and the permanently failed ones given
                             up (named in `failed`, never retried); a transient failure leaves a step owed.
                             A requester message that cannot be delivered for good stops them all.

Every step has a `key` that names it across attempts and processes (which post, which review), the way the
chat adapter's idempotency keys do. Replies need the request's reviews for their text: when the request is
gone (deleted), replies still owed cannot be written any more and are dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from sidecar.domain.errors import SidecarError, TransientError
from sidecar.domain.model import AccessRequest, PostKind, PostMarker, PostRef
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.texts import Look, Texts, classic_look
from sidecar.render.classic import RenderSettings
from sidecar.render.view import RichPost

__all__ = [
    "Edit",
    "Outcome",
    "PostRoot",
    "Reminder",
    "RequesterDM",
    "Step",
    "ThreadReply",
    "destinations",
    "notices",
    "owed",
    "settle",
]


def _content(text: str, look: Look | None, limit: int) -> RichPost:
    return look(limit) if look is not None else classic_look(text)(limit)


@dataclass(frozen=True)
class PostRoot:
    """Resolve `recipient` and post the root post there: the classic `text`, or what `look` renders."""

    request_id: str
    recipient: str
    text: str
    look: Look | None = field(default=None, compare=False, repr=False)

    def content(self, limit: int) -> RichPost:
        """The post to send, within `limit`."""
        return _content(self.text, self.look, limit)

    def marker(self, channel_id: str) -> PostMarker:
        """Names this post across attempts, once the recipient's channel is known."""
        return PostMarker(self.request_id, channel_id, PostKind.ROOT)

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"post to {self.recipient!r}"


@dataclass(frozen=True)
class ThreadReply:
    """Reply in the thread of `post` for the review at `review_index` of the request."""

    request_id: str
    post: PostRef
    review_index: int
    text: str
    look: Look | None = field(default=None, compare=False, repr=False)

    def content(self, limit: int) -> RichPost:
        """The post to send, within `limit`."""
        return _content(self.text, self.look, limit)

    @property
    def marker(self) -> PostMarker:
        """Names this reply across attempts."""
        return PostMarker(self.request_id, self.post.channel_id, PostKind.REPLY, self.review_index)

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"reply to review {self.review_index} in thread {self.post.post_id}"


@dataclass(frozen=True)
class Reminder:
    """Remind the reviewers in the thread of `post`: reminder `round` (0 first), or the escalation note."""

    request_id: str
    post: PostRef
    round: int
    look: Look = field(compare=False, repr=False)
    escalation: bool = False

    def content(self, limit: int) -> RichPost:
        """The post to send, within `limit`."""
        return self.look(limit)

    @property
    def marker(self) -> PostMarker:
        """Names this reminder across attempts."""
        kind = PostKind.ESCALATION if self.escalation else PostKind.REMINDER
        return PostMarker(self.request_id, self.post.channel_id, kind, self.round)

    def describe(self) -> str:
        """What the step does, without its text."""
        what = "escalation note" if self.escalation else f"reminder {self.round + 1}"
        return f"{what} in thread {self.post.post_id}"


@dataclass(frozen=True)
class RequesterDM:
    """Send the requester (`recipient`, their email) notice `index`: announced, a review, or the outcome."""

    request_id: str
    recipient: str
    index: int
    look: Look = field(compare=False, repr=False)

    def content(self, limit: int) -> RichPost:
        """The post to send, within `limit`."""
        return self.look(limit)

    def marker(self, channel_id: str) -> PostMarker:
        """Names this message across attempts, once the requester's channel is known."""
        return PostMarker(self.request_id, channel_id, PostKind.DM, self.index)

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"direct message {self.index} to the requester {self.recipient!r}"


@dataclass(frozen=True)
class Edit:
    """Make `post` show the record's text at `version`: the classic `text`, or what `look` renders."""

    post: PostRef
    version: int
    text: str
    look: Look | None = field(default=None, compare=False, repr=False)

    def content(self, limit: int) -> RichPost:
        """The post to send, within `limit`."""
        return _content(self.text, self.look, limit)

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"edit post {self.post.post_id}"


Step = PostRoot | ThreadReply | Reminder | Edit | RequesterDM


@dataclass(frozen=True)
class Outcome:
    """How one step went: `post` is where a root post or reply landed; `error` is None on success."""

    step: Step
    post: PostRef | None = None
    error: SidecarError | None = None


def notices(record: PluginData) -> int:
    """How many notices the requester is owed in all so far: the announcement, each review, the outcome."""
    return 1 + record.reviews_count + (record.resolution is not Resolution.UNRESOLVED)


def destinations(record: PluginData) -> tuple[str, ...]:
    """Where the request was announced, for the requester: the routed recipients not given up on."""
    recipients = record.facts.recipients if record.facts is not None else ()
    failed = record.delivery.failed
    return tuple(r for r in recipients if not any(f.startswith(PostRoot("", r, "").describe() + ": ") for f in failed))


def owed(
    request_id: str, record: PluginData, request: AccessRequest | None, texts: Texts | RenderSettings
) -> list[Step]:
    """Every step the record still owes: roots, replies, reminders, edits, then the requester's messages."""
    if isinstance(texts, RenderSettings):
        texts = Texts(render=texts)
    delivery = record.delivery
    if not delivery.tracked:
        return []
    stale = [post for post in record.messages if delivery.edits_done.get(post.post_id, 0) < delivery.edit_version]
    # Rendered only when a step carries it: most calls (after delivery, for the claim) find nothing owed.
    text, look = texts.root(request_id, record, request) if delivery.roots_owed or stale else ("", None)
    steps: list[Step] = [PostRoot(request_id, recipient, text, look) for recipient in delivery.roots_owed]
    reviews = request.reviews if request is not None else ()
    for post in record.messages:
        done = delivery.replies_done.get(post.post_id, 0)
        for index in range(done, min(record.reviews_count, len(reviews))):
            assert request is not None  # reviews come from it
            reply_text, reply_look = texts.reply(request_id, record, request, index)
            steps.append(ThreadReply(request_id, post, index, reply_text, reply_look))
    if record.resolution is Resolution.UNRESOLVED:
        for post in record.messages:
            for round_ in range(delivery.reminded.get(post.post_id, 0), delivery.reminder_rounds):
                look_ = texts.reminder(request_id, record, request, round_, escalation=False)
                steps.append(Reminder(request_id, post, round_, look_))
            if post.post_id in delivery.notes_owed:
                note = texts.reminder(request_id, record, request, 0, escalation=True)
                steps.append(Reminder(request_id, post, 0, note, escalation=True))
    steps.extend(Edit(post, delivery.edit_version, text, look) for post in stale)
    # The announcement tells where the request went, so it waits for the root posts; the rest follow in order.
    if delivery.requester and record.facts is not None and not (delivery.dms_done == 0 and delivery.roots_owed):
        where = destinations(record)
        for index in range(delivery.dms_done, notices(record)):
            notice = texts.notice(request_id, record, request, index, where)
            steps.append(RequesterDM(request_id, delivery.requester, index, notice))
    return steps


def unanswerable(record: PluginData, request: AccessRequest | None) -> bool:
    """True when replies are owed but the request is gone, so their texts can never be written."""
    delivery = record.delivery
    owed_replies = any(delivery.replies_done.get(p.post_id, 0) < record.reviews_count for p in record.messages)
    return request is None and owed_replies


def settle(record: PluginData, outcomes: Sequence[Outcome], *, drop_unanswerable: bool = False) -> PluginData:
    """The record after `outcomes`: successes done, permanent failures given up, transient ones still owed.

    Applied to a fresh read of the record, so work another writer did meanwhile is kept.
    """
    delivery = record.delivery
    roots = list(delivery.roots_owed)
    messages = list(record.messages)
    replies = dict(delivery.replies_done)
    edits = dict(delivery.edits_done)
    reminded = dict(delivery.reminded)
    escalation = list(delivery.escalation_owed)
    notes = list(delivery.notes_owed)
    failed = list(delivery.failed)
    requester, dms_done = delivery.requester, delivery.dms_done
    for outcome in outcomes:
        step, error = outcome.step, outcome.error
        if error is not None and not _permanent(error):
            continue
        if isinstance(step, RequesterDM):
            # Given up for good (no such user, no way to message them): the later notices would fail alike.
            if error is not None:
                requester = ""
            elif dms_done == step.index:
                dms_done = step.index + 1
            continue
        if error is not None:
            failed.append(f"{step.describe()}: {error}")
        if isinstance(step, PostRoot):
            if step.recipient in roots:
                roots.remove(step.recipient)
            if outcome.post is not None and outcome.post not in messages:
                messages.append(outcome.post)
                replies.setdefault(outcome.post.post_id, 0)
                edits.setdefault(outcome.post.post_id, 0)
                # A post made later than the reminders so far does not get them; only the ones to come.
                if delivery.reminder_rounds:
                    reminded.setdefault(outcome.post.post_id, delivery.reminder_rounds)
                if step.recipient in escalation and outcome.post.post_id not in notes:
                    notes.append(outcome.post.post_id)
            if step.recipient in escalation:
                escalation.remove(step.recipient)
        elif isinstance(step, ThreadReply):
            # Replies go out in review order, so "done" is a count; a failure given up on counts as done.
            if replies.get(step.post.post_id, 0) == step.review_index:
                replies[step.post.post_id] = step.review_index + 1
        elif isinstance(step, Reminder):
            if step.escalation:
                if step.post.post_id in notes:
                    notes.remove(step.post.post_id)
            elif reminded.get(step.post.post_id, 0) == step.round:
                reminded[step.post.post_id] = step.round + 1
        else:
            edits[step.post.post_id] = max(edits.get(step.post.post_id, 0), step.version)
    if drop_unanswerable:
        for post in messages:
            replies[post.post_id] = max(replies.get(post.post_id, 0), record.reviews_count)
    new_delivery = dataclasses.replace(
        delivery,
        roots_owed=tuple(roots),
        replies_done=replies,
        edits_done=edits,
        failed=tuple(failed),
        requester=requester,
        dms_done=dms_done,
        reminded=reminded,
        escalation_owed=tuple(escalation),
        notes_owed=tuple(notes),
    )
    return dataclasses.replace(record, messages=tuple(messages), delivery=new_delivery)


def _permanent(error: SidecarError) -> bool:
    return not isinstance(error, TransientError)
