"""Posts: create, get, update (PUT), patch, thread, channel pages, deduplication."""

from __future__ import annotations

from typing import Any

import aiohttp

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.ids import is_valid_id
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
ADMIN = "admin-token"


async def _post(api: Client, channel: str, message: str = "hello", **extra: Any) -> dict[str, Any]:
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": message, **extra})
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


async def test_create_post_like_teleport(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call(
        "POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "hi", "root_id": "", "props": None}
    )
    assert reply.status == 201
    post = reply.body
    assert is_valid_id(post["id"])
    assert post["channel_id"] == channel
    assert post["user_id"] == mm.control.user_id("teleport")
    assert post["props"] == {"from_bot": "true"}
    assert post["metadata"] == {}
    assert post["file_ids"] == []
    assert post["edit_at"] == 0
    assert post["update_at"] == post["create_at"]


async def test_user_id_is_forced_to_caller(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    post = await _post(api, channel, user_id=mm.control.user_id("reviewer"))
    assert post["user_id"] == mm.control.user_id("teleport")


async def test_human_posts_have_no_from_bot(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", "/api/v4/posts", ADMIN, {"channel_id": channel, "message": "m", "props": {"a": 1}})
    assert reply.body["props"] == {"a": 1}


async def test_post_permissions(api: Client, mm: FakeMattermost) -> None:
    for name in ("off-topic", "secret-reviews"):
        channel = mm.control.channel_id("myteam", name)
        reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x"})
        assert reply.status == 403, name
        assert reply.body["id"] == "api.context.permissions.app_error"
    unknown = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": "z" * 26, "message": "x"})
    assert unknown.status == 403


async def test_message_length_is_counted_in_runes(http: aiohttp.ClientSession) -> None:
    async with FakeMattermost(config=ServerConfig(max_post_length=10)) as server:
        api = Client(http, server.url)
        channel = server.control.channel_id("myteam", "town-square")
        ok = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "é" * 10})
        assert ok.status == 201
        emoji = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "😀" * 10})
        assert emoji.status == 201
        long = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x" * 11})
        assert long.status == 400
        assert long.body["id"] == "model.post.is_valid.message_length.app_error"


async def test_default_maximum_is_16383(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    ok = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x" * 16383})
    assert ok.status == 201
    too_long = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x" * 16384})
    assert too_long.status == 400


async def test_only_admins_may_set_create_at(api: Client, mm: FakeMattermost, clock: ManualClock) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    by_bot = await _post(api, channel, create_at=1000)
    assert by_bot["create_at"] == int(clock.now() * 1000)
    backdated = {"channel_id": channel, "message": "m", "create_at": 1000}
    by_admin = await api.call("POST", "/api/v4/posts", ADMIN, backdated)
    assert by_admin.body["create_at"] == 1000


async def test_file_ids_limit(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    ten = ["f" * 26] * 10
    ok = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "m", "file_ids": ten})
    assert ok.status == 201
    assert ok.body["file_ids"] == ten
    twenty = {"channel_id": channel, "message": "m", "file_ids": ten * 2}
    too_many = await api.call("POST", "/api/v4/posts", BOT, twenty)
    assert too_many.status == 400
    assert too_many.body["id"] == "model.post.is_valid.file_ids.app_error"
    patched = await api.call("PUT", f"/api/v4/posts/{ok.body['id']}/patch", BOT, {"file_ids": ten * 2})
    assert patched.status == 400


async def test_props_must_be_an_object(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x", "props": "text"})
    assert reply.status == 400
    assert reply.body["id"] == "api.context.invalid_body_param.app_error"


async def test_system_post_types_are_refused(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x", "type": "system_x"})
    assert reply.status == 400
    custom = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x", "type": "custom_x"})
    assert custom.status == 201


async def test_replies_and_root_id_rules(api: Client, mm: FakeMattermost) -> None:
    square = mm.control.channel_id("myteam", "town-square")
    general = mm.control.channel_id("myteam", "general")
    root = await _post(api, square, "root")
    reply = await _post(api, square, "reply", root_id=root["id"])
    assert reply["root_id"] == root["id"]
    unknown = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "r", "root_id": "q" * 26})
    assert unknown.status == 400
    assert unknown.body["id"] == "api.post.create_post.root_id.app_error"
    nested = {"channel_id": square, "message": "r", "root_id": reply["id"]}
    to_reply = await api.call("POST", "/api/v4/posts", BOT, nested)
    assert to_reply.status == 400
    assert to_reply.body["id"] == "api.post.create_post.root_id.app_error"
    other = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": general, "message": "r", "root_id": root["id"]})
    assert other.status == 400
    assert other.body["id"] == "api.post.create_post.channel_root_id.app_error"
    refreshed = await api.call("GET", f"/api/v4/posts/{root['id']}", BOT)
    assert refreshed.body["reply_count"] == 1


