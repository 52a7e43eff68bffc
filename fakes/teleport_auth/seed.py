"""Users, roles, timing settings and access monitoring rules of the fake Auth service, loaded from a TOML seed.

The format is documented in `default_seed.toml` (the built-in default). Loading is strict: an unknown key, a
wrong type or a reference to an undefined role is an error naming the file and the offending entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

WILDCARD = "*"

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class SeedError(ValueError):
    """The seed file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Threshold:
    """A review threshold copied into requests (Teleport `AccessReviewThreshold` without a filter)."""

    name: str
    approve: int
    deny: int


@dataclass(frozen=True)
class Rule:
    """An RBAC allow rule: the verbs granted on the resources ("*" matches anything)."""

    resources: frozenset[str]
    verbs: frozenset[str]

    def allows(self, resource: str, verb: str) -> bool:
        """Whether this rule grants `verb` on `resource`."""
        return (WILDCARD in self.resources or resource in self.resources) and (
            WILDCARD in self.verbs or verb in self.verbs
        )


@dataclass(frozen=True)
class RoleDef:
    """A role: its logins (on the wire) and its request/review/RBAC grants (fake-only)."""

    name: str
    logins: tuple[str, ...] = ()
    request: tuple[str, ...] = ()
    review: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    rules: tuple[Rule, ...] = ()

    @property
    def is_admin(self) -> bool:
        """A role granting every verb on every resource."""
        return any(WILDCARD in r.resources and WILDCARD in r.verbs for r in self.rules)


@dataclass(frozen=True)
class UserDef:
    """A user and its roles and traits."""

    name: str
    roles: tuple[str, ...]
    traits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringRuleDef:
    """An access monitoring rule to store at start-up (Teleport's spec fields; `kind`/`version` are implied).

    Only the shape is checked here; Teleport's own checks (rule_validation.py) run when the rule is stored.
    """

    name: str
    subjects: tuple[str, ...] = ()
    condition: str = ""
    #: (plugin name, recipients), or None for no notification.
    notification: tuple[str, tuple[str, ...]] | None = None
    #: (integration, decision), or None for no automatic review.
    automatic_review: tuple[str, str] | None = None
    desired_state: str = ""
    states: tuple[str, ...] = ()
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Timing of access requests."""

    request_ttl: timedelta = timedelta(hours=1)
    access_ttl: timedelta = timedelta(hours=8)
    session_ttl: timedelta = timedelta(hours=8)
    max_duration: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class Seed:
    """Everything the fake knows about users and roles, and the rules it starts with."""

    settings: Settings
    roles: Mapping[str, RoleDef]
    users: Mapping[str, UserDef]
    access_monitoring_rules: Mapping[str, MonitoringRuleDef] = field(default_factory=dict)


def default_seed_text() -> str:
    """The text of the built-in `default_seed.toml`."""
    return resources.files(__package__).joinpath("default_seed.toml").read_text(encoding="utf-8")


def load_seed(path: Path | None = None) -> Seed:
    """Load a seed file, or the built-in default when `path` is None."""
    if path is None:
        return parse_seed(default_seed_text(), "default_seed.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"{path}: cannot read seed file: {exc.strerror}") from exc
    return parse_seed(text, str(path))


def parse_duration(value: object, where: str) -> timedelta:
    """Parse "1h30m"/"90s"-style strings or integer seconds."""
    if isinstance(value, bool):
        raise SeedError(f"{where}: expected a duration, got a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise SeedError(f"{where}: duration must be positive, got {value}")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groupdict().values()):
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            result = timedelta(hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))
            if result > timedelta(0):
                return result
        raise SeedError(f'{where}: invalid duration {value!r} (use e.g. "1h", "30m", "90s" or seconds)')
    raise SeedError(f"{where}: expected a duration, got {type(value).__name__}")


def parse_seed(text: str, source: str) -> Seed:
    """Parse seed TOML text; `source` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{source}: invalid TOML: {exc}") from exc
    _check_keys(doc, {"settings", "roles", "users", "access_monitoring_rules"}, source)
    settings = _parse_settings(_table(doc, "settings", source), f"{source}: [settings]")
    roles = {
        name: _parse_role(name, _as_table(body, f"{source}: [roles.{name}]"), f"{source}: [roles.{name}]")
        for name, body in _table(doc, "roles", source).items()
    }
    users = {
        name: _parse_user(name, _as_table(body, f"{source}: [users.{name!r}]"), f"{source}: [users.{name!r}]")
        for name, body in _table(doc, "users", source).items()
    }
    rules = {
        name: _parse_rule(name, _as_table(body, f"{source}: {_rule_where(name)}"), f"{source}: {_rule_where(name)}")
        for name, body in _table(doc, "access_monitoring_rules", source).items()
    }
    for role in roles.values():
        for ref in (*role.request, *role.review):
            if ref != WILDCARD and ref not in roles:
                raise SeedError(f"{source}: [roles.{role.name}] refers to undefined role {ref!r}")
    for user in users.values():
        for ref in user.roles:
            if ref not in roles:
                raise SeedError(f"{source}: [users.{user.name!r}] has undefined role {ref!r}")
    return Seed(settings=settings, roles=roles, users=users, access_monitoring_rules=rules)


