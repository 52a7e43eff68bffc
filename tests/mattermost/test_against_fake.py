"""The bot and the Mattermost checks against the full fake Mattermost (fakes/mattermost), in-process on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fakes.mattermost.clock import ManualClock
from fakes.mattermost.faults import FaultSpec
from fakes.mattermost.server import FakeMattermost
from sidecar.check.mattermost import TOKEN_SUBJECT, diagnose_mattermost
from sidecar.domain.errors import AccessDenied, RecipientError, Unauthorized
from sidecar.domain.model import PostKind, PostMarker, PostRef
from sidecar.mattermost.bot import MattermostBot
from sidecar.mattermost.client import MattermostClient
from tests.mattermost.conftest import make_client
from tests.mattermost.stub import FakeTime

POSTS_ROUTE = "/api/v4/posts"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMattermost]:
    async with FakeMattermost(clock=ManualClock()) as server:
        yield server


@pytest.fixture
async def mm(fake: FakeMattermost, fake_time: FakeTime) -> AsyncIterator[MattermostClient]:
    async with make_client(fake.url, fake_time, token=fake.bot_token) as client:
        yield client


@pytest.fixture
def bot(mm: MattermostClient, fake_time: FakeTime) -> MattermostBot:
    return MattermostBot(mm, clock=fake_time.clock)


async def test_notify_reply_and_edit(bot: MattermostBot, fake: FakeMattermost) -> None:
    await bot.check_health()
    dm = await bot.resolve("reviewer@example.com")
    town = await bot.resolve("myteam/town-square")
    assert town.id == fake.control.channel_id("myteam", "town-square")

    roots = [await bot.post(target.id, "request pending") for target in (dm, town)]
    await bot.post(town.id, "reviewed", root_id=roots[1].post_id)
    for root in roots:
        await bot.edit(root, "request approved")

    posts = {p.id: p for p in fake.control.posts()}
    assert {posts[r.post_id].message for r in roots} == {"request approved"}
    assert [posts[r.post_id].edits for r in roots] == [1, 1]
    assert posts[roots[0].post_id].channel_id == dm.id
    replies = [p for p in posts.values() if p.root_id]
    assert [(p.root_id, p.message) for p in replies] == [(roots[1].post_id, "reviewed")]


async def test_steady_state_is_one_post_per_recipient(bot: MattermostBot, fake: FakeMattermost) -> None:
    recipients = ["reviewer@example.com", "reviewer2@example.com", "myteam/general"]

    async def notify() -> None:
        for recipient in recipients:
            await bot.post((await bot.resolve(recipient)).id, "request pending")

    await notify()
    fake.control.clear_requests()
    await notify()
    assert [(r.method, r.route, r.status) for r in fake.control.requests()] == [("POST", POSTS_ROUTE, 201)] * 3


async def test_channel_permissions_as_on_a_real_server(bot: MattermostBot) -> None:
    off_topic = await bot.resolve("myteam/off-topic")  # public: visible, but the bot is not a member
    with pytest.raises(AccessDenied):
        await bot.post(off_topic.id, "hello")
    with pytest.raises(RecipientError, match="no such team or channel"):
        await bot.resolve("myteam/secret-reviews")  # private, bot not a member: 404
    with pytest.raises(RecipientError, match="no such user"):
        await bot.resolve("nobody@example.com")


async def test_lost_response_is_retried_without_a_duplicate_post(bot: MattermostBot, fake: FakeMattermost) -> None:
    town = await bot.resolve("myteam/town-square")
    fake.control.add_fault(FaultSpec(route=POSTS_ROUTE, method="POST", drop_after_commit=True, times=1))
    ref = await bot.post(town.id, "request pending")
    assert fake.control.count("POST", POSTS_ROUTE) == 2
    stored = fake.control.posts(town.id)
    assert [p.id for p in stored] == [ref.post_id]  # the retry got the first post back (pending_post_id)


async def test_429_pauses_then_retries(bot: MattermostBot, fake: FakeMattermost, fake_time: FakeTime) -> None:
    user_route = "/api/v4/users/{user_id}"  # /users/me is this route on the server
    fake.control.add_fault(FaultSpec(route=user_route, method="GET", status=429, times=1))
    await bot.check_health()
    assert fake_time.sleeps == [1.0]
    assert [r.status for r in fake.control.requests(method="GET", route=user_route)] == [429, 200]


async def test_refused_token(fake: FakeMattermost, fake_time: FakeTime) -> None:
    async with make_client(fake.url, fake_time, token="not-the-token") as client:
        with pytest.raises(Unauthorized):
            await MattermostBot(client).check_health()
        results = await diagnose_mattermost(client, ["myteam/town-square"])
    assert [(r.recipient, r.ok) for r in results] == [(TOKEN_SUBJECT, False)]


async def test_check_diagnostics_against_the_fake(mm: MattermostClient, fake: FakeMattermost) -> None:
    results = await diagnose_mattermost(
        mm, ["myteam/Town Square", "myteam/general", "nobody@example.com", "reviewer@example.com", "fallback"]
    )
    by_recipient = {r.recipient: r for r in results}
    assert by_recipient[TOKEN_SUBJECT].ok
    town = by_recipient["myteam/Town Square"]
    assert (town.ok, town.fix) == (False, 'use "myteam/town-square"')
    assert by_recipient["myteam/general"].ok
    assert by_recipient["myteam/general"].channel_id == fake.control.channel_id("myteam", "general")
    assert by_recipient["nobody@example.com"].problem == "no Mattermost user has this email address"
    assert by_recipient["reviewer@example.com"].ok
    assert by_recipient["fallback"].problem.startswith("Recipient must be either")


async def test_post_ref_points_at_the_stored_post(bot: MattermostBot, fake: FakeMattermost) -> None:
    town = await bot.resolve("myteam/town-square")
    ref = await bot.post(town.id, "x")
    assert ref == PostRef(channel_id=town.id, post_id=fake.control.posts(town.id)[0].id)


async def test_marked_posts_are_deduplicated_and_found_again(bot: MattermostBot, fake: FakeMattermost) -> None:
    town = await bot.resolve("myteam/town-square")
    root_marker = PostMarker("req-1", town.id, PostKind.ROOT)
    first = await bot.post(town.id, "request pending", marker=root_marker)
    # A retry with the same marker inside the server's window returns the first post.
    assert await bot.post(town.id, "request pending", marker=root_marker) == first
    reply_marker = PostMarker("req-1", town.id, PostKind.REPLY, 0)
    reply = await bot.post(town.id, "reviewed", root_id=first.post_id, marker=reply_marker)
    await bot.post(town.id, "someone else's post")
    assert await bot.find(root_marker, town.id, since_ms=1) == first
    assert await bot.find(reply_marker, town.id, root_id=first.post_id) == reply
    assert await bot.find(PostMarker("req-1", town.id, PostKind.REPLY, 1), town.id, root_id=first.post_id) is None
    assert await bot.find(PostMarker("req-2", town.id, PostKind.ROOT), town.id, since_ms=1) is None
    assert len([p for p in fake.control.posts() if p.channel_id == town.id]) == 3


async def test_a_burst_of_resolutions_shares_one_lookup(bot: MattermostBot, fake: FakeMattermost) -> None:
    channels = await asyncio.gather(*(bot.resolve("reviewer@example.com") for _ in range(20)))
    assert len({channel.id for channel in channels}) == 1
    lookups = [r for r in fake.control.requests() if r.path.startswith("/api/v4/users/email/")]
    assert len(lookups) == 1


async def test_a_failed_shared_lookup_fails_every_waiter_and_is_not_kept(bot: MattermostBot) -> None:
    results = await asyncio.gather(*(bot.resolve("nobody@example.com") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, RecipientError) for result in results)
    with pytest.raises(RecipientError):
        await bot.resolve("nobody@example.com")  # asked again, not served from a stale shared lookup
