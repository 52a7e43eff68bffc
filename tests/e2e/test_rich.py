"""The rich style, the requester's direct messages, reminders and escalation, end to end (issue 11).

Fake Teleport, fake Mattermost and the sidecar run as processes; the sidecar's config gets the new keys
(`mattermost.message_style`, `[notify]`, `[reminders]` with durations of seconds). Posts are told apart by the
marker the sidecar puts in their `props` (request, channel, kind, number), so a test sees exactly which post
is which, and asserts that nothing was posted twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fakes.stack import Stack
from tests.e2e.conftest import (
    SEED,
    MakeStack,
    Posts,
    channel_id,
    dm_channel,
    edits,
    marked,
    start_sidecar_with,
    wait_posts,
)

STATIC = {"*": ["myteam/town-square"]}
RICH = 'message_style = "rich"\n'
NOT_SENT = "Not sending direct messages to the requester"


def _seed(tmp_path: Path) -> Path:
    """The suite's seed, with an email trait for `myuser` and a requester Mattermost does not know."""
    text = SEED.read_text().replace(
        '[users.myuser]\nroles = ["editor-requester"]\n',
        '[users.myuser]\nroles = ["editor-requester"]\ntraits = { email = ["myuser@example.com"] }\n',
    )
    assert "myuser@example.com" in text
    text += '\n[users."nomm@example.com"]\nroles = ["editor-requester"]\n'
    path = tmp_path / "rich_seed.toml"
    path.write_text(text)
    return path


@pytest.fixture(params=["oss", "enterprise"])
def edition(request: pytest.FixtureRequest) -> str:
    """Every flow runs against both editions of the fake Auth (Enterprise adds the Web UI link)."""
    value: str = request.param
    return value


async def _stack(
    make_stack: MakeStack, tmp_path: Path, edition: str, *, mattermost: str = RICH, extra: str = ""
) -> Stack:
    stack = await make_stack(sidecar=False, role_to_recipients=STATIC, teleport_seed=_seed(tmp_path), edition=edition)
    await start_sidecar_with(stack, mattermost=mattermost, extra=extra)
    return stack


def _card(props: dict[str, Any] | None) -> dict[str, Any]:
    attachments = (props or {}).get("attachments") or []
    assert len(attachments) == 1, props
    card: dict[str, Any] = attachments[0]
    return card


def _fields(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for f in card.get("fields") or []}


def _reminder_numbers(posts: Posts, rid: str, root_id: str) -> list[int]:
    numbers = [p["props"]["teleport_mattermost"]["review_index"] for p in marked(posts, rid, "reminder")
               if p["root_id"] == root_id]
    return sorted(numbers)


async def test_rich_posts_carry_the_card_and_are_edited_on_approval(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    stack = await _stack(make_stack, tmp_path, edition)
    rid = await stack.create_request("myuser", reason="Investigating the 502s", reviewers=["reviewer@example.com"])
    posts = await wait_posts(stack, lambda p: len(marked(p, rid, "root")) >= 2)
    await stack.settled(rid)
    roots = marked(await stack.posts(), rid, "root")
    assert {p["channel_id"] for p in roots} == {
        await channel_id(stack, "myteam/town-square"), await dm_channel(stack, "reviewer@example.com")
    }
    for root in roots:
        card = _card(root["props"])
        assert card["color"] == "#F2A93B"
        # Enterprise has a Web UI: the title links to the request there; OSS has none, so no link at all.
        if edition == "enterprise":
            assert rid in card["title_link"] and card["title_link"].startswith("https://")
        else:
            assert "title_link" not in card or not card["title_link"]
        fields = _fields(card)
        assert fields["Cluster"] == f"`{stack.auth['cluster_name']}`"
        assert fields["Requester"] == "`myuser`"
        assert "`editor`: `root`, `ubuntu`" in fields["Logins by role"]
        assert "@reviewer" in root["message"]  # a suggested reviewer Mattermost knows is mentioned
        assert "0 of 1 approval" in root["message"]  # the requester's role needs one approval
    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "go ahead")
    posts = await wait_posts(stack, lambda p: all(edits(r) for r in marked(p, rid, "root")))
    await stack.settled(rid)
    posts = await stack.posts()
    for root in marked(posts, rid, "root"):
        assert len(edits(root)) == 1
        card = _card(root["props"])
        assert card["color"] == "#2EA44F"
        assert card["title"].endswith("Access request approved")
        assert "`reviewer@example.com` approved" in _fields(card)["Reviews"]
        [reply] = [p for p in posts if p["root_id"] == root["id"]]
        assert "**approved** the request" in reply["message"]
        assert _card(reply["props"])["color"] == "#2EA44F"


async def test_the_requester_hears_about_the_announcement_the_review_and_the_approval(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    stack = await _stack(make_stack, tmp_path, edition, extra="[notify]\nrequester = true\n")
    rid = await stack.create_request("myuser", reason="hotfix", reviewers=["reviewer@example.com"])
    dm = await dm_channel(stack, "myuser@example.com")  # found through the `email` trait
    await wait_posts(stack, lambda p: len(marked(p, rid, "dm")) >= 1)
    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "fine")
    posts = await wait_posts(stack, lambda p: len(marked(p, rid, "dm")) >= 3)
    await stack.settled(rid)
    messages = marked(await stack.posts(), rid, "dm")
    assert [p["channel_id"] for p in messages] == [dm] * 3
    announced, reviewed, approved = (p["message"] for p in messages)
    assert "was sent for review" in announced and "`myteam/town-square`" in announced
    assert "`reviewer@example.com` **approved** your access request" in reviewed
    assert "was **approved**" in approved
    assert f"`tsh login --request-id={rid}`" in approved
    assert len(posts) >= 3


