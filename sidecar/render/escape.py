"""Reason escaping for Mattermost Markdown, byte-identical to Teleport's `lib.MarkdownEscape` where that is safe.

A reason is user input: it is fenced in a code block so Markdown in it renders as text, every backtick is
followed by U+FEFF so it cannot close the fence, and it is cut at a budget counted in UTF-8 bytes (as Go
iterates a string by byte offset) so a post stays under Mattermost's length limit.

Go's fence opens on the same line as the label (`**Reason**: ```\n...```), which Markdown reads as a code
*span* inside a paragraph, and a paragraph ends at a blank line or at a line that starts a block (a quote,
heading, list item, fence, ...): whatever follows such a line renders as Markdown and its @channel pings
everyone. Go lets that through; here such a reason (and only such a reason: every other one keeps Go's bytes)
starts its fence on a line of its own, a real fenced block that no line of the reason can end.
"""

from __future__ import annotations

import re

__all__ = ["breaks_code_span", "go_trim_space", "markdown_escape"]

# Go's unicode.IsSpace set, used by strings.TrimSpace. Python's str.strip() differs: it also strips
# U+001C..U+001F, which Go keeps.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_FENCE = "```"
_TRUNCATED = "``` (truncated)"

# A line that can start a block where a paragraph runs (CommonMark and GFM tables): heading, quote, list item,
# fence, thematic break or setext underline, HTML block, table row. Deliberately broad: a false positive only
# costs Go's exact bytes for that reason, a miss would let the rest of it out of the code span.
_BLOCK_START = re.compile(
    r" {0,3}(#{1,6}(\s|$)|>|[-+*](\s|$)|\d{1,9}[.)](\s|$)|```|~~~|([-*_])(\s*\3){2,}\s*$|[=-]+\s*$|<[A-Za-z/!?]|\|)"
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
    parts: list[str] = []
    budget = limit
    offset = 0
    truncated = False
    for char in trimmed:
        if offset >= budget:
            truncated = True
            break
        parts.append(char)
        if char == "`":
            parts.append("\ufeff")
            budget -= 1
        offset += _utf8_len(char)
    body = "".join(parts)
    if breaks_code_span(body):
        # A fenced block of its own: the closing fence must stand alone on its line, so whatever the caller
        # appends ("." after a review reason) and the truncation note start on the next line.
        return f"\n{_FENCE}\n{body}\n{_FENCE}\n" + ("(truncated)" if truncated else "")
    return f"{_FENCE}\n{body}" + (_TRUNCATED if truncated else _FENCE)


def breaks_code_span(text: str) -> bool:
    """True when a line of `text` would end a code span that runs inside a paragraph (see the module docstring)."""
    # Blank to CommonMark means spaces and tabs only; other Unicode spaces make a line of text.
    return any(not line.strip(" \t") or _BLOCK_START.match(line) for line in _LINE_BREAK.split(text))
