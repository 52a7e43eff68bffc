"""The buttons: where they appear (both message styles), what they carry, when they never appear, their removal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.domain.model import RequestState
from sidecar.review.buttons import ButtonTarget, ReviewButtons, resolved_attachments
from sidecar.review.signing import verify_action
from tests.unit.test_review_kit import ALICE, CH1, NOW, P1, PUBLIC_URL, R1, Clock, Submitted, World, ring

LATER = datetime.fromtimestamp(NOW + 3 * 3600, UTC)
CARD: dict[str, Any] = {"fallback": "Access request pending", "color": "#ffcc00", "title": "Access request pending",
                        "fields": [{"title": "Requester", "value": "`carol`", "short": True}]}


@pytest.fixture
def buttons() -> ReviewButtons:
    return ReviewButtons(public_url=PUBLIC_URL + "/", keys=ring(), action_ttl=24 * 3600, clock=Clock())


def target(**overrides: Any) -> ButtonTarget:
    values: dict[str, Any] = {"request_id": R1, "channel_id": CH1, "request_expires": LATER}
    values.update(overrides)
    return ButtonTarget(**values)


def test_classic_posts_get_the_buttons_in_an_attachment_of_their_own(buttons: ReviewButtons) -> None:
    [attachment] = buttons.pending_attachments(target(), [])
    assert set(attachment) == {"fallback", "actions"}
    approve, deny = attachment["actions"]
    assert (approve["id"], approve["name"], approve["style"]) == ("approve", "Approve", "primary")
    assert approve["type"] == deny["type"] == "button"
    assert (deny["id"], deny["name"], deny["style"]) == ("deny", "Deny", "danger")
    for action in (approve, deny):
        assert action["id"].isalnum()
        assert action["integration"]["url"] == "https://sidecar.example.com:8443/review/v1/action"


def test_rich_posts_get_the_buttons_on_their_card(buttons: ReviewButtons) -> None:
    rendered = [CARD]
    [card] = buttons.pending_attachments(target(), rendered)
    assert {k: v for k, v in card.items() if k != "actions"} == CARD
    assert [a["id"] for a in card["actions"]] == ["approve", "deny"]
    assert "actions" not in CARD  # the rendered attachment is not changed in place


def test_the_context_names_request_action_channel_post_and_expiry(buttons: ReviewButtons) -> None:
    [attachment] = buttons.pending_attachments(target(post_id=P1), [])
    contexts = [a["integration"]["context"] for a in attachment["actions"]]
    verified = [verify_action(ring(), c, channel_id=CH1, post_id=P1, now=NOW) for c in contexts]
    assert [(v.request_id, v.action, v.channel_id, v.post_id) for v in verified] == [
        (R1, "approve", CH1, P1),
        (R1, "deny", CH1, P1),
    ]
    assert all(v.expires_at == int(LATER.timestamp()) for v in verified)  # the request expires before the ttl
    assert contexts[0]["n"] != contexts[1]["n"]


def test_the_ttl_caps_a_far_request_expiry(buttons: ReviewButtons) -> None:
    assert buttons.expiry(target(request_expires=datetime.fromtimestamp(NOW + 30 * 86400, UTC))) == NOW + 86400
    assert buttons.expiry(target(request_expires=None)) == NOW + 86400


@pytest.mark.parametrize(
    "overrides",
    [
        {"long_term": True},
        {"to_requester": True},
        {"pending": False},
        {"request_expires": datetime.fromtimestamp(NOW - 1, UTC)},
        {"request_expires": datetime.fromtimestamp(NOW + 30, UTC)},
    ],
    ids=["long-term", "requester-dm", "resolved", "expired", "about-to-expire"],
)
def test_no_buttons_ever(buttons: ReviewButtons, overrides: dict[str, Any]) -> None:
    assert buttons.actions(target(**overrides)) == []
    assert buttons.pending_attachments(target(**overrides), []) == []
    assert buttons.pending_attachments(target(**overrides), [CARD]) == [CARD]


def test_resolved_posts_lose_every_button(buttons: ReviewButtons) -> None:
    classic = buttons.pending_attachments(target(), [])
    rich = buttons.pending_attachments(target(), [CARD])
    assert resolved_attachments(classic) == []
    assert resolved_attachments(rich) == [CARD]
    assert resolved_attachments([]) == []


def test_a_re_render_of_a_pending_post_replaces_its_buttons(buttons: ReviewButtons) -> None:
    first = buttons.pending_attachments(target(post_id=P1), [])
    again = buttons.pending_attachments(target(post_id=P1), first)
    assert len(again) == 1 and len(again[0]["actions"]) == 2


async def test_a_button_built_here_is_accepted_by_the_pipeline() -> None:
    world = World()
    [attachment] = world.buttons.pending_attachments(target(post_id=P1), [])
    context = attachment["actions"][1]["integration"]["context"]
    answer = await world.click(ALICE, context=context)
    assert "denial" in answer["ephemeral_text"]
    assert world.submitter.submitted == [Submitted(R1, "alice", RequestState.DENIED, "")]
