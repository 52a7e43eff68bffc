"""The TOML configuration: the Go plugin's keys, defaults and error texts → frozen dataclasses.

Loading runs in a fixed order, so the first problem reported is the one the Go plugin would
report first:

1. read the file and parse TOML; check every value's type (names the key on a mismatch) and
   collect warnings for unknown keys;
2. apply the environment overrides (`TELEPORT_MATTERMOST_TOKEN`, `TELEPORT_MATTERMOST_URL`,
   `TELEPORT_ADDR`, `TELEPORT_IDENTITY`);
3. read the token file when the token starts with "/";
4. validate in Go's order: TLS trio, identity vs key pair, refresh_identity, token, url, then the
   log settings, and the presence of some credential; last our own keys (the Go plugin has none):
   `[health]`, `mattermost.message_style`, `[notify]`, `[reminders]` and `[review]` (in-chat review, checked by
   `sidecar.review.settings.parse_review`; with it off, only the value types are checked and no file is read).

Deviation from Go: `mattermost.recipients` is merged into the `"*"` entry of
`[role_to_recipients]` instead of silently replacing the whole table.
Warnings are returned in `Config.warnings`; the caller logs them once logging is set up.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from sidecar import messages_text as text
from sidecar.domain.email import is_email
from sidecar.domain.errors import ConfigError, DurationError
from sidecar.domain.secret import Secret, register_secret
from sidecar.duration import parse_duration
from sidecar.review.settings import REVIEW_KEYS, ReviewSettings, parse_review

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_REFRESH_INTERVAL",
    "ENV_ADDR",
    "ENV_IDENTITY",
    "ENV_MATTERMOST_TOKEN",
    "ENV_MATTERMOST_URL",
    "LOG_FORMATS",
    "LOG_OUTPUT_ALIASES",
    "LOG_SEVERITIES",
    "MESSAGE_STYLES",
    "Config",
    "HealthConfig",
    "LogConfig",
    "MattermostConfig",
    "NotifyConfig",
    "RemindersConfig",
    "ReviewSettings",
    "TeleportConfig",
    "example_config",
    "load_config",
]

DEFAULT_ADDR: Final = "localhost:3025"
DEFAULT_REFRESH_INTERVAL: Final = 60.0
TOKEN_FILE_MAX_BYTES: Final = 2000

ENV_MATTERMOST_TOKEN: Final = "TELEPORT_MATTERMOST_TOKEN"
ENV_MATTERMOST_URL: Final = "TELEPORT_MATTERMOST_URL"
ENV_ADDR: Final = "TELEPORT_ADDR"
ENV_IDENTITY: Final = "TELEPORT_IDENTITY"

_TLS_KEYS: Final = ("client_key", "client_crt", "root_cas")
_SECTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "teleport": ("addr", "auth_server", "identity", "refresh_identity", "refresh_identity_interval", *_TLS_KEYS),
    "mattermost": ("url", "token", "recipients", "message_style"),
    "log": ("output", "severity", "format"),
    "health": ("listen_addr",),
    "notify": ("requester", "requester_email_trait"),
    "reminders": ("after", "every", "max", "escalate_to", "escalate_after"),
    "review": REVIEW_KEYS,
}
_FREE_SECTIONS: Final = ("role_to_recipients",)  # any key is a role name
# Keys of the callback-era plugin (before Teleport 6): named in the warning so upgraders know why.
_LEGACY_KEYS: Final = frozenset(
    {"http", "mattermost.team", "mattermost.channel", "mattermost.secret"},
)

# Accepted `log.severity` spellings (lower-cased) → the normalised name.
LOG_SEVERITIES: Final[Mapping[str, str]] = {
    "info": "info",
    "err": "error",
    "error": "error",
    "debug": "debug",
    "warn": "warn",
    "warning": "warn",
    "trace": "trace",
}
LOG_FORMATS: Final = ("text", "json")
# `mattermost.message_style`: the Go plugin's texts, or message attachments with every fact.
MESSAGE_STYLES: Final = ("classic", "rich")
DEFAULT_REMINDERS_MAX: Final = 3
# `log.output` keywords (lower-cased) → the normalised name; any other value is a file path.
LOG_OUTPUT_ALIASES: Final[Mapping[str, str]] = {
    "stderr": "stderr",
    "error": "stderr",
    "2": "stderr",
    "stdout": "stdout",
    "out": "stdout",
    "1": "stdout",
    "syslog": "syslog",
}
_PORT = re.compile(r"[0-9]{1,5}")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?")
_TOML_POSITION = re.compile(r"^(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)


@dataclass(frozen=True)
class TeleportConfig:
    """How to reach Teleport and which credentials to use (file paths, not contents)."""

    addr: str
    identity: str
    refresh_identity: bool
    refresh_identity_interval: float  # seconds
    client_key: str
    client_crt: str
    root_cas: str


@dataclass(frozen=True)
class MattermostConfig:
    """The Mattermost server (base URL without trailing slash), the bot token, and how posts look."""

    url: str
    token: Secret
    recipients: tuple[str, ...]
    message_style: str = "classic"  # one of MESSAGE_STYLES; absent means classic, as the Go plugin writes


@dataclass(frozen=True)
class NotifyConfig:
    """`[notify]`: direct messages to the requester (off when absent).

    The requester's Mattermost user is found by email: the Teleport user name when it is one, else the
    `email` trait, else the trait named `requester_email_trait`.
    """

    requester: bool = False
    requester_email_trait: str = ""


@dataclass(frozen=True)
class RemindersConfig:
    """`[reminders]`: threaded reminders for undecided requests and escalation (off when absent). Seconds.

    A reminder goes into every root post's thread `after` the announcement, then every `every` (default
    `after`), at most `max` of them; `escalate_after` the announcement the request is also posted to
    `escalate_to`.
    """

    after: float | None = None
    every: float | None = None
    max: int = DEFAULT_REMINDERS_MAX
    escalate_to: tuple[str, ...] = ()
    escalate_after: float | None = None

    @property
    def enabled(self) -> bool:
        """True when reminders or an escalation are configured."""
        return (self.after is not None and self.max > 0) or bool(self.escalate_to)


@dataclass(frozen=True)
class LogConfig:
    """Where and how to log. `output` is "stderr", "stdout", "syslog" or a file path."""

    output: str = "stderr"
    severity: str = "info"  # one of debug, info, warn, error, trace
    format: str = "text"  # text or json


@dataclass(frozen=True)
class HealthConfig:
    """The health and metrics listener: off unless `listen_addr` is set.

    `host` "" means every interface (`listen_addr = ":8080"`); `port` 0 picks a free port (logged at start).
    """

    listen_addr: str = ""  # as written
    host: str = ""  # IPv6 without brackets
    port: int = 0

    @property
    def enabled(self) -> bool:
        """True when the listener is to run."""
        return bool(self.listen_addr)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    teleport: TeleportConfig
    mattermost: MattermostConfig
    role_to_recipients: Mapping[str, tuple[str, ...]]
    log: LogConfig
    warnings: tuple[str, ...] = field(default=())
    health: HealthConfig = field(default_factory=HealthConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    review: ReviewSettings = field(default_factory=ReviewSettings)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from `env` (default `os.environ`) and validate the config; raise `ConfigError`."""
    path = Path(path)
    document = _read_toml(path)
    warnings = list(_unknown_key_warnings(document))
    raw = _RawConfig.from_document(document)
    raw.apply_env(os.environ if env is None else env)
    return raw.validate(warnings)


