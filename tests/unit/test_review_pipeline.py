"""The click pipeline step by step: each step's pass path, and each way it fails closed with a helpful text."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    PluginDataError,
    Rejected,
    TransientError,
    Unauthorized,
    Unimplemented,
)
from sidecar.domain.model import AccessRequest, RequestState
from sidecar.review.pipeline import ClickPipeline
from sidecar.review.settings import Binding, EmailGuards, ReasonMode
from sidecar.review.texts import Outcome
from tests.unit.test_review_kit import (
    ALICE,
    BOB,
    CAROL,
    CH1,
    CH2,
    GHOST,
    KEY_A,
    MALLORY,
    NOW,
    P1,
    P2,
    R1,
    ROBOT,
    TWIN,
    Submitted,
    TeleportUser,
    World,
    mm_id,
    request,
)


@pytest.fixture
def world() -> World:
    return World()


def outcomes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "outcome", "") for r in caplog.records if r.name == "sidecar.review"]


def text(answer: dict[str, Any]) -> str:
    value = answer.get("ephemeral_text", "")
    assert isinstance(value, str)
    return value


# --- the whole way through -------------------------------------------------------------------------------


async def test_an_approval_is_submitted_as_the_bound_user_and_the_clicker_is_told(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    answer = await world.click(ALICE)
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "")]
    assert set(answer) == {"ephemeral_text"}
    assert "approval" in text(answer) and "`alice`" in text(answer) and R1 in text(answer)
    [record] = [r for r in caplog.records if r.name == "sidecar.review"]
    assert record.levelno == logging.INFO and record.getMessage() == "Review click"
    fields = {k: getattr(record, k) for k in ("outcome", "mattermost_user_id", "mattermost_user", "teleport_user")}
    assert fields == {"outcome": "submitted", "mattermost_user_id": ALICE, "mattermost_user": "alice",
                      "teleport_user": "alice"}
    where = tuple(getattr(record, k) for k in ("request_id", "action", "channel_id", "post_id"))
    assert where == (R1, "approve", CH1, P1)


async def test_a_denial_from_the_other_channel_is_submitted(world: World) -> None:
    answer = await world.click(BOB, channel_id=CH2, post_id=P2, action="deny")
    assert world.submitter.submitted == [Submitted(R1, "bob", RequestState.DENIED, "")]
    assert "denial" in text(answer)


async def test_the_log_line_never_shows_a_key_or_a_signature(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = world.body(MALLORY)
    await world.pipeline.handle_action(body)
    body["context"] = {**body["context"], "rid": R1 + "x"}
    await world.pipeline.handle_action(body)
    logged = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert KEY_A not in logged and body["context"]["sig"] not in logged and body["trigger_id"] not in logged


# --- step 1: the body ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: None,
        lambda b: [],
        lambda b: {k: v for k, v in b.items() if k != "user_id"},
        lambda b: {**b, "user_id": "ALICE"},
        lambda b: {**b, "channel_id": 42},
        lambda b: {**b, "post_id": ""},
        lambda b: {k: v for k, v in b.items() if k != "context"},
        lambda b: {**b, "context": "not a map"},
    ],
    ids=["none", "list", "no-user", "bad-user-id", "channel-not-str", "no-post", "no-context", "context-str"],
)
async def test_a_malformed_body_is_refused(world: World, mutate: Any) -> None:
    answer = await world.pipeline.handle_action(mutate(world.body(ALICE)))
    assert "could not be verified" in text(answer) and "Nothing was submitted." in text(answer)
    assert world.submitter.attempts == 0 and world.chat_users.calls == []


# --- step 3: the trigger id (step 2, the context, is in test_review_signing and test_review_attacks) -------


async def test_without_trigger_verification_the_key_is_never_fetched(caplog: pytest.LogCaptureFixture) -> None:
    world = World(verify_trigger_id=False)
    await world.click(ALICE, trigger_id="")
    assert world.key_source.fetches == 0
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "")]


async def test_the_published_key_is_fetched_once_and_kept(world: World) -> None:
    await world.click(ALICE)
    await world.click(BOB, channel_id=CH2, post_id=P2)
    assert world.key_source.fetches == 1 and len(world.submitter.submitted) == 2


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TransientError("GET /api/v4/config/client: 503"), Outcome.TRIGGER_KEY_UNAVAILABLE),
        (None, Outcome.TRIGGER_KEY_MISSING),
    ],
)
async def test_no_usable_key_fails_closed(
    world: World, caplog: pytest.LogCaptureFixture, error: TransientError | None, outcome: Outcome
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world.key_source.error = error
    world.key_source.published = ""
    answer = await world.click(ALICE)
    assert world.submitter.attempts == 0 and "Nothing was submitted." in text(answer)
    assert outcomes(caplog) == [outcome.value]


# --- step 4: abuse guards ----------------------------------------------------------------------------


async def test_a_user_over_the_click_budget_is_told_to_wait(world: World) -> None:
    world.submitter.error = AlreadyExists("user has already reviewed this request")
    for _ in range(20):
        await world.click(ALICE)
    answer = await world.click(ALICE)
    assert "wait a minute" in text(answer)
    assert world.submitter.attempts == 20
    world.clock.now += 61
    await world.click(ALICE)
    assert world.submitter.attempts == 21


async def test_another_users_budget_is_not_spent_by_refused_forgeries(world: World) -> None:
    for _ in range(30):
        forged = world.body(ALICE, trigger_id=world.mattermost.trigger(MALLORY, world.clock()))
        await world.pipeline.handle_action(forged)
    await world.click(ALICE)
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "")]


# --- step 5: the post ----------------------------------------------------------------------------------


async def test_a_post_not_recorded_for_the_request_is_refused(world: World) -> None:
    answer = await world.click(ALICE, post_id=mm_id("some other post"))
    assert "not one the sidecar posted" in text(answer) and world.submitter.attempts == 0


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (TransientError("GetPluginData: UNAVAILABLE"), "did not answer"),
        (AccessDenied("GetPluginData: PERMISSION_DENIED"), "sidecar's Teleport role"),
        (PluginDataError("messages", "not JSON"), "check the sidecar's logs"),
        (NotFound("no such request"), "not one the sidecar posted"),
    ],
)
async def test_a_failed_post_lookup_fails_closed(world: World, error: Exception, says: str) -> None:
    world.posts.error = error  # type: ignore[assignment]
    answer = await world.click(ALICE)
    assert says in text(answer) and "Nothing was submitted." in text(answer) and world.submitter.attempts == 0


# --- step 6: the Mattermost user ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "says"),
    [(ROBOT, "Bot accounts"), (GHOST, "Deactivated"), (mm_id("nobody"), "does not know the account")],
)
async def test_only_an_active_human_may_review(world: World, user: str, says: str) -> None:
    answer = await world.click(user)
    assert says in text(answer) and world.submitter.attempts == 0
    assert world.directory.calls == []  # refused before any Teleport user is looked up


async def test_mattermost_not_answering_for_the_user_fails_closed(world: World) -> None:
    world.chat_users.error = TransientError("GET /users: 502")
    answer = await world.click(ALICE)
    assert "did not answer" in text(answer) and world.submitter.attempts == 0


# --- step 7: the request ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "says"),
    [
        (None, "no longer exists"),
        (request(R1, "carol", RequestState.APPROVED), "already approved"),
        (request(R1, "carol", RequestState.DENIED), "already denied"),
        (request(R1, "carol", RequestState.PENDING, long_term=True), "long-term access"),
    ],
    ids=["gone", "approved", "denied", "long-term"],
)
async def test_only_a_pending_short_term_request_is_reviewed(
    world: World, facts: AccessRequest | None, says: str
) -> None:
    if facts is None:
        del world.requests.requests[R1]
    else:
        world.requests.requests[R1] = facts
    answer = await world.click(ALICE)
    assert says in text(answer) and "Nothing was submitted." in text(answer) and world.submitter.attempts == 0


async def test_a_request_the_plugin_cannot_read_fails_closed(world: World) -> None:
    world.requests.error = AccessDenied("ListAccessRequests: PERMISSION_DENIED")
    answer = await world.click(ALICE)
    assert "sidecar's Teleport role" in text(answer) and world.submitter.attempts == 0


# --- step 8: the binding ----------------------------------------------------------------------------------


async def test_an_unbound_user_is_told_how_to_get_linked(world: World) -> None:
    answer = await world.click(MALLORY)
    assert "not linked to a Teleport user" in text(answer) and "`mattermost_user_id`" in text(answer)
    assert MALLORY in text(answer) and world.submitter.attempts == 0


async def test_a_user_bound_twice_is_refused(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    answer = await world.click(TWIN)
    assert "linked to 2 Teleport users" in text(answer) and world.submitter.attempts == 0
    [record] = [r for r in caplog.records if r.name == "sidecar.review"]
    assert getattr(record, "detail", "") == "matching users: twin-a, twin-b"


async def test_an_auth_ignoring_the_trait_filter_still_binds_only_the_right_user(world: World) -> None:
    world.directory.legacy = True  # every user comes back, and each is read back to confirm its trait
    world.directory.users = [u for u in world.directory.users if u.name in ("alice", "bob", "mallory@example.com")]
    await world.click(ALICE)
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "")]


async def test_too_many_candidates_are_refused_without_reading_them_all(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world.directory.legacy = True  # ten users come back for anyone
    answer = await world.click(ALICE)
    assert "linked to 10 Teleport users" in text(answer) and world.submitter.attempts == 0


async def test_an_auth_ignoring_the_filter_with_one_unrelated_user_binds_nobody(world: World) -> None:
    world.directory.legacy = True
    world.directory.users = [TeleportUser("admin", {"logins": ("root",)})]
    answer = await world.click(ALICE)
    assert "not linked" in text(answer) and world.submitter.attempts == 0


async def test_the_requester_cannot_review_their_own_request(world: World) -> None:
    answer = await world.click(CAROL)
    assert "cannot review your own access request" in text(answer) and world.submitter.attempts == 0


async def test_a_plugin_that_cannot_list_users_fails_closed(world: World) -> None:
    world.directory.error = AccessDenied("ListUsers: PERMISSION_DENIED")
    answer = await world.click(ALICE)
    assert "sidecar's Teleport role" in text(answer) and world.submitter.attempts == 0


async def test_with_the_trait_binding_a_matching_email_is_never_a_fallback(world: World) -> None:
    world.directory.users = [u for u in world.directory.users if u.name != "alice"]  # only alice@example.com left
    answer = await world.click(ALICE)
    assert "not linked" in text(answer) and world.submitter.attempts == 0


def email_world(**guards: Any) -> World:
    return World(binding=Binding.EMAIL, email=EmailGuards(**guards))


async def test_the_email_binding_reviews_as_the_user_named_like_the_address() -> None:
    world = email_world()
    await world.click(ALICE)
    assert world.submitter.submitted == [Submitted(R1, "alice@example.com", RequestState.APPROVED, "")]
    assert world.directory.calls == []  # no trait lookup, no fallback either way


@pytest.mark.parametrize(
    ("guards", "user", "says"),
    [
        ({}, MALLORY, "Verify your Mattermost email"),
        ({"require_sso": True}, ALICE, "through SSO"),
        ({"domains": ("corp.example",)}, ALICE, "not enabled for your email domain"),
        ({}, TWIN, "linked to a different Mattermost account"),
        ({}, GHOST, "Deactivated"),
    ],
)
async def test_the_email_binding_guards(guards: dict[str, Any], user: str, says: str) -> None:
    world = email_world(**guards)
    answer = await world.click(user)
    assert says in text(answer) and world.submitter.attempts == 0


async def test_without_the_verified_guard_an_unverified_address_is_trusted() -> None:
    world = email_world(require_verified=False)
    await world.click(MALLORY)
    assert [s.author for s in world.submitter.submitted] == ["mallory@example.com"]


async def test_the_email_binding_needs_a_teleport_user_named_like_the_address() -> None:
    world = email_world(require_verified=False)
    world.directory.users = [u for u in world.directory.users if u.name != "mallory@example.com"]
    answer = await world.click(MALLORY)
    assert "No Teleport user is named after your Mattermost email" in text(answer) and world.submitter.attempts == 0


async def test_the_email_binding_without_a_visible_address_fails_closed() -> None:
    world = email_world()
    world.chat_users.users[ALICE] = world.chat_users.users[ALICE].__class__(id=ALICE, username="alice")
    answer = await world.click(ALICE)
    assert "cannot see your Mattermost email" in text(answer) and world.submitter.attempts == 0


async def test_the_email_binding_with_sso_required_accepts_an_sso_account() -> None:
    world = email_world(require_sso=True)
    world.directory.users.append(TeleportUser("bob@example.com", {}))
    await world.click(BOB, channel_id=CH2, post_id=P2)
    assert [s.author for s in world.submitter.submitted] == ["bob@example.com"]


# --- step 9: the reason dialog -----------------------------------------------------------------------------


async def test_an_optional_reason_opens_a_dialog_and_its_submission_reviews(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world = World(reason=ReasonMode.OPTIONAL)
    body = world.body(ALICE, action="deny")
    answer = await world.pipeline.handle_action(body)
    assert answer == {} and world.submitter.attempts == 0
    [(trigger_id, url, dialog)] = world.dialogs.opened
    assert trigger_id == body["trigger_id"] and url == "https://sidecar.example.com:8443/review/v1/dialog"
    assert dialog["title"] == "Deny access request" and len(dialog["title"]) <= 24
    assert dialog["elements"][0]["optional"] is True and dialog["notify_on_cancel"] is False
    assert "`alice`" in dialog["introduction_text"]
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, dialog["state"], reason="  not today  "))
    assert result == {}
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.DENIED, "not today")]
    assert outcomes(caplog) == ["dialog_opened", "submitted"]


async def test_a_required_reason_must_be_given_and_the_form_can_then_be_sent() -> None:
    world = World(reason=ReasonMode.REQUIRED)
    await world.click(ALICE)
    state = world.dialogs.opened[0][2]["state"]
    assert world.dialogs.opened[0][2]["elements"][0]["optional"] is False
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="   "))
    assert result == {"errors": {"reason": "A reason is required."}} and world.submitter.attempts == 0
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="x" * 1001))
    assert "under 1000 characters" in result["errors"]["reason"]
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="on call"))
    assert result == {} and world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "on call")]


async def test_a_cancelled_dialog_submits_nothing() -> None:
    world = World(reason=ReasonMode.OPTIONAL)
    await world.click(ALICE)
    state = world.dialogs.opened[0][2]["state"]
    assert await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, cancelled=True)) == {}
    assert world.submitter.attempts == 0


async def test_a_dialog_that_cannot_be_opened_is_reported() -> None:
    world = World(reason=ReasonMode.OPTIONAL)
    world.dialogs.error = Rejected("POST /actions/dialogs/open: 400 trigger expired", status=400)
    answer = await world.click(ALICE)
    assert "could not be opened" in text(answer) and world.submitter.attempts == 0


async def test_the_dialog_submission_checks_everything_again() -> None:
    world = World(reason=ReasonMode.OPTIONAL)
    await world.click(ALICE)
    state = world.dialogs.opened[0][2]["state"]
    world.requests.requests[R1] = request(R1, "carol", RequestState.APPROVED)  # resolved meanwhile
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="ok"))
    assert "already approved" in result["error"] and world.submitter.attempts == 0


async def test_a_transient_failure_lets_the_same_form_be_sent_again() -> None:
    world = World(reason=ReasonMode.OPTIONAL)
    await world.click(ALICE)
    state = world.dialogs.opened[0][2]["state"]
    world.submitter.error = TransientError("SubmitAccessReview: UNAVAILABLE")
    result = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="ok"))
    assert "may or may not have been recorded" in result["error"]
    world.submitter.error = None
    assert await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, reason="ok")) == {}
    assert len(world.submitter.submitted) == 1


async def test_a_reason_dialog_needs_a_trigger_id() -> None:
    world = World(reason=ReasonMode.OPTIONAL, verify_trigger_id=False)
    body = world.body(ALICE)
    body["trigger_id"] = ""
    answer = await world.pipeline.handle_action(body)
    assert "could not be opened" in text(answer) and world.dialogs.opened == []


# --- step 10: Auth's answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "outcome", "says"),
    [
        (AccessDenied('user "alice" cannot review request'), Outcome.NOT_ALLOWED, "does not allow `alice`"),
        (AlreadyExists('user "alice" has already reviewed this request'), Outcome.ALREADY_REVIEWED, "already reviewed"),
        (AccessDenied("the access request has been already approved"), Outcome.ALREADY_RESOLVED, "already resolved"),
        (NotFound("access request not found"), Outcome.REQUEST_GONE, "no longer exists"),
        (AccessDenied('user "plugin" cannot submit reviews on behalf of "alice"'), Outcome.SERVER_TOO_OLD, "older"),
        (Unimplemented("SubmitAccessReview: UNIMPLEMENTED"), Outcome.SERVER_TOO_OLD, "submit_for_users"),
        (AccessDenied("admin-level API request requires MFA verification"), Outcome.MFA_REQUIRED, "Machine ID bot"),
        (AccessDenied("user cannot review their own request"), Outcome.SELF_REVIEW, "your own access request"),
        (AccessDenied("user could not be fetched from local store"), Outcome.AUTHOR_UNKNOWN, "local or synced"),
        (AccessDenied("cannot review long-term request"), Outcome.LONG_TERM, "long-term"),
        (Unauthorized("SubmitAccessReview: UNAUTHENTICATED"), Outcome.PLUGIN_NOT_ALLOWED, "sidecar's Teleport role"),
        (Rejected("SubmitAccessReview: INVALID_ARGUMENT: bad"), Outcome.ERROR, "sidecar's logs"),
    ],
)
async def test_every_auth_error_becomes_a_helpful_text(
    world: World, caplog: pytest.LogCaptureFixture, error: Exception, outcome: Outcome, says: str
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world.submitter.error = error  # type: ignore[assignment]
    answer = await world.click(ALICE)
    assert says in text(answer) and "Nothing was submitted." in text(answer)
    assert outcomes(caplog) == [outcome.value] and world.submitter.submitted == []
    [record] = [r for r in caplog.records if r.name == "sidecar.review"]
    assert getattr(record, "detail", "") == str(error)


async def test_a_transient_submit_error_does_not_claim_nothing_was_submitted(world: World) -> None:
    world.submitter.error = TransientError("SubmitAccessReview: DEADLINE_EXCEEDED")
    answer = await world.click(ALICE)
    assert "may or may not" in text(answer) and "Nothing was submitted" not in text(answer)


async def test_a_submission_past_the_deadline_says_it_may_have_been_recorded(world: World) -> None:
    async def hang(request_id: str, author: str, state: RequestState, reason: str) -> object:
        await asyncio.sleep(30)
        return None

    pipeline = ClickPipeline(world.settings, world.ports, clock=world.clock, deadline=0.05)
    world.submitter.submit_review_on_behalf = hang  # type: ignore[method-assign]
    answer = await pipeline.handle_action(world.body(ALICE))
    assert "may or may not have been recorded" in text(answer)


async def test_a_slow_lookup_past_the_deadline_says_nothing_was_submitted(world: World) -> None:
    async def hang(request_id: str) -> AccessRequest | None:
        await asyncio.sleep(30)
        return None

    pipeline = ClickPipeline(world.settings, world.ports, clock=world.clock, deadline=0.05)
    world.requests.access_request = hang  # type: ignore[method-assign]
    answer = await pipeline.handle_action(world.body(ALICE))
    assert "Nothing was submitted." in text(answer) and world.submitter.attempts == 0


async def test_an_unexpected_failure_fails_closed_and_is_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request_id: str) -> AccessRequest | None:
        raise KeyError("surprise")

    world.requests.access_request = broken  # type: ignore[method-assign]
    answer = await world.click(ALICE)
    assert "sidecar's logs" in text(answer) and world.submitter.attempts == 0
    [record] = caplog.records  # still one line per click, with the error attached
    assert record.levelno == logging.ERROR and record.exc_info and record.exc_info[0] is KeyError
    assert getattr(record, "outcome", "") == "error"


async def test_two_reviewers_each_get_one_review_and_a_double_click_gets_already_reviewed(world: World) -> None:
    await world.click(ALICE)
    answer = await world.click(ALICE)
    await world.click(BOB, channel_id=CH2, post_id=P2)
    assert [s.author for s in world.submitter.submitted] == ["alice", "bob"]
    assert "already reviewed" in text(answer)


def test_the_pipeline_needs_review_enabled(world: World) -> None:
    from sidecar.review.settings import ReviewSettings

    with pytest.raises(ValueError, match="enabled"):
        ClickPipeline(ReviewSettings(), world.ports)


def test_now_is_the_kits_clock(world: World) -> None:
    assert world.clock() == NOW
