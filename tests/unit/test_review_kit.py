"""Test doubles and a harness for the in-chat review tests (no tests here; the test_review_* modules import it).

The world: request R1 (pending, requested by carol) announced in two team channels, CH1 (post P1) and CH2 (post
P2); Mattermost users alice, bob, carol (bound by trait to the Teleport users of the same name), mallory (bound
to nobody), twin (bound to two Teleport users), robot (a bot) and ghost (deactivated). Mattermost's trigger ids
are signed with a real ECDSA P-256 key made for the test.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sidecar.domain.errors import AlreadyExists, NotFound, SidecarError
from sidecar.domain.model import AccessRequest, PostRef, RequestState
from sidecar.domain.secret import Secret
from sidecar.review.buttons import ButtonTarget, ReviewButtons
from sidecar.review.pipeline import ClickPipeline, ReviewPorts
from sidecar.review.ports import ChatUser
from sidecar.review.settings import Binding, EmailGuards, ReasonMode, ReviewSettings
from sidecar.review.signing import KeyRing

NOW = 1_900_000_000.0
PUBLIC_URL = "https://sidecar.example.com:8443"
TRAIT = "mattermost_user_id"
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 40).decode()


def mm_id(name: str) -> str:
    """A stable 26-character Mattermost-style id for a test name."""
    digest = hashlib.sha256(name.encode()).digest()
    return base64.b32encode(digest[:16]).decode().rstrip("=").lower()


R1 = "0b8f3c4e-1d2a-4c55-9e77-5f0a1b2c3d4e"
R2 = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
CH1, CH2, DM = mm_id("channel-1"), mm_id("channel-2"), mm_id("dm-carol")
P1, P2, P3 = mm_id("post-1"), mm_id("post-2"), mm_id("post-3")
ALICE, BOB, CAROL = mm_id("alice"), mm_id("bob"), mm_id("carol")
MALLORY, TWIN, ROBOT, GHOST = mm_id("mallory"), mm_id("twin"), mm_id("robot"), mm_id("ghost")


def ring(*keys: tuple[str, str]) -> KeyRing:
    """A key ring from (id, base64 key) pairs; the default is one key, "k1"."""
    return KeyRing([(kid, Secret(key)) for kid, key in (keys or (("k1", KEY_A),))])


def settings(**overrides: Any) -> ReviewSettings:
    """Enabled settings for the tests (reason off unless overridden)."""
    values: dict[str, Any] = {
        "enabled": True,
        "listen_addr": "127.0.0.1:0",
        "host": "127.0.0.1",
        "port": 0,
        "public_url": PUBLIC_URL,
        "keys": ring(),
        "binding": Binding.TRAIT,
        "trait": TRAIT,
        "email": EmailGuards(),
        "reason": ReasonMode.OFF,
        "verify_trigger_id": True,
        "action_ttl": 24 * 3600.0,
    }
    values.update(overrides)
    return ReviewSettings(**values)


class Clock:
    """A settable wall clock (unix seconds)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- Mattermost -------------------------------------------------------------------------------------


