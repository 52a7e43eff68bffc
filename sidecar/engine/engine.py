"""The engine: one request event → load the record, decide once, write, run the plan.

    handle(event):
        logins by role (PENDING only: the record created on announcement keeps them, as in Go)
        cas.run(decide)      read the stored record, decide(record, event) → Write(new record, plan)
                             or Keep(no-op); the write is compare-and-swap, so a lost race decides again
        run the plan         BroadcastRoot: resolve recipients, post root posts, store where they landed,
                                            then the replies for reviews the request already had
                             ThreadReply / Edit: one Mattermost call each, replies first

The record is committed before anything is sent, as in Go, so a step that fails is never repeated by
re-running the event. Instead every failed step is KEPT: `handle` raises StepsFailed carrying each failed
step (a value that says exactly which call to repeat) and its error. A TransientError that interrupts
processing (store or role lookup unavailable) propagates so the dispatcher can retry the whole event; if
steps had already failed by then it is raised as RetryableStepsFailed, which is both. An announcement that
reached nobody for a transient reason is withdrawn (compare-and-swap guarded) so the retry announces again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from sidecar.domain.errors import (
    AccessDenied,
    CasGaveUp,
    ResolutionConflict,
    RetryableStepsFailed,
    SidecarError,
    StepFailure,
    StepsFailed,
    TransientError,
)
from sidecar.domain.model import AccessRequest, Channel, EventOp, PostRef, RequestEvent, RequestState
from sidecar.domain.ports import ChatPort, PluginDataStore, RoleLookup
from sidecar.domain.record import PluginData
from sidecar.engine.cas import Cas, GaveUp, Keep, Skipped, Updated, Write
from sidecar.engine.decide import Apply, BroadcastRoot, Edit, NoOp, NoOpReason, Plan, ThreadReply, decide
from sidecar.engine.recipients import raw_recipients, resolve_channels
from sidecar.render.classic import RenderSettings

__all__ = ["Engine", "EngineSettings", "PostRoot", "ResolveRecipient", "SaveMessages"]

_log = logging.getLogger("sidecar.engine")


@dataclass(frozen=True)
class ResolveRecipient:
    """Resolve `recipient` and post the root `text` there (its lookup failed)."""

    recipient: str
    text: str

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"resolve recipient {self.recipient!r}"


@dataclass(frozen=True)
class PostRoot:
    """Post the root `text` to one resolved channel (one leg of a BroadcastRoot)."""

    channel: Channel
    text: str

    def describe(self) -> str:
        """What the step does, without its text."""
        return f"post to channel {self.channel.id}"


@dataclass(frozen=True)
class SaveMessages:
    """Add `posts` to the stored `messages` (they were posted but could not be recorded)."""

    posts: tuple[PostRef, ...]

    def describe(self) -> str:
        """What the step does."""
        return "store posts " + ",".join(f"{ref.channel_id}/{ref.post_id}" for ref in self.posts)


@dataclass(frozen=True)
class EngineSettings:
    """Static configuration of the engine."""

    role_to_recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    render: RenderSettings = field(default_factory=RenderSettings)


def _context(event: RequestEvent) -> dict[str, Any]:
    context: dict[str, Any] = {"request_id": event.request_id, "request_op": event.op.value}
    if event.op is EventOp.PUT and event.request is not None:
        context["request_state"] = event.request.state.value
    return context


def _as_write(plan: Plan) -> Write[Apply] | Keep[NoOp]:
    if isinstance(plan, Apply):
        return Write(plan.new_record, plan)
    return Keep(plan, retry=plan.retry, reason=plan.reason.value)


class Engine:
    """Handles one request event at a time per request (the dispatcher guarantees the ordering)."""

    def __init__(
        self,
        *,
        store: PluginDataStore,
        roles: RoleLookup,
        chat: ChatPort,
        settings: EngineSettings,
        cas: Cas | None = None,
    ) -> None:
        self._roles = roles
        self._chat = chat
        self._settings = settings
        self._cas = cas or Cas(store)

    async def handle(self, event: RequestEvent) -> None:
        """Process one event. Raises StepsFailed, ResolutionConflict, CasGaveUp, or errors from the ports."""
        context = _context(event)
        failures: list[StepFailure] = []
        try:
            await self._handle(event, context, failures)
        except TransientError as exc:
            if failures and not isinstance(exc, RetryableStepsFailed):
                raise RetryableStepsFailed(event.request_id, failures) from exc
            raise
        if failures:
            raise StepsFailed(event.request_id, failures)

    async def _handle(self, event: RequestEvent, context: dict[str, Any], failures: list[StepFailure]) -> None:
        request = event.request
        logins = None
        if event.op is EventOp.PUT and request is not None and request.state is RequestState.PENDING:
            logins = await self._logins_by_role(request, context)
        render = self._settings.render
        outcome = await self._cas.run(
            event.request_id, lambda record: _as_write(decide(record, event, render, logins_by_role=logins))
        )
        match outcome:
            case Updated(decision=plan):
                await self._run(event, plan, context, failures)
            case Skipped(decision=noop):
                self._report_noop(noop, context)
            case GaveUp(attempts=attempts, reason=reason):
                raise CasGaveUp(
                    f"request {event.request_id}: plugin data write gave up after {attempts} attempts: {reason}"
                )
            case _:
                assert_never(outcome)

    async def _logins_by_role(self, request: AccessRequest, context: dict[str, Any]) -> dict[str, list[str]] | None:
        logins: dict[str, list[str]] = {}
        try:
            for role in request.roles:
                logins[role] = await self._roles.role_logins(role)
        except AccessDenied as exc:
            _log.warning(
                "Missing permissions to get logins by role, please add role.read to the associated role",
                extra={**context, "error": str(exc)},
            )
            return None
        return logins

    def _report_noop(self, plan: NoOp, context: dict[str, Any]) -> None:
        if plan.reason is NoOpReason.RESOLUTION_CONFLICT:
            raise ResolutionConflict(f"{plan.reason.value}, {plan.detail}")
        if plan.reason is NoOpReason.ALREADY_RESOLVED:
            _log.debug("Request is already resolved, ignoring event", extra=context)
        elif plan.reason is NoOpReason.NOTHING_POSTED:
            _log.debug("Failed to update messages: plugin data is missing", extra=context)
        elif plan.reason is NoOpReason.UNKNOWN_STATE:
            _log.warning("Unknown request state", extra={**context, "detail": plan.detail})
        else:
            _log.debug("Nothing to do for the event: %s", plan.reason.value, extra=context)

    async def _run(
        self, event: RequestEvent, plan: Apply, context: dict[str, Any], failures: list[StepFailure]
    ) -> None:
        request = event.request
        if (
            request is not None
            and request.reviews
            and not any(isinstance(step, ThreadReply | BroadcastRoot) for step in plan.steps)
        ):
            _log.debug("Failed to post reply: replies are already sent", extra=context)
        edits: list[Edit] = []
        for step in plan.steps:
            if isinstance(step, BroadcastRoot):
                if request is None:
                    raise AssertionError("decide() plans an announcement only for a request it was given")
                await self._announce(request, step, plan.new_record, context, failures)
            elif isinstance(step, ThreadReply):
                await self._reply(step, failures)
            elif isinstance(step, Edit):
                edits.append(step)
            else:
                assert_never(step)
        if edits:
            await self._edit_all(edits, plan.new_record, context, failures)

    async def _reply(self, step: ThreadReply, failures: list[StepFailure]) -> None:
        try:
            await self._chat.post(step.post.channel_id, step.text, root_id=step.post.post_id)
        except SidecarError as exc:
            failures.append(StepFailure(step, exc))

    async def _edit_all(
        self, edits: list[Edit], record: PluginData, context: dict[str, Any], failures: list[StepFailure]
    ) -> None:
        failed = False
        for step in edits:
            try:
                await self._chat.edit(step.post, step.text)
            except SidecarError as exc:
                failed = True
                failures.append(StepFailure(step, exc))
        if not failed:
            resolution = record.resolution.value
            _log.info("Marked request with resolution and sent emails!", extra={**context, "resolution": resolution})
            _log.info("Successfully notified user", extra={**context, "user": record.user, "resolution": resolution})

    async def _announce(
        self,
        request: AccessRequest,
        step: BroadcastRoot,
        record: PluginData,
        context: dict[str, Any],
        failures: list[StepFailure],
    ) -> None:
        already_failed = len(failures)
        try:
            posts = await self._broadcast(request, step.text, context, failures)
        except TransientError:
            await self._withdraw(request.id, context)
            raise
        if not posts:
            if any(isinstance(f.error, TransientError) for f in failures[already_failed:]):
                # Mattermost was unreachable for every recipient: give the announcement back so the
                # dispatcher's retry creates and posts it again (Go would lose it for good).
                await self._withdraw(request.id, context)
                raise RetryableStepsFailed(request.id, failures)
            # Nothing was announced, so there is no thread to reply in (Go would wait for posts and fail).
            return
        if step.replies:
            for post in posts:
                for reply in step.replies:
                    await self._reply(ThreadReply(post, reply.review_index, reply.text), failures)
            await self._edit_all([Edit(post, step.text) for post in posts], record, context, failures)

    async def _broadcast(
        self, request: AccessRequest, text: str, context: dict[str, Any], failures: list[StepFailure]
    ) -> tuple[PostRef, ...]:
        """Post the root message to every recipient and store the posts; the posts made."""
        recipients = raw_recipients(
            request.roles, request.suggested_reviewers, self._settings.role_to_recipients, request_id=request.id
        )
        channels, lookup_failures = await resolve_channels(recipients, self._chat, request_id=request.id)
        failures.extend(StepFailure(ResolveRecipient(f.recipient, text), f.error) for f in lookup_failures)
        if not channels:
            _log.warning("No channel to post", extra=context)
            return ()
        posts: list[PostRef] = []
        post_errors: list[str] = []
        for channel in channels:
            try:
                posts.append(await self._chat.post(channel.id, text))
            except SidecarError as exc:
                post_errors.append(f"channel {channel.id}: {exc}")
                failures.append(StepFailure(PostRoot(channel, text), exc))
        if not posts:
            return ()
        for ref in posts:
            _log.info(
                "Successfully posted messages",
                extra={**context, "channel_id": ref.channel_id, "message_id": ref.post_id},
            )
        if post_errors:
            _log.error("Failed to post one or more messages", extra={**context, "error": "; ".join(post_errors)})
        await self._save_messages(request.id, tuple(posts), failures)
        return tuple(posts)

    async def _save_messages(self, request_id: str, posts: tuple[PostRef, ...], failures: list[StepFailure]) -> None:
        def add_posts(record: PluginData | None) -> Write[None] | Keep[None]:
            if record is None:
                return Keep(None, reason="the record was removed")
            new = tuple(post for post in posts if post not in set(record.messages))
            return Write(dataclasses.replace(record, messages=record.messages + new), None)

        try:
            outcome = await self._cas.run(request_id, add_posts)
        except SidecarError as exc:
            # Never lose where we posted: the retry layer can store them later.
            failures.append(StepFailure(SaveMessages(posts), exc))
            return
        if not isinstance(outcome, Updated):
            error = TransientError(f"plugin data for request {request_id} could not be updated: {outcome}")
            failures.append(StepFailure(SaveMessages(posts), error))

    async def _withdraw(self, request_id: str, context: dict[str, Any]) -> None:
        """Remove the record we just created while it still has no posts, so a retry announces again.

        Guarded by compare-and-swap: if another replica recorded posts meanwhile, the record stays.
        """

        def empty_unless_posted(record: PluginData | None) -> Write[None] | Keep[None]:
            if record is None or record.messages:
                return Keep(None, reason="posts were recorded meanwhile")
            return Write(PluginData(), None)

        outcome = await self._cas.run(request_id, empty_unless_posted)
        if isinstance(outcome, Updated):
            _log.warning("Announcement failed, will retry it", extra=context)
