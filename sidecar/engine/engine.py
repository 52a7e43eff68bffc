"""The engine: one request event → load the record, decide once, write, deliver what the record owes.

    handle(event):
        logins by role (PENDING only: the record created on announcement keeps them, as in Go); recipients
                              by sidecar/engine/routing.py (rules, else static), only when no record is stored
        cas.run(decide)       read the stored record; decide(record, event) → Write(new record) or Keep(no-op);
                              the write is compare-and-swap (a lost race decides again) and claims the work
        deliver               owed(record) → root posts, thread replies, reminders, edits, the requester's
                              direct messages (sidecar/engine/owed.py); settle the outcomes into the record
                              (compare-and-swap), again while new posts make replies owed; transient failures
                              stay owed and are retried later (sidecar/engine/retries.py), permanent ones are
                              reported once and given up
        arm                   the request's next reminder or escalation (sidecar/engine/reminders.py)

What a new request needs besides its recipients is gathered with them, once, before the record is created:
the facts the rich texts show (Mattermost usernames of suggested reviewers, friendly resource names), and the
email the requester's messages go to (the user name, or a trait). Every post is rendered for the size limit
learned from the server (16,383 until Mattermost refuses a post as too long; then smaller, for the rest of
the process) and rendered again smaller when refused.

With a `RootDecorator` (in-chat review's buttons), every root post and edit of one carries the attachments it
returns: the engine tells it the post, whether the request is pending, long-term, and whether the post is the
requester's own DM, and nothing else about review (the engine imports no part of it).

Exactly once: every post is made for a PostMarker (request, channel, kind, review index) whose idempotency
key is the same on every attempt, and a step this process did not just make owed (recovered from the
record after a restart, taken over from another replica, or last tried long ago) is first looked for in
Mattermost before it is posted again. Replicas share the work through a claim in the record: the writer
that makes work owed claims it for `claim_ttl` seconds; others leave it alone until the claim expires.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sidecar.domain.email import is_email
from sidecar.domain.errors import (
    AccessDenied,
    CasGaveUp,
    NotFound,
    RecipientError,
    Rejected,
    ResolutionConflict,
    SidecarError,
    StepFailure,
    StepsFailed,
    TransientError,
    Unauthorized,
)
from sidecar.domain.model import AccessRequest, Channel, EventOp, PostRef, RequestEvent, RequestState
from sidecar.domain.ports import (
    POST_TOO_LONG_IDS,
    ChatPort,
    PluginDataStore,
    ResourceNames,
    RoleLookup,
    RootDecorator,
    RootTarget,
    TraitsLookup,
)
from sidecar.domain.record import Claim, Facts, PluginData, Resolution
from sidecar.domain.telemetry import NullTelemetry, TargetKind, Telemetry
from sidecar.engine.cas import Cas, GaveUp, Keep, Skipped, Updated, Write
from sidecar.engine.decide import Apply, NoOp, NoOpReason, Plan, decide
from sidecar.engine.owed import (
    Edit,
    Outcome,
    PostRoot,
    Reminder,
    RequesterDM,
    Step,
    ThreadReply,
    owed,
    settle,
    unanswerable,
)
from sidecar.engine.recipients import warn_invalid_reviewers
from sidecar.engine.reminders import DueTimer, ReminderSettings, advance, next_due_ms
from sidecar.engine.retries import RetryScheduler
from sidecar.engine.routing import Route, Router
from sidecar.engine.texts import CLASSIC, RICH, Texts
from sidecar.engine.views import announced_facts
from sidecar.render.classic import RenderSettings
from sidecar.render.limits import DEFAULT_LIMIT, smaller_limit
from sidecar.render.view import RichPost

__all__ = ["Announcement", "Engine", "EngineSettings"]

_log = logging.getLogger("sidecar.engine")
_T = TypeVar("_T")

#: Mattermost deduplicates a pending post id for 30 s; past this, a step tried before is looked for first.
SEARCH_AFTER = 25.0
#: Searches for an earlier root post start this long before the record was created (clock skew).
SEARCH_MARGIN_MS = 60_000
#: How many settle rounds one event may take (roots, then the replies and edits their new threads owe).
MAX_ROUNDS = 3
#: Requests whose latest request object is remembered for RESUME events (replies need the reviews).
REMEMBERED_REQUESTS = 10_000


#: Logged once per request when its requester gets no direct messages.
NO_REQUESTER_MESSAGES = "Not sending direct messages to the requester"
#: Logged when Mattermost refuses a post as too long and it is rendered again for a smaller limit.
POST_TOO_LONG = "Mattermost refused a post as too long, rendering it for a smaller limit"


@dataclass(frozen=True)
class EngineSettings:
    """Static configuration of the engine.

    `style` is "classic" (the Go plugin's texts) or "rich"; `cluster` is the name Ping reported. With
    `notify_requester` the requester gets direct messages, at the email their user name is, or their `email`
    trait holds, or `requester_email_trait` holds.
    """

    role_to_recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    render: RenderSettings = field(default_factory=RenderSettings)
    style: str = CLASSIC
    cluster: str = ""
    notify_requester: bool = False
    requester_email_trait: str = ""
    reminders: ReminderSettings = field(default_factory=ReminderSettings)

    @property
    def keeps_facts(self) -> bool:
        """Whether records keep the facts (`tm_view`) the rich texts, the requester's messages or reminders need."""
        return self.style == RICH or self.notify_requester or self.reminders.enabled


@dataclass(frozen=True)
class Announcement:
    """What creating a request's record needs: its route, the facts to keep, and where the requester's messages go.

    `requester` is the email (or ""); `requester_note` says why there is none when messages were asked for.
    """

    route: Route
    facts: Facts | None = None
    requester: str = ""
    requester_note: str = ""


class RouteFirst:
    """A modifier's answer when the event creates the record but its recipients are not known yet."""

    def __repr__(self) -> str:
        return "ROUTE_FIRST"


ROUTE_FIRST = RouteFirst()


def _context(event: RequestEvent) -> dict[str, Any]:
    context: dict[str, Any] = {"request_id": event.request_id, "request_op": event.op.value}
    if event.op is EventOp.PUT and event.request is not None:
        context["request_state"] = event.request.state.value
    return context


def _step_key(step: Step) -> tuple[object, ...]:
    # Post ids are unique across requests; recipients are not, so a root post's key names its request.
    if isinstance(step, PostRoot):
        return ("root", step.request_id, step.recipient)
    if isinstance(step, ThreadReply):
        return ("reply", step.post.post_id, step.review_index)
    if isinstance(step, Reminder):
        return ("reminder", step.post.post_id, step.round, step.escalation)
    if isinstance(step, RequesterDM):
        return ("dm", step.request_id, step.index)
    return ("edit", step.post.post_id, step.version)


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
        retries: RetryScheduler | None = None,
        replica: str | None = None,
        claim_ttl: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
        router: Router | None = None,
        traits: TraitsLookup | None = None,
        names: ResourceNames | None = None,
        timer: DueTimer | None = None,
        decorator: RootDecorator | None = None,
    ) -> None:
        self._roles = roles
        self._decorator = decorator
        # Root posts that went to the requester's own DM (a decorator adds nothing there).
        self._requester_posts: OrderedDict[str, None] = OrderedDict()
        self._traits = traits
        self._names = names
        self._timer = timer
        # Without a router, the static configuration alone decides (no access monitoring rules).
        self._router = router or Router(role_to_recipients=settings.role_to_recipients, chat=chat)
        self._chat = chat
        self._settings = settings
        self._telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        self._cas = cas or Cas(store, on_conflict=self._telemetry.cas_conflict)
        self._owed_counts: dict[str, int] = {}
        self._retries = retries
        self.replica = replica or uuid.uuid4().hex[:12]
        self._claim_ttl = claim_ttl
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._latest: OrderedDict[str, AccessRequest | None] = OrderedDict()
        self._attempted: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self._texts = Texts(
            render=settings.render,
            style=settings.style,
            cluster=settings.cluster,
            reminders_max=settings.reminders.max if settings.reminders.after is not None else None,
            clock=wall_clock,
        )
        # The server's post size limit as far as we know it: lowered for good when a post is refused as too long.
        self.limit = DEFAULT_LIMIT

    def attach_retries(self, retries: RetryScheduler) -> None:
        """Set the retry scheduler (it submits through the dispatcher, which is built after the engine)."""
        self._retries = retries

    def attach_timer(self, timer: DueTimer) -> None:
        """Set the reminder timer (it submits through the dispatcher, which is built after the engine)."""
        self._timer = timer

    async def handle(self, event: RequestEvent) -> None:
        """Process one event. Raises StepsFailed (permanent failures), ResolutionConflict, CasGaveUp, or port errors."""
        context = _context(event)
        self._telemetry.event("access_request", event.op.value)
        # A pending request this process has never seen, straight from the watch, is almost always new:
        # create its record without reading first (the compare-and-swap still refuses if one exists).
        unseen = (
            event.op is EventOp.PUT
            and not event.listed
            and event.request is not None
            and event.request.state is RequestState.PENDING
            and event.request_id not in self._latest
        )
        gone = event.op is EventOp.DELETE or (
            event.op is EventOp.RESUME and event.request_id in self._latest and self._latest[event.request_id] is None
        )
        request = self._remember(event)
        logins: dict[str, list[str]] | None = None
        # Who gets the root posts (and what else a new record keeps) matters only when this event creates the
        # record. Routing by rules and the other lookups cost calls (GetUser, Mattermost), so they are made before
        # the write only for a request that is almost surely new; otherwise the write first asks for them
        # (RouteFirst) and they are made only if no record is stored, so updates of announced requests cost
        # nothing extra.
        announcement: Announcement | None = None
        pending = event.op is EventOp.PUT and request is not None and request.state is RequestState.PENDING
        if pending and request is not None:
            logins = await self._logins_by_role(request, context)
            announcement = self._announce_now(request)
            if announcement is None and unseen:
                announcement = await self._announce(request, context)
        now = self._wall_clock()

        def modify(record: PluginData | None) -> Write[Apply] | Keep[NoOp | RouteFirst]:
            if pending and record is None and announcement is None:
                return Keep(ROUTE_FIRST)
            plan = decide(
                record,
                event,
                logins_by_role=logins,
                recipients=announcement.route.recipients if announcement is not None else (),
                now_ms=int(now * 1000),
                facts=announcement.facts if announcement is not None else None,
                requester=announcement.requester if announcement is not None else "",
            )
            plan = self._with_due(plan, record, int(now * 1000))
            # Keep is immutable, so a Keep[NoOp] is a Keep[NoOp | RouteFirst]; mypy's invariance needs telling.
            return cast(Write[Apply] | Keep[NoOp | RouteFirst], self._as_write(plan, now))

        outcome = await self._cas.run(event.request_id, modify, absent=unseen)
        if isinstance(outcome, Skipped) and isinstance(outcome.decision, RouteFirst) and request is not None:
            announcement = await self._announce(request, context)
            outcome = await self._cas.run(event.request_id, modify)
        match outcome:
            case Updated(old=old, new=new):
                if old is None:
                    if announcement is not None:
                        warn_invalid_reviewers(announcement.route.invalid_reviewers, request_id=event.request_id)
                        if announcement.requester_note:
                            _log.info(
                                NO_REQUESTER_MESSAGES, extra={**context, "reason": announcement.requester_note}
                            )
                    if not new.delivery.roots_owed:
                        _log.warning("No channel to post", extra=context)
                await self._deliver(event.request_id, new, old, request, context, wrote=True, gone=gone)
            case Skipped(decision=NoOp() as noop, current=current):
                conflict = self._report_noop(noop, request, context)
                if current is not None:
                    await self._deliver(event.request_id, current, None, request, context, wrote=False, gone=gone)
                if conflict is not None:
                    raise conflict
            case GaveUp(attempts=attempts, reason=reason):
                raise CasGaveUp(
                    f"request {event.request_id}: plugin data write gave up after {attempts} attempts: {reason}"
                )

    # ---- announcing ---------------------------------------------------------------------------

    def _needs_lookups(self, request: AccessRequest) -> bool:
        settings = self._settings
        if not settings.keeps_facts:
            return False
        if self._mentions and any(is_email(r) for r in request.suggested_reviewers):
            return True
        if settings.style == RICH and request.resources and self._names is not None:
            return True
        return settings.notify_requester and not is_email(request.user) and self._traits is not None

    @property
    def _mentions(self) -> bool:
        # Rich posts and reminders (in either style) @mention the suggested reviewers Mattermost knows.
        return self._settings.style == RICH or self._settings.reminders.enabled

    def _announce_now(self, request: AccessRequest) -> Announcement | None:
        """The announcement when it needs no lookup, else None: call `_announce`."""
        route = self._router.immediate(request)
        if route is None or self._needs_lookups(request):
            return None
        if not self._settings.keeps_facts:
            return Announcement(route)
        facts = announced_facts(
            request, cluster=self._settings.cluster, recipients=route.recipients, usernames={}, friendly_names={}
        )
        requester, note = self._requester_without_traits(request.user)
        return Announcement(route, facts, requester, note)

    async def _announce(self, request: AccessRequest, context: dict[str, Any]) -> Announcement:
        """Route the request and gather what its record keeps, the lookups at once."""
        route = await self._router.route(request, context=context)
        if not self._settings.keeps_facts:
            return Announcement(route)
        usernames, friendly, (requester, note) = await asyncio.gather(
            self._usernames(request, context), self._friendly_names(request, context), self._requester(request.user)
        )
        facts = announced_facts(
            request,
            cluster=self._settings.cluster,
            recipients=route.recipients,
            usernames=usernames,
            friendly_names=friendly,
        )
        return Announcement(route, facts, requester, note)

    async def _usernames(self, request: AccessRequest, context: dict[str, Any]) -> dict[str, str]:
        """Mattermost usernames of the suggested reviewers that are emails (for @mentions; best effort)."""
        if not self._mentions:
            return {}
        emails = [r for r in dict.fromkeys(request.suggested_reviewers) if is_email(r)]

        async def one(email: str) -> str | None:
            try:
                return await self._chat.username(email)
            except SidecarError as exc:
                _log.debug("Suggested reviewer not looked up", extra={**context, "reviewer": email, "error": str(exc)})
                return None

        found = await asyncio.gather(*(one(email) for email in emails))
        return {email: name for email, name in zip(emails, found, strict=True) if name}

    async def _friendly_names(self, request: AccessRequest, context: dict[str, Any]) -> dict[str, str]:
        """Friendly names of the requested resources (best effort: raw ids otherwise)."""
        if self._settings.style != RICH or self._names is None or not request.resources:
            return {}
        try:
            return dict(await self._names.friendly_names(request.resources))
        except SidecarError as exc:
            _log.debug("Resource names not looked up", extra={**context, "error": str(exc)})
            return {}

    def _requester_without_traits(self, user: str) -> tuple[str, str]:
        if not self._settings.notify_requester:
            return "", ""
        if is_email(user):
            return user, ""
        return "", "the Teleport user name is not an email and the plugin cannot read user traits"

    async def _requester(self, user: str) -> tuple[str, str]:
        """The email the requester's messages go to and, when there is none, why. TransientError propagates."""
        if not self._settings.notify_requester or is_email(user) or self._traits is None:
            return self._requester_without_traits(user)
        try:
            traits = await self._traits.user_traits(user)
        except AccessDenied:
            return "", "the Teleport user name is not an email and the plugin may not read users (add user: read)"
        except NotFound:
            return "", "the Teleport user name is not an email and the user is not found"
        names = ["email", *([self._settings.requester_email_trait] if self._settings.requester_email_trait else [])]
        for name in names:
            for value in traits.get(name, ()):
                if is_email(value):
                    return value, ""
        wanted = " or ".join(repr(n) for n in names)
        return "", f"the Teleport user name is not an email and no trait {wanted} holds one"

    # ---- deciding ----------------------------------------------------------------------------

    def _as_write(self, plan: Plan, now: float) -> Write[Apply] | Keep[NoOp]:
        if isinstance(plan, NoOp):
            return Keep(plan, retry=plan.retry, reason=plan.reason.value)
        # The writer that makes work owed delivers it: it claims the record in the same write.
        claimed = self._claimed(plan.new_record, now)
        return Write(claimed, dataclasses.replace(plan, new_record=claimed))

    def _with_due(self, plan: Plan, record: PluginData | None, now_ms: int) -> Plan:
        """The plan with the reminders and escalation due by now made owed as well."""
        if not self._settings.reminders.enabled:
            return plan
        base = plan.new_record if isinstance(plan, Apply) else record
        if base is None:
            return plan
        advanced = advance(base, now_ms, self._settings.reminders)
        return Apply(advanced) if advanced is not None else plan

    def _claimed(self, record: PluginData, now: float) -> PluginData:
        claim = Claim(self.replica, now + self._claim_ttl)
        return dataclasses.replace(record, delivery=dataclasses.replace(record.delivery, claim=claim))

    def _remember(self, event: RequestEvent) -> AccessRequest | None:
        """The request to deliver with: the event's, or for RESUME the latest one seen (None once deleted)."""
        if event.op is EventOp.RESUME:
            return self._latest.get(event.request_id)
        request = event.request if event.op is EventOp.PUT else None
        self._latest[event.request_id] = request
        self._latest.move_to_end(event.request_id)
        while len(self._latest) > REMEMBERED_REQUESTS:
            self._latest.popitem(last=False)
        return request

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

    def _report_noop(
        self, plan: NoOp, request: AccessRequest | None, context: dict[str, Any]
    ) -> ResolutionConflict | None:
        if plan.reason is NoOpReason.RESOLUTION_CONFLICT:
            return ResolutionConflict(f"{plan.reason.value}, {plan.detail}")
        if plan.reason is NoOpReason.ALREADY_RESOLVED:
            _log.debug("Request is already resolved, ignoring event", extra=context)
        elif plan.reason is NoOpReason.NOTHING_POSTED:
            _log.debug("Failed to update messages: plugin data is missing", extra=context)
        elif plan.reason is NoOpReason.UNKNOWN_STATE:
            _log.warning("Unknown request state", extra={**context, "detail": plan.detail})
        elif plan.reason is NoOpReason.ALREADY_ANNOUNCED and request is not None and request.reviews:
            _log.debug("Failed to post reply: replies are already sent", extra=context)
        else:
            _log.debug("Nothing to do for the event: %s", plan.reason.value, extra=context)
        return None

    # ---- delivering --------------------------------------------------------------------------

    async def _deliver(
        self,
        request_id: str,
        record: PluginData,
        old: PluginData | None,
        request: AccessRequest | None,
        context: dict[str, Any],
        *,
        wrote: bool,
        gone: bool = False,
    ) -> None:
        """Send what the record owes, settle it, arm the next reminder; raise StepsFailed for permanent failures."""
        final, permanent = await self._deliver_steps(request_id, record, old, request, context, wrote=wrote, gone=gone)
        self._arm(request_id, final)
        for failure in permanent:
            # Given up in the record in the same write, so this is said once per step, never again.
            fix = fix_for(failure)
            _log.error(
                "Gave up a notification",
                extra={**context, "step": failure.step.describe(), "error": str(failure.error), "fix": fix},
            )
            self._telemetry.permanent_failure(failure.step.describe(), str(failure.error), fix)
        if permanent:
            raise StepsFailed(request_id, permanent)

    async def _deliver_steps(
        self,
        request_id: str,
        record: PluginData,
        old: PluginData | None,
        request: AccessRequest | None,
        context: dict[str, Any],
        *,
        wrote: bool,
        gone: bool,
    ) -> tuple[PluginData | None, list[StepFailure]]:
        texts = self._texts
        # What this very write made owed is fresh: nobody can have posted it yet, so no search is needed.
        fresh: set[tuple[object, ...]] = set()
        if wrote:
            fresh = self._fresh(request_id, record, old, request)
        failures: list[StepFailure] = []
        edited = False
        transient = False
        tried: set[tuple[object, ...]] = set()  # a step that failed here waits for the retry, not the next round
        for _ in range(MAX_ROUNDS):
            steps = [s for s in owed(request_id, record, request, texts) if _step_key(s) not in tried]
            # Replies need the request's reviews: dropped only once the request is known to be gone.
            drop = gone and unanswerable(record, request)
            if not steps and not drop:
                break
            now = self._wall_clock()
            claim = record.delivery.claim
            if claim is not None and claim.owner != self.replica and claim.until > now:
                # Another replica is on it; look again once its claim has expired, in case it died.
                if self._retries is not None:
                    self._retries.schedule(request_id, delay=claim.until - now + 0.5)
                return record, []
            outcomes = await self._run(request_id, steps, record, request, fresh, context)
            self._report_notifications(outcomes)
            self._report_requester(outcomes, context)
            failures.extend(StepFailure(o.step, o.error) for o in outcomes if o.error is not None)
            edited = edited or any(isinstance(o.step, Edit) and o.error is None for o in outcomes)
            transient = transient or any(isinstance(o.error, TransientError) for o in outcomes)
            tried.update(_step_key(o.step) for o in outcomes if o.error is not None)
            settled = await self._settle(request_id, outcomes, request, drop, record)
            if settled is None:
                return None, []
            before, record = settled
            # What the settle made owed (the threads of new posts, the requester's first message) is fresh too.
            fresh = self._fresh(request_id, record, before, request)
            if all(o.error is not None for o in outcomes):
                break  # no progress this round: what is left waits for a retry
        if edited and not any(isinstance(f.step, Edit) for f in failures):
            resolution = record.resolution.value
            _log.info("Marked request with resolution and sent emails!", extra={**context, "resolution": resolution})
            _log.info("Successfully notified user", extra={**context, "user": record.user, "resolution": resolution})
        remaining = owed(request_id, record, request, texts)
        self._count_owed(request_id, len(remaining))
        if self._retries is not None:
            if remaining or transient:
                _log.warning(
                    "Notifications still owed, will retry",
                    extra={**context, "owed": len(remaining), "error": _summary(failures, transient=True)},
                )
                self._telemetry.retry("owed_work")
                self._retries.schedule(request_id)
            else:
                self._retries.succeeded(request_id)
        # A requester who cannot get messages was told about once (_report_requester); that is not a failure.
        permanent = [
            f for f in failures if not isinstance(f.error, TransientError) and not isinstance(f.step, RequesterDM)
        ]
        return record, permanent

    def _fresh(
        self, request_id: str, record: PluginData, before: PluginData | None, request: AccessRequest | None
    ) -> set[tuple[object, ...]]:
        """Steps `record` owes that `before` (what the write replaced) did not: nobody can have made them yet."""
        was = {_step_key(s) for s in owed(request_id, before, request, self._texts)} if before is not None else set()
        return {_step_key(s) for s in owed(request_id, record, request, self._texts)} - was

    def _arm(self, request_id: str, record: PluginData | None) -> None:
        """Arm the timer for the record's next reminder or escalation (or disarm it)."""
        if self._timer is None or not self._settings.reminders.enabled:
            return
        due = next_due_ms(record, self._settings.reminders) if record is not None else None
        self._timer.arm(request_id, due / 1000 if due is not None else None)

    def _report_requester(self, outcomes: Sequence[Outcome], context: dict[str, Any]) -> None:
        """Say once why the requester gets no more messages (the settle stops them for good)."""
        for outcome in outcomes:
            step, error = outcome.step, outcome.error
            if isinstance(step, RequesterDM) and error is not None and not isinstance(error, TransientError):
                extra = {**context, "requester": step.recipient, "reason": str(error)}
                _log.warning(NO_REQUESTER_MESSAGES, extra=extra)

    def _report_notifications(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if not isinstance(outcome.step, PostRoot) or (outcome.error is None and outcome.post is None):
                continue  # only root posts tell a recipient; a channel already posted to is not a notification
            kind: TargetKind = "channel" if "/" in outcome.step.recipient else "dm"
            if outcome.error is None:
                self._telemetry.notification(kind, "ok")
            else:
                self._telemetry.notification(kind, "retry" if isinstance(outcome.error, TransientError) else "failed")

    def _count_owed(self, request_id: str, count: int) -> None:
        if count:
            self._owed_counts[request_id] = count
        else:
            self._owed_counts.pop(request_id, None)
        self._telemetry.owed_work(sum(self._owed_counts.values()))

    async def _settle(
        self,
        request_id: str,
        outcomes: Sequence[Outcome],
        request: AccessRequest | None,
        drop: bool,
        record: PluginData,
    ) -> tuple[PluginData, PluginData] | None:
        """Write the outcomes into the record; (the record the write replaced, the new one), or None if it is gone."""
        texts = self._texts
        now = self._wall_clock()

        def apply(current: PluginData | None) -> Write[None] | Keep[None]:
            if current is None:
                return Keep(None, reason="the record is gone")
            settled = settle(current, outcomes, drop_unanswerable=drop)
            left = owed(request_id, settled, request, texts)
            claim = Claim(self.replica, now + self._claim_ttl) if left else None
            delivery = dataclasses.replace(settled.delivery, claim=claim)
            return Write(dataclasses.replace(settled, delivery=delivery), None)

        # The record we delivered from is usually still what is stored: write against it without a read.
        outcome = await self._cas.run(request_id, apply, known=record)
        if isinstance(outcome, Updated):
            assert outcome.old is not None  # apply() writes only over a stored record
            return outcome.old, outcome.new
        if isinstance(outcome, GaveUp):
            raise CasGaveUp(f"request {request_id}: recording delivered posts gave up: {outcome.reason}")
        return None

    async def _run(
        self,
        request_id: str,
        steps: Sequence[Step],
        record: PluginData,
        request: AccessRequest | None,
        fresh: set[tuple[object, ...]],
        context: dict[str, Any],
    ) -> list[Outcome]:
        """Run the steps at once where order does not matter; a thread's replies go one after the other.

        Root posts, edits and different threads touch different posts, so a request costs the latency of
        its slowest call, not the sum of them; the client's pacing still spaces the calls themselves.
        """
        roots = [s for s in steps if isinstance(s, PostRoot)]
        threads: dict[str, list[ThreadReply | Reminder]] = {}
        for step in steps:
            if isinstance(step, ThreadReply | Reminder):
                threads.setdefault(step.post.post_id, []).append(step)
        edits = [s for s in steps if isinstance(s, Edit)]
        # The requester's messages, like a thread, go one after the other.
        dms = [s for s in steps if isinstance(s, RequesterDM)]
        async with asyncio.TaskGroup() as group:
            root_task = group.create_task(self._run_roots(roots, record, request, fresh))
            thread_tasks = [group.create_task(self._run_thread(replies, fresh)) for replies in threads.values()]
            edit_tasks = [
                group.create_task(self._attempt(step, self._edit(request_id, step, record, request))) for step in edits
            ]
            dm_task = group.create_task(self._run_dms(dms, record, fresh))
        done: dict[tuple[object, ...], Outcome] = {}
        for outcome in root_task.result():
            done[_step_key(outcome.step)] = outcome
        for task in [*thread_tasks, dm_task]:
            done.update((_step_key(o.step), o) for o in task.result())
        done.update((_step_key(t.result().step), t.result()) for t in edit_tasks)
        outcomes = [done[key] for key in (_step_key(s) for s in steps) if key in done]
        for outcome in outcomes:
            if isinstance(outcome.step, PostRoot) and outcome.post is not None:
                _log.info(
                    "Successfully posted messages",
                    extra={**context, "channel_id": outcome.post.channel_id, "message_id": outcome.post.post_id},
                )
        post_errors = [
            f"{o.step.recipient}: {o.error}" for o in outcomes if isinstance(o.step, PostRoot) and o.error is not None
        ]
        if post_errors:
            _log.error("Failed to post one or more messages", extra={**context, "error": "; ".join(post_errors)})
        return outcomes

    async def _attempt(self, step: Step, call: Awaitable[PostRef | None]) -> Outcome:
        try:
            return Outcome(step, post=await call)
        except SidecarError as exc:
            return Outcome(step, error=exc)

    async def _run_roots(
        self,
        steps: Sequence[PostRoot],
        record: PluginData,
        request: AccessRequest | None,
        fresh: set[tuple[object, ...]],
    ) -> list[Outcome]:
        """Resolve every recipient, then post once per channel not posted to yet (two recipients may share one)."""
        resolved = await asyncio.gather(*(self._attempt_resolve(step.recipient) for step in steps))
        posted = {post.channel_id for post in record.messages}
        first: dict[str, PostRoot] = {}
        sharing: list[tuple[PostRoot, str]] = []
        outcomes: dict[PostRoot, Outcome] = {}
        calls: list[Awaitable[Outcome]] = []
        primaries: list[PostRoot] = []
        for step, channel in zip(steps, resolved, strict=True):
            if isinstance(channel, SidecarError):
                outcomes[step] = Outcome(step, error=channel)
            elif channel.id in posted:
                outcomes[step] = Outcome(step)  # this channel already has the request's post
            elif channel.id in first:
                sharing.append((step, channel.id))
            else:
                first[channel.id] = step
                needs_search = self._needs_search(_step_key(step), fresh)
                primaries.append(step)
                post = self._post_root(step, channel.id, record, request, needs_search=needs_search)
                calls.append(self._attempt(step, post))
        outcomes.update(zip(primaries, await asyncio.gather(*calls), strict=True))
        for step, channel_id in sharing:
            # Settled with the recipient that posted: done when it is, still owed (or given up) when it is not.
            primary = outcomes[first[channel_id]]
            outcomes[step] = Outcome(step, error=primary.error)
        return [outcomes[step] for step in steps]

    async def _attempt_resolve(self, recipient: str) -> Channel | SidecarError:
        try:
            return await self._chat.resolve(recipient)
        except SidecarError as exc:
            return exc

    async def _run_thread(
        self, steps: Sequence[ThreadReply | Reminder], fresh: set[tuple[object, ...]]
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for step in steps:
            needs_search = self._needs_search(_step_key(step), fresh)
            outcome = await self._attempt(step, self._post_reply(step, needs_search=needs_search))
            outcomes.append(outcome)
            if outcome.error is not None:
                break  # replies keep their order: the next waits for the one that failed
        return outcomes

    async def _run_dms(
        self, steps: Sequence[RequesterDM], record: PluginData, fresh: set[tuple[object, ...]]
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for step in steps:
            needs_search = self._needs_search(_step_key(step), fresh)
            outcome = await self._attempt(step, self._post_dm(step, record, needs_search=needs_search))
            outcomes.append(outcome)
            if outcome.error is not None:
                break  # the messages keep their order
        return outcomes

    async def _sized(self, step: Step, send: Callable[[RichPost], Awaitable[_T]]) -> _T:
        """Send the step's post rendered for the limit we know; smaller, and again, while it is refused as too long."""
        limit = self.limit
        while True:
            try:
                return await send(step.content(limit))
            except Rejected as exc:
                smaller = smaller_limit(limit) if exc.server_id in POST_TOO_LONG_IDS else None
                if smaller is None:
                    raise
                _log.warning(POST_TOO_LONG, extra={"step": step.describe(), "limit": smaller, "error": str(exc)})
                # Learned for the rest of the process: the next posts are rendered for it at once.
                self.limit = min(self.limit, smaller)
                limit = smaller

    async def _edit(self, request_id: str, step: Edit, record: PluginData, request: AccessRequest | None) -> None:
        self._note_attempt(_step_key(step))
        decorator = self._decorator
        target = None
        if decorator is not None:
            target = self._root_target(request_id, step.post.channel_id, step.post.post_id, record, request)
            if target.pending and not target.to_requester and await self._requester_dm(step.post, record):
                target = dataclasses.replace(target, to_requester=True)

        async def send(post: RichPost) -> None:
            if decorator is not None and target is not None:
                # Sent even when empty: a post whose request was decided loses its buttons only so.
                attachments = decorator.root_attachments(target, post.attachments)
                await self._chat.edit(step.post, post.message, {"attachments": attachments})
            elif post.attachments:
                await self._chat.edit(step.post, post.message, post.props())
            else:  # a text-only post keeps the Go plugin's call
                await self._chat.edit(step.post, post.message)

        await self._sized(step, send)

    async def _post_root(
        self,
        step: PostRoot,
        channel_id: str,
        record: PluginData,
        request: AccessRequest | None,
        *,
        needs_search: bool,
    ) -> PostRef:
        marker = step.marker(channel_id)
        self._note_attempt(_step_key(step))
        decorator = self._decorator
        target = None
        if decorator is not None:
            target = self._root_target(step.request_id, channel_id, "", record, request, recipient=step.recipient)
        if needs_search:
            since = max(record.delivery.since_ms - SEARCH_MARGIN_MS, 1)
            found = await self._chat.find(marker, channel_id, since_ms=since)
            if found is not None:
                return self._noted_root(found, target)

        async def send(post: RichPost) -> PostRef:
            if decorator is None or target is None:
                return await self._chat.post(channel_id, post.message, marker=marker, **_props(post))
            attachments = decorator.root_attachments(target, post.attachments)
            props = {"attachments": attachments} if attachments else None
            return await self._chat.post(channel_id, post.message, marker=marker, props=props)

        return self._noted_root(await self._sized(step, send), target)

    async def _requester_dm(self, post: PostRef, record: PluginData) -> bool:
        """Whether `channel_id` is the bot's DM with the requester: asked of Mattermost (its answers are cached)
        for a pending post this process did not make, so a restart cannot put buttons in the requester's DM."""
        for email in {name.lower() for name in (record.user, record.delivery.requester) if is_email(name)}:
            channel = await self._chat.direct_channel(email)
            if channel is not None and channel.id == post.channel_id:
                self._requester_posts[post.post_id] = None  # asked once per post
                return True
        return False

    def _noted_root(self, posted: PostRef, target: RootTarget | None) -> PostRef:
        """`posted`, remembered when it is the requester's own DM (its edits get nothing from the decorator)."""
        if target is not None and target.to_requester:
            self._requester_posts[posted.post_id] = None
            self._requester_posts.move_to_end(posted.post_id)
            while len(self._requester_posts) > REMEMBERED_REQUESTS:
                self._requester_posts.popitem(last=False)
        return posted

    def _root_target(
        self,
        request_id: str,
        channel_id: str,
        post_id: str,
        record: PluginData,
        request: AccessRequest | None,
        *,
        recipient: str = "",
    ) -> RootTarget:
        """What a decorator needs to know about a root post. Pending only while the latest request says so: a
        request this process has not seen since it started gets nothing a decorator adds until its next event."""
        pending = (
            record.resolution is Resolution.UNRESOLVED
            and request is not None
            and request.state is RequestState.PENDING
        )
        if recipient:
            requester = {record.user, record.delivery.requester, request.user if request is not None else ""}
            emails = {name.lower() for name in requester if is_email(name)}
            to_requester = recipient.lower() in emails
        else:
            # Which post went to the requester is known from its root post; a restart forgets it (a click there is
            # refused as self-review anyway).
            to_requester = post_id in self._requester_posts
        return RootTarget(
            request_id=request_id,
            channel_id=channel_id,
            post_id=post_id,
            pending=pending,
            long_term=request.long_term if request is not None else False,
            to_requester=to_requester,
            request_expires=request.expiry if request is not None else None,
        )

    async def _post_reply(self, step: ThreadReply | Reminder, *, needs_search: bool) -> PostRef:
        self._note_attempt(_step_key(step))
        if needs_search:
            found = await self._chat.find(step.marker, step.post.channel_id, root_id=step.post.post_id)
            if found is not None:
                return found

        async def send(post: RichPost) -> PostRef:
            return await self._chat.post(
                step.post.channel_id, post.message, root_id=step.post.post_id, marker=step.marker, **_props(post)
            )

        return await self._sized(step, send)

    async def _post_dm(self, step: RequesterDM, record: PluginData, *, needs_search: bool) -> PostRef:
        self._note_attempt(_step_key(step))
        channel = await self._chat.direct_channel(step.recipient)
        if channel is None:
            raise RecipientError(step.recipient, "no Mattermost user has this email")
        marker = step.marker(channel.id)
        if needs_search:
            since = max(record.delivery.since_ms - SEARCH_MARGIN_MS, 1)
            found = await self._chat.find(marker, channel.id, since_ms=since)
            if found is not None:
                return found

        async def send(post: RichPost) -> PostRef:
            return await self._chat.post(channel.id, post.message, marker=marker, **_props(post))

        return await self._sized(step, send)

    def _needs_search(self, key: tuple[object, ...], fresh: set[tuple[object, ...]]) -> bool:
        first = self._attempted.get(key)
        if first is not None:
            # Tried before by us: the server's own deduplication covers a retry for a while.
            return self._monotonic() - first >= SEARCH_AFTER
        return key not in fresh

    def _note_attempt(self, key: tuple[object, ...]) -> None:
        self._attempted.setdefault(key, self._monotonic())
        while len(self._attempted) > 4 * REMEMBERED_REQUESTS:
            self._attempted.popitem(last=False)


def _props(post: RichPost) -> dict[str, Any]:
    """The `props` argument for a post with attachments; none for a text-only one (the Go plugin's call)."""
    return {"props": post.props()} if post.attachments else {}


def fix_for(failure: StepFailure) -> str:
    """What the operator can do about a notification given up."""
    error, step = failure.error, failure.step
    if isinstance(error, RecipientError):
        return error.hint or "check the recipient; `teleport-mattermost check -c CONFIG` tests every configured one"
    if isinstance(error, AccessDenied):
        return "add the bot to the channel (or let it post there); `teleport-mattermost check -c CONFIG` names it"
    if isinstance(error, NotFound):
        if isinstance(step, PostRoot):
            return "the user or channel does not exist: fix the recipient in the config or the suggested reviewers"
        return "the post was deleted in Mattermost; nothing more will be sent to it"
    if isinstance(error, Unauthorized):
        return "the bot token is refused: create a new token and update `mattermost.token`"
    return "see the error; `teleport-mattermost check -c CONFIG` tests the configuration"


def _summary(failures: Sequence[StepFailure], *, transient: bool) -> str:
    chosen = [f for f in failures if isinstance(f.error, TransientError) == transient]
    return "; ".join(f"{f.step.describe()}: {f.error}" for f in chosen[:5])
