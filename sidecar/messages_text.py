"""User-facing configuration texts, in one place so tests import the very same constants.

Texts marked GO are the Go plugin's words (integrations/lib/config.go, access/mattermost/config.go,
access/common/recipient.go, lib/logger); keep them word for word so operators searching for an
error find the same answers. The others are ours. Placeholders are `str.format` fields.
"""

from __future__ import annotations

from typing import Final

# --- [teleport] -------------------------------------------------------------------------------
# GO. {provided} and {missing} are back-quoted key names joined by ", " in key order.
PARTIAL_TLS: Final = "configuration setting(s) {provided} are provided but setting(s) {missing} are missing"
# GO.
IDENTITY_EXCLUSIVE: Final = (
    "configuration setting `identity` is mutually exclusive with all the `client_crt`, `client_key` and "
    "`root_cas` settings"
)
# GO.
REFRESH_NEEDS_IDENTITY: Final = "`refresh_identity` requires that `identity` be set"
# GO (a WARN, not an error).
AUTH_SERVER_DEPRECATED: Final = "Configuration setting `auth_server` is deprecated, consider to change it to `addr`"
# GO (the Go plugin says it when connecting; we say it when loading).
NO_CREDENTIALS: Final = "no credentials configured"
# Ours.
INTERVAL_NOT_POSITIVE: Final = "teleport.refresh_identity_interval must be a positive duration, got {value}"
INVALID_DURATION: Final = "invalid value for teleport.refresh_identity_interval: {reason}"

# --- [mattermost] -----------------------------------------------------------------------------
# GO. {key} is "mattermost.token" or "mattermost.url".
MISSING_VALUE: Final = "missing required value {key}"
# GO; we append ": <reason>" (never the file's content).
TOKEN_FILE_UNREADABLE: Final = "Error reading password from {path}"
# Ours.
URL_SCHEME: Final = "mattermost.url must start with http:// or https://, got {url}"
URL_INVALID: Final = "mattermost.url is not a valid URL: {url}"
URL_NO_HOST: Final = "mattermost.url has no host name: {url}"
URL_QUERY: Final = "mattermost.url must not contain a query string or fragment: {url}"
RECIPIENTS_MERGED: Final = (
    'both mattermost.recipients and [role_to_recipients] are set: the recipients were added to the "*" entry '
    "(the Go plugin would have ignored [role_to_recipients])"
)

# --- [role_to_recipients] ---------------------------------------------------------------------
# GO, followed by " (role_to_recipients.<role>)" so the bad entry is named.
RECIPIENTS_TYPE: Final = "unexpected type for recipients {type}"
RECIPIENTS_VALUE_TYPE: Final = "unexpected type for recipients value {type}"

# --- [log] ------------------------------------------------------------------------------------
# GO. {value} is Go-%q-quoted.
UNSUPPORTED_SEVERITY: Final = "unsupported logger severity: {value}"
UNSUPPORTED_FORMAT: Final = "unsupported log output format : {value}"
# Ours.
SYSLOG_UNAVAILABLE: Final = 'log.output is "syslog" but {socket} does not exist (no syslog daemon on this host?)'
LOG_FILE_UNWRITABLE: Final = "cannot open log file {path}: {reason}"

# --- [health] ---------------------------------------------------------------------------------
# Ours (the Go plugin has no health listener). {value} is Go-%q-quoted.
HEALTH_ADDR_FORM: Final = (
    'health.listen_addr must be "host:port", such as "0.0.0.0:8080" (every IPv4 interface), "127.0.0.1:8080" '
    'or "[::]:8080", got {value}'
)
HEALTH_ADDR_HOST: Final = "health.listen_addr has an invalid host (use an IP address or a host name), got {value}"
HEALTH_ADDR_PORT: Final = "health.listen_addr must end with a port number from 0 to 65535, got {value}"

# --- mattermost.message_style, [notify], [reminders] -------------------------------------------
# Ours. {value} is Go-%q-quoted.
MESSAGE_STYLE: Final = 'mattermost.message_style must be "classic" or "rich", got {value}'
KEY_INVALID_DURATION: Final = "invalid value for {key}: {reason}"
DURATION_NOT_POSITIVE: Final = "{key} must be a positive duration, got {value}"
COUNT_NEGATIVE: Final = "{key} must not be negative, got {value}"
REMINDERS_EVERY_NEEDS_AFTER: Final = "reminders.every needs reminders.after (when the first reminder is due)"
ESCALATION_NEEDS_DELAY: Final = "reminders.escalate_to needs reminders.escalate_after (when to escalate)"
ESCALATION_NEEDS_RECIPIENTS: Final = "reminders.escalate_after needs reminders.escalate_to (who to escalate to)"
ESCALATION_RECIPIENT: Final = (
    'reminders.escalate_to entries must be a user email or "team/channel", got {value}'
)

# --- the file itself --------------------------------------------------------------------------
CONFIG_UNREADABLE: Final = "cannot read configuration file {path}: {reason}"
CONFIG_NOT_UTF8: Final = "configuration file {path} is not UTF-8 text (bad byte at offset {offset})"
CONFIG_SYNTAX: Final = "configuration file {path}, line {line}, column {column}: invalid TOML: {reason}"
WRONG_TYPE: Final = 'configuration key "{key}" must be {expected}, got {actual}'
UNKNOWN_KEY: Final = 'unknown configuration key "{key}"'
DID_YOU_MEAN: Final = ' (did you mean "{suggestion}"?)'
LEGACY_KEY: Final = " (used by plugin versions before Teleport 6; it has no effect now)"


def go_quote(text: str) -> str:
    """Double-quote `text` the way Go's %q does for the printable strings configs contain."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"))
    return '"' + "".join(out) + '"'


_GO_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
