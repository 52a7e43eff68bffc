"""The record the sidecar keeps per access request in Teleport plugin data, as a value.

`sidecar/codec/plugindata.py` turns it into the Go plugin's flat string map and back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.domain.model import PostRef, Review

__all__ = ["Claim", "Delivery", "Facts", "PluginData", "Resolution"]


class Resolution(enum.Enum):
    """The stored resolution tag; UNRESOLVED is the empty string."""

    UNRESOLVED = ""
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    PROMOTED = "PROMOTED"


@dataclass(frozen=True)
class Claim:
    """Which replica is delivering the owed work, until when (unix seconds); others wait for it or its expiry."""

    owner: str
    until: float


@dataclass(frozen=True)
class Delivery:
    """What the sidecar still owes Mattermost for a request, kept in plugin data keys of its own (Go ignores them).

    `tracked` is False for a record the Go plugin wrote (or one from before this was kept): nothing is owed
    for what Go already did, and the first change we make starts tracking from there. Versions: a root post
    shows version 0 when posted; every change of the text it must show (a review's pending re-update, the
    resolution, the expiry) raises `edit_version`, and an edit is owed to each post below it.
    """

    tracked: bool = False
    since_ms: int = 0  # when the record was created: the search for earlier posts starts there
    roots_owed: tuple[str, ...] = ()  # recipients (as configured or suggested) still waiting for a root post
    replies_done: Mapping[str, int] = field(default_factory=dict)  # root post id → review replies in its thread
    edit_version: int = 0
    edits_done: Mapping[str, int] = field(default_factory=dict)  # root post id → the version it shows
    failed: tuple[str, ...] = ()  # permanent failures, each reported once and never retried
    claim: Claim | None = None
    # Direct messages to the requester (`[notify] requester`): the email they go to ("" for none) and how many
    # of the request's notices (announced, each review, the outcome; sidecar/engine/owed.py) were sent, in order.
    requester: str = ""
    dms_done: int = 0
    # Reminders (`[reminders]`): rounds made owed so far, when the last one was (unix ms: the next is due `every`
    # later), and per root post the rounds its thread has.
    reminder_rounds: int = 0
    reminder_last_ms: int = 0
    reminded: Mapping[str, int] = field(default_factory=dict)
    # Escalation: done once; its recipients' root posts, once they land, owe an escalation note in their thread.
    escalated: bool = False
    escalation_owed: tuple[str, ...] = ()  # escalation recipients whose root post has not landed yet
    notes_owed: tuple[str, ...] = ()  # root post ids still owed the escalation note


@dataclass(frozen=True)
class Facts:
    """What the rich texts, the requester's messages and reminders show that the Go plugin's keys lack.

    Kept in a key of our own (`tm_view`) from the announcement on, so a post can be edited and a message
    written after a restart or once the request is gone. `reviewers` pairs each suggested reviewer with their
    Mattermost username ("" when none was found); `reviews` follows the counted reviews (reasons shortened).
    """

    cluster: str = ""
    recipients: tuple[str, ...] = ()  # where the request was announced
    reviewers: tuple[tuple[str, str], ...] = ()
    friendly_names: Mapping[str, str] = field(default_factory=dict)  # resource id → friendly name
    approvals_required: int | None = None
    created: datetime | None = None
    access_start: datetime | None = None
    access_expires: datetime | None = None
    request_expires: datetime | None = None
    reviews: tuple[Review, ...] = ()


@dataclass(frozen=True)
class PluginData:
    """What the plugin remembers about one access request."""

    user: str = ""
    roles: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    request_reason: str = ""
    reviews_count: int = 0
    resolution: Resolution = Resolution.UNRESOLVED
    resolve_reason: str = ""
    max_duration: datetime | None = None
    system_annotations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suggested_reviewers: tuple[str, ...] = ()
    logins_by_role: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    messages: tuple[PostRef, ...] = ()
    delivery: Delivery = field(default_factory=Delivery)
    facts: Facts | None = None  # None: not kept (classic style, no requester messages, no reminders)
