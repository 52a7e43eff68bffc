"""The plugin-data codec: `PluginData` ↔ the flat string map the Go plugin stores in Teleport.

Keys and encodings are the Go plugin's (TP `lib/plugindata/access_request.go` + `accessrequest/plugindata.go`),
so a deployment can switch between the Go plugin and this sidecar without losing state:

    user, roles (","-joined), resources (JSON list), request_reason, reviews_count ("" for 0),
    resolution, resolve_reason, max_duration (RFC 3339), system_annotations (JSON object of lists),
    suggested_reviewers (JSON list), logins_by_role (JSON object of lists), messages ("chan/post,...")

Two keys are ours. `tm_delivery`: a JSON object with the work still owed to Mattermost (see
`sidecar/domain/record.py` Delivery); a record without it is one Go wrote: nothing is owed for what Go did.
`tm_view`: the facts the rich texts, the requester's messages and reminders need beyond Go's keys (Facts),
written only when one of those is on. The Go plugin neither reads nor writes either.

Optional values encode to "" when empty; Teleport deletes a key set to "", so stored maps omit them.
JSON is written the way Go's json.Marshal writes it: no spaces, sorted object keys, `<`, `>`, `&`,
U+2028 and U+2029 escaped, and an empty list of a map entry written as `null` (a nil Go slice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sidecar.domain.errors import PluginDataError
from sidecar.domain.model import PostRef, RequestState, Review
from sidecar.domain.record import Claim, Delivery, Facts, PluginData, Resolution

__all__ = ["KEYS", "decode", "encode", "go_json"]

KEYS: tuple[str, ...] = (
    "user",
    "roles",
    "resources",
    "request_reason",
    "reviews_count",
    "resolution",
    "resolve_reason",
    "max_duration",
    "system_annotations",
    "suggested_reviewers",
    "logins_by_role",
    "messages",
    "tm_delivery",
    "tm_view",
)

DELIVERY_KEY = "tm_delivery"
FACTS_KEY = "tm_view"
#: The newest permanent failures kept in the record (older ones were reported already).
MAX_FAILURES_KEPT = 20

# Keys older (Slack-era) plugin versions wrote for a single message; read, never written.
_LEGACY_CHANNEL_KEY = "channel_id"
_LEGACY_TIMESTAMP_KEY = "timestamp"


def go_json(value: object) -> str:
    """Serialise like Go's json.Marshal: compact, sorted keys, HTML-safe escapes, raw non-ASCII."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # These characters can only occur inside JSON strings, so replacing them everywhere is safe.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _format_rfc3339(moment: datetime) -> str:
    # Go's time.RFC3339 layout: whole seconds, "Z" for UTC, otherwise "+hh:mm".
    if moment.tzinfo is None:
        raise PluginDataError("max_duration", "timestamp has no time zone")
    offset = moment.utcoffset() or timedelta(0)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if offset == timedelta(0):
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{base}{sign}{hours:02d}:{minutes:02d}"


def _encode_list_map(mapping: Mapping[str, tuple[str, ...]]) -> str:
    if not mapping:
        return ""
    # An empty list is a nil slice on the Go side (protobuf leaves it unset), which Marshal writes as null.
    return go_json({name: (list(values) if values else None) for name, values in mapping.items()})


def _encode_messages(messages: tuple[PostRef, ...]) -> str:
    for ref in messages:
        for part in (ref.channel_id, ref.post_id):
            if not part or "/" in part or "," in part:
                raise PluginDataError("messages", f"post reference {part!r} is empty or contains '/' or ','")
    return ",".join(f"{ref.channel_id}/{ref.post_id}" for ref in messages)


def encode(data: PluginData) -> dict[str, str]:
    """Encode every key; empty values are "" (the Go CAS sends exactly this for the empty record)."""
    return {
        "user": data.user,
        "roles": ",".join(data.roles),
        "resources": go_json(list(data.resources)) if data.resources else "",
        "request_reason": data.request_reason,
        "reviews_count": str(data.reviews_count) if data.reviews_count else "",
        "resolution": data.resolution.value,
        "resolve_reason": data.resolve_reason,
        "max_duration": _format_rfc3339(data.max_duration) if data.max_duration is not None else "",
        "system_annotations": _encode_list_map(data.system_annotations),
        "suggested_reviewers": go_json(list(data.suggested_reviewers)) if data.suggested_reviewers else "",
        "logins_by_role": _encode_list_map(data.logins_by_role),
        "messages": _encode_messages(data.messages),
        DELIVERY_KEY: _encode_delivery(data.delivery),
        FACTS_KEY: _encode_facts(data.facts),
    }


