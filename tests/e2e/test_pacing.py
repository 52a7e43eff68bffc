"""Pacing end to end: a burst larger than Mattermost's allowance is spread out instead of drawing 429s.

Same setup as test_operations.py: separate processes, public interfaces only. The fake Mattermost limits the
bot's token to 10 requests/s with a burst of 20 (X-RateLimit-Limit 21), like a real server's RateLimitSettings.
"""

from __future__ import annotations

import asyncio
import contextlib

from fakes.stack import BOT_TOKEN, Stack, StackError
from fakes.teleport_harness import HarnessClient
from sidecar.teleport.wire import types_pb2
from tests.e2e.conftest import MakeStack, roots, wait_posts

# Each request costs the sidecar about six calls here (lookups, a DM, two posts): ~180 in all, 9 times the burst.
RECIPIENTS = ["myteam/town-square", "reviewer@example.com"]
PER_SEC = 10
BURST = 20
REQUESTS = 30
PING = "/api/v4/system/ping"


async def create_many(stack: Stack, count: int) -> list[str]:
    """`count` access requests created at once over one Teleport connection."""
    async with stack.teleport_client("myuser") as client:
        harness = HarnessClient(client)

        async def create(i: int) -> str:
            req = types_pb2.AccessRequestV3(Kind="access_request", Version="v3")
            req.Spec.User = "myuser"
            req.Spec.Roles.append("editor")
            req.Spec.RequestReason = f"burst {i}"
            return (await harness.create_access_request(req)).Metadata.Name

        return list(await asyncio.gather(*(create(i) for i in range(count))))


async def test_a_burst_beyond_the_allowance_arrives_without_429(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=RECIPIENTS, rate_limit=PER_SEC, rate_burst=BURST)
    ids = await create_many(stack, REQUESTS)
    await wait_posts(stack, lambda p: all(len(roots(p, rid)) == len(RECIPIENTS) for rid in ids), timeout=120)
    await stack.settled(*ids, timeout=60)

    posts = await stack.posts()
    for rid in ids:
        assert len(roots(posts, rid)) == len(RECIPIENTS), f"request {rid}"
    log = [r for r in await stack.mm_admin("GET", "/fake/requests") if r["path"].startswith("/api/")]
    refused = [r for r in log if r["status"] == 429]
    assert refused == [], f"{len(refused)} requests were refused with 429"
    # The load was more than the burst, and was spread over at least the time the rate needs for it:
    # the sidecar paced itself instead of having its requests refused.
    assert len(log) >= REQUESTS * len(RECIPIENTS) > BURST + 1
    span = (log[-1]["at"] - log[0]["at"]) / 1000
    assert span >= (len(log) - (BURST + 1)) / PER_SEC * 0.95


async def test_another_client_spending_the_allowance_draws_429s_and_loses_nothing(make_stack: MakeStack) -> None:
    """Pacing is a courtesy, not a guarantee: Mattermost keys its limiter by token (or address), so another client
    on the same key (here the test, with the bot's token) can spend the allowance behind the pacer's back. The
    sidecar's calls are then refused; the 429 pauses every call, and every post still arrives, exactly once."""
    stack = await make_stack(edition="oss", recipients=RECIPIENTS, rate_limit=PER_SEC, rate_burst=BURST)
    creating = asyncio.create_task(create_many(stack, 10))

    async def sidecar_refused() -> bool:
        log = await stack.mm_admin("GET", "/fake/requests")
        return any(r["status"] == 429 and r["route"] != PING for r in log)

    try:
        async with asyncio.timeout(60):
            while not await sidecar_refused():
                for _ in range(5):
                    with contextlib.suppress(StackError):  # the test's own calls are refused too
                        await stack.mm_as(BOT_TOKEN, "GET", PING)
    finally:
        ids = await creating

    await wait_posts(stack, lambda p: all(len(roots(p, rid)) == len(RECIPIENTS) for rid in ids), timeout=120)
    await stack.settled(*ids, timeout=60)
    posts = await stack.posts()
    for rid in ids:
        assert len(roots(posts, rid)) == len(RECIPIENTS), f"request {rid}"
