"""MattermostBot for the rich style and the requester's messages: props on posts and edits, users by email."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sidecar.domain.errors import AccessDenied, Rejected
from sidecar.domain.model import Channel, PostKind, PostMarker, PostRef
from sidecar.domain.ports import POST_TOO_LONG_IDS
from sidecar.mattermost.bot import MattermostBot
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
    user,
)

ME = "/api/v4/users/me"
EMAIL = "/api/v4/users/email/alice@example.com"
GHOST = "/api/v4/users/email/ghost@example.com"
DIRECT = "/api/v4/channels/direct"
POSTS = "/api/v4/posts"
ATTACHMENTS = {"attachments": [{"fallback": "f", "color": "#F2A93B", "title": "t"}]}


@pytest.fixture
async def bot(client: MattermostClient, fake_time: FakeTime) -> AsyncIterator[MattermostBot]:
    yield MattermostBot(client, resolve_ttl=300, clock=fake_time.clock)


async def test_a_post_carries_its_attachments_next_to_the_marker(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("POST", POSTS, Answer(201, {"id": "p1", "channel_id": CHAN_ID, "message": "m", "root_id": ""}))
    marker = PostMarker("req-1", CHAN_ID, PostKind.ROOT)
    assert await bot.post(CHAN_ID, "m", marker=marker, props=ATTACHMENTS) == PostRef(CHAN_ID, "p1")
    body = stub.seen[0].body
    assert isinstance(body, dict)
    props = body["props"]
    assert props["attachments"] == ATTACHMENTS["attachments"]
    assert props["teleport_mattermost"]["request_id"] == "req-1"


async def test_an_edit_replaces_the_props_and_a_classic_edit_sends_none(bot: MattermostBot, stub: StubServer) -> None:
    answer = Answer(200, {"id": "p1", "channel_id": CHAN_ID, "message": "m", "root_id": ""})
    stub.on("PUT", "/api/v4/posts/p1", answer, answer)
    await bot.edit(PostRef(CHAN_ID, "p1"), "rich", ATTACHMENTS)
    await bot.edit(PostRef(CHAN_ID, "p1"), "classic")
    put = {"id": "p1", "channel_id": CHAN_ID, "root_id": ""}
    assert stub.seen[0].body == {**put, "message": "rich", "props": ATTACHMENTS}
    assert stub.seen[1].body == {**put, "message": "classic", "props": {}}


async def test_a_post_too_long_is_rejected_with_the_server_id(bot: MattermostBot, stub: StubServer) -> None:
    error_id = "model.post.is_valid.message_length.app_error"
    stub.on("POST", POSTS, Answer(400, app_error(400, error_id, "Post Message property is longer than allowed.")))
    with pytest.raises(Rejected) as caught:
        await bot.post(CHAN_ID, "x" * 5000)
    assert caught.value.server_id in POST_TOO_LONG_IDS


async def test_usernames_by_email_are_cached_found_or_not(
    bot: MattermostBot, stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("GET", EMAIL, Answer(200, user(username="alice")))
    stub.on("GET", GHOST, Answer(404, app_error(404, "app.user.missing_account.const", "Unable to find the user.")))
    assert await bot.username("alice@example.com") == "alice"
    assert await bot.username("ghost@example.com") is None
    assert await bot.username("alice@example.com") == "alice"
    assert await bot.username("ghost@example.com") is None
    assert len(stub.seen) == 2
    fake_time.now += 301  # the answers are kept as long as resolved recipients
    assert await bot.username("ghost@example.com") is None
    assert len(stub.seen) == 3


async def test_a_username_the_server_hides_is_none(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", EMAIL, Answer(403, app_error(403, "api.context.permissions.app_error", "no permission")))
    assert await bot.username("alice@example.com") is None


async def test_direct_channel_opens_the_dm_and_an_unknown_user_is_none(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", EMAIL, Answer(200, user()))
    stub.on("GET", ME, Answer(200, BOT))
    stub.on("POST", DIRECT, Answer(201, DM))
    stub.on("GET", GHOST, Answer(404, app_error(404, "app.user.missing_account.const", "Unable to find the user.")))
    assert await bot.direct_channel("alice@example.com") == Channel(DM_ID, "alice@example.com")
    assert stub.seen[-1].body == [BOT_ID, USER_ID]
    assert await bot.direct_channel("ghost@example.com") is None
    calls = len(stub.seen)
    assert await bot.direct_channel("alice@example.com") == Channel(DM_ID, "alice@example.com")
    assert len(stub.seen) == calls  # user and DM channel both cached


async def test_direct_channel_when_the_server_hides_emails_raises(bot: MattermostBot, stub: StubServer) -> None:
    stub.on("GET", EMAIL, Answer(403, app_error(403, "api.context.permissions.app_error", "no permission")))
    with pytest.raises(AccessDenied):
        await bot.direct_channel("alice@example.com")
