"""Acting as a seeded user through the real routes: the click and dialog-submit drivers of the test face.

Each call uses a token of that user (an existing one, or one minted for the test face) on the public API, so
it goes through authentication, rate limits, faults and the request log exactly like a browser's request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from fakes.mattermost import users
from fakes.mattermost.outbound import CLIENT_TIMEOUT_SECONDS
from fakes.mattermost.records import OpenedDialog, User
from fakes.mattermost.state import State


@dataclass(frozen=True)
class Reply:
    """What the acting user's client got back."""

    status: int
    body: Any

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"status": self.status, "body": self.body}


class UserDriver:
    """Calls the fake's own API as any of its users."""

    def __init__(self, state: State, http: aiohttp.ClientSession, base_url: str) -> None:
        self.state = state
        self.http = http
        self.base_url = base_url

    def user(self, who: str) -> User:
        """A user by username or id (KeyError when neither matches)."""
        found = self.state.users.get(who) or users.user_by_username(self.state, who)
        if found is None:
            raise KeyError(who)
        return found

    async def click(
        self, who: str, post_id: str, action_id: str, *, selected_option: str | None = None, cookie: str | None = None
    ) -> Reply:
        """`POST /api/v4/posts/{post_id}/actions/{action_id}` as that user."""
        body: dict[str, str] = {}
        if selected_option is not None:
            body["selected_option"] = selected_option
        if cookie is not None:
            body["cookie"] = cookie
        return await self._call(who, f"/api/v4/posts/{post_id}/actions/{action_id}", body)

    async def submit_dialog(
        self,
        who: str,
        *,
        channel_id: str,
        submission: dict[str, Any] | None = None,
        dialog: OpenedDialog | None = None,
        url: str | None = None,
        callback_id: str | None = None,
        state: str | None = None,
        team_id: str | None = None,
        cancelled: bool = False,
    ) -> Reply:
        """`POST /api/v4/actions/dialogs/submit` as that user, as the web app sends it.

        `url`, `callback_id` and `state` default to those of `dialog` (the dialog the user has open); any of
        them may be given instead, to forge a submission. `team_id` defaults to the channel's team or, for
        a direct channel, the user's first team (the web app sends the team the user is looking at).
        """
        acting = self.user(who)
        body = {
            "url": url if url is not None else (dialog.url if dialog else ""),
            "callback_id": callback_id if callback_id is not None else _dialog_text(dialog, "callback_id"),
            "state": state if state is not None else _dialog_text(dialog, "state"),
            "submission": submission if submission is not None else {},
            "channel_id": channel_id,
            "team_id": team_id if team_id is not None else self._team_for(acting, channel_id),
            "cancelled": cancelled,
        }
        return await self._call(acting.id, "/api/v4/actions/dialogs/submit", body)

    def _team_for(self, user: User, channel_id: str) -> str:
        channel = self.state.channels.get(channel_id)
        if channel is not None and channel.team_id:
            return channel.team_id
        return next((team_id for (team_id, user_id) in self.state.team_members if user_id == user.id), "")

    async def _call(self, who: str, path: str, body: dict[str, Any]) -> Reply:
        token = users.session_token(self.state, self.user(who).id)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
        # Longer than the longest integration call, so the server's own answer (a 400 on timeout) arrives.
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_SECONDS + 15)
        async with self.http.post(
            self.base_url + path, data=json.dumps(body), headers=headers, timeout=timeout
        ) as response:
            raw = await response.read()
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", errors="replace")
        return Reply(response.status, decoded)


def _dialog_text(dialog: OpenedDialog | None, key: str) -> str:
    value = dialog.dialog.get(key) if dialog is not None else None
    return value if isinstance(value, str) else ""
