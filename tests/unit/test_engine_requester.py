"""The requester kept informed: direct messages on announcement, each review, the outcome and the expiry."""

from __future__ import annotations

import logging

import pytest

from sidecar.domain.errors import AccessDenied, TransientError
from sidecar.domain.model import PostKind, RequestState
from sidecar.engine.engine import NO_REQUESTER_MESSAGES, EngineSettings
from sidecar.render.classic import RenderSettings, root_post_text
from tests.unit.engine_kit import CHANNELS, RID, make_kit, request, review
from tests.unit.fakes_ports import FakeChat, FakeTraits

STATIC = {"*": ["team/ops"]}
RICH = EngineSettings(role_to_recipients=STATIC, style="rich", cluster="prod", notify_requester=True)
CLASSIC = EngineSettings(role_to_recipients=STATIC, notify_requester=True)


def _dms(chat: FakeChat, channel: str = "dm-alice") -> list[str]:
    return [p.message for p in chat.in_channel(channel)]


async def test_the_requester_hears_where_it_went_each_review_and_the_approval() -> None:
    kit = make_kit(RICH)
    await kit.put(request())
    [announced] = _dms(kit.chat)
    assert "was sent for review" in announced
    assert "It went to `team/ops`, `reviewer1@example.com`." in announced
    assert kit.chat.posts[-1].marker is not None and kit.chat.posts[-1].marker.kind is PostKind.DM
    first = review(reason="fine by me")
    await kit.put(request(reviews=(first,)))
    await kit.put(request(RequestState.APPROVED, reviews=(first, review("bob@example.com")), resolve_reason="ok"))
    messages = _dms(kit.chat)
    assert len(messages) == 4
    assert "`reviewer1@example.com` **approved** your access request" in messages[1]
    assert "`bob@example.com` **approved** your access request" in messages[2]
    assert "was **approved**" in messages[3]
    assert f"`tsh login --request-id={RID}`" in messages[3]
    assert kit.record().delivery.dms_done == 4
    await kit.resume()
    assert len(_dms(kit.chat)) == 4  # nothing twice


async def test_a_denial_and_an_expiry() -> None:
    kit = make_kit(RICH)
    await kit.put(request())
    await kit.put(request(RequestState.DENIED, reviews=(review(state=RequestState.DENIED),), resolve_reason="no"))
    assert "was **denied**" in _dms(kit.chat)[-1]
    assert "tsh login" not in _dms(kit.chat)[-1]
    other = make_kit(RICH)
    await other.put(request())
    await other.delete()
    assert "has expired" in _dms(other.chat)[-1]


async def test_the_classic_style_keeps_its_posts_and_adds_the_messages() -> None:
    kit = make_kit(CLASSIC)
    await kit.put(request())
    assert kit.chat.root_posts()[0].message == root_post_text(RID, kit.record(), RenderSettings())
    assert len(_dms(kit.chat)) == 1
    assert all(p.props is None for p in kit.chat.posts)


async def test_without_recipients_the_requester_is_told_so() -> None:
    kit = make_kit(EngineSettings(style="rich", notify_requester=True))
    await kit.put(request(suggested_reviewers=()))
    assert "No reviewer channel was configured" in _dms(kit.chat)[0]


@pytest.mark.parametrize(
    ("traits", "setting", "email"),
    [
        ({"email": ["alice@example.com"]}, "", "alice@example.com"),
        ({"mm_email": ["alice@example.com"]}, "mm_email", "alice@example.com"),
        ({"email": ["not-an-email"], "mm_email": ["alice@example.com"]}, "mm_email", "alice@example.com"),
    ],
)
async def test_the_requester_email_comes_from_the_user_name_or_a_trait(
    traits: dict[str, list[str]], setting: str, email: str
) -> None:
    settings = EngineSettings(role_to_recipients=STATIC, notify_requester=True, requester_email_trait=setting)
    kit = make_kit(settings, traits=FakeTraits({"alice": traits}))
    await kit.put(request(user="alice"))
    assert kit.traits.calls == ["alice"]
    assert kit.record().delivery.requester == email
    assert len(_dms(kit.chat)) == 1


async def test_a_requester_without_an_email_is_logged_once_and_nothing_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit = make_kit(CLASSIC, traits=FakeTraits({"alice": {"team": ["ops"]}}))
    caplog.set_level(logging.INFO, logger="sidecar.engine")
    await kit.put(request(user="alice"))
    await kit.put(request(user="alice", reviews=(review(),)))
    await kit.put(request(RequestState.APPROVED, user="alice", reviews=(review(),)))
    notes = [r for r in caplog.records if r.message == NO_REQUESTER_MESSAGES]
    assert len(notes) == 1
    assert "no trait 'email' holds one" in notes[0].reason  # type: ignore[attr-defined]
    assert kit.chat.direct_lookups == []
    assert kit.record().delivery.requester == ""


async def test_traits_the_plugin_may_not_read_are_the_reason_given() -> None:
    traits = FakeTraits()
    traits.error = AccessDenied("access denied to perform action 'read' on 'user'")
    kit = make_kit(CLASSIC, traits=traits)
    await kit.put(request(user="alice"))
    assert kit.record().delivery.requester == ""
    assert len(kit.chat.root_posts()) == 2


async def test_a_requester_without_a_mattermost_account_is_logged_once_and_is_no_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = FakeChat(channels={k: v for k, v in CHANNELS.items() if k != "alice@example.com"})
    kit = make_kit(RICH, chat=chat)
    caplog.set_level(logging.WARNING, logger="sidecar.engine")
    await kit.put(request())  # no StepsFailed: an unknown requester is not an operator's problem
    await kit.put(request(reviews=(review(),)))
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert chat.direct_lookups == ["alice@example.com"]
    notes = [r for r in caplog.records if r.message == NO_REQUESTER_MESSAGES]
    assert len(notes) == 1
    assert "no Mattermost user has this email" in notes[0].reason  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.message == "Gave up a notification"]
    assert kit.record().delivery.requester == ""
    assert kit.record().delivery.failed == ()


async def test_a_message_that_fails_for_now_is_sent_later_once() -> None:
    chat = FakeChat(channels=dict(CHANNELS))
    chat.resolve_errors["alice@example.com"] = TransientError("503")
    kit = make_kit(RICH, chat=chat)
    await kit.put(request())
    assert _dms(chat) == []
    assert kit.record().delivery.dms_done == 0
    del chat.resolve_errors["alice@example.com"]
    chat.lose_answers["dm-alice"] = 1  # it lands, but the answer is lost
    await kit.resume()
    await kit.resume()
    assert len(_dms(chat)) == 1
    assert kit.record().delivery.dms_done == 1


async def test_messages_keep_their_order_after_a_failure() -> None:
    kit = make_kit(RICH)
    await kit.put(request())
    kit.chat.post_errors["dm-alice"] = TransientError("503")
    await kit.put(request(reviews=(review(),)))
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert len(_dms(kit.chat)) == 1
    del kit.chat.post_errors["dm-alice"]
    await kit.resume()
    messages = _dms(kit.chat)
    assert len(messages) == 3
    assert "**approved** your access request" in messages[1]
    assert "was **approved**" in messages[2]