def example_config() -> str:
    """The commented example printed by `teleport-mattermost configure` (loadable as is)."""
    return resources.files("sidecar").joinpath("example_config.toml").read_text(encoding="utf-8")


# --- reading -----------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(text.CONFIG_UNREADABLE.format(path=path, reason=exc.strerror or exc)) from None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(text.CONFIG_NOT_UTF8.format(path=path, offset=exc.start)) from None
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages quote at most a key name or one character, never a value, so a token
        # on the bad line does not leak.
        raise ConfigError(_syntax_message(path, source, str(exc))) from None


def _syntax_message(path: Path, source: str, message: str) -> str:
    match = _TOML_POSITION.match(message)
    if match:
        return text.CONFIG_SYNTAX.format(path=path, line=match["line"], column=match["column"], reason=match["reason"])
    # "(at end of document)": point at the last line.
    reason = message.removesuffix(" (at end of document)")
    last_line = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
    last_column = len(source.rsplit("\n", 1)[-1]) + 1
    return text.CONFIG_SYNTAX.format(path=path, line=max(last_line, 1), column=last_column, reason=reason)


def _unknown_key_warnings(document: Mapping[str, Any]) -> Iterable[str]:
    for key, value in document.items():
        if key in _FREE_SECTIONS:
            continue
        if key in _SECTIONS:
            if isinstance(value, dict):
                for sub in value:
                    if sub not in _SECTIONS[key]:
                        yield _unknown_key(f"{key}.{sub}", _suggest_in_section(key, sub))
            continue
        yield _unknown_key(key, _suggest_top_level(key))


