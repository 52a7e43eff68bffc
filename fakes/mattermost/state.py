"""In-memory Mattermost data: the record dicts, loading the seed on reset, and id, sequence and time helpers.

The operations live per resource, as functions taking the state: `users.py` (users, bots, tokens, sessions),
`teams.py`, `channels.py` (channels, members, direct channels) and `posts.py` (posts, threads, ephemeral posts).
"""

from __future__ import annotations

from fakes.mattermost import channels, cookies, teams, users
from fakes.mattermost.clock import Clock, millis
from fakes.mattermost.config import IntegrationSettings, ServerConfig
from fakes.mattermost.ids import IdGenerator
from fakes.mattermost.outbound import CallLog
from fakes.mattermost.records import (
    AccessToken,
    Bot,
    Channel,
    ChannelMember,
    EphemeralPost,
    OpenedDialog,
    Post,
    PostEvent,
    Team,
    TeamMember,
    User,
)
from fakes.mattermost.seed import Seed
from fakes.mattermost.trigger import TriggerSigner


class State:
    """All data of one fake server, rebuilt from its seed on `reset()`."""

    def __init__(self, seed: Seed, config: ServerConfig, clock: Clock) -> None:
        self.seed = seed
        self.config = config
        self.clock = clock
        # Kept across resets, like the real server's keys in its Systems table.
        self.signer = TriggerSigner.from_seed(seed.source)
        self.cookie_secret = cookies.secret_from_seed(seed.source)
        #: The server's own URL (`SiteURL`), set once it listens.
        self.site_url = ""
        self.reset()

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
        #: root post id → its replies, and channel id → its posts, in creation order: a thread or a channel is read
        #: without scanning (and sorting) every post
        self.threads: dict[str, list[Post]] = {}
        self.channel_posts: dict[str, list[Post]] = {}
        #: replies, and writes to posts after their creation (edits of every kind), for the `/fake/counts` route
        self.reply_count = 0
        self.edit_count = 0
        self.ephemeral: list[EphemeralPost] = []
        self.dialogs: list[OpenedDialog] = []
        self.integration_calls = CallLog()
        configured = self.config.integrations
        seeded = IntegrationSettings().updated(dict(self.seed.settings))
        self.settings = configured if configured is not None else seeded
        #: pending_post_id → (post id, expiry in clock seconds), oldest expiry first (see posts._expire_pending)
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
        # The order of inserts fixes the ids, so it must stay the same from one reset to the next.
        seed = self.seed
        a = seed.admin
        admin = users.add_user(self, a.username, a.email, a.first_name, a.last_name, "system_admin system_user")
        users.add_token(self, admin.id, a.token, "seeded admin token")
        for seed_user in seed.users:
            created = users.add_user(
                self, seed_user.username, seed_user.email, seed_user.first_name, seed_user.last_name, "system_user"
            )
            created.auth_service = seed_user.auth_service
            created.email_verified = seed_user.email_verified
            if seed_user.deactivated:
                created.delete_at = created.update_at = self.now()
            if seed_user.token:
                users.add_token(self, created.id, seed_user.token, "seeded token")
        for bot in seed.bots:
            owner = self._seed_user(bot.owner)
            bot_user = users.add_bot(self, bot.username, bot.display_name, bot.description, owner.id)
            users.add_token(self, bot_user.id, bot.token, "seeded bot token")
        for team in seed.teams:
            created_team = teams.add_team(self, team.name, team.display_name, team.type)
            for member in team.members:
                teams.join_team(self, created_team.id, self._seed_user(member).id)
        creator = self._seed_user(a.username)
        for channel in seed.channels:
            channel_team = teams.team_by_name(self, channel.team)
            assert channel_team is not None  # the seed parser checked the reference
            created_channel = channels.add_channel(
                self, channel_team.id, channel.type, channel.name, channel.display_name, creator.id
            )
            for member in channel.members:
                user = self._seed_user(member)
                teams.join_team(self, channel_team.id, user.id)
                channels.join_channel(self, created_channel.id, user.id)

    def _seed_user(self, username: str) -> User:
        user = users.user_by_username(self, username)
        assert user is not None  # the seed parser checked the reference
        return user
