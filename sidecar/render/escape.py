"""Reason escaping for Mattermost Markdown, byte-identical to Teleport's `lib.MarkdownEscape`.

A reason is user input: it is fenced in a code block so Markdown in it renders as text, every backtick is
followed by U+FEFF so it cannot close the fence, and it is cut at a budget counted in UTF-8 bytes (as Go
iterates a string by byte offset) so a post stays under Mattermost's length limit.
"""

from __future__ import annotations

__all__ = ["go_trim_space", "markdown_escape"]

# Go's unicode.IsSpace set, used by strings.TrimSpace. Python's str.strip() differs: it also strips
# U+001C..U+001F, which Go keeps.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_FENCE = "```"
_TRUNCATED = "``` (truncated)"


def go_trim_space(text: str) -> str:
    """Trim leading and trailing whitespace exactly as Go's strings.TrimSpace does."""
    start, end = 0, len(text)
    while start < end and text[start] in _GO_SPACE:
        start += 1
    while end > start and text[end - 1] in _GO_SPACE:
        end -= 1
    return text[start:end]


def _utf8_len(char: str) -> int:
    # "surrogatepass" so a lone surrogate (possible in a Python str, never in Go) still has a width.
    return len(char.encode("utf-8", "surrogatepass"))


def markdown_escape(text: str, limit: int = 500) -> str:
    """Fence `text` as a Markdown code block, neutralise backticks and truncate it to `limit` units.

    Whitespace-only input gives the literal ``(empty)``. The budget counts UTF-8 bytes of the trimmed
    text; each backtick costs one extra unit for the U+FEFF that follows it.
    """
    trimmed = go_trim_space(text)
    if not trimmed:
        return "(empty)"
    parts = [_FENCE, "\n"]
    budget = limit
    offset = 0
    for char in trimmed:
        if offset >= budget:
            parts.append(_TRUNCATED)
            return "".join(parts)
        parts.append(char)
        if char == "`":
            parts.append("\ufeff")
            budget -= 1
        offset += _utf8_len(char)
    parts.append(_FENCE)
    return "".join(parts)
