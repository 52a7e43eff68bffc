"""Interactive dialogs: `POST /api/v4/actions/dialogs/open` and `POST /api/v4/actions/dialogs/submit`.

Open (`openDialog`, no session needed): the body must decode (400 `dialog`), name a `url` (400 `url`) and carry
a trigger id that verifies and is younger than `OutgoingIntegrationRequestsTimeout` (400
`interactive_message.decode_trigger_id.*`). The dialog goes to the user named inside the trigger (recorded
here; a browser would get it over its websocket). `Dialog.IsValid` problems are only logged. A trigger id may
open any number of dialogs while it is fresh: the server keeps no record of used ones.

Submit (`submitDialog`, session required): the client sends `url`, `callback_id`, `state`, `submission`,
`channel_id`, `team_id`, `cancelled`; the server replaces only `user_id` (from the session), checks the
channel (404 unknown, 403 unreadable) and `view_team` on `team_id` (403, also for an empty team id), then
POSTs `{type: "dialog_submission", callback_id, state, user_id, channel_id, team_id, submission, cancelled}`
to that URL and returns the integration's `SubmitDialogResponse` (`{}`, `{"error"}`, `{"errors"}`, ...).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fakes.mattermost import channels, errors, gojson, outbound, teams
from fakes.mattermost.ids import random_id
from fakes.mattermost.outbound import IntegrationCall
from fakes.mattermost.records import OpenedDialog, User
from fakes.mattermost.state import State

TITLE_MAX = 24
DISPLAY_NAME_MAX = 24
NAME_MAX = 300
HELP_TEXT_MAX = 150
TEXT_MAX = 150
TEXTAREA_MAX = 3000
SELECT_MAX = 3000
BOOL_MAX = 150
_TEXT_SUBTYPES = frozenset({"", "text", "email", "number", "tel", "url", "password"})

_DIALOG_STRINGS = ("callback_id", "title", "introduction_text", "icon_url", "submit_label", "state", "source_url")
_ELEMENT_STRINGS = (
    "display_name", "name", "type", "subtype", "default", "placeholder", "help_text", "data_source",
    "data_source_url", "min_date", "max_date",
)
_ELEMENT_BOOLS = ("optional", "multiselect", "refresh")
_ELEMENT_INTS = ("min_length", "max_length", "time_interval")
_SUBMIT_STRINGS = ("type", "url", "callback_id", "state", "user_id", "channel_id", "team_id")
_RESPONSE_FIELDS = ("error", "errors", "type", "form")


class _BadBody(Exception):
    """The body does not decode into the Go request struct."""


def open_dialog(state: State, body: Any) -> OpenedDialog:
    """Verify and record one dialog for the user the trigger id names."""
    try:
        request = _open_request(body)
    except _BadBody as exc:
        raise errors.invalid_param("dialog") from exc
    if not request["url"]:
        raise errors.invalid_param("url")
    timeout = state.settings.outgoing_integration_requests_timeout
    client_trigger_id, user_id = state.signer.verify(request["trigger_id"], state.now(), timeout)
    dialog = request["dialog"]
    opened = OpenedDialog(
        id=random_id(),
        user_id=user_id,
        trigger_id=client_trigger_id,
        url=request["url"],
        dialog=dialog,
        at=state.now(),
        problems=tuple(dialog_problems(dialog)),
    )
    state.dialogs.append(opened)
    return opened


def _open_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _BadBody
    fields = gojson.struct_fields(body, ("trigger_id", "url", "dialog"))
    for name in ("trigger_id", "url"):
        if fields.get(name) is None:
            fields[name] = ""
        elif not isinstance(fields[name], str):
            raise _BadBody
    fields["dialog"] = _dialog(fields.get("dialog"))
    return fields


def _dialog(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _BadBody
    fields = gojson.struct_fields(raw, (*_DIALOG_STRINGS, "elements", "notify_on_cancel"))
    _check_types(fields, _DIALOG_STRINGS, ("notify_on_cancel",), ())
    elements = fields.get("elements")
    if elements is not None:
        if not isinstance(elements, list):
            raise _BadBody
        for element in elements:
            _element(element)
    out: dict[str, Any] = gojson.normalize(raw)  # recorded as sent (sorted keys), once the types are known good
    return out


def _element(raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise _BadBody
    fields = gojson.struct_fields(raw, (*_ELEMENT_STRINGS, *_ELEMENT_BOOLS, *_ELEMENT_INTS, "options"))
    _check_types(fields, _ELEMENT_STRINGS, _ELEMENT_BOOLS, _ELEMENT_INTS)
    options = fields.get("options")
    if options is not None:
        if not isinstance(options, list):
            raise _BadBody
        for option in options:
            if option is None:
                continue
            if not isinstance(option, dict):
                raise _BadBody
            _check_types(gojson.struct_fields(option, ("text", "value")), ("text", "value"), (), ())


def _check_types(
    fields: dict[str, Any], strings: tuple[str, ...], bools: tuple[str, ...], ints: tuple[str, ...]
) -> None:
    for name, value in fields.items():
        if value is None:
            continue
        if name in strings and not isinstance(value, str):
            raise _BadBody
        if name in bools and not isinstance(value, bool):
            raise _BadBody
        if name in ints and (isinstance(value, bool) or not isinstance(value, int)):
            raise _BadBody


def dialog_problems(dialog: dict[str, Any]) -> list[str]:
    """What `Dialog.IsValid` objects to (lengths are in bytes, as Go's `len`)."""
    problems: list[str] = []
    title = _text(dialog, "title")
    if not title or len(title.encode()) > TITLE_MAX:
        problems.append(f"invalid dialog title {title!r}")
    icon = _text(dialog, "icon_url")
    if icon and not _is_http_url(icon):
        problems.append("invalid icon url")
    elements = [gojson.struct_fields(e, (*_ELEMENT_STRINGS, *_ELEMENT_BOOLS, *_ELEMENT_INTS, "options"))
                for e in dialog.get("elements") or [] if isinstance(e, dict)]
    for name, count in Counter(_text(e, "name") for e in elements).items():
        if count > 1:
            problems.append(f"duplicate dialog element {name!r}")
    for element in elements:
        problems += [f"{_text(element, 'name')!r} field is not valid: {p}" for p in _element_problems(element)]
    return problems


def _element_problems(element: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    min_length, max_length = int(element.get("min_length") or 0), int(element.get("max_length") or 0)
    if min_length < 0:
        problems.append(f"min length cannot be a negative number, got {min_length}")
    if min_length > max_length:
        problems.append(f"min length should be less then max length, got {min_length} > {max_length}")
    for field_name, key, limit in (("DisplayName", "display_name", DISPLAY_NAME_MAX), ("Name", "name", NAME_MAX),
                                   ("HelpText", "help_text", HELP_TEXT_MAX)):
        problems += _length(field_name, _text(element, key), limit, required=key != "help_text")
    kind = _text(element, "type")
    if element.get("multiselect") and kind != "select":
        problems.append(f"multiselect can only be used with select elements, got type {kind!r}")
    values = [_text(o, "value") for o in element.get("options") or [] if isinstance(o, dict)]
    default = _text(element, "default")
    if kind in ("text", "textarea"):
        limit = TEXT_MAX if kind == "text" else TEXTAREA_MAX
        problems += _length("Default", default, limit) + _length("Placeholder", _text(element, "placeholder"), limit)
        if _text(element, "subtype") not in _TEXT_SUBTYPES:
            problems.append(f"invalid subtype {kind!r}")
    elif kind == "select":
        problems += _length("Default", default, SELECT_MAX) + _length("Placeholder", _text(element, "placeholder"),
                                                                       SELECT_MAX)
        source = _text(element, "data_source")
        if source not in ("", "users", "channels", "dynamic"):
            problems.append(f"invalid data source {source!r}, allowed are 'users', 'channels', or 'dynamic'")
        if source == "" and default and default not in values and not element.get("multiselect"):
            problems.append(f"default value {default!r} doesn't exist in options ")
    elif kind == "bool":
        if default not in ("", "true", "false"):
            problems.append("invalid default of bool")
        problems += _length("Placeholder", _text(element, "placeholder"), BOOL_MAX)
    elif kind == "radio":
        if default and default not in values:
            problems.append(f"default value {default!r} doesn't exist in options ")
    elif kind in ("date", "datetime"):
        problems += _length("Default", default, TEXT_MAX) + _length("Placeholder", _text(element, "placeholder"),
                                                                     TEXT_MAX)
    else:
        problems.append(f"invalid element type: {kind!r}")
    return problems


def _length(field_name: str, value: str, limit: int, *, required: bool = False) -> list[str]:
    size = len(value.encode())
    if required and size == 0:
        return [f"{field_name} cannot be empty"]
    if size > limit:
        return [f"{field_name} cannot be longer than {limit} characters, got {size}"]
    return []


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _is_http_url(value: str) -> bool:
    try:
        url = urlsplit(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname)


async def submit_dialog(state: State, http: aiohttp.ClientSession, user: User, body: Any) -> dict[str, Any]:
    """Forward one submission to the URL the client names; the answer as the server returns it."""
    try:
        request = _submit_request(body)
    except _BadBody as exc:
        raise errors.invalid_param("dialog") from exc
    url = request["url"]
    if not url:
        raise errors.invalid_param("url")
    channel = state.channels.get(request["channel_id"])
    if channel is None:
        raise errors.channel_id_not_found()
    if not channels.can_read_channel(state, user, channel):
        raise errors.forbidden(user.id, "read_channel_content")
    team_id = request["team_id"]
    if not team_id or not (user.is_admin or teams.is_team_member(state, user.id, team_id)):
        raise errors.forbidden(user.id, "view_team")
    forwarded: dict[str, Any] = {
        "type": "refresh" if request["type"] == "refresh" else "dialog_submission",
        "callback_id": request["callback_id"],
        "state": request["state"],
        "user_id": user.id,
        "channel_id": request["channel_id"],
        "team_id": team_id,
        "submission": request["submission"],
        "cancelled": request["cancelled"],
    }
    payload = gojson.marshal(forwarded)
    record = IntegrationCall("dialog_submission", url, user.id, state.now(), payload.decode("utf-8"), {})
    state.integration_calls.append(record)
    try:
        raw = await outbound.post_json(http, state.settings, url, payload, record)
        answer = _submit_answer(raw)
    except errors.ApiError as exc:
        record.outcome = {"status": exc.status, "id": exc.error_id}
        raise
    record.outcome = {"status": 200, **answer}
    return answer


def _submit_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _BadBody
    fields = gojson.struct_fields(body, (*_SUBMIT_STRINGS, "submission", "cancelled"))
    for name in _SUBMIT_STRINGS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise _BadBody
        fields[name] = value or ""
    submission = fields.get("submission")
    if submission is not None and not isinstance(submission, dict):
        raise _BadBody
    fields["submission"] = None if submission is None else gojson.normalize(submission)
    cancelled = fields.get("cancelled")
    if cancelled is not None and not isinstance(cancelled, bool):
        raise _BadBody
    fields["cancelled"] = bool(cancelled)
    return fields


def _submit_answer(raw: bytes) -> dict[str, Any]:
    """`SubmitDialogResponse` re-encoded as the server writes it (unknown keys dropped, all omitempty)."""
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.dialog_response_undecodable() from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise errors.dialog_response_undecodable()
    fields = gojson.struct_fields(doc, _RESPONSE_FIELDS)
    error, field_errors, kind, form = (fields.get(k) for k in _RESPONSE_FIELDS)
    if error is not None and not isinstance(error, str):
        raise errors.dialog_response_undecodable()
    if kind is not None and not isinstance(kind, str):
        raise errors.dialog_response_undecodable()
    if field_errors is not None and not (
        isinstance(field_errors, dict) and all(isinstance(v, str) for v in field_errors.values())
    ):
        raise errors.dialog_response_undecodable()
    if form is not None:
        try:
            form = _dialog(form)
        except _BadBody as exc:
            raise errors.dialog_response_undecodable() from exc
    _check_answer(error or "", field_errors or {}, kind or "", form)
    out: dict[str, Any] = {}
    if error:
        out["error"] = error
    if field_errors:
        out["errors"] = dict(sorted(field_errors.items()))
    if kind:
        out["type"] = kind
    if form is not None:
        out["form"] = form
    return out


def _check_answer(error: str, field_errors: dict[str, str], kind: str, form: dict[str, Any] | None) -> None:
    # SubmitDialogResponse.IsValid; an invalid multi-step form is only logged by the server.
    if error or field_errors:
        return
    if kind in ("", "ok", "navigate"):
        if form is not None:
            raise errors.dialog_response_invalid(f"form field must be nil for type {kind!r}")
    elif kind == "form":
        if form is None:
            raise errors.dialog_response_invalid("form field is required for form type")
    else:
        raise errors.dialog_response_invalid(f"invalid type {kind!r}, must be one of: empty, ok, form, navigate")
