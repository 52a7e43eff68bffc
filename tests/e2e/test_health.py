"""The sidecar's health listener as operators use it: /livez, /readyz and /metrics of a running process."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.launch import ManagedProcess
from fakes.stack import eventually
from tests.e2e.conftest import MODE_ENV, MakeStack, roots, wait_posts

# The sidecar listens on its own loopback (127.0.0.1:0), which only a test on the same host can reach.
pytestmark = pytest.mark.skipif(
    os.environ.get(MODE_ENV, "processes") != "processes", reason="the health port is reachable in processes mode only"
)

LISTENING = r"Health endpoints listening .*address:(\S+)"
PREFIX = "teleport_mattermost_"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def health_address(proc: ManagedProcess) -> str:
    """The address the sidecar logged when its listener came up (port 0 picks a free one)."""
    match = re.search(LISTENING, await proc.wait_log(LISTENING, timeout=30))
    assert match is not None
    return match.group(1)


async def get(http: aiohttp.ClientSession, address: str, path: str) -> tuple[int, Any]:
    async with http.get(f"http://{address}{path}") as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


async def wait_ready(http: aiohttp.ClientSession, address: str, ready: bool, timeout: float = 45) -> dict[str, Any]:
    """Poll /readyz until it says `ready` (there is nothing to await across processes); return its body."""

    async def probe() -> dict[str, Any] | None:
        status, body = await get(http, address, "/readyz")
        assert status == (200 if body["ready"] else 503), (status, body)
        return body if body["ready"] is ready else None

    result: dict[str, Any] = await eventually(probe, timeout)
    return result


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


async def test_livez_during_start_up_then_ready_then_metrics_of_an_announced_request(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    stack = await make_stack(edition="oss", sidecar=False, health=True, recipients=["myteam/town-square"])
    # Point the sidecar at an identity that tbot has not written yet: it waits for it, as in a starting pod.
    assert stack.plugin_identity is not None
    signed, later = stack.plugin_identity, stack.workdir / "tbot-later" / "identity"
    stack.plugin_identity = later
    stack.write_config()
    proc = await stack.start_sidecar(wait_ready=False)
    address = await health_address(proc)
    await proc.wait_log("Waiting for credentials to appear")

    assert await get(http, address, "/livez") == (200, {"status": "ok"})
    status, body = await get(http, address, "/readyz")
    assert status == 503 and body["ready"] is False
    found = checks(body)
    assert found["identity"] == {"name": "identity", "ok": False, "detail": "no Teleport identity loaded yet"}
    assert found["watch"]["ok"] is False and found["mattermost"]["ok"] is False

    later.parent.mkdir()
    shutil.copy(signed, later.with_suffix(".tmp"))
    later.with_suffix(".tmp").rename(later)  # appears whole, like tbot's write
    await proc.wait_log("Plugin is ready")
    body = await wait_ready(http, address, True)
    assert all(check["ok"] for check in body["checks"]) and body["permanent_failures"] == []

    rid = await stack.create_request("myuser", reason="graph me")
    await wait_posts(stack, lambda posts: len(roots(posts, rid)) == 1)
    await stack.settled(rid)
    status, text = await get(http, address, "/metrics")
    assert status == 200
    values = samples(text)
    posted = values[(f"{PREFIX}mattermost_requests_total", (("route", "POST /api/v4/posts"), ("status_class", "2xx")))]
    assert posted >= 1  # the announcement
    assert values[(f"{PREFIX}watcher_connected", ())] == 1
    assert values[(f"{PREFIX}mattermost_reachable", ())] == 1
    assert values[(f"{PREFIX}identity_expiry_timestamp_seconds", ())] > time.time() + 600
    assert values[(f"{PREFIX}notifications_total", (("result", "ok"), ("target_kind", "channel")))] == 1
    assert values[(f"{PREFIX}events_total", (("kind", "access_request"), ("op", "put")))] >= 1
    assert values[(f"{PREFIX}owed_steps", ())] == 0
    assert rid not in text and "town-square" not in text  # no per-request or per-channel labels


async def test_readyz_is_503_with_the_reason_while_mattermost_is_down(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    stack = await make_stack(edition="oss", health=True, recipients=["myteam/town-square"])
    assert stack.sidecar is not None
    address = await health_address(stack.sidecar)
    await wait_ready(http, address, True)

    await stack.mm_admin("POST", "/fake/faults", {"route": "*", "method": "*", "outage": True})
    during = await stack.create_request("myuser", reason="during the outage")
    body = await wait_ready(http, address, False)
    mattermost = checks(body)["mattermost"]
    assert mattermost["ok"] is False
    assert mattermost["detail"].startswith("unreachable for ")
    assert "got no answer" in mattermost["detail"] or "cannot connect" in mattermost["detail"]
    assert checks(body)["watch"]["ok"] and checks(body)["identity"]["ok"]  # only Mattermost is the problem
    assert await get(http, address, "/livez") == (200, {"status": "ok"})
    _, text = await get(http, address, "/metrics")
    assert samples(text)[(f"{PREFIX}mattermost_reachable", ())] == 0
    assert any(name == f"{PREFIX}mattermost_requests_total" and ("status_class", "error") in labels
               for name, labels in samples(text))

    await stack.mm_admin("DELETE", "/fake/faults")
    after = await stack.create_request("myuser", reason="after the outage")
    await wait_posts(stack, lambda posts: len(roots(posts, after)) == 1)
    await wait_ready(http, address, True)
    # Let the sidecar finish with both requests (the one from the outage is retried) before the stack stops.
    await stack.settled(during, after, timeout=60)
