"""Diagnostics for `teleport-mattermost check`: is each configured recipient reachable, and if not, why.

The bot itself only says "not found"; here we spend extra calls to name the likely cause and its fix:
a display name used instead of a URL name, the bot missing from a channel or team, an email lookup
hidden by the server's privacy settings, a refused token. Results are values; the CLI prints them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sidecar.domain.email import is_email
from sidecar.domain.errors import (
    AccessDenied,
    NotFound,
    Rejected,
    RouteNotFound,
    SidecarError,
    TransientError,
    Unauthorized,
)
from sidecar.mattermost.bot import format_error_text, split_team_channel
from sidecar.mattermost.client import MattermostClient
from sidecar.mattermost.entities import ChannelInfo, Team, User

TOKEN_SUBJECT = "mattermost.token"

_TOKEN_FIX = (
    "check mattermost.token: use the access token of the bot account (System Console > Integrations > "
    "Bot Accounts > Create New Token); the token must not be revoked and the bot must be enabled"
)
_REACH_FIX = "check mattermost.url, any HTTP(S)_PROXY settings and that the server is up, then run the check again"
_PAGE_SIZE = 200  # the server's maximum
_MAX_LIST_PAGES = 10
_SLUG_JUNK = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class CheckResult:
    """One line of the report. `recipient` is the configured string (or TOKEN_SUBJECT for the token).

    `note` is an informational remark on an ok result (something that could not be verified).
    """

    recipient: str
    ok: bool
    problem: str = ""
    fix: str = ""
    channel_id: str = ""
    note: str = ""


class _Stop(Exception):
    """A failure that makes every further call pointless (token refused, server unreachable)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.problem)
        self.result = result


async def diagnose_mattermost(client: MattermostClient, recipients: Iterable[str]) -> list[CheckResult]:
    """Check the token, then each distinct recipient in order. The first result is the token's."""
    try:
        me = await client.get_me()
    except SidecarError as exc:
        return [_fatal(TOKEN_SUBJECT, exc)]
    kind = "bot" if me.is_bot else "user, not a bot account"
    results = [CheckResult(TOKEN_SUBJECT, ok=True, note=f"authenticated as @{me.username} ({kind})")]
    checker = _Checker(client, me)
    for recipient in dict.fromkeys(recipients):
        try:
            results.append(await checker.check(recipient))
        except _Stop as stop:
            results.append(stop.result)
            break
    return results


def _fatal(subject: str, exc: SidecarError) -> CheckResult:
    if isinstance(exc, Unauthorized):
        return CheckResult(subject, False, f"Mattermost refused the token (HTTP 401): {exc}", _TOKEN_FIX)
    return CheckResult(subject, False, f"could not ask Mattermost: {exc}", _REACH_FIX)


def name_variants(name: str) -> list[str]:
    """URL-name guesses for something that may be a display name: lower-cased, then dash-joined."""
    lower = name.strip().lower()
    dashed = _SLUG_JUNK.sub("-", lower.replace("_", "-")).strip("-")
    underscored = _SLUG_JUNK.sub("-", lower).strip("-")
    return [v for v in dict.fromkeys((lower, dashed, underscored)) if v and v != name]


