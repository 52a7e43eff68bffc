"""The CLI: `serve` as a subprocess (ready line, SIGTERM), and the sign + tctl walk create → review → approve."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.teleport_auth.__main__ import main

SERVE_TIMEOUT_S = 20


def start_serve(state_dir: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "fakes.teleport_auth", "serve", "--state-dir", str(state_dir)]
    cmd += ["--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_ready(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], SERVE_TIMEOUT_S)
    assert ready, "serve printed no ready line"
    line = proc.stdout.readline()
    assert line, f"serve exited: {proc.stderr.read() if proc.stderr else ''}"
    doc: dict[str, Any] = json.loads(line)
    return doc


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=SERVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    state_dir = tmp_path / "state"
    proc = start_serve(state_dir, "--cluster-name", "cli.example.com")
    try:
        yield read_ready(proc), state_dir
    finally:
        stop(proc)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, (json.loads(out) if status == 0 and out.strip().startswith(("{", "[")) else out), err


def test_serve_prints_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = start_serve(tmp_path / "s", "--edition", "enterprise")
    try:
        ready = read_ready(proc)
        assert set(ready) == {"auth_addr", "proxy_addr", "admin_addr", "cluster_name", "state_dir"}
        assert ready["cluster_name"] == "teleport.example.com"
        assert all(not ready[k].endswith(":0") for k in ("auth_addr", "proxy_addr", "admin_addr"))
        assert (tmp_path / "s" / "users.toml").is_file()
    finally:
        status = stop(proc)
    assert status == 0


def test_serve_rejects_a_bad_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text("[users.u]\nroles = ['ghost']\n")
    proc = start_serve(tmp_path / "s", "--seed", str(seed))
    try:
        assert proc.wait(timeout=SERVE_TIMEOUT_S) == 1
        assert proc.stderr is not None and "undefined role 'ghost'" in proc.stderr.read()
    finally:
        stop(proc)


def test_tctl_walk_create_review_approve(
    served: tuple[dict[str, Any], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready, state_dir = served
    ids = {}
    for user in ("requester@example.com", "reviewer@example.com", "admin"):
        ids[user] = str(tmp_path / f"{user}.identity")
        status, _, err = run_cli(
            capsys, "sign", "--state-dir", str(state_dir), "--user", user, "--ttl", "1h", "--out", ids[user]
        )
        assert status == 0, err

    def tctl(user: str, *args: str) -> tuple[int, Any, str]:
        return run_cli(capsys, "tctl", "--addr", ready["auth_addr"], "--identity", ids[user], "requests", *args)

    status, created, _ = tctl(
        "requester@example.com",
        "create",
        "--roles",
        "editor",
        "--reason",
        "because of",
        "--reviewers",
        "reviewer@example.com",
    )
    assert status == 0 and created["state"] == "PENDING" and created["suggested_reviewers"] == ["reviewer@example.com"]
    rid = created["id"]

    status, reviewed, _ = tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "okay")
    assert status == 0 and reviewed["state"] == "APPROVED" and reviewed["resolve_reason"] == "okay"
    assert reviewed["reviews"] == [{"author": "reviewer@example.com", "state": "APPROVED", "reason": "okay"}]

    status, _, err = tctl("admin", "approve", rid)
    assert status == 1 and "INVALID_ARGUMENT" in err and "already APPROVED" in err

    status, second, _ = tctl("requester@example.com", "create", "--roles", "editor")
    status, approved, _ = tctl("admin", "approve", second["id"], "--reason", "fine")
    assert status == 0 and approved == {"id": second["id"], "state": "APPROVED"}
    status, full, _ = tctl("admin", "get", second["id"])
    assert status == 0 and full["Spec"]["State"] == "APPROVED" and full["Spec"]["ResolveReason"] == "fine"

    status, third, _ = tctl("requester@example.com", "create", "--roles", "editor")
    status, denied, _ = tctl("admin", "deny", third["id"])
    assert status == 0 and denied["state"] == "DENIED"
    status, listed, _ = tctl("admin", "ls", "--state", "DENIED")
    assert [r["id"] for r in listed] == [third["id"]]

    status, _, err = tctl("reviewer@example.com", "rm", third["id"])
    assert status == 1 and "PERMISSION_DENIED" in err
    status, removed, _ = tctl("admin", "rm", third["id"])
    assert status == 0 and removed == {"id": third["id"], "deleted": True}
    status, listed, _ = tctl("requester@example.com", "ls")
    assert sorted(r["id"] for r in listed) == sorted([rid, second["id"]])

    status, _, err = tctl("reviewer@example.com", "create", "--roles", "editor")
    assert status == 1 and "PERMISSION_DENIED" in err


def test_tctl_reports_a_bad_identity_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.identity"
    bad.write_text("not an identity\n")
    status, _, err = run_cli(capsys, "tctl", "--addr", "127.0.0.1:1", "--identity", str(bad), "requests", "ls")
    assert status == 1 and str(bad) in err
