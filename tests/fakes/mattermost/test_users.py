"""Users, bots and personal access tokens."""

from __future__ import annotations

import aiohttp

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.config import ServerConfig
from fakes.mattermost.ids import is_valid_id
from fakes.mattermost.seed import parse_seed
from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
ADMIN = "admin-token"


async def test_me_is_the_bot(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/me", BOT)
    user = reply.body
    assert reply.status == 200
    assert is_valid_id(user["id"])
    assert user["is_bot"] is True
    assert user["email"] == "teleport@localhost"
    assert user["first_name"] == "Teleport"
    assert user["roles"] == "system_user"
    assert user["timezone"] == {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"}
    assert "password" not in user


async def test_user_by_id(api: Client, mm: FakeMattermost) -> None:
    reviewer = mm.control.user_id("reviewer")
    reply = await api.call("GET", f"/api/v4/users/{reviewer}", BOT)
    assert reply.status == 200
    assert reply.body["username"] == "reviewer"
    assert "notify_props" not in reply.body  # sanitised for another, non-admin viewer


async def test_user_by_unknown_id_is_404(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/" + "a" * 26, BOT)
    assert reply.status == 404
    assert reply.body["id"] == "app.user.missing_account.const"


async def test_user_by_malformed_id_is_400(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/abc", BOT)
    assert reply.status == 400
    assert reply.body["id"] == "api.context.invalid_url_param.app_error"


async def test_user_by_email_is_case_insensitive(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/users/email/Reviewer@Example.COM", BOT)
    assert reply.status == 200
    assert reply.body["email"] == "reviewer@example.com"


async def test_user_by_email_errors(api: Client) -> None:
    missing = await api.call("GET", "/api/v4/users/email/nobody@example.com", BOT)
    assert missing.status == 404
    assert missing.body["id"] == "app.user.missing_account.const"
    assert missing.body["message"] == "Unable to find the user."
    invalid = await api.call("GET", "/api/v4/users/email/not-an-email", BOT)
    assert invalid.status == 400
    assert invalid.body["id"] == "api.context.invalid_url_param.app_error"


async def test_user_by_username(api: Client) -> None:
    ok = await api.call("GET", "/api/v4/users/username/myuser", BOT)
    assert ok.status == 200
    assert ok.body["email"] == "myuser@example.com"
    upper = await api.call("GET", "/api/v4/users/username/MyUser", BOT)
    assert upper.status == 400
    missing = await api.call("GET", "/api/v4/users/username/ghost", BOT)
    assert missing.status == 404


async def test_users_by_ids_skips_unknown(api: Client, mm: FakeMattermost) -> None:
    ids = [mm.control.user_id("reviewer"), "b" * 26, mm.control.user_id("myuser")]
    reply = await api.call("POST", "/api/v4/users/ids", BOT, ids)
    assert reply.status == 200
    assert [u["username"] for u in reply.body] == ["reviewer", "myuser"]
    empty = await api.call("POST", "/api/v4/users/ids", BOT, [])
    assert empty.status == 400
    not_a_list = await api.call("POST", "/api/v4/users/ids", BOT, {"ids": []})
    assert not_a_list.status == 400
    malformed = await api.call("POST", "/api/v4/users/ids", BOT, ["user-1"])
    assert malformed.status == 400
    assert malformed.body["id"] == "api.context.invalid_param.app_error"


async def test_create_user_as_admin(api: Client) -> None:
    body = {"username": "newbie", "email": "Newbie@Example.com", "password": "correct-horse", "first_name": "N"}
    reply = await api.call("POST", "/api/v4/users", ADMIN, body)
    assert reply.status == 201
    assert reply.body["email"] == "newbie@example.com"
    assert "password" not in reply.body
    again = await api.call("POST", "/api/v4/users", ADMIN, body)
    assert again.status == 400
    assert again.body["id"] == "app.user.save.username_exists.app_error"
    same_email = await api.call("POST", "/api/v4/users", ADMIN, {**body, "username": "other"})
    assert same_email.body["id"] == "app.user.save.email_exists.app_error"


async def test_create_user_validation(api: Client) -> None:
    body = {"username": "Bad Name", "email": "a@b.c", "password": "x" * 9}
    bad_name = await api.call("POST", "/api/v4/users", ADMIN, body)
    assert bad_name.status == 400
    assert bad_name.body["id"] == "model.user.is_valid.username.app_error"
    short = await api.call("POST", "/api/v4/users", ADMIN, {"username": "shorty", "email": "s@b.c", "password": "x"})
    assert short.status == 400


async def test_create_user_closed_server(api: Client) -> None:
    body = {"username": "walkin", "email": "walkin@example.com", "password": "correct-horse"}
    for token in (None, BOT):
        reply = await api.call("POST", "/api/v4/users", token, body)
        assert reply.status == 403
        assert reply.body["id"] == "api.user.create_user.no_open_server"


async def test_create_bot(api: Client, mm: FakeMattermost) -> None:
    reply = await api.call("POST", "/api/v4/bots", ADMIN, {"username": "helper", "display_name": "Helper"})
    assert reply.status == 201
    bot = reply.body
    assert bot["username"] == "helper"
    assert bot["owner_id"] == mm.control.user_id("sysadmin")
    user = await api.call("GET", f"/api/v4/users/{bot['user_id']}", ADMIN)
    assert user.body["is_bot"] is True


async def test_create_bot_refusals(api: Client, http: aiohttp.ClientSession) -> None:
    by_bot = await api.call("POST", "/api/v4/bots", BOT, {"username": "x1"})
    assert by_bot.status == 403
    taken = await api.call("POST", "/api/v4/bots", ADMIN, {"username": "teleport"})
    assert taken.status == 400
    invalid = await api.call("POST", "/api/v4/bots", ADMIN, {"username": "No Spaces"})
    assert invalid.status == 400
    long_name = await api.call("POST", "/api/v4/bots", ADMIN, {"username": "okname", "display_name": "d" * 65})
    assert long_name.status == 400
    long_description = await api.call("POST", "/api/v4/bots", ADMIN, {"username": "okname", "description": "d" * 1025})
    assert long_description.status == 400
    async with FakeMattermost(config=ServerConfig(enable_bot_account_creation=False)) as closed:
        reply = await Client(http, closed.url).call("POST", "/api/v4/bots", ADMIN, {"username": "x2"})
        assert reply.status == 403
        assert reply.body["id"] == "api.bot.create_disabled"


async def test_bot_token_works(api: Client) -> None:
    bot = (await api.call("POST", "/api/v4/bots", ADMIN, {"username": "worker"})).body
    created = await api.call("POST", f"/api/v4/users/{bot['user_id']}/tokens", ADMIN, {"description": "ci"})
    assert created.status == 200  # the server writes 200, the spec says 201
    token = created.body
    assert token["user_id"] == bot["user_id"]
    assert token["is_active"] is True
    assert is_valid_id(token["token"])
    me = await api.call("GET", "/api/v4/users/me", token["token"])
    assert me.body["username"] == "worker"


async def test_token_errors(api: Client, mm: FakeMattermost, http: aiohttp.ClientSession) -> None:
    reviewer = mm.control.user_id("reviewer")
    no_description = await api.call("POST", f"/api/v4/users/{reviewer}/tokens", ADMIN, {})
    assert no_description.status == 400
    too_long = await api.call("POST", f"/api/v4/users/{reviewer}/tokens", ADMIN, {"description": "d" * 256})
    assert too_long.status == 400
    not_admin = await api.call("POST", "/api/v4/users/me/tokens", BOT, {"description": "x"})
    assert not_admin.status == 403
    unknown = await api.call("POST", "/api/v4/users/" + "c" * 26 + "/tokens", ADMIN, {"description": "x"})
    assert unknown.status == 404
    async with FakeMattermost(config=ServerConfig(enable_user_access_tokens=False)) as closed:
        client = Client(http, closed.url)
        human = closed.control.user_id("reviewer")
        reply = await client.call("POST", f"/api/v4/users/{human}/tokens", ADMIN, {"description": "x"})
        assert reply.status == 501
        assert reply.body["id"] == "app.user_access_token.disabled"
        bot = closed.control.user_id("teleport")
        bot_reply = await client.call("POST", f"/api/v4/users/{bot}/tokens", ADMIN, {"description": "x"})
        assert bot_reply.status == 200


BINDING_SEED = """
[admin]
username = "sysadmin"
email = "sysadmin@example.com"
token = "admin-token"

[[users]]
username = "alice"
email = "alice@example.com"
token = "alice-token"
auth_service = "gitlab"

[[users]]
username = "bob"
email = "bob@example.com"
token = "bob-token"
email_verified = false

[[users]]
username = "gone"
email = "gone@example.com"
token = "gone-token"
deactivated = true

[[bots]]
username = "teleport"
owner = "sysadmin"
token = "teleport-bot-token"
"""


async def test_fields_binding_needs_as_each_viewer_sees_them(http: aiohttp.ClientSession) -> None:
    async with FakeMattermost(parse_seed(BINDING_SEED), clock=ManualClock()) as mm:
        api = Client(http, mm.url)
        alice, bob, gone = (mm.control.user_id(n) for n in ("alice", "bob", "gone"))
        as_bot = (await api.call("GET", f"/api/v4/users/{alice}", BOT)).body
        # Another user, seen by a non-admin (the bot): no auth service, no verification flag, auth_data "".
        assert (as_bot["email"], as_bot["auth_service"], as_bot["auth_data"], as_bot["delete_at"]) == (
            "alice@example.com", "", "", 0)
        assert "email_verified" not in as_bot and "is_bot" not in as_bot and "roles" in as_bot
        as_admin = (await api.call("GET", f"/api/v4/users/{alice}", ADMIN)).body
        assert as_admin["auth_service"] == "gitlab" and "email_verified" not in as_admin
        as_self = (await api.call("GET", "/api/v4/users/me", "alice-token")).body
        assert (as_self["auth_service"], as_self["email_verified"]) == ("gitlab", True)
        assert "email_verified" not in (await api.call("GET", "/api/v4/users/me", "bob-token")).body
        deactivated = (await api.call("GET", f"/api/v4/users/{gone}", BOT)).body
        assert deactivated["delete_at"] > 0 and deactivated["update_at"] == deactivated["delete_at"]
        assert (await api.call("GET", "/api/v4/users/me", "gone-token")).status == 401
        bot = (await api.call("GET", f"/api/v4/users/{mm.control.user_id('teleport')}", "bob-token")).body
        assert bot["is_bot"] is True
        assert bob != alice


async def test_privacy_settings_hide_email_and_names(http: aiohttp.ClientSession) -> None:
    config = ServerConfig(show_email_address=False, show_full_name=False)
    async with FakeMattermost(config=config, clock=ManualClock()) as mm:
        api = Client(http, mm.url)
        reviewer = mm.control.user_id("reviewer")
        hidden = (await api.call("GET", f"/api/v4/users/{reviewer}", BOT)).body
        assert (hidden["email"], hidden["first_name"], hidden["last_name"]) == ("", "", "")
        shown = (await api.call("GET", f"/api/v4/users/{reviewer}", ADMIN)).body
        assert (shown["email"], shown["first_name"]) == ("reviewer@example.com", "Riley")


async def test_user_keys_follow_the_go_struct_order(api: Client, mm: FakeMattermost) -> None:
    user = (await api.call("GET", "/api/v4/users/me", BOT)).body
    order = ["id", "create_at", "update_at", "delete_at", "username", "auth_data", "auth_service", "email",
             "email_verified", "nickname", "first_name", "last_name", "position", "roles", "props", "notify_props",
             "last_password_update", "locale", "timezone", "is_bot", "bot_description", "disable_welcome_email"]
    assert list(user) == [k for k in order if k in user]
