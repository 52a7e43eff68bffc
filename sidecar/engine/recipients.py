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

__all__ = ["RecipientFailure", "raw_recipients", "resolve_channels"]

_log = logging.getLogger("sidecar.engine.recipients")

WILDCARD = "*"

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
