"""`python -m fakes.mattermost serve`: readiness line, serving, clean SIGTERM, argument errors."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[3]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakes.mattermost", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.fixture
async def served() -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    process = await _spawn("serve", "--listen", "127.0.0.1:0", "--rate-limit", "50", "--rate-burst", "5")
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        yield process, json.loads(line)
    finally:
        await _stop(process)


async def test_ready_line_and_clean_sigterm(served: tuple[asyncio.subprocess.Process, dict[str, Any]]) -> None:
    process, ready = served
    assert ready["url"].startswith("http://127.0.0.1:")
    assert ready["admin_token"] == "admin-token"
    assert ready["bot_token"] == "teleport-bot-token"
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {ready['bot_token']}"}
        async with http.get(ready["url"] + "/api/v4/users/me", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["username"] == "teleport"
            assert response.headers["X-RateLimit-Limit"] == "6"
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 20) == 0


async def _fails(args: Sequence[str]) -> tuple[int, str]:
    process = await _spawn(*args)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode is not None
        return process.returncode, err.decode()
    finally:
        await _stop(process)


async def test_bad_seed_is_named(tmp_path: Path) -> None:
    seed = tmp_path / "broken.toml"
    seed.write_text("[admin]\nusername = 'x'\n", encoding="utf-8")
    code, err = await _fails(["serve", "--listen", "127.0.0.1:0", "--seed", str(seed)])
    assert code == 2
    assert "broken.toml" in err
    assert "missing 'email'" in err


async def test_bad_listen_address() -> None:
    code, err = await _fails(["serve", "--listen", "nonsense"])
    assert code == 2
    assert "HOST:PORT" in err


async def test_port_in_use_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = await _fails(["serve", "--listen", f"127.0.0.1:{port}"])
    assert code == 1
    assert "cannot listen" in err


async def test_bad_rate_limit() -> None:
    code, err = await _fails(["serve", "--rate-limit", "0"])
    assert code == 2
    assert "must be positive" in err


async def test_integration_settings_flags_survive_a_reset() -> None:
    process = await _spawn("serve", "--listen", "127.0.0.1:0", "--allowed-untrusted-internal-connections",
                           "127.0.0.1", "--outgoing-integration-requests-timeout", "7")
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        headers = {"Authorization": f"Bearer {ready['admin_token']}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(ready["url"] + "/fake/reset", headers=headers) as reset:
                assert reset.status == 200
            async with http.get(ready["url"] + "/fake/settings", headers=headers) as response:
                assert await response.json() == {"allowed_untrusted_internal_connections": "127.0.0.1",
                                                 "outgoing_integration_requests_timeout": 7}
    finally:
        await _stop(process)
    code, err = await _fails(["serve", "--outgoing-integration-requests-timeout", "0"])
    assert code == 2 and "must be positive" in err
