"""Teams, channels, direct channels and memberships."""

from __future__ import annotations

from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.conftest import Client

BOT = "teleport-bot-token"
ADMIN = "admin-token"


async def test_team_by_name_is_lower_cased(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/teams/name/MyTeam", BOT)
    assert reply.status == 200
    team = reply.body
    assert team["name"] == "myteam"
    assert team["display_name"] == "My Team"
    assert team["invite_id"] == ""  # blanked for a non-manager
    admin_view = await api.call("GET", "/api/v4/teams/name/myteam", ADMIN)
    assert admin_view.body["invite_id"] != ""


async def test_team_by_name_errors(api: Client) -> None:
    missing = await api.call("GET", "/api/v4/teams/name/noteam", BOT)
    assert missing.status == 404
    assert missing.body["id"] == "app.team.get_by_name.missing.app_error"
    display = await api.call("GET", "/api/v4/teams/name/My%20Team", BOT)
    assert display.status == 404
    assert display.body["id"] == "api.context.404.app_error"


async def test_team_not_visible_to_outsider(api: Client, mm: FakeMattermost) -> None:
    created = await api.call(
        "POST", "/api/v4/users", ADMIN, {"username": "outsider", "email": "o@example.com", "password": "long-enough"}
    )
    token = (await api.call("POST", f"/api/v4/users/{created.body['id']}/tokens", ADMIN, {"description": "t"})).body
    reply = await api.call("GET", "/api/v4/teams/name/myteam", token["token"])
    assert reply.status == 403
    assert reply.body["id"] == "api.context.permissions.app_error"


async def test_channel_by_team_and_name(api: Client, mm: FakeMattermost) -> None:
    reply = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/Town-Square", BOT)
    assert reply.status == 200
    channel = reply.body
    assert channel["id"] == mm.control.channel_id("myteam", "town-square")
    assert channel["display_name"] == "Town Square"
    assert channel["type"] == "O"
    general = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/general", BOT)
    assert general.status == 200


async def test_channel_lookup_never_uses_display_names(api: Client) -> None:
    underscore = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/town_square", BOT)
    assert underscore.status == 404
    assert underscore.body["id"] == "app.channel.get_by_name.missing.app_error"
    assert underscore.body["message"] == "Channel does not exist."
    spaced = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/Town%20Square", BOT)
    assert spaced.status == 404
    assert spaced.body["id"] == "api.context.404.app_error"


async def test_channel_lookup_unknown_team_first(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/teams/name/noteam/channels/name/town-square", BOT)
    assert reply.status == 404
    assert reply.body["id"] == "app.team.get_by_name.missing.app_error"


async def test_private_channel_invisible_is_404_visible_to_members(api: Client, mm: FakeMattermost) -> None:
    hidden = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/secret-reviews", BOT)
    assert hidden.status == 404
    assert hidden.body["id"] == "app.channel.get_by_name.missing.app_error"
    admin = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/secret-reviews", ADMIN)
    assert admin.status == 200
    assert admin.body["type"] == "P"


async def test_public_channel_without_membership_is_readable_by_team_member(api: Client) -> None:
    reply = await api.call("GET", "/api/v4/teams/name/myteam/channels/name/off-topic", BOT)
    assert reply.status == 200


async def test_direct_channel(api: Client, mm: FakeMattermost) -> None:
    bot = mm.control.user_id("teleport")
    reviewer = mm.control.user_id("reviewer")
    first = await api.call("POST", "/api/v4/channels/direct", BOT, [bot, reviewer])
    assert first.status == 201
    channel = first.body
    assert channel["type"] == "D"
    assert channel["team_id"] == ""
    assert channel["display_name"] == ""
    assert channel["name"] == "__".join(sorted([bot, reviewer]))
    assert channel["creator_id"] == bot
    again = await api.call("POST", "/api/v4/channels/direct", BOT, [reviewer, bot])
    assert again.status == 201
    assert again.body["id"] == channel["id"]


async def test_direct_channel_errors(api: Client, mm: FakeMattermost) -> None:
    bot = mm.control.user_id("teleport")
    reviewer = mm.control.user_id("reviewer")
    other = mm.control.user_id("myuser")
    three = await api.call("POST", "/api/v4/channels/direct", BOT, [bot, reviewer, other])
    assert three.status == 400
    assert three.body["id"] == "api.context.invalid_body_param.app_error"
    malformed = await api.call("POST", "/api/v4/channels/direct", BOT, [bot, "user-1"])
    assert malformed.status == 400
    assert malformed.body["id"] == "api.context.invalid_param.app_error"
    unknown = await api.call("POST", "/api/v4/channels/direct", BOT, [bot, "d" * 26])
    assert unknown.status == 400
    assert unknown.body["id"] == "api.channel.create_direct_channel.invalid_user.app_error"
    outsider = await api.call("POST", "/api/v4/channels/direct", BOT, [reviewer, other])
    assert outsider.status == 403
    by_admin = await api.call("POST", "/api/v4/channels/direct", ADMIN, [reviewer, other])
    assert by_admin.status == 201


async def test_self_direct_channel(api: Client, mm: FakeMattermost) -> None:
    bot = mm.control.user_id("teleport")
    reply = await api.call("POST", "/api/v4/channels/direct", BOT, [bot, bot])
    assert reply.status == 201
    assert reply.body["name"] == f"{bot}__{bot}"


async def test_add_channel_member(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "off-topic")
    bot = mm.control.user_id("teleport")
    refused = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "hi"})
    assert refused.status == 403
    added = await api.call("POST", f"/api/v4/channels/{channel}/members", ADMIN, {"user_id": bot})
    assert added.status == 201
    assert added.body["channel_id"] == channel
    assert added.body["user_id"] == bot
    posted = await api.call("POST", "/api/v4/posts", BOT, {"channel_id": channel, "message": "hi"})
    assert posted.status == 201


