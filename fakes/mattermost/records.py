"""The records a fake server stores: users, bots, tokens, teams, channels, memberships, posts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    """A user account (human or bot)."""

    id: str
    username: str
    email: str
    first_name: str
    last_name: str
    roles: str
    create_at: int
    update_at: int
    is_bot: bool = False
    bot_description: str = ""
    nickname: str = ""
    position: str = ""
    locale: str = "en"
    last_password_update: int = 0
    props: dict[str, str] = field(default_factory=dict)
    notify_props: dict[str, str] = field(default_factory=dict)
    #: Deactivation time in ms (0: active); a deactivated user's tokens no longer open a session.
    delete_at: int = 0
    #: "" for email/password accounts, else the SSO service (`gitlab`, `saml`, `ldap`, `openid`, ...).
    auth_service: str = ""
    auth_data: str = ""
    email_verified: bool = True

    @property
    def is_admin(self) -> bool:
        """Holds the system_admin role."""
        return "system_admin" in self.roles.split()

    @property
    def is_active(self) -> bool:
        """Not deactivated."""
        return self.delete_at == 0


@dataclass
class Bot:
    """A bot record; its user shares the id."""

    user_id: str
    username: str
    display_name: str
    description: str
    owner_id: str
    create_at: int
    update_at: int


@dataclass
class AccessToken:
    """A personal access token (bots and humans)."""

    id: str
    token: str
    user_id: str
    description: str
    is_active: bool = True


@dataclass
class Team:
    """A team."""

    id: str
    name: str
    display_name: str
    type: str
    create_at: int
    update_at: int
    invite_id: str
    email: str = ""
    description: str = ""
    allow_open_invite: bool = False


@dataclass
class Channel:
    """A channel: O public, P private, D direct."""

    id: str
    team_id: str
    type: str
    name: str
    display_name: str
    creator_id: str
    create_at: int
    update_at: int
    last_post_at: int = 0
    last_root_post_at: int = 0
    total_msg_count: int = 0
    total_msg_count_root: int = 0
    header: str = ""
    purpose: str = ""


@dataclass
class ChannelMember:
    """Membership of a user in a channel."""

    channel_id: str
    user_id: str
    last_viewed_at: int
    last_update_at: int


@dataclass
class TeamMember:
    """Membership of a user in a team."""

    team_id: str
    user_id: str


@dataclass
class Post:
    """A stored post. `props` keeps action integrations; they are stripped only in responses (payloads.py)."""

    id: str
    seq: int
    create_at: int
    update_at: int
    user_id: str
    channel_id: str
    root_id: str
    message: str
    type: str
    props: dict[str, Any]
    file_ids: list[str]
    edit_at: int = 0
    delete_at: int = 0
    is_pinned: bool = False
    has_reactions: bool = False
    hashtags: str = ""


@dataclass(frozen=True)
class PostEvent:
    """One write to a post: `create`, `update` (PUT), `patch` or `action` (integration update)."""

    kind: str
    at: int
    user_id: str
    message: str
    props: dict[str, Any]


@dataclass(frozen=True)
class EphemeralPost:
    """An ephemeral post only `user_id` sees (from an integration's `ephemeral_text`); `post_id` is the post
    whose button was clicked (not part of the real ephemeral post, kept for assertions)."""

    id: str
    user_id: str
    channel_id: str
    root_id: str
    message: str
    create_at: int
    type: str = "system_ephemeral"
    props: dict[str, Any] = field(default_factory=dict)
    post_id: str = ""


@dataclass(frozen=True)
class OpenedDialog:
    """A dialog the server pushed to `user_id` (`POST /actions/dialogs/open`).

    `trigger_id` is the client trigger id the client receives in place of the signed one; `problems` lists
    what `Dialog.IsValid` found (the real server only logs them and opens the dialog anyway).
    """

    id: str
    user_id: str
    trigger_id: str
    url: str
    dialog: dict[str, Any]
    at: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Session:
    """The authenticated caller."""

    user: User
    token: AccessToken


@dataclass(frozen=True)
class PostPage:
    """A PostList: ids newest first plus neighbours for paging."""

    posts: list[Post]
    next_post_id: str = ""
    prev_post_id: str = ""
    has_next: bool | None = None
