"""The `/fake/` admin routes and the typed test face."""

from __future__ import annotations

import json

from fakes.mattermost.control import RequestLog, RequestRecord
from fakes.mattermost.faults import FaultSpec
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.buttons import post_buttons
from tests.fakes.mattermost.conftest import Client, Hook

BOT = "teleport-bot-token"
ADMIN = "admin-token"


async def test_fake_routes_need_the_admin_token(api: Client) -> None:
    for token in (None, BOT, "nonsense"):
        reply = await api.call("GET", "/fake/requests", token)
        assert reply.status == 401, token
    cookie = await api.call("GET", "/fake/requests", headers={"Cookie": f"MMAUTHTOKEN={ADMIN}"})
    assert cookie.status == 401
    assert (await api.call("GET", "/fake/requests", ADMIN)).status == 200


async def test_request_log_counts_by_route_template(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    await api.call("GET", "/api/v4/users/me", BOT)
    post = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "a"})).body
    await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": post["id"], "message": "b"})
    await api.call("GET", "/api/v4/nope", BOT)
    assert mm.control.count("POST", "/api/v4/posts") == 1
    assert mm.control.count("PUT", "/api/v4/posts/{post_id}") == 1
    log = (await api.call("GET", "/fake/requests", ADMIN)).body
    assert [(r["method"], r["route"], r["status"]) for r in log] == [
        ("GET", "/api/v4/users/{user_id}", 200),
        ("POST", "/api/v4/posts", 201),
        ("PUT", "/api/v4/posts/{post_id}", 200),
        ("GET", "<unmatched>", 404),
    ]
    assert log[0]["user_id"] == mm.control.user_id("teleport")
    assert log[0]["path"] == "/api/v4/users/me"
    filtered = (await api.call("GET", "/fake/requests?method=POST&route=/api/v4/posts", ADMIN)).body
    assert len(filtered) == 1
    assert (await api.call("DELETE", "/fake/requests", ADMIN)).status == 200
    assert mm.control.requests() == []


async def test_fault_routes(api: Client, mm: FakeMattermost) -> None:
    created = await api.call("POST", "/fake/faults", ADMIN, {"route": "/api/v4/system/ping", "status": 500})
    assert created.status == 201
    fault_id = created.body["id"]
    assert (await api.call("GET", "/api/v4/system/ping")).status == 500
    listed = (await api.call("GET", "/fake/faults", ADMIN)).body
    assert listed[0]["id"] == fault_id
    assert listed[0]["fired"] == 1
    assert (await api.call("DELETE", f"/fake/faults/{fault_id}", ADMIN)).status == 200
    assert (await api.call("DELETE", f"/fake/faults/{fault_id}", ADMIN)).status == 404
    assert (await api.call("GET", "/api/v4/system/ping")).status == 200
    await api.call("POST", "/fake/faults", ADMIN, {"status": 500})
    assert (await api.call("DELETE", "/fake/faults", ADMIN)).status == 200
    assert mm.control.faults.faults == []
    bad = await api.call("POST", "/fake/faults", ADMIN, {"status": 200})
    assert bad.status == 400
    assert "status" in bad.body["error"]
    not_json = await api.call("POST", "/fake/faults", ADMIN, raw=b"nope")
    assert not_json.status == 400


async def test_posts_history_and_summary(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    root = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "root"})).body
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "re", "root_id": root["id"]})
    await api.call("PUT", f"/api/v4/posts/{root['id']}", BOT, {"id": root["id"], "message": "root v2"})
    await api.call("PUT", f"/api/v4/posts/{root['id']}/patch", BOT, {"message": "root v3"})
    posts = (await api.call("GET", f"/fake/posts?channel_id={channel}", ADMIN)).body
    assert [p["message"] for p in posts] == ["root v3", "re"]
    assert [h["kind"] for h in posts[0]["history"]] == ["create", "update", "patch"]
    assert [h["message"] for h in posts[0]["history"]] == ["root", "root v2", "root v3"]
    summary = (await api.call("GET", "/fake/summary", ADMIN)).body
    assert summary == [{"channel_id": channel, "root_posts": 1, "replies": 1, "edits": 2}]
    [row] = mm.control.summary()
    assert (row.root_posts, row.replies, row.edits) == (1, 1, 2)
    assert (await api.call("GET", "/fake/posts?channel_id=" + "x" * 26, ADMIN)).body == []


