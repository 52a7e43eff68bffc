"""markdown_escape against the upstream ExampleMarkdownEscape vectors and the byte-budget cases."""

from __future__ import annotations

import pytest

from sidecar.render.escape import go_trim_space, markdown_escape


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        # The four upstream ExampleMarkdownEscape outputs.
        ("     ", 500, "(empty)"),
        ("abc", 500, "```\nabc```"),
        ("`foo` `bar`", 500, "```\n`\ufefffoo`\ufeff `\ufeffbar`\ufeff```"),
        ("  123456789012345  ", 10, "```\n1234567890``` (truncated)"),
        # The budget counts UTF-8 bytes: "é" is two bytes, so only two fit in four units.
        ("ééééé", 4, "```\n\u00e9\u00e9``` (truncated)"),
        ("ééééé", 5, "```\n\u00e9\u00e9\u00e9``` (truncated)"),
        ("ééééé", 10, "```\nééééé```"),
        # Exactly at the limit: nothing is cut.
        ("1234567890", 10, "```\n1234567890```"),
        # Each backtick costs one more unit: 4 units leave room for "`", "a" only.
        ("`abc", 4, "```\n`\ufeffab``` (truncated)"),
        ("", 500, "(empty)"),
        ("\n\t x \r\n", 500, "```\nx```"),
    ],
)
def test_markdown_escape(text: str, limit: int, expected: str) -> None:
    assert markdown_escape(text, limit) == expected


def test_suite_reason_padding_is_cut_at_500() -> None:
    # The Go suite's TestMattermostMessagePosting: "because of " + 4000×"A" keeps 489 "A".
    out = markdown_escape("because of " + "A" * 4000)
    assert out == "```\nbecause of " + "A" * 489 + "``` (truncated)"


def test_go_trim_space_keeps_separators_python_would_strip() -> None:
    # U+001F is whitespace to Python's str.strip() but not to Go's unicode.IsSpace.
    assert go_trim_space("\x1fa\x1f") == "\x1fa\x1f"
    assert go_trim_space("\u00a0\u3000a\u2029") == "a"
    assert markdown_escape("\x1f") == "```\n\x1f```"