class _Checker:
    def __init__(self, client: MattermostClient, me: User) -> None:
        self._client = client
        self._me = me

    async def check(self, recipient: str) -> CheckResult:
        try:
            if is_email(recipient):
                return await self._check_email(recipient)
            parts = split_team_channel(recipient)
            if parts is None:
                return CheckResult(
                    recipient, False, format_error_text(recipient),
                    'use a user email (alice@example.com) or "team/channel" with the URL names of both',
                )
            return await self._check_channel(recipient, *parts)
        except (Unauthorized, TransientError) as exc:
            raise _Stop(_fatal(recipient, exc)) from exc
        except SidecarError as exc:
            return CheckResult(recipient, False, f"unexpected answer from Mattermost: {exc}", _REACH_FIX)

    async def _check_email(self, email: str) -> CheckResult:
        try:
            user = await self._client.get_user_by_email(email)
        except NotFound:
            return CheckResult(
                email, False, "no Mattermost user has this email address",
                "check the address; the person must have a Mattermost account with exactly this email",
            )
        except AccessDenied as exc:
            return CheckResult(
                email, False, f"the server refused to look up users by email (HTTP 403): {exc}",
                "ShowEmailAddress is off or the bot lacks permission: enable System Console > Site Configuration > "
                "Users and Teams > Show Email Address (PrivacySettings.ShowEmailAddress), or give the bot a role "
                "that may read user emails",
            )
        except Rejected as exc:
            return CheckResult(email, False, f"the server rejected the address: {exc}", "fix the email address")
        try:
            channel = await self._client.create_direct_channel(self._me.id, user.id)
        except (AccessDenied, NotFound, Rejected) as exc:
            return CheckResult(
                email, False, f"cannot open a direct message with @{user.username}: {exc}",
                "make sure the user is active and the bot may create direct messages",
            )
        return CheckResult(email, True, channel_id=channel.id)

    async def _check_channel(self, recipient: str, team_name: str, channel_name: str) -> CheckResult:
        if not team_name or not channel_name:
            return CheckResult(
                recipient, False, "the team or the channel part is empty", 'write it as "team/channel"'
            )
        team = await self._find_team(recipient, team_name, channel_name)
        if isinstance(team, CheckResult):
            return team
        try:
            channel = await self._client.get_channel_by_team_and_name(team.name, channel_name)
        except NotFound:
            return await self._channel_not_found(recipient, team, channel_name)
        except AccessDenied as exc:
            return CheckResult(
                recipient, False, f"the bot may not read channel {channel_name!r}: {exc}",
                f"add the bot to team {team.name!r} and to the channel",
            )
        return await self._check_membership(recipient, channel)

    async def _find_team(self, recipient: str, team_name: str, channel_name: str) -> Team | CheckResult:
        try:
            return await self._client.get_team_by_name(team_name)
        except AccessDenied as exc:
            return CheckResult(
                recipient, False, f"the bot may not see team {team_name!r}: {exc}",
                f"add the bot (@{self._me.username}) to the team",
            )
        except NotFound:
            pass
        for variant in name_variants(team_name):
            try:
                team = await self._client.get_team_by_name(variant)
            except (NotFound, AccessDenied, Rejected):
                continue
            return CheckResult(
                recipient, False, f"team {team_name!r} not found; it looks like a display name: "
                f"the team name is {team.name!r}", f'use "{team.name}/{channel_name}"',
            )
        return CheckResult(
            recipient, False, f"team {team_name!r} not found (or the bot is not a member of it)",
            "use the team's URL name (the first part of its URLs) and add the bot to the team",
        )

    async def _channel_not_found(self, recipient: str, team: Team, channel_name: str) -> CheckResult:
        found = await self._guess_channel(team, channel_name)
        if found is not None:
            return CheckResult(
                recipient, False, f"{channel_name!r} looks like a display name: the channel name is {found.name!r}",
                f'use "{team.name}/{found.name}"',
            )
        return CheckResult(
            recipient, False, f"channel {channel_name!r} not found in team {team.name!r} "
            "(or it is private and the bot is not a member)",
            "use the channel's URL name (the last part of its URL); for a private channel, add the bot to it",
        )

    async def _guess_channel(self, team: Team, channel_name: str) -> ChannelInfo | None:
        for variant in name_variants(channel_name):
            try:
                return await self._client.get_channel_by_team_and_name(team.name, variant)
            except (NotFound, AccessDenied, Rejected):
                continue
        # Display names need not map onto names at all ("Town Square" could be "general"): look them up.
        wanted = channel_name.strip().casefold()
        for page in range(_MAX_LIST_PAGES):
            try:
                channels = await self._client.get_team_channels(team.id, page=page, per_page=_PAGE_SIZE)
            except (NotFound, AccessDenied, Rejected):
                return None
            found = next((c for c in channels if c.display_name.strip().casefold() == wanted), None)
            if found is not None or len(channels) < _PAGE_SIZE:
                return found
        return None

    async def _check_membership(self, recipient: str, channel: ChannelInfo) -> CheckResult:
        try:
            await self._client.get_channel_members_me(channel.id)
        except RouteNotFound:
            return CheckResult(
                recipient, True, channel_id=channel.id,
                note="membership not verified: the server does not offer GET /api/v4/channels/{id}/members/me",
            )
        except (NotFound, AccessDenied):
            return CheckResult(
                recipient, False, f"the bot is not a member of ~{channel.name}",
                f"add the bot to ~{channel.name}: in that channel run /invite @{self._me.username}",
                channel_id=channel.id,
            )
        return CheckResult(recipient, True, channel_id=channel.id)
