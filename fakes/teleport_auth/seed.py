"""Users, roles, settings, resources and access monitoring rules of the fake Auth service, from a TOML seed.

The format is documented in `default_seed.toml` (the built-in default). Loading is strict: an unknown key, a
wrong type or a reference to an undefined role is an error naming the file and the offending entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from .seed_resources import ResourceDef, parse_resources
from .seed_toml import SeedError, as_table, check_keys, count, flag, items, parse_duration, strings, table, text

__all__ = [
    "LABEL_KEYS", "WILDCARD", "MonitoringRuleDef", "ResourceDef", "RoleDef", "Rule", "Seed", "SeedError", "Settings",
    "Threshold", "UserDef", "default_seed_text", "load_seed", "parse_duration", "parse_seed",
]

WILDCARD = "*"

#: The seed keys of a role's resource label matchers, by the resource kind they govern (Teleport's role fields).
LABEL_KEYS = {"node_labels": "node", "app_labels": "app", "db_labels": "db", "kubernetes_labels": "kube_cluster"}

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
    """A role: its logins and review conditions (on the wire through GetRole) and its other grants (fake-only).

    `review` is `review_requests.roles`; `preview_as_roles`, `submit_for_users` (and its deny list) are the other
    `review_requests` fields; `search_as_roles` is `request.search_as_roles`; `labels` maps a resource kind
    (node, app, db, kube_cluster) to its label matcher: label → allowed values ("*" matches any key or value).
    """

    name: str
    logins: tuple[str, ...] = ()
    request: tuple[str, ...] = ()
    review: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    rules: tuple[Rule, ...] = ()
    search_as_roles: tuple[str, ...] = ()
    preview_as_roles: tuple[str, ...] = ()
    submit_for_users: tuple[str, ...] = ()
    deny_submit_for_users: tuple[str, ...] = ()
    labels: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        """A role granting every verb on every resource."""
        return any(WILDCARD in r.resources and WILDCARD in r.verbs for r in self.rules)


@dataclass(frozen=True)
class UserDef:
    """A user and its roles and traits; `bot` marks a Machine ID bot's user (Teleport names them `bot-<name>`)."""

    name: str
    roles: tuple[str, ...]
    traits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bot: bool = False


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
    """Timing of access requests, and the server's behaviour switches (the admin API can flip them later).

    `admin_action_mfa`: admin actions (reviews, state changes, deletions) need MFA unless the caller is a bot.
    `legacy_review_api`: behave as an Auth older than reviews on behalf of others (AccessReview fields 11 and 12,
    UserFilter fields 2 and 3 and role field `submit_for_users` unknown, so ignored).
    """

    request_ttl: timedelta = timedelta(hours=1)
    access_ttl: timedelta = timedelta(hours=8)
    session_ttl: timedelta = timedelta(hours=8)
    max_duration: timedelta = timedelta(hours=8)
    admin_action_mfa: bool = False
    legacy_review_api: bool = False


@dataclass(frozen=True)
class Seed:
    """Everything the fake knows about users and roles, and the rules it starts with."""

    settings: Settings
    roles: Mapping[str, RoleDef]
    users: Mapping[str, UserDef]
    access_monitoring_rules: Mapping[str, MonitoringRuleDef] = field(default_factory=dict)
    resources: tuple[ResourceDef, ...] = ()


def default_seed_text() -> str:
    """The text of the built-in `default_seed.toml`."""
    return resources.files(__package__).joinpath("default_seed.toml").read_text(encoding="utf-8")


def load_seed(path: Path | None = None) -> Seed:
    """Load a seed file, or the built-in default when `path` is None."""
    if path is None:
        return parse_seed(default_seed_text(), "default_seed.toml")
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"{path}: cannot read seed file: {exc.strerror}") from exc
    return parse_seed(content, str(path))


def parse_seed(toml_text: str, source: str) -> Seed:
    """Parse seed TOML text; `source` names it in error messages."""
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{source}: invalid TOML: {exc}") from exc
    check_keys(doc, {"settings", "roles", "users", "access_monitoring_rules", "resources"}, source)
    settings = _parse_settings(table(doc, "settings", source), f"{source}: [settings]")
    roles = {
        name: _parse_role(name, as_table(body, f"{source}: [roles.{name}]"), f"{source}: [roles.{name}]")
        for name, body in table(doc, "roles", source).items()
    }
    users = {
        name: _parse_user(name, as_table(body, f"{source}: [users.{name!r}]"), f"{source}: [users.{name!r}]")
        for name, body in table(doc, "users", source).items()
    }
    rules = {
        name: _parse_rule(name, as_table(body, f"{source}: {_rule_where(name)}"), f"{source}: {_rule_where(name)}")
        for name, body in table(doc, "access_monitoring_rules", source).items()
    }
    resources = parse_resources(items(doc, "resources", source), source)
    for role in roles.values():
        for ref in (*role.request, *role.review, *role.search_as_roles, *role.preview_as_roles):
            if ref != WILDCARD and ref not in roles:
                raise SeedError(f"{source}: [roles.{role.name}] refers to undefined role {ref!r}")
    for user in users.values():
        for ref in user.roles:
            if ref not in roles:
                raise SeedError(f"{source}: [users.{user.name!r}] has undefined role {ref!r}")
    return Seed(settings=settings, roles=roles, users=users, access_monitoring_rules=rules, resources=resources)


