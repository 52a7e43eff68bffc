"""`make demo`: the whole product on one machine, as separate processes, in well under a minute.

Starts the fake Teleport (Enterprise edition), the tbot emulator renewing the plugin's identity, the fake
Mattermost with its default seed, and the sidecar. Then `myuser` asks for the `editor` role with a reason and
a suggested reviewer; two reviewers approve; and after each step the Mattermost posts are printed the way a
person would read them. Everything is stopped at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fakes.stack import BOT_TOKEN, Stack, StackOptions, eventually

SEED = Path(__file__).with_name("demo_seed.toml")
WIDTH = 78


def banner(text: str) -> None:
    print("\n" + "=" * WIDTH + f"\n{text}\n" + "=" * WIDTH, flush=True)


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.splitlines())


async def channel_names(stack: Stack) -> dict[str, str]:
    """Readable names: `~town-square` for team channels, `DM @user` for the bot's direct messages."""
    seed = await stack.mm_admin("GET", "/fake/seed")
    names = {cid: "~" + key.split("/", 1)[1] for key, cid in seed["channels"].items()}
    bot = seed["users"]["teleport"]
    for username, user_id in seed["users"].items():
        if user_id != bot:
            channel = await stack.mm_as(BOT_TOKEN, "POST", "/api/v4/channels/direct", [bot, user_id])
            names[channel["id"]] = f"DM with @{username}"
    return names


def show(posts: list[dict[str, Any]], names: dict[str, str]) -> None:
    roots = sorted((p for p in posts if not p["root_id"]), key=lambda p: names.get(p["channel_id"], ""))
    for root in roots:
        edited = " (edited)" if root["edit_at"] else ""
        print(f"\n┌─ {names.get(root['channel_id'], root['channel_id'])} — @teleport{edited}")
        print(indent(root["message"].strip("\n"), "│ "))
        for reply in sorted((p for p in posts if p["root_id"] == root["id"]), key=lambda p: p["create_at"]):
            print("│\n│   ↳ reply from @teleport")
            print(indent(reply["message"].strip("\n"), "│     "))
        print("└" + "─" * (WIDTH - 1))


async def wait_for(stack: Stack, what: str, check: Any) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        posts = await stack.posts()
        return posts if check(posts) else None

    try:
        return await eventually(probe, timeout=30)
    except TimeoutError:
        raise SystemExit(f"demo: timed out waiting for {what}; logs are in {stack.workdir / 'logs'}") from None


async def demo(workdir: Path) -> None:
    started = time.monotonic()
    options = StackOptions(
        edition="enterprise",
        teleport_seed=SEED,
        tbot_renewal="20s",
        role_to_recipients={"editor": ["myteam/town-square"]},
        sidecar_debug=False,
    )
    banner("Starting fake Teleport (Enterprise), tbot, fake Mattermost and the sidecar")
    async with Stack(workdir, options) as stack:
        print(f"Teleport Auth   {stack.auth['auth_addr']}  (cluster {stack.auth['cluster_name']})")
        print(f"Teleport Proxy  {stack.auth['proxy_addr']}")
        print(f"Mattermost      {stack.mm['url']}")
        print(f"tbot identity   {stack.plugin_identity}")
        print(f"sidecar config  {stack.config_path}")
        names = await channel_names(stack)

        banner("1. myuser requests the editor role, suggesting reviewer@example.com")
        rid = await stack.create_request(
            "myuser", reason="Investigating the 502s on checkout (INC-4711)", reviewers=["reviewer@example.com"]
        )
        print(f"request {rid} is PENDING")
        show(await wait_for(stack, "the announcement", lambda p: len([x for x in p if not x["root_id"]]) >= 2), names)

        banner("2. reviewer@example.com approves (one of the two approvals needed)")
        await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "Looks fine, go ahead")
        show(await wait_for(stack, "the first review", lambda p: len([x for x in p if x["root_id"]]) >= 2), names)

        banner("3. reviewer2@example.com approves: the request is APPROVED")
        await stack.tctl("reviewer2@example.com", "review", rid, "--approve", "--reason", "Approved for the incident")

        def approved(posts: list[dict[str, Any]]) -> bool:
            return all("APPROVED" in p["message"] for p in posts if not p["root_id"])

        show(await wait_for(stack, "the approval", approved), names)
        data = await stack.plugin_data(rid)
        banner("State kept in Teleport plugin data (plugin `mattermost`)")
        for key in ("user", "roles", "reviews_count", "resolution", "resolve_reason", "messages"):
            print(f"  {key:15} {data.get(key, '')}")
    banner(f"Done in {time.monotonic() - started:.1f} s; every process has been stopped")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="teleport-mattermost-demo-"))
    try:
        asyncio.run(demo(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
