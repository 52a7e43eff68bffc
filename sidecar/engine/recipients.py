"""Who gets the root posts: raw recipient strings from the request and config, then channels.

Raw recipients follow Go's `getMessageRecipients` without access monitoring rules (§5.6):
suggested reviewers that are valid emails, plus per requested role the `role_to_recipients` list
(or the "*" list when the role has none), deduplicated in first-seen order (Go's set is unordered).
Each string is then resolved through ChatPort.resolve; one that fails is skipped with a WARN naming
it (Go instead posts to channel "" and fails there), and channels are deduplicated by id.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sidecar.engine.model import Channel
from sidecar.engine.ports import ChatPort
from sidecar.errors import SidecarError

__all__ = ["RecipientFailure", "is_email", "raw_recipients", "resolve_channels"]

_log = logging.getLogger("sidecar.engine.recipients")

WILDCARD = "*"

# RFC 5322 "specials" that may not appear in an atom (Go net/mail isAtext).
_SPECIALS = frozenset('()<>[]:;@\\,"')


def _is_atext(char: str) -> bool:
    # Go's isVchar: printable ASCII or any non-ASCII rune (RFC 6532).
    return char not in _SPECIALS and ("!" <= char <= "~" or ord(char) >= 0x80)


def _is_dot_atom(text: str) -> bool:
    if not text or not all(char == "." or _is_atext(char) for char in text):
        return False
    return not (text.startswith(".") or text.endswith(".") or ".." in text)


def _is_domain_literal(text: str) -> bool:
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    # Go's net.ParseIP: plain IPv4 or IPv6, no zone.
    if "%" in inner:
        return False
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        return False
    return True


def is_email(text: str) -> bool:
    """Go's lib.IsEmail: net/mail parses `text` as an address AND its bare address equals `text`.

    That leaves exactly a dot-atom local part, "@", and a dot-atom domain or an IP domain literal:
    display names, comments, surrounding spaces and quoted local parts all change the parsed address.
    """
    local, at, domain = text.partition("@")
    if not at:
        return False
    if not _is_dot_atom(local):
        return False
    return _is_dot_atom(domain) or _is_domain_literal(domain)


def _first_seen(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def raw_recipients(
    roles: Sequence[str],
    suggested_reviewers: Sequence[str],
    role_to_recipients: Mapping[str, Sequence[str]],
    *,
    request_id: str = "",
) -> list[str]:
    """The recipient strings for a request, in a deterministic first-seen order."""
    valid_reviewers: list[str] = []
    for reviewer in suggested_reviewers:
        if is_email(reviewer):
            valid_reviewers.append(reviewer)
        else:
            _log.warning(
                "Failed to notify a suggested reviewer with an invalid email address",
                extra={"request_id": request_id, "reviewer": reviewer},
            )
    collected: list[str] = []
    for role in roles:
        # A role without its own (non-empty) list falls back to "*", role by role.
        collected.extend(role_to_recipients.get(role) or role_to_recipients.get(WILDCARD) or ())
    collected.extend(valid_reviewers)
    return _first_seen(collected)


@dataclass(frozen=True)
class RecipientFailure:
    """A recipient that could not be resolved, kept so a later retry can try it again."""

    recipient: str
    error: SidecarError


async def resolve_channels(
    recipients: Sequence[str], chat: ChatPort, *, request_id: str = ""
) -> tuple[list[Channel], list[RecipientFailure]]:
    """Resolve each recipient to a channel; failures are logged, skipped and returned."""
    channels: dict[str, Channel] = {}
    failures: list[RecipientFailure] = []
    for recipient in recipients:
        try:
            channel = await chat.resolve(recipient)
        except SidecarError as exc:
            _log.warning(
                "Failure when fetching recipient, continuing anyway",
                extra={"request_id": request_id, "recipient": recipient, "error": str(exc)},
            )
            failures.append(RecipientFailure(recipient, exc))
            continue
        # Two recipients can land in one channel (an email listed twice under different spellings
        # that resolve alike, or a user DM'd both ways): post there once.
        channels.setdefault(channel.id, channel)
    return list(channels.values()), failures
