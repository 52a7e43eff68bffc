"""The click pipeline: a button click or a reason-dialog submission → at most one review, as the bound user.

A click (`handle_action`, the body Mattermost POSTs to the integration URL) goes through these steps; each one
that fails ends the click with an ephemeral text to the clicker, and nothing is submitted:

1. the body has `user_id`, `channel_id`, `post_id` (Mattermost ids) and a `context`;
2. the context's HMAC, action and expiry verify, and it was signed for this channel (and post, when known);
3. Mattermost's signed `trigger_id` names this user and is fresh and unused (`review.verify_trigger_id`);
4. the user has clicks left in their budget, and the pipeline has room;
5. the post is one the sidecar stored in the request's plugin data;
6. the Mattermost user exists, is active and is not a bot;
7. Teleport still has the request, pending and not long-term;
8. exactly one Teleport user is bound to the clicker (`binding.py`), and it is not the requester;
9. with `review.reason` off the review is submitted; otherwise a dialog asking for the reason is opened with
   the trigger id and a single-use signed state, and the click is answered without text;
10. SubmitAccessReview as the bound user, on their behalf; Auth's errors become texts (`answers.py`).

A dialog submission (`handle_dialog`) carries no trigger id: its signed state, bound to the user and channel
verified at click time and used once, stands in for steps 1-3, and steps 5-8 run again, since minutes may have
passed. Success needs no text: the watcher posts the review in the thread as for any review.

Every click and submission logs exactly one line (logger `sidecar.review`): Mattermost user, Teleport user,
request, action, post, outcome; warnings for outcomes an honest click cannot produce. No key, context MAC or
state is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from sidecar.domain.errors import AccessDenied, ClickRefused, NotFound, SidecarError, TransientError
from sidecar.domain.model import PostRef, RequestState
from sidecar.domain.ports import TraitsLookup
from sidecar.review.answers import REASON_FIELD, REASON_MAX, explain_submit_error, reason_dialog
from sidecar.review.binding import Binder
from sidecar.review.guards import ClickLimiter, Concurrency
from sidecar.review.ports import (
    ChatUser,
    ChatUsers,
    DialogOpener,
    RequestLookup,
    RequestPosts,
    ReviewSubmitter,
    SigningKeySource,
    UserDirectory,
)
from sidecar.review.settings import ReasonMode, ReviewSettings
from sidecar.review.signing import (
    KeyRing,
    NonceBook,
    replayed_state,
    sign_dialog_state,
    verify_action,
    verify_dialog_state,
)
from sidecar.review.texts import (
    CHAT_USER_BOT,
    CHAT_USER_DEACTIVATED,
    CHAT_USER_UNKNOWN,
    DIALOG_FAILED,
    DIALOG_INVALID,
    ERROR,
    INVALID_BUTTON,
    LONG_TERM,
    NOT_OUR_POST,
    PLUGIN_NOT_ALLOWED,
    REASON_REQUIRED,
    REASON_TOO_LONG,
    REQUEST_GONE,
    REQUEST_RESOLVED,
    SELF_REVIEW,
    SUBMITTED,
    TIMEOUT,
    UNAVAILABLE,
    Outcome,
    refused,
    shown,
)
from sidecar.review.trigger import TriggerVerifier
from sidecar.review.urls import DIALOG_PATH, callback_url

__all__ = ["DEADLINE", "DIALOG_TTL", "ClickPipeline", "ReviewPorts"]

log = logging.getLogger("sidecar.review")

DEADLINE: Final = 25.0  # seconds: Mattermost gives up on an integration after 30
DIALOG_TTL: Final = 300  # seconds a reason form stays valid
_MATTERMOST_ID: Final = re.compile(r"[a-z0-9]{26}")
_STATES: Final = {"approve": RequestState.APPROVED, "deny": RequestState.DENIED}
T = TypeVar("T")


@dataclass(frozen=True)
class ReviewPorts:
    """Everything the pipeline reaches outside itself (see `ports.py`)."""

    posts: RequestPosts
    chat_users: ChatUsers
    requests: RequestLookup
    directory: UserDirectory
    traits: TraitsLookup
    submitter: ReviewSubmitter
    dialogs: DialogOpener
    signing_key: SigningKeySource


@dataclass
class _Click:
    """What one click's log line says; filled in as the steps learn it."""

    kind: str
    mattermost_user_id: str = ""
    mattermost_user: str = ""
    teleport_user: str = ""
    request_id: str = ""
    action: str = ""
    channel_id: str = ""
    post_id: str = ""
    submitting: bool = False
    started: float = field(default_factory=time.monotonic)

    def fields(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "mattermost_user_id": self.mattermost_user_id,
            "mattermost_user": self.mattermost_user,
            "teleport_user": self.teleport_user,
            "request_id": self.request_id,
            "action": self.action,
            "channel_id": self.channel_id,
            "post_id": self.post_id,
            "duration_ms": round((time.monotonic() - self.started) * 1000),
        }


