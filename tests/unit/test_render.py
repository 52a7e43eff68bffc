"""render.py against the Go plugin's golden texts (tests/unit/golden/), compared byte for byte."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.render.classic import (
    RenderSettings,
    go_rfc822,
    request_link,
    review_reply_text,
    root_post_text,
    web_url_from_addr,
)
from sidecar.render.escape import markdown_escape
from tests.unit.golden_files import golden

OSS = RenderSettings()
ENTERPRISE = RenderSettings(web_proxy_url="https://teleport.example.com")
CREATED = datetime(2025, 1, 2, 15, 4, 5, tzinfo=UTC)


def _data(**changes: Any) -> PluginData:
    base = PluginData(user="alice@example.com", roles=("editor",), request_reason="need access")
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("golden_name", "data", "settings"),
    [
        ("root_pending_oss.txt", _data(roles=("editor", "auditor")), OSS),
        ("root_pending_link.txt", _data(roles=("editor", "auditor")), ENTERPRISE),
        ("root_approved.txt", _data(resolution=Resolution.APPROVED, resolve_reason="okay"), OSS),
        ("root_expired.txt", _data(request_reason="", resolution=Resolution.EXPIRED), OSS),
        ("root_promoted.txt", _data(request_reason="", resolution=Resolution.PROMOTED), OSS),
    ],
)
def test_root_post_golden(golden_name: str, data: PluginData, settings: RenderSettings) -> None:
    assert root_post_text("ID", data, settings).encode("utf-8") == golden(golden_name).encode("utf-8")


def test_resolved_post_with_link_has_link_and_no_commands() -> None:
    text = root_post_text("ID", _data(resolution=Resolution.DENIED), ENTERPRISE)
    assert text.endswith(
        "**Status**: \u274c DENIED\n\n**Link**: [https://teleport.example.com/web/requests/ID]"
        "(https://teleport.example.com/web/requests/ID)\n"
    )
    assert "tsh request review" not in text


def test_root_post_escapes_only_reasons() -> None:
    data = _data(user="**bob**", request_reason="`x`", resolution=Resolution.DENIED, resolve_reason="  ")
    text = root_post_text("ID", data, OSS)
    assert "**User**: **bob**\n" in text
    assert "**Reason**: ```\n`\ufeffx`\ufeff```\n" in text
    # A whitespace-only resolution reason is non-empty, so it is rendered, as "(empty)".
    assert "**Resolution reason**: (empty)\n" in text


@pytest.mark.parametrize(
    ("golden_name", "review"),
    [
        ("reply_with_reason.txt", Review("reviewer1@example.com", RequestState.APPROVED, "okay", CREATED)),
        ("reply_without_reason.txt", Review("reviewer2@example.com", RequestState.DENIED, "", CREATED)),
    ],
)
def test_review_reply_golden(golden_name: str, review: Review) -> None:
    assert review_reply_text(review).encode("utf-8") == golden(golden_name).encode("utf-8")


def test_review_reply_other_state_has_no_emoji() -> None:
    review = Review("r@example.com", RequestState.PROMOTED, "", CREATED)
    assert review_reply_text(review).splitlines()[1] == "Resolution:  PROMOTED."


def test_review_reason_is_truncated_at_500() -> None:
    review = Review("r@example.com", RequestState.DENIED, "not okay " + "A" * 4000, CREATED)
    assert review_reply_text(review).endswith("Reason: ```\nnot okay " + "A" * 491 + "``` (truncated).")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (CREATED, "02 Jan 25 15:04 UTC"),
        (datetime(2009, 12, 31, 23, 59), "31 Dec 09 23:59 UTC"),
        # Converted to UTC before formatting.
        (datetime(2025, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "28 Feb 25 23:30 UTC"),
    ],
)
def test_go_rfc822(moment: datetime, expected: str) -> None:
    assert go_rfc822(moment) == expected


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("teleport.example.com", "https://teleport.example.com"),
        ("teleport.example.com:443", "https://teleport.example.com"),
        ("teleport.example.com:3080", "https://teleport.example.com:3080"),
        ("https://teleport.example.com:443", "https://teleport.example.com"),
        ("http://teleport.example.com:443", "http://teleport.example.com:443"),
        ("http://teleport.example.com", "http://teleport.example.com"),
        ("[::1]:443", "https://[::1]"),
    ],
)
def test_web_url_from_addr(addr: str, expected: str) -> None:
    assert web_url_from_addr(addr) == expected


def test_web_url_from_addr_rejects_missing_host() -> None:
    with pytest.raises(ValueError, match="has no host"):
        web_url_from_addr("https://")


@pytest.mark.parametrize(
    ("base", "request_id", "expected"),
    [
        ("https://teleport.example.com", "ID", "https://teleport.example.com/web/requests/ID"),
        ("https://teleport.example.com/", "ID", "https://teleport.example.com/web/requests/ID"),
        # Go replaces the proxy URL's path instead of appending to it.
        ("https://teleport.example.com/x", "ID", "https://teleport.example.com/web/requests/ID"),
        ("https://t.example.com:3080", "a b/c?d@e", "https://t.example.com:3080/web/requests/a%20b%2Fc%3Fd@e"),
    ],
)
def test_request_link(base: str, request_id: str, expected: str) -> None:
    assert request_link(base, request_id) == expected


def test_escape_goldens() -> None:
    assert markdown_escape("     ") == golden("escape_empty.txt")
    assert markdown_escape("abc") == golden("escape_abc.txt")
    assert markdown_escape("`foo` `bar`") == golden("escape_backticks.txt")
    assert markdown_escape("  123456789012345  ", 10) == golden("escape_truncated.txt")
    assert markdown_escape("ééééé", 4) == golden("escape_multibyte.txt")
