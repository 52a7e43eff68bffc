"""Untrusted text (names, roles, resources, reasons) made inert for Mattermost, for the rich style.

Every untrusted value goes into a code span or a fenced code block: Mattermost renders neither Markdown,
links, autolinks, emoji nor HTML there, and its server looks for @-mentions only in plain Markdown text
nodes, so `@channel` inside code pings nobody. What could break out of the code is removed first:

- backticks become U+02CB (a look-alike), so nothing in the value can close the span or the fence;
- line breaks become U+2424 in a span (a blank line would end the paragraph and with it the span), and are
  kept only inside fenced blocks, which run until their closing fence whatever lines they hold;
- control and format characters (zero-width, bidi overrides and isolates, soft hyphen, tag characters, lone
  surrogates) and the letters that draw nothing become U+FFFD: visible, so a name cannot pass for another;
- runs of combining marks are cut to a few, so a value cannot draw over the lines around it.

The plain-text form (for `fallback`, which is never rendered as Markdown) gets the same cleaning.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "EMPTY",
    "clean",
    "code",
    "code_block",
    "mention",
    "plain",
    "truncation_marker",
]

EMPTY = "(empty)"
_REPLACEMENT = "\ufffd"
_NEWLINE_SYMBOL = "\u2424"
_BACKTICK_LOOKALIKE = "\u02cb"
_ELLIPSIS = "\u2026"
_MAX_COMBINING = 2
# Python's str.splitlines set, after "\r\n" has been folded into "\n".
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Letters and symbols that draw nothing (Hangul fillers, Braille blank), used for invisible names.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Mattermost's username rule, plus a leading letter (current servers require one; it also keeps `@---` out);
# the reserved words would be group mentions.
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_RESERVED_MENTIONS = frozenset({"all", "channel", "here", "matterbot", "system"})


def clean(text: str, *, keep_newlines: bool) -> str:
    """`text` with invisible and control characters made visible and line breaks kept or shown as U+2424."""
    out: list[str] = []
    marks = 0
    for char in text.replace("\r\n", "\n"):
        if char in _LINE_BREAKS:
            out.append("\n" if keep_newlines else _NEWLINE_SYMBOL)
            marks = 0
        elif char == "\t":
            out.append(" ")
            marks = 0
        elif char in _BLANK_LETTERS or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            out.append(_REPLACEMENT)
            marks = 0
        elif unicodedata.category(char) in ("Mn", "Me"):
            marks += 1
            if marks <= _MAX_COMBINING:
                out.append(char)
        else:
            out.append(char)
            marks = 0
    return "".join(out)


def truncation_marker(hidden: int) -> str:
    """The visible note for text cut short: `… (truncated, 1,234 more characters)`."""
    noun = "character" if hidden == 1 else "characters"
    return f"{_ELLIPSIS} (truncated, {hidden:,} more {noun})"


def _prepared(text: str, limit: int, *, keep_newlines: bool) -> tuple[str, int]:
    # Only a bounded prefix is cleaned, so a 100,000-character reason costs no more than a short one; the
    # bound leaves room for what cleaning drops (CRLF pairs, excess combining marks). Returns the cleaned
    # start and the count of code points beyond it.
    stripped = text.strip()
    bound = 2 * limit + 64
    cleaned = clean(stripped[:bound], keep_newlines=keep_newlines).strip()
    return cleaned, max(len(stripped) - bound, 0)


def _one_line(text: str, limit: int, *, note: bool) -> tuple[str, int]:
    # A cut shows as a trailing … inside the value, or, with `note`, as the marker after it instead.
    cleaned, beyond = _prepared(text, limit, keep_newlines=False)
    if not beyond and len(cleaned) <= limit:
        return cleaned, 0
    keep = min(limit if note else max(limit - 1, 0), len(cleaned))
    shown = cleaned[:keep].rstrip() if note else cleaned[:keep]
    hidden = len(cleaned) - len(shown) + beyond
    return (shown if note else shown + _ELLIPSIS), hidden


def _noted(hidden: int, note: bool) -> str:
    return " " + truncation_marker(hidden) if note and hidden else ""


def code(text: str, limit: int, *, note: bool = False) -> str:
    """An inline code span holding `text` on one line, cut to `limit` code points; `(empty)` for blank text.

    A cut ends the value in …; with `note` it is told after the span instead (`… (truncated, N more
    characters)`), for reasons.
    """
    content, hidden = _one_line(text, limit, note=note)
    if not content:
        return EMPTY
    return "`" + content.replace("`", _BACKTICK_LOOKALIKE) + "`" + _noted(hidden, note)


def plain(text: str, limit: int, *, note: bool = False) -> str:
    """`text` on one line for plain-text places (the attachment fallback), cut to `limit` code points."""
    content, hidden = _one_line(text, limit, note=note)
    return content + _noted(hidden, note) if content else EMPTY


def code_block(text: str, limit: int, max_lines: int) -> str:
    """A fenced code block holding `text` (line breaks kept), cut to `limit` code points and `max_lines` lines.

    When cut, the truncation marker follows the closing fence, outside the code, so it reads as a note.
    """
    cleaned, beyond = _prepared(text, limit, keep_newlines=True)
    if not cleaned:
        return EMPTY
    kept = "\n".join(cleaned.split("\n", max_lines)[:max_lines])[:limit].rstrip()
    hidden = len(cleaned) - len(kept) + beyond
    block = "```\n" + kept.replace("`", _BACKTICK_LOOKALIKE) + "\n```"
    return f"{block}\n{truncation_marker(hidden)}" if hidden else block


def mention(username: str | None) -> str | None:
    """`@username` for a valid Mattermost username that is not a group mention word, else None."""
    if username is None or not _USERNAME.fullmatch(username) or username in _RESERVED_MENTIONS:
        return None
    return "@" + username
