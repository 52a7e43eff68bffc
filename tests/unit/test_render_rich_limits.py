"""Size safety: every post fits its limit, cut with a visible marker, never refused; classic keeps its bytes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text
from sidecar.render.dm import dm_announced, dm_expired, dm_resolved, dm_review
from sidecar.render.inert import code, code_block, plain, truncation_marker
from sidecar.render.limits import (
    DEFAULT_LIMIT,
    DETAIL_LEVELS,
    LEGACY_LIMIT,
    MIN_LIMIT,
    check_limit,
    cut_markdown,
    fit_classic,
    fits,
    hard_fit,
    smaller_limit,
    visible_size,
)
from sidecar.render.rich import render_reminder, render_request, render_review_reply
from sidecar.render.view import RequestView, ResourceView, ReviewerView, RichPost
from tests.unit.golden_files import GOLDEN_DIR, golden
from tests.unit.test_render_rich import NOW, pending_view

LIMITS = [DEFAULT_LIMIT, LEGACY_LIMIT, 2000, 1000, 500, MIN_LIMIT]
_CODE = re.compile(r"```\n.*?\n```|`[^`\n]*`", re.DOTALL)

HUGE = "\u00e9x@channel " * 10000


def _huge_view() -> RequestView:
    """Every unbounded part at its worst: long names, thousands of items, 100,000-character reasons."""
    return pending_view(
        requester=HUGE,
        roles=tuple(f"role-{i}-" + "r" * 200 for i in range(1000)),
        cluster=HUGE,
        resources=tuple(ResourceView("node", HUGE[:5000], HUGE[:3000], sub_resource="s" * 500) for _ in range(1000)),
        logins_by_role={f"role-{i}": tuple("l" * 300 for _ in range(100)) for i in range(300)},
        reason=("line\n" * 20000) + HUGE,
        resolve_reason=HUGE,
        suggested_reviewers=tuple(ReviewerView("r" * 300 + str(i)) for i in range(500)),
        reviews=tuple(Review(HUGE[:2000], RequestState.DENIED, HUGE, NOW) for _ in range(500)),
    )


RENDERERS: dict[str, Callable[[RequestView, int], RichPost]] = {
    "root_pending": lambda v, limit: render_request(v, limit=limit),
    "root_full": lambda v, limit: render_request(v, limit=limit, full_message=True),
    "root_denied": lambda v, limit: render_request(dataclasses.replace(v, resolution=Resolution.DENIED), limit=limit),
    "reply": lambda v, limit: render_review_reply(v, 3, limit=limit),
    "reminder": lambda v, limit: render_reminder(v, number=2, of=3, limit=limit),
    "dm_announced": lambda v, limit: dm_announced(v, [HUGE] * 50, limit=limit),
    "dm_review": lambda v, limit: dm_review(v, 3, limit=limit),
    "dm_approved": lambda v, limit: dm_resolved(dataclasses.replace(v, resolution=Resolution.APPROVED), limit=limit),
    "dm_expired": lambda v, limit: dm_expired(v, limit=limit),
}


def _assert_code_closed(markdown: str) -> None:
    # Outside code there is no backtick left over, so no span or fence was left open by a cut.
    assert "`" not in _CODE.sub("", markdown), markdown


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_every_post_fits_however_large_the_request(renderer: str, limit: int) -> None:
    post = RENDERERS[renderer](_huge_view(), limit)
    assert fits(post, limit)
    assert len(post.message) <= limit  # the server's own rule, in code points
    _assert_code_closed(post.message)
    for attachment in post.attachments:
        for item in attachment.get("fields", ()):
            _assert_code_closed(item["value"])
        _assert_code_closed(attachment.get("text", ""))


def test_a_normal_request_keeps_full_detail() -> None:
    view = pending_view(reviews=(Review("bob", RequestState.APPROVED, "ok", NOW),))
    assert render_request(view) == render_request(view, limit=10**9)
    assert render_request(view, limit=LEGACY_LIMIT) == render_request(view)


def test_long_reason_is_cut_with_a_count() -> None:
    view = pending_view(reason="a" * 5000)
    [attachment] = render_request(view).attachments
    [reason] = [f["value"] for f in attachment["fields"] if f["title"] == "Reason"]
    shown = DETAIL_LEVELS[0].reason
    assert reason == "```\n" + "a" * shown + "\n```\n" + truncation_marker(5000 - shown)
    assert reason.endswith("\u2026 (truncated, 1,000 more characters)")


def test_many_resources_and_reviews_are_counted_not_listed() -> None:
    view = pending_view(
        resources=tuple(ResourceView("node", f"n{i}") for i in range(87)),
        reviews=tuple(Review(f"r{i}", RequestState.DENIED, "", NOW) for i in range(25)),
    )
    fields = {f["title"]: f["value"] for f in render_request(view).attachments[0]["fields"]}
    assert fields["Resources (87)"].endswith("\n\u2026 and 37 more resources")
    assert fields["Reviews"].startswith("\u2026 and 5 earlier reviews\n")
    assert "`r24`" in fields["Reviews"]  # the latest are kept
    assert "`r4`" not in fields["Reviews"]


def test_smaller_levels_are_used_for_smaller_limits() -> None:
    view = pending_view(resources=tuple(ResourceView("node", f"node-{i:04d}") for i in range(60)))
    big, small = render_request(view), render_request(view, limit=1000)
    assert "\u2026 and 10 more resources" in big.attachments[0]["fields"][7]["value"]
    assert visible_size(small) <= 1000 < visible_size(big)


def test_limit_counts_code_points_not_bytes() -> None:
    post = RichPost(message="\u00e9" * 300)
    assert visible_size(post) == 300
    assert fits(post, 300)
    assert not fits(post, 299)


def test_fallback_is_held_to_the_limit_on_its_own() -> None:
    post = RichPost(message="m", attachments=[{"fallback": "f" * 500, "text": "t"}])
    assert visible_size(post) == 2
    assert not fits(post, 499)
    assert fits(hard_fit(post, 499), 499)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(DEFAULT_LIMIT, LEGACY_LIMIT), (LEGACY_LIMIT, 2000), (500, 250), (300, MIN_LIMIT), (MIN_LIMIT, None)],
)
def test_smaller_limit(limit: int, expected: int | None) -> None:
    assert smaller_limit(limit) == expected


def test_limits_below_the_minimum_are_refused() -> None:
    assert check_limit(MIN_LIMIT) == MIN_LIMIT
    with pytest.raises(ValueError, match="below the minimum"):
        render_request(pending_view(), limit=MIN_LIMIT - 1)
    with pytest.raises(ValueError, match="below the minimum"):
        fit_classic("x", MIN_LIMIT - 1)


# --- cut_markdown and hard_fit ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", range(60, 140, 3))
def test_cut_markdown_never_leaves_code_open(limit: int) -> None:
    text = "head `span one` and `span two`\n```\nfenced line one\nfenced line two\n```\ntail `x` end " * 2
    cut = cut_markdown(text, limit)
    assert len(cut) <= limit
    _assert_code_closed(cut)
    assert "(truncated, " in cut


def test_cut_markdown_keeps_text_that_fits() -> None:
    assert cut_markdown("short `x`", 100) == "short `x`"


@pytest.mark.parametrize("limit", range(60, 80))
def test_cut_markdown_never_makes_a_mention_out_of_a_part(limit: int) -> None:
    text = "Please review it, " + "@bobby-the-reviewer " * 10
    cut = cut_markdown(text, limit)
    assert re.findall(r"@[\w.-]+", cut) == ["@bobby-the-reviewer"] * len(re.findall(r"@[\w.-]+", cut))


def test_hard_fit_drops_trailing_fields_with_a_note() -> None:
    fields = [{"title": f"T{i}", "value": "v" * 50, "short": False} for i in range(10)]
    post = RichPost(message="m" * 20, attachments=[{"fallback": "f", "title": "t", "fields": fields}])
    fitted = hard_fit(post, 300)
    assert fits(fitted, 300)
    [attachment] = fitted.attachments
    assert attachment["fields"][-1]["value"].startswith("\u2026 and ")
    assert attachment["fields"][0] == fields[0]


def test_hard_fit_drops_an_attachment_too_large_for_half_the_limit() -> None:
    post = RichPost(message="m" * 150, attachments=[{"fallback": "f", "text": "t" * 400}])
    fitted = hard_fit(post, MIN_LIMIT)
    assert fitted.attachments == []
    assert fits(fitted, MIN_LIMIT)


# --- inert helpers at their limits -------------------------------------------------------------------------


def test_code_and_plain_cut_long_values() -> None:
    assert code("abcdef", 4) == "`abc\u2026`"
    assert code("abcdef", 4, note=True) == "`abcd` " + truncation_marker(2)
    assert plain("abcdef", 4) == "abc\u2026"
    assert code("   ", 4) == "(empty)"
    assert code_block("a\nb\nc\nd", 100, 2) == "```\na\nb\n```\n" + truncation_marker(4)


def test_cutting_a_huge_value_counts_what_was_hidden() -> None:
    assert code("x" * 100000, 10, note=True) == "`" + "x" * 10 + "` " + truncation_marker(99990)


# --- classic: unchanged when it fits -----------------------------------------------------------------------

SETTINGS = RenderSettings(web_proxy_url="https://teleport.example.com")


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN_DIR.glob("*.txt")))
@pytest.mark.parametrize("limit", [DEFAULT_LIMIT, LEGACY_LIMIT])
def test_classic_goldens_pass_through_unchanged(name: str, limit: int) -> None:
    text = golden(name)
    assert fit_classic(text, limit).encode("utf-8") == text.encode("utf-8")


def test_classic_over_long_names_are_shortened_and_the_rest_kept() -> None:
    data = PluginData(user="u" * 3000, roles=tuple(f"role{i}" for i in range(2000)), request_reason="need access")
    text = root_post_text("ID", data, RenderSettings())
    fitted = fit_classic(text, LEGACY_LIMIT)
    assert len(text) > LEGACY_LIMIT >= len(fitted)
    lines = fitted.split("\n")
    assert lines[1].startswith("**User**: uuu") and "(truncated, " in lines[1]
    assert lines[2].startswith("**Roles**: role0, role1") and "(truncated, " in lines[2]
    # Everything after the names is the Go text, byte for byte.
    assert fitted.split("\n", 3)[3] == text.split("\n", 3)[3]
    assert fitted.endswith("**Deny**: `tsh request review --deny ID`")


def test_classic_reply_with_an_over_long_author_is_shortened() -> None:
    text = review_reply_text(Review("a" * 5000, RequestState.APPROVED, "ok", NOW))
    fitted = fit_classic(text, LEGACY_LIMIT)
    assert len(fitted) <= LEGACY_LIMIT
    assert fitted.endswith("Resolution: \u2705 APPROVED.\nReason: ```\nok```.")


def test_classic_cut_at_the_end_closes_its_code_span() -> None:
    data = PluginData(user="alice", roles=("editor",), request_reason="`x` " * 200, resolve_reason="y" * 600)
    text = root_post_text("ID", dataclasses.replace(data, resolution=Resolution.DENIED), SETTINGS)
    fitted = fit_classic(text, 400)
    assert len(fitted) <= 400
    assert fitted.count("```") % 2 == 0
    assert fitted.endswith("more characters)")
