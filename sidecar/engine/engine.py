"""The engine: one request event → load the record, decide once, write, deliver what the record owes.

    handle(event):
        logins by role (PENDING only: the record created on announcement keeps them, as in Go); recipients
                              by sidecar/engine/routing.py (rules, else static), only when no record is stored
        cas.run(decide)       read the stored record; decide(record, event) → Write(new record) or Keep(no-op);
                              the write is compare-and-swap (a lost race decides again) and claims the work
        deliver               owed(record) → root posts, thread replies, edits (sidecar/engine/owed.py);
                              settle the outcomes into the record (compare-and-swap), again while new posts
                              make replies owed; transient failures stay owed and are retried later
                              (sidecar/engine/retries.py), permanent ones are reported once and given up

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
from typing import Any, cast

from sidecar.domain.errors import (
    AccessDenied,
    CasGaveUp,
    NotFound,
    RecipientError,
    ResolutionConflict,
    SidecarError,
    StepFailure,
    StepsFailed,
    TransientError,
    Unauthorized,
)
from sidecar.domain.model import AccessRequest, Channel, EventOp, PostRef, RequestEvent, RequestState
from sidecar.domain.ports import ChatPort, PluginDataStore, RoleLookup
from sidecar.domain.record import Claim, PluginData
from sidecar.domain.telemetry import NullTelemetry, TargetKind, Telemetry
from sidecar.engine.cas import Cas, GaveUp, Keep, Skipped, Updated, Write
from sidecar.engine.decide import Apply, NoOp, NoOpReason, Plan, decide
from sidecar.engine.owed import Edit, Outcome, PostRoot, Step, ThreadReply, owed, settle, unanswerable
from sidecar.engine.recipients import warn_invalid_reviewers
from sidecar.engine.retries import RetryScheduler
from sidecar.engine.routing import Route, Router
from sidecar.render.classic import RenderSettings

__all__ = ["Engine", "EngineSettings"]

_log = logging.getLogger("sidecar.engine")

#: Mattermost deduplicates a pending post id for 30 s; past this, a step tried before is looked for first.
SEARCH_AFTER = 25.0
#: Searches for an earlier root post start this long before the record was created (clock skew).
SEARCH_MARGIN_MS = 60_000
#: How many settle rounds one event may take (roots, then the replies and edits their new threads owe).
MAX_ROUNDS = 3
#: Requests whose latest request object is remembered for RESUME events (replies need the reviews).
REMEMBERED_REQUESTS = 10_000


@dataclass(frozen=True)
class EngineSettings:
    """Static configuration of the engine."""

    role_to_recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    render: RenderSettings = field(default_factory=RenderSettings)


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
    ) -> None:
        self._roles = roles
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

    def attach_retries(self, retries: RetryScheduler) -> None:
        """Set the retry scheduler (it submits through the dispatcher, which is built after the engine)."""
        self._retries = retries

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
        request = self._remember(event)
        logins: dict[str, list[str]] | None = None
        # Who gets the root posts matters only when this event creates the record. Routing by rules costs
        # lookups (GetUser, Mattermost), so it is done before the write only for a request that is almost
        # surely new; otherwise the write first asks for it (RouteFirst) and routing runs only if no record
        # is stored, so updates of announced requests cost nothing extra.
        route: Route | None = None
        pending = event.op is EventOp.PUT and request is not None and request.state is RequestState.PENDING
        if pending and request is not None:
            logins = await self._logins_by_role(request, context)
            route = self._router.immediate(request)
            if route is None and unseen:
                route = await self._router.route(request, context=context)
        now = self._wall_clock()

        def modify(record: PluginData | None) -> Write[Apply] | Keep[NoOp | RouteFirst]:
            if pending and record is None and route is None:
                return Keep(ROUTE_FIRST)
            recipients = route.recipients if route is not None else ()
            plan = decide(record, event, logins_by_role=logins, recipients=recipients, now_ms=int(now * 1000))
            # Keep is immutable, so a Keep[NoOp] is a Keep[NoOp | RouteFirst]; mypy's invariance needs telling.
            return cast(Write[Apply] | Keep[NoOp | RouteFirst], self._as_write(plan, now))

        outcome = await self._cas.run(event.request_id, modify, absent=unseen)
        if isinstance(outcome, Skipped) and isinstance(outcome.decision, RouteFirst) and request is not None:
            route = await self._router.route(request, context=context)
            outcome = await self._cas.run(event.request_id, modify)
        match outcome:
            case Updated(old=old, new=new):
                if old is None:
                    if route is not None:
                        warn_invalid_reviewers(route.invalid_reviewers, request_id=event.request_id)
                    if not new.delivery.roots_owed:
                        _log.warning("No channel to post", extra=context)
                await self._deliver(event.request_id, new, old, request, context, wrote=True)
            case Skipped(decision=NoOp() as noop, current=current):
                conflict = self._report_noop(noop, request, context)
                if current is not None:
                    await self._deliver(event.request_id, current, None, request, context, wrote=False)
                if conflict is not None:
                    raise conflict
            case GaveUp(attempts=attempts, reason=reason):
                raise CasGaveUp(
                    f"request {event.request_id}: plugin data write gave up after {attempts} attempts: {reason}"
                )

    # ---- deciding ----------------------------------------------------------------------------

    def _as_write(self, plan: Plan, now: float) -> Write[Apply] | Keep[NoOp]:
        if isinstance(plan, NoOp):
            return Keep(plan, retry=plan.retry, reason=plan.reason.value)
        # The writer that makes work owed delivers it: it claims the record in the same write.
        claimed = self._claimed(plan.new_record, now)
        return Write(claimed, dataclasses.replace(plan, new_record=claimed))

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
    ) -> None:
        render = self._settings.render
        # What this very write made owed is fresh: nobody can have posted it yet, so no search is needed.
        fresh: set[tuple[object, ...]] = set()
        if wrote:
            before = {_step_key(s) for s in owed(request_id, old, request, render)} if old is not None else set()
            fresh = {_step_key(s) for s in owed(request_id, record, request, render)} - before
        failures: list[StepFailure] = []
        edited = False
        transient = False
        tried: set[tuple[object, ...]] = set()  # a step that failed here waits for the retry, not the next round
        for _ in range(MAX_ROUNDS):
            steps = [s for s in owed(request_id, record, request, render) if _step_key(s) not in tried]
            drop = unanswerable(record, request)
            if not steps and not drop:
                break
            now = self._wall_clock()
            claim = record.delivery.claim
            if claim is not None and claim.owner != self.replica and claim.until > now:
                # Another replica is on it; look again once its claim has expired, in case it died.
                if self._retries is not None:
                    self._retries.schedule(request_id, delay=claim.until - now + 0.5)
                return
            outcomes = await self._run(request_id, steps, record, fresh, context)
            self._report_notifications(outcomes)
            failures.extend(StepFailure(o.step, o.error) for o in outcomes if o.error is not None)
            edited = edited or any(isinstance(o.step, Edit) and o.error is None for o in outcomes)
            transient = transient or any(isinstance(o.error, TransientError) for o in outcomes)
            tried.update(_step_key(o.step) for o in outcomes if o.error is not None)
            settled = await self._settle(request_id, outcomes, request, drop, record)
            if settled is None:
                return
            record, fresh = settled, set()
            if all(o.error is not None for o in outcomes):
                break  # no progress this round: what is left waits for a retry
        if edited and not any(isinstance(f.step, Edit) for f in failures):
            resolution = record.resolution.value
            _log.info("Marked request with resolution and sent emails!", extra={**context, "resolution": resolution})
            _log.info("Successfully notified user", extra={**context, "user": record.user, "resolution": resolution})
        remaining = owed(request_id, record, request, render)
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
        permanent = [f for f in failures if not isinstance(f.error, TransientError)]
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
    ) -> PluginData | None:
        render = self._settings.render
        now = self._wall_clock()

        def apply(current: PluginData | None) -> Write[None] | Keep[None]:
            if current is None:
                return Keep(None, reason="the record is gone")
            settled = settle(current, outcomes, drop_unanswerable=drop)
            left = owed(request_id, settled, request, render)
            claim = Claim(self.replica, now + self._claim_ttl) if left else None
            delivery = dataclasses.replace(settled.delivery, claim=claim)
            return Write(dataclasses.replace(settled, delivery=delivery), None)

        # The record we delivered from is usually still what is stored: write against it without a read.
        outcome = await self._cas.run(request_id, apply, known=record)
        if isinstance(outcome, Updated):
            return outcome.new
        if isinstance(outcome, GaveUp):
            raise CasGaveUp(f"request {request_id}: recording delivered posts gave up: {outcome.reason}")
        return None

    async def _run(
        self,
        request_id: str,
        steps: Sequence[Step],
        record: PluginData,
        fresh: set[tuple[object, ...]],
        context: dict[str, Any],
    ) -> list[Outcome]:
        """Run the steps at once where order does not matter; a thread's replies go one after the other.

        Root posts, edits and different threads touch different posts, so a request costs the latency of
        its slowest call, not the sum of them; the client's pacing still spaces the calls themselves.
        """
        roots = [s for s in steps if isinstance(s, PostRoot)]
        threads: dict[str, list[ThreadReply]] = {}
        for step in steps:
            if isinstance(step, ThreadReply):
                threads.setdefault(step.post.post_id, []).append(step)
        edits = [s for s in steps if isinstance(s, Edit)]
        async with asyncio.TaskGroup() as group:
            root_task = group.create_task(self._run_roots(roots, record, fresh))
            thread_tasks = [group.create_task(self._run_thread(replies, fresh)) for replies in threads.values()]
            edit_tasks = [group.create_task(self._attempt(step, self._edit(step))) for step in edits]
        done: dict[tuple[object, ...], Outcome] = {}
        for outcome in root_task.result():
            done[_step_key(outcome.step)] = outcome
        for task in thread_tasks:
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
        self, steps: Sequence[PostRoot], record: PluginData, fresh: set[tuple[object, ...]]
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
                calls.append(self._attempt(step, self._post_root(step, channel.id, record, needs_search=needs_search)))
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

    async def _run_thread(self, replies: Sequence[ThreadReply], fresh: set[tuple[object, ...]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for step in replies:
            needs_search = self._needs_search(_step_key(step), fresh)
            outcome = await self._attempt(step, self._post_reply(step, needs_search=needs_search))
            outcomes.append(outcome)
            if outcome.error is not None:
                break  # replies keep their order: the next waits for the one that failed
        return outcomes

    async def _edit(self, step: Edit) -> None:
        self._note_attempt(_step_key(step))
        await self._chat.edit(step.post, step.text)

    async def _post_root(self, step: PostRoot, channel_id: str, record: PluginData, *, needs_search: bool) -> PostRef:
        marker = step.marker(channel_id)
        self._note_attempt(_step_key(step))
        if needs_search:
            since = max(record.delivery.since_ms - SEARCH_MARGIN_MS, 1)
            found = await self._chat.find(marker, channel_id, since_ms=since)
            if found is not None:
                return found
        return await self._chat.post(channel_id, step.text, marker=marker)

    async def _post_reply(self, step: ThreadReply, *, needs_search: bool) -> PostRef:
        self._note_attempt(_step_key(step))
        if needs_search:
            found = await self._chat.find(step.marker, step.post.channel_id, root_id=step.post.post_id)
            if found is not None:
                return found
        return await self._chat.post(step.post.channel_id, step.text, root_id=step.post.post_id, marker=step.marker)

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
