"""In-memory fakes of the engine ports (sidecar/domain/ports.py) for unit tests.

FakePluginDataStore applies Teleport's plugin-data update rules (upstream `api/types/plugin_data.go`) with the
fake Auth's `apply_update` (fakes/teleport_auth/plugin_data.py): Expect is checked against the stored entry (a
missing entry or key reads as ""), a key Set to "" is deleted, and an entry left empty is removed. FakeChat
records every call and can be told to fail.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fakes.teleport_auth.plugin_data import ExpectMismatch, apply_update
from sidecar.domain.errors import AccessDenied, CompareFailed, NotFound, RecipientError, Rejected, TransientError
from sidecar.domain.model import Channel, PostMarker, PostRef

#: What Mattermost answers for a message over its limit (the fake chat's `max_length`).
TOO_LONG_ID = "model.post.is_valid.message_length.app_error"


@dataclass
class StoreWrite:
    """One successful update call, as the store saw it."""

    request_id: str
    set_: dict[str, str]
    expect: dict[str, str]


class FakePluginDataStore:
    """PluginDataStore with real compare-and-swap semantics; yields to the loop on every call."""

    def __init__(self, known_requests: set[str] | None = None) -> None:
        self.entries: dict[str, dict[str, str]] = {}
        self.writes: list[StoreWrite] = []
        self.conflicts = 0
        self.known_requests = known_requests
        # Called before each update is checked; may raise (fault injection) or change entries (races).
        self.before_update: Callable[[str], None] | None = None
        self.get_errors: list[Exception] = []
        self.reads = 0

    async def get(self, request_id: str) -> dict[str, str] | None:
        await asyncio.sleep(0)
        self.reads += 1
        if self.get_errors:
            raise self.get_errors.pop(0)
        entry = self.entries.get(request_id)
        return dict(entry) if entry is not None else None

    async def update(self, request_id: str, set_: Mapping[str, str], expect: Mapping[str, str]) -> None:
        await asyncio.sleep(0)
        if self.known_requests is not None and request_id not in self.known_requests:
            raise NotFound(f"access request {request_id} not found")
        if self.before_update is not None:
            self.before_update(request_id)
        try:
            updated = apply_update(self.entries.get(request_id), set_, expect)
        except ExpectMismatch as exc:
            self.conflicts += 1
            raise CompareFailed(f"plugin data {exc.key!r}: expected {exc.expected!r}, found {exc.found!r}") from None
        if updated is None:
            self.entries.pop(request_id, None)
        else:
            self.entries[request_id] = updated
        self.writes.append(StoreWrite(request_id, dict(set_), dict(expect)))


class FakeRoleLookup:
    """RoleLookup over a dict; `denied` makes every lookup raise AccessDenied."""

    def __init__(self, logins: Mapping[str, list[str]] | None = None, *, denied: bool = False) -> None:
        self.logins = dict(logins or {})
        self.denied = denied
        self.calls: list[str] = []

    async def role_logins(self, role: str) -> list[str]:
        self.calls.append(role)
        if self.denied:
            raise AccessDenied("access denied to perform action 'read' on 'role'")
        if role not in self.logins:
            raise NotFound(f"role {role} is not found")
        return list(self.logins[role])


@dataclass(frozen=True)
class SentPost:
    """A post the fake accepted."""

    channel_id: str
    post_id: str
    message: str
    root_id: str
    marker: PostMarker | None = None
    props: Mapping[str, Any] | None = None


@dataclass
class FakeChat:
    """ChatPort recording calls. `channels` maps recipient strings to channel ids.

    An email in `channels` is also a Mattermost user (`direct_channel` finds its DM channel); `usernames` maps
    emails to usernames. A message longer than `max_length` is refused as Mattermost refuses it.
    """

    channels: dict[str, str] = field(default_factory=dict)
    resolve_errors: dict[str, Exception] = field(default_factory=dict)
    post_errors: dict[str, Exception] = field(default_factory=dict)  # channel id → error for new root posts
    reply_errors: dict[str, Exception] = field(default_factory=dict)  # root post id → error for replies
    edit_errors: dict[str, Exception] = field(default_factory=dict)  # post id → error
    posts: list[SentPost] = field(default_factory=list)
    edits: list[tuple[PostRef, str]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    adopted: list[PostRef] = field(default_factory=list)
    finds: list[PostMarker] = field(default_factory=list)
    # Like the server's pending_post_id window: a post for a marker already posted returns the first post.
    dedupe: bool = True
    # Posts that land but whose answer is lost (channel id or root post id → remaining count): the call raises.
    lose_answers: dict[str, int] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    max_length: int | None = None
    edit_props: list[Mapping[str, Any] | None] = field(default_factory=list)
    too_long: int = 0  # posts and edits refused for their length
    direct_lookups: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def check_health(self) -> None:
        await asyncio.sleep(0)

    async def resolve(self, recipient: str) -> Channel:
        await asyncio.sleep(0)
        self.resolved.append(recipient)
        if recipient in self.resolve_errors:
            raise self.resolve_errors[recipient]
        if recipient not in self.channels:
            raise RecipientError(recipient, "no such user or channel")
        return Channel(id=self.channels[recipient], recipient=recipient)

    def _check_length(self, message: str) -> None:
        if self.max_length is not None and len(message) > self.max_length:
            self.too_long += 1
            raise Rejected("POST /api/v4/posts: HTTP 400 " + TOO_LONG_ID, 400, TOO_LONG_ID)

    async def post(
        self,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        marker: PostMarker | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> PostRef:
        await asyncio.sleep(0)
        errors = self.reply_errors if root_id else self.post_errors
        key = root_id or channel_id
        if key in errors:
            raise errors[key]
        self._check_length(message)
        if self.dedupe and marker is not None:
            for sent in self.posts:
                if sent.marker == marker:
                    return PostRef(channel_id=sent.channel_id, post_id=sent.post_id)
        post = SentPost(channel_id, f"post-{next(self._ids)}", message, root_id, marker, props)
        self.posts.append(post)
        if self.lose_answers.get(key, 0) > 0:
            self.lose_answers[key] -= 1
            raise TransientError("the connection broke before the answer arrived")
        return PostRef(channel_id=channel_id, post_id=post.post_id)

    async def find(self, marker: PostMarker, channel_id: str, root_id: str = "", since_ms: int = 0) -> PostRef | None:
        await asyncio.sleep(0)
        self.finds.append(marker)
        for sent in self.posts:
            if sent.marker == marker and sent.channel_id == channel_id and sent.root_id == root_id:
                return PostRef(channel_id=sent.channel_id, post_id=sent.post_id)
        return None

    async def edit(self, post: PostRef, message: str, props: Mapping[str, Any] | None = None) -> None:
        await asyncio.sleep(0)
        if post.post_id in self.edit_errors:
            raise self.edit_errors[post.post_id]
        self._check_length(message)
        ours = any(sent.post_id == post.post_id and not sent.root_id for sent in self.posts)
        # Posts the Go plugin made before us are not in `posts`; tests list them in `adopted`.
        if not ours and post not in self.adopted:
            raise NotFound(f"post {post.post_id} not found")
        self.edits.append((post, message))
        self.edit_props.append(props)

    async def username(self, email: str) -> str | None:
        await asyncio.sleep(0)
        return self.usernames.get(email)

    async def direct_channel(self, email: str) -> Channel | None:
        await asyncio.sleep(0)
        self.direct_lookups.append(email)
        if email in self.resolve_errors:
            raise self.resolve_errors[email]
        channel_id = self.channels.get(email)
        return Channel(id=channel_id, recipient=email) if channel_id is not None and "@" in email else None

    def in_channel(self, channel_id: str) -> list[SentPost]:
        """Posts made in one channel, in order."""
        return [post for post in self.posts if post.channel_id == channel_id]

    def thread(self, root_id: str) -> list[SentPost]:
        """Replies in one thread, in order."""
        return [post for post in self.posts if post.root_id == root_id]


    def root_posts(self) -> list[SentPost]:
        """New (non-reply) posts, in order."""
        return [post for post in self.posts if not post.root_id]

    def replies(self) -> list[SentPost]:
        """Thread replies, in order."""
        return [post for post in self.posts if post.root_id]


class FakeTraits:
    """TraitsLookup over a dict of users; `error` makes every lookup raise it."""

    def __init__(self, users: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
        self.users = {user: {k: tuple(v) for k, v in traits.items()} for user, traits in (users or {}).items()}
        self.error: Exception | None = None
        self.calls: list[str] = []

    async def user_traits(self, user: str) -> Mapping[str, tuple[str, ...]]:
        await asyncio.sleep(0)
        self.calls.append(user)
        if self.error is not None:
            raise self.error
        if user not in self.users:
            raise NotFound(f"user {user} is not found")
        return self.users[user]


class FakeNames:
    """ResourceNames over a dict."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names = dict(names or {})
        self.calls: list[tuple[str, ...]] = []

    async def friendly_names(self, resource_ids: Sequence[str]) -> dict[str, str]:
        await asyncio.sleep(0)
        self.calls.append(tuple(resource_ids))
        return {rid: self.names[rid] for rid in resource_ids if rid in self.names}