def _parse_settings(body: dict[str, Any], where: str) -> Settings:
    _check_keys(body, {"request_ttl", "access_ttl", "session_ttl", "max_duration"}, where)
    defaults = Settings()
    values = {
        key: parse_duration(body[key], f"{where} {key}") if key in body else getattr(defaults, key)
        for key in ("request_ttl", "access_ttl", "session_ttl", "max_duration")
    }
    return Settings(**values)


def _parse_role(name: str, body: dict[str, Any], where: str) -> RoleDef:
    _check_keys(body, {"logins", "request", "review", "thresholds", "rules"}, where)
    thresholds = []
    for i, item in enumerate(_list(body, "thresholds", where)):
        t = _as_table(item, f"{where} thresholds[{i}]")
        _check_keys(t, {"name", "approve", "deny"}, f"{where} thresholds[{i}]")
        thresholds.append(
            Threshold(
                name=str(t.get("name", "")),
                approve=_count(t.get("approve", 1), f"{where} thresholds[{i}].approve"),
                deny=_count(t.get("deny", 1), f"{where} thresholds[{i}].deny"),
            )
        )
    rules = []
    for i, item in enumerate(_list(body, "rules", where)):
        r = _as_table(item, f"{where} rules[{i}]")
        _check_keys(r, {"resources", "verbs"}, f"{where} rules[{i}]")
        rules.append(
            Rule(
                resources=frozenset(_strings(r, "resources", f"{where} rules[{i}]")),
                verbs=frozenset(_strings(r, "verbs", f"{where} rules[{i}]")),
            )
        )
    return RoleDef(
        name=name,
        logins=_strings(body, "logins", where),
        request=_strings(body, "request", where),
        review=_strings(body, "review", where),
        thresholds=tuple(thresholds),
        rules=tuple(rules),
    )


def _parse_user(name: str, body: dict[str, Any], where: str) -> UserDef:
    _check_keys(body, {"roles", "traits"}, where)
    traits_body = _table(body, "traits", where)
    traits = {key: _strings(traits_body, key, f"{where} traits") for key in traits_body}
    return UserDef(name=name, roles=_strings(body, "roles", where), traits=traits)


def _rule_where(name: str) -> str:
    return f"[access_monitoring_rules.{name!r}]"


_RULE_KEYS = {
    "subjects",
    "condition",
    "notification",
    "automatic_review",
    "desired_state",
    "states",
    "description",
    "labels",
}


def _parse_rule(name: str, body: dict[str, Any], where: str) -> MonitoringRuleDef:
    _check_keys(body, _RULE_KEYS, where)
    notification = None
    if "notification" in body:
        note = _table(body, "notification", where)
        _check_keys(note, {"name", "recipients"}, f"{where} notification")
        recipients = _list(note, "recipients", f"{where} notification")
        if not all(isinstance(r, str) for r in recipients):
            raise SeedError(f"{where} notification recipients: expected strings, got {recipients!r}")
        notification = (_text(note, "name", f"{where} notification"), tuple(recipients))
    review = None
    if "automatic_review" in body:
        auto = _table(body, "automatic_review", where)
        _check_keys(auto, {"integration", "decision"}, f"{where} automatic_review")
        review = (
            _text(auto, "integration", f"{where} automatic_review"),
            _text(auto, "decision", f"{where} automatic_review"),
        )
    labels = _table(body, "labels", where)
    for key in labels:
        _text(labels, key, f"{where} labels")
    return MonitoringRuleDef(
        name=name,
        subjects=_strings(body, "subjects", where),
        condition=_text(body, "condition", where),
        notification=notification,
        automatic_review=review,
        desired_state=_text(body, "desired_state", where),
        states=_strings(body, "states", where),
        description=_text(body, "description", where),
        labels=dict(labels),
    )


def _text(body: Mapping[str, Any], key: str, where: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise SeedError(f"{where} {key}: expected a string, got {type(value).__name__}")
    return value


def _check_keys(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SeedError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _as_table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def _table(body: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    return _as_table(body.get(key, {}), f"{where} {key}")


def _list(body: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise SeedError(f"{where} {key}: expected a list, got {type(value).__name__}")
    return value


def _strings(body: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _list(body, key, where)
    for v in values:
        if not isinstance(v, str) or not v:
            raise SeedError(f"{where} {key}: expected non-empty strings, got {v!r}")
    return tuple(values)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SeedError(f"{where}: expected a positive integer, got {value!r}")
    return value
