"""Who gets the root posts by the static configuration: raw recipient strings from the request and config.

This is the fallback of routing (sidecar/engine/routing.py): access monitoring rules come first. Raw
recipients follow Go's `getMessageRecipients` static path (TP `integrations/access/accessrequest/app.go`):
suggested reviewers that are valid emails, plus per requested role the `role_to_recipients` list
(or the "*" list when the role has none), deduplicated in first-seen order (Go's set is unordered).
Each string is then resolved through ChatPort.resolve; one that fails is skipped with a WARN naming
it (Go instead posts to channel "" and fails there), and channels are deduplicated by id.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sidecar.domain.email import is_email
from sidecar.domain.errors import SidecarError
from sidecar.domain.model import Channel
from sidecar.domain.ports import ChatPort

__all__ = [
    "Origin",
    "RecipientFailure",
    "Source",
    "raw_recipients",
    "recipients_for",
    "resolve_channels",
    "static_recipients",
    "warn_invalid_reviewers",
]

_log = logging.getLogger("sidecar.engine.recipients")

WILDCARD = "*"

def _first_seen(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class Source(enum.Enum):
    """Where a recipient came from."""

    RULE = "access monitoring rule"
    ROLE = "role_to_recipients"
    SUGGESTED_REVIEWER = "suggested reviewer"


@dataclass(frozen=True)
class Origin:
    """One reason a recipient is on the list: a rule (by name), a requested role's entry, or the request itself."""

    source: Source
    name: str = ""  # the rule, or the requested role; "" for a suggested reviewer
    wildcard: bool = False  # a role without a list of its own: the recipient is from the "*" entry

    def describe(self) -> str:
        """For people: `rule NAME`, `role_to_recipients[ROLE]`, `role_to_recipients["*"] for role ROLE`, ..."""
        if self.source is Source.RULE:
            return f"rule {self.name}"
        if self.source is Source.ROLE and self.wildcard:
            return f'role_to_recipients["*"] for role {self.name}'
        if self.source is Source.ROLE:
            return f"role_to_recipients[{self.name}]"
        return "suggested reviewer"


def static_recipients(
    roles: Sequence[str],
    suggested_reviewers: Sequence[str],
    role_to_recipients: Mapping[str, Sequence[str]],
) -> tuple[dict[str, tuple[Origin, ...]], list[str]]:
    """({recipient: why, in first-seen order}, the suggested reviewers left out as not emails). Pure."""
    found: dict[str, list[Origin]] = {}
    for role in roles:
        # A role without its own (non-empty) list falls back to "*", role by role.
        own = role_to_recipients.get(role)
        listed = own or role_to_recipients.get(WILDCARD) or ()
        for recipient in listed:
            origin = Origin(Source.ROLE, role, wildcard=not own)
            if origin not in found.setdefault(recipient, []):
                found[recipient].append(origin)
    invalid: list[str] = []
    for reviewer in suggested_reviewers:
        if not is_email(reviewer):
            invalid.append(reviewer)
        elif Origin(Source.SUGGESTED_REVIEWER) not in found.setdefault(reviewer, []):
            found[reviewer].append(Origin(Source.SUGGESTED_REVIEWER))
    return {recipient: tuple(origins) for recipient, origins in found.items()}, invalid


def recipients_for(
    roles: Sequence[str],
    suggested_reviewers: Sequence[str],
    role_to_recipients: Mapping[str, Sequence[str]],
) -> tuple[list[str], list[str]]:
    """(the recipient strings in a deterministic first-seen order, the suggested reviewers left out). Pure."""
    found, invalid = static_recipients(roles, suggested_reviewers, role_to_recipients)
    return list(found), invalid


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
