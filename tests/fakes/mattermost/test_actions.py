"""Interactive buttons: `POST /posts/{id}/actions/{action_id}` calls the integration and applies its answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
ADMIN = "admin-token"


@dataclass
class Integration:
    """A loopback integration that records calls and answers with `answer` / `status`."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answer: bytes = b""
    status: int = 200


@pytest.fixture
async def integration() -> AsyncIterator[Integration]:
    hook = Integration()

    async def handle(request: web.Request) -> web.Response:
        hook.calls.append(await request.json())
        hook.headers.append(dict(request.headers))
        return web.Response(status=hook.status, body=hook.answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        hook.url = f"http://127.0.0.1:{port}/hook"
        yield hook
    finally:
        await runner.cleanup()


async def _post_with_buttons(api: Client, mm: FakeMattermost, url: str) -> dict[str, Any]:
    channel = mm.control.channel_id("myteam", "town-square")
    props = {
        "attachments": [
            {
                "text": "Approve?",
                "actions": [
                    {"id": "approve", "type": "button", "name": "Approve",
                     "integration": {"url": url, "context": {"request_id": "r1", "action": "approve"}}},
                    {"type": "button", "name": "Deny", "integration": {"url": url, "context": {"action": "deny"}}},
                ],
            }
        ]
    }
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "req", "props": props})
    assert reply.status == 201
    body: dict[str, Any] = reply.body
    return body


async def test_integrations_are_stripped_and_ids_generated(
    api: Client, mm: FakeMattermost, integration: Integration
) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    actions = post["props"]["attachments"][0]["actions"]
    assert all("integration" not in a for a in actions)
    assert actions[0]["id"] == "approve"
    assert len(actions[1]["id"]) == 26
    stored = mm.control.posts()[0].post["props"]["attachments"][0]["actions"][0]
    assert stored["integration"]["url"] == integration.url


async def test_click_forwards_payload_and_applies_update(
    api: Client, mm: FakeMattermost, integration: Integration
) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    integration.answer = json.dumps(
        {"update": {"message": "Approved by reviewer", "props": {"attachments": []}}, "ephemeral_text": "Done."}
    ).encode()
    reviewer_token = (
        await api.call(
            "POST", f"/api/v4/users/{mm.control.user_id('reviewer')}/tokens", ADMIN, {"description": "click"}
        )
    ).body["token"]
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", reviewer_token, {})
    assert reply.status == 200
    assert reply.body["status"] == "OK"
    assert reply.body["trigger_id"]
    call = integration.calls[0]
    assert call["user_id"] == mm.control.user_id("reviewer")
    assert call["user_name"] == "reviewer"
    assert call["channel_id"] == post["channel_id"]
    assert call["channel_name"] == "town-square"
    assert call["team_domain"] == "myteam"
    assert call["post_id"] == post["id"]
    assert call["type"] == "button"
    assert call["context"] == {"request_id": "r1", "action": "approve"}
    assert call["trigger_id"] == reply.body["trigger_id"]
    assert integration.headers[0]["Content-Type"] == "application/json"
    updated = (await api.call("GET", f"/api/v4/posts/{post['id']}", BOT)).body
    assert updated["message"] == "Approved by reviewer"
    assert updated["props"] == {"attachments": []}
    assert updated["edit_at"] > 0
    [record] = mm.control.posts()
    assert [h["kind"] for h in record.history] == ["create", "action"]
    [ephemeral] = mm.control.ephemeral()
    assert ephemeral.message == "Done."
    assert ephemeral.user_id == mm.control.user_id("reviewer")
    over_http = (await api.call("GET", "/fake/ephemeral", ADMIN)).body
    assert [(e["message"], e["channel_id"]) for e in over_http] == [("Done.", post["channel_id"])]


async def test_update_with_null_props_keeps_props(api: Client, mm: FakeMattermost, integration: Integration) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    integration.answer = json.dumps({"update": {"message": "new text", "props": None}}).encode()
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", BOT)
    assert reply.status == 200
    updated = (await api.call("GET", f"/api/v4/posts/{post['id']}", BOT)).body
    assert updated["message"] == "new text"
    assert updated["props"]["attachments"][0]["actions"][0]["id"] == "approve"


async def test_empty_answer_changes_nothing(api: Client, mm: FakeMattermost, integration: Integration) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", BOT)
    assert reply.status == 200
    assert mm.control.posts()[0].edits == 0


async def test_integration_failure_is_400(api: Client, mm: FakeMattermost, integration: Integration) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    integration.status = 500
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", BOT)
    assert reply.status == 400
    assert reply.body["id"] == "api.post.do_action.action_integration.app_error"


async def test_unreachable_integration_is_400(api: Client, mm: FakeMattermost) -> None:
    post = await _post_with_buttons(api, mm, "http://127.0.0.1:1/hook")
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", BOT)
    assert reply.status == 400
    assert reply.body["id"] == "api.post.do_action.action_integration.app_error"


async def test_action_errors(api: Client, mm: FakeMattermost, integration: Integration) -> None:
    post = await _post_with_buttons(api, mm, integration.url)
    unknown_action = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/nosuchaction", BOT)
    assert unknown_action.status == 404
    assert unknown_action.body["id"] == "api.post.do_action.action_id.app_error"
    unknown_post = await api.call("POST", "/api/v4/posts/" + "p" * 26 + "/actions/approve", BOT)
    assert unknown_post.status == 404
    bad_body = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/approve", BOT, raw=b"[1]")
    assert bad_body.status == 400
    assert integration.calls == []


async def test_select_passes_selected_option(api: Client, mm: FakeMattermost, integration: Integration) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    props = {
        "attachments": [
            {"actions": [{"id": "pick", "type": "select", "name": "Pick",
                          "options": [{"text": "A", "value": "a"}],
                          "integration": {"url": integration.url, "context": {"k": "v"}}}]}
        ]
    }
    post = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "m", "props": props})).body
    reply = await api.call("POST", f"/api/v4/posts/{post['id']}/actions/pick", BOT, {"selected_option": "a"})
    assert reply.status == 200
    assert integration.calls[0]["context"] == {"k": "v", "selected_option": "a"}
    assert integration.calls[0]["type"] == "select"