async def test_pending_post_id_deduplicates_within_30_seconds(
    api: Client, mm: FakeMattermost, clock: ManualClock
) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    first = await _post(api, channel, "once", pending_post_id="client-1")
    assert first["pending_post_id"] == "client-1"
    clock.advance(29)
    retry = await _post(api, channel, "once", pending_post_id="client-1")
    assert retry["id"] == first["id"]
    assert retry["pending_post_id"] == ""
    assert len(mm.control.posts(channel)) == 1
    clock.advance(2)
    late = await _post(api, channel, "once", pending_post_id="client-1")
    assert late["id"] != first["id"]
    assert len(mm.control.posts(channel)) == 2
    plain = await _post(api, channel, "once")
    again = await _post(api, channel, "once")
    assert plain["id"] != again["id"]


async def test_failed_create_does_not_reserve_the_pending_id(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    body = {"channel_id": channel, "message": "x", "root_id": "w" * 26, "pending_post_id": "p"}
    bad = await api.call("POST", "/api/v4/posts", BOT, body)
    assert bad.status == 400
    good = await _post(api, channel, "x", pending_post_id="p")
    assert good["pending_post_id"] == "p"


async def test_get_post(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    post = await _post(api, channel)
    reply = await api.call("GET", f"/api/v4/posts/{post['id']}", BOT)
    assert reply.status == 200
    assert reply.body["message"] == "hello"
    assert reply.body["pending_post_id"] == ""
    missing = await api.call("GET", "/api/v4/posts/" + "m" * 26, BOT)
    assert missing.status == 404
    assert missing.body["id"] == "app.post.get.app_error"


async def test_get_post_in_unreadable_channel_is_403(api: Client, mm: FakeMattermost) -> None:
    secret = mm.control.channel_id("myteam", "secret-reviews")
    created = await api.call("POST", "/api/v4/posts", ADMIN, {"channel_id": secret, "message": "private"})
    reply = await api.call("GET", f"/api/v4/posts/{created.body['id']}", BOT)
    assert reply.status == 403


async def test_put_replaces_and_wipes_omitted_fields(api: Client, mm: FakeMattermost, clock: ManualClock) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    post = await _post(api, channel, "v1", props={"keep": "me"})
    clock.advance(1)
    reply = await api.call(
        "PUT",
        f"/api/v4/posts/{post['id']}",
        BOT,
        {"id": post["id"], "channel_id": channel, "message": "v2", "root_id": "", "props": None},
    )
    assert reply.status == 200
    updated = reply.body
    assert updated["message"] == "v2"
    assert updated["props"] == {}
    assert updated["edit_at"] > 0
    assert updated["update_at"] > post["update_at"]
    wiped = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": post["id"]})
    assert wiped.body["message"] == ""


async def test_put_requires_matching_id(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    post = await _post(api, channel)
    missing = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"message": "x"})
    assert missing.status == 400
    assert missing.body["id"] == "api.context.invalid_body_param.app_error"
    other = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": "n" * 26, "message": "x"})
    assert other.status == 400
    bad_props = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": post["id"], "props": "x"})
    assert bad_props.status == 400
    bad_pin = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": post["id"], "is_pinned": 1})
    assert bad_pin.status == 400
    too_long = await api.call("PUT", f"/api/v4/posts/{post['id']}", BOT, {"id": post["id"], "message": "x" * 16384})
    assert too_long.status == 400


async def test_patch_changes_only_given_fields(api: Client, mm: FakeMattermost, clock: ManualClock) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    post = await _post(api, channel, "v1", props={"keep": "me"})
    clock.advance(1)
    pinned = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"is_pinned": True})
    assert pinned.status == 200
    assert pinned.body["message"] == "v1"
    assert pinned.body["props"] == {"keep": "me", "from_bot": "true"}
    assert pinned.body["is_pinned"] is True
    assert pinned.body["edit_at"] == 0  # message unchanged
    message = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"message": "v2"})
    assert message.body["message"] == "v2"
    assert message.body["edit_at"] > 0
    assert message.body["is_pinned"] is True
    props = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"props": {"new": 1}})
    assert props.body["props"] == {"new": 1}
    bad = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"props": "string"})
    assert bad.status == 400
    bad_flag = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"is_pinned": "yes"})
    assert bad_flag.status == 400
    bad_files = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"file_ids": [1]})
    assert bad_files.status == 400


