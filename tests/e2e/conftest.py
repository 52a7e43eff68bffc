"""End-to-end fixtures: every component runs as its own process, driven only through public interfaces."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from fakes.stack import BOT_TOKEN, Stack, StackOptions, eventually

MODE_ENV = "TM_E2E_MODE"
SEED = Path(__file__).with_name("teleport_seed.toml")
FIELD = re.compile(r"(?im)^\*\*([a-zA-Z ]+)\*\*:\ +(.+)$")

MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(tmp_path: Path) -> AsyncIterator[MakeStack]:
    """Factory for stacks; each one is stopped at the end of the test, whatever happens.

    $TM_E2E_MODE selects how the components run: `processes` (default, no Docker needed), `containers` (each
    in its own container of the image $TM_IMAGE, see fakes/container_stack.py) or `compose` (inside
    docker-compose.test.yml's test runner, against its fixed deployment; other configurations are skipped).
    """
    mode = os.environ.get(MODE_ENV, "processes")
    if mode not in ("processes", "containers", "compose"):
        raise pytest.UsageError(f"{MODE_ENV} must be 'processes', 'containers' or 'compose', got {mode!r}")
    stacks: list[Any] = []

    async def factory(*, sidecar: bool = True, **options: Any) -> Stack:
        options.setdefault("teleport_seed", SEED)
        workdir = tmp_path / f"stack{len(stacks)}"
        stack: Any
        if mode == "processes":
            stack = Stack(workdir, StackOptions(**options))
        else:
            # Only these modes need them (ContainerStack imports docker when it starts).
            from fakes.compose_stack import ComposeStack
            from fakes.container_stack import ContainerStack

            if mode == "compose":
                reason = ComposeStack.unsupported(StackOptions(**options), sidecar=sidecar)
                if reason:
                    pytest.skip(reason)
                stack = ComposeStack(workdir, StackOptions(**options))
            else:
                stack = ContainerStack(workdir, StackOptions(**options))
        stacks.append(stack)
        await stack.start(sidecar=sidecar)
        return cast(Stack, stack)  # the container stacks offer the same methods and attributes

    try:
        yield factory
    finally:
        for stack in stacks:
            await stack.stop()


def fields(message: str) -> dict[str, str]:
    """The `**Field**: value` lines of a root post (the Go suite's parsePostField)."""
    return {m.group(1): m.group(2) for m in FIELD.finditer(message)}


def roots(posts: list[dict[str, Any]], request_id: str | None = None) -> list[dict[str, Any]]:
    """Root posts, optionally only those about one request."""
    return [
        p for p in posts
        if not p["root_id"] and (request_id is None or f"**Request ID**: {request_id}\n" in p["message"])
    ]


def replies(posts: list[dict[str, Any]], root_id: str) -> list[dict[str, Any]]:
    """Thread replies under a root post, oldest first."""
    return sorted((p for p in posts if p["root_id"] == root_id), key=lambda p: (p["create_at"], p["id"]))


def edits(post: dict[str, Any]) -> list[str]:
    """The texts of every update of a post after its creation, in order."""
    return [h["message"] for h in post["history"] if h["kind"] != "create"]


Posts = list[dict[str, Any]]


async def wait_posts(stack: Stack, check: Callable[[Posts], bool], timeout: float = 20) -> Posts:
    """Poll the fake Mattermost's post log until `check` accepts it."""

    async def probe() -> Posts | None:
        posts = await stack.posts()
        return posts if check(posts) else None

    return await eventually(probe, timeout)


async def dm_channel(stack: Stack, email: str) -> str:
    """The id of the bot's DM channel with the user of this email (DM creation is idempotent)."""
    user = await stack.mm_admin("GET", f"/api/v4/users/email/{email}")
    seed = await stack.mm_admin("GET", "/fake/seed")
    bot_id = seed["users"]["teleport"]
    channel = await stack.mm_as(BOT_TOKEN, "POST", "/api/v4/channels/direct", [bot_id, user["id"]])
    return str(channel["id"])


async def channel_id(stack: Stack, team_channel: str) -> str:
    """Id of a seeded team channel ("team/channel")."""
    seed = await stack.mm_admin("GET", "/fake/seed")
    return str(seed["channels"][team_channel])


def with_settings(config: str, *, mattermost: str = "", extra: str = "") -> str:
    """A sidecar config with keys added to its `[mattermost]` table and whole tables appended at the end."""
    if mattermost:
        config = config.replace("[mattermost]\n", "[mattermost]\n" + mattermost.rstrip("\n") + "\n", 1)
    return config + ("\n" + extra if extra else "")


async def start_sidecar_with(stack: Stack, *, mattermost: str = "", extra: str = "") -> None:
    """Write the stack's sidecar config with these additions (see `with_settings`) and start the sidecar."""
    path = stack.write_config()
    path.write_text(with_settings(path.read_text(), mattermost=mattermost, extra=extra))
    await stack.start_sidecar()


def marked(posts: Posts, request_id: str, kind: str | None = None) -> Posts:
    """Posts the sidecar made for a request (its marker in `props`), optionally of one kind (root, dm, ...)."""
    found = []
    for post in posts:
        # An edit replaces the props (as the Go plugin's does): the marker is in the post as it was created.
        created = next((h for h in post.get("history", ()) if h["kind"] == "create"), post)
        marker = (created.get("props") or {}).get("teleport_mattermost") or {}
        if marker.get("request_id") == request_id and (kind is None or marker.get("kind") == kind):
            found.append((post, marker.get("review_index", -1)))
    # Posts made one after another can share a millisecond: their number (a DM's place among the requester's
    # messages, a reminder's round) orders them then, where the random post id would not.
    return [post for post, _ in sorted(found, key=lambda item: (item[0]["create_at"], item[1], item[0]["id"]))]
