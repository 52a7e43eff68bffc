"""The Go plugin's integration suite (TP `integrations/access/mattermost/testlib/suite.go`), against real processes.

Setup in each test: fake Teleport + fake Mattermost + the sidecar as separate processes (the `make_stack`
fixture). Actions go through tctl (the real RPCs) as the users of the scenario. We verify what a person
would see in Mattermost (the fake's post log) and what the sidecar stored in Teleport plugin data.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import MakeStack, channel_id, dm_channel, edits, fields, replies, roots, wait_posts

REASON_PAD = "A" * 4000
REASON_RE = re.compile(r"(?ims)^\*\*Reason\*\*:\ ```\n(.*?)```(.*?)$")
RESOLUTION_RE = re.compile(r"(?ims)^\*\*Resolution reason\*\*:\ ```\n(.*?)```(.*?)$")


async def test_message_posting_truncates_reason_and_uses_role_and_suggested_recipients(make_stack: MakeStack) -> None:
    stack = await make_stack(
        edition="oss", role_to_recipients={"editor": ["reviewer@example.com"], "*": ["fallback"]}
    )
    rid = await stack.create_request("myuser", reason="because of " + REASON_PAD, reviewers=["reviewer2@example.com"])

    await wait_posts(stack, lambda p: len(roots(p, rid)) >= 2)
    await stack.settled(rid)  # the sidecar is done with the request: exactly two root posts, no more to come
    posts = roots(await stack.posts(), rid)
    assert len(posts) == 2
    stored = (await stack.plugin_data(rid))["messages"].split(",")
    assert sorted(stored) == sorted(f"{p['channel_id']}/{p['id']}" for p in posts)
    expected = {await dm_channel(stack, "reviewer@example.com"), await dm_channel(stack, "reviewer2@example.com")}
    assert {p["channel_id"] for p in posts} == expected
    for post in posts:
        f = fields(post["message"])
        assert f["Request ID"] == rid
        assert f["User"] == "myuser"
        assert f["Status"] == "⏳ PENDING"
        reason = REASON_RE.search(post["message"])
        assert reason is not None
        assert reason.group(1) == "because of " + "A" * 489
        assert reason.group(2) == " (truncated)"
        # OSS: no Web UI link, the tsh commands instead.
        assert f"**Approve**: `tsh request review --approve {rid}`" in post["message"]
        assert "**Link**" not in post["message"]


async def test_approval(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss")
    rid = await stack.create_request("myuser", reason="because of", reviewers=["reviewer@example.com"])
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)
    assert root["channel_id"] == await dm_channel(stack, "reviewer@example.com")

    await stack.tctl("admin", "approve", rid, "--reason", "okay")
    posts = await wait_posts(stack, lambda p: any(edits(x) for x in roots(p, rid)))
    [updated] = roots(posts, rid)
    assert (updated["id"], updated["channel_id"]) == (root["id"], root["channel_id"])
    assert fields(updated["message"])["Status"] == "✅ APPROVED"
    resolution = RESOLUTION_RE.search(updated["message"])
    assert resolution is not None and (resolution.group(1), resolution.group(2)) == ("okay", "")
    assert (await stack.plugin_data(rid))["resolution"] == "APPROVED"


async def test_denial_truncates_resolution_reason(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss")
    rid = await stack.create_request("myuser", reason="because of", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 1)

    await stack.tctl("admin", "deny", rid, "--reason", "not okay " + REASON_PAD)
    posts = await wait_posts(stack, lambda p: any(edits(x) for x in roots(p, rid)))
    [updated] = roots(posts, rid)
    assert fields(updated["message"])["Status"] == "❌ DENIED"
    resolution = RESOLUTION_RE.search(updated["message"])
    assert resolution is not None
    assert (resolution.group(1), resolution.group(2)) == ("not okay " + "A" * 491, " (truncated)")


async def test_review_comments_are_threaded_replies(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="enterprise")
    rid = await stack.create_request("requester@example.com", reason="because of", reviewers=["reviewer@example.com"])
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)
    assert "**Link**: [https://" in root["message"]  # Enterprise: a Web UI link, no tsh commands
    assert "tsh request review" not in root["message"]

    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "okay")
    posts = await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 1)
    [first] = replies(posts, root["id"])
    assert first["channel_id"] == root["channel_id"]
    assert "reviewer@example.com reviewed the request" in first["message"]
    assert "Resolution: ✅ APPROVED" in first["message"]
    assert "Reason: ```\nokay```" in first["message"]

    await stack.tctl("reviewer2@example.com", "review", rid, "--deny", "--reason", "not okay")
    posts = await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 2)
    second = replies(posts, root["id"])[1]
    assert "reviewer2@example.com reviewed the request" in second["message"]
    assert "Resolution: ❌ DENIED" in second["message"]
    assert "Reason: ```\nnot okay```" in second["message"]


async def test_approval_by_review(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="enterprise")
    rid = await stack.create_request("requester@example.com", reason="because of", reviewers=["reviewer@example.com"])
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)

    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "okay")
    await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 1)
    await stack.tctl("reviewer2@example.com", "review", rid, "--approve", "--reason", "finally okay")
    posts = await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 2 and len(edits(roots(p, rid)[0])) == 2)
    authors = [r["message"].split(" ", 1)[0] for r in replies(posts, root["id"])]
    assert authors == ["reviewer@example.com", "reviewer2@example.com"]
    pending_reupdate, final = edits(roots(posts, rid)[0])
    assert fields(pending_reupdate)["Status"] == "⏳ PENDING"  # Go's re-PUT after the first review
    assert fields(final)["Status"] == "✅ APPROVED"
    resolution = RESOLUTION_RE.search(final)
    assert resolution is not None and (resolution.group(1), resolution.group(2)) == ("finally okay", "")


async def test_denial_by_review(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="enterprise")
    rid = await stack.create_request("requester@example.com", reason="because of", reviewers=["reviewer@example.com"])
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)

    await stack.tctl("reviewer@example.com", "review", rid, "--deny", "--reason", "not okay")
    await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 1)
    await stack.tctl("reviewer2@example.com", "review", rid, "--deny", "--reason", "finally not okay")
    posts = await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 2 and len(edits(roots(p, rid)[0])) == 2)
    assert "Resolution: ❌ DENIED" in replies(posts, root["id"])[1]["message"]
    final = edits(roots(posts, rid)[0])[-1]
    assert fields(final)["Status"] == "❌ DENIED"
    resolution = RESOLUTION_RE.search(final)
    assert resolution is not None and resolution.group(1) == "finally not okay"


async def test_expiration_on_delete(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss")
    rid = await stack.create_request("myuser", reason="because of", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 1)
    await stack.tctl("admin", "rm", rid)
    posts = await wait_posts(stack, lambda p: any(edits(x) for x in roots(p, rid)))
    assert fields(roots(posts, rid)[0]["message"])["Status"] == "⌛ EXPIRED"


async def test_expiration_when_the_request_times_out(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss")
    rid = await stack.create_request("myuser", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 1)
    await stack.auth_admin("POST", f"/requests/{rid}/expire")
    posts = await wait_posts(stack, lambda p: any(edits(x) for x in roots(p, rid)))
    assert fields(roots(posts, rid)[0]["message"])["Status"] == "⌛ EXPIRED"
    assert (await stack.plugin_data(rid))["resolution"] == "EXPIRED"


async def test_resolved_posts_are_never_edited_again(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss")
    rid = await stack.create_request("myuser", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 1)
    await stack.tctl("admin", "approve", rid)
    await wait_posts(stack, lambda p: len(edits(roots(p, rid)[0])) == 1)
    await stack.tctl("admin", "rm", rid)
    await stack.settled(rid)  # the sidecar has handled the DELETE (and so could have wrongly acted on it)
    [post] = roots(await stack.posts(), rid)
    assert len(edits(post)) == 1
    assert fields(post["message"])["Status"] == "✅ APPROVED"


async def test_recipients_config_channel_and_email(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", role_to_recipients={"*": ["myteam/town-square", "reviewer@example.com"]})
    rid = await stack.create_request("myuser", reason="because of")
    await wait_posts(stack, lambda p: len(roots(p, rid)) >= 2)
    await stack.settled(rid)
    posts = roots(await stack.posts(), rid)
    assert len(posts) == 2
    assert {p["channel_id"] for p in posts} == {
        await channel_id(stack, "myteam/town-square"),
        await dm_channel(stack, "reviewer@example.com"),
    }
    assert len((await stack.plugin_data(rid))["messages"].split(",")) == 2