async def test_edit_permissions(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    by_admin = await api.call("POST", "/api/v4/posts", ADMIN, {"channel_id": channel, "message": "admin's"})
    post_id = by_admin.body["id"]
    put = await api.call("PUT", f"/api/v4/posts/{post_id}", BOT, {"id": post_id, "message": "mine now"})
    assert put.status == 403
    patch = await api.call("PUT", f"/api/v4/posts/{post_id}/patch", BOT, {"message": "mine now"})
    assert patch.status == 403
    unknown = await api.call("PUT", "/api/v4/posts/" + "u" * 26 + "/patch", BOT, {"message": "x"})
    assert unknown.status == 403
    own = await _post(api, channel)
    admin_edit = await api.call("PUT", f"/api/v4/posts/{own['id']}/patch", ADMIN, {"message": "moderated"})
    assert admin_edit.status == 200


async def test_edit_time_limit(http: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with FakeMattermost(config=ServerConfig(post_edit_time_limit=60), clock=clock) as server:
        api = Client(http, server.url)
        channel = server.control.channel_id("myteam", "town-square")
        post = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "a"})).body
        clock.advance(61)
        reply = await api.call("PUT", f"/api/v4/posts/{post['id']}/patch", BOT, {"message": "b"})
        assert reply.status == 400
        assert reply.body["id"] == "api.post.update_post.permissions_time_limit.app_error"


