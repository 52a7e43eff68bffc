"""Channels, channel members and direct channels: lookups, the read permission, inserts, API operations.

Functions take the `State` and (for API operations) the caller, and raise `ApiError` where the real
server does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakes.mattermost import errors, teams
from fakes.mattermost.ids import is_valid_id
from fakes.mattermost.records import Channel, ChannelMember, User

if TYPE_CHECKING:  # state.py imports this module to load the seed
    from fakes.mattermost.state import State


def is_channel_member(state: State, user_id: str, channel_id: str) -> bool:
    """Whether the user belongs to the channel."""
    return (channel_id, user_id) in state.channel_members


def can_read_channel(state: State, user: User, channel: Channel) -> bool:
    """`read_channel`: members, admins, and team members for public channels."""
    if user.is_admin or is_channel_member(state, user.id, channel.id):
        return True
    return channel.type == "O" and teams.is_team_member(state, user.id, channel.team_id)


def add_channel(state: State, team_id: str, channel_type: str, name: str, display: str, creator_id: str) -> Channel:
    """Store a new channel (no permission checks: callers check)."""
    now = state.now()
    channel = Channel(state.new_id(), team_id, channel_type, name, display, creator_id, now, now)
    state.channels[channel.id] = channel
    return channel


def join_channel(state: State, channel_id: str, user_id: str) -> ChannelMember:
    """The user's membership of the channel, created when missing."""
    key = (channel_id, user_id)
    if key not in state.channel_members:
        now = state.now()
        state.channel_members[key] = ChannelMember(channel_id, user_id, now, now)
    return state.channel_members[key]


def get_channel_by_names(state: State, caller: User, raw_team: str, raw_channel: str) -> Channel:
    """`GET /teams/name/{t}/channels/name/{c}`: names only, never display names."""
    team = teams.team_by_name(state, raw_team.lower())
    if team is None:
        raise errors.team_not_found()
    name = raw_channel.lower()
    channel = next(
        (c for c in state.channels.values() if c.team_id == team.id and c.name == name and c.type in ("O", "P")),
        None,
    )
    if channel is None:
        raise errors.channel_not_found()
    if channel.type == "P" and not (caller.is_admin or is_channel_member(state, caller.id, channel.id)):
        # A private channel the caller cannot see does not exist for them.
        raise errors.channel_not_found()
    if not can_read_channel(state, caller, channel):
        raise errors.forbidden(caller.id, "read_channel")
    return channel


def get_channel_member(state: State, caller: User, channel_id: str, user_id: str) -> ChannelMember:
    """`GET /channels/{id}/members/{user_id}`: needs read_channel; a non-member is 404."""
    channel = state.channels.get(channel_id)
    if channel is None or not can_read_channel(state, caller, channel):
        # The server checks read_channel before looking the channel up, so both read as 403.
        raise errors.forbidden(caller.id, "read_channel")
    member = state.channel_members.get((channel_id, user_id))
    if member is None:
        raise errors.channel_member_not_found()
    return member


def public_channels_of_team(state: State, caller: User, team_id: str, page: int, per_page: int) -> list[Channel]:
    """`GET /teams/{id}/channels`: the team's public channels by display name, for team members."""
    team = state.teams.get(team_id)
    if team is None or not (caller.is_admin or teams.is_team_member(state, caller.id, team_id)):
        raise errors.forbidden(caller.id, "list_team_channels")
    public = sorted(
        (c for c in state.channels.values() if c.team_id == team_id and c.type == "O"),
        key=lambda c: (c.display_name.lower(), c.name),
    )
    return public[page * per_page : (page + 1) * per_page]


def create_direct_channel(state: State, caller: User, ids: list[str]) -> Channel:
    """`POST /channels/direct`: returns the existing DM when there is one."""
    if len(ids) != 2:
        raise errors.invalid_body_param("user_ids")
    for user_id in ids:
        if not is_valid_id(user_id):
            raise errors.invalid_param("user_id")
    if caller.id not in ids and not caller.is_admin:
        raise errors.forbidden(caller.id, "manage_system")
    for user_id in ids:
        if user_id not in state.users:
            raise errors.dm_invalid_user()
    first, second = sorted(ids)
    name = f"{first}__{second}"
    existing = next((c for c in state.channels.values() if c.type == "D" and c.name == name), None)
    if existing is not None:
        return existing
    channel = add_channel(state, "", "D", name, "", ids[0])
    for user_id in {first, second}:
        join_channel(state, channel.id, user_id)
    return channel


def add_channel_member(state: State, caller: User, channel_id: str, user_ids: list[str]) -> list[ChannelMember]:
    """`POST /channels/{id}/members`: adding someone already there returns the membership."""
    channel = state.channels.get(channel_id)
    if channel is None:
        raise errors.channel_id_not_found()
    if channel.type == "D":
        raise errors.add_to_dm()
    permission = "manage_public_channel_members" if channel.type == "O" else "manage_private_channel_members"
    allowed = caller.is_admin or is_channel_member(state, caller.id, channel.id)
    if channel.type == "O" and teams.is_team_member(state, caller.id, channel.team_id):
        allowed = True
    if not allowed:
        raise errors.forbidden(caller.id, permission)
    members: list[ChannelMember] = []
    for user_id in user_ids:
        if user_id not in state.users:
            raise errors.user_not_found()
        if not teams.is_team_member(state, user_id, channel.team_id):
            raise errors.user_not_in_team()
        members.append(join_channel(state, channel.id, user_id))
    return members
