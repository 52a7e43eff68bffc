"""What a record still owes Mattermost, as steps, and how a step's outcome changes the record. Pure.

    owed(record, request) →  PostRoot per recipient still waiting for its root post,
                             ThreadReply per root post × review it has not answered yet (in review order),
                             Edit per root post showing an older version of the text than it must
    settle(record, outcomes) → the record with the sent steps done, and the permanently failed ones given
                             up (named in `failed`, never retried); a transient failure leaves a step owed

Every step has a `key` that names it across attempts and processes (which post, which review), the way the
chat adapter's idempotency keys do. Replies need the request's reviews for their text: when the request is
gone (deleted), replies still owed cannot be written any more and are dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.domain.errors import SidecarError, TransientError
from sidecar.domain.model import AccessRequest, PostKind, PostMarker, PostRef
from sidecar.domain.record import PluginData
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text

__all__ = ["Edit", "Outcome", "PostRoot", "Step", "ThreadReply", "owed", "settle"]


@dataclass(frozen=True)
class PostRoot:
    """Resolve `recipient` and post the root `text` there."""

    request_id: str
    recipient: str
    text: str

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

    @property
    def marker(self) -> PostMarker:
        """Names this reply across attempts."""
        return PostMarker(self.request_id, self.post.channel_id, PostKind.REPLY, self.review_index)

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"reply to review {self.review_index} in thread {self.post.post_id}"


@dataclass(frozen=True)
class Edit:
    """Make `post` show `text`, the record's text at `version`."""

    post: PostRef
    version: int
    text: str

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"edit post {self.post.post_id}"


Step = PostRoot | ThreadReply | Edit


@dataclass(frozen=True)
class Outcome:
    """How one step went: `post` is where a root post or reply landed; `error` is None on success."""

    step: Step
    post: PostRef | None = None
    error: SidecarError | None = None


def owed(request_id: str, record: PluginData, request: AccessRequest | None, settings: RenderSettings) -> list[Step]:
    """Every step the record still owes, roots first, then replies, then edits."""
    delivery = record.delivery
    if not delivery.tracked:
        return []
    stale = [post for post in record.messages if delivery.edits_done.get(post.post_id, 0) < delivery.edit_version]
    # Rendered only when a step carries it: most calls (after delivery, for the claim) find nothing owed.
    text = root_post_text(request_id, record, settings) if delivery.roots_owed or stale else ""
    steps: list[Step] = [PostRoot(request_id, recipient, text) for recipient in delivery.roots_owed]
    reviews = request.reviews if request is not None else ()
    for post in record.messages:
        done = delivery.replies_done.get(post.post_id, 0)
        for index in range(done, min(record.reviews_count, len(reviews))):
            steps.append(ThreadReply(request_id, post, index, review_reply_text(reviews[index])))
    steps.extend(Edit(post, delivery.edit_version, text) for post in stale)
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
    failed = list(delivery.failed)
    for outcome in outcomes:
        step, error = outcome.step, outcome.error
        if error is not None and not _permanent(error):
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
        elif isinstance(step, ThreadReply):
            # Replies go out in review order, so "done" is a count; a failure given up on counts as done.
            if replies.get(step.post.post_id, 0) == step.review_index:
                replies[step.post.post_id] = step.review_index + 1
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
    )
    return dataclasses.replace(record, messages=tuple(messages), delivery=new_delivery)


def _permanent(error: SidecarError) -> bool:
    return not isinstance(error, TransientError)