class MattermostKey:
    """Mattermost's AsymmetricSigningKey: mints trigger ids as the server does, and publishes the public key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def published(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def trigger(self, user_id: str, at: float, client_id: str | None = None) -> str:
        client = client_id or mm_id(secrets.token_hex(8))
        signed = f"{client}:{user_id}:{int(at * 1000)}:"
        signature = self.key.sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode((signed + base64.b64encode(signature).decode()).encode()).decode()


@dataclass
class FakeSigningKey:
    """SigningKeySource: the published key (replaceable), counting fetches; `error` is raised when set."""

    published: str
    fetches: int = 0
    error: SidecarError | None = None

    async def signing_public_key(self) -> str:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return self.published


@dataclass
class FakeChatUsers:
    users: dict[str, ChatUser] = field(default_factory=dict)
    error: SidecarError | None = None
    calls: list[str] = field(default_factory=list)

    async def chat_user(self, user_id: str) -> ChatUser:
        self.calls.append(user_id)
        if self.error is not None:
            raise self.error
        if user_id not in self.users:
            raise NotFound(f"GET /users/{user_id}: 404")
        return self.users[user_id]


@dataclass
class FakeDialogs:
    opened: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    error: SidecarError | None = None

    async def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.opened.append((trigger_id, url, dialog))


# --- plugin data and Teleport -------------------------------------------------------------------------


@dataclass
class FakePosts:
    posts: dict[str, set[PostRef]] = field(default_factory=dict)
    error: SidecarError | None = None

    async def posts_of(self, request_id: str) -> frozenset[PostRef]:
        if self.error is not None:
            raise self.error
        return frozenset(self.posts.get(request_id, set()))


@dataclass
class FakeRequests:
    requests: dict[str, AccessRequest] = field(default_factory=dict)
    error: SidecarError | None = None

    async def access_request(self, request_id: str) -> AccessRequest | None:
        if self.error is not None:
            raise self.error
        return self.requests.get(request_id)


@dataclass(frozen=True)
class TeleportUser:
    name: str
    traits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class FakeDirectory:
    """UserDirectory and TraitsLookup; `legacy` ignores the trait filter and returns every user, as an Auth
    without it does (with an adapter that does not check again either)."""

    users: list[TeleportUser] = field(default_factory=list)
    legacy: bool = False
    error: SidecarError | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def find_users_by_trait(self, trait: str, value: str) -> Sequence[str]:
        self.calls.append((trait, value))
        if self.error is not None:
            raise self.error
        if self.legacy:
            return [u.name for u in self.users]
        return [u.name for u in self.users if value in u.traits.get(trait, ())]

    async def user_traits(self, user: str) -> Mapping[str, tuple[str, ...]]:
        for candidate in self.users:
            if candidate.name == user:
                return candidate.traits
        raise NotFound(f"user {user} not found")


@dataclass(frozen=True)
class Submitted:
    request_id: str
    author: str
    state: RequestState
    reason: str


@dataclass
class FakeSubmitter:
    """ReviewSubmitter recording every review; `error` is raised instead when set."""

    submitted: list[Submitted] = field(default_factory=list)
    error: SidecarError | None = None
    attempts: int = 0

    async def submit_review_on_behalf(self, request_id: str, author: str, state: RequestState, reason: str) -> object:
        self.attempts += 1
        if self.error is not None:
            raise self.error
        if any(s.request_id == request_id and s.author == author for s in self.submitted):
            raise AlreadyExists(f"user {author!r} has already reviewed this request")
        self.submitted.append(Submitted(request_id, author, state, reason))
        return None


def request(request_id: str, user: str, state: RequestState, *, long_term: bool = False) -> AccessRequest:
    """An access request as the lookup returns it."""
    return AccessRequest(id=request_id, user=user, roles=("editor",), state=state, long_term=long_term)


def chat(user_id: str, username: str, **extra: Any) -> ChatUser:
    return ChatUser(id=user_id, username=username, **extra)


def bound(name: str, *ids: str) -> TeleportUser:
    return TeleportUser(name, {TRAIT: ids, "logins": ("root",)})


# --- the harness -----------------------------------------------------------------------------------------


class World:
    """The doubles, the pipeline and the buttons, wired together."""

    def __init__(self, **setting_overrides: Any) -> None:
        self.clock = Clock()
        self.settings = settings(**setting_overrides)
        self.mattermost = MattermostKey()
        self.key_source = FakeSigningKey(self.mattermost.published())
        self.chat_users = FakeChatUsers(
            {
                ALICE: chat(ALICE, "alice", email="alice@example.com", email_verified=True),
                BOB: chat(BOB, "bob", email="bob@example.com", email_verified=True, auth_service="saml"),
                CAROL: chat(CAROL, "carol", email="carol@example.com", email_verified=True),
                MALLORY: chat(MALLORY, "mallory", email="mallory@example.com"),
                TWIN: chat(TWIN, "twin", email="twin@example.com", email_verified=True),
                ROBOT: chat(ROBOT, "robot", is_bot=True),
                GHOST: chat(GHOST, "ghost", deleted=True),
            }
        )
        self.directory = FakeDirectory(
            [
                bound("alice", ALICE),
                bound("bob", BOB),
                bound("carol", CAROL),
                bound("twin-a", TWIN),
                bound("twin-b", TWIN),
                bound("robot", ROBOT),
                bound("ghost", GHOST),
                TeleportUser("alice@example.com", {"logins": ("alice",)}),
                TeleportUser("twin@example.com", {TRAIT: (mm_id("another account"),)}),
                TeleportUser("mallory@example.com", {}),
            ]
        )
        self.posts = FakePosts({R1: {PostRef(CH1, P1), PostRef(CH2, P2)}, R2: {PostRef(CH1, P3)}})
        self.requests = FakeRequests(
            {
                R1: request(R1, "carol", RequestState.PENDING),
                R2: request(R2, "bob", RequestState.PENDING),
            }
        )
        self.submitter = FakeSubmitter()
        self.dialogs = FakeDialogs()
        self.ports = ReviewPorts(
            posts=self.posts,
            chat_users=self.chat_users,
            requests=self.requests,
            directory=self.directory,
            traits=self.directory,
            submitter=self.submitter,
            dialogs=self.dialogs,
            signing_key=self.key_source,
        )
        self.pipeline = ClickPipeline(self.settings, self.ports, clock=self.clock)
        assert self.settings.keys is not None
        self.buttons = ReviewButtons(
            public_url=PUBLIC_URL, keys=self.settings.keys, action_ttl=self.settings.action_ttl, clock=self.clock
        )

    def context(self, request_id: str = R1, channel_id: str = CH1, action: str = "approve", post_id: str = "") -> Any:
        """The signed context of the button Mattermost stored for this post."""
        expires = datetime.fromtimestamp(NOW + 7200, UTC)
        target = ButtonTarget(request_id, channel_id, post_id=post_id, request_expires=expires)
        [attachment] = self.buttons.pending_attachments(target, [])
        [button] = [a for a in attachment["actions"] if a["id"] == action]
        return button["integration"]["context"]

    def body(
        self,
        user_id: str,
        *,
        request_id: str = R1,
        channel_id: str = CH1,
        post_id: str = P1,
        action: str = "approve",
        context: Any = None,
        trigger_id: str | None = None,
    ) -> dict[str, Any]:
        """The body Mattermost POSTs for a click by `user_id` on the post (PostActionIntegrationRequest)."""
        return {
            "user_id": user_id,
            "user_name": "someone",
            "channel_id": channel_id,
            "channel_name": "reviews",
            "team_id": mm_id("team"),
            "team_domain": "acme",
            "post_id": post_id,
            "trigger_id": trigger_id if trigger_id is not None else self.mattermost.trigger(user_id, self.clock()),
            "type": "button",
            "data_source": "",
            "context": context if context is not None else self.context(request_id, channel_id, action),
        }

    async def click(self, user_id: str, **kwargs: Any) -> dict[str, Any]:
        return await self.pipeline.handle_action(self.body(user_id, **kwargs))

    def dialog_body(
        self, user_id: str, state: Any, reason: str = "", channel_id: str = CH1, **extra: Any
    ) -> dict[str, Any]:
        """The body Mattermost POSTs for a dialog submission by `user_id`."""
        return {
            "type": "dialog_submission",
            "callback_id": "teleport-review",
            "state": state,
            "user_id": user_id,
            "channel_id": channel_id,
            "team_id": mm_id("team"),
            "submission": {"reason": reason},
            "cancelled": False,
            **extra,
        }