async def test_add_channel_members_list(api: Client, mm: FakeMattermost) -> None:
    channel = mm.control.channel_id("myteam", "general")
    ids = [mm.control.user_id("requester"), mm.control.user_id("sysadmin")]
    reply = await api.call("POST", f"/api/v4/channels/{channel}/members", ADMIN, {"user_ids": ids})
    assert reply.status == 201
    assert sorted(m["user_id"] for m in reply.body) == sorted(ids)


async def test_add_channel_member_errors(api: Client, mm: FakeMattermost) -> None:
    secret = mm.control.channel_id("myteam", "secret-reviews")
    bot = mm.control.user_id("teleport")
    hidden = await api.call("POST", f"/api/v4/channels/{secret}/members", BOT, {"user_id": bot})
    assert hidden.status == 403
    assert hidden.body["id"] == "api.context.permissions.app_error"
    unknown = await api.call("POST", "/api/v4/channels/" + "e" * 26 + "/members", ADMIN, {"user_id": bot})
    assert unknown.status == 404
    assert unknown.body["id"] == "app.channel.get.existing.app_error"
    unknown_user = await api.call("POST", f"/api/v4/channels/{secret}/members", ADMIN, {"user_id": "r" * 26})
    assert unknown_user.status == 404
    assert unknown_user.body["id"] == "app.user.missing_account.const"
    too_many = await api.call("POST", f"/api/v4/channels/{secret}/members", ADMIN, {"user_ids": ["s" * 26] * 1001})
    assert too_many.status == 400
    no_body = await api.call("POST", f"/api/v4/channels/{secret}/members", ADMIN, {})
    assert no_body.status == 400
    reviewer = mm.control.user_id("reviewer")
    dm = (await api.call("POST", "/api/v4/channels/direct", BOT, [bot, reviewer])).body
    to_dm = await api.call("POST", f"/api/v4/channels/{dm['id']}/members", ADMIN, {"user_id": bot})
    assert to_dm.status == 400
    stranger = await api.call(
        "POST", "/api/v4/users", ADMIN, {"username": "stranger", "email": "s@example.com", "password": "long-enough"}
    )
    not_in_team = await api.call(
        "POST", f"/api/v4/channels/{secret}/members", ADMIN, {"user_id": stranger.body["id"]}
    )
    assert not_in_team.status == 403