async def test_seed_route(api: Client, mm: FakeMattermost) -> None:
    seed = (await api.call("GET", "/fake/seed", ADMIN)).body
    assert seed["users"]["teleport"] == mm.control.user_id("teleport")
    assert seed["channels"]["myteam/town-square"] == mm.control.channel_id("myteam", "town-square")
    assert seed["tokens"]["teleport"] == BOT
    assert set(seed["teams"]) == {"myteam"}


async def test_reset_restores_the_seed(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    bot_id = mm.control.user_id("teleport")
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x"})
    await api.call("POST", "/api/v4/bots", ADMIN, {"username": "temp"})
    mm.control.add_fault(FaultSpec(route="/api/v4/bots", status=500))
    assert (await api.call("POST", "/fake/reset", ADMIN)).status == 200
    assert mm.control.posts() == []
    assert mm.control.requests() == []
    assert mm.control.faults.faults == []
    assert mm.control.user_id("teleport") == bot_id
    assert mm.control.channel_id("myteam", "general") == channel
    assert (await api.call("GET", "/api/v4/users/username/temp", BOT)).status == 404


async def test_ephemeral_route_is_empty_initially(api: Client) -> None:
    assert (await api.call("GET", "/fake/ephemeral", ADMIN)).body == []


async def test_log_reads_only_what_is_new_from_an_offset(api: Client, mm: FakeMattermost) -> None:
    await api.call("GET", "/api/v4/users/me", BOT)
    first = (await api.call("GET", "/fake/log", ADMIN)).body
    assert (first["offset"], first["next"]) == (0, 1)
    assert [r["route"] for r in first["requests"]] == ["/api/v4/users/{user_id}"]
    await api.call("GET", "/api/v4/system/ping")
    await api.call("GET", "/api/v4/nope", BOT)
    later = (await api.call("GET", f"/fake/log?offset={first['next']}", ADMIN)).body
    assert (later["offset"], later["next"]) == (1, 3)
    assert [r["route"] for r in later["requests"]] == ["/api/v4/system/ping", "<unmatched>"]
    assert (await api.call("GET", "/fake/log?offset=3", ADMIN)).body == {"offset": 3, "next": 3, "requests": []}
    # Positions keep counting across a clear: an old offset never re-reads or skips anything.
    mm.control.clear_requests()
    await api.call("GET", "/api/v4/system/ping")
    after_clear = (await api.call("GET", "/fake/log?offset=1", ADMIN)).body
    assert (after_clear["offset"], after_clear["next"], len(after_clear["requests"])) == (3, 4, 1)
    assert (await api.call("GET", "/fake/log?offset=x", ADMIN)).status == 400


def test_log_offsets_survive_dropping_the_oldest_entries() -> None:
    log = RequestLog(maxlen=3)
    for i in range(5):
        log.append(RequestRecord("GET", f"/r{i}", f"/r{i}", at=i))
    start, records = log.since(0)
    assert start == 2  # the first two were dropped
    assert [r.route for r in records] == ["/r2", "/r3", "/r4"]
    assert [r.route for r in log.since(4)[1]] == ["/r4"]
    assert log.since(9) == (9, [])


async def test_counts_posts_replies_and_edits(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    root = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "a"})).body
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "b", "root_id": root["id"]})
    await api.call("PUT", f"/api/v4/posts/{root['id']}", BOT, {"id": root["id"], "message": "c"})
    await api.call("PUT", f"/api/v4/posts/{root['id']}/patch", BOT, {"message": "d"})
    counts = (await api.call("GET", "/fake/counts", ADMIN)).body
    assert counts == {"posts": 2, "root_posts": 1, "replies": 1, "edits": 2, "requests": 4}
    summary = mm.control.summary()
    assert (summary[0].root_posts, summary[0].replies, summary[0].edits) == (1, 1, 2)
    mm.control.reset()
    # The request count goes on across a reset (it is a log position); /fake/ calls are not logged.
    assert mm.control.counts() == {"posts": 0, "root_posts": 0, "replies": 0, "edits": 0, "requests": 4}


