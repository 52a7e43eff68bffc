"""Hostile names, roles, resources and reasons stay inert in both styles.

The oracle: render once with a nasty string in one place and once with the benign "x" there, replace every
code span and fenced code block by a placeholder, and require the two skeletons to be equal. Whatever the
nasty string holds, it then sits wholly inside code, where Mattermost renders no Markdown, links, HTML or
emoji and its server finds no @-mentions (it looks for them only in plain text nodes), and it changed
nothing around it: no new line, field, link or mention. On top, every string the rich style emits is free
of control, zero-width and bidi characters. The classic style keeps the Go plugin's bytes, so only what
its escaping promises is checked: each reason stays inside its ``` span.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sidecar.domain.model import RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text
from sidecar.render.dm import dm_announced, dm_expired, dm_resolved, dm_review
from sidecar.render.escape import go_trim_space
from sidecar.render.rich import render_reminder, render_request, render_review_reply
from sidecar.render.view import RequestView, ResourceView, ReviewerView, RichPost
from tests.unit.test_render_rich import NOW, pending_view

NASTY: dict[str, str] = {
    "bold": "**bold** _it_ ~~strike~~",
    "at_channel": "@channel",
    "at_here_all": "hey @here and @all, look",
    "at_user": "@bob please",
    "mention_after_newline": "fine\n@channel",
    "blank_line": "fine\n\n@channel now",
    "crlf": "a\r\n\r\n@here",
    "line_separators": "a\u2028b\u2029@all\x85c",
    "md_link": "[Approve](https://evil.example/approve)",
    "image": "![x](https://evil.example/pixel.png)",
    "autolink": "see https://evil.example and www.evil.example",
    "angle_link": "<https://evil.example>",
    "slack_link": "<https://evil.example|Approve>",
    "slack_mentions": "<!channel> <!here> <@U123>",
    "html": "<a href='https://evil.example'>Approve</a><script>alert(1)</script>",
    "img_tag": "<img src=x onerror=alert(1)>",
    "entities": "&lt;b&gt; &amp; &#64;channel",
    "backtick": "`",
    "backticks": "x` @channel `y",
    "fence": "```\n@channel\n```",
    "long_fence": "````\n@here",
    "tilde_fence": "~~~\n@all\n~~~",
    "heading": "# Approved",
    "quote": "> Approved by admin",
    "list": "- [x] approved\n1. done",
    "table": "| a | b |\n|---|---|\n| @channel | y |",
    "rule": "---",
    "fake_status": "need access\n**Status**: \u2705 APPROVED",
    "emoji": ":white_check_mark: :+1:",
    "channel_link": "~town-square ~off-topic",
    "hashtag": "#approved",
    "latex": "$\\LaTeX$ $$x^2$$",
    "backslashes": "\\@channel \\`x\\`",
    "zero_width": "ad\u200bmin\u200c\u200d\u2060\ufeff",
    "bidi": "\u202eevil\u202c \u2066x\u2069 \u200e\u200f\u061c",
    "soft_hyphen_tags": "a\u00adb\U000e0041\U000e0042",
    "controls": "a\x00b\x07c\x1b[31md\x7f\x9b",
    "blank_letters": "\u3164\u115f\u2800",
    "zalgo": "Z\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307a\u0308\u0309\u030a\u030b\u030c",
    "lone_surrogate": "a\ud800b",
    "tab": "a\tb",
    "pipe": "a | b",
}

# Every untrusted place in the view, as a function that puts a value there.
PLACES: dict[str, Callable[[RequestView, str], RequestView]] = {
    "requester": lambda v, s: dataclasses.replace(v, requester=s),
    "role": lambda v, s: dataclasses.replace(v, roles=(s, "node-access"), logins_by_role={s: ("root",)}),
    "login": lambda v, s: dataclasses.replace(v, logins_by_role={"node-access": (s, "deploy")}),
    "cluster": lambda v, s: dataclasses.replace(v, cluster=s),
    "resource_name": lambda v, s: dataclasses.replace(v, resources=(ResourceView("node", s, "web-1"),)),
    "resource_friendly": lambda v, s: dataclasses.replace(v, resources=(ResourceView("node", "id", s),)),
    "resource_kind": lambda v, s: dataclasses.replace(v, resources=(ResourceView(s, "id"),)),
    "resource_sub": lambda v, s: dataclasses.replace(v, resources=(ResourceView("pod", "k", sub_resource=s),)),
    "resource_cluster": lambda v, s: dataclasses.replace(v, resources=(ResourceView("db", "d", cluster=s),)),
    "reason": lambda v, s: dataclasses.replace(v, reason=s),
    "resolve_reason": lambda v, s: dataclasses.replace(v, resolve_reason=s),
    "reviewer": lambda v, s: dataclasses.replace(v, suggested_reviewers=(ReviewerView(s),)),
    "reviewer_username": lambda v, s: dataclasses.replace(v, suggested_reviewers=(ReviewerView("r", s),)),
    "review_author": lambda v, s: dataclasses.replace(v, reviews=(Review(s, RequestState.APPROVED, "ok", NOW),)),
    "review_reason": lambda v, s: dataclasses.replace(v, reviews=(Review("r", RequestState.DENIED, s, NOW),)),
    "request_id": lambda v, s: dataclasses.replace(v, request_id=s),
}

RENDERERS: dict[str, Callable[[RequestView, str], RichPost]] = {
    "root_pending": lambda v, _: render_request(v),
    "root_pending_oss_full": lambda v, _: render_request(dataclasses.replace(v, link=None), full_message=True),
    "root_approved": lambda v, _: render_request(dataclasses.replace(v, resolution=Resolution.APPROVED)),
    "root_denied_full": lambda v, _: render_request(
        dataclasses.replace(v, resolution=Resolution.DENIED), full_message=True
    ),
    "reply": lambda v, _: render_review_reply(v, 0) if v.reviews else RichPost(""),
    "reminder": lambda v, _: render_reminder(v, number=1, of=2),
    "escalation_oss": lambda v, _: render_reminder(dataclasses.replace(v, link=None), escalation=True),
    "dm_announced": lambda v, s: dm_announced(v, ["team/channel", s]),
    "dm_review": lambda v, _: dm_review(v, 0) if v.reviews else RichPost(""),
    "dm_approved": lambda v, _: dm_resolved(dataclasses.replace(v, resolution=Resolution.APPROVED)),
    "dm_denied": lambda v, _: dm_resolved(dataclasses.replace(v, resolution=Resolution.DENIED)),
    "dm_expired": lambda v, _: dm_expired(dataclasses.replace(v, resolution=Resolution.EXPIRED)),
}

_CODE = re.compile(r"```\n.*?\n```|`[^`\n]*`", re.DOTALL)
_MARKER = re.compile(r" ?\u2026 \(truncated, [\d,]+ more characters?\)")
# Characters that must never reach a post: controls, format characters (zero-width, bidi), surrogates.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs"}
# Mattermost's server splits words on everything but letters, digits and these; a mention is such a word.
_MENTION = re.compile(r"(?<![\w:.\-_@])@[\w:.\-_]+")


def _skeleton(markdown: str) -> str:
    return _MARKER.sub("", _CODE.sub("\u27e8code\u27e9", markdown))


def _markdown_parts(post: RichPost) -> Iterator[tuple[str, str]]:
    yield "message", post.message
    for index, attachment in enumerate(post.attachments):
        for key in ("pretext", "text", "title"):
            if key in attachment:
                yield f"{index}.{key}", attachment[key]
        for number, item in enumerate(attachment.get("fields", ())):
            yield f"{index}.field{number}.title", item["title"]
            yield f"{index}.field{number}.value", item["value"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _invisible(text: str) -> list[str]:
    # U+FE0F (emoji presentation) is a mark, not a format character; ours are plain emoji.
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in _INVISIBLE_CATEGORIES]


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
@pytest.mark.parametrize("place", sorted(PLACES))
def test_rich_nasty_strings_stay_inside_code(place: str, renderer: str) -> None:
    base = pending_view(reviews=(Review("r", RequestState.DENIED, "x", NOW),))
    # A benign value renders as code like the nasty ones; a valid username would be a mention instead.
    plain_value = "X" if place == "reviewer_username" else "x"
    benign = RENDERERS[renderer](PLACES[place](base, plain_value), plain_value)
    expected = dict(_markdown_parts(benign))
    for name, nasty in NASTY.items():
        post = RENDERERS[renderer](PLACES[place](base, nasty), nasty)
        parts = dict(_markdown_parts(post))
        assert parts.keys() == expected.keys(), name
        for key, markdown in parts.items():
            assert _skeleton(markdown) == _skeleton(expected[key]), (name, key, markdown)
            assert _MENTION.findall(_skeleton(markdown)) == _MENTION.findall(_skeleton(expected[key])), (name, key)
        for text in _strings(post.attachments):
            assert not _invisible(text), (name, text)
        assert not _invisible(post.message), name
        # The fallback is plain text: one line per fact, as for the benign value.
        for attachment, benign_attachment in zip(post.attachments, benign.attachments, strict=True):
            assert attachment["fallback"].count("\n") == benign_attachment["fallback"].count("\n"), name


def test_only_resolved_reviewers_ping() -> None:
    view = pending_view(suggested_reviewers=(ReviewerView("x@example.com", "bob"), ReviewerView("@channel", "all")))
    for post in (render_request(view), render_reminder(view)):
        mentions = {m for _, part in _markdown_parts(post) for m in _MENTION.findall(_skeleton(part))}
        assert mentions == {"@bob"}


def test_nasty_strings_as_shown() -> None:
    # What a reader sees: line breaks as U+2424, backticks as U+02CB, invisible characters as U+FFFD.
    view = pending_view(
        requester="`@channel`\n**x**",
        roles=("a\u202eb",),
        reason="```\n@here\n```",
        resources=(),
        suggested_reviewers=(),
    )
    message = render_request(view).message
    assert "`\u02cb@channel\u02cb\u2424**x**` requests role `a\ufffdb`" in message
    [attachment] = render_request(view).attachments
    [reason] = [f["value"] for f in attachment["fields"] if f["title"] == "Reason"]
    assert reason == "```\n\u02cb\u02cb\u02cb\n@here\n\u02cb\u02cb\u02cb\n```"


def test_combining_marks_are_capped() -> None:
    [attachment] = render_request(pending_view(requester="Z" + "\u0300" * 50)).attachments
    assert attachment["fields"][0]["value"] == "`Z\u0300\u0300`"


# --- classic: the Go plugin's bytes; only the reasons are escaped, and that must hold -----------------------

_CLASSIC_CODE = re.compile(r"```\n.*?```", re.DOTALL)
SETTINGS = RenderSettings(web_proxy_url="https://teleport.example.com")


def _classic_texts(reason: str) -> dict[str, str]:
    data = PluginData(user="alice", roles=("editor",), request_reason=reason)
    review = Review("bob", RequestState.DENIED, reason, NOW)
    return {
        "pending": root_post_text("ID", data, SETTINGS),
        "pending_oss": root_post_text("ID", data, RenderSettings()),
        "denied": root_post_text(
            "ID", dataclasses.replace(data, resolution=Resolution.DENIED, resolve_reason=reason), SETTINGS
        ),
        "reply": review_reply_text(review),
    }


# A line that may start a block where a paragraph runs (CommonMark and GFM tables): a blank line, heading,
# quote, list item, fence, thematic break or setext underline, HTML block, table row. Deliberately broad.
_BLOCK_START = re.compile(
    r" {0,3}(#{1,6}(\s|$)|>|[-+*](\s|$)|\d{1,9}[.)](\s|$)|```|~~~|([-*_])(\s*\3){2,}\s*$|[=-]+\s*$|<[A-Za-z/!?]|\|)"
)


def _breaks_classic_span(reason: str) -> bool:
    lines = re.split(r"\r\n|\r|\n", go_trim_space(reason))
    return any(not line.strip() or _BLOCK_START.match(line) for line in lines)


SAFE_IN_CLASSIC = {name: s for name, s in NASTY.items() if not _breaks_classic_span(s)}


@pytest.mark.parametrize("name", sorted(SAFE_IN_CLASSIC))
def test_classic_reasons_stay_inside_their_code_span(name: str) -> None:
    nasty = SAFE_IN_CLASSIC[name]
    benign = _classic_texts("x")
    for kind, text in _classic_texts(nasty).items():
        assert _CLASSIC_CODE.sub("<code>", text) == _CLASSIC_CODE.sub("<code>", benign[kind]), (kind, text)
        for span in _CLASSIC_CODE.findall(text):
            # No run of three backticks inside: U+FEFF follows each one, so the span cannot be closed early.
            assert "```" not in span[3:-3], span


@pytest.mark.parametrize("kind", ["pending", "denied", "reply"])
def test_classic_long_reasons_stay_cut_at_500(kind: str) -> None:
    text = _classic_texts("@channel " * 1000)[kind]
    [*_, last] = _CLASSIC_CODE.findall(text)
    assert len(last.encode("utf-8")) <= 500 + len("```\n```")
    assert "``` (truncated)" in text


BREAKING = ["fine\n\n@channel now", "fine\n> @channel now", "fine\n# @here", "ok\n- @all of you", "x\n \t\n@here"]


@pytest.mark.parametrize("reason", BREAKING)
def test_classic_reason_that_starts_a_block_gets_a_fenced_block_of_its_own(reason: str) -> None:
    # Go's "**Reason**: ```\nfine\n\n@channel now```" renders "@channel now```" as a paragraph of its own,
    # outside any code, so the server finds the mention (the Go plugin's gap). Such a reason, and only such a
    # reason, is fenced on lines of its own instead: a real fenced block, which no line of it can end.
    for kind, text in _classic_texts(reason).items():
        assert "\n```\n" in text, (kind, text)
        fenced = re.search(r"\n```\n(.*?)\n```\n", text, re.DOTALL)
        assert fenced is not None, (kind, text)
        assert "```" not in fenced.group(1), (kind, text)  # its backticks carry U+FEFF


@pytest.mark.parametrize("kind", ["pending", "denied", "reply"])
def test_classic_long_breaking_reasons_are_cut_after_a_closed_fence(kind: str) -> None:
    text = _classic_texts("fine\n\n" + "@channel " * 1000)[kind]
    assert "\n```\n(truncated)" in text


@pytest.mark.parametrize("reason", ["fine\n\n@channel now", "fine\n> @channel now", "fine\n# @here"])
def test_rich_fenced_reason_holds_lines_that_start_blocks(reason: str) -> None:
    [attachment] = render_request(pending_view(reason=reason)).attachments
    [value] = [f["value"] for f in attachment["fields"] if f["title"] == "Reason"]
    assert value == f"```\n{reason}\n```"


# --- a second oracle: a real CommonMark parser (markdown-it-py, when installed) ------------------------------

_CODE_TOKENS = {"code_inline", "fence", "code_block"}


def _commonmark_shape(markdown: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The token types and tags with code contents masked, and the text outside code (where mentions live)."""
    markdown_it = pytest.importorskip("markdown_it")
    parser = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    shape: list[tuple[str, str]] = []
    texts: list[str] = []
    for token in parser.parse(markdown):
        for item in [token, *(token.children or [])]:
            if item.type == "inline":
                continue
            if item.type in _CODE_TOKENS:
                shape.append((item.type, "code"))
            elif item.type == "text":
                shape.append(("text", item.content))
                texts.append(item.content)
            else:
                shape.append((item.type, item.tag))
    return shape, texts


