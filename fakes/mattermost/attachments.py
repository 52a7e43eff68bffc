"""Message attachments and their buttons as the server keeps them (`MessageAttachment`, `PostAction`).

Every save and every answer passes `props.attachments` through the Go structs: each attachment is decoded
into `MessageAttachment` (keys matched case-insensitively, unknown keys dropped, an attachment whose fields
have the wrong JSON type dropped whole) and written back with the struct's keys. Missing action ids are
generated on save; the `integration` (url and context) is kept in storage and removed from every post sent to
a client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

ATTACHMENTS = "attachments"
_INT64 = 2**63
_SLACK_LINK = re.compile(r"<([^<|]+)\|([^>]+)>")


class _Mismatch(Exception):
    """A value of the wrong JSON type for its Go field: the whole attachment fails to decode."""


Decoder = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Mismatch
    return value


def _int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
        raise _Mismatch
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Mismatch
    return value


def _anything(value: Any) -> Any:
    return value


def _slack_bool(value: Any) -> bool:
    # SlackCompatibleBool accepts true/false as literals or strings, in any case; anything else (null too) fails.
    text = str(value).lower() if isinstance(value, bool | str) else None
    if text == "true":
        return True
    if text == "false":
        return False
    raise _Mismatch


def _decode_struct(
    raw: Any,
    fields: dict[str, Decoder],
    nullable: frozenset[str] = frozenset(),
    null_fails: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Go's struct decoding: exact key first, else a case-insensitive match; a later duplicate wins; `null`
    leaves a value field unchanged, clears a pointer, slice or interface field (`nullable`) and reaches a
    custom unmarshaler (`null_fails`: SlackCompatibleBool refuses it)."""
    if not isinstance(raw, dict):
        raise _Mismatch
    folded = {name.lower(): name for name in fields}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key if key in fields else folded.get(str(key).lower())
        if name is None:
            continue
        if value is None and name in nullable:
            values[name] = None
        elif value is None and name not in null_fails:
            continue
        else:
            values[name] = fields[name](value)
    return values


