"""The /api/v4 handlers: parse the request, call the resource operations, render the real server's JSON and status."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from fakes.mattermost import channels, errors, interactive_routes, payloads, posts, teams, users
from fakes.mattermost.interactive_routes import InteractiveApi
from fakes.mattermost.records import Session
from fakes.mattermost.state import State

SESSION_KEY = web.RequestKey("mm_session", Session)
#: Routes served without a session (an invalid token there is ignored, as on the real server).
PUBLIC_ROUTES = frozenset(
    {("GET", "/api/v4/system/ping"), ("POST", "/api/v4/users"), *interactive_routes.PUBLIC_ROUTES}
)
#: `web/params.go`: PerPageDefault and PerPageMaximum.
PER_PAGE_DEFAULT = 60
PER_PAGE_MAXIMUM = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(value: Any, status: int = 200) -> web.Response:
    """A JSON answer with `Content-Type: application/json` exactly (no charset)."""
    response = web.Response(body=payloads.encode(value), status=status)
    response.headers["Content-Type"] = "application/json"
    return response


def _optional_session(request: web.Request) -> Session | None:
    return request.get(SESSION_KEY)


def session_of(request: web.Request) -> Session:
    """The caller's session (the middleware guarantees it on session-required routes)."""
    if SESSION_KEY not in request:
        raise errors.session_expired()
    return request[SESSION_KEY]