async def test_thread_from_any_post(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    root = await _post(api, channel, "root")
    replies = [await _post(api, channel, f"r{i}", root_id=root["id"]) for i in range(3)]
    await _post(api, channel, "unrelated")
    for start in (root["id"], replies[1]["id"]):
        reply = await api.call("GET", f"/api/v4/posts/{start}/thread", BOT)
        assert reply.status == 200
        body = reply.body
        assert body["order"] == [r["id"] for r in reversed(replies)] + [root["id"]]
        assert set(body["posts"]) == set(body["order"])
        assert body["posts"][root["id"]]["reply_count"] == 3


async def test_thread_paging(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    root = await _post(api, channel, "root")
    for i in range(4):
        await _post(api, channel, f"r{i}", root_id=root["id"])
    reply = await api.call("GET", f"/api/v4/posts/{root['id']}/thread?perPage=2&direction=up", BOT)
    body = reply.body
    assert body["has_next"] is True
    assert root["id"] in body["order"]
    bad = await api.call("GET", f"/api/v4/posts/{root['id']}/thread?direction=sideways", BOT)
    assert bad.status == 400
    missing = await api.call("GET", "/api/v4/posts/" + "k" * 26 + "/thread", BOT)
    assert missing.status == 404


async def test_channel_posts_paging(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    ids = [(await _post(api, channel, f"m{i}"))["id"] for i in range(5)]
    newest_first = list(reversed(ids))
    full = await api.call("GET", f"/api/v4/channels/{channel}/posts", BOT)
    assert full.status == 200
    assert full.body["order"] == newest_first
    page0 = (await api.call("GET", f"/api/v4/channels/{channel}/posts?page=0&per_page=2", BOT)).body
    assert page0["order"] == newest_first[:2]
    assert page0["prev_post_id"] == newest_first[2]
    assert page0["next_post_id"] == ""
    assert page0["has_next"] is True
    page2 = (await api.call("GET", f"/api/v4/channels/{channel}/posts?page=2&per_page=2", BOT)).body
    assert page2["order"] == newest_first[4:]
    assert page2["has_next"] is False
    before = (await api.call("GET", f"/api/v4/channels/{channel}/posts?before={ids[2]}", BOT)).body
    assert before["order"] == [ids[1], ids[0]]
    after = (await api.call("GET", f"/api/v4/channels/{channel}/posts?after={ids[2]}", BOT)).body
    assert after["order"] == [ids[4], ids[3]]
    after0 = (await api.call("GET", f"/api/v4/channels/{channel}/posts?after={ids[0]}&per_page=2", BOT)).body
    assert after0["order"] == [ids[2], ids[1]]
    assert (after0["next_post_id"], after0["prev_post_id"], after0["has_next"]) == (ids[3], ids[0], True)
    after1 = (await api.call("GET", f"/api/v4/channels/{channel}/posts?after={ids[0]}&per_page=2&page=1", BOT)).body
    assert after1["order"] == [ids[4], ids[3]]
    assert (after1["next_post_id"], after1["prev_post_id"], after1["has_next"]) == ("", ids[2], False)


async def test_channel_posts_since(api: Client, mm: FakeMattermost, clock: ManualClock) -> None:
    channel = mm.control.channel_id("myteam", "general")
    old = await _post(api, channel, "old")
    clock.advance(5)
    mark = int(clock.now() * 1000)
    clock.advance(5)
    new = await _post(api, channel, "new")
    body = (await api.call("GET", f"/api/v4/channels/{channel}/posts?since={mark}", BOT)).body
    assert body["order"] == [new["id"]]
    await api.call("PUT", f"/api/v4/posts/{old['id']}/patch", BOT, {"message": "old, edited"})
    edited = (await api.call("GET", f"/api/v4/channels/{channel}/posts?since={mark}", BOT)).body
    assert set(edited["order"]) == {new["id"], old["id"]}


async def test_channel_posts_errors(api: Client, mm: FakeMattermost) -> None:
    secret = mm.control.channel_id("myteam", "secret-reviews")
    hidden = await api.call("GET", f"/api/v4/channels/{secret}/posts", BOT)
    assert hidden.status == 403
    unknown = await api.call("GET", "/api/v4/channels/" + "j" * 26 + "/posts", BOT)
    assert unknown.status == 403
    channel = mm.control.channel_id("myteam", "general")
    bad = await api.call("GET", f"/api/v4/channels/{channel}/posts?page=x", BOT)
    assert bad.status == 400
    assert bad.body["id"] == "api.context.invalid_url_param.app_error"
    negative = await api.call("GET", f"/api/v4/channels/{channel}/posts?per_page=-1", BOT)
    assert negative.status == 400
    mixed = await api.call("GET", f"/api/v4/channels/{channel}/posts?since=5&before=" + "a" * 26, BOT)
    assert mixed.status == 400
    unknown_anchor = await api.call("GET", f"/api/v4/channels/{channel}/posts?before=" + "a" * 26, BOT)
    assert unknown_anchor.body["order"] == []
    readable = await api.call("GET", f"/api/v4/channels/{mm.control.channel_id('myteam', 'off-topic')}/posts", BOT)
    assert readable.status == 200
    assert readable.body["posts"] == {}


async def test_per_page_is_capped_at_200(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    for i in range(205):
        await _post(api, channel, f"m{i}")
    body = (await api.call("GET", f"/api/v4/channels/{channel}/posts?per_page=500", BOT)).body
    assert len(body["order"]) == 200
    default = (await api.call("GET", f"/api/v4/channels/{channel}/posts", BOT)).body
    assert len(default["order"]) == 60


async def test_hashtags(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    post = await _post(api, channel, "see #access and #review.")
    assert post["hashtags"] == "#access #review"


async def test_pending_ids_expire_in_order_also_after_a_reuse(
    api: Client, mm: FakeMattermost, clock: ManualClock
) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    a = await _post(api, channel, "a", pending_post_id="p-a")
    clock.advance(10)
    b = await _post(api, channel, "b", pending_post_id="p-b")
    clock.advance(21)  # p-a expired, p-b has 9 s left
    assert (await _post(api, channel, "b", pending_post_id="p-b"))["id"] == b["id"]
    a2 = await _post(api, channel, "a", pending_post_id="p-a")
    assert a2["id"] != a["id"]
    clock.advance(10)  # p-b expired; p-a was taken again 10 s ago and must still be known
    assert (await _post(api, channel, "a", pending_post_id="p-a"))["id"] == a2["id"]
    assert (await _post(api, channel, "b", pending_post_id="p-b"))["id"] != b["id"]


class _NoScan(dict):  # type: ignore[type-arg]
    """A dict that refuses to be iterated: lookups only."""

    def _refuse(self, *_: object) -> object:
        raise AssertionError("scanned every stored post")

    __iter__ = values = items = keys = _refuse  # type: ignore[assignment]


async def test_posting_and_threads_do_not_scan_every_post(api: Client, mm: FakeMattermost) -> None:
    # Every post answer carries its thread's reply count, and the sidecar searches a channel's posts: scanning all
    # posts for either made a burst O(n²) (bench/e2e_burst.py checks that the fakes' per-call cost stays flat).
    channel = mm.control.channel_id("myteam", "town-square")
    root = await _post(api, channel, "root")
    for i in range(5):
        await _post(api, channel, f"other {i}")
    mm.state.posts = _NoScan(mm.state.posts)
    reply = await _post(api, channel, "reply", root_id=root["id"], pending_post_id="r-1")
    assert (await _post(api, channel, "again", root_id=root["id"]))["reply_count"] == 2
    fetched = await api.call("GET", f"/api/v4/posts/{root['id']}", BOT)
    assert (fetched.status, fetched.body["reply_count"]) == (200, 2)
    thread = await api.call("GET", f"/api/v4/posts/{reply['id']}/thread", BOT)
    assert thread.status == 200
    assert thread.body["order"][-1] == root["id"]
    assert len(thread.body["order"]) == 3
    edited = await api.call("PUT", f"/api/v4/posts/{root['id']}", BOT, {"id": root["id"], "message": "x"})
    assert edited.status == 200
    # A channel's posts (the sidecar's search) come from the channel's own index, newest first.
    since = await api.call("GET", f"/api/v4/channels/{channel}/posts?since={root['create_at'] - 1}", BOT)
    assert since.status == 200
    assert since.body["order"][-1] == root["id"] and len(since.body["order"]) == 8
    page = await api.call("GET", f"/api/v4/channels/{channel}/posts?per_page=2", BOT)
    assert (page.status, len(page.body["order"])) == (200, 2)