def _field(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    fields: dict[str, Decoder] = {"title": _string, "value": _anything, "short": _slack_bool}
    values = _decode_struct(raw, fields, nullable=frozenset({"value"}), null_fails=frozenset({"short"}))
    return {"title": values.get("title", ""), "value": values.get("value"), "short": values.get("short", False)}


def _option(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    values = _decode_struct(raw, {"text": _string, "value": _string})
    return {"text": values.get("text", ""), "value": values.get("value", "")}


def _context(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Mismatch
    return copy.deepcopy(raw)


def _integration(raw: Any) -> dict[str, Any]:
    values = _decode_struct(raw, {"url": _string, "context": _context}, nullable=frozenset({"context"}))
    out: dict[str, Any] = {}
    if values.get("url"):
        out["url"] = values["url"]
    if values.get("context"):
        out["context"] = values["context"]
    return out


def _list_of(item: Callable[[Any], Any]) -> Decoder:
    def decode(raw: Any) -> list[Any]:
        if not isinstance(raw, list):
            raise _Mismatch
        return [item(element) for element in raw]

    return decode


_ACTION_STRINGS = ("id", "type", "name", "tooltip")
_ACTION_FIELDS: dict[str, Decoder] = {
    **dict.fromkeys(_ACTION_STRINGS, _string),
    "disabled": _bool,
    "style": _string,
    "data_source": _string,
    "options": _list_of(_option),
    "default_option": _string,
    "integration": _integration,
    "cookie": _string,
}


def _action(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    values = _decode_struct(raw, _ACTION_FIELDS, nullable=frozenset({"options", "integration"}))
    out: dict[str, Any] = {}
    for name in _ACTION_FIELDS:  # PostAction's key order; every field is omitempty
        value = values.get(name)
        if name == "integration":
            if value is not None:
                out[name] = value
        elif value:
            out[name] = value
    return out


_ATTACHMENT_STRINGS = (
    "fallback", "color", "pretext", "author_name", "author_link", "author_icon", "title", "title_link", "text",
)
_ATTACHMENT_TAIL = ("image_url", "thumb_url", "footer", "footer_icon")
_ATTACHMENT_FIELDS: dict[str, Decoder] = {
    "id": _int64,
    **dict.fromkeys(_ATTACHMENT_STRINGS, _string),
    "fields": _list_of(_field),
    **dict.fromkeys(_ATTACHMENT_TAIL, _string),
    "ts": _anything,
    "actions": _list_of(_action),
}


def _attachment(raw: Any) -> dict[str, Any]:
    nullable = frozenset({"fields", "ts", "actions"})
    values = {} if raw is None else _decode_struct(raw, _ATTACHMENT_FIELDS, nullable=nullable)
    out: dict[str, Any] = {"id": values.get("id", 0)}
    for name in (*_ATTACHMENT_STRINGS, "fields", *_ATTACHMENT_TAIL, "ts"):
        if name == "fields":
            fields = values.get("fields")
            out[name] = None if fields is None else [f for f in fields if f is not None]
        elif name == "ts":
            out[name] = values.get("ts")
        else:
            out[name] = values.get(name, "")
    actions = [a for a in values.get("actions") or [] if a is not None]
    if actions:
        out["actions"] = actions
    return out


def retype(props: dict[str, Any], new_id: Callable[[], str]) -> None:
    """`GenerateActionIds` on save: attachments through the Go structs, then an id for every action lacking one.

    A non-list `attachments` becomes null; list items that fail to decode are dropped (a null item becomes an
    empty attachment, as Go decodes `null` into a zero struct).
    """
    raw = props.get(ATTACHMENTS)
    if raw is None:
        return
    attachments: list[dict[str, Any]] | None = None
    if isinstance(raw, list):
        attachments = []
        for item in raw:
            try:
                attachments.append(_attachment(item))
            except _Mismatch:
                continue
        for attachment in attachments:
            for action in attachment.get("actions", ()):
                if not action.get("id"):
                    # Key order matters to clients only loosely, but keep `id` first as PostAction writes it.
                    rest = dict(action)
                    action.clear()
                    action["id"] = new_id()
                    action.update({k: v for k, v in rest.items() if k != "id"})
    props[ATTACHMENTS] = attachments


def stripped(props: dict[str, Any]) -> dict[str, Any]:
    """A copy of the props as clients get them: no action carries its `integration`."""
    out = copy.deepcopy(props)
    for action in _actions(out):
        action.pop("integration", None)
    return out


def find_action(props: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    """`Post.GetAction`: the first action with this id, or None."""
    return next((action for action in _actions(props) if action.get("id") == action_id), None)


def _actions(props: dict[str, Any]) -> list[dict[str, Any]]:
    attachments = props.get(ATTACHMENTS)
    if not isinstance(attachments, list):
        return []
    return [a for attachment in attachments if isinstance(attachment, dict) for a in attachment.get("actions", ())]


_COMPARED_ATTACHMENT_KEYS = ("id", *_ATTACHMENT_STRINGS, *_ATTACHMENT_TAIL, "ts")


def attachments_equal(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """`Post.AttachmentsEqual`: what decides whether an edit that keeps the message still sets `edit_at`.

    Like `MessageAttachment.Equals` and `PostAction.Equals`, an action's style, tooltip and disabled flag
    are not compared.
    """
    before = _attachment_list(old)
    after = _attachment_list(new)
    if len(before) != len(after):
        return False
    return all(_attachment_equal(a, b) for a, b in zip(before, after, strict=True))


def _attachment_list(props: dict[str, Any]) -> list[dict[str, Any]]:
    attachments = props.get(ATTACHMENTS)
    return [a for a in attachments if isinstance(a, dict)] if isinstance(attachments, list) else []


def _attachment_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if any(a.get(key) != b.get(key) for key in _COMPARED_ATTACHMENT_KEYS):
        return False
    if (a.get("fields") or []) != (b.get("fields") or []):
        return False
    actions_a, actions_b = a.get("actions", []), b.get("actions", [])
    return len(actions_a) == len(actions_b) and all(
        _action_key(x) == _action_key(y) for x, y in zip(actions_a, actions_b, strict=True)
    )


def _action_key(action: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(action.get(k) for k in ("id", "type", "name", "data_source", "default_option", "cookie",
                                           "options", "integration"))


def slack_links_to_markdown(text: str) -> str:
    """`ParseSlackLinksToMarkdown`: `<url|label>` becomes `[label](url)`."""
    return _SLACK_LINK.sub(r"[\2](\1)", text)
