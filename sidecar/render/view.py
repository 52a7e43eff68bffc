"""What the rich style renders: a request as the reader should see it, and the post it becomes.

The engine (or whoever integrates) fills a `RequestView` from the stored record, the latest request and
the lookups it made (friendly names, logins, Mattermost usernames); the renderers read nothing else, so
they stay pure and every edit of a post shows the facts of its moment, `now` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sidecar.domain.model import Review
from sidecar.domain.record import Resolution

__all__ = ["RequestView", "ResourceView", "ReviewerView", "RichPost", "resource_from_id"]


@dataclass(frozen=True)
class ResourceView:
    """One requested resource: its kind (node, app, db, kube_cluster, ...), name and friendly name if known."""

    kind: str
    name: str
    friendly_name: str = ""
    cluster: str = ""
    sub_resource: str = ""


def resource_from_id(resource_id: str, friendly_name: str = "") -> ResourceView:
    """Split Teleport's `/<cluster>/<kind>/<name>[/<sub-resource>]`; anything else is kept whole as the name."""
    parts = resource_id.split("/", 4)
    if len(parts) < 4 or parts[0] != "" or not all(parts[1:4]):
        return ResourceView(kind="", name=resource_id, friendly_name=friendly_name)
    return ResourceView(
        kind=parts[2],
        name=parts[3],
        friendly_name=friendly_name,
        cluster=parts[1],
        sub_resource=parts[4] if len(parts) == 5 else "",
    )


@dataclass(frozen=True)
class ReviewerView:
    """A suggested reviewer as Teleport names them, and their Mattermost username when one was found."""

    name: str
    mattermost_username: str | None = None


@dataclass(frozen=True)
class RequestView:
    """Everything the rich texts show about one access request at the moment `now`.

    `resolution` is the stored status tag (UNRESOLVED is pending). `approvals_required` is the approval
    threshold when known. `access_start`/`access_expires` bound the access granted; `request_expires` is
    when the pending request itself lapses. `link` is the request's Web UI page, or None (no link: the
    texts show the `tsh request review` commands instead).
    """

    request_id: str
    requester: str
    roles: tuple[str, ...]
    now: datetime
    resolution: Resolution = Resolution.UNRESOLVED
    cluster: str = ""
    resources: tuple[ResourceView, ...] = ()
    logins_by_role: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reason: str = ""
    suggested_reviewers: tuple[ReviewerView, ...] = ()
    reviews: tuple[Review, ...] = ()
    approvals_required: int | None = None
    resolve_reason: str = ""
    created: datetime | None = None
    access_start: datetime | None = None
    access_expires: datetime | None = None
    request_expires: datetime | None = None
    link: str | None = None


@dataclass(frozen=True)
class RichPost:
    """A post to send: its Markdown `message` and its `props.attachments` (empty for a text-only post)."""

    message: str
    attachments: list[dict[str, Any]] = field(default_factory=list)

    def props(self) -> dict[str, Any]:
        """The post's `props`: `{"attachments": [...]}`, or `{}` when it has none."""
        return {"attachments": self.attachments} if self.attachments else {}
