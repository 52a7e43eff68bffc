"""The engine in the rich style (attachments on root posts and edits, rich replies, facts kept) and size safety."""

from __future__ import annotations

import logging

import pytest

from sidecar.codec.plugindata import FACTS_KEY
from sidecar.domain.errors import Rejected, StepsFailed
from sidecar.domain.model import RequestState
from sidecar.domain.record import Resolution
from sidecar.engine.engine import POST_TOO_LONG, EngineSettings
from sidecar.render.classic import RenderSettings, root_post_text
from sidecar.render.limits import LEGACY_LIMIT
from tests.unit.engine_kit import RID, attachments, make_kit, request, review
from tests.unit.fakes_ports import FakeChat, FakeNames

RICH = EngineSettings(role_to_recipients={"*": ["team/ops"]}, style="rich", cluster="prod")
CLASSIC = EngineSettings(role_to_recipients={"*": ["team/ops"]})
CHANNELS = {"team/ops": "chan-ops", "reviewer1@example.com": "dm-rev1"}
NODE = "/prod/node/0f5c6a1e"


def _fields(props: object) -> dict[str, str]:
    [card] = attachments(props)  # type: ignore[arg-type]
    return {f["title"]: f["value"] for f in card["fields"]}


async def test_classic_keeps_the_go_texts_and_no_facts() -> None:
    kit = make_kit(CLASSIC, chat=FakeChat(channels=dict(CHANNELS)))
    await kit.put(request())
    root = kit.chat.root_posts()[0]
    assert root.props is None
    assert root.message == root_post_text(RID, kit.record(), RenderSettings())
    assert FACTS_KEY not in kit.store.entries[RID]
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert kit.chat.edit_props == [None, None]  # the Go plugin's PUT: no props


async def test_rich_root_posts_carry_the_card_and_the_record_keeps_the_facts() -> None:
    chat = FakeChat(channels=dict(CHANNELS), usernames={"reviewer1@example.com": "rev1"})
    kit = make_kit(RICH, chat=chat)
    await kit.put(request())
    posts = kit.chat.root_posts()
    assert [p.channel_id for p in posts] == ["chan-ops", "dm-rev1"]
    root = posts[0]
    [card] = attachments(root.props)
    assert card["color"] == "#F2A93B"
    assert card["title"].endswith("Access request pending review")
    fields = _fields(root.props)
    assert fields["Cluster"] == "`prod`"
    assert fields["Requester"] == "`alice@example.com`"
    assert "`root`, `ubuntu`" in fields["Logins by role"]
    assert "@rev1" in root.message  # a suggested reviewer Mattermost knows is mentioned
    assert root.marker is not None
    facts = kit.record().facts
    assert facts is not None
    assert facts.cluster == "prod"
    assert facts.reviewers == (("reviewer1@example.com", "rev1"),)
    assert facts.recipients == ("team/ops", "reviewer1@example.com")


async def test_a_reviewer_unknown_to_mattermost_is_named_not_mentioned() -> None:
    kit = make_kit(RICH, chat=FakeChat(channels=dict(CHANNELS)))
    await kit.put(request())
    root = kit.chat.root_posts()[0]
    assert "@" not in root.message.replace("alice@example.com", "").replace("reviewer1@example.com", "")
    assert "`reviewer1@example.com`" in root.message


async def test_resources_show_their_friendly_names() -> None:
    names = FakeNames({NODE: "web-1"})
    kit = make_kit(RICH, chat=FakeChat(channels=dict(CHANNELS)), names=names)
    await kit.put(request(resources=(NODE, "/prod/db/orders")))
    assert names.calls == [(NODE, "/prod/db/orders")]
    resources = _fields(kit.chat.root_posts()[0].props)["Resources (2)"]
    assert "Server `web-1` (`0f5c6a1e`)" in resources
    assert "Database `orders`" in resources


