"""sidecar.logs: exact line shapes, levels, outputs, and that registered secrets never reach the output."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import logs
from sidecar import messages_text as text
from sidecar.config import LogConfig, load_config
from sidecar.domain.errors import ConfigError
from sidecar.domain.secret import Secret, registered_secrets, unregister_secret
from sidecar.logs import (
    QUIET_LIBRARIES,
    TRACE,
    JsonFormatter,
    SecretFilter,
    TextFormatter,
    close_logging,
    init_bootstrap_logging,
    level_for,
    register_secret,
    setup_logging,
)

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TOKEN = "mm-token-5f2b9c77e1"

log = logging.getLogger("sidecar.engine")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    before = registered_secrets()
    yield
    close_logging()
    root.setLevel(level)
    for value in registered_secrets() - before:
        unregister_secret(value)


def lines(captured: str) -> list[str]:
    return captured.splitlines()


# --- text format ---------------------------------------------------------------------------------


def test_text_line_shape(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    log.info("Successfully posted messages", extra={"request_id": "r-1", "request_op": "put", "channel_id": "c1"})
    (line,) = lines(capsys.readouterr().err)
    assert re.fullmatch(
        rf"{TS} INFO \[engine\] Successfully posted messages request_id:r-1 request_op:put channel_id:c1",
        line,
    ), line


def test_text_exact_line_for_a_fixed_record() -> None:
    record = logging.LogRecord("sidecar.app", logging.WARNING, __file__, 1, "No channel to post", None, None)
    record.created, record.msecs = 86_400.25, 250.0
    record.request_id = "0b4e1c"
    record.mm_team = "my team"
    assert TextFormatter().format(record) == (
        '1970-01-02T00:00:00.250Z WARN [app] No channel to post request_id:0b4e1c mm_team:"my team"'
    )
    assert (
        TextFormatter(timestamps=False).format(record)
        == 'WARN [app] No channel to post request_id:0b4e1c mm_team:"my team"'
    )


def test_text_values_are_quoted_when_needed(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    extra = {"mm_team": "my team", "reason": 'say "hi"', "empty": "", "count": 3, "flag": True, "plain": "a:b/c"}
    log.info("values", extra=extra)
    (line,) = lines(capsys.readouterr().err)
    assert line.endswith(' values mm_team:"my team" reason:"say \\"hi\\"" empty:"" count:3 flag:True plain:a:b/c')


def test_text_message_cannot_forge_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    log.info("reason: %s", "ok\n2026-01-01T00:00:00.000Z ERROR [app] forged", extra={"note": "x\ny"})
    (line,) = lines(capsys.readouterr().err)
    assert "ok\\n2026-01-01T00:00:00.000Z ERROR [app] forged" in line
    assert line.endswith('note:"x\\ny"')


@pytest.mark.parametrize(
    ("name", "shown"),
    [("sidecar.mattermost.client", "mattermost.client"), ("sidecar", "sidecar"), ("aiohttp.access", "aiohttp.access")],
)
def test_text_logger_short_name(capsys: pytest.CaptureFixture[str], name: str, shown: str) -> None:
    setup_logging(LogConfig())
    logging.getLogger(name).warning("hello")
    (line,) = lines(capsys.readouterr().err)
    assert re.fullmatch(rf"{TS} WARN \[{re.escape(shown)}\] hello", line), line


# --- levels --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "shown"),
    [
        ("error", ["ERROR"]),
        ("warn", ["WARN", "ERROR"]),
        ("info", ["INFO", "WARN", "ERROR"]),
        ("debug", ["DEBUG", "INFO", "WARN", "ERROR"]),
        ("trace", ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]),
    ],
)
def test_severity_filters_levels(capsys: pytest.CaptureFixture[str], severity: str, shown: list[str]) -> None:
    setup_logging(LogConfig(severity=severity))
    log.log(TRACE, "t")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line.split()[1] for line in lines(capsys.readouterr().err)] == shown


def test_trace_level_is_registered_by_name() -> None:
    assert logging.getLevelName(TRACE) == "TRACE"
    assert logging.getLevelName("TRACE") == TRACE
    assert TRACE < logging.DEBUG


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        ("INFO", logging.INFO),
        ("err", logging.ERROR),
        ("Warning", logging.WARNING),
        ("trace", TRACE),
        ("", logging.INFO),
    ],
)
def test_level_for_accepts_config_spellings(severity: str, level: int) -> None:
    assert level_for(severity) == level


def test_debug_flag_forces_debug_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(severity="error"), debug=True)
    log.debug("visible")
    first, second = lines(capsys.readouterr().err)
    assert re.fullmatch(rf"{TS} DEBUG \[logs\] DEBUG logging enabled", first), first
    assert second.endswith("DEBUG [engine] visible")


def test_no_debug_line_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(severity="debug"))
    assert capsys.readouterr().err == ""


# --- exceptions ----------------------------------------------------------------------------------


def _raise_and_log(message: str, **extra: object) -> None:
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        log.exception(message, extra=extra)


def test_exception_is_one_error_field_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(severity="info"))
    _raise_and_log("Failed to process request", request_id="r-9")
    (line,) = lines(capsys.readouterr().err)
    assert line.endswith(
        'ERROR [engine] Failed to process request request_id:r-9 error:"ConnectionResetError: peer went away"'
    )


def test_traceback_only_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(severity="debug"))
    _raise_and_log("Failed to process request")
    output = lines(capsys.readouterr().err)
    assert output[0].endswith('Failed to process request error:"ConnectionResetError: peer went away"')
    assert output[1] == "Traceback (most recent call last):"
    assert output[-1] == "ConnectionResetError: peer went away"


def test_our_errors_render_without_class_name(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    try:
        raise ConfigError("missing required value mattermost.url")
    except ConfigError:
        log.exception("Terminating with fatal error...")
    (line,) = lines(capsys.readouterr().err)
    assert line.endswith('Terminating with fatal error... error:"missing required value mattermost.url"')


def test_exception_next_to_an_error_extra(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    _raise_and_log("both", error="upstream said no")
    (line,) = lines(capsys.readouterr().err)
    assert line.endswith('both error:"upstream said no" exception:"ConnectionResetError: peer went away"')


def test_exception_object_as_extra(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    log.warning("Failure when fetching recipient, continuing anyway", extra={"error": ValueError("bad recipient")})
    (line,) = lines(capsys.readouterr().err)
    assert line.endswith('error:"ValueError: bad recipient"')


# --- json format ---------------------------------------------------------------------------------


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(format="json"))
    log.info("Successfully posted messages", extra={"request_id": "r-1", "count": 2, "ratio": 0.5, "none": None})
    log.warning("multi\nline", extra={"level": "clash", "token": Secret("s3cr3t-value")})
    first, second = (json.loads(line) for line in lines(capsys.readouterr().err))
    assert list(first) == ["time", "level", "logger", "message", "request_id", "count", "ratio", "none"]
    assert re.fullmatch(TS, first["time"])
    assert first["level"] == "INFO"
    assert first["logger"] == "sidecar.engine"
    assert first["message"] == "Successfully posted messages"
    assert (first["request_id"], first["count"], first["ratio"], first["none"]) == ("r-1", 2, 0.5, None)
    assert second["level"] == "WARN"
    assert second["message"] == "multi\nline"
    assert second["extra_level"] == "clash"
    assert second["token"] == "***"


def test_json_exception(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(format="json", severity="info"))
    _raise_and_log("Failed to process request", request_id="r-2")
    (line,) = lines(capsys.readouterr().err)
    document = json.loads(line)
    assert document["error"] == "ConnectionResetError: peer went away"
    assert "traceback" not in document


def test_json_traceback_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(format="json", severity="debug"))
    _raise_and_log("Failed to process request")
    (line,) = lines(capsys.readouterr().err)
    document = json.loads(line)
    assert document["traceback"].startswith("Traceback (most recent call last):")


def test_json_formatter_fixed_record() -> None:
    record = logging.LogRecord("sidecar.app", logging.INFO, __file__, 1, "Plugin is ready", None, None)
    record.created, record.msecs = 0.0, 0.0
    record.weird = float("inf")
    assert JsonFormatter().format(record) == (
        '{"time":"1970-01-01T00:00:00.000Z","level":"INFO","logger":"sidecar.app","message":"Plugin is ready",'
        '"weird":"inf"}'
    )


# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("severity", ["info", "trace"])
def test_registered_token_never_appears(capsys: pytest.CaptureFixture[str], fmt: str, severity: str) -> None:
    register_secret(TOKEN)
    setup_logging(LogConfig(format=fmt, severity=severity))
    log.info("header is BEARER %s", TOKEN)
    log.info("token " + TOKEN + " in the format string")
    log.warning("in extras", extra={"authorization": f"BEARER {TOKEN}", "nested": {"t": TOKEN}})
    try:
        raise RuntimeError(f"server echoed {TOKEN}")
    except RuntimeError:
        log.exception("failed")
    output = capsys.readouterr().err
    assert TOKEN not in output
    assert output.count("***") >= 5


def test_token_registered_by_the_config_loader_is_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[teleport]\nidentity = "/id"\n[mattermost]\nurl = "https://mm"\ntoken = "{TOKEN}"\n')
    config = load_config(path, env={})
    setup_logging(config.log)
    log.error("request failed: Authorization: BEARER %s", config.mattermost.token.reveal())
    output = capsys.readouterr().err
    assert TOKEN not in output
    assert "BEARER ***" in output


def test_secret_filter_rewrites_the_record() -> None:
    register_secret(TOKEN)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b", (TOKEN,), None)
    record.header = f"BEARER {TOKEN}"
    record.count = 7
    assert SecretFilter().filter(record)
    assert record.getMessage() == "a *** b"
    assert getattr(record, "header") == "BEARER ***"  # noqa: B009 (set through extra, unknown to mypy)
    assert getattr(record, "count") == 7  # noqa: B009


def test_secret_filter_leaves_a_bad_format_string_to_the_handler() -> None:
    # getMessage() raises here; the filter must not, or the error would surface at the call site.
    register_secret(TOKEN)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("not a number",), None)
    assert SecretFilter().filter(record)
    assert record.msg == "%d items"


# --- outputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["stdout", "out", "1", "STDOUT"])
def test_stdout_output(capsys: pytest.CaptureFixture[str], output: str) -> None:
    setup_logging(LogConfig(output=output))
    log.info("to stdout")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.endswith("INFO [engine] to stdout\n")


@pytest.mark.parametrize("output", ["stderr", "error", "2", ""])
def test_stderr_output(capsys: pytest.CaptureFixture[str], output: str) -> None:
    setup_logging(LogConfig(output=output))
    log.info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith("INFO [engine] to stderr\n")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_file_output_appends_with_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "plugin.log"
    path.write_text("earlier line\n")
    path.chmod(0o600)
    setup_logging(LogConfig(output=str(path)))
    log.info("first")
    close_logging()
    content = path.read_text().splitlines()
    assert content[0] == "earlier line"
    assert content[1].endswith("INFO [engine] first")
    fresh = tmp_path / "fresh.log"
    setup_logging(LogConfig(output=str(fresh)))
    log.info("created")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    assert fresh.read_text().endswith("INFO [engine] created\n")


@pytest.mark.usefixtures("umask_022")
def test_file_output_reopens_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "plugin.log"
    setup_logging(LogConfig(output=str(path)))
    log.info("before rotation")
    path.rename(tmp_path / "plugin.log.1")
    log.info("after rotation")
    assert (tmp_path / "plugin.log.1").read_text().endswith("before rotation\n")
    assert path.read_text().endswith("INFO [engine] after rotation\n")
    assert "before rotation" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_file_output_unwritable(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "plugin.log"
    with pytest.raises(ConfigError) as caught:
        setup_logging(LogConfig(output=str(path)))
    assert str(caught.value) == f"cannot open log file {path}: No such file or directory"


def test_syslog_without_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-dev-log"
    monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(missing))
    with pytest.raises(ConfigError) as caught:
        setup_logging(LogConfig(output="syslog"))
    assert str(caught.value) == text.SYSLOG_UNAVAILABLE.format(socket=missing)
    assert str(caught.value).startswith('log.output is "syslog" but ')


def test_syslog_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    socket_path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(socket_path))
        server.settimeout(5)
        monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(socket_path))
        register_secret(TOKEN)
        setup_logging(LogConfig(output="syslog"))
        log.warning("No channel to post", extra={"request_id": "r-3", "token": TOKEN})
        datagram = server.recv(4096).decode()
    # facility user (1) * 8 + warning (4) = 12; no timestamp (syslog adds its own).
    assert datagram == "<12>teleport-mattermost: WARN [engine] No channel to post request_id:r-3 token:***\x00"


# --- setup ---------------------------------------------------------------------------------------


def test_setup_replaces_its_previous_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    setup_logging(LogConfig())
    setup_logging(LogConfig(format="json"))
    assert len(root.handlers) == before + 1
    log.info("once")
    (line,) = lines(capsys.readouterr().err)
    assert json.loads(line)["message"] == "once"


def test_close_logging_removes_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig())
    close_logging()
    log.error("nobody hears this")
    assert capsys.readouterr().err == ""


def test_bootstrap_logging_is_info_text_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    init_bootstrap_logging()
    log.debug("hidden")
    log.info("Starting Teleport Access Mattermost Plugin", extra={"version": "0.1.0", "git_ref": ""})
    (line,) = lines(capsys.readouterr().err)
    assert re.fullmatch(
        rf'{TS} INFO \[engine\] Starting Teleport Access Mattermost Plugin version:0\.1\.0 git_ref:""', line
    ), line


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (LogConfig(severity="loud"), 'unsupported logger severity: "loud"'),
        (LogConfig(format="xml"), 'unsupported log output format : "xml"'),
    ],
)
def test_setup_rejects_bad_settings(config: LogConfig, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        setup_logging(config)
    assert str(caught.value) == message


def test_library_debug_noise_is_hidden_at_debug_but_shown_at_trace() -> None:
    setup_logging(LogConfig(severity="debug"))
    try:
        assert logging.getLogger("sidecar.app").isEnabledFor(logging.DEBUG)
        for name in QUIET_LIBRARIES:
            assert not logging.getLogger(f"{name}.inner").isEnabledFor(logging.DEBUG)
            assert logging.getLogger(name).isEnabledFor(logging.INFO)
        setup_logging(LogConfig(severity="trace"))
        for name in QUIET_LIBRARIES:
            assert logging.getLogger(name).isEnabledFor(TRACE)
    finally:
        close_logging()
