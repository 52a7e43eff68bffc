"""`teleport-mattermost check` diagnostics: each problem comes with its likely cause and a fix."""

from __future__ import annotations

import pytest

from sidecar.check.mattermost import TOKEN_SUBJECT, CheckResult, diagnose_mattermost, name_variants
from sidecar.mattermost.client import MattermostClient
from tests.mattermost.stub import (
    BOT,
    CHAN_ID,
    DM,
    DM_ID,
    TEAM,
    Answer,
    StubServer,
    app_error,
    channel,
    user,
)

ME = "/api/v4/users/me"
TEAM_PATH = "/api/v4/teams/name/myteam"
CHANNELS = "/api/v4/teams/name/myteam/channels/name/"
MEMBER_ME = f"/api/v4/channels/{CHAN_ID}/members/me"
NOT_FOUND_CHANNEL = Answer(404, app_error(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist."))
TOKEN_OK = CheckResult(TOKEN_SUBJECT, ok=True, note="authenticated as @teleport (bot)")
NOT_FOUND_ROUTE = Answer(404, app_error(404, "api.context.404.app_error", "Sorry, we could not find the page."))


def server_with_basics(stub: StubServer) -> None:
    stub.on("GET", ME, Answer(200, BOT))
    stub.on("GET", TEAM_PATH, Answer(200, TEAM))
    stub.on("GET", CHANNELS + "town-square", Answer(200, channel()))
    stub.on("GET", MEMBER_ME, Answer(200, {"channel_id": CHAN_ID, "user_id": BOT["id"], "roles": "channel_user"}))
    stub.on("GET", "/api/v4/users/email/alice@example.com", Answer(200, user()))
    stub.on("POST", "/api/v4/channels/direct", Answer(201, DM))


async def check_one(client: MattermostClient, recipient: str) -> CheckResult:
    results = await diagnose_mattermost(client, [recipient])
    assert results[0] == TOKEN_OK
    assert len(results) == 2
    return results[1]


async def test_all_good(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    results = await diagnose_mattermost(client, ["myteam/town-square", "alice@example.com", "myteam/town-square"])
    assert results == [
        TOKEN_OK,
        CheckResult("myteam/town-square", ok=True, channel_id=CHAN_ID),
        CheckResult("alice@example.com", ok=True, channel_id=DM_ID),
    ]


async def test_refused_token_stops_everything(client: MattermostClient, stub: StubServer) -> None:
    stub.on("GET", ME, Answer(401, app_error(401, "api.context.session_expired.app_error", "Invalid session.")))
    results = await diagnose_mattermost(client, ["myteam/town-square", "alice@example.com"])
    assert len(results) == 1
    assert (results[0].recipient, results[0].ok) == (TOKEN_SUBJECT, False)
    assert "refused the token (HTTP 401)" in results[0].problem
    assert "mattermost.token" in results[0].fix
    assert len(stub.seen) == 1


async def test_display_name_found_by_dashed_variant(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", CHANNELS + "Town Square", NOT_FOUND_ROUTE)
    stub.on("GET", CHANNELS + "town square", NOT_FOUND_ROUTE)
    result = await check_one(client, "myteam/Town Square")
    assert not result.ok
    assert result.problem == "'Town Square' looks like a display name: the channel name is 'town-square'"
    assert result.fix == 'use "myteam/town-square"'


async def test_display_name_found_by_listing_the_team(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    listing = Answer(200, [channel(name="q3x", display="Ops Alerts")])
    stub.on("GET", "/api/v4/teams/" + TEAM["id"] + "/channels", listing)
    result = await check_one(client, "myteam/ops alerts")
    assert result.problem == "'ops alerts' looks like a display name: the channel name is 'q3x'"
    assert result.fix == 'use "myteam/q3x"'
    call = stub.calls("GET", "/api/v4/teams/" + TEAM["id"] + "/channels")[0]
    assert call.raw_path.endswith("?page=0&per_page=200")


async def test_channel_not_found_at_all(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", CHANNELS + "nope", NOT_FOUND_CHANNEL)
    stub.on("GET", "/api/v4/teams/" + TEAM["id"] + "/channels", Answer(200, [channel()]))
    result = await check_one(client, "myteam/nope")
    assert result.problem == "channel 'nope' not found in team 'myteam' (or it is private and the bot is not a member)"
    assert "URL name" in result.fix


async def test_bot_not_a_member(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", MEMBER_ME, Answer(404, app_error(404, "app.channel.get_member.missing.app_error", "No member.")))
    result = await check_one(client, "myteam/town-square")
    assert not result.ok
    assert result.problem == "the bot is not a member of ~town-square"
    assert result.fix == "add the bot to ~town-square: in that channel run /invite @teleport"
    assert result.channel_id == CHAN_ID


async def test_email_lookup_refused_by_privacy(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on(
        "GET", "/api/v4/users/email/bob@example.com",
        Answer(403, app_error(403, "api.user.get_user_by_email.permissions.app_error", "No permission.")),
    )
    result = await check_one(client, "bob@example.com")
    assert "refused to look up users by email (HTTP 403)" in result.problem
    assert result.fix.startswith("ShowEmailAddress is off or the bot lacks permission: ")


async def test_user_not_found(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    result = await check_one(client, "ghost@example.com")
    assert result.problem == "no Mattermost user has this email address"


async def test_dm_refused(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("POST", "/api/v4/channels/direct", Answer(400, app_error(400, "api.channel.create_direct_channel."
                                                                      "invalid_user.app_error", "Invalid user.")))
    result = await check_one(client, "alice@example.com")
    assert result.problem.startswith("cannot open a direct message with @alice: ")


async def test_team_display_name(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", "/api/v4/teams/name/My Team", NOT_FOUND_ROUTE)
    stub.on("GET", "/api/v4/teams/name/my team", NOT_FOUND_ROUTE)
    stub.on("GET", "/api/v4/teams/name/my-team", Answer(200, {**TEAM, "name": "my-team"}))
    result = await check_one(client, "My Team/town-square")
    assert result.problem == "team 'My Team' not found; it looks like a display name: the team name is 'my-team'"
    assert result.fix == 'use "my-team/town-square"'


async def test_team_not_found(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    result = await check_one(client, "nosuchteam/town-square")
    assert result.problem == "team 'nosuchteam' not found (or the bot is not a member of it)"


async def test_team_hidden(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", "/api/v4/teams/name/secret", Answer(403, app_error(403, "api.context.permissions.app_error", "No.")))
    result = await check_one(client, "secret/town-square")
    assert result.fix == "add the bot (@teleport) to the team"


@pytest.mark.parametrize("recipient", ["fallback", "a/b/c"])
async def test_bad_format(client: MattermostClient, stub: StubServer, recipient: str) -> None:
    server_with_basics(stub)
    result = await check_one(client, recipient)
    assert result.problem.startswith("Recipient must be either a user email or a channel")
    assert "URL names" in result.fix


async def test_outage_mid_run_stops_with_a_reachability_problem(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", TEAM_PATH, Answer(503, "maintenance"))
    results = await diagnose_mattermost(client, ["myteam/town-square", "alice@example.com"])
    assert [r.recipient for r in results] == [TOKEN_SUBJECT, "myteam/town-square"]
    assert results[1].problem.startswith("could not ask Mattermost: GET /api/v4/teams/name/{team}: HTTP 503")
    assert "mattermost.url" in results[1].fix


async def test_malformed_answer_is_reported_not_raised(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", TEAM_PATH, Answer(200, {"id": TEAM["id"]}))
    result = await check_one(client, "myteam/town-square")
    assert result.problem.startswith("unexpected answer from Mattermost: malformed team")


@pytest.mark.parametrize(
    ("name", "variants"),
    [
        ("Town Square", ["town square", "town-square"]),
        ("town_square", ["town-square"]),
        ("Off-Topic", ["off-topic"]),
        ("general", []),
    ],
)
def test_name_variants(name: str, variants: list[str]) -> None:
    assert name_variants(name) == variants


async def test_membership_unverifiable_without_the_route(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    stub.on("GET", MEMBER_ME, NOT_FOUND_ROUTE)
    result = await check_one(client, "myteam/town-square")
    assert result.ok
    assert result.note.startswith("membership not verified")


async def test_token_of_a_human_user_is_noted(client: MattermostClient, stub: StubServer) -> None:
    stub.on("GET", ME, Answer(200, user(username="ops")))
    [token] = await diagnose_mattermost(client, [])
    assert token == CheckResult(TOKEN_SUBJECT, ok=True, note="authenticated as @ops (user, not a bot account)")


async def test_display_name_search_pages_through_the_team(client: MattermostClient, stub: StubServer) -> None:
    server_with_basics(stub)
    full_page = [channel(channel_id=f"c{i:025d}", name=f"chan-{i}", display=f"Chan {i}") for i in range(200)]
    stub.on(
        "GET", "/api/v4/teams/" + TEAM["id"] + "/channels",
        Answer(200, full_page), Answer(200, [channel(name="q3x", display="Ops Alerts")]),
    )
    result = await check_one(client, "myteam/ops alerts")
    assert result.fix == 'use "myteam/q3x"'
    pages = [s.raw_path.split("?")[1] for s in stub.calls("GET", "/api/v4/teams/" + TEAM["id"] + "/channels")]
    assert pages == ["page=0&per_page=200", "page=1&per_page=200"]
