"""What the in-chat review tests share: a stack with `[review]` on, and the people's moves through the fakes'
public faces (click as a user, read that user's ephemeral messages, the fake Auth's audit log of reviews).

Clicks go through the fake Mattermost's real click route (`/fake/click` drives it as the user), which calls the
sidecar's listener as Mattermost does. Attacks that Mattermost itself would never send are made by calling the
listener directly (`stack.review_call`) with a body taken from a genuine click and changed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fakes.stack import ReviewOptions, Stack, eventually
from sidecar.review.settings import load_keys
from sidecar.review.signing import sign_action
from tests.e2e.conftest import SEED, MakeStack, Posts, marked, wait_posts

PLUGIN = "access-plugin-with-review"
BOT = "bot-mattermost"  # the same role as a Machine ID bot's user (tbot identities), exempt from admin-action MFA
TOWN = "myteam/town-square"
GENERAL = "myteam/general"

# The suite's seed, plus Teleport's preset role for plugins that review for people and a user holding it.
_REVIEW_ROLE = """
[roles.access-plugin-with-review]
rules = [
    { resources = ["access_request"], verbs = ["list", "read"] },
    { resources = ["access_plugin_data"], verbs = ["read", "update"] },
    { resources = ["role"], verbs = ["list", "read"] },
    { resources = ["user"], verbs = ["list", "read"] },
]
submit_for_users = ["*"]

[users.access-plugin-with-review]
roles = ["access-plugin-with-review"]

[users.bot-mattermost]
roles = ["access-plugin-with-review"]
bot = true
"""


def review_seed(tmp_path: Path) -> Path:
    """The e2e seed with the review plugin role and user."""
    path = tmp_path / "review_seed.toml"
    path.write_text(SEED.read_text() + _REVIEW_ROLE)
    return path


async def review_stack(
    make_stack: MakeStack, tmp_path: Path, *, style: str = "classic", edition: str = "oss", reason: str = "off",
    recipients: tuple[str, ...] = (TOWN,), machine_id: bool = False,
) -> Stack:
    """A stack whose sidecar reviews from chat, as the preset plugin role, posting every request to `recipients`.

    With `machine_id` the sidecar runs as the bot user, its identity kept renewed by the tbot emulator.
    """
    stack = await make_stack(
        sidecar=False, role_to_recipients={"*": list(recipients)}, teleport_seed=review_seed(tmp_path),
        edition=edition, review=ReviewOptions(reason=reason), plugin_user=BOT if machine_id else PLUGIN,
        tbot_renewal="20m" if machine_id else None,
    )
    if not machine_id:
        # A signed identity file, not a bot's: Teleport's admin-action MFA applies to it (container stacks would
        # otherwise use tbot's output).
        stack.plugin_identity = await stack.sign(PLUGIN)
    path = stack.write_config()
    text = path.read_text()
    if style != "classic":
        text = text.replace("[mattermost]\n", f'[mattermost]\nmessage_style = "{style}"\n', 1)
    path.write_text(text)
    await stack.start_sidecar()  # ready once the watch runs, which starts after the review listener
    return stack


# --- what the people see -----------------------------------------------------------------------------


def actions(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buttons of a post as stored (with their integration): name → action."""
    found = {}
    for attachment in (post.get("props") or {}).get("attachments") or []:
        for action in attachment.get("actions") or []:
            found[action["name"]] = action
    return found


def current(posts: Posts, post_id: str) -> dict[str, Any]:
    """A post as it is now."""
    return next(p for p in posts if p["id"] == post_id)


async def roots_with_buttons(stack: Stack, rid: str, count: int) -> list[dict[str, Any]]:
    """The request's `count` root posts, once they are all there (oldest first)."""
    posts = await wait_posts(stack, lambda p: len(marked(p, rid, "root")) >= count)
    return marked(posts, rid, "root")


def in_channel(posts: Posts, channel: str) -> dict[str, Any]:
    """The one post of `posts` in this channel."""
    [post] = [p for p in posts if p["channel_id"] == channel]
    return post


async def click(stack: Stack, who: str, post_id: str, button: str = "approve") -> dict[str, Any]:
    """Click a button as a Mattermost user, through the real route; the API's answer to the client."""
    reply = await stack.mm_admin("POST", "/fake/click", {"username": who, "post_id": post_id, "action_id": button})
    assert reply["status"] == 200, reply
    return dict(reply)


async def ephemerals(stack: Stack, who: str) -> list[str]:
    """The ephemeral texts Mattermost showed this user (oldest first)."""
    return [e["message"] for e in await stack.mm_admin("GET", f"/fake/ephemerals?username={who}")]


async def told(stack: Stack, who: str, before: int) -> str:
    """The one ephemeral text this user got after the first `before` ones."""

    async def probe() -> str | None:
        texts = await ephemerals(stack, who)
        return texts[before] if len(texts) > before else None

    return await eventually(probe, timeout=20)


async def audit(stack: Stack, rid: str) -> list[dict[str, Any]]:
    """The fake Auth's `access_request.review` events for the request."""
    return list(await stack.auth_admin("GET", f"/audit/reviews?request={rid}"))


async def last_click_body(stack: Stack, who: str) -> dict[str, Any]:
    """The body Mattermost sent the sidecar for this user's last click."""
    calls = await stack.mm_admin("GET", f"/fake/integration-calls?kind=post_action&username={who}")
    body: dict[str, Any] = json.loads(calls[-1]["body"])
    return body


async def trigger_for(stack: Stack, who: str) -> str:
    """A fresh trigger id signed by Mattermost for this user (as its click route would mint)."""
    return str((await stack.mm_admin("POST", "/fake/triggers", {"username": who}))["trigger_id"])


async def dialogs(stack: Stack, who: str) -> list[dict[str, Any]]:
    """The dialogs Mattermost opened for this user (oldest first)."""
    return list(await stack.mm_admin("GET", f"/fake/dialogs?username={who}"))


async def submit_dialog(stack: Stack, who: str, dialog: dict[str, Any], channel_id: str, **fields: Any) -> Any:
    """Submit an opened dialog as a user through the real route; the API's answer {"status", "body"}."""
    doc = {"username": who, "channel_id": channel_id, "dialog_id": dialog["id"], **fields}
    return await stack.mm_admin("POST", "/fake/dialogs/submit", doc)


def signed_context(stack: Stack, rid: str, channel_id: str, *, expires_in: float, post_id: str = "") -> dict[str, str]:
    """A context signed with the sidecar's own key (as a leaked key would allow): for contexts no post carries."""
    now = time.time()
    return sign_action(
        load_keys(stack.review_keys), request_id=rid, action="approve", channel_id=channel_id, post_id=post_id,
        expires_at=int(now + expires_in), now=int(now - 3600),
    )
