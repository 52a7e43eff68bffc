"""`python -m fakes.tctl`: the sign + tctl walk create → review → approve against `serve` as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes import tctl
from fakes.teleport_auth.__main__ import main as fake_auth_main
from tests.fakes.teleport_auth.processes import read_ready, start_serve, stop

Tctl = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    state_dir = tmp_path / "state"
    proc = start_serve(state_dir, "--cluster-name", "cli.example.com")
    try:
        yield read_ready(proc), state_dir
    finally:
        stop(proc)


def _output(status: int, out: str) -> Any:
    return json.loads(out) if status == 0 and out.strip().startswith(("{", "[")) else out


@pytest.fixture
def as_user(
    served: tuple[dict[str, Any], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Tctl]:
    """`as_user(user, *args)`: sign an identity for `user` once, then run `tctl requests *args` in-process."""
    ready, state_dir = served
    identities: dict[str, str] = {}

    def run(user: str, *args: str) -> tuple[int, Any, str]:
        if user not in identities:
            path = str(tmp_path / f"{user}.identity")
            sign = ["sign", "--state-dir", str(state_dir), "--user", user, "--ttl", "1h", "--out", path]
            assert fake_auth_main(sign) == 0, capsys.readouterr().err
            capsys.readouterr()
            identities[user] = path
        status = tctl.main(["--addr", ready["auth_addr"], "--identity", identities[user], "requests", *args])
        out, err = capsys.readouterr()
        return status, _output(status, out), err

    yield run


def test_walk_create_review_approve(as_user: Tctl) -> None:
    status, created, _ = as_user(
        "requester@example.com", "create", "--roles", "editor", "--reason", "because of",
        "--reviewers", "reviewer@example.com",
    )
    assert status == 0 and created["state"] == "PENDING" and created["suggested_reviewers"] == ["reviewer@example.com"]
    assert (created["user"], created["roles"], created["request_reason"]) == (
        "requester@example.com", ["editor"], "because of"
    )
    rid = created["id"]

    status, reviewed, _ = as_user("reviewer@example.com", "review", rid, "--approve", "--reason", "okay")
    assert status == 0 and reviewed["state"] == "APPROVED" and reviewed["resolve_reason"] == "okay"
    assert reviewed["reviews"] == [{"author": "reviewer@example.com", "state": "APPROVED", "reason": "okay"}]

    status, _, err = as_user("admin", "approve", rid)
    assert status == 1 and "INVALID_ARGUMENT" in err and "already APPROVED" in err
    assert err.startswith("error: SetAccessRequestState: INVALID_ARGUMENT: ")

    status, second, _ = as_user("requester@example.com", "create", "--roles", "editor")
    status, approved, _ = as_user("admin", "approve", second["id"], "--reason", "fine")
    assert status == 0 and approved == {"id": second["id"], "state": "APPROVED"}
    status, full, _ = as_user("admin", "get", second["id"])
    assert status == 0 and full["Spec"]["State"] == "APPROVED" and full["Spec"]["ResolveReason"] == "fine"
    status, _, err = as_user("admin", "get", "00000000-0000-0000-0000-000000000000")
    assert status == 1 and err == "error: access request 00000000-0000-0000-0000-000000000000 not found\n"

    status, third, _ = as_user("requester@example.com", "create", "--roles", "editor")
    status, denied, _ = as_user("admin", "deny", third["id"])
    assert status == 0 and denied == {"id": third["id"], "state": "DENIED"}
    status, listed, _ = as_user("admin", "ls", "--state", "DENIED")
    assert [r["id"] for r in listed] == [third["id"]]
    status, listed, _ = as_user("admin", "ls")
    assert [r["id"] for r in listed] == [rid, second["id"], third["id"]]  # oldest first

    status, _, err = as_user("reviewer@example.com", "rm", third["id"])
    assert status == 1 and "PERMISSION_DENIED" in err
    status, removed, _ = as_user("admin", "rm", third["id"])
    assert status == 0 and removed == {"id": third["id"], "deleted": True}
    status, listed, _ = as_user("requester@example.com", "ls")
    assert sorted(r["id"] for r in listed) == sorted([rid, second["id"]])
    status, listed, _ = as_user("admin", "ls", "--user", "nobody")
    assert (status, listed) == (0, [])

    status, _, err = as_user("reviewer@example.com", "create", "--roles", "editor")
    assert status == 1 and "PERMISSION_DENIED" in err


def test_reports_a_bad_identity_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.identity"
    bad.write_text("not an identity\n")
    status = tctl.main(["--addr", "127.0.0.1:1", "--identity", str(bad), "requests", "ls"])
    err = capsys.readouterr().err
    assert status == 1 and str(bad) in err and err.startswith("error: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        tctl.main(["--addr", "127.0.0.1:1", "--identity", "x", "requests", "review", "some-id"])
    assert exited.value.code == 2
    assert "one of the arguments --approve --deny is required" in capsys.readouterr().err


def test_runs_as_a_module(served: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    ready, state_dir = served
    identity = tmp_path / "admin.identity"
    sign = ["sign", "--state-dir", str(state_dir), "--user", "admin", "--ttl", "1h", "--out", str(identity)]
    assert fake_auth_main(sign) == 0
    done = subprocess.run(
        [sys.executable, "-m", "fakes.tctl", "--addr", ready["auth_addr"], "--identity", str(identity),
         "requests", "ls"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (done.returncode, json.loads(done.stdout)) == (0, [])
