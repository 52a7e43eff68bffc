"""Benchmark: Mattermost API calls and time to announce access requests, cached lookups vs none.

Both variants run in the same process against the same in-process fake Mattermost (loopback), with the
real engine, bot and client; only the bot's recipient cache differs:

* baseline: every notification resolves its recipients again (resolve_ttl=0), as the Go plugin does
  (GET user by email + GET me + POST direct channel per DM, GET channel per team channel, then the POST);
* sidecar: resolved recipients are cached (default TTL, revalidated by ETag when it lapses).

Run: `make bench` (or `python -m bench.notification_cost --requests 200`). Prints one row per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fakes.mattermost.server import FakeMattermost
from sidecar.domain.errors import CompareFailed
from sidecar.domain.model import AccessRequest, EventOp, RequestEvent, RequestState
from sidecar.engine.engine import Engine, EngineSettings
from sidecar.mattermost.bot import MattermostBot
from sidecar.mattermost.client import MattermostClient

RECIPIENTS = {"*": ("myteam/town-square", "reviewer@example.com")}
SUGGESTED = ("reviewer2@example.com",)


class MemoryStore:
    """A PluginDataStore with Teleport's compare-and-swap rules, in memory (Teleport is not measured here)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, str]] = {}

    async def get(self, request_id: str) -> dict[str, str] | None:
        entry = self.entries.get(request_id)
        return dict(entry) if entry is not None else None

    async def update(self, request_id: str, set_: Mapping[str, str], expect: Mapping[str, str]) -> None:
        entry = self.entries.get(request_id, {})
        if any(entry.get(k, "") != v for k, v in expect.items()):
            raise CompareFailed(f"plugin data for {request_id} changed")
        merged = {**entry, **set_}
        self.entries[request_id] = {k: v for k, v in merged.items() if v}


class NoRoles:
    """RoleLookup answering no logins, so only Mattermost calls are counted."""

    async def role_logins(self, role: str) -> list[str]:
        return []


@dataclass(frozen=True)
class Result:
    """One variant's numbers."""

    name: str
    requests: int
    api_calls: int
    posts: int
    seconds: float

    @property
    def calls_per_request(self) -> float:
        return self.api_calls / self.requests

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else float("inf")


async def measure(name: str, requests: int, resolve_ttl: float | None) -> Result:
    """Announce `requests` pending requests one after another and count the API calls they cost."""
    async with FakeMattermost() as mm, MattermostClient(mm.url, mm.bot_token) as client:
        bot = MattermostBot(client) if resolve_ttl is None else MattermostBot(client, resolve_ttl=resolve_ttl)
        engine = Engine(store=MemoryStore(), roles=NoRoles(), chat=bot,
                        settings=EngineSettings(role_to_recipients=RECIPIENTS))
        warm = RequestEvent(EventOp.PUT, "warm-up", _request("warm-up"))
        await engine.handle(warm)  # first contact (bot user, DM creation) is not steady state
        mm.control.clear_requests()
        started = time.perf_counter()
        for i in range(requests):
            rid = f"req-{i:05d}"
            await engine.handle(RequestEvent(EventOp.PUT, rid, _request(rid)))
        seconds = time.perf_counter() - started
        calls = mm.control.requests()
        posts = sum(1 for c in calls if c.method == "POST" and c.route == "/api/v4/posts")
        return Result(name, requests, len(calls), posts, seconds)


def _request(rid: str) -> AccessRequest:
    return AccessRequest(id=rid, user="myuser", roles=("editor",), state=RequestState.PENDING,
                         request_reason="benchmark", suggested_reviewers=SUGGESTED)


async def run(requests: int) -> tuple[Result, Result]:
    """Baseline first, then the sidecar's default, in the same run."""
    baseline = await measure("baseline (lookups every time)", requests, resolve_ttl=0.0)
    ours = await measure("sidecar (cached lookups)", requests, resolve_ttl=None)
    return baseline, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    baseline, ours = asyncio.run(run(args.requests))
    print(f"{'variant':40} {'requests':>8} {'API calls':>9} {'calls/req':>9} {'posts':>6} {'req/s':>8}")
    for r in (baseline, ours):
        print(f"{r.name:40} {r.requests:8d} {r.api_calls:9d} {r.calls_per_request:9.2f} {r.posts:6d} "
              f"{r.requests_per_second:8.1f}")
    print(f"API calls saved: {1 - ours.api_calls / baseline.api_calls:.0%}; "
          f"speed-up: {ours.requests_per_second / baseline.requests_per_second:.2f}x (same run, same machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
