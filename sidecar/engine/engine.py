"""The engine: runs decide()'s plans against plugin data (CAS) and Mattermost, in Go's order.

    PENDING put:   logins by role → CAS create → (if created) resolve recipients, post root messages,
                   CAS-store the posts → (if the request has reviews) the update phase below
    resolved put,  update phase: CAS update with decide() as the modifier (re-run on conflicts), then
    delete:        the plan's steps: thread replies first, then post edits

Counts and resolutions are committed before anything is sent, as in Go, so a step that fails is never
repeated by re-running the event. Instead every failed step is KEPT: `handle` raises StepsFailed
carrying each failed step (a value that says exactly which call to repeat) and its error, for a retry
layer. A TransientError that interrupts processing (store or role lookup unavailable) propagates so the
dispatcher can retry the whole event; if steps had already failed by then it is raised as
RetryableStepsFailed, which is both. A CAS that exhausts its budget raises CasGaveUp.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.domain.errors import AccessDenied, PermanentError, SidecarError, TransientError
from sidecar.domain.model import AccessRequest, Channel, EventOp, PostRef, RequestEvent, RequestState
from sidecar.domain.ports import ChatPort, PluginDataStore, RoleLookup
from sidecar.domain.record import PluginData
from sidecar.engine.cas import AlreadyCreated, Cas, Created, GaveUp, Missing, Skip, Skipped, Updated
from sidecar.engine.decide import Apply, BroadcastRoot, Edit, NoOp, NoOpReason, Plan, Reply, decide
from sidecar.engine.recipients import raw_recipients, resolve_channels
from sidecar.render.classic import RenderSettings

__all__ = [
    "CasGaveUp",
    "Engine",
    "EngineSettings",
    "PostRoot",
    "ResolutionConflict",
    "ResolveRecipient",
    "RetryableStepsFailed",
    "SaveMessages",
    "StepFailure",
    "StepsFailed",
]

_log = logging.getLogger("sidecar.engine")


@dataclass(frozen=True)
class ResolveRecipient:
    """Resolve `recipient` and post the root `text` there (its lookup failed)."""

    recipient: str
    text: str


@dataclass(frozen=True)
class PostRoot:
    """Post the root `text` to one resolved channel (one leg of a BroadcastRoot)."""

    channel: Channel
    text: str


@dataclass(frozen=True)
class SaveMessages:
    """Add `posts` to the stored `messages` (they were posted but could not be recorded)."""

    posts: tuple[PostRef, ...]


FailedStep = ResolveRecipient | PostRoot | SaveMessages | Reply | Edit


@dataclass(frozen=True)
class StepFailure:
    """A step that did not happen, and why."""

    step: FailedStep
    error: SidecarError


def _describe(step: FailedStep) -> str:
    if isinstance(step, ResolveRecipient):
        return f"resolve recipient {step.recipient!r}"
    if isinstance(step, PostRoot):
        return f"post to channel {step.channel.id}"
    if isinstance(step, SaveMessages):
        return "store posts " + ",".join(f"{ref.channel_id}/{ref.post_id}" for ref in step.posts)
    if isinstance(step, Reply):
        return f"reply to review {step.review_index} in thread {step.post.post_id}"
    return f"edit post {step.post.post_id}"


class StepsFailed(SidecarError):
    """Some steps of a request's handling failed; `failures` says which, for a later retry."""

    def __init__(self, request_id: str, failures: Sequence[StepFailure]) -> None:
        details = "; ".join(f"{_describe(f.step)}: {f.error}" for f in failures)
        super().__init__(f"request {request_id}: {len(failures)} step(s) failed: {details}")
        self.request_id = request_id
        self.failures = tuple(failures)

    @property
    def transient(self) -> bool:
        """True when every failure is worth retrying."""
        return all(isinstance(f.error, TransientError) for f in self.failures)


