"""End-to-end behaviour beyond the Go suite: races, identity rotation, TLS routing, slow Mattermost, switching
from the Go plugin, restarts.

Same setup as test_go_suite.py: separate processes, public interfaces only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.stack import BOT_TOKEN, PLUGIN_USER, Stack, eventually
from fakes.teleport_harness import HarnessClient
from sidecar.domain.model import RequestState
from sidecar.teleport.wire import types_pb2
from tests.e2e.conftest import MakeStack, channel_id, dm_channel, edits, fields, replies, roots, wait_posts

REVIEWERS = ("reviewer@example.com", "reviewer2@example.com")


async def create_via_grpc(stack: Stack, user: str, reason: str, reviewers: tuple[str, ...] = ()) -> str:
    async with stack.teleport_client(user) as client:
        req = types_pb2.AccessRequestV3(Kind="access_request", Version="v3")
        req.Spec.User = user
        req.Spec.Roles.append("editor")
        req.Spec.RequestReason = reason
        req.Spec.SuggestedReviewers.extend(reviewers)
        created = await HarnessClient(client).create_access_request(req)
        return created.Metadata.Name


async def test_race_many_requests_each_reviewed_from_its_dm(make_stack: MakeStack) -> None:
    """Go's TestRace (skipped there as flaky): it must be reliable here."""
    stack = await make_stack(edition="enterprise")
    count = 10
    ids = await asyncio.gather(*(create_via_grpc(stack, "requester@example.com", f"race {i}", REVIEWERS)
                                 for i in range(count)))
    dm_user = {await dm_channel(stack, email): email for email in REVIEWERS}
    posts = await wait_posts(stack, lambda p: all(len(roots(p, rid)) == 2 for rid in ids), timeout=60)

    clients = {email: stack.teleport_client(email) for email in REVIEWERS}
    entered = {email: await cm.__aenter__() for email, cm in clients.items()}
    try:
        async def review(rid: str, post: dict[str, Any]) -> None:
            reviewer = dm_user[post["channel_id"]]
            harness = HarnessClient(entered[reviewer])
            await harness.submit_access_review(rid, RequestState.APPROVED, reason=f"ok from {reviewer}")

        await asyncio.gather(*(review(rid, post) for rid in ids for post in roots(posts, rid)))
    finally:
        for cm in clients.values():
            await cm.__aexit__(None, None, None)

    def all_reviewed(p: list[dict[str, Any]]) -> bool:
        return all(len(replies(p, r["id"])) == 2 and len(edits(r)) == 2 for rid in ids for r in roots(p, rid))

    await wait_posts(stack, all_reviewed, timeout=90)
    await stack.settled(*ids)  # every event handled: nothing more can arrive
    posts = await stack.posts()
    for rid in ids:
        rs = roots(posts, rid)
        assert len(rs) == 2, f"request {rid}: {len(rs)} root posts"
        for root in rs:
            assert len(replies(posts, root["id"])) == 2
            assert len(edits(root)) == 2
            assert fields(root["message"])["Status"] == "✅ APPROVED"


async def test_identity_rotated_by_tbot_while_requests_flow(make_stack: MakeStack) -> None:
    # Certificates live 6 s and are renewed every 2 s: any connection still using an old one after its
    # expiry is refused, so requests after a forced reconnect prove the new identity was picked up.
    stack = await make_stack(edition="oss", tbot_renewal="2s", tbot_ttl="6s", recipients=["myteam/town-square"])
    first = await stack.create_request("myuser", reason="before rotation")
    await wait_posts(stack, lambda p: len(roots(p, first)) == 1)
    tbot = stack.tbot
    assert tbot is not None
    renewals = len(tbot.stdout_lines)
    await wait_posts(stack, lambda p: len(tbot.stdout_lines) >= renewals + 4, timeout=30)  # > one TTL later
    await stack.auth_admin("POST", "/faults/drop-watchers")
    second = await stack.create_request("myuser", reason="after rotation")
    await wait_posts(stack, lambda p: len(roots(p, second)) == 1, timeout=30)
    await stack.tctl("admin", "approve", second, "--reason", "rotated")
    posts = await wait_posts(stack, lambda p: bool(edits(roots(p, second)[0])), timeout=30)
    assert fields(roots(posts, second)[0]["message"])["Status"] == "✅ APPROVED"