_DURATIONS = ("request_ttl", "access_ttl", "session_ttl", "max_duration")
_SWITCHES = ("admin_action_mfa", "legacy_review_api")


def _parse_settings(body: dict[str, Any], where: str) -> Settings:
    check_keys(body, {*_DURATIONS, *_SWITCHES}, where)
    defaults = Settings()
    def duration(key: str) -> timedelta:
        found: timedelta = parse_duration(body[key], f"{where} {key}") if key in body else getattr(defaults, key)
        return found

    return Settings(
        request_ttl=duration("request_ttl"),
        access_ttl=duration("access_ttl"),
        session_ttl=duration("session_ttl"),
        max_duration=duration("max_duration"),
        admin_action_mfa=flag(body, "admin_action_mfa", where),
        legacy_review_api=flag(body, "legacy_review_api", where),
    )


_ROLE_LISTS = (
    "logins", "request", "review", "search_as_roles", "preview_as_roles", "submit_for_users", "deny_submit_for_users"
)


def _parse_role(name: str, body: dict[str, Any], where: str) -> RoleDef:
    check_keys(body, {*_ROLE_LISTS, "thresholds", "rules", *LABEL_KEYS}, where)
    thresholds = []
    for i, item in enumerate(items(body, "thresholds", where)):
        t = as_table(item, f"{where} thresholds[{i}]")
        check_keys(t, {"name", "approve", "deny"}, f"{where} thresholds[{i}]")
        thresholds.append(
            Threshold(
                name=str(t.get("name", "")),
                approve=count(t.get("approve", 1), f"{where} thresholds[{i}].approve"),
                deny=count(t.get("deny", 1), f"{where} thresholds[{i}].deny"),
            )
        )
    rules = []
    for i, item in enumerate(items(body, "rules", where)):
        r = as_table(item, f"{where} rules[{i}]")
        check_keys(r, {"resources", "verbs"}, f"{where} rules[{i}]")
        rules.append(
            Rule(
                resources=frozenset(strings(r, "resources", f"{where} rules[{i}]")),
                verbs=frozenset(strings(r, "verbs", f"{where} rules[{i}]")),
            )
        )
    return RoleDef(
        name=name,
        logins=strings(body, "logins", where),
        request=strings(body, "request", where),
        review=strings(body, "review", where),
        thresholds=tuple(thresholds),
        rules=tuple(rules),
        search_as_roles=strings(body, "search_as_roles", where),
        preview_as_roles=strings(body, "preview_as_roles", where),
        submit_for_users=strings(body, "submit_for_users", where),
        deny_submit_for_users=strings(body, "deny_submit_for_users", where),
        labels={kind: _labels(body, key, where) for key, kind in LABEL_KEYS.items() if key in body},
    )


def _labels(body: Mapping[str, Any], key: str, where: str) -> dict[str, tuple[str, ...]]:
    """A label matcher: each label takes a string or a list of strings."""
    matcher: dict[str, tuple[str, ...]] = {}
    for label, value in table(body, key, where).items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise SeedError(f"{where} {key}.{label}: expected a string or a list of strings, got {value!r}")
        matcher[label] = tuple(values)
    return matcher


def _parse_user(name: str, body: dict[str, Any], where: str) -> UserDef:
    check_keys(body, {"roles", "traits", "bot"}, where)
    traits_body = table(body, "traits", where)
    traits = {key: strings(traits_body, key, f"{where} traits") for key in traits_body}
    return UserDef(name=name, roles=strings(body, "roles", where), traits=traits, bot=flag(body, "bot", where))


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
    check_keys(body, _RULE_KEYS, where)
    notification = None
    if "notification" in body:
        note = table(body, "notification", where)
        check_keys(note, {"name", "recipients"}, f"{where} notification")
        recipients = items(note, "recipients", f"{where} notification")
        if not all(isinstance(r, str) for r in recipients):
            raise SeedError(f"{where} notification recipients: expected strings, got {recipients!r}")
        notification = (text(note, "name", f"{where} notification"), tuple(recipients))
    review = None
    if "automatic_review" in body:
        auto = table(body, "automatic_review", where)
        check_keys(auto, {"integration", "decision"}, f"{where} automatic_review")
        review = (
            text(auto, "integration", f"{where} automatic_review"),
            text(auto, "decision", f"{where} automatic_review"),
        )
    labels = table(body, "labels", where)
    for key in labels:
        text(labels, key, f"{where} labels")
    return MonitoringRuleDef(
        name=name,
        subjects=strings(body, "subjects", where),
        condition=text(body, "condition", where),
        notification=notification,
        automatic_review=review,
        desired_state=text(body, "desired_state", where),
        states=strings(body, "states", where),
        description=text(body, "description", where),
        labels=dict(labels),
    )