class RetryableStepsFailed(StepsFailed, TransientError):
    """Steps failed and then a transient error stopped processing: retry the event, keep the steps."""


class CasGaveUp(SidecarError):
    """The plugin-data compare-and-swap kept conflicting (or kept waiting for posts) until its budget ran out.

    Not a TransientError: the CAS loop already retried for its whole budget, and the usual cause, a
    review on a request whose announcement posted nothing, does not heal by retrying the event.
    """


class ResolutionConflict(PermanentError):
    """An event tried to resolve a request whose posts already show a resolution (Go logs this as an error)."""


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
        """Process one event. Raises StepsFailed, ResolutionConflict, or errors from the ports."""
        context = _context(event)
        failures: list[StepFailure] = []
        try:
            request = event.request
            if event.op is EventOp.DELETE:
                await self._update_phase(event, context, failures)
            elif request is not None and request.state is RequestState.PENDING:
                await self._on_pending(event, request, context, failures)
            elif request is not None and request.state.is_resolved:
                await self._update_phase(event, context, failures)
            else:
                _log.warning("Unknown request state", extra=context)
        except TransientError as exc:
            if failures:
                raise RetryableStepsFailed(event.request_id, failures) from exc
            raise
        if failures:
            raise StepsFailed(event.request_id, failures)

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

    async def _on_pending(
        self, event: RequestEvent, request: AccessRequest, context: dict[str, Any], failures: list[StepFailure]
    ) -> None:
        logins = await self._logins_by_role(request, context)
        plan = decide(None, event, self._settings.render, logins_by_role=logins)
        if not isinstance(plan, Apply):
            raise AssertionError(f"decide() without a record must create one, got {plan}")
        outcome = await self._cas.create(event.request_id, plan.new_record)
        if isinstance(outcome, GaveUp):
            raise CasGaveUp(f"request {event.request_id}: plugin data create gave up: {outcome.reason}")
        if isinstance(outcome, Created):
            already_failed = len(failures)
            try:
                posted = False
                for step in plan.steps:
                    if isinstance(step, BroadcastRoot):
                        posted = await self._broadcast(request, step.text, context, failures) or posted
            except TransientError:
                await self._withdraw(event.request_id, context)
                raise
            if not posted:
                if any(isinstance(f.error, TransientError) for f in failures[already_failed:]):
                    # Mattermost was unreachable for every recipient: give the announcement back so the
                    # dispatcher's retry creates and posts it again (Go would lose it for good).
                    await self._withdraw(event.request_id, context)
                    raise RetryableStepsFailed(event.request_id, failures)
                # Nothing was announced, so there is no thread to reply in (Go would wait for posts and fail).
                return
        elif not isinstance(outcome, AlreadyCreated):
            raise AssertionError(f"unexpected create outcome {outcome}")
        if request.reviews:
            await self._update_phase(event, context, failures)

    async def _withdraw(self, request_id: str, context: dict[str, Any]) -> None:
        """Remove the record we just created while it still has no posts, so a retry announces again.

        Guarded by compare-and-swap: if another replica recorded posts meanwhile, the record stays.
        """

        def empty_unless_posted(record: PluginData) -> PluginData | Skip:
            return PluginData() if not record.messages else Skip("posts were recorded meanwhile")

        outcome = await self._cas.update(request_id, empty_unless_posted)
        if isinstance(outcome, Updated):
            _log.warning("Announcement failed, will retry it", extra=context)

    async def _broadcast(
        self, request: AccessRequest, text: str, context: dict[str, Any], failures: list[StepFailure]
    ) -> bool:
        """Post the root message to every recipient and store the posts; True if anything was posted."""
        recipients = raw_recipients(
            request.roles, request.suggested_reviewers, self._settings.role_to_recipients, request_id=request.id
        )
        channels, lookup_failures = await resolve_channels(recipients, self._chat, request_id=request.id)
        failures.extend(StepFailure(ResolveRecipient(f.recipient, text), f.error) for f in lookup_failures)
        if not channels:
            _log.warning("No channel to post", extra=context)
            return False
        posts: list[PostRef] = []
        post_errors: list[str] = []
        for channel in channels:
            try:
                posts.append(await self._chat.post(channel.id, text))
            except SidecarError as exc:
                post_errors.append(f"channel {channel.id}: {exc}")
                failures.append(StepFailure(PostRoot(channel, text), exc))
        if not posts:
            return False
        for ref in posts:
            _log.info(
                "Successfully posted messages",
                extra={**context, "channel_id": ref.channel_id, "message_id": ref.post_id},
            )
        if post_errors:
            _log.error("Failed to post one or more messages", extra={**context, "error": "; ".join(post_errors)})
        await self._save_messages(request.id, tuple(posts), failures)
        return True

    async def _save_messages(self, request_id: str, posts: tuple[PostRef, ...], failures: list[StepFailure]) -> None:
        def add_posts(record: PluginData) -> PluginData:
            known = set(record.messages)
            return dataclasses.replace(record, messages=record.messages + tuple(p for p in posts if p not in known))

        try:
            outcome = await self._cas.update(request_id, add_posts)
        except SidecarError as exc:
            # Never lose where we posted: the retry layer can store them later.
            failures.append(StepFailure(SaveMessages(posts), exc))
            return
        if not isinstance(outcome, Updated):
            error = TransientError(f"plugin data for request {request_id} could not be updated: {outcome}")
            failures.append(StepFailure(SaveMessages(posts), error))

    async def _update_phase(self, event: RequestEvent, context: dict[str, Any], failures: list[StepFailure]) -> None:
        decided: list[Plan] = []

        def modify(record: PluginData) -> PluginData | Skip:
            plan = decide(record, event, self._settings.render)
            decided.append(plan)
            if isinstance(plan, Apply):
                return plan.new_record
            return Skip(plan.reason.value, retry=plan.retry)

        outcome = await self._cas.update(event.request_id, modify)
        if isinstance(outcome, Missing):
            _log.debug("Failed to update messages: plugin data is missing", extra=context)
            return
        if isinstance(outcome, GaveUp):
            raise CasGaveUp(
                f"request {event.request_id}: plugin data update gave up after {outcome.attempts} attempts: "
                f"{outcome.reason}"
            )
        plan = decided[-1]
        if isinstance(outcome, Skipped) and isinstance(plan, NoOp):
            self._report_noop(plan, context)
            return
        if isinstance(outcome, Updated) and isinstance(plan, Apply):
            await self._run_steps(event, plan, context, failures)
            return
        raise AssertionError(f"CAS outcome {outcome} does not match plan {plan}")

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

    async def _run_steps(
        self, event: RequestEvent, plan: Apply, context: dict[str, Any], failures: list[StepFailure]
    ) -> None:
        request = event.request
        if request is not None and request.reviews and not any(isinstance(s, Reply) for s in plan.steps):
            _log.debug("Failed to post reply: replies are already sent", extra=context)
        edits_failed = False
        edited = False
        for step in plan.steps:
            if isinstance(step, BroadcastRoot):
                raise AssertionError(f"step {step} is not valid once the record exists")
            try:
                if isinstance(step, Reply):
                    await self._chat.post(step.post.channel_id, step.text, root_id=step.post.post_id)
                else:
                    edited = True
                    await self._chat.edit(step.post, step.text)
            except SidecarError as exc:
                edits_failed = edits_failed or isinstance(step, Edit)
                failures.append(StepFailure(step, exc))
        if edited and not edits_failed:
            resolution = plan.new_record.resolution.value
            _log.info("Marked request with resolution and sent emails!", extra={**context, "resolution": resolution})
            _log.info(
                "Successfully notified user",
                extra={**context, "user": plan.new_record.user, "resolution": resolution},
            )