async def test_connects_through_the_proxy_tls_routing_port(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="enterprise", via_proxy=True, recipients=["myteam/town-square"])
    assert stack.sidecar is not None
    rid = await stack.create_request("myuser", reason="via proxy")
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)
    assert root["channel_id"] == await channel_id(stack, "myteam/town-square")
    await stack.tctl("admin", "deny", rid, "--reason", "no")
    posts = await wait_posts(stack, lambda p: bool(edits(roots(p, rid)[0])))
    assert fields(roots(posts, rid)[0]["message"])["Status"] == "❌ DENIED"
    assert (await stack.plugin_data(rid))["resolution"] == "DENIED"


async def test_requests_arriving_while_mattermost_is_slow(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=["myteam/town-square", "reviewer@example.com"])
    await stack.mm_admin("POST", "/fake/faults", {"route": "/api/v4/posts*", "method": "*", "latency_ms": 1500})
    ids = await asyncio.gather(*(stack.create_request("myuser", reason=f"slow {i}") for i in range(4)))
    await wait_posts(stack, lambda p: all(len(roots(p, rid)) == 2 for rid in ids), timeout=60)
    for rid in ids:
        await stack.tctl("admin", "approve", rid)
    await wait_posts(stack, lambda p: all(all(edits(r) for r in roots(p, rid)) for rid in ids), timeout=60)
    await stack.settled(*ids)
    posts = await stack.posts()
    for rid in ids:
        assert len(roots(posts, rid)) == 2  # nothing posted twice despite the slowness
        assert all(fields(r["message"])["Status"] == "✅ APPROVED" for r in roots(posts, rid))


async def test_continues_plugin_data_written_by_the_go_plugin(make_stack: MakeStack) -> None:
    """Switching from the Go plugin: its records are continued, with no new root post."""
    stack = await make_stack(edition="oss", sidecar=False, recipients=["myteam/town-square"])
    rid = await stack.create_request("requester@example.com", reason="go era")
    town = await channel_id(stack, "myteam/town-square")
    go_post = await stack.mm_as(BOT_TOKEN, "POST", "/api/v4/posts", {"channel_id": town, "message": "posted by Go"})
    go_record = {  # exactly what the Go plugin stores after announcing a request
        "user": "requester@example.com", "roles": "editor", "resources": "", "request_reason": "go era",
        "reviews_count": "", "resolution": "", "resolve_reason": "", "max_duration": "", "system_annotations": "",
        "suggested_reviewers": "", "logins_by_role": '{"editor":["root","ubuntu"]}',
        "messages": f"{town}/{go_post['id']}",
    }
    await stack.sign(PLUGIN_USER)
    async with stack.teleport_client(PLUGIN_USER) as plugin:
        await plugin.update_plugin_data(rid, "mattermost", set_=go_record,
                                        expect={k: "" for k in go_record})
    stack.write_config()
    await stack.start_sidecar()

    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "fine")
    posts = await wait_posts(stack, lambda p: len(replies(p, go_post["id"])) == 1)
    await stack.tctl("reviewer2@example.com", "review", rid, "--approve", "--reason", "fine too")
    await wait_posts(stack, lambda p: len(replies(p, go_post["id"])) == 2 and len(
        edits(next(x for x in p if x["id"] == go_post["id"]))) == 2)
    await stack.settled(rid)  # counts only the two reviews: no sidecar watched when the request was created
    posts = await stack.posts()
    # No root post of ours: the only root post about the request is the Go plugin's, edited in place.
    assert [r["id"] for r in roots(posts, rid)] == [go_post["id"]]
    edited = next(x for x in posts if x["id"] == go_post["id"])
    assert fields(edited["message"])["Status"] == "✅ APPROVED"
    assert fields(edited["message"])["Reason"] == "```"  # reason fenced on the next line, from the stored data
    data = await stack.plugin_data(rid)
    assert (data["reviews_count"], data["resolution"], data["messages"]) == ("2", "APPROVED", go_record["messages"])


