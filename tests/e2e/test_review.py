"""In-chat review end to end (issue 12): Approve / Deny buttons on the sidecar's posts, clicked through the fake
Mattermost's real click route, submitting reviews to the fake Auth as the clicker's Teleport user, and every
attack of in-chat-review.md §5.5 that can be made from outside refused with nothing submitted.

Each test asserts what the people see (buttons, ephemeral messages, thread replies, edits) and what Teleport
recorded (its audit log of reviews: `reviewer` is the human, `submitted_by` the plugin).
"""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import pytest

from fakes.launch import python_module
from fakes.stack import Stack
from tests.e2e.conftest import MakeStack, channel_id, dm_channel, fields, marked, wait_posts
from tests.e2e.review_kit import (
    BOT,
    GENERAL,
    PLUGIN,
    TOWN,
    actions,
    audit,
    click,
    current,
    dialogs,
    ephemerals,
    in_channel,
    last_click_body,
    review_stack,
    roots_with_buttons,
    signed_context,
    submit_dialog,
    told,
    trigger_for,
)

EMOJI = {"APPROVED": "✅", "DENIED": "❌"}
ON_BEHALF = f"Submitted on the reviewer's behalf by `{PLUGIN}`."
FOOTER = f"Submitted on the reviewer's behalf by {PLUGIN}"


def _buttons_gone(posts: list[dict[str, Any]], rid: str) -> bool:
    return all(not actions(p) for p in marked(posts, rid, "root"))


def _assert_reply_names_the_plugin(reply: dict[str, Any], style: str) -> None:
    if style == "classic":
        assert reply["message"].endswith(ON_BEHALF), reply["message"]
    else:
        [card] = reply["props"]["attachments"]
        assert card["footer"] == FOOTER


async def _decided(stack: Stack, rid: str, state: str) -> list[dict[str, Any]]:
    """Wait until every root post of the request shows `state` with its buttons gone and a reply in its thread."""

    def shows(post: dict[str, Any]) -> bool:
        if f"**Status**: {EMOJI[state]} {state}\n" in post["message"]:  # classic
            return True
        cards = (post.get("props") or {}).get("attachments") or []
        return any(str(card.get("title", "")).endswith(f"Access request {state.lower()}") for card in cards)

    def done(posts: list[dict[str, Any]]) -> bool:
        roots = marked(posts, rid, "root")
        shown = all(shows(p) for p in roots)
        replied = all(any(q["root_id"] == p["id"] for q in posts) for p in roots)
        return bool(roots) and shown and replied and _buttons_gone(posts, rid)

    await wait_posts(stack, done)
    await stack.settled(rid)
    return await stack.posts()


