"""Fixtures: a scripted loopback server, fake time, and a client wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sidecar.mattermost.client import MattermostClient
from sidecar.mattermost.ratelimit import RateLimitGate
from sidecar.mattermost.retry import RetryPolicy
from tests.mattermost.stub import TOKEN, FakeTime, StubServer


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def stub(fake_time: FakeTime) -> AsyncIterator[StubServer]:
    server = StubServer(clock=fake_time.clock)
    try:
        await server.start()
        yield server
    finally:
        await server.close()


def make_client(url: str, fake_time: FakeTime, token: str = TOKEN, **kwargs: object) -> MattermostClient:
    """A client on fake time whose retry jitter always picks the upper bound (deterministic delays)."""
    options: dict[str, object] = {
        "timeout": 2.0,
        "retry": RetryPolicy(attempts=4, base=0.5, cap=4.0, rand=lambda: 1.0),
        "gate": RateLimitGate(clock=fake_time.clock, sleep=fake_time.sleep),
        "sleep": fake_time.sleep,
        "trust_env": False,
    }
    options.update(kwargs)
    return MattermostClient(url, token, **options)  # type: ignore[arg-type]


@pytest.fixture
async def client(stub: StubServer, fake_time: FakeTime) -> AsyncIterator[MattermostClient]:
    async with make_client(stub.url, fake_time) as mm:
        yield mm
