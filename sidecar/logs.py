"""Logging setup: one handler on the root logger, text or JSON lines, secrets masked.

Text lines look like

    2026-11-26T04:15:18.123Z INFO [engine] Successfully posted messages request_id:abc channel_id:c1

that is `<UTC timestamp> <LEVEL> [<logger>] <message>` followed by every `extra=` attribute of
the record as `key:value` (values with spaces or quotes are JSON-quoted). The logger name drops
the leading "sidecar.". JSON lines carry `time`, `level`, `logger` (full name), `message` and the
same extras. Level names follow the Go plugin: TRACE, DEBUG, INFO, WARN, ERROR.

An exception attached to a record becomes one `error` field; the traceback is added only when
the level is debug or trace, so INFO logs stay one line per event.

Every secret registered with `register_secret` (the config loader registers the token) is
replaced by `***` in messages and extras by a filter on the handler, and again in the final
text, which also covers exception messages and tracebacks.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import sys
from datetime import UTC, datetime
from io import TextIOWrapper
from typing import Final

from sidecar import messages_text as text
from sidecar.config import LOG_FORMATS, LOG_OUTPUT_ALIASES, LOG_SEVERITIES, LogConfig
from sidecar.domain.errors import ConfigError, SidecarError
from sidecar.domain.secret import MASK, Secret, mask_secrets, register_secret, registered_secrets

__all__ = [
    "TRACE",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "close_logging",
    "init_bootstrap_logging",
    "level_for",
    "register_secret",
    "setup_logging",
]

TRACE: Final = 5
logging.addLevelName(TRACE, "TRACE")

SYSLOG_SOCKET = "/dev/log"  # module attribute so tests can point it elsewhere
SYSLOG_IDENT: Final = "teleport-mattermost: "
LOG_FILE_MODE: Final = 0o644

_LEVELS: Final = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_LEVEL_NAMES: Final = {
    TRACE: "TRACE",
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
# Everything a LogRecord carries on its own; anything else on the record came from `extra=`.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_JSON_CORE: Final = ("time", "level", "logger", "message")

_installed: list[logging.Handler] = []


def level_for(severity: str) -> int:
    """The stdlib level for a `log.severity` value (any accepted spelling); `ConfigError` if unknown."""
    name = LOG_SEVERITIES.get(severity.lower()) if severity else "info"
    if name is None:
        raise ConfigError(text.UNSUPPORTED_SEVERITY.format(value=text.go_quote(severity)))
    return _LEVELS[name]


def setup_logging(config: LogConfig, debug: bool = False) -> None:
    """Replace the handler installed by a previous call with one built from `config`.

    `debug` (the `start --debug` flag) forces the debug level, like the Go plugin, whatever
    `config.severity` says, and logs "DEBUG logging enabled".
    """
    level = logging.DEBUG if debug else level_for(config.severity)
    log_format = config.format.lower() or "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError(text.UNSUPPORTED_FORMAT.format(value=text.go_quote(config.format)))
    output = LOG_OUTPUT_ALIASES.get(config.output.lower(), config.output) if config.output else "stderr"
    handler = _handler(output)
    show_traceback = level <= logging.DEBUG
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(show_traceback=show_traceback)
    else:
        formatter = TextFormatter(show_traceback=show_traceback, timestamps=output != "syslog")
    handler.setFormatter(formatter)
    handler.addFilter(SecretFilter())
    _install(handler, level)
    if debug:
        logging.getLogger("sidecar.logs").debug("DEBUG logging enabled")


def close_logging() -> None:
    """Remove and close the handler `setup_logging` installed (flushes and closes a log file)."""
    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()


def init_bootstrap_logging() -> None:
    """Text to stderr at INFO: what we use before the config file has been read."""
    setup_logging(LogConfig(output="stderr", severity="info", format="text"))


# Libraries whose debug output is about their own internals (grpc's event-loop bookkeeping, for one line per
# call); at `debug` they stay at INFO so the plugin's own debug lines remain readable. `trace` shows them all.
QUIET_LIBRARIES = ("grpc", "asyncio", "aiohttp")


def _install(handler: logging.Handler, level: int) -> None:
    close_logging()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if level < logging.DEBUG else max(level, logging.INFO))
    _installed.append(handler)


def _handler(output: str) -> logging.Handler:
    if output == "stderr":
        return logging.StreamHandler(sys.stderr)
    if output == "stdout":
        return logging.StreamHandler(sys.stdout)
    if output == "syslog":
        return _syslog_handler()
    try:
        return _LogFileHandler(output)
    except OSError as exc:
        raise ConfigError(text.LOG_FILE_UNWRITABLE.format(path=output, reason=exc.strerror or exc)) from None


def _syslog_handler() -> logging.Handler:
    socket_path = SYSLOG_SOCKET
    if not os.path.exists(socket_path):
        raise ConfigError(text.SYSLOG_UNAVAILABLE.format(socket=socket_path))
    try:
        handler = logging.handlers.SysLogHandler(address=socket_path)
    except OSError as exc:
        reason = f"{socket_path}: {exc.strerror or exc}"
        raise ConfigError(text.SYSLOG_UNAVAILABLE.format(socket=reason)) from None
    handler.ident = SYSLOG_IDENT
    return handler


class _LogFileHandler(logging.handlers.WatchedFileHandler):
    """Append to a file created with mode 0644, reopened when logrotate moves it away."""

    def __init__(self, path: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self) -> TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_FILE_MODE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


# --- records -----------------------------------------------------------------------------------


class SecretFilter(logging.Filter):
    """Replaces registered secrets by `***` in the message and the extras of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not registered_secrets():
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it when formatting
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key, value in _extras(record).items():
            if isinstance(value, Secret):
                continue
            rendered = value if isinstance(value, str) else _text(value)
            hidden = mask_secrets(rendered)
            if hidden != rendered:
                setattr(record, key, hidden)
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRS}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The extras plus the attached exception as `error` (or `exception` if `error` is taken)."""
    fields = _extras(record)
    if record.exc_info and record.exc_info[1] is not None:
        fields["exception" if "error" in fields else "error"] = _exception_text(record.exc_info[1])
    return fields


def _exception_text(exc: BaseException) -> str:
    message = str(exc)
    if isinstance(exc, SidecarError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _text(value: object) -> str:
    if isinstance(value, BaseException):
        return _exception_text(value)
    return str(value)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _level_name(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname)


def _short_name(name: str) -> str:
    return name.removeprefix("sidecar.") if name.startswith("sidecar.") else name


def _one_line(message: str) -> str:
    # A hostile string (a request reason, a server message) must not forge extra log lines.
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _quote(value: str) -> str:
    if value == "" or '"' in value or not value.isprintable() or any(char.isspace() for char in value):
        return json.dumps(value, ensure_ascii=False)
    return value


class _Formatter(logging.Formatter):
    def __init__(self, show_traceback: bool = False) -> None:
        super().__init__()
        self.show_traceback = show_traceback

    def _traceback(self, record: logging.LogRecord) -> str:
        """The traceback and stack, only when tracebacks are shown; empty otherwise."""
        if not self.show_traceback:
            return ""
        parts = []
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(self.formatException(record.exc_info))
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts)


class TextFormatter(_Formatter):
    """`<time> <LEVEL> [<logger>] <message> key:value ...`, one line (plus a traceback at debug)."""

    def __init__(self, show_traceback: bool = False, timestamps: bool = True) -> None:
        super().__init__(show_traceback)
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record)] if self.timestamps else []
        parts += [_level_name(record), f"[{_short_name(record.name)}]", _one_line(record.getMessage())]
        parts += [f"{key}:{_quote(_text(value))}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        traceback = self._traceback(record)
        return mask_secrets(f"{line}\n{traceback}" if traceback else line)


class JsonFormatter(_Formatter):
    """One JSON object per line: time, level, logger, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": _timestamp(record),
            "level": _level_name(record),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            # Extras never overwrite the four core keys.
            document[f"extra_{key}" if key in _JSON_CORE else key] = _json_value(value)
        traceback = self._traceback(record)
        if traceback:
            document["traceback"] = traceback
        return mask_secrets(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def _json_value(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Secret):
        return MASK
    return _text(value)