@pytest.mark.parametrize(("style", "edition"), [("classic", "oss"), ("rich", "enterprise")])
async def test_approve_deny_and_two_approvals_by_click(
    make_stack: MakeStack, tmp_path: Path, style: str, edition: str
) -> None:
    stack = await review_stack(make_stack, tmp_path, style=style, edition=edition)
    await stack.bind_reviewer("reviewer@example.com", "reviewer")
    await stack.bind_reviewer("reviewer2@example.com", "reviewer2")
    town = await channel_id(stack, TOWN)
    reviewer_dm = await dm_channel(stack, "reviewer@example.com")

    # Approve: the request's posts (the channel and the suggested reviewer's DM) carry the buttons.
    rid = await stack.create_request("myuser", reason="fix prod", reviewers=["reviewer@example.com"])
    roots = await roots_with_buttons(stack, rid, 2)
    for root in roots:
        assert set(actions(root)) == {"Approve", "Deny"}
        if style == "classic":  # the Go text, untouched: the buttons ride in an attachment of their own
            assert root["message"].startswith("*You have new pending request to review!*\n**User**: myuser\n")
            assert fields(root["message"])["Status"] == "⏳ PENDING"
            [attachment] = root["props"]["attachments"]
            assert not attachment.get("text") and not attachment.get("fields")
        else:  # the buttons join the card
            [card] = root["props"]["attachments"]
            assert card["title"].endswith("Access request pending review")
    seen = len(await ephemerals(stack, "reviewer"))
    await click(stack, "reviewer", in_channel(roots, town)["id"], "approve")
    assert "approval" in await told(stack, "reviewer", seen)
    [entry] = await audit(stack, rid)
    assert (entry["reviewer"], entry["submitted_by"], entry["proposed_state"]) == (
        "reviewer@example.com", PLUGIN, "APPROVED"
    )
    posts = await _decided(stack, rid, "APPROVED")
    for root in marked(posts, rid, "root"):
        assert len([h for h in root["history"] if h["kind"] != "create"]) == 1
        [reply] = [p for p in posts if p["root_id"] == root["id"]]
        _assert_reply_names_the_plugin(reply, style)
    assert {p["channel_id"] for p in marked(posts, rid, "root")} == {town, reviewer_dm}

    # Deny, by another reviewer, from the other post.
    rid = await stack.create_request("myuser", reviewers=["reviewer@example.com"])
    roots = await roots_with_buttons(stack, rid, 2)
    seen = len(await ephemerals(stack, "reviewer2"))
    await click(stack, "reviewer2", in_channel(roots, town)["id"], "deny")
    assert "denial" in await told(stack, "reviewer2", seen)
    [entry] = await audit(stack, rid)
    assert (entry["reviewer"], entry["submitted_by"], entry["proposed_state"]) == (
        "reviewer2@example.com", PLUGIN, "DENIED"
    )
    await _decided(stack, rid, "DENIED")

    # Two approvals needed; the requester's own DM has no buttons; a double click makes one review.
    rid = await stack.create_request("requester@example.com", reviewers=["reviewer@example.com",
                                                                         "requester@example.com"])
    roots = await roots_with_buttons(stack, rid, 3)
    requester_dm = await dm_channel(stack, "requester@example.com")
    assert not actions(in_channel(roots, requester_dm))
    assert actions(in_channel(roots, town)) and actions(in_channel(roots, reviewer_dm))
    seen = len(await ephemerals(stack, "reviewer"))
    post_id = in_channel(roots, town)["id"]
    await asyncio.gather(click(stack, "reviewer", post_id), click(stack, "reviewer", post_id))
    await told(stack, "reviewer", seen + 1)
    answers = sorted((await ephemerals(stack, "reviewer"))[seen:])
    assert any("was recorded in Teleport" in a for a in answers), answers
    assert any("already reviewed" in a for a in answers), answers
    [entry] = await audit(stack, rid)
    assert entry["reviewer"] == "reviewer@example.com" and entry["state"] == "PENDING"
    # Still pending: the posts are edited for the review and keep (freshly signed) buttons.
    await wait_posts(stack, lambda p: any(q["root_id"] for q in p if q["root_id"] == post_id))
    await stack.settled(rid)
    posts = await stack.posts()
    assert actions(current(posts, post_id)) and not actions(in_channel(marked(posts, rid, "root"), requester_dm))
    seen = len(await ephemerals(stack, "reviewer2"))
    await click(stack, "reviewer2", post_id, "approve")
    await told(stack, "reviewer2", seen)
    entries = await audit(stack, rid)
    assert [(e["reviewer"], e["submitted_by"]) for e in entries] == [
        ("reviewer@example.com", PLUGIN), ("reviewer2@example.com", PLUGIN)
    ]
    assert entries[-1]["state"] == "APPROVED"
    await _decided(stack, rid, "APPROVED")