async def read_json(request: web.Request, name: str, max_bytes: int) -> Any:
    """Decode the JSON body; 413 when too large, 400 `invalid_body_param(name)` when malformed."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise errors.body_too_large()
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise errors.body_too_large()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.invalid_body_param(name) from exc


async def read_object(request: web.Request, name: str, max_bytes: int) -> dict[str, Any]:
    """A JSON object body (anything else is 400 for `name`)."""
    doc = await read_json(request, name, max_bytes)
    if not isinstance(doc, dict):
        raise errors.invalid_body_param(name)
    return doc


async def read_id_list(request: web.Request, name: str, max_bytes: int) -> list[str]:
    """A JSON array of strings body."""
    doc = await read_json(request, name, max_bytes)
    if not isinstance(doc, list) or not all(isinstance(v, str) for v in doc):
        raise errors.invalid_body_param(name)
    return doc


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise errors.invalid_url_param(name) from exc
    if value < 0:
        raise errors.invalid_url_param(name)
    return value


class Api:
    """Handlers bound to one state; `http` is the client used to call button integrations."""

    def __init__(self, state: State, http: aiohttp.ClientSession) -> None:
        self.state = state
        self.http = http

    @property
    def _max_body(self) -> int:
        return self.state.config.max_payload_bytes

    def register(self, app: web.Application) -> None:
        """Add every route, with the server's path-parameter regexes."""
        ident = "[A-Za-z0-9]+"
        handle = "[A-Za-z0-9_-]+"
        r = app.router
        r.add_get("/api/v4/system/ping", self.ping)
        r.add_post("/api/v4/users", self.create_user)
        r.add_post("/api/v4/users/ids", self.users_by_ids)
        r.add_get("/api/v4/users/email/{email:.+}", self.user_by_email)
        r.add_get("/api/v4/users/username/{username:[A-Za-z0-9_.-]+}", self.user_by_username)
        r.add_get(f"/api/v4/users/{{user_id:{ident}}}", self.get_user)
        r.add_post(f"/api/v4/users/{{user_id:{ident}}}/tokens", self.create_token)
        r.add_post("/api/v4/bots", self.create_bot)
        r.add_post("/api/v4/channels/direct", self.create_direct)
        r.add_get(f"/api/v4/teams/name/{{team_name:{handle}}}", self.team_by_name)
        r.add_get(
            f"/api/v4/teams/name/{{team_name:{handle}}}/channels/name/{{channel_name:{handle}}}",
            self.channel_by_names,
        )
        r.add_post(f"/api/v4/channels/{{channel_id:{ident}}}/members", self.add_channel_member)
        r.add_get(f"/api/v4/channels/{{channel_id:{ident}}}/members/{{user_id:{ident}}}", self.get_channel_member)
        r.add_get(f"/api/v4/teams/{{team_id:{ident}}}/channels", self.team_public_channels)
        r.add_post(f"/api/v4/teams/{{team_id:{ident}}}/members", self.add_team_member)
        r.add_post("/api/v4/posts", self.create_post)
        r.add_get(f"/api/v4/posts/{{post_id:{ident}}}", self.get_post)
        r.add_put(f"/api/v4/posts/{{post_id:{ident}}}", self.update_post)
        r.add_put(f"/api/v4/posts/{{post_id:{ident}}}/patch", self.patch_post)
        r.add_get(f"/api/v4/posts/{{post_id:{ident}}}/thread", self.thread)
        r.add_get(f"/api/v4/channels/{{channel_id:{ident}}}/posts", self.channel_posts)
        InteractiveApi(self.state, self.http, _optional_session).register(app)

    # ------------------------------------------------------------------ system, users

    async def ping(self, request: web.Request) -> web.Response:
        """`GET /system/ping`."""
        return json_response(payloads.ping_json())

    def _user_id(self, request: web.Request, session: Session) -> str:
        user_id = request.match_info["user_id"]
        if user_id == "me":
            return session.user.id
        if len(user_id) != 26:
            raise errors.invalid_url_param("user_id")
        return user_id

    async def get_user(self, request: web.Request) -> web.Response:
        """`GET /users/{user_id}` (also `me`)."""
        session = session_of(request)
        user = users.get_user(self.state, session.user, self._user_id(request, session))
        return json_response(payloads.user_json(user, session.user, self.state.config))

    async def user_by_email(self, request: web.Request) -> web.Response:
        """`GET /users/email/{email}`."""
        session = session_of(request)
        user = users.get_user_by_email(self.state, session.user, request.match_info["email"])
        return json_response(payloads.user_json(user, session.user, self.state.config))

    async def user_by_username(self, request: web.Request) -> web.Response:
        """`GET /users/username/{username}`."""
        session = session_of(request)
        user = users.get_user_by_username(self.state, session.user, request.match_info["username"])
        return json_response(payloads.user_json(user, session.user, self.state.config))

    async def users_by_ids(self, request: web.Request) -> web.Response:
        """`POST /users/ids` (200, unknown ids skipped)."""
        session = session_of(request)
        ids = await read_id_list(request, "user_ids", self._max_body)
        found = users.get_users_by_ids(self.state, session.user, ids)
        return json_response([payloads.user_json(u, session.user, self.state.config) for u in found])

    async def create_user(self, request: web.Request) -> web.Response:
        """`POST /users` (201)."""
        caller = request[SESSION_KEY].user if SESSION_KEY in request else None
        body = await read_object(request, "user", self._max_body)
        user = users.create_user(self.state, caller, body)
        viewer = caller if caller is not None else user
        return json_response(payloads.user_json(user, viewer, self.state.config), status=201)

    async def create_bot(self, request: web.Request) -> web.Response:
        """`POST /bots` (201)."""
        session = session_of(request)
        body = await read_object(request, "bot", self._max_body)
        bot = users.create_bot(self.state, session.user, body)
        return json_response(payloads.bot_json(bot), status=201)

    async def create_token(self, request: web.Request) -> web.Response:
        """`POST /users/{user_id}/tokens` (200, not the spec's 201)."""
        session = session_of(request)
        body = await read_object(request, "token", self._max_body)
        token = users.create_token(self.state, session.user, self._user_id(request, session), body)
        return json_response(payloads.token_json(token))

    # ------------------------------------------------------------------ teams, channels

    async def team_by_name(self, request: web.Request) -> web.Response:
        """`GET /teams/name/{name}`."""
        session = session_of(request)
        team = teams.get_team_by_name(self.state, session.user, request.match_info["team_name"])
        return json_response(payloads.team_json(team, session.user))

    async def channel_by_names(self, request: web.Request) -> web.Response:
        """`GET /teams/name/{team}/channels/name/{channel}`."""
        session = session_of(request)
        channel = channels.get_channel_by_names(
            self.state, session.user, request.match_info["team_name"], request.match_info["channel_name"]
        )
        return json_response(payloads.channel_json(channel))

    async def create_direct(self, request: web.Request) -> web.Response:
        """`POST /channels/direct` (201, also when the DM already exists)."""
        session = session_of(request)
        ids = await read_id_list(request, "user_ids", self._max_body)
        channel = channels.create_direct_channel(self.state, session.user, ids)
        return json_response(payloads.channel_json(channel), status=201)

    async def add_channel_member(self, request: web.Request) -> web.Response:
        """`POST /channels/{id}/members`: `user_id` → one member, `user_ids` → a list (201)."""
        session = session_of(request)
        body = await read_object(request, "user_id", self._max_body)
        single = body.get("user_id")
        many = body.get("user_ids")
        if isinstance(single, str) and single:
            ids = [single]
        elif isinstance(many, list) and many and all(isinstance(v, str) for v in many) and len(many) <= 1000:
            ids = list(many)
        else:
            raise errors.invalid_body_param("user_id or user_ids")
        members = channels.add_channel_member(self.state, session.user, request.match_info["channel_id"], ids)
        if isinstance(single, str) and single:
            return json_response(payloads.channel_member_json(members[0]), status=201)
        return json_response([payloads.channel_member_json(m) for m in members], status=201)

    async def get_channel_member(self, request: web.Request) -> web.Response:
        """`GET /channels/{id}/members/{user_id}` (also `me`)."""
        session = session_of(request)
        member = channels.get_channel_member(
            self.state, session.user, request.match_info["channel_id"], self._user_id(request, session)
        )
        return json_response(payloads.channel_member_json(member))

    async def team_public_channels(self, request: web.Request) -> web.Response:
        """`GET /teams/{id}/channels`: public channels, paged."""
        session = session_of(request)
        per_page = min(_int_query(request, "per_page", PER_PAGE_DEFAULT), PER_PAGE_MAXIMUM)
        page = _int_query(request, "page", 0)
        team_id = request.match_info["team_id"]
        listed = channels.public_channels_of_team(self.state, session.user, team_id, page, per_page)
        return json_response([payloads.channel_json(c) for c in listed])

    async def add_team_member(self, request: web.Request) -> web.Response:
        """`POST /teams/{id}/members` (201)."""
        session = session_of(request)
        body = await read_object(request, "team_member", self._max_body)
        team_id = request.match_info["team_id"]
        user_id = body.get("user_id")
        if body.get("team_id", team_id) != team_id:
            raise errors.invalid_param("team_id")
        if not isinstance(user_id, str) or not user_id:
            raise errors.invalid_param("user_id")
        member = teams.add_team_member(self.state, session.user, team_id, user_id)
        return json_response(payloads.team_member_json(member), status=201)

    # ------------------------------------------------------------------ posts

    async def create_post(self, request: web.Request) -> web.Response:
        """`POST /posts` (201; a deduplicated retry answers with the first post, also 201)."""
        session = session_of(request)
        body = await read_object(request, "post", self._max_body)
        post, pending = posts.create_post(self.state, session.user, body)
        return json_response(payloads.post_json(post, self.state, pending), status=201)

    async def get_post(self, request: web.Request) -> web.Response:
        """`GET /posts/{id}`."""
        session = session_of(request)
        post, _ = posts.readable_post(self.state, session.user, request.match_info["post_id"])
        return json_response(payloads.post_json(post, self.state))

    async def update_post(self, request: web.Request) -> web.Response:
        """`PUT /posts/{id}`: full replacement of the editable fields."""
        session = session_of(request)
        body = await read_object(request, "post", self._max_body)
        post = posts.update_post(self.state, session.user, request.match_info["post_id"], body)
        return json_response(payloads.post_json(post, self.state))

    async def patch_post(self, request: web.Request) -> web.Response:
        """`PUT /posts/{id}/patch`: only the given fields."""
        session = session_of(request)
        body = await read_object(request, "patch", self._max_body)
        post = posts.patch_post(self.state, session.user, request.match_info["post_id"], body)
        return json_response(payloads.post_json(post, self.state))

    async def thread(self, request: web.Request) -> web.Response:
        """`GET /posts/{id}/thread`."""
        session = session_of(request)
        direction = request.query.get("direction", "")
        if direction not in ("", "up", "down"):
            raise errors.invalid_url_param("direction")
        page = posts.thread(
            self.state,
            session.user,
            request.match_info["post_id"],
            _int_query(request, "perPage", 0),
            _int_query(request, "fromCreateAt", 0),
            direction,
        )
        return json_response(payloads.post_list_json(page, self.state))

    async def channel_posts(self, request: web.Request) -> web.Response:
        """`GET /channels/{id}/posts` (page/per_page, since, before, after)."""
        session = session_of(request)
        since = _int_query(request, "since", 0)
        before = request.query.get("before", "")
        after = request.query.get("after", "")
        per_page = min(_int_query(request, "per_page", PER_PAGE_DEFAULT), PER_PAGE_MAXIMUM)
        page = _int_query(request, "page", 0)
        if since and (before or after):
            raise errors.invalid_url_param("since")
        channel_id = request.match_info["channel_id"]
        page_result = posts.channel_posts(self.state, session.user, channel_id, page, per_page, since, before, after)
        return json_response(payloads.post_list_json(page_result, self.state))
