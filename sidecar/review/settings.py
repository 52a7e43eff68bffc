"""`[review]`: in-chat Approve / Deny, off unless `enabled = true`.

    [review]
    enabled = true
    listen_addr = "0.0.0.0:8443"                     # the callback listener (its own, see routes.py)
    public_url = "https://sidecar.example.com:8443"  # what Mattermost calls back
    tls_cert = "/etc/teleport-mattermost/review.crt" # optional, both or neither
    tls_key = "/etc/teleport-mattermost/review.key"
    hmac_keys_file = "/etc/teleport-mattermost/review-keys"  # "<key id> <base64 key>" lines; the first signs
    binding = "trait"                                # or "email"; never one falling back to the other
    trait = "mattermost_user_id"                     # the Teleport trait holding the Mattermost user id
    email_require_verified = true                    # email binding only
    email_require_sso = false                        # email binding only
    email_domains = []                               # email binding only; [] allows every domain
    reason = "optional"                              # "off", "optional" or "required" (a dialog)
    verify_trigger_id = true                         # check Mattermost's ECDSA-signed trigger id
    action_ttl = "168h"                              # buttons stop working after this (or the request's expiry)

With `enabled` false (the default) only the value types are checked: no file is read, and nothing of review
runs, not even a listener. Errors name the key and never quote a key's material. Durations are parsed by the
caller's Go-duration parser (`sidecar.duration` sits above this layer).
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from sidecar.domain.errors import ConfigError
from sidecar.domain.secret import Secret, register_secret
from sidecar.review.signing import KEY_ID, MAX_KEY_BYTES, MIN_KEY_BYTES, KeyRing, decode_key

__all__ = [
    "DEFAULT_ACTION_TTL",
    "DEFAULT_TRAIT",
    "REVIEW_KEYS",
    "Binding",
    "EmailGuards",
    "ReasonMode",
    "ReviewSettings",
    "load_keys",
    "parse_review",
]

SECTION: Final = "review"
REVIEW_KEYS: Final = (
    "enabled",
    "listen_addr",
    "public_url",
    "tls_cert",
    "tls_key",
    "hmac_keys_file",
    "binding",
    "trait",
    "email_require_verified",
    "email_require_sso",
    "email_domains",
    "reason",
    "verify_trigger_id",
    "action_ttl",
)
DEFAULT_TRAIT: Final = "mattermost_user_id"
DEFAULT_ACTION_TTL: Final = 7 * 24 * 3600.0
MIN_ACTION_TTL: Final = 60.0
KEYS_FILE_MAX_BYTES: Final = 64 * 1024
_EMAIL_KEYS: Final = ("email_require_verified", "email_require_sso", "email_domains")

# --- texts -------------------------------------------------------------------------------------------

WRONG_TYPE: Final = 'configuration key "{key}" must be {expected}, got {actual}'
MISSING: Final = "review.{key} is required when review.enabled is true"
ADDR_FORM: Final = (
    'review.listen_addr must be "host:port", such as "0.0.0.0:8443" (every IPv4 interface), "127.0.0.1:8443" '
    'or "[::]:8443", got {value}'
)
ADDR_HOST: Final = "review.listen_addr has an invalid host (use an IP address or a host name), got {value}"
ADDR_PORT: Final = "review.listen_addr must end with a port number from 0 to 65535, got {value}"
URL_SCHEME: Final = "review.public_url must start with http:// or https://, got {value}"
URL_INVALID: Final = "review.public_url is not a valid URL: {value}"
URL_NO_HOST: Final = "review.public_url has no host name: {value}"
URL_EXTRA: Final = "review.public_url must not contain a user name, password, query string or fragment: {value}"
TLS_PAIR: Final = "review.tls_cert and review.tls_key must be set together (or neither, for plain HTTP)"
FILE_UNREADABLE: Final = "cannot read review.{key} {path}: {reason}"
KEYS_LINE: Final = "review.hmac_keys_file {path}, line {line}: {problem}"
KEYS_EMPTY: Final = 'review.hmac_keys_file {path} holds no keys: add a line "<key id> <base64 key>"'
KEYS_TOO_BIG: Final = "review.hmac_keys_file {path} is larger than {limit} bytes"
BINDING: Final = 'review.binding must be "trait" or "email", got {value}'
TRAIT: Final = "review.trait must be a Teleport trait name (no spaces or control characters), got {value}"
DOMAIN: Final = "review.email_domains has an invalid domain {value}"
REASON: Final = 'review.reason must be "off", "optional" or "required", got {value}'
TTL_INVALID: Final = "invalid value for review.action_ttl: {reason}"
TTL_TOO_SHORT: Final = "review.action_ttl must be at least 1m, got {value}"

WARN_DISABLED: Final = "review.enabled is false: the other [review] settings have no effect"
WARN_NO_TRIGGER: Final = (
    "review.verify_trigger_id is false: anyone who can reach review.listen_addr can click as any Mattermost user; "
    "let only the Mattermost servers reach it"
)
WARN_WEAK_EMAIL: Final = (
    'review.binding is "email" with neither review.email_require_verified nor review.email_require_sso: '
    "Mattermost users can change their own email address, and so choose the Teleport user they review as"
)
WARN_EMAIL_UNUSED: Final = 'review.{key} has no effect with review.binding = "trait"'

_PORT = re.compile(r"[0-9]{1,5}")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?")
_TRAIT = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")
_E = TypeVar("_E", bound=enum.Enum)


class Binding(enum.Enum):
    """How a Mattermost user becomes a Teleport user."""

    TRAIT = "trait"  # a Teleport trait holds the immutable Mattermost user id
    EMAIL = "email"  # the Mattermost email is the Teleport username (opt-in, guarded)


class ReasonMode(enum.Enum):
    """Whether a click asks for a reason in a dialog first."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class EmailGuards:
    """What the email binding demands of the Mattermost account before trusting its address."""

    require_verified: bool = True
    require_sso: bool = False
    domains: tuple[str, ...] = ()  # lower-case; empty allows every domain


