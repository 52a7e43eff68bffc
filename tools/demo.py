"""`make demo`: the whole product on one machine, as separate processes, in well under a minute.

Starts the fake Teleport (Enterprise edition), the tbot emulator renewing the plugin's identity, the fake
Mattermost with its default seed, and the sidecar. Then `myuser` asks for the `editor` role with a reason and
a suggested reviewer; two reviewers approve; and after each step the Mattermost posts are printed the way a
person would read them. That is the classic style, the Go plugin's texts. Then the sidecar is restarted with
`message_style = "rich"`, `[notify] requester = true` and a reminder after 2 s, and a second request goes
the same way: the message attachments (printed as text), the reminder in each thread, and the requester's
direct messages. Last, the sidecar restarts with `[review]` on and two reviewers approve a third request by
clicking Approve in Mattermost (through the fake's real click route, which calls the sidecar back); Teleport
records each review as the clicker's own. Everything is stopped at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fakes.stack import BOT_TOKEN, Stack, StackOptions, eventually, free_loopback_port, write_review_keys

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


def card(attachment: dict[str, Any]) -> str:
    """A message attachment as text: a bar in its colour's place, the title, each field, the footer."""
    lines = []
    if attachment.get("title"):
        link = attachment.get("title_link")
        lines.append(f"▌ {attachment['title']}" + (f"  <{link}>" if link else ""))
    if attachment.get("text"):
        lines += ["▌ " + line for line in attachment["text"].splitlines()]
    for item in attachment.get("fields") or []:
        value = item["value"].splitlines() or [""]
        lines.append(f"▌ {item['title']}: {value[0]}" if item["title"] else f"▌ {value[0]}")
        lines += ["▌     " + line for line in value[1:]]
    if attachment.get("footer"):
        lines.append(f"▌ {attachment['footer']}")
    if attachment.get("actions"):
        lines.append("▌ " + "  ".join(f"[ {action['name']} ]" for action in attachment["actions"]))
    return "\n".join(lines)


def body(post: dict[str, Any]) -> str:
    """A post's message and its attachments, as a person reads them."""
    parts = [post["message"].strip("\n")]
    parts += [card(a) for a in (post.get("props") or {}).get("attachments") or []]
    return "\n".join(part for part in parts if part)


def show(posts: list[dict[str, Any]], names: dict[str, str]) -> None:
    roots = sorted((p for p in posts if not p["root_id"]), key=lambda p: names.get(p["channel_id"], ""))
    for root in roots:
        edited = " (edited)" if root["edit_at"] else ""
        print(f"\n┌─ {names.get(root['channel_id'], root['channel_id'])} — @teleport{edited}")
        print(indent(body(root), "│ "))
        for reply in sorted((p for p in posts if p["root_id"] == root["id"]), key=lambda p: p["create_at"]):
            print("│\n│   ↳ reply from @teleport")
            print(indent(body(reply), "│     "))
        print("└" + "─" * (WIDTH - 1))


