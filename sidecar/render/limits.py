"""Post size safety: every post we render fits the server's limit, cut with a visible marker, never refused.

How Mattermost counts (`model.Post.IsValid`): the `message` may hold at most `MaxPostSize` code points
(`utf8.RuneCountInString`): 16,383 on current servers, 4,000 on servers whose database kept the old
column. Attachments are not counted there; they live in `props`, whose JSON may hold 800,000 code points.
We hold ourselves to a stricter rule, so a card never outgrows what the server would take as a message:

- the message plus the visible text of every attachment (pretext, title, text, footer, field titles and
  values) is at most the limit;
- each attachment's `fallback` (an alternative to the card, never shown with it) is at most the limit.

Both imply the server's two checks. The rich renderers try levels of detail from generous to terse
(`DETAIL_LEVELS`) and take the first that fits; `hard_fit` is the last resort and always fits. Classic
posts keep their bytes whenever they fit (`fit_classic`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.render.inert import truncation_marker
from sidecar.render.view import RichPost

__all__ = [
    "DEFAULT_LIMIT",
    "DETAIL_LEVELS",
    "LEGACY_LIMIT",
    "MIN_LIMIT",
    "Detail",
    "check_limit",
    "cut_markdown",
    "cut_plain",
    "fit_classic",
    "fit_levels",
    "fits",
    "hard_fit",
    "smaller_limit",
    "visible_size",
]

DEFAULT_LIMIT = 16383
LEGACY_LIMIT = 4000
# Below this not even a truncated headline is readable; no Mattermost server has a smaller limit.
MIN_LIMIT = 200

_VISIBLE_KEYS = ("pretext", "title", "text", "footer", "author_name")
_FENCE = "```"
_CLASSIC_LINE_MIN = 20  # a shortened classic line keeps at least this much of its text


@dataclass(frozen=True)
class Detail:
    """How much of each unbounded part a rendering shows: code points per value, items per list."""

    name: int  # one user, role, login, resource or reviewer name
    reason: int  # the request reason
    reason_lines: int
    resolve_reason: int
    review_reason: int
    roles: int
    resources: int
    logins: int  # per role
    reviewers: int
    reviews: int  # the latest ones are kept


DETAIL_LEVELS: tuple[Detail, ...] = (
    Detail(100, 4000, 40, 1000, 500, 30, 50, 20, 20, 20),
    Detail(64, 1000, 20, 500, 200, 15, 20, 10, 10, 10),
    Detail(48, 400, 10, 200, 100, 8, 10, 5, 5, 5),
    Detail(32, 120, 4, 80, 60, 4, 3, 3, 3, 3),
    Detail(24, 40, 2, 40, 30, 2, 1, 1, 2, 1),
)


def check_limit(limit: int) -> int:
    """`limit`, or ValueError when it is below `MIN_LIMIT`."""
    if limit < MIN_LIMIT:
        raise ValueError(f"post size limit {limit} is below the minimum of {MIN_LIMIT}")
    return limit


def smaller_limit(limit: int) -> int | None:
    """The limit to re-render with after the server refused a post rendered for `limit` as too long.

    First the old servers' 4,000, then halves down to `MIN_LIMIT`; None when there is nothing smaller to try.
    """
    if limit > LEGACY_LIMIT:
        return LEGACY_LIMIT
    if limit <= MIN_LIMIT:
        return None
    return max(limit // 2, MIN_LIMIT)


def _attachment_size(attachment: dict[str, Any]) -> int:
    size = sum(len(str(attachment.get(key, ""))) for key in _VISIBLE_KEYS)
    for item in attachment.get("fields", ()):
        size += len(str(item.get("title", ""))) + len(str(item.get("value", "")))
    return size


def visible_size(post: RichPost) -> int:
    """Code points of the message plus the visible text of every attachment (not the fallbacks)."""
    return len(post.message) + sum(_attachment_size(a) for a in post.attachments)


def fits(post: RichPost, limit: int) -> bool:
    """Whether `post` keeps both rules of this module for `limit`."""
    return visible_size(post) <= limit and all(len(a.get("fallback", "")) <= limit for a in post.attachments)


def cut_plain(text: str, limit: int) -> str:
    """Plain text cut to `limit` code points, ending in the truncation marker when cut."""
    if len(text) <= limit:
        return text
    marker = " " + truncation_marker(len(text))  # the widest marker it could need
    keep = max(limit - len(marker), 0)
    return text[:keep] + " " + truncation_marker(len(text) - keep)


def _code_state(text: str) -> str:
    """Where the end of `text` (our own rich Markdown) is: "outside", "span" or "fence"."""
    state = "outside"
    i = 0
    while i < len(text):
        at_line_start = i == 0 or text[i - 1] == "\n"
        if state != "span" and at_line_start and text.startswith(_FENCE, i):
            state = "outside" if state == "fence" else "fence"
            i += len(_FENCE)
            continue
        if state != "fence" and text[i] == "`":
            state = "outside" if state == "span" else "span"
        i += 1
    return state


def cut_markdown(text: str, limit: int) -> str:
    """Rich Markdown cut to `limit` code points with the marker, never leaving a code span or fence open.

    Untrusted values sit in code; closing what the cut opened keeps them there. The cut never ends on a
    backtick or inside a word holding `@`, so it cannot make a fence, a span or a mention out of a part.
    """
    if len(text) <= limit:
        return text
    worst = "\n```\n" + truncation_marker(len(text))
    cut = max(limit - len(worst), 0)
    while cut > 0 and text[cut - 1] == "`":
        cut -= 1
    state = _code_state(text[:cut])
    if state == "outside":
        word_start = max(text.rfind(" ", 0, cut), text.rfind("\n", 0, cut)) + 1
        if "@" in text[word_start:cut]:
            cut = word_start
    closing = {"outside": "", "span": "`", "fence": "\n```"}[state]
    head = text[:cut] + closing
    separator = "\n" if state == "fence" or not head or head.endswith("\n") else " "
    return head + separator + truncation_marker(len(text) - cut)


def hard_fit(post: RichPost, limit: int) -> RichPost:
    """`post` made to fit `limit` by force: fallbacks cut, then trailing fields dropped, then the message cut.

    For posts the levels of detail could not bring under the limit (tiny limits); the result always fits.
    """
    attachments = [dict(a) for a in post.attachments]
    for attachment in attachments:
        if "fallback" in attachment:
            attachment["fallback"] = cut_plain(attachment["fallback"], limit)
    message = post.message
    for attachment in attachments:
        fields = list(attachment.get("fields", ()))
        dropped = 0
        while fields and visible_size(RichPost(message, attachments)) > limit:
            fields.pop()
            dropped += 1
            note = {"title": "", "value": f"\u2026 and {dropped} more fields", "short": False}
            attachment["fields"] = [*fields, note]
    attachments_size = sum(_attachment_size(a) for a in attachments)
    if attachments_size + len(message) > limit:
        if attachments_size > limit // 2:
            attachments = []  # the message alone carries the headline
            attachments_size = 0
        message = cut_markdown(message, limit - attachments_size)
    return RichPost(message=message, attachments=attachments)


def fit_levels(build: Callable[[Detail], RichPost], limit: int) -> RichPost:
    """The first of `build`'s renderings, from the most detailed level down, that fits `limit`; else forced."""
    check_limit(limit)
    post = build(DETAIL_LEVELS[0])
    for detail in DETAIL_LEVELS[1:]:
        if fits(post, limit):
            return post
        post = build(detail)
    return post if fits(post, limit) else hard_fit(post, limit)


