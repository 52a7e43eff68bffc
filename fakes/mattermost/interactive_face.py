"""The interactive-message part of the test face: act as users, inspect ephemerals, dialogs and integration calls.

`Control` inherits it; every route needs the admin token like the rest of `/fake/`. Users are named by username
or id (`username` or `user_id` in bodies and queries).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from fakes.mattermost import attachments, cookies, posts, users
from fakes.mattermost.config import IntegrationSettings
from fakes.mattermost.driver import Reply, UserDriver
from fakes.mattermost.outbound import IntegrationCall
from fakes.mattermost.records import EphemeralPost, OpenedDialog, User
from fakes.mattermost.state import State
from fakes.mattermost.trigger import Trigger, TriggerSigner


class InteractiveFace:
    """Clicks and dialog submissions as any user, and what they caused."""

    state: State
    #: Set by the server once it listens: acts as users through the real routes.
    driver: UserDriver | None

    def ephemerals(self, user: str | None = None) -> list[EphemeralPost]:
        """Ephemeral posts, oldest first; `user` (username or id) keeps the ones only that user saw."""
        user_id = self.find_user(user).id if user is not None else None
        return [e for e in self.state.ephemeral if user_id is None or e.user_id == user_id]

    def dialogs(self, user: str | None = None) -> list[OpenedDialog]:
        """Dialogs opened, oldest first; `user` (username or id) keeps the ones pushed to that user."""
        user_id = self.find_user(user).id if user is not None else None
        return [d for d in self.state.dialogs if user_id is None or d.user_id == user_id]

    def integration_calls(self, *, kind: str | None = None, user: str | None = None) -> list[IntegrationCall]:
        """Calls to integrations, oldest first (`kind`: `post_action` or `dialog_submission`)."""
        user_id = self.find_user(user).id if user is not None else None
        return [
            c
            for c in self.state.integration_calls
            if (kind is None or c.kind == kind) and (user_id is None or c.user_id == user_id)
        ]

    def clear_integration_calls(self) -> None:
        """Forget the recorded integration calls."""
        self.state.integration_calls.clear()

    def find_user(self, who: str) -> User:
        """A user by username or id (KeyError when neither matches)."""
        found = self.state.users.get(who) or users.user_by_username(self.state, who)
        if found is None:
            raise KeyError(who)
        return found

    def user_token(self, who: str) -> str:
        """A token that calls the API as this user (an existing one, or one minted for the test face)."""
        return users.session_token(self.state, self.find_user(who).id)

    def set_active(self, who: str, active: bool) -> User:
        """Activate or deactivate a user; a deactivated user's tokens stop working, as their sessions end."""
        user = self.find_user(who)
        user.delete_at = 0 if active else self.state.now()
        user.update_at = self.state.now()
        return user

    def mint_trigger(self, who: str, minted_at: int | None = None) -> Trigger:
        """A trigger id for this user signed with the server's key, made at `minted_at` (ms; default now)."""
        user = self.find_user(who)
        return self.state.signer.mint(user.id, self.state.now() if minted_at is None else minted_at)

    def action_cookie(self, post_id: str, action_id: str) -> str:
        """The sealed cookie `AddPostActionCookies` makes for this action of a stored post (KeyError if none)."""
        post = self.state.posts[post_id]
        action = attachments.find_action(post.props, action_id)
        if action is None:
            raise KeyError(action_id)
        retained = {k: post.props[k] for k in posts.RETAINED_PROPS if k in post.props}
        removed = [k for k in posts.RETAINED_PROPS if k not in post.props]
        cookie = {
            "type": action.get("type", ""),
            "post_id": post.id,
            "root_post_id": post.root_id or post.id,
            "channel_id": post.channel_id,
            "data_source": action.get("data_source", ""),
            "integration": action.get("integration"),
            "retain_props": retained,
            "remove_props": removed,
        }
        return cookies.seal({k: v for k, v in cookie.items() if v}, self.state.cookie_secret)

    @property
    def settings(self) -> IntegrationSettings:
        """The integration settings in force."""
        return self.state.settings

    def update_settings(self, **changes: Any) -> IntegrationSettings:
        """Change integration settings until the next reset (ValueError for unknown keys or bad values)."""
        self.state.settings = self.state.settings.updated(changes)
        return self.state.settings

    def rotate_signing_key(self) -> str:
        """Replace the trigger signing key; the new `AsymmetricSigningPublicKey`."""
        self.state.signer = TriggerSigner.random()
        return self.state.signer.public_key_b64()

    def _driver(self) -> UserDriver:
        if self.driver is None:
            raise RuntimeError("the server is not listening")
        return self.driver

    async def click(
        self, who: str, post_id: str, action_id: str, *, selected_option: str | None = None, cookie: str | None = None
    ) -> Reply:
        """Click a button as a user, through the real route; the API's status and body."""
        return await self._driver().click(who, post_id, action_id, selected_option=selected_option, cookie=cookie)

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
        """Submit a dialog as a user, through the real route (see `UserDriver.submit_dialog`)."""
        return await self._driver().submit_dialog(
            who, channel_id=channel_id, submission=submission, dialog=dialog, url=url, callback_id=callback_id,
            state=state, team_id=team_id, cancelled=cancelled,
        )

    def register_interactive(self, app: web.Application) -> None:
        """Add the interactive `/fake/` routes."""
        r = app.router
        r.add_get("/fake/ephemeral", self._get_ephemeral)
        r.add_get("/fake/ephemerals", self._get_ephemeral)
        r.add_get("/fake/dialogs", self._get_dialogs)
        r.add_get("/fake/integration-calls", self._get_integration_calls)
        r.add_delete("/fake/integration-calls", self._delete_integration_calls)
        r.add_post("/fake/click", self._post_click)
        r.add_post("/fake/dialogs/submit", self._post_dialog_submit)
        r.add_post("/fake/tokens", self._post_token)
        r.add_post("/fake/users/active", self._post_active)
        r.add_post("/fake/triggers", self._post_trigger)
        r.add_post("/fake/cookies", self._post_cookie)
        r.add_get("/fake/settings", self._get_settings)
        r.add_put("/fake/settings", self._put_settings)
        r.add_post("/fake/signing-key/rotate", self._post_rotate)

    async def _get_ephemeral(self, request: web.Request) -> web.Response:
        try:
            found = self.ephemerals(_who(request.query))
        except KeyError:
            return _no_such_user()
        return web.json_response([asdict(e) for e in found])

    async def _get_dialogs(self, request: web.Request) -> web.Response:
        try:
            found = self.dialogs(_who(request.query))
        except KeyError:
            return _no_such_user()
        return web.json_response([{**asdict(d), "problems": list(d.problems)} for d in found])

    async def _get_integration_calls(self, request: web.Request) -> web.Response:
        try:
            found = self.integration_calls(kind=request.query.get("kind"), user=_who(request.query))
        except KeyError:
            return _no_such_user()
        return web.json_response([c.to_json() for c in found])

    async def _delete_integration_calls(self, request: web.Request) -> web.Response:
        self.clear_integration_calls()
        return web.json_response({"status": "OK"})

    async def _post_click(self, request: web.Request) -> web.Response:
        doc = await _object(request)
        if doc is None or not all(isinstance(doc.get(k), str) for k in ("post_id", "action_id")):
            return _bad("need post_id and action_id")
        who = _who(doc)
        if who is None:
            return _bad("need username or user_id")
        options = {k: doc[k] for k in ("selected_option", "cookie") if isinstance(doc.get(k), str)}
        try:
            reply = await self.click(who, doc["post_id"], doc["action_id"], **options)
        except KeyError:
            return _no_such_user()
        return web.json_response(reply.to_json())

    async def _post_dialog_submit(self, request: web.Request) -> web.Response:
        doc = await _object(request)
        who = _who(doc or {})
        if doc is None or who is None or not isinstance(doc.get("channel_id"), str):
            return _bad("need username or user_id, and channel_id")
        dialog = None
        if "dialog_id" in doc:
            dialog = next((d for d in self.state.dialogs if d.id == doc["dialog_id"]), None)
            if dialog is None:
                return web.json_response({"error": "no such dialog"}, status=404)
        texts = {k: doc[k] for k in ("url", "callback_id", "state", "team_id") if isinstance(doc.get(k), str)}
        submission = doc.get("submission")
        try:
            reply = await self.submit_dialog(
                who,
                channel_id=doc["channel_id"],
                submission=submission if isinstance(submission, dict) else None,
                dialog=dialog,
                cancelled=doc.get("cancelled") is True,
                **texts,
            )
        except KeyError:
            return _no_such_user()
        return web.json_response(reply.to_json())

    async def _post_token(self, request: web.Request) -> web.Response:
        who = _who(await _object(request) or {})
        if who is None:
            return _bad("need username or user_id")
        try:
            user = self.find_user(who)
        except KeyError:
            return _no_such_user()
        return web.json_response({"user_id": user.id, "token": self.user_token(user.id)})

    async def _post_active(self, request: web.Request) -> web.Response:
        doc = await _object(request) or {}
        who = _who(doc)
        if who is None or not isinstance(doc.get("active"), bool):
            return _bad("need username or user_id, and active")
        try:
            user = self.set_active(who, doc["active"])
        except KeyError:
            return _no_such_user()
        return web.json_response({"user_id": user.id, "delete_at": user.delete_at})

    async def _post_trigger(self, request: web.Request) -> web.Response:
        doc = await _object(request) or {}
        who = _who(doc)
        minted_at = doc.get("minted_at")
        if who is None or not (minted_at is None or (isinstance(minted_at, int) and not isinstance(minted_at, bool))):
            return _bad("need username or user_id; minted_at must be an integer (ms)")
        try:
            trigger = self.mint_trigger(who, minted_at)
        except KeyError:
            return _no_such_user()
        return web.json_response({"trigger_id": trigger.trigger_id, "client_trigger_id": trigger.client_trigger_id})

    async def _post_cookie(self, request: web.Request) -> web.Response:
        doc = await _object(request) or {}
        if not all(isinstance(doc.get(k), str) for k in ("post_id", "action_id")):
            return _bad("need post_id and action_id")
        try:
            cookie = self.action_cookie(doc["post_id"], doc["action_id"])
        except KeyError:
            return web.json_response({"error": "no such post or action"}, status=404)
        return web.json_response({"cookie": cookie})

    async def _get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings.to_json())

    async def _put_settings(self, request: web.Request) -> web.Response:
        doc = await _object(request)
        if doc is None:
            return _bad("body must be a JSON object")
        try:
            settings = self.update_settings(**doc)
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return web.json_response(settings.to_json())

    async def _post_rotate(self, request: web.Request) -> web.Response:
        return web.json_response({"AsymmetricSigningPublicKey": self.rotate_signing_key()})


def _who(doc: Any) -> str | None:
    """`username` or `user_id` from a query or a JSON body."""
    for key in ("username", "user_id"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def _object(request: web.Request) -> dict[str, Any] | None:
    try:
        doc = await request.json()
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _no_such_user() -> web.Response:
    return web.json_response({"error": "no such user"}, status=404)
