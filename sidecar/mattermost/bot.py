"""`MattermostBot`: the engine's ChatPort over `MattermostClient`, with lookup caches.

Resolution follows the Go plugin (TP `mattermost/bot.go` `FetchRecipient`): an email becomes the bot's
DM channel with that user, `team/channel` becomes that channel (URL names, not display names), anything
else is refused with the Go text. Unlike Go, a failed lookup raises RecipientError instead of returning
a recipient with an empty channel id; the engine skips it with a warning.

Caching, so a steady-state notification costs one call per recipient (the POST):
- a resolved recipient is reused for `resolve_ttl` seconds without any lookup;
- after that, the GET lookups are revalidated with ETags by the client (304, no body), and the DM
  channel of a user id already seen is reused (DM creation is idempotent on the server anyway);
- a post refused with 403/404 drops the cached recipients of that channel, so the next event
  resolves them afresh.

Exactly once: a post made for a PostMarker carries a `pending_post_id` derived from the marker (the same
for every attempt, so the server returns the first post for a retry within its 30 s window, upstream
`server/channels/app/post.go` `deduplicateCreatePost`) and the marker itself in `props`, so `find` can
recognise it later (the channel's posts since the request was recorded, or the root post's thread).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.domain.email import is_email
from sidecar.domain.errors import (
    AccessDenied,
    NotFound,
    PermanentError,
    RecipientError,
    SidecarError,
    TransientError,
    Unauthorized,
)
from sidecar.domain.model import Channel, PostMarker, PostRef
from sidecar.mattermost.cache import LruCache, TtlCache
from sidecar.mattermost.client import MattermostClient
from sidecar.mattermost.entities import MARKER_PROP, Post, User

log = logging.getLogger(__name__)

DEFAULT_RESOLVE_TTL = 300.0

# GO (TP mattermost/bot.go FetchRecipient); {name} is %q-quoted.
RECIPIENT_FORMAT = 'Recipient must be either a user email or a channel in the format "team/channel" but got {name}'
# GO log messages (TP `integrations/access/mattermost/bot.go`).
LOOKUP_DM_FAILED = "Failed to lookup direct channel info"
LOOKUP_CHANNEL_FAILED = "Failed to lookup channel info"

# Alphabet of Mattermost ids (model.NewId); our idempotency keys look like ids.
_ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"


def split_team_channel(name: str) -> tuple[str, str] | None:
    """`team/channel` → (team, channel); None when `name` does not have exactly two parts."""
    parts = name.split("/")
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def format_error_text(name: str) -> str:
    """The Go error for a recipient that is neither an email nor `team/channel`."""
    return RECIPIENT_FORMAT.format(name=json.dumps(name, ensure_ascii=False))


def new_idempotency_key() -> str:
    """A fresh `pending_post_id`: 26 characters from Mattermost's id alphabet."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def marker_key(marker: PostMarker) -> str:
    """The `pending_post_id` of a marked post: 26 lower-case base32 characters of a hash of the marker."""
    name = f"{marker.request_id}\n{marker.recipient}\n{marker.kind.value}\n{marker.review_index}"
    digest = hashlib.sha256(name.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:26]


def marker_props(marker: PostMarker) -> dict[str, object]:
    """What a marked post carries in `props`."""
    return {
        MARKER_PROP: {
            "request_id": marker.request_id,
            "recipient": marker.recipient,
            "kind": marker.kind.value,
            "review_index": marker.review_index,
        }
    }


@dataclass(frozen=True)
class _UserLookup:
    """A cached answer of a user lookup by email: the user, or None when there is none."""

    user: User | None


def _matches(found: Mapping[str, object] | None, marker: PostMarker) -> bool:
    return found is not None and found == marker_props(marker)[MARKER_PROP]