def _unknown_key(key: str, suggestion: str | None) -> str:
    message = text.UNKNOWN_KEY.format(key=key)
    if key in _LEGACY_KEYS:
        return message + text.LEGACY_KEY
    if suggestion:
        message += text.DID_YOU_MEAN.format(suggestion=suggestion)
    return message


def _suggest_in_section(section: str, key: str) -> str | None:
    close = difflib.get_close_matches(key, _SECTIONS[section], n=1, cutoff=0.75)
    return f"{section}.{close[0]}" if close else None


def _suggest_top_level(key: str) -> str | None:
    # A key written above every section header lands at the top level: point at its section.
    for section, keys in _SECTIONS.items():
        if key in keys:
            return f"{section}.{key}"
    close = difflib.get_close_matches(key, [*_SECTIONS, *_FREE_SECTIONS], n=1, cutoff=0.75)
    return close[0] if close else None


# --- typed extraction --------------------------------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def _wrong_type(key: str, expected: str, value: object = None, actual: str = "") -> ConfigError:
    return ConfigError(text.WRONG_TYPE.format(key=key, expected=expected, actual=actual or _type_name(value)))


def _table(document: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    value = document.get(section, {})
    if not isinstance(value, dict):
        raise _wrong_type(section, "a table", value)
    return value


def _string(table: Mapping[str, Any], section: str, key: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise _wrong_type(f"{section}.{key}", "a string", value)
    return value


def _bool(table: Mapping[str, Any], section: str, key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise _wrong_type(f"{section}.{key}", "a boolean (true or false)", value)
    return value


def _string_list(table: Mapping[str, Any], section: str, key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise _wrong_type(f"{section}.{key}", "an array of strings", value)
    for item in value:
        if not isinstance(item, str):
            actual = f"an array containing {_type_name(item)}"
            raise _wrong_type(f"{section}.{key}", "an array of strings", actual=actual)
    return tuple(value)


def _interval(table: Mapping[str, Any]) -> float | None:
    """The refresh interval in seconds, or None when not given (or 0, which Go treats as unset)."""
    key = "teleport.refresh_identity_interval"
    value = table.get("refresh_identity_interval")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _wrong_type(key, 'a duration string such as "1m30s" or a number of seconds', value)
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ConfigError(text.INVALID_DURATION.format(reason=exc)) from None
        shown = text.go_quote(value)
    else:
        seconds = float(value)
        shown = str(value)
    if seconds == 0:
        return None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(text.INTERVAL_NOT_POSITIVE.format(value=shown))
    return seconds


def _optional_duration(table: Mapping[str, Any], section: str, key: str) -> float | None:
    """A positive duration in seconds ("30m", "1h30m" or a number of seconds), or None when not given."""
    name = f"{section}.{key}"
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _wrong_type(name, 'a duration string such as "30m" or "1h30m", or a number of seconds', value)
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ConfigError(text.KEY_INVALID_DURATION.format(key=name, reason=exc)) from None
        shown = text.go_quote(value)
    else:
        seconds = float(value)
        shown = str(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(text.DURATION_NOT_POSITIVE.format(key=name, value=shown))
    return seconds


def _count(table: Mapping[str, Any], section: str, key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(f"{section}.{key}", "a whole number", value)
    if value < 0:
        raise ConfigError(text.COUNT_NEGATIVE.format(key=f"{section}.{key}", value=value))
    return value


def _role_to_recipients(document: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    table = _table(document, "role_to_recipients")
    result: dict[str, tuple[str, ...]] = {}
    for role, value in table.items():
        where = f" (role_to_recipients.{_toml_key(role)})"
        if isinstance(value, str):
            result[role] = (value,)
        elif isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise ConfigError(text.RECIPIENTS_VALUE_TYPE.format(type=_type_name(item)) + where)
            result[role] = _dedupe(value)
        else:
            raise ConfigError(text.RECIPIENTS_TYPE.format(type=_type_name(value)) + where)
    return result


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else text.go_quote(key)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --- the raw values, overrides and validation --------------------------------------------------


@dataclass
class _RawConfig:
    """Values as written (type-checked), before overrides, defaults and validation."""

    addr: str
    auth_server: str
    identity: str
    refresh_identity: bool
    refresh_identity_interval: float | None
    client_key: str
    client_crt: str
    root_cas: str
    url: str
    token: Secret  # the token itself, or the path of its file: masked either way
    recipients: tuple[str, ...]
    role_to_recipients: dict[str, tuple[str, ...]]
    log_output: str
    log_severity: str
    log_format: str
    health_listen_addr: str
    message_style: str
    notify: NotifyConfig
    reminders: RemindersConfig
    review: object  # the `[review]` table as written (None when absent): parse_review checks it last

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> _RawConfig:
        teleport = _table(document, "teleport")
        mattermost = _table(document, "mattermost")
        log = _table(document, "log")
        health = _table(document, "health")
        notify = _table(document, "notify")
        reminders = _table(document, "reminders")
        return cls(
            addr=_string(teleport, "teleport", "addr"),
            auth_server=_string(teleport, "teleport", "auth_server"),
            identity=_string(teleport, "teleport", "identity"),
            refresh_identity=_bool(teleport, "teleport", "refresh_identity"),
            refresh_identity_interval=_interval(teleport),
            client_key=_string(teleport, "teleport", "client_key"),
            client_crt=_string(teleport, "teleport", "client_crt"),
            root_cas=_string(teleport, "teleport", "root_cas"),
            url=_string(mattermost, "mattermost", "url"),
            token=Secret(_string(mattermost, "mattermost", "token")),
            recipients=_string_list(mattermost, "mattermost", "recipients"),
            role_to_recipients=_role_to_recipients(document),
            log_output=_string(log, "log", "output"),
            log_severity=_string(log, "log", "severity"),
            log_format=_string(log, "log", "format"),
            health_listen_addr=_string(health, "health", "listen_addr"),
            message_style=_string(mattermost, "mattermost", "message_style"),
            notify=NotifyConfig(
                requester=_bool(notify, "notify", "requester"),
                requester_email_trait=_string(notify, "notify", "requester_email_trait"),
            ),
            reminders=RemindersConfig(
                after=_optional_duration(reminders, "reminders", "after"),
                every=_optional_duration(reminders, "reminders", "every"),
                max=_count(reminders, "reminders", "max", DEFAULT_REMINDERS_MAX),
                escalate_to=_string_list(reminders, "reminders", "escalate_to"),
                escalate_after=_optional_duration(reminders, "reminders", "escalate_after"),
            ),
            review=document.get("review"),
        )

    def apply_env(self, env: Mapping[str, str]) -> None:
        """Environment overrides; an empty variable counts as unset."""
        if env.get(ENV_MATTERMOST_TOKEN):
            self.token = Secret(env[ENV_MATTERMOST_TOKEN])
        if env.get(ENV_MATTERMOST_URL):
            self.url = env[ENV_MATTERMOST_URL]
        if env.get(ENV_ADDR):
            self.addr = env[ENV_ADDR]
        if env.get(ENV_IDENTITY):
            self.identity = env[ENV_IDENTITY]

    def validate(self, warnings: list[str]) -> Config:
        """Defaults and checks in the Go plugin's order; returns the frozen `Config`."""
        token = _resolve_token(self.token)  # Go reads the token file before any check.
        teleport = self._teleport(warnings)
        if not token:
            raise ConfigError(text.MISSING_VALUE.format(key="mattermost.token"))
        if not self.url:
            raise ConfigError(text.MISSING_VALUE.format(key="mattermost.url"))
        url = _normalise_url(self.url)
        role_to_recipients = self._merged_recipients(warnings)
        log = self._log()
        if not teleport.identity and not teleport.client_key:
            raise ConfigError(text.NO_CREDENTIALS)
        health = _health(self.health_listen_addr)
        style = self.message_style.lower() or "classic"
        if style not in MESSAGE_STYLES:
            raise ConfigError(text.MESSAGE_STYLE.format(value=text.go_quote(self.message_style)))
        reminders = _reminders(self.reminders)
        review = parse_review(self.review, parse_duration=parse_duration)
        warnings.extend(review.warnings)
        return Config(
            teleport=teleport,
            mattermost=MattermostConfig(url=url, token=token, recipients=self.recipients, message_style=style),
            role_to_recipients=MappingProxyType(role_to_recipients),
            log=log,
            warnings=tuple(warnings),
            health=health,
            notify=self.notify,
            reminders=reminders,
            review=review,
        )

    def _teleport(self, warnings: list[str]) -> TeleportConfig:
        values = {"client_key": self.client_key, "client_crt": self.client_crt, "root_cas": self.root_cas}
        provided = [key for key in _TLS_KEYS if values[key]]
        if provided and len(provided) < len(_TLS_KEYS):
            missing = [key for key in _TLS_KEYS if not values[key]]
            raise ConfigError(text.PARTIAL_TLS.format(provided=_backquoted(provided), missing=_backquoted(missing)))
        if self.identity and provided:
            raise ConfigError(text.IDENTITY_EXCLUSIVE)
        if self.refresh_identity and not self.identity:
            raise ConfigError(text.REFRESH_NEEDS_IDENTITY)
        addr = self.addr
        if self.auth_server:
            warnings.append(text.AUTH_SERVER_DEPRECATED)
            addr = addr or self.auth_server
        return TeleportConfig(
            addr=addr or DEFAULT_ADDR,
            identity=self.identity,
            refresh_identity=self.refresh_identity,
            refresh_identity_interval=self.refresh_identity_interval or DEFAULT_REFRESH_INTERVAL,
            client_key=self.client_key,
            client_crt=self.client_crt,
            root_cas=self.root_cas,
        )

    def _merged_recipients(self, warnings: list[str]) -> dict[str, tuple[str, ...]]:
        merged = dict(self.role_to_recipients)
        if self.recipients:
            if merged:
                warnings.append(text.RECIPIENTS_MERGED)
            merged["*"] = _dedupe([*merged.get("*", ()), *self.recipients])
        return merged

    def _log(self) -> LogConfig:
        severity = LOG_SEVERITIES.get(self.log_severity.lower()) if self.log_severity else "info"
        if severity is None:
            raise ConfigError(text.UNSUPPORTED_SEVERITY.format(value=text.go_quote(self.log_severity)))
        log_format = self.log_format.lower() or "text"
        if log_format not in LOG_FORMATS:
            raise ConfigError(text.UNSUPPORTED_FORMAT.format(value=text.go_quote(self.log_format)))
        output = LOG_OUTPUT_ALIASES.get(self.log_output.lower(), self.log_output) if self.log_output else "stderr"
        return LogConfig(output=output, severity=severity, format=log_format)


def _health(listen_addr: str) -> HealthConfig:
    """`[health] listen_addr`: "host:port", "[v6]:port" or ":port" (every interface); "" keeps it off."""
    if not listen_addr:
        return HealthConfig()
    quoted = text.go_quote(listen_addr)
    host, sep, port_text = listen_addr.rpartition(":")
    if not sep:
        raise ConfigError(text.HEALTH_ADDR_FORM.format(value=quoted))
    if host.startswith("[") or host.endswith("]"):
        host = host.removeprefix("[").removesuffix("]")
        if not _is_ip(host, version=6):
            raise ConfigError(text.HEALTH_ADDR_HOST.format(value=quoted))
    elif ":" in host:
        raise ConfigError(text.HEALTH_ADDR_FORM.format(value=quoted))  # IPv6 needs brackets
    elif host and not (_is_ip(host, version=4) or _HOST_NAME.fullmatch(host)):
        raise ConfigError(text.HEALTH_ADDR_HOST.format(value=quoted))
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise ConfigError(text.HEALTH_ADDR_PORT.format(value=quoted))
    return HealthConfig(listen_addr=listen_addr, host=host, port=int(port_text))


def _reminders(raw: RemindersConfig) -> RemindersConfig:
    """`every` defaults to `after`; an escalation needs both its recipients and its delay; recipients are checked."""
    if raw.every is not None and raw.after is None:
        raise ConfigError(text.REMINDERS_EVERY_NEEDS_AFTER)
    if raw.escalate_to and raw.escalate_after is None:
        raise ConfigError(text.ESCALATION_NEEDS_DELAY)
    if raw.escalate_after is not None and not raw.escalate_to:
        raise ConfigError(text.ESCALATION_NEEDS_RECIPIENTS)
    for recipient in raw.escalate_to:
        if not _recipient_shape(recipient):
            raise ConfigError(text.ESCALATION_RECIPIENT.format(value=text.go_quote(recipient)))
    every = raw.every if raw.every is not None else raw.after
    return dataclasses.replace(raw, every=every, escalate_to=_dedupe(raw.escalate_to))


def _recipient_shape(recipient: str) -> bool:
    """An email or "team/channel" with both names given: what Mattermost recipients look like."""
    if is_email(recipient):
        return True
    parts = recipient.split("/")
    return len(parts) == 2 and all(part.strip() for part in parts)


def _is_ip(host: str, *, version: int) -> bool:
    try:
        return ipaddress.ip_address(host).version == version
    except ValueError:
        return False


def _backquoted(keys: Iterable[str]) -> str:
    return ", ".join(f"`{key}`" for key in keys)


def _resolve_token(configured: Secret) -> Secret:
    """A token starting with "/" names a file: its first 2000 bytes, whitespace-stripped."""
    value = configured.reveal()
    if not value.startswith("/"):
        register_secret(value)
        return configured
    prefix = text.TOKEN_FILE_UNREADABLE.format(path=value)
    try:
        with open(value, "rb") as handle:
            data = handle.read(TOKEN_FILE_MAX_BYTES)
    except OSError as exc:
        raise ConfigError(f"{prefix}: {exc.strerror or type(exc).__name__}") from None
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{prefix}: the file is not UTF-8 text") from None
    register_secret(token)
    return Secret(token)


def _normalise_url(url: str) -> str:
    quoted = text.go_quote(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ConfigError(text.URL_INVALID.format(url=quoted)) from None
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(parts.scheme.lower() + "://"):
        raise ConfigError(text.URL_SCHEME.format(url=quoted))
    if not host:
        raise ConfigError(text.URL_NO_HOST.format(url=quoted))
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(text.URL_QUERY.format(url=quoted))
    return url.rstrip("/")
