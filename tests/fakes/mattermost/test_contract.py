"""Contract tests: every response of every implemented endpoint against the official OpenAPI spec.

A scenario drives each endpoint through its success and error paths; every recorded response is then
validated by openapi-core against the spec assembled from the official fragments. The spec is used
as published except for the named exceptions below, each a documented server-vs-spec difference; a
test checks that every exception is still needed (the pristine spec really lacks it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.ratelimit import RateLimitConfig
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client, Response
from tests.fakes.mattermost.openapi_spec import SpecRequest, SpecResponse, load_spec

BOT = "teleport-bot-token"
ADMIN = "admin-token"
APP_ERROR = {"$ref": "#/components/responses/BadRequest"}  # any AppError response object


@dataclass(frozen=True)
class Exception_:
    """A named difference between the server (and so the fake) and the published spec."""

    name: str
    source: str


# ---- Status codes the server writes that the spec documents differently.
TOKEN_200 = Exception_("POST /users/{user_id}/tokens answers 200; spec says 201", "MM api4/user.go")
# ---- The 429 body is plain text `limit exceeded`, not JSON; the spec has no 429 response at all.
PLAIN_429 = Exception_("429 is plain text `limit exceeded`, not a documented JSON response", "MM app/ratelimit.go")
# ---- User.timezone is a map of strings; the spec's Timezone says useAutomaticTimezone is boolean.
TIMEZONE_STRINGS = Exception_("User.timezone.useAutomaticTimezone is the string \"true\"", "MM model/user.go Timezone")
# ---- `user_ids` (newer servers) makes add-channel-member answer with an array.
MEMBERS_ARRAY = Exception_("POST /channels/{id}/members with user_ids answers an array", "MM api4/channel.go")

#: Error statuses the server answers (MM AppError, model/utils.go) that the spec does not list for the operation.
UNDOCUMENTED_ERRORS: dict[tuple[str, str, str], Exception_] = {
    ("post", "/api/v4/users/{user_id}/tokens", "404"): Exception_("unknown user", "MM api4/user.go"),
    ("post", "/api/v4/users/{user_id}/tokens", "501"): Exception_("human PATs disabled", "MM api4/user.go"),
    ("get", "/api/v4/posts/{post_id}", "404"): Exception_("unknown post", "MM app.post.get.app_error"),
    ("get", "/api/v4/posts/{post_id}/thread", "404"): Exception_("unknown post", "MM api4/post.go"),
    ("post", "/api/v4/posts", "413"): Exception_("body over MaximumPayloadSizeBytes", "MM web/handlers"),
    ("post", "/api/v4/channels/{channel_id}/members", "404"): Exception_("unknown channel or user", "MM api4"),
    ("post", "/api/v4/posts/{post_id}/actions/{action_id}", "404"): Exception_("unknown post or action", "MM api4"),
    ("post", "/api/v4/actions/dialogs/submit", "404"): Exception_(
        "unknown channel_id: app.channel.get.existing.app_error", "server api4/integration_action.go submitDialog"
    ),
    ("get", "/api/v4/channels/{channel_id}/members/{user_id}", "404"): Exception_(
        "not a member: app.channel.get_member.missing.app_error", "server api4/channel.go getChannelMember"
    ),
}

#: The operations the fake implements (docs/fake-mattermost.md), as the spec names their paths.
IMPLEMENTED = [
    ("get", "/api/v4/system/ping"),
    ("get", "/api/v4/users/{user_id}"),
    ("get", "/api/v4/users/email/{email}"),
    ("get", "/api/v4/users/username/{username}"),
    ("post", "/api/v4/users/ids"),
    ("post", "/api/v4/users"),
    ("post", "/api/v4/bots"),
    ("post", "/api/v4/users/{user_id}/tokens"),
    ("post", "/api/v4/channels/direct"),
    ("get", "/api/v4/teams/name/{name}"),
    ("get", "/api/v4/teams/name/{team_name}/channels/name/{channel_name}"),
    ("post", "/api/v4/channels/{channel_id}/members"),
    ("get", "/api/v4/channels/{channel_id}/members/{user_id}"),
    ("get", "/api/v4/teams/{team_id}/channels"),
    ("post", "/api/v4/teams/{team_id}/members"),
    ("post", "/api/v4/posts"),
    ("get", "/api/v4/posts/{post_id}"),
    ("put", "/api/v4/posts/{post_id}"),
    ("put", "/api/v4/posts/{post_id}/patch"),
    ("get", "/api/v4/posts/{post_id}/thread"),
    ("get", "/api/v4/channels/{channel_id}/posts"),
    ("post", "/api/v4/posts/{post_id}/actions/{action_id}"),
    ("get", "/api/v4/config/client"),
    ("post", "/api/v4/actions/dialogs/open"),
    ("post", "/api/v4/actions/dialogs/submit"),
]


def patched_spec() -> dict[str, Any]:
    """The published spec plus exactly the named exceptions."""
    spec = load_spec()
    paths = spec["paths"]
    tokens = paths["/api/v4/users/{user_id}/tokens"]["post"]["responses"]
    tokens["200"] = tokens["201"]  # TOKEN_200
    timezone = spec["components"]["schemas"]["Timezone"]["properties"]["useAutomaticTimezone"]
    timezone["type"] = "string"  # TIMEZONE_STRINGS
    members = paths["/api/v4/channels/{channel_id}/members"]["post"]["responses"]["201"]["content"]
    member = {"$ref": "#/components/schemas/ChannelMember"}
    members["application/json"]["schema"] = {"oneOf": [member, {"type": "array", "items": member}]}  # MEMBERS_ARRAY
    for (method, path, status) in UNDOCUMENTED_ERRORS:
        paths[path][method]["responses"][status] = APP_ERROR
    return spec


@functools.cache
def patched_openapi() -> OpenAPI:
    """openapi-core over the patched spec (built once: validating the spec takes a moment)."""
    return OpenAPI.from_dict(patched_spec())


def test_every_exception_is_still_needed() -> None:
    pristine = load_spec()
    paths = pristine["paths"]
    assert "200" not in paths["/api/v4/users/{user_id}/tokens"]["post"]["responses"], TOKEN_200.name
    zone = pristine["components"]["schemas"]["Timezone"]["properties"]["useAutomaticTimezone"]
    assert zone["type"] == "boolean", TIMEZONE_STRINGS.name
    schema = paths["/api/v4/channels/{channel_id}/members"]["post"]["responses"]["201"]["content"]
    assert schema["application/json"]["schema"] == {"$ref": "#/components/schemas/ChannelMember"}, MEMBERS_ARRAY.name
    for (method, path, status), exception in UNDOCUMENTED_ERRORS.items():
        assert status not in paths[path][method]["responses"], exception.name
    for method, path in IMPLEMENTED:
        assert "429" not in paths[path][method]["responses"], PLAIN_429.name


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its reply."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes | None
    reply: Response


class RecordingClient(Client):
    """A client that keeps every exchange for later validation."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        super().__init__(session, base)
        self.exchanges: list[Exchange] = []

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        reply = await super().call(method, path, token, body, raw=raw, headers=headers)
        parts = urlsplit(path)
        sent = raw if body is None else json.dumps(body).encode()
        self.exchanges.append(Exchange(method, parts.path, dict(parse_qsl(parts.query)), sent, reply))
        return reply