class MattermostBot:
    """Implements sidecar.domain.ports.ChatPort. The client's lifecycle belongs to the caller."""

    def __init__(
        self,
        client: MattermostClient,
        *,
        resolve_ttl: float = DEFAULT_RESOLVE_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1024,
    ) -> None:
        self._client = client
        self._resolved: TtlCache[str, Channel] = TtlCache(resolve_ttl, max_entries=max_entries, clock=clock)
        self._dm_by_user: LruCache[str, str] = LruCache(max_entries)
        self._resolving: dict[str, asyncio.Future[Channel]] = {}
        # Users by email, found or not, for mentions and the requester's messages.
        self._users: TtlCache[str, _UserLookup] = TtlCache(resolve_ttl, max_entries=max_entries, clock=clock)

    async def check_health(self) -> None:
        """GET /users/me. Raises Unauthorized for a refused token."""
        await self._client.get_me()

    async def bot_user(self) -> User:
        """The bot's own user, revalidated by ETag on each call (a 304 in steady state)."""
        return await self._client.get_me()

    async def resolve(self, recipient: str) -> Channel:
        """Email → DM channel, `team/channel` → channel. Raises RecipientError when it cannot be resolved.

        Unauthorized and transient errors propagate as they are: they are not about this recipient.
        """
        cached = self._resolved.get(recipient)
        if cached is not None:
            return cached
        # A burst of requests for the same recipients shares one lookup instead of one each.
        pending = self._resolving.get(recipient)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve_uncached(recipient))
            self._resolving[recipient] = pending
            pending.add_done_callback(lambda _: self._resolving.pop(recipient, None))
        return await asyncio.shield(pending)

    async def _resolve_uncached(self, recipient: str) -> Channel:
        if is_email(recipient):
            channel_id = await self._resolve_email(recipient)
        else:
            parts = split_team_channel(recipient)
            if parts is None:
                raise RecipientError(recipient, format_error_text(recipient))
            channel_id = await self._resolve_team_channel(recipient, *parts)
        channel = Channel(id=channel_id, recipient=recipient)
        self._resolved.put(recipient, channel)
        return channel

    async def post(
        self,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        marker: PostMarker | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> PostRef:
        """Create a post (a reply when `root_id` is set), with `props` (message attachments) when given.

        The post carries a `pending_post_id`, so the client may retry it: the server returns the first post
        instead of creating a second within 30 s. With a marker the key is the marker's (stable across the
        caller's own retries and restarts) and the marker rides in `props` for `find`; without one it is
        fresh and only protects the retries inside this call.
        """
        key = marker_key(marker) if marker is not None else new_idempotency_key()
        sent: dict[str, Any] = dict(props or {})
        if marker is not None:
            sent.update(marker_props(marker))
        try:
            created = await self._client.create_post(
                channel_id, message, root_id, pending_post_id=key, props=sent or None
            )
        except (NotFound, AccessDenied):
            self._forget_channel(channel_id)
            raise
        return PostRef(channel_id=created.channel_id, post_id=created.id)

    async def find(self, marker: PostMarker, channel_id: str, root_id: str = "", since_ms: int = 0) -> PostRef | None:
        """The post made earlier for `marker`: in the thread of `root_id`, else in the channel since `since_ms`."""
        posts: list[Post]
        if root_id:
            posts = await self._client.get_thread(root_id)
        else:
            posts = await self._client.get_channel_posts_since(channel_id, since_ms)
        for post in posts:
            if _matches(post.marker, marker):
                return PostRef(channel_id=post.channel_id, post_id=post.id)
        return None

    async def edit(self, post: PostRef, message: str, props: Mapping[str, Any] | None = None) -> None:
        """Replace the text and props of a post we made (PUT /posts/{id}, the Go plugin's call)."""
        await self._client.update_post(post.post_id, post.channel_id, message, props=props)

    async def username(self, email: str) -> str | None:
        """The username of the Mattermost user with this email, or None when there is none.

        For @mentions, which are a nicety: a lookup the server refuses (it may hide emails from the bot) also
        answers None. Unauthorized and transient errors propagate.
        """
        user = await self._user_by_email(email)
        return user.username if user is not None else None

    async def direct_channel(self, email: str) -> Channel | None:
        """The bot's DM channel with the user of this email, or None when Mattermost has no such user.

        Nothing is logged for an unknown user (the requester may simply have no account). A server that hides
        emails from the bot raises AccessDenied; Unauthorized and transient errors propagate.
        """
        user = await self._user_by_email(email, hidden_is_unknown=False)
        if user is None:
            return None
        channel_id = self._dm_by_user.get(user.id)
        if channel_id is None:
            me = await self.bot_user()
            channel_id = (await self._client.create_direct_channel(me.id, user.id)).id
            self._dm_by_user.put(user.id, channel_id)
        return Channel(id=channel_id, recipient=email)

    async def _user_by_email(self, email: str, *, hidden_is_unknown: bool = True) -> User | None:
        cached = self._users.get(email)
        if cached is not None:
            return cached.user
        try:
            user: User | None = await self._client.get_user_by_email(email)
        except NotFound:
            user = None
        except AccessDenied:
            if not hidden_is_unknown:
                raise
            return None  # not cached: the bot's permissions may change
        self._users.put(email, _UserLookup(user))
        return user

    # ---- resolution --------------------------------------------------------------------------

    async def _resolve_email(self, email: str) -> str:
        extra = {"mm_user_email": email}
        try:
            user = await self._client.get_user_by_email(email)
            me = await self.bot_user()
            channel_id = self._dm_by_user.get(user.id)
            if channel_id is None:
                channel_id = (await self._client.create_direct_channel(me.id, user.id)).id
                self._dm_by_user.put(user.id, channel_id)
        except SidecarError as exc:
            if (err := _lookup_failed(LOOKUP_DM_FAILED, email, exc, extra)) is None:
                raise
            raise err from exc
        return channel_id

    async def _resolve_team_channel(self, recipient: str, team: str, name: str) -> str:
        extra = {"mm_team": team, "mm_channel": name}
        if not team or not name:
            exc = RecipientError(recipient, "team and channel names must not be empty")
            log.warning(LOOKUP_CHANNEL_FAILED, extra={**extra, "error": str(exc)})
            raise exc
        try:
            channel = await self._client.get_channel_by_team_and_name(team, name)
        except SidecarError as exc:
            if (err := _lookup_failed(LOOKUP_CHANNEL_FAILED, recipient, exc, extra)) is None:
                raise
            raise err from exc
        return channel.id

    def _forget_channel(self, channel_id: str) -> None:
        self._resolved.drop_where(lambda channel: channel.id == channel_id)
        for user_id, dm_id in self._dm_by_user.items():
            if dm_id == channel_id:
                self._dm_by_user.pop(user_id)


def _lookup_failed(message: str, recipient: str, exc: SidecarError, extra: dict[str, str]) -> RecipientError | None:
    """Log a failed lookup as the Go plugin does; the RecipientError to raise, or None to re-raise `exc`.

    Server refusals are WARN, like Go's API errors; transport problems are ERROR. Only refusals about
    this recipient become RecipientError: a refused token or an outage is not the recipient's fault.
    """
    level = logging.ERROR if isinstance(exc, TransientError) else logging.WARNING
    log.log(level, message, extra={**extra, "error": str(exc)})
    if isinstance(exc, Unauthorized) or not isinstance(exc, PermanentError):
        return None
    by_email = message == LOOKUP_DM_FAILED
    if isinstance(exc, NotFound):
        reason = "no such user" if by_email else "no such team or channel"
        hint = "check the address" if by_email else "use the team and channel URL names, not display names"
    elif isinstance(exc, AccessDenied):
        reason = "the bot is not allowed to look it up"
        hint = "run `teleport-mattermost check` for details"
    else:
        reason, hint = "lookup failed", ""
    return RecipientError(recipient, f"{reason}: {exc}", hint)