async def test_approval_edits_every_post_with_a_new_card_and_replies_are_rich() -> None:
    kit = make_kit(RICH, chat=FakeChat(channels=dict(CHANNELS)))
    await kit.put(request())
    await kit.put(request(RequestState.APPROVED, reviews=(review(),), resolve_reason="go ahead"))
    replies = kit.chat.replies()
    assert len(replies) == 2
    assert "**approved** the request" in replies[0].message
    assert attachments(replies[0].props)[0]["color"] == "#2EA44F"
    assert len(kit.chat.edits) == 2
    for props in kit.chat.edit_props:
        [card] = attachments(props)
        assert card["color"] == "#2EA44F"
        assert card["title"].endswith("Access request approved")
        assert "go ahead" in card["fallback"]
    assert kit.record().resolution is Resolution.APPROVED


async def test_the_expiry_edit_after_a_restart_is_written_from_the_kept_facts() -> None:
    kit = make_kit(RICH, chat=FakeChat(channels=dict(CHANNELS)))
    await kit.put(request(reviews=(review(),)))
    restarted = kit.restarted()  # knows nothing of the request: Teleport deleted it
    await restarted.delete()
    [card] = attachments(kit.chat.edit_props[-1])
    assert card["title"].endswith("Access request expired")
    assert "`prod`" in {f["title"]: f["value"] for f in card["fields"]}["Cluster"]
    assert "`reviewer1@example.com` approved" in {f["title"]: f["value"] for f in card["fields"]}["Reviews"]


# ---- size safety --------------------------------------------------------------------------------


async def test_a_post_refused_as_too_long_is_rendered_smaller_and_the_limit_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = FakeChat(channels=dict(CHANNELS), max_length=LEGACY_LIMIT)
    kit = make_kit(CLASSIC, chat=chat)
    user = "u" * 6000  # classic caps reasons (as Go does) but not the user line
    caplog.set_level(logging.WARNING, logger="sidecar.engine")
    await kit.put(request(user=user))
    assert chat.too_long == 2  # the two root posts went out together, both rendered for 16,383
    assert kit.engine.limit == LEGACY_LIMIT
    for root in chat.root_posts():
        assert len(root.message) <= LEGACY_LIMIT
        assert "(truncated, " in root.message
        assert "**Status**: \u23f3 PENDING" in root.message  # what matters survives the cut
    assert [r.message for r in caplog.records].count(POST_TOO_LONG) == 2
    await kit.put(request(RequestState.DENIED, user=user))
    assert chat.too_long == 2  # the edits are rendered for the learned limit at once
    assert all(len(message) <= LEGACY_LIMIT for _, message in chat.edits)


async def test_a_rich_post_keeps_shrinking_until_it_is_taken() -> None:
    chat = FakeChat(channels=dict(CHANNELS), max_length=300)
    kit = make_kit(RICH, chat=chat)
    await kit.put(request(request_reason="R" * 20_000))
    assert len(chat.root_posts()) == 2
    assert kit.engine.limit <= 300
    assert all(len(p.message) <= 300 for p in chat.root_posts())


async def test_an_over_long_reason_is_cut_with_a_visible_marker_at_the_default_limit() -> None:
    kit = make_kit(RICH, chat=FakeChat(channels=dict(CHANNELS), max_length=16_383))
    await kit.put(request(request_reason="R" * 100_000))
    root = kit.chat.root_posts()[0]
    assert kit.chat.too_long == 0
    reason = _fields(root.props)["Reason"]
    assert "(truncated, " in reason
    assert len(root.message) + sum(len(f) for f in _fields(root.props).values()) <= 16_383


async def test_other_refusals_are_not_retried_smaller() -> None:
    chat = FakeChat(channels=dict(CHANNELS))
    chat.post_errors["chan-ops"] = Rejected("HTTP 400 api.post.create_post.root_id.app_error", 400, "other")
    kit = make_kit(CLASSIC, chat=chat)
    with pytest.raises(StepsFailed):
        await kit.put(request())
    assert kit.engine.limit == 16_383
