"""In-memory Mattermost state and the server-side rules that change it (permissions, validation).

Every operation takes the calling user and raises `ApiError` exactly where the real server answers
with an error, so the HTTP layer only parses input and renders output.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fakes.mattermost import errors
from fakes.mattermost.clock import Clock, millis
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.ids import IdGenerator, is_valid_id
from fakes.mattermost.seed import Seed

#: `PendingPostIDsCacheTTL` of the real server.
PENDING_POST_TTL_SECONDS = 30.0
#: `PostPropsMaxRunes`.
POST_PROPS_MAX_RUNES = 800_000
_HASHTAG = re.compile(r"(?:^|\s)(#[A-Za-z][A-Za-z0-9_\-.]*[A-Za-z0-9])")
_USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$|^[^@\s<>\"]+@[^@\s<>\".]+$")


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

    @property
    def is_admin(self) -> bool:
        """Holds the system_admin role."""
        return "system_admin" in self.roles.split()


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
    """A stored post. `props` keeps action integrations; they are stripped only on the wire."""

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
    """An ephemeral message only `user_id` sees (from an integration's `ephemeral_text`)."""

    id: str
    user_id: str
    channel_id: str
    root_id: str
    message: str
    create_at: int


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


class State:
    """All data of one fake server, rebuilt from its seed on `reset()`."""

    def __init__(self, seed: Seed, config: ServerConfig, clock: Clock) -> None:
        self.seed = seed
        self.config = config
        self.clock = clock
        self.reset()

    # ------------------------------------------------------------------ setup

    def reset(self) -> None:
        """Drop everything and load the seed again (ids are the same as the first time)."""
        self._ids = IdGenerator(self.seed.source)
        self._seq = 0
        self.users: dict[str, User] = {}
        self.bots: dict[str, Bot] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.teams: dict[str, Team] = {}
        self.channels: dict[str, Channel] = {}
        self.channel_members: dict[tuple[str, str], ChannelMember] = {}
        self.team_members: dict[tuple[str, str], TeamMember] = {}
        self.posts: dict[str, Post] = {}
        self.history: dict[str, list[PostEvent]] = {}
        self.ephemeral: list[EphemeralPost] = []
        self._pending: dict[str, tuple[str, float]] = {}
        self._load_seed()

    def new_id(self) -> str:
        """Next deterministic id."""
        return self._ids.next_id()

    def now(self) -> int:
        """Current time in milliseconds."""
        return millis(self.clock)

    def _load_seed(self) -> None:
        seed = self.seed
        a = seed.admin
        admin = self._add_user(a.username, a.email, a.first_name, a.last_name, "system_admin system_user")
        self._add_token(admin.id, seed.admin.token, "seeded admin token")
        for seed_user in seed.users:
            created = self._add_user(
                seed_user.username, seed_user.email, seed_user.first_name, seed_user.last_name, "system_user"
            )
            if seed_user.token:
                self._add_token(created.id, seed_user.token, "seeded token")
        for bot in seed.bots:
            owner = self.user_by_username(bot.owner)
            assert owner is not None  # the seed parser checked the reference
            bot_user = self.add_bot(bot.username, bot.display_name, bot.description, owner.id)
            self._add_token(bot_user.id, bot.token, "seeded bot token")
        for team in seed.teams:
            created_team = self._add_team(team.name, team.display_name, team.type)
            for member in team.members:
                self._join_team(created_team.id, self._seed_user(member).id)
        for channel in seed.channels:
            team_id = next(t.id for t in self.teams.values() if t.name == channel.team)
            creator = self.user_by_username(seed.admin.username)
            assert creator is not None
            created_channel = self._add_channel(team_id, channel.type, channel.name, channel.display_name, creator.id)
            for member in channel.members:
                user = self._seed_user(member)
                self._join_team(team_id, user.id)
                self._join_channel(created_channel.id, user.id)

    def _seed_user(self, username: str) -> User:
        user = self.user_by_username(username)
        assert user is not None  # the seed parser checked the reference
        return user

    def _add_user(self, username: str, email: str, first: str, last: str, roles: str) -> User:
        now = self.now()
        user = User(
            id=self.new_id(),
            username=username,
            email=email,
            first_name=first,
            last_name=last,
            roles=roles,
            create_at=now,
            update_at=now,
            last_password_update=now,
            notify_props=_default_user_notify_props(username),
        )
        self.users[user.id] = user
        return user

    def add_bot(self, username: str, display_name: str, description: str, owner_id: str) -> User:
        """Create a bot and its user (no permission checks: callers check)."""
        now = self.now()
        user = User(
            id=self.new_id(),
            username=username,
            email=f"{username}@localhost",
            first_name=display_name,
            last_name="",
            roles="system_user",
            create_at=now,
            update_at=now,
            is_bot=True,
            bot_description=description,
            notify_props=_default_user_notify_props(username),
        )
        self.users[user.id] = user
        self.bots[user.id] = Bot(user.id, username, display_name, description, owner_id, now, now)
        return user

    def _add_token(self, user_id: str, token: str, description: str) -> AccessToken:
        record = AccessToken(self.new_id(), token, user_id, description)
        self.tokens[token] = record
        return record

    def _add_team(self, name: str, display_name: str, team_type: str) -> Team:
        now = self.now()
        team = Team(self.new_id(), name, display_name, team_type, now, now, invite_id=self.new_id())
        self.teams[team.id] = team
        return team

    def _add_channel(self, team_id: str, channel_type: str, name: str, display: str, creator_id: str) -> Channel:
        now = self.now()
        channel = Channel(self.new_id(), team_id, channel_type, name, display, creator_id, now, now)
        self.channels[channel.id] = channel
        return channel

    def _join_team(self, team_id: str, user_id: str) -> TeamMember:
        key = (team_id, user_id)
        if key not in self.team_members:
            self.team_members[key] = TeamMember(team_id, user_id)
        return self.team_members[key]

    def _join_channel(self, channel_id: str, user_id: str) -> ChannelMember:
        key = (channel_id, user_id)
        if key not in self.channel_members:
            now = self.now()
            self.channel_members[key] = ChannelMember(channel_id, user_id, now, now)
        return self.channel_members[key]

    # ------------------------------------------------------------------ lookups

    def session_for(self, token: str) -> Session | None:
        """The session of an active token, or None."""
        record = self.tokens.get(token)
        if record is None or not record.is_active:
            return None
        user = self.users.get(record.user_id)
        if user is None:
            return None
        return Session(user, record)

    def user_by_username(self, username: str) -> User | None:
        """User by exact username."""
        return next((u for u in self.users.values() if u.username == username), None)

    def user_by_email(self, email: str) -> User | None:
        """User by email (stored lower-case)."""
        return next((u for u in self.users.values() if u.email == email), None)

    def team_by_name(self, name: str) -> Team | None:
        """Team by its URL handle."""
        return next((t for t in self.teams.values() if t.name == name), None)

    def is_channel_member(self, user_id: str, channel_id: str) -> bool:
        """Whether the user belongs to the channel."""
        return (channel_id, user_id) in self.channel_members

    def is_team_member(self, user_id: str, team_id: str) -> bool:
        """Whether the user belongs to the team."""
        return (team_id, user_id) in self.team_members

    def can_read_channel(self, user: User, channel: Channel) -> bool:
        """`read_channel`: members, admins, and team members for public channels."""
        if user.is_admin or self.is_channel_member(user.id, channel.id):
            return True
        return channel.type == "O" and self.is_team_member(user.id, channel.team_id)

    def thread_stats(self, root_id: str) -> tuple[int, int]:
        """(reply count, last reply time) of a thread."""
        replies = [p for p in self.posts.values() if p.root_id == root_id and p.delete_at == 0]
        return len(replies), max((p.create_at for p in replies), default=0)

    # ------------------------------------------------------------------ users, bots, tokens

    def get_user(self, caller: User, user_id: str) -> User:
        """`GET /users/{user_id}` (`me` already resolved)."""
        user = self.users.get(user_id)
        if user is None:
            raise errors.user_not_found()
        return user

    def get_user_by_email(self, caller: User, raw_email: str) -> User:
        """`GET /users/email/{email}`: lower-cased, validated, then looked up."""
        email = raw_email.strip().lower()
        if not _EMAIL.match(email):
            raise errors.invalid_url_param("email")
        user = self.user_by_email(email)
        if user is None:
            raise errors.user_not_found()
        return user

    def get_user_by_username(self, caller: User, username: str) -> User:
        """`GET /users/username/{username}`: must be a valid (lower-case) username."""
        if not _USERNAME.match(username):
            raise errors.invalid_url_param("username")
        user = self.user_by_username(username)
        if user is None:
            raise errors.user_not_found()
        return user

    def get_users_by_ids(self, caller: User, ids: list[str]) -> list[User]:
        """`POST /users/ids`: unknown ids are skipped."""
        if not ids:
            raise errors.invalid_body_param("user_ids")
        for user_id in ids:
            if not is_valid_id(user_id):
                raise errors.invalid_param("user_id")
        seen: set[str] = set()
        out: list[User] = []
        for user_id in ids:
            user = self.users.get(user_id)
            if user is not None and user_id not in seen:
                seen.add(user_id)
                out.append(user)
        return out

    def create_user(self, caller: User | None, body: dict[str, Any]) -> User:
        """`POST /users`: administrators always; others only on an open server."""
        if not self.config.enable_open_server and (caller is None or not caller.is_admin):
            raise errors.no_open_server()
        username = body.get("username")
        email = body.get("email")
        if not isinstance(username, str) or not _USERNAME.match(username) or username in _RESERVED:
            raise ApiErrorFactory.user_invalid("username")
        if not isinstance(email, str) or not _EMAIL.match(email.lower()) or len(email) > 128:
            raise ApiErrorFactory.user_invalid("email")
        password = body.get("password", "")
        auth_service = body.get("auth_service", "")
        if not isinstance(password, str) or not isinstance(auth_service, str):
            raise errors.invalid_body_param("user")
        if auth_service == "" and len(password) < 8:
            raise errors.ApiError(
                400, "model.user.is_valid.pwd_length.app_error", "Your password must contain at least 8 characters."
            )
        if self.user_by_username(username) is not None:
            raise errors.username_exists()
        if self.user_by_email(email.lower()) is not None:
            raise errors.email_exists()
        first = body.get("first_name", "")
        last = body.get("last_name", "")
        nickname = body.get("nickname", "")
        if not all(isinstance(v, str) for v in (first, last, nickname)):
            raise errors.invalid_body_param("user")
        user = self._add_user(username, email.lower(), first, last, "system_user")
        user.nickname = nickname
        props = body.get("props")
        if isinstance(props, dict):
            user.props = {str(k): str(v) for k, v in props.items()}
        return user

    def create_bot(self, caller: User, body: dict[str, Any]) -> Bot:
        """`POST /bots`: bots may not create bots; humans need `create_bot` (admins)."""
        if caller.is_bot:
            raise errors.forbidden(caller.id, "create_bot")
        if not self.config.enable_bot_account_creation:
            raise errors.bot_creation_disabled()
        if not caller.is_admin:
            raise errors.forbidden(caller.id, "create_bot")
        username = body.get("username")
        display_name = body.get("display_name", "")
        description = body.get("description", "")
        if not isinstance(username, str) or not _USERNAME.match(username) or username in _RESERVED:
            raise errors.ApiError(400, "model.bot.is_valid.username.app_error", "Invalid username.")
        if not isinstance(display_name, str) or len(display_name) > 64:
            raise errors.ApiError(400, "model.bot.is_valid.username.app_error", "Invalid display name.")
        if not isinstance(description, str) or len(description) > 1024:
            raise errors.ApiError(400, "model.bot.is_valid.description.app_error", "Invalid description.")
        if self.user_by_username(username) is not None:
            raise errors.username_exists()
        user = self.add_bot(username, display_name, description, caller.id)
        return self.bots[user.id]

    def create_token(self, caller: User, user_id: str, body: dict[str, Any]) -> AccessToken:
        """`POST /users/{user_id}/tokens`: returns the token record incl. the secret."""
        description = body.get("description")
        if not isinstance(description, str) or description == "":
            raise errors.invalid_param("description")
        if len(description) > 255:
            raise errors.ApiError(
                400, "model.user_access_token.is_valid.description.app_error", "Invalid description."
            )
        # `create_user_access_token` belongs to system admins by default.
        if not caller.is_admin:
            raise errors.forbidden(caller.id, "create_user_access_token")
        target = self.users.get(user_id)
        if target is None:
            raise errors.user_not_found()
        if not target.is_bot and not self.config.enable_user_access_tokens:
            raise errors.access_tokens_disabled()
        return self._add_token(target.id, self.new_id(), description)

    # ------------------------------------------------------------------ teams and channels

    def get_team_by_name(self, caller: User, raw_name: str) -> Team:
        """`GET /teams/name/{name}` (lower-cased)."""
        team = self.team_by_name(raw_name.lower())
        if team is None:
            raise errors.team_not_found()
        visible = caller.is_admin or self.is_team_member(caller.id, team.id)
        if not visible and not (team.type == "O" and team.allow_open_invite):
            raise errors.forbidden(caller.id, "view_team")
        return team

    def get_channel_by_names(self, caller: User, raw_team: str, raw_channel: str) -> Channel:
        """`GET /teams/name/{t}/channels/name/{c}`: names only, never display names."""
        team = self.team_by_name(raw_team.lower())
        if team is None:
            raise errors.team_not_found()
        name = raw_channel.lower()
        channel = next(
            (c for c in self.channels.values() if c.team_id == team.id and c.name == name and c.type in ("O", "P")),
            None,
        )
        if channel is None:
            raise errors.channel_not_found()
        if channel.type == "P" and not (caller.is_admin or self.is_channel_member(caller.id, channel.id)):
            # A private channel the caller cannot see does not exist for them.
            raise errors.channel_not_found()
        if not self.can_read_channel(caller, channel):
            raise errors.forbidden(caller.id, "read_channel")
        return channel

    def create_direct_channel(self, caller: User, ids: list[str]) -> Channel:
        """`POST /channels/direct`: returns the existing DM when there is one."""
        if len(ids) != 2:
            raise errors.invalid_body_param("user_ids")
        for user_id in ids:
            if not is_valid_id(user_id):
                raise errors.invalid_param("user_id")
        if caller.id not in ids and not caller.is_admin:
            raise errors.forbidden(caller.id, "manage_system")
        for user_id in ids:
            if user_id not in self.users:
                raise errors.dm_invalid_user()
        first, second = sorted(ids)
        name = f"{first}__{second}"
        existing = next((c for c in self.channels.values() if c.type == "D" and c.name == name), None)
        if existing is not None:
            return existing
        channel = self._add_channel("", "D", name, "", ids[0])
        for user_id in {first, second}:
            self._join_channel(channel.id, user_id)
        return channel

    def add_channel_member(self, caller: User, channel_id: str, user_ids: list[str]) -> list[ChannelMember]:
        """`POST /channels/{id}/members`: adding someone already there returns the membership."""
        channel = self.channels.get(channel_id)
        if channel is None:
            raise errors.channel_id_not_found()
        if channel.type == "D":
            raise errors.add_to_dm()
        permission = "manage_public_channel_members" if channel.type == "O" else "manage_private_channel_members"
        allowed = caller.is_admin or self.is_channel_member(caller.id, channel.id)
        if channel.type == "O" and self.is_team_member(caller.id, channel.team_id):
            allowed = True
        if not allowed:
            if channel.type == "P":
                raise errors.channel_id_not_found()
            raise errors.forbidden(caller.id, permission)
        members: list[ChannelMember] = []
        for user_id in user_ids:
            if user_id not in self.users:
                raise errors.user_not_found()
            if not self.is_team_member(user_id, channel.team_id):
                raise errors.user_not_in_team()
            members.append(self._join_channel(channel.id, user_id))
        return members

    def add_team_member(self, caller: User, team_id: str, user_id: str) -> TeamMember:
        """`POST /teams/{id}/members`."""
        team = self.teams.get(team_id)
        if team is None:
            raise errors.team_id_not_found()
        if not (caller.is_admin or self.is_team_member(caller.id, team.id)):
            raise errors.forbidden(caller.id, "add_user_to_team")
        if user_id not in self.users:
            raise errors.user_not_found()
        return self._join_team(team.id, user_id)

    # ------------------------------------------------------------------ posts

    def create_post(self, caller: User, body: dict[str, Any]) -> tuple[Post, str]:
        """`POST /posts`: returns the post and the pending id to echo (\"\" when deduplicated)."""
        channel_id = body.get("channel_id", "")
        channel = self.channels.get(channel_id) if isinstance(channel_id, str) else None
        if channel is None or not (caller.is_admin or self.is_channel_member(caller.id, channel.id)):
            # The permission check runs before the channel lookup: unknown channels are 403 too.
            raise errors.forbidden(caller.id, "create_post")
        pending = body.get("pending_post_id", "")
        if not isinstance(pending, str):
            raise errors.invalid_body_param("post")
        now_s = self.clock.now()
        if pending:
            self._expire_pending(now_s)
            seen = self._pending.get(pending)
            if seen is not None:
                earlier = self.posts.get(seen[0])
                if earlier is not None and self.can_read_channel(caller, self.channels[earlier.channel_id]):
                    return earlier, ""
        message, root_id, post_type, props, file_ids = _post_fields(body)
        self._validate_message(message, props)
        if post_type.startswith("system_"):
            raise errors.invalid_param("post.type")
        if root_id:
            root = self.posts.get(root_id)
            if root is None or root.root_id != "" or root.delete_at != 0:
                raise errors.root_id_invalid()
            if root.channel_id != channel.id:
                raise errors.channel_root_id_invalid()
        if caller.is_bot:
            props["from_bot"] = "true"
        _assign_action_ids(props, self.new_id)
        now = self.now()
        self._seq += 1
        post = Post(
            id=self.new_id(),
            seq=self._seq,
            create_at=now,
            update_at=now,
            user_id=caller.id,
            channel_id=channel.id,
            root_id=root_id,
            message=message,
            type=post_type,
            props=props,
            file_ids=file_ids,
            hashtags=_hashtags(message),
        )
        self.posts[post.id] = post
        self.history[post.id] = [PostEvent("create", now, caller.id, message, copy.deepcopy(props))]
        channel.last_post_at = now
        channel.total_msg_count += 1
        if not root_id:
            channel.last_root_post_at = now
            channel.total_msg_count_root += 1
        if pending:
            self._pending[pending] = (post.id, now_s + PENDING_POST_TTL_SECONDS)
        return post, pending

    def _expire_pending(self, now_s: float) -> None:
        for key in [k for k, (_, until) in self._pending.items() if until <= now_s]:
            del self._pending[key]

    def _validate_message(self, message: str, props: dict[str, Any]) -> None:
        if len(message) > self.config.max_post_length:
            raise errors.message_too_long()
        if len(json.dumps(props, ensure_ascii=False)) > POST_PROPS_MAX_RUNES:
            raise errors.props_too_long()

    def readable_post(self, caller: User, post_id: str) -> tuple[Post, Channel]:
        """The post (404 when unknown) and its channel, if the caller may read it (else 403)."""
        post = self.posts.get(post_id)
        if post is None or post.delete_at != 0:
            raise errors.post_not_found()
        channel = self.channels[post.channel_id]
        if not self.can_read_channel(caller, channel):
            raise errors.forbidden(caller.id, "read_channel")
        return post, channel

    def _editable_post(self, caller: User, post_id: str) -> Post:
        post = self.posts.get(post_id)
        if post is None or post.delete_at != 0:
            raise errors.forbidden(caller.id, "edit_post")
        channel = self.channels[post.channel_id]
        if not (caller.is_admin or self.is_channel_member(caller.id, channel.id)):
            raise errors.forbidden(caller.id, "edit_post")
        if post.user_id != caller.id and not caller.is_admin:
            raise errors.forbidden(caller.id, "edit_others_posts")
        return post

    def update_post(self, caller: User, post_id: str, body: dict[str, Any]) -> Post:
        """`PUT /posts/{id}`: the body is the whole post; omitted fields become empty."""
        if body.get("id") != post_id:
            raise errors.invalid_body_param("id")
        post = self._editable_post(caller, post_id)
        message = body.get("message", "")
        props = body.get("props")
        if not isinstance(message, str) or not (props is None or isinstance(props, dict)):
            raise errors.invalid_body_param("post")
        new_props = dict(props or {})
        file_ids = body.get("file_ids")
        is_pinned = body.get("is_pinned", False)
        has_reactions = body.get("has_reactions", False)
        if not isinstance(is_pinned, bool) or not isinstance(has_reactions, bool):
            raise errors.invalid_body_param("post")
        if file_ids is not None and not _is_str_list(file_ids):
            raise errors.invalid_body_param("post")
        self._apply_edit(caller, post, "update", message, new_props, file_ids)
        post.is_pinned = is_pinned
        post.has_reactions = has_reactions
        return post

    def patch_post(self, caller: User, post_id: str, body: dict[str, Any]) -> Post:
        """`PUT /posts/{id}/patch`: only the given fields change."""
        post = self._editable_post(caller, post_id)
        message = body.get("message")
        props = body.get("props")
        file_ids = body.get("file_ids")
        if message is not None and not isinstance(message, str):
            raise errors.invalid_body_param("patch")
        if props is not None and not isinstance(props, dict):
            raise errors.invalid_body_param("patch")
        if file_ids is not None and not _is_str_list(file_ids):
            raise errors.invalid_body_param("patch")
        for flag in ("is_pinned", "has_reactions"):
            if body.get(flag) is not None and not isinstance(body.get(flag), bool):
                raise errors.invalid_body_param("patch")
        new_message = post.message if message is None else message
        new_props = copy.deepcopy(post.props) if props is None else dict(props)
        self._apply_edit(caller, post, "patch", new_message, new_props, file_ids)
        if body.get("is_pinned") is not None:
            post.is_pinned = bool(body["is_pinned"])
        if body.get("has_reactions") is not None:
            post.has_reactions = bool(body["has_reactions"])
        return post

    def apply_action_update(self, caller: User, post: Post, update: dict[str, Any]) -> None:
        """An integration's `update`: props kept when null, else replaced keeping webhook overrides."""
        message = update.get("message", "")
        if not isinstance(message, str):
            raise errors.action_integration_failed("update.message is not a string")
        props = update.get("props")
        if props is None:
            new_props = copy.deepcopy(post.props)
        elif isinstance(props, dict):
            new_props = dict(props)
            for kept in ("from_webhook", "override_username", "override_icon_url"):
                if kept in post.props:
                    new_props[kept] = post.props[kept]
        else:
            raise errors.action_integration_failed("update.props is not an object")
        self._apply_edit(caller, post, "action", message, new_props, None)

    def _apply_edit(
        self, caller: User, post: Post, kind: str, message: str, props: dict[str, Any], file_ids: list[str] | None
    ) -> None:
        self._validate_message(message, props)
        now = self.now()
        limit = self.config.post_edit_time_limit
        if message != post.message and limit >= 0 and now - post.create_at > limit * 1000 and not caller.is_admin:
            raise errors.edit_time_limit()
        _assign_action_ids(props, self.new_id)
        changed = message != post.message or (file_ids is not None and file_ids != post.file_ids)
        post.message = message
        post.props = props
        post.hashtags = _hashtags(message)
        if file_ids is not None:
            post.file_ids = list(file_ids)
        if changed:
            post.edit_at = now
        post.update_at = now
        self.history[post.id].append(PostEvent(kind, now, caller.id, message, copy.deepcopy(props)))

    def thread(self, caller: User, post_id: str, per_page: int, from_create_at: int, direction: str) -> PostPage:
        """`GET /posts/{id}/thread`: root and every reply, whatever post of the thread is named."""
        post, _ = self.readable_post(caller, post_id)
        root_id = post.root_id or post.id
        members = [p for p in self.posts.values() if (p.id == root_id or p.root_id == root_id) and p.delete_at == 0]
        members.sort(key=lambda p: p.seq, reverse=True)
        if per_page <= 0:
            return PostPage(members)
        if direction == "up":
            older = [p for p in members if from_create_at == 0 or p.create_at < from_create_at]
            chosen = older[:per_page]
            has_next = len(older) > per_page
        else:
            newer = sorted(
                (p for p in members if p.create_at > from_create_at or from_create_at == 0), key=lambda p: p.seq
            )
            chosen = sorted(newer[:per_page], key=lambda p: p.seq, reverse=True)
            has_next = len(newer) > per_page
        root = self.posts[root_id]
        if root not in chosen:
            chosen.append(root)
        return PostPage(chosen, has_next=has_next)

    def channel_posts(
        self, caller: User, channel_id: str, page: int, per_page: int, since: int, before: str, after: str
    ) -> PostPage:
        """`GET /channels/{id}/posts`: newest first, by page, or everything changed after `since`."""
        channel = self.channels.get(channel_id)
        if channel is None or not self.can_read_channel(caller, channel):
            raise errors.forbidden(caller.id, "read_channel")
        posts = sorted(
            (p for p in self.posts.values() if p.channel_id == channel.id and p.delete_at == 0),
            key=lambda p: p.seq,
            reverse=True,
        )
        if since > 0:
            return PostPage([p for p in posts if p.update_at > since][:1000])
        window = posts
        if before or after:
            anchor_id = before or after
            index = next((i for i, p in enumerate(posts) if p.id == anchor_id), None)
            if index is None:
                return PostPage([])
            window = posts[index + 1 :] if before else list(reversed(posts[:index]))
        start = page * per_page
        chosen = window[start : start + per_page]
        if after and not before:
            older_beyond = window[start + per_page] if len(window) > start + per_page else None
            chosen = list(reversed(chosen))
            return PostPage(
                chosen,
                next_post_id=older_beyond.id if older_beyond else "",
                prev_post_id=posts[index].id if index is not None else "",
                has_next=older_beyond is not None,
            )
        return self._page(posts, chosen)

    @staticmethod
    def _page(all_posts: list[Post], chosen: list[Post]) -> PostPage:
        if not chosen:
            return PostPage([], has_next=False)
        first = all_posts.index(chosen[0])
        last = all_posts.index(chosen[-1])
        newer = all_posts[first - 1].id if first > 0 else ""
        older = all_posts[last + 1].id if last + 1 < len(all_posts) else ""
        return PostPage(chosen, next_post_id=newer, prev_post_id=older, has_next=older != "")

    def add_ephemeral(self, user_id: str, channel_id: str, root_id: str, message: str) -> EphemeralPost:
        """Record an ephemeral post shown only to `user_id`."""
        record = EphemeralPost(self.new_id(), user_id, channel_id, root_id, message, self.now())
        self.ephemeral.append(record)
        return record


_RESERVED = frozenset({"all", "channel", "matterbot", "system"})


class ApiErrorFactory:
    """Errors of `User.IsValid`."""

    @staticmethod
    def user_invalid(field_name: str) -> errors.ApiError:
        """400 `model.user.is_valid.<field>.app_error`."""
        return errors.ApiError(400, f"model.user.is_valid.{field_name}.app_error", f"Invalid {field_name}.")


def _default_user_notify_props(username: str) -> dict[str, str]:
    return {
        "channel": "true",
        "comments": "never",
        "desktop": "mention",
        "desktop_sound": "true",
        "email": "true",
        "first_name": "false",
        "mention_keys": "",
        "push": "mention",
        "push_status": "away",
    }


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _post_fields(body: dict[str, Any]) -> tuple[str, str, str, dict[str, Any], list[str]]:
    message = body.get("message", "")
    root_id = body.get("root_id", "")
    post_type = body.get("type", "")
    props = body.get("props")
    file_ids = body.get("file_ids")
    if message is None:
        message = ""
    if root_id is None:
        root_id = ""
    if post_type is None:
        post_type = ""
    if not isinstance(message, str) or not isinstance(root_id, str) or not isinstance(post_type, str):
        raise errors.invalid_body_param("post")
    if props is not None and not isinstance(props, dict):
        raise errors.invalid_body_param("post")
    if file_ids is not None and not _is_str_list(file_ids):
        raise errors.invalid_body_param("post")
    return message, root_id, post_type, copy.deepcopy(props or {}), list(file_ids or [])


def _assign_action_ids(props: dict[str, Any], new_id: Any) -> None:
    """Give every attachment action without an id a generated one, like the server does."""
    attachments = props.get("attachments")
    if not isinstance(attachments, list):
        return
    for attachment in attachments:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("actions"), list):
            continue
        for action in attachment["actions"]:
            if isinstance(action, dict) and not action.get("id"):
                action["id"] = new_id()


def find_action(post: Post, action_id: str) -> dict[str, Any] | None:
    """The attachment action with this id, or None."""
    attachments = post.props.get("attachments")
    if not isinstance(attachments, list):
        return None
    for attachment in attachments:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("actions"), list):
            continue
        for action in attachment["actions"]:
            if isinstance(action, dict) and action.get("id") == action_id:
                return action
    return None


def _hashtags(message: str) -> str:
    return " ".join(dict.fromkeys(m.group(1) for m in _HASHTAG.finditer(message)))
