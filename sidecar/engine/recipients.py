"""Who gets the root posts: raw recipient strings from the request and config, then channels.

Raw recipients follow Go's `getMessageRecipients` without access monitoring rules (TP
`integrations/access/accessrequest/app.go`):
suggested reviewers that are valid emails, plus per requested role the `role_to_recipients` list
(or the "*" list when the role has none), deduplicated in first-seen order (Go's set is unordered).
Each string is then resolved through ChatPort.resolve; one that fails is skipped with a WARN naming
it (Go instead posts to channel "" and fails there), and channels are deduplicated by id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sidecar.domain.email import is_email
from sidecar.domain.errors import SidecarError
from sidecar.domain.model import Channel
from sidecar.domain.ports import ChatPort

__all__ = ["RecipientFailure", "raw_recipients", "recipients_for", "resolve_channels", "warn_invalid_reviewers"]

_log = logging.getLogger("sidecar.engine.recipients")

WILDCARD = "*"

def _first_seen(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def recipients_for(
    roles: Sequence[str],
    suggested_reviewers: Sequence[str],
    role_to_recipients: Mapping[str, Sequence[str]],
) -> tuple[list[str], list[str]]:
    """(the recipient strings in a deterministic first-seen order, the suggested reviewers left out). Pure."""
    valid_reviewers = [reviewer for reviewer in suggested_reviewers if is_email(reviewer)]
    invalid = [reviewer for reviewer in suggested_reviewers if not is_email(reviewer)]
    collected: list[str] = []
    for role in roles:
        # A role without its own (non-empty) list falls back to "*", role by role.
        collected.extend(role_to_recipients.get(role) or role_to_recipients.get(WILDCARD) or ())
    collected.extend(valid_reviewers)
    return _first_seen(collected), invalid


def warn_invalid_reviewers(invalid: Iterable[str], *, request_id: str = "") -> None:
    """Go's WARN for each suggested reviewer that is not an email address."""
    for reviewer in invalid:
        _log.warning(
            "Failed to notify a suggested reviewer with an invalid email address",
            extra={"request_id": request_id, "reviewer": reviewer},
        )


def raw_recipients(
    roles: Sequence[str],
    suggested_reviewers: Sequence[str],
    role_to_recipients: Mapping[str, Sequence[str]],
    *,
    request_id: str = "",
) -> list[str]:
    """The recipient strings for a request, in a deterministic first-seen order; invalid reviewers are logged."""
    recipients, invalid = recipients_for(roles, suggested_reviewers, role_to_recipients)
    warn_invalid_reviewers(invalid, request_id=request_id)
    return recipients


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