def _load_json(key: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PluginDataError(key, f"invalid JSON: {exc}") from None


def _string_list(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PluginDataError(key, "expected a JSON array of strings")
    return tuple(value)


def _decode_list(data: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = data.get(key, "")
    return _string_list(key, _load_json(key, raw)) if raw else ()


def _decode_list_map(data: Mapping[str, str], key: str) -> dict[str, tuple[str, ...]]:
    raw = data.get(key, "")
    if not raw:
        return {}
    value = _load_json(key, raw)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PluginDataError(key, "expected a JSON object of string arrays")
    return {name: _string_list(key, items) for name, items in value.items()}


def _decode_count(raw: str) -> int:
    if not raw:
        return 0
    # Go's strconv.Atoi: optional sign and ASCII digits only (int() would also take "1_0" or " 1").
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isascii() or not digits.isdigit():
        raise PluginDataError("reviews_count", f"not an integer: {raw!r}")
    count = int(raw)
    if count < 0:
        raise PluginDataError("reviews_count", f"negative count: {raw!r}")
    return count


def _decode_resolution(raw: str) -> Resolution:
    try:
        return Resolution(raw)
    except ValueError:
        raise PluginDataError("resolution", f"unknown resolution tag {raw!r}") from None


def _decode_time(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise PluginDataError("max_duration", f"not an RFC 3339 timestamp: {raw!r}") from None
    if moment.tzinfo is None:
        raise PluginDataError("max_duration", f"timestamp has no time zone: {raw!r}")
    return moment


def _decode_messages(data: Mapping[str, str]) -> tuple[PostRef, ...]:
    refs: list[PostRef] = []
    raw = data.get("messages", "")
    if raw:
        for item in raw.split(","):
            parts = item.split("/")
            # Go skips entries that are not exactly "<channel>/<post>".
            if len(parts) == 2:
                refs.append(PostRef(channel_id=parts[0], post_id=parts[1]))
    channel, timestamp = data.get(_LEGACY_CHANNEL_KEY, ""), data.get(_LEGACY_TIMESTAMP_KEY, "")
    if channel and timestamp:
        legacy = PostRef(channel_id=channel, post_id=timestamp)
        # Go appends it unconditionally; once re-encoded into `messages` it would count twice.
        if legacy not in refs:
            refs.append(legacy)
    return tuple(refs)


def decode(data: Mapping[str, str]) -> PluginData:
    """Decode a stored map (missing keys read as ""). Raises PluginDataError naming a malformed key."""
    roles = data.get("roles", "")
    return PluginData(
        user=data.get("user", ""),
        roles=tuple(roles.split(",")) if roles else (),
        resources=_decode_list(data, "resources"),
        request_reason=data.get("request_reason", ""),
        reviews_count=_decode_count(data.get("reviews_count", "")),
        resolution=_decode_resolution(data.get("resolution", "")),
        resolve_reason=data.get("resolve_reason", ""),
        max_duration=_decode_time(data.get("max_duration", "")),
        system_annotations=_decode_list_map(data, "system_annotations"),
        suggested_reviewers=_decode_list(data, "suggested_reviewers"),
        logins_by_role=_decode_list_map(data, "logins_by_role"),
        messages=_decode_messages(data),
        delivery=_decode_delivery(data.get(DELIVERY_KEY, "")),
        facts=_decode_facts(data.get(FACTS_KEY, "")),
    )


def _encode_delivery(delivery: Delivery) -> str:
    if not delivery.tracked:
        return ""
    document: dict[str, Any] = {
        "v": 1,
        "since": delivery.since_ms,
        "roots": list(delivery.roots_owed),
        "replies": dict(delivery.replies_done),
        "version": delivery.edit_version,
        "edits": dict(delivery.edits_done),
        "failed": list(delivery.failed[-MAX_FAILURES_KEPT:]),
    }
    if delivery.claim is not None:
        document["claim"] = [delivery.claim.owner, delivery.claim.until]
    # Written only when used, so a record of a deployment without these features keeps its former shape.
    optional: dict[str, Any] = {
        "requester": delivery.requester,
        "dms": delivery.dms_done,
        "rounds": delivery.reminder_rounds,
        "reminded_at": delivery.reminder_last_ms,
        "reminded": dict(delivery.reminded),
        "escalated": delivery.escalated,
        "escalation": list(delivery.escalation_owed),
        "notes": list(delivery.notes_owed),
    }
    document.update({key: value for key, value in optional.items() if value})
    return go_json(document)


def _decode_delivery(raw: str) -> Delivery:
    if not raw:
        return Delivery()
    value = _load_json(DELIVERY_KEY, raw)
    if not isinstance(value, dict) or value.get("v") != 1:
        raise PluginDataError(DELIVERY_KEY, "expected a JSON object with \"v\": 1")
    try:
        roots = tuple(str(recipient) for recipient in value["roots"])
        claim_value = value.get("claim")
        claim = Claim(owner=str(claim_value[0]), until=float(claim_value[1])) if claim_value else None
        return Delivery(
            tracked=True,
            since_ms=_whole(value["since"]),
            roots_owed=roots,
            replies_done={str(post): _whole(count) for post, count in value["replies"].items()},
            edit_version=_whole(value["version"]),
            edits_done={str(post): _whole(version) for post, version in value["edits"].items()},
            failed=tuple(str(item) for item in value["failed"]),
            claim=claim,
            requester=str(value.get("requester", "")),
            dms_done=_whole(value.get("dms", 0)),
            reminder_rounds=_whole(value.get("rounds", 0)),
            reminder_last_ms=_whole(value.get("reminded_at", 0)),
            reminded={str(post): _whole(count) for post, count in value.get("reminded", {}).items()},
            escalated=value.get("escalated", False) is True,
            escalation_owed=tuple(str(recipient) for recipient in value.get("escalation", ())),
            notes_owed=tuple(str(post) for post in value.get("notes", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PluginDataError(DELIVERY_KEY, f"malformed owed-work record: {exc!r}") from None


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp has no time zone: {value!r}")
    return moment


def _encode_facts(facts: Facts | None) -> str:
    if facts is None:
        return ""
    document: dict[str, Any] = {
        "v": 1,
        "cluster": facts.cluster,
        "recipients": list(facts.recipients),
        "reviewers": [list(pair) for pair in facts.reviewers],
        "names": dict(facts.friendly_names),
        "approvals": facts.approvals_required,
        "created": _time(facts.created),
        "access_start": _time(facts.access_start),
        "access_expires": _time(facts.access_expires),
        "request_expires": _time(facts.request_expires),
        "reviews": [
            {"author": r.author, "state": r.proposed_state.value, "reason": r.reason, "created": _time(r.created)}
            for r in facts.reviews
        ],
    }
    return go_json(document)


def _decode_facts(raw: str) -> Facts | None:
    if not raw:
        return None
    value = _load_json(FACTS_KEY, raw)
    if not isinstance(value, dict) or value.get("v") != 1:
        raise PluginDataError(FACTS_KEY, "expected a JSON object with \"v\": 1")
    try:
        approvals = value.get("approvals")
        reviews = []
        for item in value.get("reviews", ()):
            created = _parse_time(item["created"])
            if created is None:
                raise ValueError("a review has no creation time")
            reviews.append(Review(str(item["author"]), RequestState(item["state"]), str(item["reason"]), created))
        return Facts(
            cluster=str(value.get("cluster", "")),
            recipients=tuple(str(r) for r in value.get("recipients", ())),
            reviewers=tuple((str(name), str(username)) for name, username in value.get("reviewers", ())),
            friendly_names={str(k): str(v) for k, v in value.get("names", {}).items()},
            approvals_required=None if approvals is None else _whole(approvals),
            created=_parse_time(value.get("created")),
            access_start=_parse_time(value.get("access_start")),
            access_expires=_parse_time(value.get("access_expires")),
            request_expires=_parse_time(value.get("request_expires")),
            reviews=tuple(reviews),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PluginDataError(FACTS_KEY, f"malformed request facts: {exc!r}") from None


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value
