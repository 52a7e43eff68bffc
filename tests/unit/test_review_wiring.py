"""In-chat review wired into the engine: buttons on pending root posts (both styles) through the RootDecorator
hook, none on long-term requests, on the requester's DM or once decided, and replies naming who submitted a
review on its author's behalf."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

from sidecar.app import ReviewButtonsDecorator, review_service
from sidecar.config import load_config
from sidecar.domain.model import RequestState
from sidecar.domain.secret import registered_secrets, unregister_secret
from sidecar.engine.engine import EngineSettings
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text
from sidecar.review.buttons import ReviewButtons
from sidecar.review.signing import verify_action
from sidecar.teleport.convert import review_from_proto, review_to_proto
from tests.unit.engine_kit import RID, Clock, Kit, attachments, make_kit, request, review
from tests.unit.fakes_ports import FakeChat
from tests.unit.test_review_kit import PUBLIC_URL, ring

CLASSIC = EngineSettings(role_to_recipients={"*": ["team/ops", "alice@example.com"]})
RICH = dataclasses.replace(CLASSIC, style="rich", cluster="prod")
CHANNELS = {"team/ops": "chan-ops", "reviewer1@example.com": "dm-rev1", "alice@example.com": "dm-alice"}


def _kit(settings: EngineSettings) -> Kit:
    """An engine with the review decorator (buttons on the kit's clock), over the in-memory ports."""
    clock = Clock()
    buttons = ReviewButtons(public_url=PUBLIC_URL, keys=ring(), action_ttl=7 * 24 * 3600, clock=clock)
    chat = FakeChat(channels=dict(CHANNELS))
    return make_kit(settings, chat=chat, clock=clock, decorator=ReviewButtonsDecorator(buttons))


def _actions(props: Any) -> list[dict[str, Any]]:
    return [action for attachment in attachments(props) for action in attachment.get("actions", [])]


def _root(kit: Kit, channel: str) -> Any:
    [post] = [p for p in kit.chat.root_posts() if p.channel_id == channel]
    return post


async def test_classic_root_posts_keep_the_go_text_and_carry_the_buttons_in_their_own_attachment() -> None:
    kit = _kit(CLASSIC)
    await kit.put(request())
    ops = _root(kit, "chan-ops")
    assert ops.message == root_post_text(RID, kit.record(), RenderSettings())
    [attachment] = attachments(ops.props)
    assert set(attachment) == {"fallback", "actions"}
    approve, deny = attachment["actions"]
    assert (approve["id"], deny["id"]) == ("approve", "deny")
    assert approve["integration"]["url"] == PUBLIC_URL + "/review/v1/action"
    context = verify_action(
        ring(), approve["integration"]["context"], channel_id="chan-ops", post_id="p", now=Clock()()
    )
    assert (context.request_id, context.action, context.post_id) == (RID, "approve", "")
    assert ops.marker is not None  # the marker still rides in the props (FakeChat takes it separately)


async def test_the_requesters_own_dm_gets_no_buttons() -> None:
    kit = _kit(CLASSIC)
    await kit.put(request())
    assert _root(kit, "dm-alice").props is None
    assert _actions(_root(kit, "dm-rev1").props)  # the suggested reviewer's DM has them


async def test_long_term_requests_get_no_buttons() -> None:
    kit = _kit(CLASSIC)
    await kit.put(request(long_term=True))
    assert all(p.props is None for p in kit.chat.root_posts())


async def test_a_pending_edit_signs_the_buttons_for_the_post_and_the_requesters_dm_stays_bare() -> None:
    kit = _kit(CLASSIC)
    await kit.put(request())
    await kit.put(request(reviews=(review(),)))  # a review, still pending (Go's pending re-update)
    edited = {post.channel_id: props for (post, _), props in zip(kit.chat.edits, kit.chat.edit_props, strict=True)}
    assert set(edited) == {"chan-ops", "dm-rev1", "dm-alice"}
    assert edited["dm-alice"] == {"attachments": []}
    ops = _root(kit, "chan-ops")
    [approve, _] = _actions(edited["chan-ops"])
    context = verify_action(
        ring(), approve["integration"]["context"], channel_id="chan-ops", post_id=ops.post_id, now=Clock()()
    )
    assert context.post_id == ops.post_id


async def test_after_a_restart_the_requesters_dm_still_gets_no_buttons() -> None:
    # The process that posted remembered which post was the requester's DM; a restarted one asks Mattermost
    # which channel is the bot's DM with the requester instead.
    first = _kit(CLASSIC)
    await first.put(request())
    clock = Clock()
    buttons = ReviewButtons(public_url=PUBLIC_URL, keys=ring(), action_ttl=7 * 24 * 3600, clock=clock)
    restarted = make_kit(CLASSIC, chat=first.chat, store=first.store, clock=clock,
                         decorator=ReviewButtonsDecorator(buttons))
    await restarted.put(request(reviews=(review(),)))
    edited = {post.channel_id: props for (post, _), props in zip(first.chat.edits, first.chat.edit_props, strict=True)}
    assert edited["dm-alice"] == {"attachments": []}
    assert _actions(edited["chan-ops"]) and _actions(edited["dm-rev1"])


async def test_a_decided_request_loses_its_buttons_with_an_explicit_empty_list() -> None:
    kit = _kit(CLASSIC)
    await kit.put(request())
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert kit.chat.edit_props and all(props == {"attachments": []} for props in kit.chat.edit_props)


async def test_an_expired_request_loses_its_buttons() -> None:
    kit = _kit(RICH)
    await kit.put(request())
    await kit.delete()
    for props in kit.chat.edit_props:
        [card] = attachments(props)
        assert "actions" not in card


async def test_rich_buttons_join_the_card() -> None:
    kit = _kit(RICH)
    await kit.put(request())
    [card] = attachments(_root(kit, "chan-ops").props)
    assert card["title"].endswith("Access request pending review")
    assert [a["id"] for a in card["actions"]] == ["approve", "deny"]
    [bare] = attachments(_root(kit, "dm-alice").props)
    assert "actions" not in bare


async def test_without_the_decorator_nothing_changes() -> None:
    kit = make_kit(CLASSIC, chat=FakeChat(channels=dict(CHANNELS)))
    await kit.put(request())
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert all(p.props is None for p in kit.chat.root_posts())
    assert kit.chat.edit_props == [None, None, None]


def test_the_classic_reply_names_who_submitted_a_review_on_its_authors_behalf() -> None:
    plain = review()
    assert review_reply_text(plain).endswith("Reason: ```\nlooks fine```.")
    on_behalf = dataclasses.replace(plain, submitted_by="access-plugin-with-review")
    assert review_reply_text(on_behalf) == (
        review_reply_text(plain) + "\nSubmitted on the reviewer's behalf by `access-plugin-with-review`."
    )
    without_reason = dataclasses.replace(on_behalf, reason="")
    assert review_reply_text(without_reason).endswith(
        " APPROVED.\nSubmitted on the reviewer's behalf by `access-plugin-with-review`."
    )


async def test_the_rich_reply_names_the_submitter_in_its_footer() -> None:
    kit = _kit(RICH)
    await kit.put(request())
    by_plugin = dataclasses.replace(review(), submitted_by="bot-mattermost")
    await kit.put(request(RequestState.APPROVED, reviews=(by_plugin,)))
    replies = [p for p in kit.chat.posts if p.root_id]
    assert replies
    for reply in replies:
        [card] = attachments(reply.props)
        assert card["footer"] == "Submitted on the reviewer's behalf by bot-mattermost"


def test_submitted_by_is_read_from_the_wire() -> None:
    by_plugin = dataclasses.replace(review(), submitted_by="bot-mattermost")
    wire = review_to_proto(by_plugin)
    assert wire.SubmittedBy == "bot-mattermost"
    assert review_from_proto(wire) == by_plugin
    assert review_from_proto(review_to_proto(review())).submitted_by == ""


def test_with_review_off_no_service_is_built(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[teleport]\nidentity = "/id"\n[mattermost]\nurl = "https://mm.example.com"\ntoken = "t-wiring"\n')
    before = registered_secrets()
    config = load_config(path, env={})
    for value in registered_secrets() - before:
        unregister_secret(value)
    unused = cast(Any, None)  # nothing is touched when review is off
    assert review_service(config, unused, unused, unused, unused) is None