def marker(post: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's marker of a post (request, kind), as the post was created (an edit replaces the props)."""
    created = next((h for h in post.get("history", ()) if h["kind"] == "create"), post)
    found: dict[str, Any] = (created.get("props") or {}).get("teleport_mattermost") or {}
    return found


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
        await rich_part(stack, names)
        await review_part(stack, names)
    banner(f"Done in {time.monotonic() - started:.1f} s; every process has been stopped")


RICH_SETTINGS = '[notify]\nrequester = true\n\n[reminders]\nafter = "2s"\nmax = 1\n'


async def rich_part(stack: Stack, names: dict[str, str]) -> None:
    """The same walk in the rich style, with the requester's messages and a reminder."""
    banner('4. The sidecar restarts with message_style = "rich", [notify] requester and [reminders] after = "2s"')
    await stack.stop_sidecar()
    path = stack.write_config(extra="\n" + RICH_SETTINGS)
    path.write_text(path.read_text().replace("[mattermost]\n", '[mattermost]\nmessage_style = "rich"\n', 1))
    await stack.start_sidecar()
    print(RICH_SETTINGS.strip())
    rid = await stack.create_request(
        "myuser", reason="Rotate the TLS certificates on the edge proxies", reviewers=["reviewer@example.com"]
    )
    print(f"\nmyuser requests the editor role again: request {rid}")

    def mine(posts: list[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
        return [p for p in posts if marker(p).get("request_id") == rid and kind in (None, marker(p).get("kind"))]

    def reminded(posts: list[dict[str, Any]]) -> bool:
        return len(mine(posts, "reminder")) >= 2

    banner("5. Nobody reviews it for 2 s: a reminder goes into every thread")
    show(mine(await wait_for(stack, "the reminders", reminded)), names)

    banner("6. reviewer@example.com and reviewer2@example.com approve")
    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "Change ticket CHG-88 is approved")
    await wait_for(stack, "the first review", lambda p: any("**approved** your" in x["message"] for x in mine(p, "dm")))
    await stack.tctl("reviewer2@example.com", "review", rid, "--approve")

    def approved(posts: list[dict[str, Any]]) -> bool:
        told = any("was **approved**" in p["message"] for p in mine(posts, "dm"))
        return told and all(p["edit_at"] for p in mine(posts, "root"))

    show(mine(await wait_for(stack, "the approval", approved)), names)


def review_settings(port: int, keys: Path) -> str:
    """The `[review]` table of the demo's last part: callbacks on loopback, a reviewer's click submits at once."""
    return (
        f'[review]\nenabled = true\nlisten_addr = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f'hmac_keys_file = "{keys}"\nreason = "off"\n'
    )


async def review_part(stack: Stack, names: dict[str, str]) -> None:
    """In-chat review: Approve buttons on the post, two clicks, two reviews recorded as the reviewers."""
    banner("7. The sidecar restarts with [review]: reviewers approve by clicking Approve in Mattermost")
    await stack.stop_sidecar()
    port = free_loopback_port()
    settings = review_settings(port, write_review_keys(stack.workdir / "review-keys"))
    # Mattermost calls integrations on loopback only when allowed (ServiceSettings.AllowedUntrustedInternalConnections).
    await stack.mm_admin("PUT", "/fake/settings", {"allowed_untrusted_internal_connections": "127.0.0.1"})
    for teleport_user, username in (("reviewer@example.com", "reviewer"), ("reviewer2@example.com", "reviewer2")):
        await stack.bind_reviewer(teleport_user, username)  # the trait mattermost_user_id = their Mattermost id
    path = stack.write_config(extra="\n" + settings)
    path.write_text(path.read_text().replace("[mattermost]\n", '[mattermost]\nmessage_style = "rich"\n', 1))
    await stack.start_sidecar()
    print(settings.strip())
    print("Teleport users reviewer@example.com and reviewer2@example.com hold their Mattermost ids in a trait.")
    rid = await stack.create_request("myuser", reason="Restart the payment workers", reviewers=["reviewer@example.com"])
    print(f"\nmyuser requests the editor role: request {rid}")

    def roots(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for p in posts if marker(p).get("request_id") == rid and marker(p).get("kind") == "root"]

    await wait_for(stack, "the buttons", lambda p: len(roots(p)) >= 2)
    town = next(p for p in roots(await stack.posts()) if names.get(p["channel_id"]) == "~town-square")
    show([town], names)  # the reviewer's DM has the same buttons
    for username in ("reviewer", "reviewer2"):
        print(f"\n@{username} clicks Approve on the post in ~town-square")
        click = {"username": username, "post_id": town["id"], "action_id": "approve"}
        await stack.mm_admin("POST", "/fake/click", click)  # the real click route, as that user
        [*_, last] = await stack.mm_admin("GET", f"/fake/ephemerals?username={username}")
        print(f"  (only @{username} sees) {last['message']}")

    def approved(posts: list[dict[str, Any]]) -> bool:
        replied = all(len([q for q in posts if q["root_id"] == p["id"]]) >= 2 for p in roots(posts))
        return replied and all("Access request approved" in str(p["props"]) for p in roots(posts))

    posts = await wait_for(stack, "the approval", approved)
    show([p for p in posts if town["id"] in (p["id"], p["root_id"])], names)
    print("\nTeleport's audit log (access_request.review):")
    for entry in await stack.auth_admin("GET", f"/audit/reviews?request={rid}"):
        print(f"  reviewer {entry['reviewer']:22} submitted_by {entry['submitted_by']:15} state {entry['state']}")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="teleport-mattermost-demo-"))
    try:
        asyncio.run(demo(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
