"""The server.py middleware: auth, AppError bodies, standard headers, Handle404, ETags, body limits."""

from __future__ import annotations

from fakes.mattermost.ids import is_valid_id
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"


async def test_bearer_prefix_is_case_insensitive(api: Client) -> None:
    for prefix in ("BEARER", "Bearer", "bearer", "bEaReR"):
        reply = await api.call("GET", "/api/v4/users/me", headers={"Authorization": f"{prefix} {BOT}"})
        assert reply.status == 200, prefix
        assert reply.body["username"] == "teleport"


async def test_token_prefix_is_accepted(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", headers={"Authorization": f"Token {BOT}"})
    assert reply.status == 200


async def test_missing_token_is_401_app_error(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me")
    assert reply.status == 401
    body = reply.body
    assert body["id"] == "api.context.session_expired.app_error"
    assert body["message"] == "Invalid or expired session, please login again."
    assert body["detailed_error"] == ""
    assert body["status_code"] == 401
    assert body["request_id"] == reply.headers["X-Request-Id"]
    assert is_valid_id(body["request_id"])


async def test_unknown_token_is_401_and_clears_cookie(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", "not-a-token")
    assert reply.status == 401
    assert reply.body["id"] == "api.context.session_expired.app_error"
    assert "MMAUTHTOKEN=" in reply.headers["Set-Cookie"]
    assert "Max-Age=0" in reply.headers["Set-Cookie"]


async def test_token_in_query_string_is_refused(api: Client) -> None:
    reply = await api.call("GET", f"/api/v4/users/me?access_token={BOT}")
    assert reply.status == 401
    assert reply.body["id"] == "api.context.token_provided.app_error"


async def test_cookie_wins_over_header(api: Client) -> None:
    reply = await api.call(
        "GET", "/api/v4/users/me", headers={"Authorization": f"Bearer {BOT}", "Cookie": "MMAUTHTOKEN=admin-token"}
    )
    assert reply.status == 200
    assert reply.body["username"] == "sysadmin"


async def test_cookie_session_needs_csrf_on_writes(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    cookie = {"Cookie": f"MMAUTHTOKEN={BOT}"}
    refused = await api.call("POST", "/api/v4/posts", body={"channel_id": channel, "message": "x"}, headers=cookie)
    assert refused.status == 401
    accepted = await api.call(
        "POST",
        "/api/v4/posts",
        body={"channel_id": channel, "message": "x"},
        headers={**cookie, "X-Requested-With": "XMLHttpRequest"},
    )
    assert accepted.status == 201
    wrong_csrf = await api.call(
        "POST",
        "/api/v4/posts",
        body={"channel_id": channel, "message": "x"},
        headers={"Cookie": f"MMAUTHTOKEN={BOT}; MMCSRF=abc", "X-CSRF-Token": "xyz"},
    )
    assert wrong_csrf.status == 401
    right_csrf = await api.call(
        "POST",
        "/api/v4/posts",
        body={"channel_id": channel, "message": "x"},
        headers={"Cookie": f"MMAUTHTOKEN={BOT}; MMCSRF=abc", "X-CSRF-Token": "abc"},
    )
    assert right_csrf.status == 201


async def test_ping_needs_no_token_and_ignores_a_bad_one(api: Client) -> None:
    for token in (None, "garbage"):
        reply = await api.call("GET", "/api/v4/system/ping", token)
        assert reply.status == 200
        assert reply.body["status"] == "OK"


async def test_standard_headers(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", BOT)
    assert reply.headers["Content-Type"] == "application/json"
    assert is_valid_id(reply.headers["X-Request-Id"])
    assert reply.headers["X-Version-Id"].startswith("10.6.0.")
    assert reply.headers["X-Version-Id"].endswith(".false")
    assert reply.headers["Expires"] == "0"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.raw.endswith(b"\n")


async def test_request_ids_differ(api: Client) -> None:
    first = await api.call("GET", "/api/v4/users/me", BOT)
    second = await api.call("GET", "/api/v4/users/me", BOT)
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_html_characters_are_escaped_like_go(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "<b>&</b>"})
    assert b"\\u003cb\\u003e\\u0026\\u003c/b\\u003e" in reply.raw
    assert reply.body["message"] == "<b>&</b>"


async def test_unknown_route_is_handle404(api: Client) -> None:
    for method, path in [
        ("GET", "/api/v4/nothing/here"),
        ("DELETE", "/api/v4/users/me"),
        ("GET", "/api/v4/teams/name/myteam/channels/name/Town%20Square"),
        ("GET", "/api/v4/posts/not-an-id!"),
    ]:
        reply = await api.call(method, path, BOT)
        assert reply.status == 404, (method, path)
        assert reply.headers["Content-Type"] == "application/json"
        assert "X-Request-Id" not in reply.headers
        body = reply.body
        assert body["id"] == "api.context.404.app_error"
        assert "request_id" not in body
        assert body["status_code"] == 404
        assert "There doesn't appear to be an api call for the url=" in body["detailed_error"]


async def test_etag_and_if_none_match(api: Client) -> None:
    first = await api.call("GET", "/api/v4/users/me", BOT)
    etag = first.headers["ETag"]
    again = await api.call("GET", "/api/v4/users/me", BOT, headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.raw == b""
    stale = await api.call("GET", "/api/v4/users/me", BOT, headers={"If-None-Match": "10.6.0.other"})
    assert stale.status == 200


async def test_etag_changes_when_the_resource_changes(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    created = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "one"})
    post_id = created.body["id"]
    before = await api.call("GET", f"/api/v4/posts/{post_id}", BOT)
    await api.call("PUT", f"/api/v4/posts/{post_id}/patch", BOT, {"message": "two"})
    after = await api.call("GET", f"/api/v4/posts/{post_id}", BOT, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status == 200
    assert after.body["message"] == "two"


async def test_no_etags_option(http: object) -> None:
    import aiohttp

    from fakes.mattermost.config import ServerConfig

    assert isinstance(http, aiohttp.ClientSession)
    async with FakeMattermost(config=ServerConfig(etags=False)) as server:
        reply = await Client(http, server.url).call("GET", "/api/v4/users/me", BOT)
        assert reply.status == 200
        assert "ETag" not in reply.headers


async def test_get_with_json_body_is_accepted(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", BOT, {})
    assert reply.status == 200


async def test_malformed_json_body_is_400(api: Client) -> None:
    reply = await api.call("POST", "/api/v4/posts", BOT, raw=b"{not json")
    assert reply.status == 400
    assert reply.body["id"] == "api.context.invalid_body_param.app_error"
    assert reply.body["message"] == "Invalid or missing post in request body."


async def test_body_too_large_is_413(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "town-square")
    reply = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "x" * 300_001})
    assert reply.status == 413
    assert reply.body["id"] == "api.context.request_body_too_large.app_error"
