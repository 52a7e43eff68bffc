"""The narrow ports between the engine and the outside world.

The engine (decide, the Engine, the dispatcher, the reconcile) depends only on these protocols:
PluginDataStore, RoleLookup, RuleSource and TraitsLookup (`sidecar/teleport/client.py`), RequestSource
(`sidecar/teleport/requests.py`), ResourceNames (`sidecar/teleport/inventory.py`), ChatPort
(`sidecar/mattermost/bot.py`), RootDecorator (in-chat review's buttons, wired in `sidecar/app.py`); telemetry has
its own port in `telemetry.py`. Conformance is checked by mypy
where `sidecar/app.py` wires them together.

Errors crossing a port are the classes in `sidecar/domain/errors.py`, never grpc or aiohttp exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sidecar.domain.model import AccessRequest, Channel, MonitoringRule, PostMarker, PostRef


class PluginDataStore(Protocol):
    """Teleport plugin data for one plugin name and kind `access_request`."""

    async def get(self, request_id: str) -> dict[str, str] | None:
        """The plugin's entry for the request, or None when nothing is stored."""
        ...

    async def update(self, request_id: str, set_: Mapping[str, str], expect: Mapping[str, str]) -> None:
        """Compare-and-swap write. Raises CompareFailed on an expect mismatch, NotFound for an unknown request."""
        ...


class RoleLookup(Protocol):
    """Reads roles, for the `logins_by_role` data."""

    async def role_logins(self, role: str) -> list[str]:
        """Allowed logins of a role. Raises AccessDenied when the plugin may not read roles."""
        ...


class RuleSource(Protocol):
    """Lists the access monitoring rules meant for this plugin (the routing rules' start-up and reconnect listing)."""

    async def list_rules(self) -> list[MonitoringRule]:
        """Every rule with subject `access_request` and this plugin's notification name, all pages.

        The server's filter is not trusted (Teleport's cache may skip it): callers filter again. Raises AccessDenied
        without `read` and `list` on access_monitoring_rule, TransientError when Teleport cannot answer.
        """
        ...


class TraitsLookup(Protocol):
    """Reads a user's traits, for the `user.traits` of routing conditions."""

    async def user_traits(self, user: str) -> Mapping[str, tuple[str, ...]]:
        """The user's traits (empty when it has none).

        Raises AccessDenied without `user: read` on the user, NotFound for an unknown user.
        """
        ...


#: The server ids of Mattermost's 400 answers for a post that is too long: its message, or its props. ChatPort.post
#: and ChatPort.edit raise Rejected with one of these as `server_id`; the engine then renders the post smaller.
POST_TOO_LONG_IDS = frozenset(
    {"model.post.is_valid.message_length.app_error", "model.post.is_valid.props.app_error"}
)


class ChatPort(Protocol):
    """What the engine needs from Mattermost."""

    async def check_health(self) -> None:
        """Verify the token works (GET /users/me). Raises on failure."""
        ...

    async def resolve(self, recipient: str) -> Channel:
        """Resolve an email (DM) or `team/channel`. Raises RecipientError when it cannot be resolved."""
        ...

    async def post(
        self,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        marker: PostMarker | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> PostRef:
        """Create a post (a thread reply when root_id is set) and return where it landed.

        With a marker, every attempt for the same marker is one logical post: the server deduplicates
        retries for a while, and `find` can recognise the post later. `props` (message attachments) are sent
        with the post. Raises Rejected with a `server_id` in POST_TOO_LONG_IDS when the post is too long.
        """
        ...

    async def find(self, marker: PostMarker, channel_id: str, root_id: str = "", since_ms: int = 0) -> PostRef | None:
        """A post made earlier for `marker` (in the thread of root_id, or the channel since since_ms), or None."""
        ...

    async def edit(self, post: PostRef, message: str, props: Mapping[str, Any] | None = None) -> None:
        """Replace the text and the props (none when None) of a post we made; too long as for `post`."""
        ...

    async def username(self, email: str) -> str | None:
        """The Mattermost username of the user with this email, or None when there is none (answers are cached)."""
        ...

    async def direct_channel(self, email: str) -> Channel | None:
        """The bot's direct channel with the user of this email, or None when Mattermost has no such user.

        Unlike `resolve`, an unknown user is an answer, not an error, and nothing is logged: the caller decides.
        """
        ...


@dataclass(frozen=True)
class UnreadableRequest:
    """A listed request that cannot become an AccessRequest: the reconcile skips it with a warning naming it."""

    request_id: str  # "" when the message carried no id
    error: str


class RequestSource(Protocol):
    """Lists the access requests Teleport still has (open ones and resolved ones not yet expired), for the reconcile."""

    def list_requests(self) -> AsyncIterator[AccessRequest | UnreadableRequest]:
        """Every request, fetched a page at a time as the caller iterates. Raises TransientError when the listing is
        unavailable; an iteration cut short by an error may be started over, since handling a request twice is safe.
        """
        ...


class ResourceNames(Protocol):
    """Friendly names of requested resources (a node's hostname, an app's or database's name), for the rich style."""

    async def friendly_names(self, resource_ids: Sequence[str]) -> dict[str, str]:
        """Resource id → friendly name, for those that have one and the plugin may read; the others are left out."""
        ...


@dataclass(frozen=True)
class RootTarget:
    """One root post of a request as it is posted or edited, for a `RootDecorator`.

    `post_id` is "" for a post not made yet. `pending` is True only while the request is known to be pending (its
    latest state seen, and nothing resolved in the record); `long_term` is the request's kind; `to_requester` marks
    the requester's own DM with the bot; `request_expires` is when the pending request lapses, when known.
    """

    request_id: str
    channel_id: str
    post_id: str = ""
    pending: bool = False
    long_term: bool = False
    to_requester: bool = False
    request_expires: datetime | None = None


class RootDecorator(Protocol):
    """Adds to a request's root posts what the message style does not render (in-chat review's buttons).

    With a decorator, every root post and every edit of one carries `props.attachments` as the decorator returns
    them, even an empty list (an edit must send it, or Mattermost keeps the old attachments).
    """

    def root_attachments(self, target: RootTarget, attachments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """`props.attachments` for `target`: `attachments` as the style rendered them, with or without additions."""
        ...
