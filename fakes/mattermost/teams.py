"""Teams and team members: lookups, inserts, and the `/teams` operations.

Functions take the `State` and (for API operations) the caller, and raise `ApiError` where the real
server does. A team's channel list is a channel operation (`channels.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakes.mattermost import errors
from fakes.mattermost.records import Team, TeamMember, User

if TYPE_CHECKING:  # state.py imports this module to load the seed
    from fakes.mattermost.state import State


def team_by_name(state: State, name: str) -> Team | None:
    """Team by its URL handle."""
    return next((t for t in state.teams.values() if t.name == name), None)


def is_team_member(state: State, user_id: str, team_id: str) -> bool:
    """Whether the user belongs to the team."""
    return (team_id, user_id) in state.team_members


def add_team(state: State, name: str, display_name: str, team_type: str) -> Team:
    """Store a new team (no permission checks: callers check)."""
    now = state.now()
    team = Team(state.new_id(), name, display_name, team_type, now, now, invite_id=state.new_id())
    state.teams[team.id] = team
    return team


def join_team(state: State, team_id: str, user_id: str) -> TeamMember:
    """The user's membership of the team, created when missing."""
    key = (team_id, user_id)
    if key not in state.team_members:
        state.team_members[key] = TeamMember(team_id, user_id)
    return state.team_members[key]


def get_team_by_name(state: State, caller: User, raw_name: str) -> Team:
    """`GET /teams/name/{name}` (lower-cased)."""
    team = team_by_name(state, raw_name.lower())
    if team is None:
        raise errors.team_not_found()
    visible = caller.is_admin or is_team_member(state, caller.id, team.id)
    if not visible and not (team.type == "O" and team.allow_open_invite):
        raise errors.forbidden(caller.id, "view_team")
    return team


def add_team_member(state: State, caller: User, team_id: str, user_id: str) -> TeamMember:
    """`POST /teams/{id}/members`."""
    team = state.teams.get(team_id)
    if team is None:
        raise errors.team_id_not_found()
    if not (caller.is_admin or is_team_member(state, caller.id, team.id)):
        raise errors.forbidden(caller.id, "add_user_to_team")
    if user_id not in state.users:
        raise errors.user_not_found()
    return join_team(state, team.id, user_id)
