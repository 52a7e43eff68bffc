"""Teleport resources from files, as `tctl get ... --format=yaml` (or `--format=json`) prints them.

A file holds one resource, a list of them (tctl's JSON), or several YAML documents separated by `---`.
Field names are Teleport's JSON names (Go's struct tags): an access request is `kind: access_request` with
`metadata.name` (its id) and `spec.{user, roles, state, created, expires, request_reason,
suggested_reviewers, system_annotations, resource_expiry}`; a user is `kind: user` with `metadata.name` and
`spec.traits` (name → list of values); rules go through `sidecar/teleport/resources.py`. Every problem is a
ConfigError whose message names the file and the field (`route` exits 1 with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sidecar.domain.errors import ConfigError, ConversionError
from sidecar.domain.model import AccessRequest, MonitoringRule, RequestState
from sidecar.teleport.convert import KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST, monitoring_rule_from_proto
from sidecar.teleport.resources import access_monitoring_rule_from_dict

__all__ = ["load_documents", "request_from_file", "rules_from_file", "traits_from_file"]

KIND_USER = "user"
GO_ZERO_YEAR = 1


def load_documents(path: Path | str, *, allow_empty: bool = False) -> list[Mapping[str, Any]]:
    """Every resource in the file, in order (lists and YAML documents flattened; empty documents skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML or JSON: {' '.join(str(exc).split())}") from None
    resources: list[Mapping[str, Any]] = []
    for document in documents:
        for item in document if isinstance(document, list) else [document]:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                raise ConfigError(f"{path}: expected a resource (a mapping), got {type(item).__name__}")
            resources.append(item)
    if not resources and not allow_empty:
        raise ConfigError(f"{path}: no resource in the file")
    return resources


def _one(path: Path | str, kind: str) -> Mapping[str, Any]:
    resources = load_documents(path)
    if len(resources) != 1:
        raise ConfigError(f"{path}: expected one {kind} resource, found {len(resources)}")
    [resource] = resources
    found = resource.get("kind")
    if found != kind:
        raise ConfigError(f"{path}: expected kind {kind!r}, got {found!r}")
    return resource


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list of strings, got {type(value).__name__}")
    return tuple(_text(item, f"{where}[{index}]") for index, item in enumerate(value))


def _label_values(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    return {str(key): _texts(items, f"{where}.{key}") for key, items in _mapping(value, where).items()}


def _time(value: Any, where: str) -> datetime | None:
    """An RFC 3339 time (or one YAML already read as a timestamp); Go's zero time means unset."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: not an RFC 3339 time: {value!r}") from None
    else:
        raise ConfigError(f"{where}: expected a time, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return None if parsed.year == GO_ZERO_YEAR else parsed.astimezone(UTC)


def _state(value: Any, where: str) -> RequestState:
    """Teleport writes the state as its number (Go's JSON of an enum); its name is accepted too."""
    if value is None:
        return RequestState.NONE
    names = list(RequestState)
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a request state, got a boolean")
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value.upper() in RequestState.__members__:
        return RequestState[value.upper()]
    raise ConfigError(f"{where}: unknown request state {value!r}")


def request_from_file(path: Path | str) -> AccessRequest:
    """The access request in the file (exactly one `kind: access_request` resource)."""
    resource = _one(path, KIND_ACCESS_REQUEST)
    metadata = _mapping(resource.get("metadata"), f"{path}: metadata")
    spec = _mapping(resource.get("spec"), f"{path}: spec")
    request_id = _text(metadata.get("name"), f"{path}: metadata.name")
    if not request_id:
        raise ConfigError(f"{path}: metadata.name (the request id) is missing")
    where = f"{path}: spec"
    return AccessRequest(
        id=request_id,
        user=_text(spec.get("user"), f"{where}.user"),
        roles=_texts(spec.get("roles"), f"{where}.roles"),
        state=_state(spec.get("state"), f"{where}.state"),
        request_reason=_text(spec.get("request_reason"), f"{where}.request_reason"),
        resolve_reason=_text(spec.get("resolve_reason"), f"{where}.resolve_reason"),
        suggested_reviewers=_texts(spec.get("suggested_reviewers"), f"{where}.suggested_reviewers"),
        system_annotations=_label_values(spec.get("system_annotations"), f"{where}.system_annotations"),
        created=_time(spec.get("created"), f"{where}.created"),
        expires=_time(spec.get("expires"), f"{where}.expires"),
        # Teleport's Expiry(): the resource expiry when set, else the metadata's.
        expiry=_time(spec.get("resource_expiry"), f"{where}.resource_expiry")
        or _time(metadata.get("expires"), f"{path}: metadata.expires"),
    )


def traits_from_file(path: Path | str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """(the user's name, its traits) from the file (exactly one `kind: user` resource)."""
    resource = _one(path, KIND_USER)
    metadata = _mapping(resource.get("metadata"), f"{path}: metadata")
    spec = _mapping(resource.get("spec"), f"{path}: spec")
    return _text(metadata.get("name"), f"{path}: metadata.name"), _label_values(spec.get("traits"), f"{path}: traits")


def rules_from_file(path: Path | str) -> list[MonitoringRule]:
    """Every access monitoring rule in the file (each resource must be one; an empty file means no rules)."""
    rules: list[MonitoringRule] = []
    names: set[str] = set()
    for index, resource in enumerate(load_documents(path, allow_empty=True), start=1):
        kind = resource.get("kind")
        if kind != KIND_ACCESS_MONITORING_RULE:
            raise ConfigError(f"{path}: resource {index}: expected kind {KIND_ACCESS_MONITORING_RULE!r}, got {kind!r}")
        where = f"{path}: resource {index}"
        try:
            rule = monitoring_rule_from_proto(access_monitoring_rule_from_dict(resource, where))
        except ConversionError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if rule.name in names:
            raise ConfigError(f"{path}: two rules are called {rule.name!r}")
        names.add(rule.name)
        rules.append(rule)
    return rules
