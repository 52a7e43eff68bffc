"""MattermostBot (the ChatPort) against the scripted server: resolution, caching, logs, posting, editing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from sidecar.domain.email import is_email
from sidecar.domain.errors import AccessDenied, NotFound, RecipientError, TransientError, Unauthorized
from sidecar.domain.model import Channel, PostKind, PostMarker, PostRef
from sidecar.domain.ports import ChatPort
from sidecar.mattermost.bot import MattermostBot, format_error_text, marker_key, new_idempotency_key
from sidecar.mattermost.client import MattermostClient
from tests.mattermost.stub import (
    BOT,
    BOT_ID,
    CHAN_ID,
    DM,
    DM_ID,
    USER_ID,
    Answer,
    FakeTime,
    StubServer,
    app_error,
    channel,
    user,
)

ME = "/api/v4/users/me"
EMAIL = "/api/v4/users/email/alice@example.com"
DIRECT = "/api/v4/channels/direct"
TOWN = "/api/v4/teams/name/myteam/channels/name/town-square"
POSTS = "/api/v4/posts"


def created(channel_id: str = CHAN_ID, post_id: str = "postid") -> Answer:
    return Answer(201, {"id": post_id, "channel_id": channel_id, "message": "m", "root_id": ""})


@pytest.fixture
async def bot(client: MattermostClient, fake_time: FakeTime) -> AsyncIterator[MattermostBot]:
    yield MattermostBot(client, resolve_ttl=300, clock=fake_time.clock)


def script_happy_path(stub: StubServer) -> None:
    stub.on("GET", ME, Answer(200, BOT, {"ETag": "me1"}), Answer(304, None, {"ETag": "me1"}))
    stub.on("GET", EMAIL, Answer(200, user(), {"ETag": "u1"}), Answer(304, None, {"ETag": "u1"}))
    stub.on("POST", DIRECT, Answer(201, DM))
    stub.on("GET", TOWN, Answer(200, channel(), {"ETag": "c1"}), Answer(304, None, {"ETag": "c1"}))
    stub.on("POST", POSTS, created())


def test_bot_is_a_chat_port(bot: MattermostBot) -> None:
    port: ChatPort = bot  # checked by mypy
    assert port is bot


async def test_resolve_email_opens_dm_with_bot_first(bot: MattermostBot, stub: StubServer) -> None:
    script_happy_path(stub)
    assert await bot.resolve("alice@example.com") == Channel(id=DM_ID, recipient="alice@example.com")
    assert [(s.method, s.path) for s in stub.seen] == [("GET", EMAIL), ("GET", ME), ("POST", DIRECT)]
    assert stub.seen[2].body == [BOT_ID, USER_ID]


async def test_resolve_team_channel(bot: MattermostBot, stub: StubServer) -> None:
    script_happy_path(stub)
    assert await bot.resolve("myteam/town-square") == Channel(id=CHAN_ID, recipient="myteam/town-square")
    assert [(s.method, s.path) for s in stub.seen] == [("GET", TOWN)]


async def test_steady_state_costs_one_call_per_recipient(
    bot: MattermostBot, stub: StubServer, fake_time: FakeTime
) -> None:
    script_happy_path(stub)
    recipients = ["alice@example.com", "myteam/town-square"]

    async def notify() -> None:
        for recipient in recipients:
            target = await bot.resolve(recipient)
            await bot.post(target.id, "request pending")

    await notify()
    first = len(stub.seen)
    await notify()
    assert [(s.method, s.path) for s in stub.seen[first:]] == [("POST", POSTS), ("POST", POSTS)]

    # After the TTL the lookups are revalidated (304s), and the DM channel is not created again.
    fake_time.now += 301
    mark = len(stub.seen)
    await notify()
    later = [(s.method, s.path, s.headers.get("If-None-Match")) for s in stub.seen[mark:]]
    assert later == [
        ("GET", EMAIL, "u1"), ("GET", ME, "me1"), ("POST", POSTS, None), ("GET", TOWN, "c1"), ("POST", POSTS, None)
    ]


@pytest.mark.parametrize("name", ["fallback", "a/b/c", "Alice <alice@example.com>", ""])
async def test_unparseable_recipient_uses_go_text(bot: MattermostBot, stub: StubServer, name: str) -> None:
    with pytest.raises(RecipientError) as caught:
        await bot.resolve(name)
    assert caught.value.recipient == name
    assert caught.value.reason == (
        f'Recipient must be either a user email or a channel in the format "team/channel" but got "{name}"'
    )
    assert stub.seen == []


def test_format_error_text_quotes_like_go() -> None:
    assert format_error_text('we"ird\n') == (
        'Recipient must be either a user email or a channel in the format "team/channel" but got "we\\"ird\\n"'
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alice@example.com", True),
        ("a@b", True),
        ("first.last+tag@sub.example.org", True),
        ("jürgen@example.de", True),
        ("Alice <alice@example.com>", False),
        ("team/channel", False),
        ("fallback", False),
        ("a@", False),
        ("@b", False),
        ("a..b@example.com", False),
        ("a b@example.com", False),
    ],
)
def test_is_email(name: str, expected: bool) -> None:
    assert is_email(name) is expected


async def test_unknown_user_logs_go_warning_and_raises(
    bot: MattermostBot, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    stub.on("GET", EMAIL, Answer(404, app_error(404, "app.user.missing_account.const", "Unable to find the user.")))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RecipientError) as caught:
        await bot.resolve("alice@example.com")
    assert caught.value.recipient == "alice@example.com"
    assert "no such user" in caught.value.reason and "Unable to find the user." in caught.value.reason
    record = next(r for r in caplog.records if r.getMessage() == "Failed to lookup direct channel info")
    assert record.levelno == logging.WARNING
    assert getattr(record, "mm_user_email", None) == "alice@example.com"


async def test_unknown_channel_logs_team_and_channel(
    bot: MattermostBot, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RecipientError) as caught:
        await bot.resolve("myteam/Town Square")
    assert "display names" in caught.value.hint
    record = next(r for r in caplog.records if r.getMessage() == "Failed to lookup channel info")
    assert record.levelno == logging.WARNING
    assert (getattr(record, "mm_team", None), getattr(record, "mm_channel", None)) == ("myteam", "Town Square")


@pytest.mark.parametrize("name", ["/town-square", "myteam/"])
async def test_empty_team_or_channel_is_refused_without_calls(bot: MattermostBot, stub: StubServer, name: str) -> None:
    with pytest.raises(RecipientError, match="must not be empty"):
        await bot.resolve(name)
    assert stub.seen == []


async def test_refused_token_is_not_a_recipient_problem(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", TOWN, Answer(401, app_error(401, "api.context.session_expired.app_error", "Invalid session.")))
    with pytest.raises(Unauthorized):
        await bot.resolve("myteam/town-square")


async def test_outage_propagates_as_transient_and_logs_error(
    bot: MattermostBot, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    stub.on("GET", EMAIL, Answer(503, "unavailable"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientError):
        await bot.resolve("alice@example.com")
    record = next(r for r in caplog.records if r.getMessage() == "Failed to lookup direct channel info")
    assert record.levelno == logging.ERROR
    assert len(stub.calls("GET", EMAIL)) == 4  # the client retried the GET before giving up


async def test_email_lookup_forbidden_is_a_recipient_error(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", EMAIL, Answer(403, app_error(403, "api.user.get_user_by_email.permissions.app_error", "No.")))
    with pytest.raises(RecipientError) as caught:
        await bot.resolve("alice@example.com")
    assert "not allowed" in caught.value.reason
    assert isinstance(caught.value.__cause__, AccessDenied)


async def test_post_sends_a_pending_post_id_and_retries_with_it(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("POST", POSTS, Answer(500, "oops"), created(post_id="p1"))
    ref = await bot.post(CHAN_ID, "hello", root_id="root1")
    assert ref == PostRef(channel_id=CHAN_ID, post_id="p1")
    keys = {s.body["pending_post_id"] for s in stub.calls("POST", POSTS)}  # type: ignore[index]
    assert len(keys) == 1 and len(next(iter(keys))) == 26
    assert stub.seen[0].body["root_id"] == "root1"  # type: ignore[index]


async def test_a_marked_post_has_a_stable_key_and_carries_its_marker(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("POST", POSTS, created(), created())
    marker = PostMarker("req-1", CHAN_ID, PostKind.REPLY, 2)
    await bot.post(CHAN_ID, "hello", root_id="root1", marker=marker)
    await bot.post(CHAN_ID, "hello", root_id="root1", marker=marker)  # e.g. after a restart
    first, second = (call.body for call in stub.calls("POST", POSTS))
    assert first["pending_post_id"] == second["pending_post_id"] == marker_key(marker)  # type: ignore[index]
    assert len(marker_key(marker)) == 26 and marker_key(marker).isalnum()
    assert first["props"] == {  # type: ignore[index]
        "teleport_mattermost": {"request_id": "req-1", "recipient": CHAN_ID, "kind": "reply", "review_index": 2}
    }
    other = PostMarker("req-1", CHAN_ID, PostKind.REPLY, 3)
    assert marker_key(other) != marker_key(marker)


def test_idempotency_keys_differ() -> None:
    assert len({new_idempotency_key() for _ in range(50)}) == 50


async def test_refused_post_forgets_the_cached_channel(bot: MattermostBot, stub: StubServer) -> None:
    script_happy_path(stub)
    target = await bot.resolve("myteam/town-square")
    stub.on("POST", POSTS, Answer(403, app_error(403, "api.context.permissions.app_error", "No permission.")))
    with pytest.raises(AccessDenied):
        await bot.post(target.id, "hello")
    mark = len(stub.seen)
    await bot.resolve("myteam/town-square")
    assert [(s.method, s.path) for s in stub.seen[mark:]] == [("GET", TOWN)]


async def test_refused_dm_post_forgets_the_dm_channel(bot: MattermostBot, stub: StubServer) -> None:
    script_happy_path(stub)
    target = await bot.resolve("alice@example.com")
    stub.on("POST", POSTS, Answer(404, app_error(404, "app.channel.get.existing.app_error", "Gone.")))
    with pytest.raises(NotFound):
        await bot.post(target.id, "hello")
    mark = len(stub.seen)
    await bot.resolve("alice@example.com")
    assert ("POST", DIRECT) in [(s.method, s.path) for s in stub.seen[mark:]]


async def test_edit_puts_the_whole_post(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("PUT", "/api/v4/posts/p1", Answer(200, {"id": "p1", "channel_id": CHAN_ID, "message": "new"}))
    await bot.edit(PostRef(channel_id=CHAN_ID, post_id="p1"), "new")
    assert stub.seen[0].body == {"id": "p1", "channel_id": CHAN_ID, "message": "new", "root_id": "", "props": {}}


async def test_check_health_reads_me(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", ME, Answer(200, BOT))
    await bot.check_health()
    assert (await bot.bot_user()).username == "teleport"
