"""Seed files (TOML): the teams, channels, users, bots and admin a fake server starts with.

Format (every key not marked optional is required)::

    [admin]                      # the system administrator and its personal access token
    username = "sysadmin"
    email = "sysadmin@example.com"
    token = "admin-token"
    first_name = ""              # optional
    last_name = ""               # optional

    [[teams]]
    name = "myteam"              # lower-case URL handle
    display_name = "My Team"
    type = "O"                   # optional: "O" open (default) or "I" invite-only
    members = ["reviewer"]       # optional: team members besides the channel members

    [[users]]
    username = "reviewer"
    email = "reviewer@example.com"
    first_name = "Riley"         # optional
    last_name = "Reviewer"       # optional
    token = "..."                # optional personal access token
    deactivated = false          # optional: a deactivated account (its token opens no session)
    auth_service = ""            # optional: "" (email and password) or an SSO service: gitlab, saml, ldap, ...
    email_verified = true        # optional

    [[bots]]
    username = "teleport"
    owner = "sysadmin"           # a user (or the admin) by username
    token = "teleport-bot-token"
    display_name = "Teleport"    # optional
    description = ""             # optional

    [[channels]]
    team = "myteam"
    name = "town-square"
    display_name = "Town Square"
    type = "O"                   # "O" public or "P" private
    members = ["teleport", "reviewer"]   # usernames (users, bots or the admin)

    [settings]                   # optional: ServiceSettings for calls to integrations
    allowed_untrusted_internal_connections = "127.0.0.1"   # default "" refuses every private address
    outgoing_integration_requests_timeout = 30              # seconds

Every channel member becomes a member of the channel's team. The admin and the bots may be named
anywhere a username is expected.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from fakes.mattermost.config import IntegrationSettings

_USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
_RESERVED_USERNAMES = frozenset({"all", "channel", "matterbot", "system"})
_TEAM_NAME = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
_CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_AUTH_SERVICE = re.compile(r"^[a-z0-9_.-]{1,32}$")
_SETTINGS = {f.name for f in fields(IntegrationSettings)}


class SeedError(ValueError):
    """The seed file is malformed; the message names the file and the offending entry."""


@dataclass(frozen=True)
class SeedAdmin:
    """The system administrator."""

    username: str
    email: str
    token: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class SeedTeam:
    """A team."""

    name: str
    display_name: str
    type: str = "O"
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedUser:
    """A human user."""

    username: str
    email: str
    first_name: str = ""
    last_name: str = ""
    token: str = ""
    deactivated: bool = False
    auth_service: str = ""
    email_verified: bool = True


@dataclass(frozen=True)
class SeedBot:
    """A bot account with its token."""

    username: str
    owner: str
    token: str
    display_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class SeedChannel:
    """A public or private team channel."""

    team: str
    name: str
    display_name: str
    type: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Seed:
    """A parsed, validated seed. `source` is the raw text: ids are derived from it."""

    admin: SeedAdmin
    teams: tuple[SeedTeam, ...]
    users: tuple[SeedUser, ...]
    bots: tuple[SeedBot, ...]
    channels: tuple[SeedChannel, ...]
    source: bytes
    #: `[settings]` keys present in the seed (IntegrationSettings field names), applied over the server config.
    settings: tuple[tuple[str, Any], ...] = ()


def load_seed(path: Path | None = None) -> Seed:
    """Read and validate a seed file; `None` loads the documented default seed."""
    if path is None:
        text = resources.files(__package__).joinpath("default_seed.toml").read_text(encoding="utf-8")
        return parse_seed(text, "default_seed.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SeedError(f"seed file {path} is not UTF-8 text") from exc
    return parse_seed(text, str(path))


def default_seed() -> Seed:
    """The documented default seed."""
    return load_seed(None)


def parse_seed(text: str, origin: str = "<seed>") -> Seed:
    """Parse seed TOML text; `origin` names the source in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{origin}: invalid TOML: {exc}") from exc
    unknown = set(doc) - {"admin", "teams", "users", "bots", "channels", "settings"}
    if unknown:
        raise SeedError(f"{origin}: unknown top-level keys {sorted(unknown)}")
    reader = _Reader(origin)
    admin_doc = doc.get("admin")
    if not isinstance(admin_doc, dict):
        raise SeedError(f"{origin}: missing [admin] table")
    admin = SeedAdmin(
        username=reader.username(admin_doc, "admin"),
        email=reader.email(admin_doc, "admin"),
        token=reader.string(admin_doc, "token", "admin"),
        first_name=reader.string(admin_doc, "first_name", "admin", ""),
        last_name=reader.string(admin_doc, "last_name", "admin", ""),
    )
    reader.check_keys(admin_doc, "admin", {"username", "email", "token", "first_name", "last_name"})
    teams = tuple(reader.team(t, i) for i, t in enumerate(reader.tables(doc, "teams")))
    users = tuple(reader.user(u, i) for i, u in enumerate(reader.tables(doc, "users")))
    bots = tuple(reader.bot(b, i) for i, b in enumerate(reader.tables(doc, "bots")))
    channels = tuple(reader.channel(c, i) for i, c in enumerate(reader.tables(doc, "channels")))
    settings = reader.settings(doc.get("settings", {}))
    seed = Seed(admin, teams, users, bots, channels, text.encode("utf-8"), settings)
    _check_references(seed, origin)
    return seed


