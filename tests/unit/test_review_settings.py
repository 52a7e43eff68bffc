"""`[review]` parsing: off by default, every key's checks and texts, the keys file, and no secret in any message."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sidecar.domain.errors import ConfigError
from sidecar.domain.secret import mask_secrets
from sidecar.duration import parse_duration
from sidecar.review.settings import (
    DEFAULT_ACTION_TTL,
    REVIEW_KEYS,
    Binding,
    EmailGuards,
    ReasonMode,
    ReviewSettings,
    load_keys,
    parse_review,
)

KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.urlsafe_b64encode(bytes(range(100, 148))).decode().rstrip("=")


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "review-keys"
    path.write_text(f"# rotated 2026-07\n2026-07 {KEY2}\n\n2026-01\t{KEY1}\n")
    return path


def parse(table: object) -> ReviewSettings:
    return parse_review(table, parse_duration=parse_duration)


def enabled(keys_file: Path, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "listen_addr": "0.0.0.0:8443",
        "public_url": "https://sidecar.example.com:8443/",
        "hmac_keys_file": str(keys_file),
        **extra,
    }


def error(table: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(table)
    return str(caught.value)


# --- off ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [None, {}, {"enabled": False}])
def test_review_is_off_by_default(table: object) -> None:
    settings = parse(table)
    assert settings == ReviewSettings() and not settings.enabled and settings.keys is None and settings.warnings == ()


def test_when_off_no_file_is_read_but_types_are_checked(tmp_path: Path) -> None:
    settings = parse({"enabled": False, "hmac_keys_file": str(tmp_path / "missing"), "listen_addr": "nonsense"})
    assert not settings.enabled
    assert settings.warnings == ("review.enabled is false: the other [review] settings have no effect",)
    assert error({"enabled": False, "verify_trigger_id": "yes"}) == (
        'configuration key "review.verify_trigger_id" must be a boolean (true or false), got str'
    )
    assert error({"enabled": "true"}) == 'configuration key "review.enabled" must be a boolean (true or false), got str'
    assert error("on") == 'configuration key "review" must be a table, got str'


# --- on ---------------------------------------------------------------------------------------------------


def test_a_full_table(keys_file: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    settings = parse(
        enabled(
            keys_file,
            tls_cert=str(cert),
            tls_key=str(key),
            binding="email",
            email_require_verified=False,
            email_require_sso=True,
            email_domains=["Example.COM", "@corp.example"],
            reason="Required",
            verify_trigger_id=True,
            action_ttl="90m",
        )
    )
    assert settings.enabled and (settings.host, settings.port) == ("0.0.0.0", 8443)
    assert settings.public_url == "https://sidecar.example.com:8443" and settings.tls
    assert settings.binding is Binding.EMAIL and settings.reason is ReasonMode.REQUIRED
    domains = ("example.com", "corp.example")
    assert settings.email == EmailGuards(require_verified=False, require_sso=True, domains=domains)
    assert settings.action_ttl == 5400 and settings.warnings == ()
    assert settings.keys is not None and settings.keys.kids == ("2026-07", "2026-01")


def test_the_defaults_when_on(keys_file: Path) -> None:
    settings = parse(enabled(keys_file))
    assert settings.binding is Binding.TRAIT and settings.trait == "mattermost_user_id"
    assert settings.reason is ReasonMode.OPTIONAL and settings.verify_trigger_id is True
    assert settings.action_ttl == DEFAULT_ACTION_TTL and not settings.tls
    assert settings.email == EmailGuards(require_verified=True, require_sso=False, domains=())


def test_the_documented_example_parses(keys_file: Path, tmp_path: Path) -> None:
    from sidecar.review import settings as module

    example = "\n".join(line[4:] for line in (module.__doc__ or "").splitlines() if line.startswith("    "))
    table = tomllib.loads(example)["review"]
    assert set(table) == set(REVIEW_KEYS)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    table.update(hmac_keys_file=str(keys_file), tls_cert=str(cert), tls_key=str(key))
    settings = parse(table)
    assert settings.enabled
    assert settings.warnings == tuple(
        f'review.{key} has no effect with review.binding = "trait"'
        for key in ("email_require_verified", "email_require_sso", "email_domains")
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"listen_addr": ""}, "review.listen_addr is required when review.enabled is true"),
        ({"listen_addr": "8443"}, 'review.listen_addr must be "host:port"'),
        ({"listen_addr": "::1:8443"}, 'review.listen_addr must be "host:port"'),
        ({"listen_addr": "[nope]:8443"}, "review.listen_addr has an invalid host"),
        ({"listen_addr": "bad_host:8443"}, "review.listen_addr has an invalid host"),
        ({"listen_addr": "127.0.0.1:99999"}, "review.listen_addr must end with a port number from 0 to 65535"),
        ({"public_url": ""}, "review.public_url is required when review.enabled is true"),
        ({"public_url": "sidecar:8443"}, "review.public_url must start with http:// or https://"),
        ({"public_url": "ftp://sidecar"}, "review.public_url must start with http:// or https://"),
        ({"public_url": "https://"}, "review.public_url has no host name"),
        ({"public_url": "https://host:port"}, "review.public_url is not a valid URL"),
        ({"public_url": "https://user:pw@host"}, "must not contain a user name, password, query string or fragment"),
        ({"public_url": "https://host/?token=x"}, "must not contain a user name, password, query string or fragment"),
        ({"public_url": "https://host/#x"}, "must not contain a user name, password, query string or fragment"),
        ({"tls_cert": "/x"}, "review.tls_cert and review.tls_key must be set together"),
        ({"tls_cert": "/nonexistent/c", "tls_key": "/nonexistent/k"}, "cannot read review.tls_cert /nonexistent/c"),
        ({"hmac_keys_file": ""}, "review.hmac_keys_file is required when review.enabled is true"),
        ({"binding": "link"}, 'review.binding must be "trait" or "email", got "link"'),
        ({"binding": "trait,email"}, 'review.binding must be "trait" or "email"'),
        ({"trait": ""}, "review.trait must be a Teleport trait name"),
        ({"trait": "has space"}, "review.trait must be a Teleport trait name"),
        ({"binding": "email", "email_domains": ["not a domain"]}, 'has an invalid domain "not a domain"'),
        ({"binding": "email", "email_domains": ["localhost"]}, "review.email_domains has an invalid domain"),
        ({"reason": "sometimes"}, 'review.reason must be "off", "optional" or "required", got "sometimes"'),
        ({"action_ttl": "forever"}, 'invalid value for review.action_ttl: invalid duration "forever"'),
        ({"action_ttl": "30s"}, 'review.action_ttl must be at least 1m, got "30s"'),
        ({"action_ttl": "-1h"}, "review.action_ttl must be at least 1m"),
        ({"action_ttl": 3600}, 'configuration key "review.action_ttl" must be a duration string'),
        ({"email_domains": "example.com"}, 'configuration key "review.email_domains" must be an array of strings'),
        ({"email_domains": [1]}, 'configuration key "review.email_domains" must be an array of strings'),
        ({"trait": 5}, 'configuration key "review.trait" must be a string, got int'),
    ],
)
def test_each_bad_value_is_named(keys_file: Path, extra: dict[str, Any], message: str) -> None:
    assert message in error(enabled(keys_file, **extra))


@pytest.mark.parametrize(
    ("listen_addr", "host", "port"),
    [(":8443", "", 8443), ("[::]:0", "::", 0), ("localhost:1", "localhost", 1), ("10.0.0.5:80", "10.0.0.5", 80)],
)
def test_listen_addresses(keys_file: Path, listen_addr: str, host: str, port: int) -> None:
    settings = parse(enabled(keys_file, listen_addr=listen_addr))
    assert (settings.host, settings.port) == (host, port)


def test_a_public_url_may_carry_a_path_prefix(keys_file: Path) -> None:
    settings = parse(enabled(keys_file, public_url="http://proxy.internal/teleport-sidecar/"))
    assert settings.public_url == "http://proxy.internal/teleport-sidecar"


def test_warnings(keys_file: Path) -> None:
    weak = parse(enabled(keys_file, binding="email", email_require_verified=False))
    assert any("can change their own email address" in w for w in weak.warnings)
    unchecked = parse(enabled(keys_file, verify_trigger_id=False))
    says = "anyone who can reach review.listen_addr can click as any Mattermost user"
    assert any(says in w for w in unchecked.warnings)
    sso = parse(enabled(keys_file, binding="email", email_require_verified=False, email_require_sso=True))
    assert sso.warnings == ()


# --- the keys file ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no keys"),
        ("# only a comment\n\n", "holds no keys"),
        (f"{KEY1}\n", 'line 1: expected "<key id> <base64 key>"'),
        (f"k1 {KEY1} extra\n", 'line 1: expected "<key id> <base64 key>"'),
        (f"k/1 {KEY1}\n", "line 1: the key id must be 1 to 64 letters"),
        (f"k1 {KEY1}\nk1 {KEY2}\n", "line 2: the key id k1 is used twice"),
        ("k1 not*base64\n", "line 1: the key is not base64"),
        (f"k1 {base64.b64encode(b'short').decode()}\n", "line 1: the key is 5 bytes; use at least 32 random bytes"),
        (f"k1 {base64.b64encode(bytes(2000)).decode()}\n", "line 1: the key is 2000 bytes; use at most 1024"),
    ],
)
def test_bad_keys_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_keys(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    for secret_part in (KEY1, KEY2, "not*base64"):
        assert secret_part not in str(caught.value)


def test_an_unreadable_or_oversized_keys_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read review\.hmac_keys_file .*missing: No such file"):
        load_keys(tmp_path / "missing")
    big = tmp_path / "big"
    big.write_text("#" * 70_000)
    with pytest.raises(ConfigError, match="is larger than 65536 bytes"):
        load_keys(big)
    binary = tmp_path / "binary"
    binary.write_bytes(b"k1 \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_keys(binary)


def test_keys_are_masked_in_logs_and_never_in_reprs(keys_file: Path) -> None:
    settings = parse(enabled(keys_file))
    assert KEY1 not in repr(settings) and KEY2 not in repr(settings)
    assert mask_secrets(f"leaked {KEY1} and {KEY2}") == "leaked *** and ***"


def test_even_a_rejected_key_line_is_masked(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1 c2hvcnRrZXk=\n")
    with pytest.raises(ConfigError):
        load_keys(path)
    assert mask_secrets("c2hvcnRrZXk=") == "***"
