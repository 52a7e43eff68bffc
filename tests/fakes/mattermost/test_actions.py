"""Interactive buttons: storage and stripping of integrations, and the click route calling the integration."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import IntegrationSettings, ServerConfig
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.buttons import BOT, actions_of, buttons, post_buttons
from tests.fakes.mattermost.conftest import Client, Hook
from tests.fakes.mattermost.integration_side import verify_trigger

ADMIN = "admin-token"
REQUEST_KEYS = [
    "user_id", "user_name", "channel_id", "channel_name", "team_id", "team_domain", "post_id", "trigger_id",
    "type", "data_source", "context",
]


# ---------------------------------------------------------------------------------------------- storage


async def test_integrations_are_stored_and_stripped_from_every_read(apii: Client, mmi: FakeMattermost) -> None:
    created = await post_buttons(apii, mmi, "http://127.0.0.1:9/hook")
    post_id, channel_id = created["id"], created["channel_id"]
    reads = [
        created,
        (await apii.call("GET", f"/api/v4/posts/{post_id}", BOT)).body,
        (await apii.call("GET", f"/api/v4/posts/{post_id}/thread", BOT)).body["posts"][post_id],
        (await apii.call("GET", f"/api/v4/channels/{channel_id}/posts", BOT)).body["posts"][post_id],
        (await apii.call("PUT", f"/api/v4/posts/{post_id}/patch", BOT, {"message": "patched"})).body,
        (await apii.call("PUT", f"/api/v4/posts/{post_id}", BOT,
                         {"id": post_id, "message": "put", "props": buttons("http://127.0.0.1:9/x")})).body,
    ]
    for read in reads:
        assert all("integration" not in action for action in actions_of(read)), read
        assert [a["name"] for a in actions_of(read)] == ["Approve", "Deny"]
        assert actions_of(read)[0]["id"] == "approve"
    stored = mmi.control.posts()[0]
    expected = {"url": "http://127.0.0.1:9/x", "context": {"action": "approve"}}
    assert actions_of(stored.post)[0]["integration"] == expected
    assert [h["props"]["attachments"][0]["actions"][0]["integration"]["url"] for h in stored.history] == [
        "http://127.0.0.1:9/hook", "http://127.0.0.1:9/hook", "http://127.0.0.1:9/x"]


async def test_missing_action_ids_are_generated_and_kept(apii: Client, mmi: FakeMattermost) -> None:
    created = await post_buttons(apii, mmi, "http://127.0.0.1:9/hook")
    generated = actions_of(created)[1]["id"]
    assert len(generated) == 26 and generated.isalnum()
    again = (await apii.call("PUT", f"/api/v4/posts/{created['id']}/patch", BOT, {"message": "x"})).body
    assert actions_of(again)[1]["id"] == generated  # a patch without props keeps the stored ids


async def test_attachments_take_the_server_struct_shape(apii: Client, mmi: FakeMattermost) -> None:
    channel = mmi.control.channel_id("myteam", "town-square")
    props = {
        "attachments": [
            {"Text": "case-insensitive key", "unknown": 1, "fields": [{"title": "t", "value": 5, "short": "true"}],
             "actions": [{"name": "Go", "type": "button", "integration": {"url": "http://h/x"}, "junk": 1}]},
            {"text": 5},  # the wrong type: Go cannot decode it, the attachment is dropped
            None,  # a null attachment decodes to an empty one
        ],
        "b": {"z": 1.0, "a": 2},
    }
    post = (await apii.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "m", "props": props})).body
    first, empty = post["props"]["attachments"]
    assert list(first) == ["id", "fallback", "color", "pretext", "author_name", "author_link", "author_icon", "title",
                           "title_link", "text", "fields", "image_url", "thumb_url", "footer", "footer_icon", "ts",
                           "actions"]
    assert first["text"] == "case-insensitive key"
    assert first["fields"] == [{"title": "t", "value": 5, "short": True}]
    assert first["actions"] == [{"id": first["actions"][0]["id"], "type": "button", "name": "Go"}]
    assert empty["fields"] is None and "actions" not in empty
    assert post["props"]["b"] == {"a": 2, "z": 1}  # a Go map: numbers are float64, keys sorted
    assert list(post["props"]) == sorted(post["props"])


# ---------------------------------------------------------------------------------------------- the click


async def test_click_calls_the_integration_with_mattermosts_body(
    apii: Client, mmi: FakeMattermost, hook: Hook
) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    reply = await mmi.control.click("reviewer", post["id"], "approve")
    assert reply.status == 200
    assert list(reply.body) == ["status", "trigger_id"] and reply.body["status"] == "OK"
    [raw] = hook.raw
    call = json.loads(raw)
    assert list(call) == REQUEST_KEYS
    assert b'": ' not in raw and b", " not in raw  # json.Marshal: compact
    reviewer = mmi.control.user_id("reviewer")
    team = (await apii.call("GET", "/api/v4/teams/name/myteam", BOT)).body
    assert {k: v for k, v in call.items() if k != "trigger_id"} == {
        "user_id": reviewer,
        "user_name": "reviewer",
        "channel_id": post["channel_id"],
        "channel_name": "town-square",
        "team_id": team["id"],
        "team_domain": "myteam",
        "post_id": post["id"],
        "type": "button",
        "data_source": "",
        "context": {"action": "approve", "request_id": "r1"},
    }
    headers = hook.headers[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "Mattermost-Bot/1.1"
    assert "Authorization" not in headers
    # The integration's own check: the trigger id verifies with the key the server publishes, names the
    # clicker, and its first field is what the client got back.
    config = (await apii.call("GET", "/api/v4/config/client?format=old")).body
    client_part, user_id, minted_at = verify_trigger(config["AsymmetricSigningPublicKey"], call["trigger_id"])
    assert (client_part, user_id) == (reply.body["trigger_id"], reviewer)
    assert minted_at == int(mmi.clock.now() * 1000)
    [record] = mmi.control.integration_calls(kind="post_action")
    assert record.body == raw.decode() and record.status == 200 and record.user_id == reviewer
    assert record.outcome == {"status": 200, "updated": False, "ephemeral_text": ""}


async def test_a_forged_trigger_does_not_verify(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    await mmi.control.click("reviewer", post["id"], "approve")
    config = (await apii.call("GET", "/api/v4/config/client?format=old")).body
    client_part, _, stamp, signature = base64.b64decode(hook.calls[0]["trigger_id"]).decode().split(":")
    victim = mmi.control.user_id("reviewer2")
    forged = base64.b64encode(f"{client_part}:{victim}:{stamp}:{signature}".encode()).decode()
    with pytest.raises(InvalidSignature):
        verify_trigger(config["AsymmetricSigningPublicKey"], forged)


async def test_update_and_ephemeral_text_are_applied(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.reply_with({"update": {"message": "Approved by reviewer", "props": {"attachments": []}},
                     "ephemeral_text": "See <https://example.com/r1|the request>."})
    reply = await mmi.control.click("reviewer", post["id"], "approve")
    assert reply.status == 200
    updated = (await apii.call("GET", f"/api/v4/posts/{post['id']}", BOT)).body
    assert updated["message"] == "Approved by reviewer"
    assert updated["props"] == {"attachments": []}  # replaced wholesale; from_bot is not a retained prop
    assert updated["edit_at"] > 0
    assert [h["kind"] for h in mmi.control.posts()[0].history] == ["create", "action"]
    [ephemeral] = mmi.control.ephemerals("reviewer")
    assert ephemeral.message == "See [the request](https://example.com/r1)."
    assert ephemeral.type == "system_ephemeral"
    assert (ephemeral.channel_id, ephemeral.root_id, ephemeral.post_id) == (post["channel_id"], post["id"], post["id"])
    assert mmi.control.ephemerals("reviewer2") == []
    over_http = (await apii.call("GET", "/fake/ephemerals?username=reviewer", ADMIN)).body
    assert [e["message"] for e in over_http] == [ephemeral.message]
    assert (await apii.call("GET", "/fake/ephemerals?username=reviewer2", ADMIN)).body == []


async def test_skip_slack_parsing_keeps_the_text(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.reply_with({"ephemeral_text": "<a|b>", "skip_slack_parsing": True})
    await mmi.control.click("reviewer", post["id"], "approve")
    assert [e.message for e in mmi.control.ephemerals()] == ["<a|b>"]


async def test_update_with_null_props_keeps_the_props(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.reply_with({"update": {"message": "new text", "props": None}})
    assert (await mmi.control.click("reviewer", post["id"], "approve")).status == 200
    updated = (await apii.call("GET", f"/api/v4/posts/{post['id']}", BOT)).body
    assert updated["message"] == "new text"
    assert actions_of(updated)[0]["id"] == "approve"
    assert actions_of(mmi.control.posts()[0].post)[0]["integration"]["url"] == hook.url


async def test_update_ignores_the_edit_time_limit(hook: Hook, http: Any) -> None:
    clock = ManualClock()
    config = ServerConfig(post_edit_time_limit=1, integrations=IntegrationSettings("127.0.0.1"))
    async with FakeMattermost(clock=clock, config=config) as mm:
        api = Client(http, mm.url)
        post = await post_buttons(api, mm, hook.url)
        clock.advance(5)
        hook.reply_with({"update": {"message": "late"}})
        assert (await mm.control.click("reviewer", post["id"], "approve")).status == 200
        assert mm.control.posts()[0].message == "late"


async def test_empty_or_null_answer_changes_nothing(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    for answer in (b"", b"null", b"{}"):
        hook.answer = answer
        assert (await mmi.control.click("reviewer", post["id"], "approve")).status == 200
    assert mmi.control.posts()[0].edits == 0
    assert mmi.control.ephemerals() == []


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (500, b"{}"),
        (201, b"{}"),
        (200, b"not json"),
        (200, b"[]"),
        (200, b'{"update": "text"}'),
        (200, b'{"ephemeral_text": 5}'),
        (200, b'{"update": {"message": 5}}'),
    ],
)
async def test_a_failing_integration_is_a_400_for_the_clicker(
    apii: Client, mmi: FakeMattermost, hook: Hook, status: int, answer: bytes
) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.status, hook.answer = status, answer
    reply = await mmi.control.click("reviewer", post["id"], "approve")
    assert reply.status == 400
    assert reply.body["id"] == "api.post.do_action.action_integration.app_error"
    assert reply.body["message"] == "Action integration error."
    [record] = mmi.control.integration_calls()
    assert record.status == status
    assert record.outcome == {"status": 400, "id": "api.post.do_action.action_integration.app_error"}
    assert mmi.control.posts()[0].edits == 0


async def test_unreachable_integration_is_a_400(apii: Client, mmi: FakeMattermost) -> None:
    post = await post_buttons(apii, mmi, "http://127.0.0.1:1/hook")
    reply = await mmi.control.click("reviewer", post["id"], "approve")
    assert reply.status == 400
    [record] = mmi.control.integration_calls()
    assert record.status is None and record.error.startswith("connection: ")


async def test_a_slow_integration_times_out_with_a_400(hook: Hook, http: Any) -> None:
    settings = IntegrationSettings("127.0.0.1", outgoing_integration_requests_timeout=1)
    async with FakeMattermost(clock=ManualClock(), config=ServerConfig(integrations=settings)) as mm:
        api = Client(http, mm.url)
        post = await post_buttons(api, mm, hook.url)
        hook.delay = 3
        reply = await mm.control.click("reviewer", post["id"], "approve")
        assert reply.status == 400
        assert reply.body["id"] == "api.post.do_action.action_integration.app_error"
        [record] = mm.control.integration_calls()
        assert record.error == "timeout" and record.status is None


async def test_select_sends_the_selected_option(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    channel = mmi.control.channel_id("myteam", "town-square")
    props = {"attachments": [{"actions": [
        {"id": "pick", "type": "select", "name": "Pick", "options": [{"text": "A", "value": "a"}],
         "integration": {"url": hook.url, "context": {"k": "v"}}},
        {"id": "who", "type": "select", "name": "Who", "data_source": "users",
         "integration": {"url": hook.url}},
    ]}]}
    post = (await apii.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "m", "props": props})).body
    await mmi.control.click("reviewer", post["id"], "pick", selected_option="a")
    await mmi.control.click("reviewer", post["id"], "who", selected_option="u1")
    await mmi.control.click("reviewer", post["id"], "who")
    first, second, third = hook.calls
    assert (first["type"], first["data_source"], first["context"]) == ("select", "", {"k": "v", "selected_option": "a"})
    assert (second["data_source"], second["context"]) == ("users", {"selected_option": "u1"})
    assert third["data_source"] == "" and "context" not in third  # an empty context is omitted


async def test_a_bad_body_is_ignored(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    token = mmi.control.user_token("reviewer")
    for raw in (b"[1]", b"not json", b'{"selected_option": 5}'):
        reply = await apii.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", token, raw=raw)
        assert reply.status == 200, raw
    assert len(hook.calls) == 3


# ---------------------------------------------------------------------------------------------- refusals


async def test_unknown_post_action_and_bad_ids(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    token = mmi.control.user_token("reviewer")
    unknown_action = await apii.call("POST", f"/api/v4/posts/{post['id']}/actions/nosuchaction", token)
    assert (unknown_action.status, unknown_action.body["id"]) == (404, "api.post.do_action.action_id.app_error")
    # An unknown post has no channel to check: the system-wide permission decides (403) except for an admin,
    # who gets the 404 of the post lookup.
    unknown_post = await apii.call("POST", "/api/v4/posts/" + "p" * 26 + "/actions/approve", token)
    assert (unknown_post.status, unknown_post.body["id"]) == (403, "api.context.permissions.app_error")
    as_admin = await apii.call("POST", "/api/v4/posts/" + "p" * 26 + "/actions/approve", ADMIN)
    assert (as_admin.status, as_admin.body["id"]) == (404, "app.post.get.app_error")
    short = await apii.call("POST", "/api/v4/posts/abc/actions/approve", token)
    assert (short.status, short.body["id"]) == (400, "api.context.invalid_url_param.app_error")
    assert hook.calls == []


async def test_an_action_without_integration_is_404(apii: Client, mmi: FakeMattermost) -> None:
    channel = mmi.control.channel_id("myteam", "town-square")
    props = {"attachments": [{"actions": [{"id": "bare", "type": "button", "name": "Bare"}]}]}
    post = (await apii.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "m", "props": props})).body
    reply = await mmi.control.click("reviewer", post["id"], "bare")
    assert reply.status == 404


async def test_who_may_click(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    secret = mmi.control.channel_id("myteam", "secret-reviews")
    props = buttons(hook.url)
    private = (await apii.call("POST", "/api/v4/posts", ADMIN, {"channel_id": secret, "message": "p",
                                                                "props": props})).body
    # Not a member of the private channel: 403, and the integration never hears of it.
    denied = await mmi.control.click("requester", private["id"], "approve")
    assert (denied.status, denied.body["id"]) == (403, "api.context.permissions.app_error")
    assert hook.calls == []
    # A public channel is readable by every team member, members of the channel or not.
    general = await post_buttons(apii, mmi, hook.url, channel="general")
    assert (await mmi.control.click("requester", general["id"], "approve")).status == 200
    # A bot's session may click too; the integration sees the bot as the user.
    assert (await apii.call("POST", f"/api/v4/posts/{general['id']}/actions/approve", BOT)).status == 200
    assert hook.calls[-1]["user_name"] == "teleport"
    # No session at all: 401 before anything else.
    anonymous = await apii.call("POST", f"/api/v4/posts/{general['id']}/actions/approve")
    assert anonymous.status == 401


async def test_a_deactivated_user_cannot_click(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    token = mmi.control.user_token("reviewer")
    mmi.control.set_active("reviewer", False)
    reply = await apii.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", token)
    assert (reply.status, reply.body["id"]) == (401, "api.context.session_expired.app_error")
    mmi.control.set_active("reviewer", True)
    assert (await apii.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", token)).status == 200


async def test_cookies(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    bad = await mmi.control.click("reviewer", post["id"], "approve", cookie="bm90IGEgY29va2ll")
    assert (bad.status, bad.body["id"]) == (400, "api.post.do_action.action_integration.app_error")
    # A valid cookie for a stored post is checked, then the stored action is used.
    cookie = mmi.control.action_cookie(post["id"], "approve")
    assert (await mmi.control.click("reviewer", post["id"], "approve", cookie=cookie)).status == 200
    assert hook.calls[-1]["context"] == {"action": "approve", "request_id": "r1"}
    # A cookie is only good for the post it was made for (MM-69065): not for a post the server does not store.
    other = await mmi.control.click("reviewer", "q" * 26, "approve", cookie=cookie)
    assert (other.status, other.body["id"]) == (400, "api.post.do_action.action_integration.app_error")
    # The cookie's channel must be readable.
    secret = mmi.control.channel_id("myteam", "secret-reviews")
    private = (await apii.call("POST", "/api/v4/posts", ADMIN, {"channel_id": secret, "message": "p",
                                                                "props": buttons(hook.url)})).body
    private_cookie = mmi.control.action_cookie(private["id"], "approve")
    denied = await mmi.control.click("requester", private["id"], "approve", cookie=private_cookie)
    assert denied.status == 403
    assert len(hook.calls) == 1


async def test_clicks_run_concurrently(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    hook.delay = 0.2
    replies = await asyncio.gather(*(mmi.control.click(u, post["id"], "approve") for u in ("reviewer", "reviewer2")))
    assert [r.status for r in replies] == [200, 200]
    assert sorted(c["user_name"] for c in hook.calls) == ["reviewer", "reviewer2"]
    assert len({c["trigger_id"] for c in hook.calls}) == 2


async def test_edit_at_follows_attachment_changes(apii: Client, mmi: FakeMattermost) -> None:
    created = await post_buttons(apii, mmi, "http://127.0.0.1:9/hook")
    props = mmi.control.posts()[0].post["props"]
    props["attachments"][0]["actions"][0]["style"] = "good"  # style, tooltip, disabled are not compared
    same = (await apii.call("PUT", f"/api/v4/posts/{created['id']}/patch", BOT, {"props": props})).body
    assert same["edit_at"] == 0
    props["attachments"][0]["actions"][0]["name"] = "Approve now"
    renamed = (await apii.call("PUT", f"/api/v4/posts/{created['id']}/patch", BOT, {"props": props})).body
    assert renamed["edit_at"] > 0