def _check_references(seed: Seed, origin: str) -> None:
    usernames = [seed.admin.username, *(u.username for u in seed.users), *(b.username for b in seed.bots)]
    _no_duplicates(usernames, "username", origin)
    emails = [seed.admin.email, *(u.email for u in seed.users)]
    _no_duplicates([e.lower() for e in emails], "email", origin)
    tokens = [seed.admin.token, *(u.token for u in seed.users if u.token), *(b.token for b in seed.bots)]
    if len(set(tokens)) != len(tokens):
        raise SeedError(f"{origin}: two accounts share the same token")
    _no_duplicates([t.name for t in seed.teams], "team name", origin)
    _no_duplicates([f"{c.team}/{c.name}" for c in seed.channels], "channel", origin)
    known = set(usernames)
    humans = {seed.admin.username, *(u.username for u in seed.users)}
    teams = {t.name for t in seed.teams}
    for bot in seed.bots:
        if bot.owner not in humans:
            raise SeedError(f"{origin}: bot {bot.username!r}: owner {bot.owner!r} is not a user")
    for team in seed.teams:
        for member in team.members:
            if member not in known:
                raise SeedError(f"{origin}: team {team.name!r}: unknown member {member!r}")
    for channel in seed.channels:
        if channel.team not in teams:
            raise SeedError(f"{origin}: channel {channel.name!r}: unknown team {channel.team!r}")
        for member in channel.members:
            if member not in known:
                raise SeedError(f"{origin}: channel {channel.team}/{channel.name}: unknown member {member!r}")


