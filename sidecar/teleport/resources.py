"""Teleport resources as `tctl` reads and writes them (YAML or JSON) ↔ their wire protos.

Only access monitoring rules so far: `kind`, `version`, `sub_kind`, `metadata{name, namespace, description,
labels, expires, revision}` and `spec{subjects, states, condition, notification{name, recipients},
automatic_review{integration, decision}, desired_state}`, the proto field names Teleport uses as JSON names.
Used by `route --rules FILE` and by the test harness's `tctl` (fakes/tctl.py).

Reading is stricter than Go's JSON decoding on purpose: an unknown field or a value of the wrong type (such as
`condition: true`, which YAML reads as a boolean) is a ConfigError naming the source and the field, instead of
being dropped silently. `kind` and `version` are copied as written; whether they are right is for the server's
checks (or the caller) to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from sidecar.domain.errors import ConfigError
from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2

KIND_ACCESS_MONITORING_RULE = "access_monitoring_rule"

_RULE_KEYS = frozenset({"kind", "version", "sub_kind", "metadata", "spec"})
_METADATA_KEYS = frozenset({"name", "namespace", "description", "labels", "expires", "revision"})
_SPEC_KEYS = frozenset({"subjects", "states", "condition", "notification", "automatic_review", "desired_state"})
_NOTIFICATION_KEYS = frozenset({"name", "recipients"})
_AUTOMATIC_REVIEW_KEYS = frozenset({"integration", "decision"})


def yaml_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The non-empty documents of a YAML (or JSON) stream, each a mapping; ConfigError otherwise."""
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    documents: list[dict[str, Any]] = []
    for index, doc in enumerate(loaded, start=1):
        if doc is None:
            continue  # an empty document, e.g. after a trailing `---`
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: document {index} is {_type_name(doc)}, expected a resource (a mapping)")
        documents.append(doc)
    return documents


def access_monitoring_rule_from_dict(doc: Mapping[str, Any], where: str) -> amr_pb2.AccessMonitoringRule:
    """One rule in Teleport's resource shape as its proto; `where` prefixes error messages (e.g. the file)."""
    _check_keys(doc, _RULE_KEYS, where, "")
    rule = amr_pb2.AccessMonitoringRule(
        kind=_string(doc, "kind", where, ""),
        version=_string(doc, "version", where, ""),
        sub_kind=_string(doc, "sub_kind", where, ""),
    )
    metadata = _mapping(doc, "metadata", where, "")
    if metadata is not None:
        _read_metadata(metadata, rule, where)
    spec = _mapping(doc, "spec", where, "")
    if spec is not None:
        _read_spec(spec, rule, where)
    return rule


def access_monitoring_rules_from_yaml(text: str, source: str) -> list[amr_pb2.AccessMonitoringRule]:
    """Every document of a YAML stream as a rule; a document of another kind is a ConfigError."""
    rules = []
    for index, doc in enumerate(yaml_documents(text, source), start=1):
        where = f"{source}: document {index}"
        kind = doc.get("kind")
        if kind != KIND_ACCESS_MONITORING_RULE:
            raise ConfigError(f"{where}: kind is {kind!r}, expected {KIND_ACCESS_MONITORING_RULE!r}")
        rules.append(access_monitoring_rule_from_dict(doc, where))
    return rules


def access_monitoring_rule_to_dict(rule: amr_pb2.AccessMonitoringRule) -> dict[str, Any]:
    """A rule in Teleport's resource shape, empty fields left out (as Go's `omitempty` tags do)."""
    out: dict[str, Any] = {"kind": rule.kind, "version": rule.version, "sub_kind": rule.sub_kind}
    if rule.HasField("metadata"):
        meta = rule.metadata
        metadata: dict[str, Any] = {
            "name": meta.name,
            "namespace": meta.namespace,
            "description": meta.description,
            "labels": dict(meta.labels),
            "revision": meta.revision,
        }
        if meta.HasField("expires"):
            metadata["expires"] = meta.expires.ToJsonString()
        out["metadata"] = _without_empty(metadata)
    if rule.HasField("spec"):
        spec = rule.spec
        body: dict[str, Any] = {
            "subjects": list(spec.subjects),
            "states": list(spec.states),
            "condition": spec.condition,
            "desired_state": spec.desired_state,
        }
        if spec.HasField("notification"):
            note = spec.notification
            body["notification"] = _without_empty({"name": note.name, "recipients": list(note.recipients)})
        if spec.HasField("automatic_review"):
            review = spec.automatic_review
            body["automatic_review"] = _without_empty({"integration": review.integration, "decision": review.decision})
        out["spec"] = _without_empty(body, keep=("notification", "automatic_review"))
    return _without_empty(out, keep=("metadata", "spec"))