async def test_add_team_member(api: Client, mm: FakeMattermost) -> None:
    team = (await api.call("GET", "/api/v4/teams/name/myteam", ADMIN)).body["id"]
    newbie = await api.call(
        "POST", "/api/v4/users", ADMIN, {"username": "joiner", "email": "j@example.com", "password": "long-enough"}
    )
    user_id = newbie.body["id"]
    reply = await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"team_id": team, "user_id": user_id})
    assert reply.status == 201
    assert reply.body == {
        "team_id": team,
        "user_id": user_id,
        "roles": "team_user",
        "delete_at": 0,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }
    missing = await api.call("POST", "/api/v4/teams/" + "f" * 26 + "/members", ADMIN, {"user_id": user_id})
    assert missing.status == 404
    mismatch = await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"team_id": "g" * 26, "user_id": user_id})
    assert mismatch.status == 400
    unknown_user = await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"user_id": "h" * 26})
    assert unknown_user.status == 404
    no_user = await api.call("POST", f"/api/v4/teams/{team}/members", ADMIN, {"team_id": team})
    assert no_user.status == 400
    outsider_token = (await api.call("POST", f"/api/v4/users/{user_id}/tokens", ADMIN, {"description": "t"})).body
    other = mm.control.user_id("myuser")
    outsider_tries = await api.call(
        "POST", f"/api/v4/teams/{team}/members", outsider_token["token"], {"team_id": team, "user_id": other}
    )
    assert outsider_tries.status == 201  # joined above, so now a member who may add others
    stranger = await api.call(
        "POST", "/api/v4/users", ADMIN, {"username": "loner", "email": "l@example.com", "password": "long-enough"}
    )
    loner_token = (await api.call("POST", f"/api/v4/users/{stranger.body['id']}/tokens", ADMIN, {"description": "t"}))
    refused = await api.call(
        "POST", f"/api/v4/teams/{team}/members", loner_token.body["token"], {"team_id": team, "user_id": other}
    )
    assert refused.status == 403


async def test_channel_member_of_self_and_others(api: Client, mm: FakeMattermost) -> None:
    square = mm.control.channel_id("myteam", "town-square")
    me = await api.call("GET", f"/api/v4/channels/{square}/members/me", BOT)
    assert me.status == 200
    assert (me.body["channel_id"], me.body["user_id"]) == (square, mm.control.user_id("teleport"))
    reviewer = mm.control.user_id("reviewer")
    other = await api.call("GET", f"/api/v4/channels/{square}/members/{reviewer}", ADMIN)
    assert (other.status, other.body["user_id"]) == (200, reviewer)


async def test_channel_member_missing_and_unreadable(api: Client, mm: FakeMattermost) -> None:
    off_topic = mm.control.channel_id("myteam", "off-topic")
    missing = await api.call("GET", f"/api/v4/channels/{off_topic}/members/me", BOT)
    assert (missing.status, missing.body["id"]) == (404, "app.channel.get_member.missing.app_error")
    secret = mm.control.channel_id("myteam", "secret-reviews")
    hidden = await api.call("GET", f"/api/v4/channels/{secret}/members/me", BOT)
    assert (hidden.status, hidden.body["id"]) == (403, "api.context.permissions.app_error")


async def test_team_public_channels_paged_and_members_only(api: Client, mm: FakeMattermost) -> None:
    team = (await api.call("GET", "/api/v4/teams/name/myteam", BOT)).body["id"]
    listed = await api.call("GET", f"/api/v4/teams/{team}/channels", BOT)
    assert listed.status == 200
    names = [c["name"] for c in listed.body]
    assert {"town-square", "general", "off-topic"} <= set(names)
    assert "secret-reviews" not in names  # private channels are not listed
    first = await api.call("GET", f"/api/v4/teams/{team}/channels?page=0&per_page=1", BOT)
    second = await api.call("GET", f"/api/v4/teams/{team}/channels?page=1&per_page=1", BOT)
    assert len(first.body) == len(second.body) == 1 and first.body != second.body
    outsider = await api.call("GET", f"/api/v4/teams/{'q' * 26}/channels", BOT)
    assert outsider.status == 403