def _no_duplicates(values: list[str], what: str, origin: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise SeedError(f"{origin}: duplicate {what} {value!r}")
        seen.add(value)


class _Reader:
    """Typed access to TOML tables with error messages that name the entry."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, problem: str) -> SeedError:
        return SeedError(f"{self.origin}: {where}: {problem}")

    def tables(self, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise SeedError(f"{self.origin}: {key!r} must be an array of tables ([[{key}]])")
        return value

    def check_keys(self, table: dict[str, Any], where: str, allowed: set[str]) -> None:
        extra = set(table) - allowed
        if extra:
            raise self.fail(where, f"unknown keys {sorted(extra)}")

    def string(self, table: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(where, f"missing {key!r}")
        if not isinstance(value, str):
            raise self.fail(where, f"{key!r} must be a string")
        return value

    def username(self, table: dict[str, Any], where: str) -> str:
        name = self.string(table, "username", where)
        if not _USERNAME.match(name) or name in _RESERVED_USERNAMES:
            raise self.fail(where, f"invalid username {name!r} (lower-case a-z 0-9 . - _, 1..64 chars)")
        return name

    def email(self, table: dict[str, Any], where: str) -> str:
        email = self.string(table, "email", where)
        if not _EMAIL.match(email):
            raise self.fail(where, f"invalid email {email!r}")
        return email.lower()

    def members(self, table: dict[str, Any], where: str) -> tuple[str, ...]:
        value = table.get("members", [])
        if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
            raise self.fail(where, "'members' must be an array of usernames")
        return tuple(value)

    def team(self, table: dict[str, Any], index: int) -> SeedTeam:
        where = f"teams[{index}]"
        self.check_keys(table, where, {"name", "display_name", "type", "members"})
        name = self.string(table, "name", where)
        if not (2 <= len(name) <= 64 and _TEAM_NAME.match(name)):
            raise self.fail(where, f"invalid team name {name!r}")
        team_type = self.string(table, "type", where, "O")
        if team_type not in ("O", "I"):
            raise self.fail(where, f"team type must be 'O' or 'I', not {team_type!r}")
        display = self.string(table, "display_name", where)
        if not display or len(display) > 64:
            raise self.fail(where, "display_name must be 1..64 characters")
        return SeedTeam(name, display, team_type, self.members(table, where))

    def boolean(self, table: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(where, f"{key!r} must be true or false")
        return value

    def user(self, table: dict[str, Any], index: int) -> SeedUser:
        where = f"users[{index}]"
        self.check_keys(
            table,
            where,
            {"username", "email", "first_name", "last_name", "token", "deactivated", "auth_service", "email_verified"},
        )
        auth_service = self.string(table, "auth_service", where, "")
        if auth_service and not _AUTH_SERVICE.match(auth_service):
            raise self.fail(where, f"invalid auth_service {auth_service!r}")
        return SeedUser(
            username=self.username(table, where),
            email=self.email(table, where),
            first_name=self.string(table, "first_name", where, ""),
            last_name=self.string(table, "last_name", where, ""),
            token=self.string(table, "token", where, ""),
            deactivated=self.boolean(table, "deactivated", where, False),
            auth_service=auth_service,
            email_verified=self.boolean(table, "email_verified", where, True),
        )

    def settings(self, table: Any) -> tuple[tuple[str, Any], ...]:
        if not isinstance(table, dict):
            raise SeedError(f"{self.origin}: 'settings' must be a table ([settings])")
        self.check_keys(table, "settings", _SETTINGS)
        try:
            IntegrationSettings().updated(table)  # validates types and ranges
        except (ValueError, TypeError) as exc:
            raise self.fail("settings", str(exc)) from exc
        return tuple(sorted(table.items()))

    def bot(self, table: dict[str, Any], index: int) -> SeedBot:
        where = f"bots[{index}]"
        self.check_keys(table, where, {"username", "owner", "token", "display_name", "description"})
        token = self.string(table, "token", where)
        if not token:
            raise self.fail(where, "token must not be empty")
        return SeedBot(
            username=self.username(table, where),
            owner=self.string(table, "owner", where),
            token=token,
            display_name=self.string(table, "display_name", where, ""),
            description=self.string(table, "description", where, ""),
        )

    def channel(self, table: dict[str, Any], index: int) -> SeedChannel:
        where = f"channels[{index}]"
        self.check_keys(table, where, {"team", "name", "display_name", "type", "members"})
        name = self.string(table, "name", where)
        if not (1 <= len(name) <= 64 and _CHANNEL_NAME.match(name)):
            raise self.fail(where, f"invalid channel name {name!r}")
        channel_type = self.string(table, "type", where)
        if channel_type not in ("O", "P"):
            raise self.fail(where, f"channel type must be 'O' or 'P', not {channel_type!r}")
        display = self.string(table, "display_name", where)
        if not display or len(display) > 64:
            raise self.fail(where, "display_name must be 1..64 characters")
        return SeedChannel(self.string(table, "team", where), name, display, channel_type, self.members(table, where))