@dataclass(frozen=True)
class ReviewSettings:
    """The validated `[review]` table. `keys` is None exactly when review is disabled."""

    enabled: bool = False
    listen_addr: str = ""  # as written
    host: str = ""  # "" for every interface; IPv6 without brackets
    port: int = 0
    public_url: str = ""  # without a trailing slash
    tls_cert: str = ""
    tls_key: str = ""
    keys: KeyRing | None = None
    binding: Binding = Binding.TRAIT
    trait: str = DEFAULT_TRAIT
    email: EmailGuards = field(default_factory=EmailGuards)
    reason: ReasonMode = ReasonMode.OPTIONAL
    verify_trigger_id: bool = True
    action_ttl: float = DEFAULT_ACTION_TTL  # seconds
    warnings: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        """True when the listener serves HTTPS itself."""
        return bool(self.tls_cert)


def parse_review(table: object, *, parse_duration: Callable[[str], float]) -> ReviewSettings:
    """Validate the `[review]` table (`{}` or None when absent); raises ConfigError naming the key.

    `parse_duration` turns a Go duration string into seconds and raises ValueError (config.py passes
    `sidecar.duration.parse_duration`). Unknown keys are the caller's to warn about (`REVIEW_KEYS`).
    """
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise _wrong_type(SECTION, "a table", table)
    raw = _Raw.read(table, parse_duration)
    if not raw.enabled:
        others = [key for key in REVIEW_KEYS if key != "enabled" and key in table]
        return ReviewSettings(warnings=(WARN_DISABLED,) if others else ())
    return raw.validate(table)


# --- typed reading -------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _wrong_type(key: str, expected: str, value: object) -> ConfigError:
    return ConfigError(WRONG_TYPE.format(key=key, expected=expected, actual=type(value).__name__))