@pytest.mark.parametrize("renderer", ["root_pending", "root_denied_full", "reply", "reminder", "dm_approved"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_rich_nasty_strings_parse_as_code_in_commonmark(place: str, renderer: str) -> None:
    base = pending_view(reviews=(Review("r", RequestState.DENIED, "x", NOW),))
    plain_value = "X" if place == "reviewer_username" else "x"
    expected = {
        k: _commonmark_shape(v)
        for k, v in _markdown_parts(RENDERERS[renderer](PLACES[place](base, plain_value), plain_value))
    }
    for name, nasty in NASTY.items():
        post = RENDERERS[renderer](PLACES[place](base, nasty), nasty)
        for key, markdown in _markdown_parts(post):
            shape, texts = _commonmark_shape(markdown)
            assert shape == expected[key][0], (name, key, markdown)
            assert not any("@channel" in t or "@here" in t or "@all" in t for t in texts), (name, key)


@pytest.mark.parametrize("name", sorted(NASTY))
def test_no_classic_reason_mentions_anyone_in_commonmark(name: str) -> None:
    for kind, text in _classic_texts(NASTY[name]).items():
        _, texts = _commonmark_shape(text)
        assert not any("@channel" in t or "@here" in t or "@all" in t for t in texts), (kind, text)


@pytest.mark.parametrize("reason", BREAKING)
def test_classic_breaking_reasons_parse_as_code_in_commonmark(reason: str) -> None:
    for kind, text in _classic_texts(reason).items():
        _, texts = _commonmark_shape(text)
        assert not any("@channel" in t or "@here" in t or "@all" in t for t in texts), (kind, text)


@pytest.mark.parametrize("name", sorted(SAFE_IN_CLASSIC))
def test_classic_safe_reasons_parse_as_code_in_commonmark(name: str) -> None:
    benign = {kind: _commonmark_shape(text)[0] for kind, text in _classic_texts("x").items()}
    for kind, text in _classic_texts(SAFE_IN_CLASSIC[name]).items():
        shape, texts = _commonmark_shape(text)
        assert shape == benign[kind], (kind, text)
        assert not any("@channel" in t or "@here" in t or "@all" in t for t in texts), (kind, text)


def test_the_go_plugins_gap_is_real_in_commonmark() -> None:
    # What the Go plugin sends for such a reason (the label and Go's fence on one line): the mention gets out.
    _, texts = _commonmark_shape("**Reason**: ```\nfine\n> @channel now```")
    assert any("@channel" in t for t in texts)