async def test_restart_does_not_repost_and_keeps_threading(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=["myteam/town-square"])
    rid = await stack.create_request("requester@example.com", reason="restart me")
    [root] = roots(await wait_posts(stack, lambda p: len(roots(p, rid)) == 1), rid)
    assert await stack.stop_sidecar() == 0
    await stack.start_sidecar()
    await stack.tctl("reviewer@example.com", "review", rid, "--deny", "--reason", "no")
    await stack.tctl("reviewer2@example.com", "review", rid, "--deny", "--reason", "still no")
    await wait_posts(stack, lambda p: len(replies(p, root["id"])) == 2 and len(edits(roots(p, rid)[0])) == 2)
    await stack.settled(rid)  # the creation, handled by the first sidecar, and both reviews by the second
    posts = await stack.posts()
    assert len(roots(posts, rid)) == 1
    assert fields(roots(posts, rid)[0]["message"])["Status"] == "❌ DENIED"


async def test_rate_limited_mattermost_loses_nothing(make_stack: MakeStack) -> None:
    """The Go plugin drops a post on 429; we wait for the reset and carry on.

    The sidecar's pacer keeps it under the server's limit (tests/e2e/test_pacing.py), so the 429s here are
    injected: half of the posts and edits are refused as rate limited, whatever the pacing does.
    """
    stack = await make_stack(edition="oss", recipients=["myteam/town-square", "reviewer@example.com"],
                             rate_limit=2, rate_burst=1)
    await stack.mm_admin("POST", "/fake/faults", {"route": "/api/v4/posts*", "method": "*", "status": 429,
                                                  "rate": 0.5})
    ids = await asyncio.gather(*(stack.create_request("myuser", reason=f"limited {i}") for i in range(3)))
    await wait_posts(stack, lambda p: all(len(roots(p, rid)) == 2 for rid in ids), timeout=60)
    for rid in ids:
        await stack.tctl("admin", "approve", rid)
    await wait_posts(stack, lambda p: all(all(edits(r) for r in roots(p, rid)) for rid in ids), timeout=60)
    await stack.settled(*ids)
    posts = await stack.posts()
    limited = [r for r in await stack.mm_admin("GET", "/fake/requests") if r["status"] == 429]
    assert limited, "the scenario must actually hit the rate limit"
    for rid in ids:
        assert len(roots(posts, rid)) == 2
        assert all(fields(r["message"])["Status"] == "✅ APPROVED" for r in roots(posts, rid))


async def test_announcement_survives_a_short_mattermost_outage(make_stack: MakeStack) -> None:
    """The Go plugin creates its record, fails to post and never tries again; we retry the announcement."""
    stack = await make_stack(edition="oss", recipients=["myteam/town-square", "reviewer@example.com"])
    await stack.mm_admin("POST", "/fake/faults", {"route": "/api/v4/posts", "method": "POST", "status": 503})
    rid = await stack.create_request("myuser", reason="during an outage")

    async def refused() -> bool | None:
        log = await stack.mm_admin("GET", "/fake/requests")
        return True if any(r["status"] == 503 for r in log) else None

    await eventually(refused)
    await stack.mm_admin("DELETE", "/fake/faults")  # Mattermost is back
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 2, timeout=60)
    await stack.settled(rid)
    assert len(roots(await stack.posts(), rid)) == 2  # each recipient exactly once
    assert len((await stack.plugin_data(rid))["messages"].split(",")) == 2