@dataclass(frozen=True)
class _Reviewer:
    """The outcome of steps 5-8: who reviews, as whom."""

    chat: ChatUser
    teleport_user: str


class ClickPipeline:
    """Handles the two callbacks; each returns the JSON object to answer Mattermost with."""

    def __init__(
        self,
        settings: ReviewSettings,
        ports: ReviewPorts,
        *,
        clock: Callable[[], float] = time.time,
        trigger: TriggerVerifier | None = None,
        limiter: ClickLimiter | None = None,
        concurrency: Concurrency | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        if settings.keys is None:
            raise ValueError("the click pipeline needs review enabled (a key ring)")
        self._settings = settings
        self._keys: KeyRing = settings.keys
        self._ports = ports
        self._clock = clock
        self._trigger = trigger or TriggerVerifier(ports.signing_key, clock=clock)
        self._limiter = limiter or ClickLimiter()
        self._concurrency = concurrency or Concurrency()
        self._deadline = deadline
        self._states = NonceBook()
        self._binder = Binder(
            settings.binding,
            trait=settings.trait,
            email=settings.email,
            directory=ports.directory,
            traits=ports.traits,
        )
        self._dialog_url = callback_url(settings.public_url, DIALOG_PATH)

    # --- the two entry points ----------------------------------------------------------------------

    async def handle_action(self, body: object) -> dict[str, Any]:
        """A button click: `{"ephemeral_text": ...}`, or `{}` when a reason dialog was opened instead."""
        click = _Click("button")
        try:
            text = await self._bounded(click, self._action(body, click))
        except ClickRefused as refusal:
            self._log(click, refusal.outcome, refusal.detail, refusal.__cause__)
            return {"ephemeral_text": str(refusal)}
        if text is None:
            self._log(click, Outcome.DIALOG_OPENED)
            return {}
        self._log(click, Outcome.SUBMITTED)
        return {"ephemeral_text": text}

    async def handle_dialog(self, body: object) -> dict[str, Any]:
        """A dialog submission: `{}` closes the dialog; `{"errors": ...}` or `{"error": ...}` keeps it open."""
        click = _Click("dialog")
        try:
            answer, outcome = await self._bounded(click, self._dialog(body, click))
        except ClickRefused as refusal:
            self._log(click, refusal.outcome, refusal.detail, refusal.__cause__)
            return {"error": str(refusal)}
        self._log(click, outcome)
        return answer

    async def _bounded(self, click: _Click, work: Awaitable[T]) -> T:
        """Run one click's steps within the deadline; anything unexpected fails closed (logged with its error)."""
        try:
            async with asyncio.timeout(self._deadline):
                return await work
        except ClickRefused:
            raise
        except TimeoutError:
            if click.submitting:
                raise refused(Outcome.TIMEOUT, TIMEOUT, submitted_nothing=False) from None
            raise refused(Outcome.TIMEOUT, UNAVAILABLE) from None
        except Exception as exc:
            # The click's one log line carries this error (and, at debug level, its traceback).
            raise refused(Outcome.ERROR, ERROR, detail=f"unexpected {type(exc).__name__}") from exc

    # --- a click -----------------------------------------------------------------------------------

    async def _action(self, body: object, click: _Click) -> str | None:
        fields = _ids(body, ("user_id", "channel_id", "post_id"))
        if fields is None or not isinstance(body, Mapping):
            raise refused(Outcome.MALFORMED, INVALID_BUTTON)
        user_id, channel_id, post_id = fields
        click.mattermost_user_id, click.channel_id, click.post_id = user_id, channel_id, post_id
        now = self._clock()
        context = verify_action(self._keys, body.get("context"), channel_id=channel_id, post_id=post_id, now=now)
        click.request_id, click.action = context.request_id, context.action
        trigger_id = body.get("trigger_id")
        if self._settings.verify_trigger_id:
            await self._trigger.verify(trigger_id, user_id)
        self._limiter.charge(user_id, self._clock())
        async with self._concurrency.slot():
            reviewer = await self._reviewer(click, context.request_id, channel_id, post_id, user_id)
            if self._settings.reason is ReasonMode.OFF:
                return await self._submit(click, reviewer, context.request_id, context.action, "")
            if not isinstance(trigger_id, str) or not trigger_id:
                raise refused(Outcome.TRIGGER_MISSING, DIALOG_FAILED)
            await self._open_dialog(reviewer, trigger_id, context.request_id, context.action, channel_id, post_id)
            return None

    async def _open_dialog(
        self,
        reviewer: _Reviewer,
        trigger_id: str,
        request_id: str,
        action: str,
        channel_id: str,
        post_id: str,
    ) -> None:
        state = sign_dialog_state(
            self._keys,
            request_id=request_id,
            action=action,
            channel_id=channel_id,
            post_id=post_id,
            user_id=reviewer.chat.id,
            expires_at=int(self._clock()) + DIALOG_TTL,
        )
        dialog = reason_dialog(
            action=action,
            request_id=request_id,
            teleport_user=reviewer.teleport_user,
            mode=self._settings.reason,
            state=state,
        )
        try:
            await self._ports.dialogs.open_dialog(trigger_id, self._dialog_url, dialog)
        except TransientError as exc:
            raise refused(Outcome.UNAVAILABLE, UNAVAILABLE, detail=str(exc)) from None
        except SidecarError as exc:
            raise refused(Outcome.ERROR, DIALOG_FAILED, detail=str(exc)) from None

    # --- a dialog submission -----------------------------------------------------------------------

    async def _dialog(self, body: object, click: _Click) -> tuple[dict[str, Any], Outcome]:
        fields = _ids(body, ("user_id", "channel_id"))
        if fields is None or not isinstance(body, Mapping):
            raise refused(Outcome.MALFORMED, DIALOG_INVALID)
        user_id, channel_id = fields
        click.mattermost_user_id, click.channel_id = user_id, channel_id
        if body.get("cancelled") is True:
            return {}, Outcome.CANCELLED
        state = verify_dialog_state(
            self._keys, body.get("state"), user_id=user_id, channel_id=channel_id, now=self._clock()
        )
        click.request_id, click.action, click.post_id = state.request_id, state.action, state.post_id
        self._limiter.charge(user_id, self._clock())
        reason = _reason(body.get("submission"))
        problem = self._reason_problem(reason)
        if problem:
            return {"errors": {REASON_FIELD: problem}}, Outcome.REASON_MISSING
        async with self._concurrency.slot():
            reviewer = await self._reviewer(click, state.request_id, channel_id, state.post_id, user_id)
            if not self._states.consume(state.nonce, state.expires_at, self._clock()):
                raise replayed_state()
            try:
                await self._submit(click, reviewer, state.request_id, state.action, reason)
            except ClickRefused as refusal:
                if refusal.outcome == Outcome.UNAVAILABLE.value:
                    self._states.release(state.nonce)  # nothing certain was done: the same form may be sent again
                raise
        return {}, Outcome.SUBMITTED

    def _reason_problem(self, reason: str) -> str:
        if not reason and self._settings.reason is ReasonMode.REQUIRED:
            return REASON_REQUIRED
        if len(reason) > REASON_MAX:
            return REASON_TOO_LONG.format(limit=REASON_MAX)
        return ""

    # --- the shared steps --------------------------------------------------------------------------

    async def _reviewer(self, click: _Click, request_id: str, channel_id: str, post_id: str, user_id: str) -> _Reviewer:
        """Steps 5-8: our post, an active human, a pending short-term request, one bound user (not the requester)."""
        try:
            posts = await _looked_up(self._ports.posts.posts_of(request_id))
        except NotFound:
            posts = frozenset()
        if PostRef(channel_id, post_id) not in posts:
            raise refused(Outcome.NOT_OUR_POST, NOT_OUR_POST)
        try:
            chat = await _looked_up(self._ports.chat_users.chat_user(user_id))
        except NotFound:
            raise refused(Outcome.CHAT_USER_UNKNOWN, CHAT_USER_UNKNOWN) from None
        click.mattermost_user = chat.username
        if chat.deleted:
            raise refused(Outcome.CHAT_USER_DEACTIVATED, CHAT_USER_DEACTIVATED)
        if chat.is_bot:
            raise refused(Outcome.CHAT_USER_BOT, CHAT_USER_BOT)
        try:
            facts = await _looked_up(self._ports.requests.access_request(request_id))
        except NotFound:
            facts = None
        rid = shown(request_id)
        if facts is None:
            raise refused(Outcome.REQUEST_GONE, REQUEST_GONE.format(rid=rid))
        if facts.long_term:
            raise refused(Outcome.LONG_TERM, LONG_TERM.format(rid=rid))
        if facts.state is not RequestState.PENDING:
            state = facts.state.value.lower()
            raise refused(Outcome.REQUEST_RESOLVED, REQUEST_RESOLVED.format(rid=rid, state=state))
        teleport_user = await self._binder.teleport_user(chat)
        click.teleport_user = teleport_user
        if teleport_user == facts.user:
            raise refused(Outcome.SELF_REVIEW, SELF_REVIEW.format(rid=rid))
        return _Reviewer(chat, teleport_user)

    async def _submit(self, click: _Click, reviewer: _Reviewer, request_id: str, action: str, reason: str) -> str:
        click.submitting = True
        try:
            await self._ports.submitter.submit_review_on_behalf(
                request_id, reviewer.teleport_user, _STATES[action], reason
            )
        except SidecarError as exc:
            raise explain_submit_error(exc, user=reviewer.teleport_user, request_id=request_id) from None
        verb = "approval" if action == "approve" else "denial"
        return SUBMITTED.format(verb=verb, rid=shown(request_id), user=shown(reviewer.teleport_user))

    def _log(self, click: _Click, outcome: Outcome | str, detail: str = "", error: BaseException | None = None) -> None:
        outcome = Outcome(outcome)
        extra = {**click.fields(), "outcome": outcome.value}
        if detail:
            extra["detail"] = detail
        if outcome is Outcome.ERROR:
            level = logging.ERROR
        elif outcome.suspicious:
            level = logging.WARNING
        else:
            level = logging.INFO
        message = "Review click" if click.kind == "button" else "Review dialog"
        log.log(level, message, extra=extra, exc_info=error if outcome is Outcome.ERROR else None)


async def _looked_up(call: Awaitable[T]) -> T:
    """Await a lookup port; its errors become refusals (NotFound is left to the caller)."""
    try:
        return await call
    except (NotFound, ClickRefused):
        raise
    except AccessDenied as exc:
        raise refused(Outcome.PLUGIN_NOT_ALLOWED, PLUGIN_NOT_ALLOWED, detail=str(exc)) from None
    except TransientError as exc:
        raise refused(Outcome.UNAVAILABLE, UNAVAILABLE, detail=str(exc)) from None
    except SidecarError as exc:
        raise refused(Outcome.ERROR, ERROR, detail=str(exc)) from None


def _ids(body: object, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The named Mattermost ids of a body, or None when one is missing or not an id."""
    if not isinstance(body, Mapping):
        return None
    values = tuple(body.get(name) for name in names)
    if not all(isinstance(v, str) and _MATTERMOST_ID.fullmatch(v) for v in values):
        return None
    return tuple(str(v) for v in values)


def _reason(submission: object) -> str:
    if not isinstance(submission, Mapping):
        return ""
    value = submission.get(REASON_FIELD)
    return value.strip() if isinstance(value, str) else ""