async def test_acting_as_users_over_http(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.reply_with({"ephemeral_text": "Recorded."})
    click = await apii.call("POST", "/fake/click", ADMIN,
                            {"username": "reviewer", "post_id": post["id"], "action_id": "approve"})
    assert click.status == 200
    assert click.body["status"] == 200 and click.body["body"]["status"] == "OK"
    # The click went through the public route, logged under the user it was made as.
    [logged] = mmi.control.requests(route="/api/v4/posts/{post_id}/actions/{action_id}")
    assert logged.user_id == mmi.control.user_id("reviewer") and logged.status == 200
    refused = await apii.call("POST", "/fake/click", ADMIN,
                              {"username": "requester", "post_id": post["id"], "action_id": "nope"})
    assert refused.body["status"] == 404
    calls = (await apii.call("GET", "/fake/integration-calls?kind=post_action&username=reviewer", ADMIN)).body
    assert [(c["user_id"], c["status"], c["outcome"]["ephemeral_text"]) for c in calls] == [
        (mmi.control.user_id("reviewer"), 200, "Recorded.")]
    assert json.loads(calls[0]["body"])["post_id"] == post["id"]
    assert (await apii.call("GET", "/fake/integration-calls?kind=dialog_submission", ADMIN)).body == []
    assert (await apii.call("DELETE", "/fake/integration-calls", ADMIN)).status == 200
    assert mmi.control.integration_calls() == []
    for bad in ({"post_id": post["id"], "action_id": "approve"}, {"username": "reviewer"}):
        assert (await apii.call("POST", "/fake/click", ADMIN, bad)).status == 400
    ghost = {"username": "ghost", "post_id": post["id"], "action_id": "approve"}
    assert (await apii.call("POST", "/fake/click", ADMIN, ghost)).status == 404


async def test_tokens_activation_and_cookies_over_http(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    minted = (await apii.call("POST", "/fake/tokens", ADMIN, {"username": "myuser"})).body
    assert minted["user_id"] == mmi.control.user_id("myuser")
    me = await apii.call("GET", "/api/v4/users/me", minted["token"])
    assert me.body["username"] == "myuser"
    again = (await apii.call("POST", "/fake/tokens", ADMIN, {"user_id": minted["user_id"]})).body
    assert again["token"] == minted["token"]
    off = await apii.call("POST", "/fake/users/active", ADMIN, {"username": "myuser", "active": False})
    assert off.body["delete_at"] > 0
    assert (await apii.call("GET", "/api/v4/users/me", minted["token"])).status == 401
    await apii.call("POST", "/fake/users/active", ADMIN, {"username": "myuser", "active": True})
    assert (await apii.call("GET", "/api/v4/users/me", minted["token"])).status == 200
    assert (await apii.call("POST", "/fake/users/active", ADMIN, {"username": "myuser"})).status == 400
    post = await post_buttons(apii, mmi, hook.url)
    cookie = (await apii.call("POST", "/fake/cookies", ADMIN, {"post_id": post["id"], "action_id": "approve"}))
    assert cookie.status == 200 and cookie.body["cookie"]
    missing = await apii.call("POST", "/fake/cookies", ADMIN, {"post_id": post["id"], "action_id": "nope"})
    assert missing.status == 404
    mmi.control.reset()
    assert (await apii.call("GET", "/api/v4/users/me", minted["token"])).status == 401  # tokens go with a reset
