"""The rich style against its goldens (tests/unit/golden/rich/), and the pieces it is built from.

Each golden post is two files: `<name>.txt` holds the message byte for byte, `<name>.json` the attachments
as `json.dumps(..., indent=2, ensure_ascii=False)` plus a newline (absent for a text-only post). After a
deliberate change of the texts, `TM_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_rich.py`
rewrites them; review the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import Resolution
from sidecar.render.dm import dm_announced, dm_expired, dm_resolved, dm_review
from sidecar.render.facts import tally
from sidecar.render.inert import mention
from sidecar.render.limits import LEGACY_LIMIT
from sidecar.render.rich import link_markdown, render_reminder, render_request, render_review_reply
from sidecar.render.timefmt import dated, relative, span
from sidecar.render.view import RequestView, ResourceView, ReviewerView, RichPost, resource_from_id
from tests.unit.golden_files import GOLDEN_DIR

RICH_DIR = GOLDEN_DIR / "rich"
NOW = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
REQUEST_ID = "0f4a6c1e-5b7d-4e2a-9c3b-8d1f2e3a4b5c"
LINK = f"https://teleport.example.com/web/requests/{REQUEST_ID}"
BOB_APPROVES = Review("bob@example.com", RequestState.APPROVED, "Matches INC-4211.", NOW - timedelta(minutes=6))
CAROL_APPROVES = Review("carol@example.com", RequestState.APPROVED, "", NOW - timedelta(minutes=2))
DAVE_DENIES = Review("dave@example.com", RequestState.DENIED, "Use the read-only role.", NOW - timedelta(minutes=1))


def pending_view(**changes: Any) -> RequestView:
    """A pending request with every fact the rich style shows, as of NOW; `changes` replace fields."""
    base = RequestView(
        request_id=REQUEST_ID,
        requester="alice@example.com",
        roles=("db-reader", "node-access"),
        now=NOW,
        cluster="teleport.example.com",
        resources=(
            resource_from_id("/teleport.example.com/node/7d3e9a52-1c4b-4f8e-a6d2-0b9c8e7f6a5d", "web-1"),
            resource_from_id("/teleport.example.com/db/orders"),
            resource_from_id("/teleport.example.com/kube_cluster/prod-eu"),
        ),
        logins_by_role={"node-access": ("ubuntu", "deploy"), "db-reader": ()},
        reason="Investigating INC-4211: checkout latency.\nNeed to read the orders table.",
        suggested_reviewers=(ReviewerView("bob@example.com", "bob"), ReviewerView("carol@example.com")),
        approvals_required=2,
        created=NOW - timedelta(minutes=13),
        access_expires=NOW + timedelta(hours=8),
        request_expires=NOW + timedelta(minutes=47),
        link=LINK,
    )
    return dataclasses.replace(base, **changes)


def _dump(post: RichPost) -> tuple[str, str | None]:
    attachments = json.dumps(post.attachments, indent=2, ensure_ascii=False) + "\n" if post.attachments else None
    return post.message, attachments


def _check_golden(name: str, post: RichPost) -> None:
    message, attachments = _dump(post)
    text_path, json_path = RICH_DIR / f"{name}.txt", RICH_DIR / f"{name}.json"
    if os.environ.get("TM_UPDATE_GOLDEN") == "1":
        RICH_DIR.mkdir(exist_ok=True)
        text_path.write_bytes(message.encode("utf-8"))
        if attachments is None:
            json_path.unlink(missing_ok=True)
        else:
            json_path.write_bytes(attachments.encode("utf-8"))
    assert message.encode("utf-8") == text_path.read_bytes()
    if attachments is None:
        assert not json_path.exists()
    else:
        assert attachments.encode("utf-8") == json_path.read_bytes()


RESOLVED = {
    "resolve_reason": "Approved for the incident window.",
    "reviews": (BOB_APPROVES, CAROL_APPROVES),
}

GOLDENS: dict[str, Callable[[], RichPost]] = {
    "root_pending": lambda: render_request(pending_view()),
    "root_pending_one_of_two": lambda: render_request(pending_view(reviews=(BOB_APPROVES,))),
    "root_pending_oss": lambda: render_request(pending_view(link=None, cluster="", resources=())),
    "root_pending_full_message": lambda: render_request(pending_view(reviews=(BOB_APPROVES,)), full_message=True),
    "root_approved": lambda: render_request(pending_view(resolution=Resolution.APPROVED, **RESOLVED)),
    "root_denied": lambda: render_request(
        pending_view(resolution=Resolution.DENIED, reviews=(BOB_APPROVES, DAVE_DENIES), resolve_reason="")
    ),
    "root_expired": lambda: render_request(pending_view(resolution=Resolution.EXPIRED, link=None)),
    "root_promoted": lambda: render_request(
        pending_view(resolution=Resolution.PROMOTED, resolve_reason="Moved to the on-call access list.")
    ),
    "reply_approved": lambda: render_review_reply(pending_view(reviews=(BOB_APPROVES,)), 0),
    "reply_approved_no_reason": lambda: render_review_reply(pending_view(reviews=(BOB_APPROVES, CAROL_APPROVES)), 1),
    "reply_denied": lambda: render_review_reply(pending_view(reviews=(BOB_APPROVES, DAVE_DENIES)), 1),
    "reminder": lambda: render_reminder(pending_view(), number=1, of=3),
    "reminder_oss": lambda: render_reminder(pending_view(link=None, suggested_reviewers=())),
    "escalation": lambda: render_reminder(pending_view(created=NOW - timedelta(hours=2, minutes=5)), escalation=True),
    "dm_announced": lambda: dm_announced(pending_view(), ["platform/access-requests", "bob@example.com"]),
    "dm_announced_nowhere": lambda: dm_announced(pending_view(link=None, request_expires=None), []),
    "dm_review": lambda: dm_review(pending_view(reviews=(BOB_APPROVES, DAVE_DENIES)), 1),
    "dm_approved": lambda: dm_resolved(
        pending_view(resolution=Resolution.APPROVED, access_start=NOW + timedelta(minutes=30), **RESOLVED)
    ),
    "dm_denied": lambda: dm_resolved(
        pending_view(resolution=Resolution.DENIED, reviews=(DAVE_DENIES,), resolve_reason="Use the read-only role.")
    ),
    "dm_promoted": lambda: dm_resolved(pending_view(resolution=Resolution.PROMOTED, link=None)),
    "dm_expired": lambda: dm_expired(pending_view(resolution=Resolution.EXPIRED)),
    "root_hostile": lambda: render_request(
        pending_view(
            requester="@channel\n**Status**: \u2705 APPROVED",
            roles=("admin\u202egnp.exe", "`editor`"),
            reason="fine\n\n@here [Approve](https://evil.example/approve) <script>x</script>\n```\n# done",
            resources=(ResourceView("node", "n1", "<img src=x onerror=alert(1)> \u200bweb-1"),),
            suggested_reviewers=(ReviewerView("@all", "all"), ReviewerView("bob@example.com", "bob")),
        )
    ),
    "root_truncated_legacy": lambda: render_request(
        pending_view(
            reason="Long story. " * 600,
            resources=tuple(resource_from_id(f"/teleport.example.com/node/node-{i:03d}") for i in range(80)),
            reviews=tuple(
                Review(f"reviewer{i}@example.com", RequestState.DENIED, "Not this week. " * 40, NOW) for i in range(30)
            ),
        ),
        limit=LEGACY_LIMIT,
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_rich_golden(name: str) -> None:
    _check_golden(name, GOLDENS[name]())


def test_every_rich_golden_file_has_a_case() -> None:
    stems = {path.name.split(".")[0] for path in RICH_DIR.iterdir()}
    assert stems == set(GOLDENS)


@pytest.mark.parametrize(
    ("resolution", "color"),
    [
        (Resolution.UNRESOLVED, "#F2A93B"),
        (Resolution.APPROVED, "#2EA44F"),
        (Resolution.DENIED, "#D73A49"),
        (Resolution.EXPIRED, "#8B949E"),
        (Resolution.PROMOTED, "#6F42C1"),
    ],
)
def test_each_state_has_its_colour(resolution: Resolution, color: str) -> None:
    [attachment] = render_request(pending_view(resolution=resolution)).attachments
    assert attachment["color"] == color


def test_title_links_to_the_web_ui_only_when_there_is_a_link() -> None:
    [with_link] = render_request(pending_view()).attachments
    [without] = render_request(pending_view(link=None)).attachments
    assert with_link["title_link"] == LINK
    assert "title_link" not in without
    assert "tsh request review --approve" in without["fallback"]


def test_expiry_is_computed_at_each_render() -> None:
    view = pending_view()
    later = dataclasses.replace(view, now=NOW + timedelta(minutes=40))
    assert "request expires in 47 min" in render_request(view).message
    assert "request expires in 7 min" in render_request(later).message
    assert "as of 2025-01-02 15:44 UTC" in render_request(later).attachments[0]["footer"]


def test_only_resolved_reviewers_are_mentioned() -> None:
    message = render_request(pending_view()).message
    assert "Suggested reviewers: @bob, `carol@example.com`" in message
    assert "@carol" not in message


def test_approvals_in_a_reply_count_up_to_that_review() -> None:
    view = pending_view(reviews=(BOB_APPROVES, CAROL_APPROVES))
    assert "(1 of 2 approvals)" in render_review_reply(view, 0).message
    assert "(2 of 2 approvals)" in render_review_reply(view, 1).message


@pytest.mark.parametrize("index", [-1, 2])
def test_review_index_out_of_range_is_refused(index: int) -> None:
    view = pending_view(reviews=(BOB_APPROVES, CAROL_APPROVES))
    with pytest.raises(ValueError, match="out of range"):
        render_review_reply(view, index)
    with pytest.raises(ValueError, match="out of range"):
        dm_review(view, index)


def test_approved_dm_says_how_to_use_the_access() -> None:
    message = dm_resolved(pending_view(resolution=Resolution.APPROVED)).message
    assert f"`tsh login --request-id={REQUEST_ID}`" in message


@pytest.mark.parametrize(
    ("reviews", "required", "expected"),
    [
        ((), 2, "0 of 2 approvals"),
        ((BOB_APPROVES,), 2, "1 of 2 approvals"),
        ((BOB_APPROVES,), 1, "1 of 1 approval"),
        ((BOB_APPROVES, DAVE_DENIES), 2, "1 of 2 approvals, 1 denial"),
        ((), None, "0 approvals"),
        ((BOB_APPROVES,), None, "1 approval"),
        ((DAVE_DENIES, DAVE_DENIES), None, "0 approvals, 2 denials"),
    ],
)
def test_tally(reviews: tuple[Review, ...], required: int | None, expected: str) -> None:
    assert tally(reviews, required) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=47, seconds=59), "47 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=4, minutes=59), "2 days 4 h"),
        (-timedelta(minutes=5), "5 min"),
    ],
)
def test_span(delta: timedelta, expected: str) -> None:
    assert span(delta) == expected


def test_relative_and_dated_take_naive_times_as_utc() -> None:
    naive_now = datetime(2025, 1, 2, 15, 4)
    assert relative(NOW + timedelta(minutes=47), naive_now) == "in 47 min (2025-01-02 15:51 UTC)"
    assert relative(NOW - timedelta(minutes=5), NOW) == "5 min ago (2025-01-02 14:59 UTC)"
    assert dated(NOW + timedelta(hours=8), NOW) == "2025-01-02 23:04 UTC (in 8 h)"
    assert dated(NOW - timedelta(hours=1), NOW) == "2025-01-02 14:04 UTC (1 h ago)"


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        ("/c/node/abc", ResourceView(kind="node", name="abc", cluster="c")),
        ("/c/pod/prod/ns/web-0", ResourceView(kind="pod", name="prod", cluster="c", sub_resource="ns/web-0")),
        ("node/abc", ResourceView(kind="", name="node/abc")),
        ("//node/abc", ResourceView(kind="", name="//node/abc")),
    ],
)
def test_resource_from_id(resource_id: str, expected: ResourceView) -> None:
    assert resource_from_id(resource_id) == expected


def test_resource_from_another_cluster_names_it() -> None:
    view = pending_view(resources=(resource_from_id("/leaf.example.com/app/grafana", "Grafana"),))
    [attachment] = render_request(view).attachments
    [resources] = [f for f in attachment["fields"] if f["title"].startswith("Resources")]
    assert resources["value"] == "- App `Grafana` (`grafana`) in cluster `leaf.example.com`"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("bob", "@bob"),
        ("bob.smith-2_x", "@bob.smith-2_x"),
        (None, None),
        ("", None),
        ("Bob", None),
        ("all", None),
        ("channel", None),
        ("here", None),
        ("bob smith", None),
        ("bob\u200b", None),
        ("a" * 65, None),
        ("---", None),
        ("1bob", None),
    ],
)
def test_mention_only_for_valid_usernames(username: str | None, expected: str | None) -> None:
    assert mention(username) == expected


def test_link_markdown_escapes_what_would_end_the_link() -> None:
    assert link_markdown("Open", "https://t.example/a b(c)<d>[e]") == (
        "[Open](https://t.example/a%20b%28c%29%3Cd%3E%5Be%5D)"
    )


def test_rich_post_props() -> None:
    assert RichPost("x").props() == {}
    assert RichPost("x", [{"text": "y"}]).props() == {"attachments": [{"text": "y"}]}
