"""In-memory Mattermost state: the seeded data, lookups, and the user, team and channel operations.

Every operation takes the calling user and raises `ApiError` exactly where the real server answers
with an error, so the HTTP layer only parses input and renders output. Post operations live in
`posts.py`.
"""

from __future__ import annotations

import re
from typing import Any

from fakes.mattermost import errors
from fakes.mattermost.clock import Clock, millis
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.ids import IdGenerator, is_valid_id
from fakes.mattermost.records import (
    AccessToken,
    Bot,
    Channel,
    ChannelMember,
    EphemeralPost,
    Post,
    PostEvent,
    Session,
    Team,
    TeamMember,
    User,
)
from fakes.mattermost.seed import Seed

_USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$|^[^@\s<>\"]+@[^@\s<>\".]+$")
_RESERVED = frozenset({"all", "channel", "matterbot", "system"})


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
        #: pending_post_id → (post id, expiry in clock seconds)
        self.pending_posts: dict[str, tuple[str, float]] = {}
        self._load_seed()

    def new_id(self) -> str:
        """Next deterministic id."""
        return self._ids.next_id()

    def next_seq(self) -> int:
        """Next post sequence number (orders posts created within the same millisecond)."""
        self._seq += 1
        return self._seq

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
            notify_props=_default_user_notify_props(),
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
            notify_props=_default_user_notify_props(),
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
            raise errors.user_invalid("username")
        if not isinstance(email, str) or not _EMAIL.match(email.lower()) or len(email) > 128:
            raise errors.user_invalid("email")
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

    def get_channel_member(self, caller: User, channel_id: str, user_id: str) -> ChannelMember:
        """`GET /channels/{id}/members/{user_id}`: needs read_channel; a non-member is 404."""
        channel = self.channels.get(channel_id)
        if channel is None or not self.can_read_channel(caller, channel):
            # The server checks read_channel before looking the channel up, so both read as 403.
            raise errors.forbidden(caller.id, "read_channel")
        member = self.channel_members.get((channel_id, user_id))
        if member is None:
            raise errors.channel_member_not_found()
        return member

    def public_channels_of_team(self, caller: User, team_id: str, page: int, per_page: int) -> list[Channel]:
        """`GET /teams/{id}/channels`: the team's public channels by display name, for team members."""
        team = self.teams.get(team_id)
        if team is None or not (caller.is_admin or self.is_team_member(caller.id, team_id)):
            raise errors.forbidden(caller.id, "list_team_channels")
        public = sorted(
            (c for c in self.channels.values() if c.team_id == team_id and c.type == "O"),
            key=lambda c: (c.display_name.lower(), c.name),
        )
        return public[page * per_page : (page + 1) * per_page]

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

    def add_ephemeral(self, user_id: str, channel_id: str, root_id: str, message: str) -> EphemeralPost:
        """Record an ephemeral post shown only to `user_id`."""
        record = EphemeralPost(self.new_id(), user_id, channel_id, root_id, message, self.now())
        self.ephemeral.append(record)
        return record


def _default_user_notify_props() -> dict[str, str]:
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
