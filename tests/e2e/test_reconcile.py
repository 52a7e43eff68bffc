"""The reconcile end to end: what the watch stream never delivered is announced and shown once it is back.

Same setup as test_go_suite.py: separate processes, public interfaces only. Each scenario waits for the
sidecar's `Reconcile finished` lines (a run logs one only once its events are handled) and for `settled()`
(every watch event handled), so asserting exact post counts afterwards means nothing more is coming.
"""

from __future__ import annotations

from typing import Any

from fakes.stack import Stack, eventually, handled_events
from sidecar.engine.dispatcher import SOURCE_RECONCILE
from sidecar.engine.reconcile import RECONCILE_FINISHED
from tests.e2e.conftest import MakeStack, edits, fields, replies, roots, wait_posts

RECIPIENTS = ["myteam/town-square", "reviewer@example.com"]
TWO_APPROVALS = "requester@example.com"  # the seed's advanced requester: two approvals resolve its requests
ONE_APPROVAL = "myuser"


async def reconciled(stack: Stack, runs: int, trigger: str) -> str:
    """Wait until the stack's sidecars have finished `runs` reconcile runs in all; the last one had `trigger`."""

    async def finished() -> str | None:
        lines = [line for line in (await stack.sidecar_log()).splitlines() if RECONCILE_FINISHED in line]
        return lines[-1] if len(lines) >= runs else None

    last = await eventually(finished, timeout=60)
    assert f"trigger:{trigger}" in last, last
    return last


def thread_sizes(posts: list[dict[str, Any]], request_id: str) -> list[int]:
    return sorted(len(replies(posts, root["id"])) for root in roots(posts, request_id))


async def test_what_happened_while_the_sidecar_was_down_is_shown_at_start(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=RECIPIENTS)
    await reconciled(stack, 1, "start-up")
    announced = await stack.create_request(TWO_APPROVALS, reason="announced, then approved while down")
    await wait_posts(stack, lambda p: len(roots(p, announced)) == 2)
    await stack.settled(announced)
    assert await stack.stop_sidecar() == 0

    await stack.tctl("reviewer@example.com", "review", announced, "--approve", "--reason", "fine")
    await stack.tctl("reviewer2@example.com", "review", announced, "--approve", "--reason", "fine too")
    created = await stack.create_request(TWO_APPROVALS, reason="created while down")
    reviewed = await stack.create_request(TWO_APPROVALS, reason="created and reviewed while down")
    await stack.tctl("reviewer@example.com", "review", reviewed, "--approve", "--reason", "one of two")
    resolved = await stack.create_request(ONE_APPROVAL, reason="created and approved while down")
    await stack.tctl("admin", "approve", resolved, "--reason", "before anyone saw it")

    await stack.start_sidecar()
    await reconciled(stack, 2, "start-up")
    ids = (announced, created, reviewed, resolved)
    await stack.settled(*ids)  # the watch stream delivered nothing new: only the first sidecar's events count
    posts = await stack.posts()

    # Announced before: its two posts get both reviews as replies and the resolution, nothing is re-posted.
    assert thread_sizes(posts, announced) == [2, 2]
    assert all(fields(r["message"])["Status"] == "✅ APPROVED" and edits(r) for r in roots(posts, announced))
    # Created while down: announced at start, exactly once per recipient.
    assert thread_sizes(posts, created) == [0, 0]
    assert all(fields(r["message"])["Status"] == "⏳ PENDING" for r in roots(posts, created))
    # Reviewed while down but still pending: announced with the review already in each thread.
    assert thread_sizes(posts, reviewed) == [1, 1]
    # Resolved before anything was announced: nothing to update, and (as in Go) not announced after the fact.
    assert roots(posts, resolved) == []
    assert (await stack.plugin_data(created))["messages"].count(",") == 1  # two posts recorded
    log = await stack.sidecar_log()
    assert handled_events(log, created) == 0  # no watch event about it was ever delivered ...
    assert handled_events(log, created, source=SOURCE_RECONCILE) >= 1  # ... the reconcile brought it


async def test_requests_the_watch_stream_lost_are_announced_after_the_reconnect(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=RECIPIENTS)
    await reconciled(stack, 1, "start-up")
    before = await stack.create_request(TWO_APPROVALS, reason="announced before the cut")
    await wait_posts(stack, lambda p: len(roots(p, before)) == 2)
    await stack.settled(before)

    await stack.auth_admin("POST", "/faults/lose-events", {"enabled": True})
    await stack.tctl("reviewer@example.com", "review", before, "--approve", "--reason", "reviewed during the cut")
    lost = await stack.create_request(TWO_APPROVALS, reason="created during the cut")
    lost_reviewed = await stack.create_request(TWO_APPROVALS, reason="created and reviewed during the cut")
    await stack.tctl("reviewer@example.com", "review", lost_reviewed, "--approve", "--reason", "one of two")
    faults = await stack.auth_admin("GET", "/faults")
    assert faults["lost_events"] == 4  # one stream, four events it never saw
    await stack.settled(before, lost, lost_reviewed)  # lost events are not counted as sent
    assert roots(await stack.posts(), lost) == []  # nothing arrived, so nothing was announced

    await stack.auth_admin("POST", "/faults/lose-events", {"enabled": False})
    assert (await stack.auth_admin("POST", "/faults/drop-watchers"))["dropped"] == 1
    await reconciled(stack, 2, "reconnect")
    await stack.settled(before, lost, lost_reviewed)
    posts = await stack.posts()

    assert thread_sizes(posts, before) == [1, 1]  # the review made during the cut, once in each thread
    assert all(fields(r["message"])["Status"] == "⏳ PENDING" for r in roots(posts, before))
    assert thread_sizes(posts, lost) == [0, 0]
    assert thread_sizes(posts, lost_reviewed) == [1, 1]
    assert (await stack.auth_admin("GET", "/watchers"))["count"] == 1  # the sidecar is watching again
