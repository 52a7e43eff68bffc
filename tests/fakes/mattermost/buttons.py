"""A post with buttons, as the bot makes it, for the interactive-message tests."""

from __future__ import annotations

from typing import Any

from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"


def buttons(url: str, **context: Any) -> dict[str, Any]:
    """Props with an Approve button (id given) and a Deny button (id left to the server)."""
    return {
        "attachments": [
            {
                "text": "Approve?",
                "actions": [
                    {"id": "approve", "type": "button", "name": "Approve", "style": "primary",
                     "integration": {"url": url, "context": {"action": "approve", **context}}},
                    {"type": "button", "name": "Deny", "style": "danger",
                     "integration": {"url": url, "context": {"action": "deny"}}},
                ],
            }
        ]
    }


async def post_buttons(api: Client, mm: FakeMattermost, url: str, channel: str = "town-square") -> dict[str, Any]:
    """A post with buttons, made by the bot."""
    channel_id = mm.control.channel_id("myteam", channel)
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel_id, "message": "req",
                                                          "props": buttons(url, request_id="r1")})
    assert reply.status == 201, reply.raw
    body: dict[str, Any] = reply.body
    return body


def actions_of(post: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions of the first attachment."""
    result: list[dict[str, Any]] = post["props"]["attachments"][0]["actions"]
    return result