# ----------------------------------------------------------------------------------------------- reading


def _read_metadata(body: Mapping[str, Any], rule: amr_pb2.AccessMonitoringRule, where: str) -> None:
    _check_keys(body, _METADATA_KEYS, where, "metadata.")
    meta = rule.metadata
    meta.SetInParent()
    meta.name = _string(body, "name", where, "metadata.")
    meta.namespace = _string(body, "namespace", where, "metadata.")
    meta.description = _string(body, "description", where, "metadata.")
    meta.revision = _string(body, "revision", where, "metadata.")
    labels = _mapping(body, "labels", where, "metadata.")
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"{where}: metadata.labels: expected string keys and values, got {key!r}: {value!r}")
        meta.labels[key] = value
    expires = body.get("expires")
    if expires is not None:
        meta.expires.FromDatetime(_timestamp(expires, where))


def _read_spec(body: Mapping[str, Any], rule: amr_pb2.AccessMonitoringRule, where: str) -> None:
    _check_keys(body, _SPEC_KEYS, where, "spec.")
    spec = rule.spec
    spec.SetInParent()
    spec.subjects.extend(_strings(body, "subjects", where, "spec."))
    spec.states.extend(_strings(body, "states", where, "spec."))
    spec.condition = _string(body, "condition", where, "spec.")
    spec.desired_state = _string(body, "desired_state", where, "spec.")
    note = _mapping(body, "notification", where, "spec.")
    if note is not None:
        _check_keys(note, _NOTIFICATION_KEYS, where, "spec.notification.")
        spec.notification.SetInParent()
        spec.notification.name = _string(note, "name", where, "spec.notification.")
        spec.notification.recipients.extend(_strings(note, "recipients", where, "spec.notification."))
    review = _mapping(body, "automatic_review", where, "spec.")
    if review is not None:
        _check_keys(review, _AUTOMATIC_REVIEW_KEYS, where, "spec.automatic_review.")
        spec.automatic_review.SetInParent()
        spec.automatic_review.integration = _string(review, "integration", where, "spec.automatic_review.")
        spec.automatic_review.decision = _string(review, "decision", where, "spec.automatic_review.")


def _check_keys(body: Mapping[str, Any], allowed: frozenset[str], where: str, path: str) -> None:
    unknown = sorted(str(key) for key in body if key not in allowed)
    if unknown:
        fields = ", ".join(path + key for key in unknown)
        raise ConfigError(f"{where}: unknown field(s) {fields} (allowed: {', '.join(sorted(allowed))})")


def _string(body: Mapping[str, Any], key: str, where: str, path: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        hint = f" (quote it: '{_yaml_scalar(value)}')" if isinstance(value, bool | int | float) else ""
        raise ConfigError(f"{where}: {path}{key}: expected a string, got {_type_name(value)}{hint}")
    return value


def _strings(body: Mapping[str, Any], key: str, where: str, path: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: {path}{key}: expected a list of strings, got {value!r}")
    return value


def _mapping(body: Mapping[str, Any], key: str, where: str, path: str) -> Mapping[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {path}{key}: expected a mapping, got {_type_name(value)}")
    return value


def _timestamp(value: object, where: str) -> datetime:
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as a datetime
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ConfigError(f"{where}: metadata.expires: expected an RFC 3339 time, got {value!r}")


def _type_name(value: object) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _yaml_scalar(value: bool | int | float) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# ----------------------------------------------------------------------------------------------- writing


def _without_empty(body: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Drop "", [] and {} values, except the keys in `keep` (messages that are present but empty)."""
    return {key: value for key, value in body.items() if key in keep or value not in ("", [], {})}