async def test_a_requester_without_a_mattermost_account_gets_nothing_and_one_log_line(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    stack = await _stack(make_stack, tmp_path, edition, extra="[notify]\nrequester = true\n")
    await stack.sign("nomm@example.com")
    rid = await stack.create_request("nomm@example.com", reason="no account", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(marked(p, rid, "root")) >= 2)
    await stack.tctl("reviewer@example.com", "review", rid, "--approve")
    await wait_posts(stack, lambda p: all(edits(r) for r in marked(p, rid, "root")))
    await stack.settled(rid)
    assert marked(await stack.posts(), rid, "dm") == []
    log = await stack.sidecar_log()
    lines = [line for line in log.splitlines() if NOT_SENT in line and rid in line]
    assert len(lines) == 1, lines
    assert "no Mattermost user has this email" in lines[0]
    assert "Gave up a notification" not in log


async def test_reminders_then_an_escalation_that_is_edited_on_approval(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    reminders = (
        '[reminders]\nafter = "1s"\nevery = "1s"\nmax = 2\n'
        'escalate_to = ["myteam/general"]\nescalate_after = "3s"\n'
    )
    stack = await _stack(make_stack, tmp_path, edition, extra=reminders)
    rid = await stack.create_request("myuser", reason="please", reviewers=["reviewer@example.com"])
    general = await channel_id(stack, "myteam/general")

    def escalated(posts: Posts) -> bool:
        return bool(marked(posts, rid, "escalation")) and len(marked(posts, rid, "reminder")) >= 4

    posts = await wait_posts(stack, escalated, timeout=30)
    roots = marked(posts, rid, "root")
    assert len(roots) == 3
    [escalation_root] = [r for r in roots if r["channel_id"] == general]
    [note] = marked(posts, rid, "escalation")
    assert note["root_id"] == escalation_root["id"]
    assert "**Escalation**" in note["message"]
    assert "@reviewer" in note["message"]
    for root in roots:
        if root is not escalation_root:
            assert _reminder_numbers(posts, rid, root["id"]) == [0, 1]
    reminder = next(p for p in marked(posts, rid, "reminder"))
    assert "**Reminder** (1 of 2)" in reminder["message"]
    await stack.tctl("reviewer@example.com", "review", rid, "--approve")
    posts = await wait_posts(stack, lambda p: all(edits(r) for r in marked(p, rid, "root")))
    [edited] = [r for r in marked(posts, rid, "root") if r["channel_id"] == general]
    assert _card(edited["props"])["color"] == "#2EA44F"
    await stack.settled(rid)
    await asyncio.sleep(2.5)  # longer than `every`: a decided request gets no more reminders
    assert len(marked(await stack.posts(), rid, "reminder")) == len(marked(posts, rid, "reminder"))


async def test_a_restart_during_the_reminder_schedule_neither_skips_nor_repeats(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    reminders = '[reminders]\nafter = "2s"\nevery = "3s"\nmax = 3\n'
    stack = await _stack(make_stack, tmp_path, edition, extra=reminders)
    rid = await stack.create_request("myuser", reason="waiting", reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(marked(p, rid, "reminder")) >= 2, timeout=20)  # reminder 1 in both threads
    assert await stack.stop_sidecar() == 0
    await asyncio.sleep(4)  # reminder 2 falls due while no sidecar runs
    before = len(marked(await stack.posts(), rid, "reminder"))
    assert before == 2
    await start_sidecar_with(stack, mattermost=RICH, extra=reminders)
    posts = await wait_posts(stack, lambda p: len(marked(p, rid, "reminder")) >= 6, timeout=30)
    await asyncio.sleep(4)  # longer than `every`: the third was the last
    posts = await stack.posts()
    for root in marked(posts, rid, "root"):
        assert _reminder_numbers(posts, rid, root["id"]) == [0, 1, 2]
    assert len(marked(posts, rid, "reminder")) == 6


async def test_an_over_long_reason_is_accepted_cut_with_a_marker(
    make_stack: MakeStack, tmp_path: Path, edition: str
) -> None:
    stack = await _stack(make_stack, tmp_path, edition)
    rid = await stack.create_request("myuser", reason="R" * 20_000, reviewers=["reviewer@example.com"])
    await wait_posts(stack, lambda p: len(marked(p, rid, "root")) >= 2)
    await stack.settled(rid)
    for root in marked(await stack.posts(), rid, "root"):
        card = _card(root["props"])
        reason = _fields(card)["Reason"]
        assert "(truncated, " in reason
        visible = len(root["message"]) + sum(len(f["title"]) + len(f["value"]) for f in card["fields"])
        assert visible <= 16_383
    assert "Gave up a notification" not in await stack.sidecar_log()
