"""sidecar.config: the Go plugin's keys, defaults, validation order and error texts, plus our additions."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from sidecar import messages_text as text
from sidecar.config import (
    DEFAULT_ADDR,
    DEFAULT_REFRESH_INTERVAL,
    Config,
    HealthConfig,
    LogConfig,
    example_config,
    load_config,
)
from sidecar.domain.errors import ConfigError
from sidecar.domain.secret import Secret, registered_secrets
from sidecar.review.settings import REVIEW_KEYS

IDENTITY = '[teleport]\nidentity = "/var/lib/teleport/plugins/mattermost/auth_id"\n'
MATTERMOST = '[mattermost]\nurl = "https://mm.example.com"\ntoken = "tok-secret-1"\n'
TRIO = '[teleport]\nclient_key = "/etc/tp/auth.key"\nclient_crt = "/etc/tp/auth.crt"\nroot_cas = "/etc/tp/auth.cas"\n'

Write = Callable[[str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(content: str) -> Path:
        path = tmp_path / "teleport-mattermost.toml"
        path.write_text(content, encoding="utf-8")
        return path

    return _write


def load(write: Write, content: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(content), env={} if env is None else env)


# --- bad configurations: (id, file content, environment, exact message) ------------------------

BAD_CONFIGS: list[tuple[str, str, dict[str, str], str]] = [
    # [teleport], in Go's order
    (
        "tls-one-of-three",
        '[teleport]\nclient_key = "k"\n' + MATTERMOST,
        {},
        "configuration setting(s) `client_key` are provided but setting(s) `client_crt`, `root_cas` are missing",
    ),
    (
        "tls-two-of-three",
        '[teleport]\nroot_cas = "c"\nclient_key = "k"\n' + MATTERMOST,
        {},
        "configuration setting(s) `client_key`, `root_cas` are provided but setting(s) `client_crt` are missing",
    ),
    (
        "identity-and-key-pair",
        TRIO + 'identity = "/id"\n' + MATTERMOST,
        {},
        "configuration setting `identity` is mutually exclusive with all the `client_crt`, `client_key` and "
        "`root_cas` settings",
    ),
    (
        "refresh-without-identity",
        TRIO + "refresh_identity = true\n" + MATTERMOST,
        {},
        "`refresh_identity` requires that `identity` be set",
    ),
    # [mattermost]
    (
        "token-missing",
        IDENTITY + '[mattermost]\nurl = "https://mm.example.com"\n',
        {},
        "missing required value mattermost.token",
    ),
    ("url-missing", IDENTITY + '[mattermost]\ntoken = "t"\n', {}, "missing required value mattermost.url"),
    ("token-checked-before-url", IDENTITY, {}, "missing required value mattermost.token"),
    (
        "teleport-checked-before-token",
        '[teleport]\nclient_crt = "c"\n',
        {},
        "configuration setting(s) `client_crt` are provided but setting(s) `client_key`, `root_cas` are missing",
    ),
    (
        "token-file-missing",
        IDENTITY + '[mattermost]\nurl = "https://mm.example.com"\ntoken = "/nonexistent/token"\n',
        {},
        "Error reading password from /nonexistent/token: No such file or directory",
    ),
    (
        "token-file-read-before-teleport-checks",
        '[teleport]\nclient_crt = "c"\n[mattermost]\ntoken = "/nonexistent/token"\n',
        {},
        "Error reading password from /nonexistent/token: No such file or directory",
    ),
    (
        "url-without-scheme",
        IDENTITY + '[mattermost]\nurl = "mm.example.com"\ntoken = "t"\n',
        {},
        'mattermost.url must start with http:// or https://, got "mm.example.com"',
    ),
    (
        "url-other-scheme",
        IDENTITY + '[mattermost]\nurl = "ftp://mm.example.com"\ntoken = "t"\n',
        {},
        'mattermost.url must start with http:// or https://, got "ftp://mm.example.com"',
    ),
    (
        "url-without-host",
        IDENTITY + '[mattermost]\nurl = "https://"\ntoken = "t"\n',
        {},
        'mattermost.url has no host name: "https://"',
    ),
    (
        "url-with-query",
        IDENTITY + '[mattermost]\nurl = "https://mm.example.com/?team=x"\ntoken = "t"\n',
        {},
        'mattermost.url must not contain a query string or fragment: "https://mm.example.com/?team=x"',
    ),
    (
        "url-bad-port",
        IDENTITY + '[mattermost]\nurl = "https://mm.example.com:99999"\ntoken = "t"\n',
        {},
        'mattermost.url is not a valid URL: "https://mm.example.com:99999"',
    ),
    # [role_to_recipients]
    (
        "recipients-integer",
        IDENTITY + MATTERMOST + "[role_to_recipients]\neditor = 5\n",
        {},
        "unexpected type for recipients int (role_to_recipients.editor)",
    ),
    (
        "recipients-table",
        IDENTITY + MATTERMOST + '[role_to_recipients]\n"*" = { team = "x" }\n',
        {},
        'unexpected type for recipients dict (role_to_recipients."*")',
    ),
    (
        "recipients-value-integer",
        IDENTITY + MATTERMOST + '[role_to_recipients]\neditor = ["a@example.com", 7]\n',
        {},
        "unexpected type for recipients value int (role_to_recipients.editor)",
    ),
    (
        "recipients-value-bool",
        IDENTITY + MATTERMOST + "[role_to_recipients]\neditor = [true]\n",
        {},
        "unexpected type for recipients value bool (role_to_recipients.editor)",
    ),
    (
        "role-to-recipients-not-a-table",
        'role_to_recipients = "team/channel"\n' + IDENTITY + MATTERMOST,
        {},
        'configuration key "role_to_recipients" must be a table, got str',
    ),
    # [log]
    (
        "severity-unknown",
        IDENTITY + MATTERMOST + '[log]\nseverity = "LOUD"\n',
        {},
        'unsupported logger severity: "LOUD"',
    ),
    ("format-unknown", IDENTITY + MATTERMOST + '[log]\nformat = "xml"\n', {}, 'unsupported log output format : "xml"'),
    # credentials
    ("no-credentials", MATTERMOST, {}, "no credentials configured"),
    (
        "log-checked-before-credentials",
        MATTERMOST + '[log]\nformat = "yaml"\n',
        {},
        'unsupported log output format : "yaml"',
    ),
    # wrong value types name the key
    (
        "addr-integer",
        "[teleport]\naddr = 5\n" + MATTERMOST,
        {},
        'configuration key "teleport.addr" must be a string, got int',
    ),
    (
        "refresh-identity-string",
        IDENTITY + 'refresh_identity = "yes"\n' + MATTERMOST,
        {},
        'configuration key "teleport.refresh_identity" must be a boolean (true or false), got str',
    ),
    (
        "token-integer",
        IDENTITY + '[mattermost]\nurl = "https://mm.example.com"\ntoken = 123456\n',
        {},
        'configuration key "mattermost.token" must be a string, got int',
    ),
    (
        "recipients-string",
        IDENTITY + MATTERMOST + 'recipients = "team/channel"\n',
        {},
        'configuration key "mattermost.recipients" must be an array of strings, got str',
    ),
    (
        "recipients-array-of-integers",
        IDENTITY + MATTERMOST + 'recipients = ["a@example.com", 1]\n',
        {},
        'configuration key "mattermost.recipients" must be an array of strings, got an array containing int',
    ),
    (
        "section-not-a-table",
        'teleport = "x"\n' + MATTERMOST,
        {},
        'configuration key "teleport" must be a table, got str',
    ),
    (
        "log-severity-integer",
        IDENTITY + MATTERMOST + "[log]\nseverity = 3\n",
        {},
        'configuration key "log.severity" must be a string, got int',
    ),
    # refresh_identity_interval
    (
        "interval-garbage",
        IDENTITY + 'refresh_identity_interval = "soon"\n' + MATTERMOST,
        {},
        'invalid value for teleport.refresh_identity_interval: invalid duration "soon"',
    ),
    (
        "interval-missing-unit",
        IDENTITY + 'refresh_identity_interval = "5"\n' + MATTERMOST,
        {},
        'invalid value for teleport.refresh_identity_interval: missing unit in duration "5"',
    ),
    (
        "interval-unknown-unit",
        IDENTITY + 'refresh_identity_interval = "1d"\n' + MATTERMOST,
        {},
        'invalid value for teleport.refresh_identity_interval: unknown unit "d" in duration "1d"',
    ),
    (
        "interval-negative-string",
        IDENTITY + 'refresh_identity_interval = "-1m"\n' + MATTERMOST,
        {},
        'teleport.refresh_identity_interval must be a positive duration, got "-1m"',
    ),
    (
        "interval-negative-number",
        IDENTITY + "refresh_identity_interval = -3\n" + MATTERMOST,
        {},
        "teleport.refresh_identity_interval must be a positive duration, got -3",
    ),
    (
        "interval-nan",
        IDENTITY + "refresh_identity_interval = nan\n" + MATTERMOST,
        {},
        "teleport.refresh_identity_interval must be a positive duration, got nan",
    ),
    (
        "interval-bool",
        IDENTITY + "refresh_identity_interval = true\n" + MATTERMOST,
        {},
        'configuration key "teleport.refresh_identity_interval" must be a duration string such as "1m30s" or a '
        "number of seconds, got bool",
    ),
    # environment overrides are validated like file values
    (
        "env-url-invalid",
        IDENTITY + MATTERMOST,
        {"TELEPORT_MATTERMOST_URL": "mm.internal"},
        'mattermost.url must start with http:// or https://, got "mm.internal"',
    ),
    (
        "env-token-file-missing",
        IDENTITY + MATTERMOST,
        {"TELEPORT_MATTERMOST_TOKEN": "/run/secrets/nope"},
        "Error reading password from /run/secrets/nope: No such file or directory",
    ),
    (
        "env-identity-with-key-pair",
        TRIO + MATTERMOST,
        {"TELEPORT_IDENTITY": "/id"},
        text.IDENTITY_EXCLUSIVE,
    ),
]


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [pytest.param(content, env, message, id=name) for name, content, env, message in BAD_CONFIGS],
)
def test_bad_config_is_rejected_with_exact_message(
    write: Write, content: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write, content, env)
    assert str(caught.value) == message


def test_go_texts_are_the_shared_constants() -> None:
    # The table above spells the Go texts out; the constants must say the same words.
    assert text.MISSING_VALUE.format(key="mattermost.token") == "missing required value mattermost.token"
    assert text.NO_CREDENTIALS == "no credentials configured"
    assert text.REFRESH_NEEDS_IDENTITY == "`refresh_identity` requires that `identity` be set"
    assert text.UNSUPPORTED_SEVERITY.format(value='"x"') == 'unsupported logger severity: "x"'
    assert text.UNSUPPORTED_FORMAT.format(value='"x"') == 'unsupported log output format : "x"'
    assert (
        text.AUTH_SERVER_DEPRECATED
        == "Configuration setting `auth_server` is deprecated, consider to change it to `addr`"
    )


def test_toml_syntax_error_names_file_and_line(write: Write) -> None:
    path = write(IDENTITY + '[mattermost]\nurl = "https://mm.example.com"\ntoken = "tok-secret-2\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert message.startswith(f"configuration file {path}, line 5, column ")
    assert "invalid TOML: " in message
    assert "tok-secret-2" not in message


def test_toml_duplicate_key_names_the_line(write: Write) -> None:
    path = write(IDENTITY + 'identity = "/other"\n' + MATTERMOST)
    with pytest.raises(ConfigError, match=re.escape(f"configuration file {path}, line 3, column ")):
        load_config(path, env={})


def test_toml_error_at_end_of_document(write: Write) -> None:
    path = write(IDENTITY + "[mattermost")
    with pytest.raises(ConfigError, match=re.escape(f"configuration file {path}, line 3, column ")):
        load_config(path, env={})


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"cannot read configuration file {path}: No such file or directory"


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert str(caught.value) == f"cannot read configuration file {tmp_path}: Is a directory"


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[mattermost]\nurl = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"configuration file {path} is not UTF-8 text (bad byte at offset 23)"


# --- good configurations -----------------------------------------------------------------------


def test_identity_config_with_defaults(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST)
    assert config.teleport.addr == DEFAULT_ADDR == "localhost:3025"
    assert config.teleport.identity == "/var/lib/teleport/plugins/mattermost/auth_id"
    assert config.teleport.refresh_identity is False
    assert config.teleport.refresh_identity_interval == DEFAULT_REFRESH_INTERVAL == 60.0
    assert (config.teleport.client_key, config.teleport.client_crt, config.teleport.root_cas) == ("", "", "")
    assert config.mattermost.url == "https://mm.example.com"
    assert config.mattermost.token.reveal() == "tok-secret-1"
    assert config.mattermost.recipients == ()
    assert dict(config.role_to_recipients) == {}
    assert config.log == LogConfig(output="stderr", severity="info", format="text")
    assert config.warnings == ()


def test_key_pair_config(write: Write) -> None:
    config = load(write, TRIO + 'addr = "proxy.example.com:443"\n' + MATTERMOST)
    assert config.teleport.addr == "proxy.example.com:443"
    assert config.teleport.identity == ""
    assert config.teleport.client_key == "/etc/tp/auth.key"
    assert config.teleport.client_crt == "/etc/tp/auth.crt"
    assert config.teleport.root_cas == "/etc/tp/auth.cas"


def test_refresh_identity(write: Write) -> None:
    config = load(write, IDENTITY + 'refresh_identity = true\nrefresh_identity_interval = "30s"\n' + MATTERMOST)
    assert config.teleport.refresh_identity is True
    assert config.teleport.refresh_identity_interval == 30.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ('"1m"', 60.0),
        ('"30s"', 30.0),
        ('"1m30s"', 90.0),
        ('"1.5h"', 5400.0),
        ('"250ms"', 0.25),
        ("45", 45.0),
        ("2.5", 2.5),
        # Go treats a zero duration as "not set" and applies the default.
        ('"0s"', 60.0),
        ("0", 60.0),
    ],
)
def test_refresh_identity_interval_forms(write: Write, value: str, seconds: float) -> None:
    config = load(write, IDENTITY + f"refresh_identity_interval = {value}\n" + MATTERMOST)
    assert config.teleport.refresh_identity_interval == seconds


def test_auth_server_is_a_deprecated_alias(write: Write) -> None:
    config = load(write, IDENTITY + 'auth_server = "auth.example.com:3025"\n' + MATTERMOST)
    assert config.teleport.addr == "auth.example.com:3025"
    assert config.warnings == (text.AUTH_SERVER_DEPRECATED,)


def test_addr_wins_over_auth_server(write: Write) -> None:
    config = load(write, IDENTITY + 'addr = "a:3025"\nauth_server = "b:3025"\n' + MATTERMOST)
    assert config.teleport.addr == "a:3025"
    assert config.warnings == (text.AUTH_SERVER_DEPRECATED,)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mm.example.com/", "https://mm.example.com"),
        ("http://127.0.0.1:8065", "http://127.0.0.1:8065"),
        ("https://example.com/chat/", "https://example.com/chat"),
        ("HTTPS://Example.com//", "HTTPS://Example.com"),
    ],
)
def test_url_normalised(write: Write, url: str, expected: str) -> None:
    config = load(write, IDENTITY + f'[mattermost]\nurl = "{url}"\ntoken = "t"\n')
    assert config.mattermost.url == expected


def test_recipients_only_become_the_star_entry(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST + 'recipients = ["team/chan", "a@example.com"]\n')
    assert config.mattermost.recipients == ("team/chan", "a@example.com")
    assert dict(config.role_to_recipients) == {"*": ("team/chan", "a@example.com")}
    assert config.warnings == ()


def test_recipients_merge_into_role_to_recipients(write: Write) -> None:
    # DEVIATION from Go (which would drop the whole table): merge, dedupe, keep order, warn.
    content = (
        IDENTITY
        + MATTERMOST
        + 'recipients = ["team/chan", "b@example.com", "team/chan"]\n'
        + '[role_to_recipients]\n"*" = ["a@example.com", "b@example.com"]\neditor = "team/editors"\n'
    )
    config = load(write, content)
    assert dict(config.role_to_recipients) == {
        "*": ("a@example.com", "b@example.com", "team/chan"),
        "editor": ("team/editors",),
    }
    assert config.warnings == (text.RECIPIENTS_MERGED,)


def test_recipients_merge_creates_star_next_to_other_roles(write: Write) -> None:
    content = IDENTITY + MATTERMOST + 'recipients = ["team/chan"]\n[role_to_recipients]\neditor = ["x@example.com"]\n'
    config = load(write, content)
    assert dict(config.role_to_recipients) == {"editor": ("x@example.com",), "*": ("team/chan",)}


def test_role_to_recipients_string_or_list(write: Write) -> None:
    content = (
        IDENTITY
        + MATTERMOST
        + '[role_to_recipients]\n"*" = "team/all"\neditor = ["a@example.com", "team/ed", "a@example.com"]\n'
        + "auditor = []\n"
    )
    config = load(write, content)
    assert dict(config.role_to_recipients) == {
        "*": ("team/all",),
        "editor": ("a@example.com", "team/ed"),
        "auditor": (),
    }


def test_empty_role_to_recipients_table(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST + "[role_to_recipients]\n")
    assert dict(config.role_to_recipients) == {}


def test_env_overrides(write: Write) -> None:
    env = {
        "TELEPORT_MATTERMOST_TOKEN": "env-token-xyz",
        "TELEPORT_MATTERMOST_URL": "https://chat.example.org/",
        "TELEPORT_ADDR": "tenant.teleport.sh:443",
        "TELEPORT_IDENTITY": "/run/tbot/identity",
    }
    config = load(write, IDENTITY + 'addr = "file:3025"\n' + MATTERMOST, env)
    assert config.mattermost.token.reveal() == "env-token-xyz"
    assert config.mattermost.url == "https://chat.example.org"
    assert config.teleport.addr == "tenant.teleport.sh:443"
    assert config.teleport.identity == "/run/tbot/identity"


def test_env_supplies_missing_values(write: Write) -> None:
    env = {
        "TELEPORT_MATTERMOST_TOKEN": "env-token",
        "TELEPORT_MATTERMOST_URL": "http://mm:8065",
        "TELEPORT_IDENTITY": "/id",
    }
    config = load(write, "", env)
    assert (config.mattermost.url, config.teleport.identity) == ("http://mm:8065", "/id")


def test_empty_env_values_are_ignored(write: Write) -> None:
    env = {"TELEPORT_MATTERMOST_TOKEN": "", "TELEPORT_MATTERMOST_URL": "", "TELEPORT_ADDR": "", "TELEPORT_IDENTITY": ""}
    config = load(write, IDENTITY + MATTERMOST, env)
    assert config.mattermost.token.reveal() == "tok-secret-1"
    assert config.teleport.addr == DEFAULT_ADDR


def test_env_defaults_to_os_environ(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEPORT_ADDR", "from-environ:3025")
    config = load_config(write(IDENTITY + MATTERMOST))
    assert config.teleport.addr == "from-environ:3025"


def test_env_token_may_name_a_file(write: Write, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  file-token-from-env\n")
    config = load(write, IDENTITY + MATTERMOST, {"TELEPORT_MATTERMOST_TOKEN": str(token_file)})
    assert config.mattermost.token.reveal() == "file-token-from-env"


def test_token_from_file_is_stripped_and_registered(write: Write, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n\t file-token-123 \n")
    config = load(write, IDENTITY + f'[mattermost]\nurl = "https://mm.example.com"\ntoken = "{token_file}"\n')
    assert config.mattermost.token.reveal() == "file-token-123"
    assert "file-token-123" in registered_secrets()


def test_token_file_reads_at_most_2000_bytes(write: Write, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a" * 1999 + "bc" + "d" * 500)
    config = load(write, IDENTITY + f'[mattermost]\nurl = "https://mm.example.com"\ntoken = "{token_file}"\n')
    assert config.mattermost.token.reveal() == "a" * 1999 + "b"


def test_empty_token_file_means_missing_token(write: Write, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(" \n")
    with pytest.raises(ConfigError, match=r"^missing required value mattermost\.token$"):
        load(write, IDENTITY + f'[mattermost]\nurl = "https://mm.example.com"\ntoken = "{token_file}"\n')


def test_token_file_not_utf8(write: Write, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError) as caught:
        load(write, IDENTITY + f'[mattermost]\nurl = "https://mm.example.com"\ntoken = "{token_file}"\n')
    assert str(caught.value) == f"Error reading password from {token_file}: the file is not UTF-8 text"


def test_token_is_registered_and_hidden(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST)
    assert "tok-secret-1" in registered_secrets()
    assert isinstance(config.mattermost.token, Secret)
    assert "tok-secret-1" not in repr(config)
    assert "tok-secret-1" not in str(config)


def test_errors_never_contain_the_token(write: Write) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write, MATTERMOST)  # fails late, after the token was read
    assert "tok-secret-1" not in str(caught.value)
    assert "tok-secret-1" not in repr(caught.value)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("INFO", "info"),
        ("err", "error"),
        ("Error", "error"),
        ("debug", "debug"),
        ("WARN", "warn"),
        ("warning", "warn"),
        ("Trace", "trace"),
        ("", "info"),
    ],
)
def test_log_severity_spellings(write: Write, severity: str, expected: str) -> None:
    config = load(write, IDENTITY + MATTERMOST + f'[log]\nseverity = "{severity}"\n')
    assert config.log.severity == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("stderr", "stderr"),
        ("error", "stderr"),
        ("2", "stderr"),
        ("STDOUT", "stdout"),
        ("out", "stdout"),
        ("1", "stdout"),
        ("syslog", "syslog"),
        ("/var/log/Teleport-MM.log", "/var/log/Teleport-MM.log"),
        ("", "stderr"),
    ],
)
def test_log_output_aliases(write: Write, output: str, expected: str) -> None:
    config = load(write, IDENTITY + MATTERMOST + f'[log]\noutput = "{output}"\n')
    assert config.log.output == expected


@pytest.mark.parametrize(("fmt", "expected"), [("", "text"), ("text", "text"), ("JSON", "json")])
def test_log_format(write: Write, fmt: str, expected: str) -> None:
    config = load(write, IDENTITY + MATTERMOST + f'[log]\nformat = "{fmt}"\n')
    assert config.log.format == expected


def test_config_is_immutable(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST + '[role_to_recipients]\n"*" = "t/c"\n')
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.teleport.addr = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.role_to_recipients["*"] = ("y",)  # type: ignore[index]


# --- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "warning"),
    [
        (
            'recipents = ["a@example.com"]\n',
            'unknown configuration key "mattermost.recipents" (did you mean "mattermost.recipients"?)',
        ),
        ('[log]\nseverty = "info"\n', 'unknown configuration key "log.severty" (did you mean "log.severity"?)'),
        ('[log]\ncolour = "yes"\n', 'unknown configuration key "log.colour"'),
        ('[logs]\noutput = "stderr"\n', 'unknown configuration key "logs" (did you mean "log"?)'),
        (
            '[role_to_recipient]\n"*" = "t/c"\n',
            'unknown configuration key "role_to_recipient" (did you mean "role_to_recipients"?)',
        ),
        ('[http]\nlisten_addr = ":8081"\n', 'unknown configuration key "http"' + text.LEGACY_KEY),
        ('[health]\nlisten = ":8080"\n', 'unknown configuration key "health.listen"'),
        ('[health]\nlisten_address = ":8080"\n',
         'unknown configuration key "health.listen_address" (did you mean "health.listen_addr"?)'),
        ('secret = "s"\n', 'unknown configuration key "mattermost.secret"' + text.LEGACY_KEY),
        ("[frobnicate]\nx = 1\n", 'unknown configuration key "frobnicate"'),
    ],
)
def test_unknown_keys_warn(write: Write, extra: str, warning: str) -> None:
    config = load(write, IDENTITY + MATTERMOST + extra)  # `extra` without a header lands in [mattermost]
    assert config.warnings == (warning,)


def test_top_level_key_points_at_its_section(write: Write) -> None:
    config = load(write, 'severity = "debug"\n' + IDENTITY + MATTERMOST)
    assert config.warnings == ('unknown configuration key "severity" (did you mean "log.severity"?)',)


def test_role_names_are_never_unknown(write: Write) -> None:
    config = load(write, IDENTITY + MATTERMOST + '[role_to_recipients]\nanything-goes = "t/c"\n')
    assert config.warnings == ()


# --- the example config ------------------------------------------------------------------------


def test_example_config_is_the_packaged_file() -> None:
    packaged = resources.files("sidecar").joinpath("example_config.toml")
    assert packaged.is_file()
    assert example_config() == packaged.read_text(encoding="utf-8")


def test_example_config_loads_as_is(write: Write) -> None:
    config = load(write, example_config())
    assert config.teleport.addr == "example.com:3025"
    assert config.teleport.identity == "/var/lib/teleport/plugins/mattermost/auth_id"
    assert config.mattermost.url == "https://mattermost.example.com"
    assert config.mattermost.token.reveal() == "api-token"
    assert config.log == LogConfig(output="stderr", severity="info", format="text")
    assert config.warnings == ()


_COMMENTED_SETTING = re.compile(r'^# ("?[\w*]+"? = .*)$')


def _uncomment(example: str, skip: tuple[str, ...] = ()) -> str:
    lines = []
    for line in example.splitlines():
        match = _COMMENTED_SETTING.match(line)
        if match and not match.group(1).startswith(skip):
            lines.append(match.group(1))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_example_optional_settings_are_valid(write: Write) -> None:
    # Every commented-out setting is real syntax with a valid value (the key pair is the alternative
    # to the identity file, so it is tried in a separate config below).
    content = _uncomment(example_config(), skip=("client_key", "client_crt", "root_cas", *_REVIEW_SETTINGS))
    config = load(write, content)
    assert config.teleport.refresh_identity is True
    assert config.teleport.refresh_identity_interval == 60.0
    assert config.health == HealthConfig(listen_addr="0.0.0.0:8080", host="0.0.0.0", port=8080)
    assert dict(config.role_to_recipients) == {
        "*": ("my-team-name/access-requests", "my-team-name/channel-name", "first.last@example.com"),
        "editor": ("first.last@example.com", "my-team-name/editors"),
    }
    assert set(config.warnings) == {text.AUTH_SERVER_DEPRECATED, text.RECIPIENTS_MERGED}


# The [review] lines are tried on their own (tests/unit/test_config_review.py): enabled, they need a keys file.
_REVIEW_SETTINGS = (
    "enabled", 'listen_addr = "0.0.0.0:8443"', "public_url", "hmac_keys_file", "tls_", "binding", "trait",
    "email_", "reason", "verify_trigger_id", "action_ttl",
)


def test_example_key_pair_alternative_is_valid(write: Write) -> None:
    content = _uncomment(example_config(), skip=("refresh_identity", *_REVIEW_SETTINGS)).replace(
        'identity = "/var/lib/teleport/plugins/mattermost/auth_id"', ""
    )
    config = load(write, content)
    assert config.teleport.identity == ""
    assert config.teleport.client_crt == "/var/lib/teleport/plugins/mattermost/auth.crt"


def test_example_mentions_every_key() -> None:
    example = example_config()
    keys = [
        "addr",
        "auth_server",
        "identity",
        "refresh_identity",
        "refresh_identity_interval",
        "client_key",
        "client_crt",
        "root_cas",
        "url",
        "token",
        "recipients",
        "output",
        "severity",
        "format",
        "listen_addr",
    ]
    for key in keys:
        assert re.search(rf"^#? ?{key} = ", example, re.MULTILINE), key
    for key in REVIEW_KEYS:
        assert re.search(rf"^#? ?{key} = ", example, re.MULTILINE), key
    for section in ("[teleport]", "[mattermost]", "[role_to_recipients]", "[log]", "[health]", "[review]"):
        assert section in example


# --- [health] ----------------------------------------------------------------------------------


def test_health_is_off_unless_listen_addr_is_set(write: Write) -> None:
    assert load(write, IDENTITY + MATTERMOST).health == HealthConfig()
    assert not load(write, IDENTITY + MATTERMOST + '[health]\nlisten_addr = ""\n').health.enabled
    assert not load(write, example_config()).health.enabled


@pytest.mark.parametrize(
    ("listen_addr", "host", "port"),
    [
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("127.0.0.1:9102", "127.0.0.1", 9102),
        (":8080", "", 8080),  # every interface
        ("[::]:8080", "::", 8080),
        ("[::1]:0", "::1", 0),  # 0: any free port, logged at start
        ("localhost:65535", "localhost", 65535),
        ("health.internal.example.com:80", "health.internal.example.com", 80),
    ],
)
def test_health_listen_addr_forms(write: Write, listen_addr: str, host: str, port: int) -> None:
    config = load(write, IDENTITY + MATTERMOST + f'[health]\nlisten_addr = "{listen_addr}"\n')
    assert config.health == HealthConfig(listen_addr=listen_addr, host=host, port=port)
    assert config.health.enabled
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("listen_addr", "message"),
    [
        ("8080", text.HEALTH_ADDR_FORM),
        ("::1:8080", text.HEALTH_ADDR_FORM),
        ("0.0.0.0:", text.HEALTH_ADDR_PORT),
        ("0.0.0.0:http", text.HEALTH_ADDR_PORT),
        ("0.0.0.0:65536", text.HEALTH_ADDR_PORT),
        ("0.0.0.0:-1", text.HEALTH_ADDR_PORT),
        ("0.0.0.0:８０", text.HEALTH_ADDR_PORT),  # full-width digits are not a port
        ("[not-ip]:8080", text.HEALTH_ADDR_HOST),
        ("[127.0.0.1]:8080", text.HEALTH_ADDR_HOST),
        ("my host:8080", text.HEALTH_ADDR_HOST),
        ("http://0.0.0.0:8080", text.HEALTH_ADDR_FORM),
    ],
)
def test_bad_health_listen_addr_names_the_key(write: Write, listen_addr: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write, IDENTITY + MATTERMOST + f'[health]\nlisten_addr = "{listen_addr}"\n')
    assert str(caught.value) == message.format(value=text.go_quote(listen_addr))
    assert str(caught.value).startswith("health.listen_addr ")


def test_health_listen_addr_type_and_section_type(write: Write) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write, IDENTITY + MATTERMOST + "[health]\nlisten_addr = 8080\n")
    assert str(caught.value) == 'configuration key "health.listen_addr" must be a string, got int'
    with pytest.raises(ConfigError) as caught:
        load(write, 'health = "on"\n' + IDENTITY + MATTERMOST)
    assert str(caught.value) == 'configuration key "health" must be a table, got str'


def test_go_problems_are_reported_before_the_health_address(write: Write) -> None:
    # [health] is ours: a config the Go plugin would refuse is refused for Go's reason first.
    with pytest.raises(ConfigError, match=text.NO_CREDENTIALS):
        load(write, MATTERMOST + '[health]\nlisten_addr = "nope"\n')


def test_a_top_level_listen_addr_points_at_its_section(write: Write) -> None:
    config = load(write, 'listen_addr = ":8080"\n' + IDENTITY + MATTERMOST)
    assert config.warnings == ('unknown configuration key "listen_addr" (did you mean "health.listen_addr"?)',)
    assert not config.health.enabled
