"""The sidecar as a process: exit codes, signals, logs, and the configure/version/check commands."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tomllib
from pathlib import Path

from fakes.launch import python_module
from fakes.stack import BOT_TOKEN, PLUGIN_USER, Stack, eventually
from tests.e2e.conftest import MakeStack, roots, wait_posts


async def run(stack: Stack, *args: str) -> tuple[int, str, str]:
    return await stack.run_cli(*python_module("sidecar", *args), check=False)


async def test_sigterm_lets_in_flight_work_finish_then_exits_zero(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=["myteam/town-square"])
    await stack.mm_admin("POST", "/fake/faults", {"route": "/api/v4/posts", "method": "POST", "latency_ms": 2500})
    rid = await stack.create_request("myuser", reason="in flight")

    async def record_exists() -> bool | None:
        return True if (await stack.plugin_data(rid)).get("user") else None

    await eventually(record_exists)  # the record is created just before the (slow) post starts
    assert stack.sidecar is not None
    sidecar = stack.sidecar
    sidecar.send_signal(signal.SIGTERM)
    assert await sidecar.wait(20) == 0
    log = sidecar.read_log()
    assert "Attempting graceful shutdown" in log and "Successfully shut down" in log
    assert len(roots(await stack.posts(), rid)) == 1  # the in-flight post completed
    assert (await stack.plugin_data(rid))["messages"]  # and was recorded


async def test_second_sigint_exits_immediately(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", recipients=["myteam/town-square"])
    await stack.mm_admin("POST", "/fake/faults", {"route": "/api/v4/posts", "method": "POST", "latency_ms": 20000})
    rid = await stack.create_request("myuser")

    async def record_exists() -> bool | None:
        return True if (await stack.plugin_data(rid)).get("user") else None

    await eventually(record_exists)
    assert stack.sidecar is not None
    sidecar = stack.sidecar
    sidecar.send_signal(signal.SIGINT)
    await sidecar.wait_log("Attempting graceful shutdown", timeout=10)
    sidecar.send_signal(signal.SIGINT)
    assert await sidecar.wait(10) == 1  # well before the 20 s post could finish
    assert roots(await stack.posts(), rid) == []


async def test_bad_config_exits_one_with_a_one_line_reason(tmp_path: Path, make_stack: MakeStack) -> None:
    stack = await make_stack(sidecar=False)
    bad = tmp_path / "bad.toml"
    bad.write_text('[teleport]\nidentity = "/x"\n[mattermost]\nurl = "https://mm.example.com"\n')
    code, _, err = await run(stack, "start", "-c", str(bad))
    assert code == 1
    assert err.strip().splitlines()[-1] == "teleport-mattermost: error: missing required value mattermost.token"


async def test_expired_identity_is_fatal(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", sidecar=False)
    stack.plugin_identity = await stack.sign(PLUGIN_USER, ttl="1s")
    await asyncio.sleep(1.5)  # let the certificate expire: a wait on the clock, not on the sidecar
    stack.write_config()
    proc = await stack.start_sidecar(wait_ready=False)
    assert await proc.wait(30) == 1
    assert "No valid credentials found, this likely means credentials are expired" in proc.read_log()


async def test_refused_mattermost_token_is_fatal(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", sidecar=False)
    stack.write_config()
    stack.config_path.write_text(stack.config_path.read_text().replace(BOT_TOKEN, "wrong-token"))
    proc = await stack.start_sidecar(wait_ready=False)
    assert await proc.wait(30) == 1
    log = proc.read_log()
    assert "API health check failed" in log
    assert "wrong-token" not in log


async def test_tokens_never_reach_the_logs_and_json_format(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", sidecar=False, recipients=["myteam/town-square"])
    stack.write_config()
    text = stack.config_path.read_text().replace('output = "stderr"', 'output = "stderr"\nformat = "json"')
    stack.config_path.write_text(text)
    await stack.start_sidecar()
    rid = await stack.create_request("myuser", reason="json logs")
    await wait_posts(stack, lambda p: len(roots(p, rid)) == 1)
    assert stack.sidecar is not None
    await stack.sidecar.wait_log("Successfully posted messages")
    log = stack.sidecar.read_log()
    assert BOT_TOKEN not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    posted = [r for r in records if r["message"] == "Successfully posted messages"]
    assert posted and posted[0]["request_id"] == rid and posted[0]["channel_id"] and posted[0]["message_id"]
    assert posted[0]["level"] == "INFO"


async def test_configure_prints_a_loadable_config_and_version(tmp_path: Path, make_stack: MakeStack) -> None:
    stack = await make_stack(sidecar=False)
    code, out, _ = await run(stack, "configure")
    assert code == 0
    doc = tomllib.loads(out)
    assert {"teleport", "mattermost", "log"} <= set(doc)
    code, out, _ = await run(stack, "version")
    assert code == 0 and out.startswith("teleport-mattermost v") and f"python{sys.version_info.major}" in out


async def test_check_passes_on_a_good_config(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="enterprise", sidecar=False,
                             recipients=["myteam/town-square", "reviewer@example.com"])
    stack.write_config()
    code, out, err = await run(stack, "check", "-c", str(stack.config_path))
    assert code == 0, out + err
    assert "all checks passed" in out
    assert "ok   teleport.watch" in out


async def test_check_reports_each_problem_with_a_fix(make_stack: MakeStack) -> None:
    stack = await make_stack(edition="oss", sidecar=False,
                             recipients=["myteam/Town Square", "nobody@example.com", "myteam/off-topic", "oops"])
    stack.write_config()
    code, out, _ = await run(stack, "check", "-c", str(stack.config_path))
    assert code == 1
    assert "FAIL myteam/Town Square" in out and "town-square" in out
    assert "FAIL nobody@example.com" in out
    assert "FAIL myteam/off-topic" in out and "fix:" in out
    assert 'Recipient must be either a user email or a channel in the format "team/channel" but got "oops"' in out