def _string(table: Mapping[str, Any], key: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise _wrong_type(f"{SECTION}.{key}", "a string", value)
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise _wrong_type(f"{SECTION}.{key}", "a boolean (true or false)", value)
    return value


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _wrong_type(f"{SECTION}.{key}", "an array of strings", value)
    return tuple(value)


def _duration(table: Mapping[str, Any], key: str, parse: Callable[[str], float]) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong_type(f"{SECTION}.{key}", 'a duration string such as "24h" or "90m"', value)
    try:
        seconds = parse(value)
    except ValueError as exc:
        raise ConfigError(TTL_INVALID.format(reason=exc)) from None
    if not seconds >= MIN_ACTION_TTL:
        raise ConfigError(TTL_TOO_SHORT.format(value=_quote(value)))
    return seconds


@dataclass(frozen=True)
class _Raw:
    """Every value type-checked, before the checks that only matter when review is on."""

    enabled: bool
    listen_addr: str
    public_url: str
    tls_cert: str
    tls_key: str
    hmac_keys_file: str
    binding: str
    trait: str
    email_require_verified: bool
    email_require_sso: bool
    email_domains: tuple[str, ...]
    reason: str
    verify_trigger_id: bool
    action_ttl: float | None

    @classmethod
    def read(cls, table: Mapping[str, Any], parse_duration: Callable[[str], float]) -> _Raw:
        return cls(
            enabled=_bool(table, "enabled", False),
            listen_addr=_string(table, "listen_addr"),
            public_url=_string(table, "public_url"),
            tls_cert=_string(table, "tls_cert"),
            tls_key=_string(table, "tls_key"),
            hmac_keys_file=_string(table, "hmac_keys_file"),
            binding=_string(table, "binding", Binding.TRAIT.value),
            trait=_string(table, "trait", DEFAULT_TRAIT),
            email_require_verified=_bool(table, "email_require_verified", True),
            email_require_sso=_bool(table, "email_require_sso", False),
            email_domains=_strings(table, "email_domains"),
            reason=_string(table, "reason", ReasonMode.OPTIONAL.value),
            verify_trigger_id=_bool(table, "verify_trigger_id", True),
            action_ttl=_duration(table, "action_ttl", parse_duration),
        )

    def validate(self, table: Mapping[str, Any]) -> ReviewSettings:
        warnings: list[str] = []
        host, port = _listen_addr(self.listen_addr)
        public_url = _public_url(self.public_url)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError(TLS_PAIR)
        for key, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if path:
                _check_readable(key, path)
        if not self.hmac_keys_file:
            raise ConfigError(MISSING.format(key="hmac_keys_file"))
        keys = load_keys(self.hmac_keys_file)
        binding = _choice(Binding, self.binding, BINDING)
        email = EmailGuards(
            require_verified=self.email_require_verified,
            require_sso=self.email_require_sso,
            domains=_domains(self.email_domains),
        )
        if binding is Binding.TRAIT:
            if not _TRAIT.fullmatch(self.trait):
                raise ConfigError(TRAIT.format(value=_quote(self.trait)))
            warnings += [WARN_EMAIL_UNUSED.format(key=key) for key in _EMAIL_KEYS if key in table]
        elif not (email.require_verified or email.require_sso):
            warnings.append(WARN_WEAK_EMAIL)
        reason = _choice(ReasonMode, self.reason, REASON)
        if not self.verify_trigger_id:
            warnings.append(WARN_NO_TRIGGER)
        return ReviewSettings(
            enabled=True,
            listen_addr=self.listen_addr,
            host=host,
            port=port,
            public_url=public_url,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            keys=keys,
            binding=binding,
            trait=self.trait,
            email=email,
            reason=reason,
            verify_trigger_id=self.verify_trigger_id,
            action_ttl=self.action_ttl if self.action_ttl is not None else DEFAULT_ACTION_TTL,
            warnings=tuple(warnings),
        )


def _choice(kind: type[_E], value: str, message: str) -> _E:
    for member in kind:
        if member.value == value.lower():
            return member
    raise ConfigError(message.format(value=_quote(value)))


def _listen_addr(listen_addr: str) -> tuple[str, int]:
    """"host:port", "[v6]:port" or ":port" (every interface)."""
    if not listen_addr:
        raise ConfigError(MISSING.format(key="listen_addr"))
    quoted = _quote(listen_addr)
    host, sep, port_text = listen_addr.rpartition(":")
    if not sep:
        raise ConfigError(ADDR_FORM.format(value=quoted))
    if host.startswith("[") or host.endswith("]"):
        host = host.removeprefix("[").removesuffix("]")
        if not _is_ip(host, version=6):
            raise ConfigError(ADDR_HOST.format(value=quoted))
    elif ":" in host:
        raise ConfigError(ADDR_FORM.format(value=quoted))  # IPv6 needs brackets
    elif host and not (_is_ip(host, version=4) or _HOST_NAME.fullmatch(host)):
        raise ConfigError(ADDR_HOST.format(value=quoted))
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise ConfigError(ADDR_PORT.format(value=quoted))
    return host, int(port_text)


def _is_ip(host: str, *, version: int) -> bool:
    try:
        return ipaddress.ip_address(host).version == version
    except ValueError:
        return False


def _public_url(url: str) -> str:
    if not url:
        raise ConfigError(MISSING.format(key="public_url"))
    quoted = _quote(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError(URL_INVALID.format(value=quoted)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not url.lower().startswith(scheme + "://"):
        raise ConfigError(URL_SCHEME.format(value=quoted))
    if not host:
        raise ConfigError(URL_NO_HOST.format(value=quoted))
    # A secret in the URL would not help: Mattermost logs the integration URL of every click.
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment or "?" in url:
        raise ConfigError(URL_EXTRA.format(value=quoted))
    if "#" in url:
        raise ConfigError(URL_EXTRA.format(value=quoted))
    return url.rstrip("/")


def _check_readable(key: str, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(FILE_UNREADABLE.format(key=key, path=path, reason=reason)) from None


def _domains(domains: tuple[str, ...]) -> tuple[str, ...]:
    result = []
    for domain in domains:
        cleaned = domain.strip().lower().removeprefix("@")
        if not _HOST_NAME.fullmatch(cleaned) or "." not in cleaned.strip("."):
            raise ConfigError(DOMAIN.format(value=_quote(domain)))
        result.append(cleaned.rstrip("."))
    return tuple(dict.fromkeys(result))


def load_keys(path: str | Path) -> KeyRing:
    """The key ring from a keys file: one `<key id> <base64 key>` per line, `#` comments and blank lines ignored.

    The first key signs. Raises ConfigError naming the file and line, never quoting a key. Every key's text is
    registered with the log masking, as the Mattermost token is.
    """
    shown = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(KEYS_FILE_MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(FILE_UNREADABLE.format(key="hmac_keys_file", path=shown, reason=reason)) from None
    if len(data) > KEYS_FILE_MAX_BYTES:
        raise ConfigError(KEYS_TOO_BIG.format(path=shown, limit=KEYS_FILE_MAX_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(FILE_UNREADABLE.format(key="hmac_keys_file", path=shown, reason="not UTF-8 text")) from None
    keys: list[tuple[str, Secret]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split()
        if len(parts) == 2:
            register_secret(parts[1])  # before any check can fail, so no log line ever shows it
        problem = _key_problem(parts, seen)
        if problem:
            raise ConfigError(KEYS_LINE.format(path=shown, line=number, problem=problem))
        kid, material = parts
        seen.add(kid)
        keys.append((kid, Secret(material)))
    if not keys:
        raise ConfigError(KEYS_EMPTY.format(path=shown))
    return KeyRing(keys)


def _key_problem(parts: list[str], seen: set[str]) -> str:
    if len(parts) != 2:
        return 'expected "<key id> <base64 key>"'
    kid, material = parts
    if not KEY_ID.fullmatch(kid):
        return "the key id must be 1 to 64 letters, digits, '.', '_' or '-'"
    if kid in seen:
        return f"the key id {kid} is used twice"
    try:
        size = len(decode_key(material))
    except ValueError as exc:
        return str(exc)
    if size < MIN_KEY_BYTES:
        return f"the key is {size} bytes; use at least {MIN_KEY_BYTES} random bytes (openssl rand -base64 32)"
    if size > MAX_KEY_BYTES:
        return f"the key is {size} bytes; use at most {MAX_KEY_BYTES}"
    return ""
