"""Recipient computation: Go's IsEmail, role_to_recipients with "*" fallback, and channel resolution."""

from __future__ import annotations

import logging

import pytest

from sidecar.domain.email import is_email
from sidecar.domain.errors import RecipientError, TransientError
from sidecar.domain.model import Channel
from sidecar.engine.recipients import raw_recipients, resolve_channels
from tests.unit.fakes_ports import FakeChat


@pytest.mark.parametrize(
    "text",
    [
        "alice@example.com",
        "a@b",
        "first.last+tag@sub.example.co",
        "!#$%&'*+-/=?^_`{|}~@example.com",
        "team/channel@example.com",
        "jörg@bücher.example",
        "user@[192.168.0.1]",
        "user@[::1]",
    ],
)
def test_is_email_accepts(text: str) -> None:
    assert is_email(text)


@pytest.mark.parametrize(
    "text",
    [
        "Alice <alice@example.com>",
        "<alice@example.com>",
        "team/channel",
        "fallback",
        "",
        "@example.com",
        "alice@",
        " alice@example.com",
        "alice@example.com ",
        "alice@example.com (Alice)",
        '"alice"@example.com',
        '"a b"@example.com',
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@.example.com",
        "alice@example..com",
        "alice@example.com.",
        "alice@@example.com",
        "a@b@c",
        "al ice@example.com",
        "alice@exa mple.com",
        "al(ice@example.com",
        "alice@[not-an-ip]",
        "alice@[fe80::1%eth0]",
        "alice@[1.2.3.4",
        "alice\t@example.com",
    ],
)
def test_is_email_rejects(text: str) -> None:
    assert not is_email(text)


ROLE_MAP = {
    "editor": ["reviewer1@example.com"],
    "*": ["fallback", "team/channel"],
    "empty": [],
}


@pytest.mark.parametrize(
    ("roles", "suggested", "mapping", "expected"),
    [
        # The suite's OSS posting test: the role's own list wins, "fallback" is unused.
        (["editor"], ["reviewer2@example.com"], ROLE_MAP, ["reviewer1@example.com", "reviewer2@example.com"]),
        # Unknown role and role with an empty list fall back to "*", per role.
        (["auditor"], [], ROLE_MAP, ["fallback", "team/channel"]),
        (["empty"], [], ROLE_MAP, ["fallback", "team/channel"]),
        (["editor", "auditor"], [], ROLE_MAP, ["reviewer1@example.com", "fallback", "team/channel"]),
        # No "*" and no matching role: the role contributes nothing.
        (["auditor"], ["r@example.com"], {"editor": ["x"]}, ["r@example.com"]),
        # Dedupe keeps the first occurrence.
        (["editor"], ["reviewer1@example.com"], ROLE_MAP, ["reviewer1@example.com"]),
        ([], [], {}, []),
    ],
)
def test_raw_recipients(
    roles: list[str], suggested: list[str], mapping: dict[str, list[str]], expected: list[str]
) -> None:
    assert raw_recipients(roles, suggested, mapping) == expected


def test_invalid_suggested_reviewers_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.engine.recipients")
    result = raw_recipients([], ["Bob <bob@example.com>", "ok@example.com", "team/channel"], {}, request_id="r1")
    assert result == ["ok@example.com"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Failed to notify a suggested reviewer with an invalid email address"
    ] * 2
    assert [r.reviewer for r in warnings] == ["Bob <bob@example.com>", "team/channel"]  # type: ignore[attr-defined]
    assert all(r.request_id == "r1" for r in warnings)  # type: ignore[attr-defined]


async def test_resolve_channels_skips_failures_and_dedupes_by_channel(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.engine.recipients")
    chat = FakeChat(
        channels={"a@example.com": "dm-a", "team/chan": "chan-1", "A@example.com": "dm-a"},
        resolve_errors={"flaky@example.com": TransientError("503 from Mattermost")},
    )
    recipients = ["a@example.com", "missing@example.com", "team/chan", "A@example.com", "flaky@example.com"]
    channels, failures = await resolve_channels(recipients, chat, request_id="r1")
    assert channels == [Channel("dm-a", "a@example.com"), Channel("chan-1", "team/chan")]
    assert [f.recipient for f in failures] == ["missing@example.com", "flaky@example.com"]
    assert isinstance(failures[0].error, RecipientError)
    assert isinstance(failures[1].error, TransientError)
    warned = [r for r in caplog.records if r.getMessage() == "Failure when fetching recipient, continuing anyway"]
    assert [r.recipient for r in warned] == ["missing@example.com", "flaky@example.com"]  # type: ignore[attr-defined]