async def test_every_attack_is_refused_and_the_clicker_told_why(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await review_stack(make_stack, tmp_path, recipients=(TOWN, GENERAL), reason="optional")
    await stack.bind_reviewer("reviewer@example.com", "reviewer")
    await stack.bind_reviewer("myuser", "myuser")
    reviewer2_id = await stack.mm_user_id("reviewer2")
    for user in ("reviewer2@example.com", "requester@example.com"):  # two Teleport users claim one account
        await stack.set_traits(user, {"mattermost_user_id": [reviewer2_id]})
    town, general = await channel_id(stack, TOWN), await channel_id(stack, GENERAL)
    rid = await stack.create_request("myuser", reason="fix prod")
    roots = await roots_with_buttons(stack, rid, 2)
    in_town, in_general = in_channel(roots, town), in_channel(roots, general)

    async def refused_click(who: str, expected: str) -> None:
        seen = len(await ephemerals(stack, who))
        await click(stack, who, in_town["id"])
        text = await told(stack, who, seen)
        assert expected in text and "Nothing was submitted." in text, text

    # Through Mattermost: people who may not review from chat.
    await refused_click("requester", "not linked to a Teleport user")  # no Teleport user holds its id
    await refused_click("reviewer2", "linked to 2 Teleport users")
    await refused_click("teleport", "Bot accounts cannot review")
    await refused_click("myuser", "cannot review your own access request")  # the requester, bound
    assert await audit(stack, rid) == []

    # A genuine click's body, replayed straight to the sidecar.
    genuine = await last_click_body(stack, "myuser")
    answer = await stack.review_call(genuine)
    assert "already handled" in answer["ephemeral_text"]

    async def direct(body: dict[str, Any], expected: str) -> None:
        answer = await stack.review_call(body)
        assert expected in answer["ephemeral_text"], answer
        assert "Nothing was submitted." in answer["ephemeral_text"]

    reviewer_id = await stack.mm_user_id("reviewer")
    base = {**genuine, "user_id": reviewer_id, "user_name": "reviewer"}

    # Another user's id, posted straight to the sidecar: without a trigger, or with the attacker's own.
    await direct({**base, "trigger_id": ""}, "could not be verified")
    await direct({**base, "trigger_id": await trigger_for(stack, "myuser")}, "could not be verified")

    # Forged or tampered contexts, with a fresh trigger of the bound reviewer: only the context stops them.
    tampered = copy.deepcopy(base)
    tampered["context"]["act"] = "deny" if tampered["context"]["act"] == "approve" else "approve"
    await direct({**tampered, "trigger_id": await trigger_for(stack, "reviewer")}, "could not be verified")
    forged = {**base, "context": {**base["context"], "sig": "A" * 43}}
    await direct({**forged, "trigger_id": await trigger_for(stack, "reviewer")}, "could not be verified")
    # Another channel's context on this channel's post.
    general_context = actions(in_general)["Approve"]["integration"]["context"]
    cross = {**base, "context": general_context, "trigger_id": await trigger_for(stack, "reviewer")}
    await direct(cross, "does not belong to this message")
    # This request's context on another request's post in the same channel.
    other = await stack.create_request("myuser")
    other_town = in_channel(await roots_with_buttons(stack, other, 2), town)
    moved = {**base, "post_id": other_town["id"], "trigger_id": await trigger_for(stack, "reviewer")}
    await direct(moved, "not one the sidecar posted for this request")
    # An expired context (signed with the sidecar's key: no post carries one).
    expired = {**base, "context": signed_context(stack, rid, town, expires_in=-60),
               "trigger_id": await trigger_for(stack, "reviewer")}
    await direct(expired, "expired")
    # A click that took too long to arrive (its trigger was minted two minutes ago): it could be a captured one.
    stale = await stack.mm_admin(
        "POST", "/fake/triggers", {"username": "reviewer", "minted_at": int((time.time() - 120) * 1000)}
    )
    await direct({**base, "trigger_id": stale["trigger_id"]}, "arrived too late")
    # A deactivated account (deactivated after Mattermost minted its click).
    trigger = await trigger_for(stack, "reviewer")
    await stack.mm_admin("POST", "/fake/users/active", {"username": "reviewer", "active": False})
    await direct({**base, "trigger_id": trigger}, "Deactivated Mattermost accounts cannot review")
    await stack.mm_admin("POST", "/fake/users/active", {"username": "reviewer", "active": True})
    assert await audit(stack, rid) == [] and await audit(stack, other) == []

    # Long-term requests: no buttons, and a click made anyway is refused.
    long_term = str((await stack.tctl("myuser", "create", "--roles", "editor", "--long-term"))["id"])
    lt_roots = await roots_with_buttons(stack, long_term, 2)
    await stack.settled(long_term)
    assert all(not actions(p) for p in marked(await stack.posts(), long_term, "root"))
    lt_town = in_channel(lt_roots, town)
    lt_click = {**base, "post_id": lt_town["id"], "context": signed_context(stack, long_term, town, expires_in=600),
                "trigger_id": await trigger_for(stack, "reviewer")}
    await direct(lt_click, "long-term access")
    assert await audit(stack, long_term) == []

    # The reason dialog: forged state, another user's state, then the genuine submission, then its replay.
    two = await stack.create_request("requester@example.com")  # needs two approvals: stays pending after one
    two_town = in_channel(await roots_with_buttons(stack, two, 2), town)
    await click(stack, "reviewer", two_town["id"])
    [dialog] = [d for d in await dialogs(stack, "reviewer") if two in d["dialog"]["introduction_text"]]
    forged_state = dialog["dialog"]["state"].replace('"approve"', '"deny"')
    answer = await submit_dialog(stack, "reviewer", dialog, town, state=forged_state)
    assert "could not be verified" in answer["body"]["error"], answer
    answer = await submit_dialog(stack, "myuser", dialog, town, submission={"reason": "me"})
    assert "could not be verified" in answer["body"]["error"], answer
    assert await audit(stack, two) == []
    answer = await submit_dialog(stack, "reviewer", dialog, town, submission={"reason": "on call"})
    assert answer["body"] == {}, answer
    [entry] = await audit(stack, two)
    assert (entry["reviewer"], entry["submitted_by"], entry["reason"]) == ("reviewer@example.com", PLUGIN, "on call")
    answer = await submit_dialog(stack, "reviewer", dialog, town, submission={"reason": "again"})
    assert "already submitted" in answer["body"]["error"], answer
    assert len(await audit(stack, two)) == 1

    # Teleport's refusals: an Auth without reviews on behalf of others, then admin-action MFA for a non-bot plugin.
    for switch, expected in (("legacy-review-api", "older than the first version"),
                             ("admin-action-mfa", "requires MFA for admin actions")):
        await stack.auth_admin("POST", f"/settings/{switch}", {"enabled": True})
        try:
            opened = len(await dialogs(stack, "reviewer"))
            await click(stack, "reviewer", in_town["id"])
            dialog = (await dialogs(stack, "reviewer"))[opened]
            # Even when Auth ignores ListUsers' trait filter (legacy), the reviewer is bound to the right user.
            assert "as Teleport user `reviewer@example.com`" in dialog["dialog"]["introduction_text"]
            answer = await submit_dialog(stack, "reviewer", dialog, town, submission={"reason": "x"})
            assert expected in answer["body"]["error"], answer
        finally:
            await stack.auth_admin("POST", f"/settings/{switch}", {"enabled": False})
    assert await audit(stack, rid) == []


async def test_a_machine_id_bot_reviews_under_admin_mfa_and_check_reports_review(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = await review_stack(make_stack, tmp_path, machine_id=True)
    await stack.bind_reviewer("reviewer@example.com", "reviewer")
    await stack.auth_admin("POST", "/settings/admin-action-mfa", {"enabled": True})
    rid = await stack.create_request("myuser")
    [root] = await roots_with_buttons(stack, rid, 1)
    seen = len(await ephemerals(stack, "reviewer"))
    await click(stack, "reviewer", root["id"])
    assert "was recorded in Teleport" in await told(stack, "reviewer", seen)
    [entry] = await audit(stack, rid)
    assert (entry["reviewer"], entry["submitted_by"], entry["state"]) == ("reviewer@example.com", BOT, "APPROVED")
    posts = await _decided(stack, rid, "APPROVED")
    [reply] = [p for p in posts if p["root_id"] == root["id"]]
    assert reply["message"].endswith(f"Submitted on the reviewer's behalf by `{BOT}`.")

    _, out, _ = await stack.run_cli(*python_module("sidecar", "check", "-c", str(stack.config_path)), check=False)
    lines = {line.split(":", 1)[0]: line for line in out.splitlines() if " review" in line.split(":", 1)[0]}
    assert lines["ok   review"].startswith("ok   review: enabled: binding trait mattermost_user_id, reason off")
    assert "publishes its trigger-signing key" in lines["ok   review.verify_trigger_id"]
    assert "may submit reviews for every user" in lines["ok   review.submit_for_users"]
    assert "accepts reviews submitted on a user's behalf" in lines["ok   review.teleport"]
