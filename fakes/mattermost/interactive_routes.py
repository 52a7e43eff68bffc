"""Handlers for interactive messages: button clicks, dialogs, and the client config that publishes the trigger key.

| route | session | handler |
|---|---|---|
| `GET /api/v4/config/client?format=old` | optional (limited map without) | `client_config.py` |
| `POST /api/v4/posts/{post_id}/actions/{action_id}` | required | `actions.py` |
| `POST /api/v4/actions/dialogs/open` | none | `dialogs.py` |
| `POST /api/v4/actions/dialogs/submit` | required | `dialogs.py` |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from fakes.mattermost import actions, client_config, dialogs, errors, payloads
from fakes.mattermost.records import Session
from fakes.mattermost.state import State

#: The interactive routes that need no session.
PUBLIC_ROUTES = frozenset({("GET", "/api/v4/config/client"), ("POST", "/api/v4/actions/dialogs/open")})
_NO_BODY = object()


class InteractiveApi:
    """The handlers, bound to one state; `session_of` reads the caller from a request."""

    def __init__(
        self, state: State, http: aiohttp.ClientSession, session_of: Callable[[web.Request], Session | None]
    ) -> None:
        self.state = state
        self.http = http
        self._session_of = session_of

    def register(self, app: web.Application) -> None:
        """Add the routes (ids as the real server's route regexes)."""
        r = app.router
        r.add_get("/api/v4/config/client", self.config_client)
        r.add_post("/api/v4/posts/{post_id:[A-Za-z0-9]+}/actions/{action_id:[A-Za-z0-9]+}", self.post_action)
        r.add_post("/api/v4/actions/dialogs/open", self.open_dialog)
        r.add_post("/api/v4/actions/dialogs/submit", self.submit_dialog)

    def _session(self, request: web.Request) -> Session:
        session = self._session_of(request)
        if session is None:
            raise errors.session_expired()
        return session

    async def config_client(self, request: web.Request) -> web.Response:
        """`GET /config/client`: the limited map without a session, the full one with."""
        client_config.check_format(request.query.get("format"))
        logged_in = self._session_of(request) is not None
        return _json(client_config.client_config(self.state, logged_in=logged_in))

    async def post_action(self, request: web.Request) -> web.Response:
        """`POST /posts/{post_id}/actions/{action_id}`: 200 `{"status": "OK", "trigger_id": ...}`."""
        session = self._session(request)
        body = await self._first_json_value(request)
        client_trigger_id = await actions.do_post_action(
            self.state,
            self.http,
            session.user,
            request.match_info["post_id"],
            request.match_info["action_id"],
            None if body is _NO_BODY else body,
        )
        return _json({"status": "OK", "trigger_id": client_trigger_id})

    async def open_dialog(self, request: web.Request) -> web.Response:
        """`POST /actions/dialogs/open`: 200 `{"status":"OK"}` (written without a newline, `ReturnStatusOK`)."""
        body = await self._first_json_value(request)
        if body is _NO_BODY:
            raise errors.invalid_param("dialog")
        dialogs.open_dialog(self.state, body)
        return _json({"status": "OK"}, newline=False)

    async def submit_dialog(self, request: web.Request) -> web.Response:
        """`POST /actions/dialogs/submit`: 200 with the integration's answer (`json.Marshal`, no newline)."""
        session = self._session(request)
        body = await self._first_json_value(request)
        if body is _NO_BODY:
            raise errors.invalid_param("dialog")
        answer = await dialogs.submit_dialog(self.state, self.http, session.user, body)
        return _json(answer, newline=False)

    async def _first_json_value(self, request: web.Request) -> Any:
        # Go's json.Decoder.Decode reads the first JSON value and ignores what follows; no value is an error.
        limit = self.state.config.max_payload_bytes
        if request.content_length is not None and request.content_length > limit:
            raise errors.body_too_large()
        raw = await request.content.read(limit + 1)
        if len(raw) > limit:
            raise errors.body_too_large()
        try:
            text = raw.decode("utf-8").lstrip()
            value, _ = json.JSONDecoder().raw_decode(text)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _NO_BODY
        return value


def _json(value: Any, *, newline: bool = True) -> web.Response:
    response = web.Response(body=payloads.encode(value, newline=newline), status=200)
    response.headers["Content-Type"] = "application/json"
    return response
