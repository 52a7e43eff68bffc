"""Every row of the attack table (in-chat-review reference §5.5) at the unit level.

Each case asserts that nothing was submitted to Teleport and that the clicker got a text saying why.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.domain.errors import AccessDenied
from sidecar.domain.model import RequestState
from sidecar.review.buttons import ButtonTarget
from sidecar.review.settings import ReasonMode
from sidecar.review.signing import sign_action
from tests.unit.test_review_kit import (
    ALICE,
    BOB,
    CAROL,
    CH1,
    CH2,
    GHOST,
    KEY_B,
    MALLORY,
    NOW,
    P1,
    P2,
    P3,
    R1,
    R2,
    ROBOT,
    TWIN,
    Submitted,
    World,
    request,
    ring,
)

NOTHING = "Nothing was submitted."


@pytest.fixture
def world() -> World:
    return World()


def refused(world: World, answer: dict[str, Any], says: str) -> None:
    text = answer.get("ephemeral_text") or answer.get("error") or ""
    assert says in text, text
    assert NOTHING in text, text
    assert world.submitter.submitted == [] and world.submitter.attempts == 0


def last_outcome(caplog: pytest.LogCaptureFixture) -> tuple[str, int]:
    record = [r for r in caplog.records if r.name == "sidecar.review"][-1]
    return str(getattr(record, "outcome", "")), record.levelno


# --- a POST straight to the sidecar ---------------------------------------------------------------------


async def test_another_users_id_with_a_copied_context_and_the_attackers_own_trigger(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    mallory_trigger = world.mattermost.trigger(MALLORY, world.clock())
    answer = await world.pipeline.handle_action(world.body(ALICE, trigger_id=mallory_trigger))
    refused(world, answer, "signature on this click could not be verified")
    assert last_outcome(caplog) == ("trigger_user_mismatch", logging.WARNING)


async def test_another_users_id_with_no_trigger(world: World) -> None:
    body = world.body(ALICE)
    del body["trigger_id"]
    refused(world, await world.pipeline.handle_action(body), "could not be verified")


async def test_a_trigger_rewritten_to_name_the_victim(world: World) -> None:
    genuine = base64.b64decode(world.mattermost.trigger(MALLORY, world.clock())).decode()
    client, _, millis, signature = genuine.split(":")
    forged = base64.b64encode(f"{client}:{ALICE}:{millis}:{signature}".encode()).decode()
    refused(world, await world.pipeline.handle_action(world.body(ALICE, trigger_id=forged)), "could not be verified")
    assert world.key_source.fetches == 1  # fetched just now: a failed signature does not fetch it again at once


async def test_a_trigger_signed_by_another_server(world: World) -> None:
    from tests.unit.test_review_kit import MattermostKey

    other = MattermostKey().trigger(ALICE, world.clock())
    refused(world, await world.pipeline.handle_action(world.body(ALICE, trigger_id=other)), "could not be verified")


async def test_a_captured_click_replayed(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world.submitter.error = AccessDenied("user alice cannot review request")  # the first click does nothing either
    body = world.body(ALICE)
    await world.pipeline.handle_action(body)
    world.submitter.error = None
    world.submitter.attempts = 0
    refused(world, await world.pipeline.handle_action(body), "already handled")
    assert last_outcome(caplog) == ("replayed", logging.WARNING)


async def test_a_captured_click_replayed_after_a_minute(world: World) -> None:
    body = world.body(ALICE)
    world.clock.now += 61
    refused(world, await world.pipeline.handle_action(body), "too late")


# --- forged, expired, cross-channel and cross-request contexts ---------------------------------------------


async def test_a_context_with_a_changed_field_is_forged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    context = {**world.context(R1, CH1, "deny"), "act": "approve"}
    refused(world, await world.click(ALICE, context=context), "could not be verified")
    assert last_outcome(caplog) == ("forged", logging.WARNING)


async def test_a_context_made_up_from_scratch(world: World) -> None:
    context = {"v": "1", "kid": "k1", "rid": R1, "act": "approve", "ch": CH1, "pid": "", "iat": str(int(NOW)),
               "exp": str(int(NOW) + 600), "n": "x", "sig": base64.urlsafe_b64encode(b"\0" * 32).decode()}
    refused(world, await world.click(ALICE, context=context), "could not be verified")


async def test_a_context_signed_with_a_key_the_sidecar_does_not_hold(world: World) -> None:
    context = sign_action(ring(("k9", KEY_B)), request_id=R1, action="approve", channel_id=CH1,
                          expires_at=int(NOW) + 600, now=int(NOW))
    refused(world, await world.click(ALICE, context=context), "could not be verified")


async def test_an_expired_context(world: World) -> None:
    context = world.context()
    world.clock.now += 24 * 3600 + 1
    refused(world, await world.click(ALICE, context=context), "expired")


async def test_a_context_from_another_channel(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    context = world.context(R1, CH2)  # the CH2 post's button, clicked (replayed) on the CH1 post
    refused(world, await world.click(ALICE, channel_id=CH1, post_id=P1, context=context), "does not belong")
    assert last_outcome(caplog) == ("wrong_channel", logging.WARNING)


async def test_a_context_bound_to_another_post(world: World) -> None:
    target = ButtonTarget(R1, CH1, post_id=P2, request_expires=datetime.fromtimestamp(NOW + 3600, UTC))
    [attachment] = world.buttons.pending_attachments(target)
    context = attachment["actions"][0]["integration"]["context"]
    refused(world, await world.click(ALICE, channel_id=CH1, post_id=P1, context=context), "does not belong")


async def test_a_context_from_another_request(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    context = world.context(R2, CH1)  # R2's button, sent with R1's post
    refused(world, await world.click(ALICE, post_id=P1, context=context), "not one the sidecar posted")
    assert last_outcome(caplog) == ("not_our_post", logging.WARNING)
    # and the real R2 post still works
    await world.click(ALICE, post_id=P3, context=world.context(R2, CH1))
    assert world.submitter.submitted == [Submitted(R2, "alice", RequestState.APPROVED, "")]


# --- the dialog ----------------------------------------------------------------------------------------


async def reason_world() -> tuple[World, str]:
    world = World(reason=ReasonMode.REQUIRED)
    await world.click(ALICE)
    return world, world.dialogs.opened[0][2]["state"]


async def test_a_forged_dialog_state() -> None:
    world, state = await reason_world()
    tampered = json.dumps({**json.loads(state), "act": "deny"})
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(ALICE, tampered, "x")), "could not be verified")
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(ALICE, "{}", "x")), "could not be verified")
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(ALICE, 7, "x")), "could not be verified")


async def test_a_reused_dialog_state(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world, state = await reason_world()
    assert await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, "first")) == {}
    answer = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, "second"))
    assert "already submitted" in answer["error"] and NOTHING in answer["error"]
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.APPROVED, "first")]
    assert last_outcome(caplog) == ("replayed", logging.WARNING)


async def test_a_dialog_state_minted_for_another_user(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sidecar.review")
    world, state = await reason_world()  # alice's state, submitted by bob (through Mattermost or straight)
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(BOB, state, "x")), "could not be verified")
    assert last_outcome(caplog) == ("wrong_user", logging.WARNING)


async def test_a_dialog_state_sent_from_another_channel() -> None:
    world, state = await reason_world()
    answer = await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, "x", channel_id=CH2))
    refused(world, answer, "could not be verified")


async def test_an_expired_dialog_state() -> None:
    world, state = await reason_world()
    world.clock.now += 301
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(ALICE, state, "x")), "expired")


async def test_a_button_context_cannot_pass_as_a_dialog_state(world: World) -> None:
    context = json.dumps(world.context())
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(ALICE, context, "x")), "could not be verified")


async def test_without_trigger_checks_a_forged_user_gets_a_dialog_they_cannot_use() -> None:
    # verify_trigger_id off: mallory posts alice's id with her own trigger; Mattermost opens the dialog for
    # mallory (the trigger's user), and mallory's submission carries mallory's id, not the state's.
    world = World(reason=ReasonMode.REQUIRED, verify_trigger_id=False)
    await world.pipeline.handle_action(world.body(ALICE, trigger_id=world.mattermost.trigger(MALLORY, NOW)))
    state = world.dialogs.opened[0][2]["state"]
    refused(world, await world.pipeline.handle_dialog(world.dialog_body(MALLORY, state, "x")), "could not be verified")


# --- who clicks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "says"),
    [
        (MALLORY, "not linked to a Teleport user"),
        (TWIN, "linked to 2 Teleport users"),
        (ROBOT, "Bot accounts cannot review"),
        (GHOST, "Deactivated Mattermost accounts"),
        (CAROL, "cannot review your own access request"),
    ],
    ids=["unbound", "doubly-bound", "bot", "deactivated", "self-review"],
)
async def test_who_may_not_review(world: World, user: str, says: str) -> None:
    refused(world, await world.click(user), says)


# --- what is reviewed --------------------------------------------------------------------------------------


async def test_a_long_term_request_gets_no_buttons_and_a_click_is_refused(world: World) -> None:
    target = ButtonTarget(R1, CH1, long_term=True, request_expires=datetime.fromtimestamp(NOW + 3600, UTC))
    assert world.buttons.pending_attachments(target) == []
    world.requests.requests[R1] = request(R1, "carol", RequestState.PENDING, long_term=True)
    refused(world, await world.click(ALICE), "long-term")


async def test_an_auth_without_review_on_behalf_fails_closed(world: World) -> None:
    world.submitter.error = AccessDenied('user "teleport-plugin-mattermost" cannot submit reviews on behalf of "alice"')
    answer = await world.click(ALICE)
    assert "older than the first version" in answer["ephemeral_text"] and NOTHING in answer["ephemeral_text"]
    assert world.submitter.submitted == []


async def test_an_auth_without_the_trait_filter_binds_nobody_wrongly(world: World) -> None:
    world.directory.legacy = True
    world.directory.users = [u for u in world.directory.users if u.name in ("alice", "bob")]
    refused(world, await world.click(MALLORY), "not linked")
    world.directory.users = [u for u in world.directory.users if u.name == "alice"]  # the one user is not mallory
    refused(world, await world.click(MALLORY, channel_id=CH2, post_id=P2), "not linked")


async def test_a_non_bot_plugin_identity_under_admin_mfa_is_told_to_use_machine_id(world: World) -> None:
    world.submitter.error = AccessDenied("admin-level API request requires MFA verification")
    answer = await world.click(ALICE)
    assert "Machine ID bot" in answer["ephemeral_text"] and world.submitter.submitted == []


async def test_a_double_click_and_two_reviewers(world: World) -> None:
    await world.click(ALICE)
    second = await world.click(ALICE)
    await world.click(BOB, channel_id=CH2, post_id=P2)
    assert "already reviewed" in second["ephemeral_text"]
    assert world.submitter.submitted == [
        Submitted(R1, "alice", RequestState.APPROVED, ""),
        Submitted(R1, "bob", RequestState.APPROVED, ""),
    ]