def validate(openapi: OpenAPI, exchange: Exchange) -> None:
    """Raise if the response does not match the spec."""
    reply = exchange.reply
    request = SpecRequest(
        path=exchange.path,
        method=exchange.method.lower(),
        query=exchange.query,
        content_type="application/json" if exchange.body is not None else "",
        body=exchange.body,
    )
    response = SpecResponse(reply.status, reply.headers.get("Content-Type", ""), dict(reply.headers), reply.raw)
    openapi.validate_response(request, response)


@pytest.fixture
async def integration() -> AsyncIterator[str]:
    """A loopback button integration that updates the post."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"update": {"message": "done", "props": None}, "ephemeral_text": "ok"})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def run_scenario(api: RecordingClient, mm: FakeMattermost, hook: str) -> None:
    """Each implemented endpoint, success and error paths."""
    c = mm.control
    bot, reviewer, other = c.user_id("teleport"), c.user_id("reviewer"), c.user_id("myuser")
    square, general = c.channel_id("myteam", "town-square"), c.channel_id("myteam", "general")
    secret = c.channel_id("myteam", "secret-reviews")
    unknown = "q" * 26
    calls: list[tuple[str, str, str | None, Any]] = [
        ("GET", "/api/v4/system/ping", None, None),
        ("GET", "/api/v4/users/me", BOT, None),
        ("GET", "/api/v4/users/me", None, None),
        ("GET", "/api/v4/users/me", "bad-token", None),
        ("GET", f"/api/v4/users/{reviewer}", BOT, None),
        ("GET", f"/api/v4/users/{reviewer}", ADMIN, None),
        ("GET", f"/api/v4/users/{unknown}", BOT, None),
        ("GET", "/api/v4/users/short", BOT, None),
        ("GET", "/api/v4/users/email/reviewer@example.com", BOT, None),
        ("GET", "/api/v4/users/email/nobody@example.com", BOT, None),
        ("GET", "/api/v4/users/email/not-an-email", BOT, None),
        ("GET", "/api/v4/users/username/myuser", BOT, None),
        ("GET", "/api/v4/users/username/ghost", BOT, None),
        ("GET", "/api/v4/users/username/Upper", BOT, None),
        ("POST", "/api/v4/users/ids", BOT, [reviewer, unknown, bot]),
        ("POST", "/api/v4/users/ids", BOT, []),
        ("POST", "/api/v4/users", ADMIN, {"username": "contract", "email": "c@example.com", "password": "long-pass"}),
        ("POST", "/api/v4/users", ADMIN, {"username": "contract", "email": "c2@example.com", "password": "long-pass"}),
        ("POST", "/api/v4/users", BOT, {"username": "other1", "email": "o@example.com", "password": "long-pass"}),
        ("POST", "/api/v4/bots", ADMIN, {"username": "contractbot", "display_name": "C", "description": "d"}),
        ("POST", "/api/v4/bots", ADMIN, {"username": "Bad Name"}),
        ("POST", "/api/v4/bots", BOT, {"username": "x"}),
        ("POST", f"/api/v4/users/{bot}/tokens", ADMIN, {"description": "contract"}),
        ("POST", f"/api/v4/users/{bot}/tokens", ADMIN, {}),
        ("POST", "/api/v4/users/me/tokens", BOT, {"description": "x"}),
        ("POST", f"/api/v4/users/{unknown}/tokens", ADMIN, {"description": "x"}),
        ("POST", "/api/v4/channels/direct", BOT, [bot, reviewer]),
        ("POST", "/api/v4/channels/direct", BOT, [bot, reviewer]),
        ("POST", "/api/v4/channels/direct", BOT, [bot]),
        ("POST", "/api/v4/channels/direct", BOT, [reviewer, other]),
        ("GET", "/api/v4/teams/name/MyTeam", BOT, None),
        ("GET", "/api/v4/teams/name/myteam", ADMIN, None),
        ("GET", "/api/v4/teams/name/noteam", BOT, None),
        ("GET", "/api/v4/teams/name/myteam/channels/name/Town-Square", BOT, None),
        ("GET", "/api/v4/teams/name/myteam/channels/name/town_square", BOT, None),
        ("GET", "/api/v4/teams/name/myteam/channels/name/secret-reviews", BOT, None),
        ("POST", f"/api/v4/channels/{general}/members", ADMIN, {"user_id": c.user_id("requester")}),
        ("POST", f"/api/v4/channels/{general}/members", ADMIN, {"user_ids": [c.user_id("sysadmin"), bot]}),
        ("POST", f"/api/v4/channels/{general}/members", ADMIN, {}),
        ("POST", f"/api/v4/channels/{secret}/members", BOT, {"user_id": bot}),
        ("POST", f"/api/v4/channels/{unknown}/members", ADMIN, {"user_id": bot}),
        ("POST", f"/api/v4/channels/{square}/members", ADMIN, {"user_id": unknown}),
        ("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "x", "props": "bad"}),
        ("POST", "/api/v4/posts", BOT, {"channel_id": secret, "message": "x"}),
        ("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "x" * 300_001}),
        ("GET", f"/api/v4/posts/{unknown}", BOT, None),
        ("GET", f"/api/v4/posts/{unknown}/thread", BOT, None),
        ("GET", f"/api/v4/channels/{secret}/posts", BOT, None),
        ("GET", f"/api/v4/channels/{square}/posts?page=x", BOT, None),
    ]
    for method, path, token, body in calls:
        await api.call(method, path, token, body)
    team = (await api.call("GET", "/api/v4/teams/name/myteam", ADMIN)).body["id"]
    newcomer = (await api.call("GET", "/api/v4/users/username/contract", ADMIN)).body["id"]
    await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"team_id": team, "user_id": newcomer})
    await api.call("POST", f"/api/v4/teams/{unknown}/members", ADMIN, {"user_id": newcomer})
    await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"user_id": ""})
    await api.call("POST", f"/api/v4/teams/{team}/members", BOT, {"user_id": bot})
    off_topic = c.channel_id("myteam", "off-topic")
    await api.call("GET", f"/api/v4/channels/{square}/members/me", BOT)
    await api.call("GET", f"/api/v4/channels/{square}/members/{reviewer}", ADMIN)
    await api.call("GET", f"/api/v4/channels/{off_topic}/members/me", BOT)
    await api.call("GET", f"/api/v4/channels/{secret}/members/me", BOT)
    await api.call("GET", f"/api/v4/teams/{team}/channels", BOT)
    await api.call("GET", f"/api/v4/teams/{team}/channels?page=0&per_page=1", BOT)
    await api.call("GET", f"/api/v4/teams/{unknown}/channels", BOT)
    props = {"attachments": [{"text": "t", "actions": [
        {"id": "go", "type": "button", "name": "Go", "integration": {"url": hook, "context": {"k": "v"}}}]}]}
    root = (await api.call(
        "POST", "/api/v4/posts", BOT,
        {"channel_id": square, "message": "root", "root_id": "", "props": None, "pending_post_id": "p1"},
    )).body
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "root", "pending_post_id": "p1"})
    buttons = (await api.call("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "b", "props": props}))
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": square, "message": "re", "root_id": root["id"]})
    await api.call("POST", "/api/v4/posts", BOT, {"channel_id": general, "message": "re", "root_id": root["id"]})
    await api.call("GET", f"/api/v4/posts/{root['id']}", BOT)
    secret_post = (await api.call("POST", "/api/v4/posts", ADMIN, {"channel_id": secret, "message": "s"})).body
    await api.call("GET", f"/api/v4/posts/{secret_post['id']}", BOT)
    await api.call("PUT", f"/api/v4/posts/{root['id']}", BOT, {"id": root["id"], "message": "v2", "props": None})
    await api.call("PUT", f"/api/v4/posts/{root['id']}", BOT, {"message": "no id"})
    await api.call("PUT", f"/api/v4/posts/{secret_post['id']}", BOT, {"id": secret_post["id"], "message": "x"})
    await api.call("PUT", f"/api/v4/posts/{root['id']}/patch", BOT, {"message": "v3", "is_pinned": True})
    await api.call("PUT", f"/api/v4/posts/{root['id']}/patch", BOT, {"props": "bad"})
    await api.call("PUT", f"/api/v4/posts/{secret_post['id']}/patch", BOT, {"message": "x"})
    await api.call("GET", f"/api/v4/posts/{root['id']}/thread", BOT)
    await api.call("GET", f"/api/v4/posts/{root['id']}/thread?perPage=1&direction=up", BOT)
    await api.call("GET", f"/api/v4/posts/{root['id']}/thread?direction=sideways", BOT)
    await api.call("GET", f"/api/v4/posts/{secret_post['id']}/thread", BOT)
    await api.call("GET", f"/api/v4/channels/{square}/posts", BOT)
    await api.call("GET", f"/api/v4/channels/{square}/posts?page=0&per_page=1", BOT)
    await api.call("GET", f"/api/v4/channels/{square}/posts?since=1", BOT)
    await api.call("GET", f"/api/v4/channels/{square}/posts?before={root['id']}", BOT)
    await api.call("POST", f"/api/v4/posts/{buttons.body['id']}/actions/go", BOT, {})  # refused: loopback
    c.update_settings(allowed_untrusted_internal_connections="127.0.0.1")
    await api.call("POST", f"/api/v4/posts/{buttons.body['id']}/actions/go", BOT, {})
    await api.call("POST", f"/api/v4/posts/{buttons.body['id']}/actions/nope", BOT, {})
    await api.call("POST", f"/api/v4/posts/{unknown}/actions/go", BOT, {})
    await api.call("POST", f"/api/v4/posts/{unknown}/actions/go", ADMIN, {})
    await api.call("POST", f"/api/v4/posts/{buttons.body['id']}/actions/go", BOT, raw=b"[1]")
    await api.call("POST", f"/api/v4/posts/{secret_post['id']}/actions/go", BOT, {})
    await api.call("POST", f"/api/v4/posts/{buttons.body['id']}/actions/go", None, {})
    await run_interactive_scenario(api, mm, hook, team)


async def run_interactive_scenario(api: RecordingClient, mm: FakeMattermost, hook: str, team: str) -> None:
    """The client config and dialogs, after a click has minted a trigger id."""
    c = mm.control
    square, secret = c.channel_id("myteam", "town-square"), c.channel_id("myteam", "secret-reviews")
    reviewer = c.user_token("reviewer")
    for path, token in [("/api/v4/config/client?format=old", None), ("/api/v4/config/client?format=old", BOT),
                        ("/api/v4/config/client", None), ("/api/v4/config/client?format=new", BOT)]:
        await api.call("GET", path, token)
    trigger_id = json.loads(c.integration_calls(kind="post_action")[-1].body)["trigger_id"]
    dialog = {"callback_id": "cb", "title": "Reason", "elements": [
        {"display_name": "Reason", "name": "reason", "type": "text", "optional": True}], "state": "s"}
    await api.call("POST", "/api/v4/actions/dialogs/open", None, {"trigger_id": trigger_id, "url": hook,
                                                                   "dialog": dialog})
    await api.call("POST", "/api/v4/actions/dialogs/open", None, {"trigger_id": trigger_id, "dialog": dialog})
    await api.call("POST", "/api/v4/actions/dialogs/open", None, {"trigger_id": "Zm9v", "url": hook,
                                                                   "dialog": dialog})
    await api.call("POST", "/api/v4/actions/dialogs/open", None, raw=b"not json")
    submit = {"url": hook, "callback_id": "cb", "state": "s", "submission": {"reason": "r"}, "channel_id": square,
              "team_id": team, "cancelled": False}
    await api.call("POST", "/api/v4/actions/dialogs/submit", reviewer, submit)
    await api.call("POST", "/api/v4/actions/dialogs/submit", reviewer, {**submit, "url": ""})
    await api.call("POST", "/api/v4/actions/dialogs/submit", reviewer, {**submit, "channel_id": "c" * 26})
    requester = c.user_token("requester")
    await api.call("POST", "/api/v4/actions/dialogs/submit", requester, {**submit, "channel_id": secret})
    await api.call("POST", "/api/v4/actions/dialogs/submit", None, submit)
    interactive = [(e.method, e.path.rsplit("/", 1)[-1], e.reply.status) for e in api.exchanges
                   if "/actions/dialogs/" in e.path or e.path.endswith("/config/client")]
    assert [status for *_, status in interactive] == [200, 200, 501, 400, 200, 400, 400, 400, 200, 400, 404, 403, 401]


async def test_every_response_matches_the_spec(
    mm: FakeMattermost, http: aiohttp.ClientSession, integration: str
) -> None:
    api = RecordingClient(http, mm.url)
    await run_scenario(api, mm, integration)
    openapi = patched_openapi()
    failures: list[str] = []
    for exchange in api.exchanges:
        try:
            validate(openapi, exchange)
        except Exception as exc:  # collect all, report together
            failures.append(f"{exchange.method} {exchange.path} -> {exchange.reply.status}: {exc!r}")
    assert not failures, "\n".join(failures)
    statuses = {e.reply.status for e in api.exchanges}
    assert {200, 201, 400, 401, 403, 404, 413, 501} <= statuses
    assert len(api.exchanges) > 80


async def test_every_route_is_exercised(mm: FakeMattermost, http: aiohttp.ClientSession, integration: str) -> None:
    api = RecordingClient(http, mm.url)
    await run_scenario(api, mm, integration)
    routes = {(r.method, r.route) for r in mm.control.requests()}
    registered = {
        (route.method, route.resource.canonical)
        for route in _app_routes(mm)
        if route.resource is not None and route.resource.canonical.startswith("/api/v4/") and route.method != "HEAD"
    }
    assert registered - routes == set()


def _app_routes(mm: FakeMattermost) -> list[web.AbstractRoute]:
    runner = mm._runner  # the test inspects the live router on purpose
    assert runner is not None and isinstance(runner.app, web.Application)
    return list(runner.app.router.routes())


async def test_rate_limited_answer_is_the_named_exception(http: aiohttp.ClientSession) -> None:
    async with FakeMattermost(rate_limit=RateLimitConfig(per_sec=1, burst=0), clock=ManualClock()) as server:
        api = RecordingClient(http, server.url)
        await api.call("GET", "/api/v4/users/me", BOT)
        limited = await api.call("GET", "/api/v4/users/me", BOT)
        assert limited.status == 429
        assert limited.raw == b"limit exceeded\n"
        openapi = patched_openapi()
        validate(openapi, api.exchanges[0])
        with pytest.raises(ResponseNotFound):
            validate(openapi, api.exchanges[1])  # PLAIN_429


async def test_validator_catches_a_wrong_shape(mm: FakeMattermost, http: aiohttp.ClientSession) -> None:
    api = RecordingClient(http, mm.url)
    good = await api.call("GET", "/api/v4/users/me", BOT)
    broken = json.loads(good.raw)
    broken["create_at"] = "yesterday"
    exchange = api.exchanges[0]
    bad = Exchange(exchange.method, exchange.path, exchange.query, exchange.body,
                   Response(200, good.headers, json.dumps(broken).encode()))
    openapi = patched_openapi()
    validate(openapi, exchange)
    with pytest.raises(Exception, match=r"create_at|validat"):
        validate(openapi, bad)


async def test_disabled_tokens_answer_matches_the_named_exception(http: aiohttp.ClientSession) -> None:
    from fakes.mattermost.config import ServerConfig

    async with FakeMattermost(config=ServerConfig(enable_user_access_tokens=False)) as server:
        api = RecordingClient(http, server.url)
        reviewer = server.control.user_id("reviewer")
        reply = await api.call("POST", f"/api/v4/users/{reviewer}/tokens", ADMIN, {"description": "x"})
        assert reply.status == 501
        validate(patched_openapi(), api.exchanges[0])