def _classic_plain_lines(lines: list[str]) -> list[int]:
    # Lines wholly outside classic's ``` spans (its reasons): shortening them cannot open or close code.
    plain: list[int] = []
    in_code = False
    for index, line in enumerate(lines):
        fences = line.count(_FENCE)
        if not in_code and fences == 0:
            plain.append(index)
        if fences % 2:
            in_code = not in_code
    return plain


def _cut_classic_whole(text: str, limit: int) -> str:
    worst = "```\n" + truncation_marker(len(text))
    cut = max(limit - len(worst), 0)
    while cut > 0 and text[cut - 1] in "`\ufeff":
        cut -= 1
    head = text[:cut]
    if head.count(_FENCE) % 2:
        head += _FENCE
    return head + "\n" + truncation_marker(len(text) - cut)


def _shorten_line(line: str, cap: int) -> str:
    if len(line) <= cap:
        return line
    keep = max(cap - len(" " + truncation_marker(len(line))), _CLASSIC_LINE_MIN)
    shortened = line[:keep] + " " + truncation_marker(len(line) - keep)
    return shortened if len(shortened) < len(line) else line


def fit_classic(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """A classic post text within `limit` code points: unchanged whenever it fits, byte for byte.

    Over the limit, the longest lines outside the reasons' code (user, roles) are shortened to a common
    length, each ending in the truncation marker, so the status, link and review commands survive; only if
    that is not enough is the whole text cut at the end, closing an open code span.
    """
    check_limit(limit)
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    plain = set(_classic_plain_lines(lines))

    def shortened(cap: int) -> list[str]:
        return [_shorten_line(line, cap) if i in plain else line for i, line in enumerate(lines)]

    def size(cap: int) -> int:
        return sum(len(line) for line in shortened(cap)) + len(lines) - 1

    # The largest common length for the long lines that fits: size() grows with the cap.
    low, high = 0, max(len(line) for line in lines)
    while low < high:
        middle = (low + high + 1) // 2
        if size(middle) <= limit:
            low = middle
        else:
            high = middle - 1
    result = "\n".join(shortened(low))
    return result if len(result) <= limit else _cut_classic_whole(result, limit)
