"""`python -m fakes.tctl` against `serve` as a subprocess: the sign + tctl walk create → review → approve, resource
requests (`create --resource`), and access monitoring rules through `create [-f]`, `get` and `rm` with Teleport's
YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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
def run_tctl(
    served: tuple[dict[str, Any], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """`run_tctl(user, *args)`: sign an identity for `user` once, then run `tctl *args` in-process; (status,
    stdout, stderr)."""
    ready, state_dir = served
    identities: dict[str, str] = {}

    def run(user: str, *args: str) -> tuple[int, str, str]:
        if user not in identities:
            path = str(tmp_path / f"{user}.identity")
            sign = ["sign", "--state-dir", str(state_dir), "--user", user, "--ttl", "1h", "--out", path]
            assert fake_auth_main(sign) == 0, capsys.readouterr().err
            capsys.readouterr()
            identities[user] = path
        status = tctl.main(["--addr", ready["auth_addr"], "--identity", identities[user], *args])
        out, err = capsys.readouterr()
        return status, out, err

    yield run


@pytest.fixture
def as_user(run_tctl: Callable[..., tuple[int, str, str]]) -> Tctl:
    """`as_user(user, *args)`: `tctl requests *args` as `user`, its JSON output parsed."""

    def run(user: str, *args: str) -> tuple[int, Any, str]:
        status, out, err = run_tctl(user, "requests", *args)
        return status, _output(status, out), err

    return run


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


# --------------------------------------------------------------------------------------- access monitoring rules

RULE_YAML = """\
kind: access_monitoring_rule
version: v1
metadata: {name: mm-dev-requests}
spec:
  subjects: [access_request]
  condition: 'access_request.spec.roles.contains("dev")'
  notification: {name: mattermost, recipients: ["team-llama/channel-llama", "reviewer1@example.com"]}
"""

SECOND_YAML = """\
---
kind: access_monitoring_rule
version: v1
metadata:
  name: a-multi-line
  labels: {team: llama}
spec:
  subjects: [access_request]
  condition: |-
    access_request.spec.roles.contains("dev") &&
    access_request.spec.user == "alice"
  automatic_review: {integration: builtin, decision: APPROVED}
---
"""


def test_rules_create_get_and_rm(run_tctl: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    first, second = tmp_path / "rule.yaml", tmp_path / "second.yaml"
    first.write_text(RULE_YAML)
    second.write_text(SECOND_YAML)
    assert run_tctl("admin", "create", str(first)) == (
        0,
        'access monitoring rule "mm-dev-requests" has been created\n',
        "",
    )
    status, _, err = run_tctl("admin", "create", str(first))
    assert status == 1
    assert err == (
        'error: CreateAccessMonitoringRule: ALREADY_EXISTS: access_monitoring_rule "mm-dev-requests" already exists\n'
    )
    assert run_tctl("admin", "create", "-f", str(first))[:2] == (
        0,
        'access monitoring rule "mm-dev-requests" has been created\n',
    )
    assert run_tctl("admin", "create", str(second))[:2] == (
        0,
        'access monitoring rule "a-multi-line" has been created\n',
    )

    status, out, _ = run_tctl("access-plugin", "get", "access_monitoring_rule/mm-dev-requests")
    (got,) = list(yaml.safe_load_all(out))
    expected = yaml.safe_load(RULE_YAML)
    assert got["metadata"].pop("revision")
    assert (status, got) == (0, expected)

    status, out, _ = run_tctl("access-plugin", "get", "access_monitoring_rule", "--format", "json")
    listed = json.loads(out)
    assert status == 0 and [r["metadata"]["name"] for r in listed] == ["a-multi-line", "mm-dev-requests"]
    multi = listed[0]
    assert (
        multi["spec"]["condition"]
        == 'access_request.spec.roles.contains("dev") &&\naccess_request.spec.user == "alice"'
    )
    assert multi["spec"]["automatic_review"] == {"integration": "builtin", "decision": "APPROVED"}
    assert "notification" not in multi["spec"] and multi["metadata"]["labels"] == {"team": "llama"}
    status, out, _ = run_tctl("access-plugin", "get", "access_monitoring_rule")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["a-multi-line", "mm-dev-requests"]

    assert run_tctl("admin", "rm", "access_monitoring_rule/mm-dev-requests") == (
        0,
        'access monitoring rule "mm-dev-requests" has been deleted\n',
        "",
    )
    status, _, err = run_tctl("admin", "rm", "access_monitoring_rule/mm-dev-requests")
    assert status == 1 and "DeleteAccessMonitoringRule: NOT_FOUND: " in err
    status, _, err = run_tctl("admin", "get", "access_monitoring_rule/mm-dev-requests")
    assert status == 1 and err.startswith("error: GetAccessMonitoringRule: NOT_FOUND: ")


def test_rules_refusals_and_bad_files(run_tctl: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE_YAML)
    status, _, err = run_tctl("access-plugin", "create", str(rule))
    assert status == 1 and err.startswith("error: CreateAccessMonitoringRule: PERMISSION_DENIED: ")

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(RULE_YAML.replace("version: v1", "version: v2"))
    status, _, err = run_tctl("admin", "create", str(invalid))
    assert (status, err) == (
        1,
        'error: CreateAccessMonitoringRule: INVALID_ARGUMENT: accessMonitoringRule version "v2" is not supported\n',
    )
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text(RULE_YAML.replace("""'access_request.spec.roles.contains("dev")'""", "true"))
    status, _, err = run_tctl("admin", "create", str(unquoted))
    assert status == 1 and "spec.condition: expected a string, got a boolean (quote it: 'true')" in err
    other = tmp_path / "role.yaml"
    other.write_text("kind: role\nversion: v7\nmetadata: {name: x}\n")
    assert run_tctl("admin", "create", str(other))[::2] == (
        1,
        'error: creating resources of type "role" is not supported\n',
    )
    status, _, err = run_tctl("admin", "create", str(tmp_path / "missing.yaml"))
    assert status == 1 and "missing.yaml: cannot read" in err
    status, _, err = run_tctl("admin", "rm", "access_monitoring_rule")
    assert status == 1 and "expected access_monitoring_rule/NAME" in err
    status, _, err = run_tctl("admin", "get", "role/editor")
    assert status == 1 and "resource kind 'role' is not supported here" in err


NODE_DB = "5e0c8a7e-2c3b-4f41-9a8e-0d9b7c1f4a21"  # the default seed's db-1.prod.internal


def test_resource_requests(as_user: Tctl) -> None:
    node = f"/cli.example.com/node/{NODE_DB}"
    status, created, err = as_user(
        "requester@example.com", "create", "--resource", node, "--resource", "/cli.example.com/app/grafana",
        "--reason", "debug prod",
    )
    assert status == 0, err
    assert created["roles"] == ["resource-access"] and created["state"] == "PENDING"
    assert created["resources"] == [node, "/cli.example.com/app/grafana"]
    status, full, _ = as_user("admin", "get", created["id"])
    first = full["Spec"]["RequestedResourceIDs"][0]
    assert first == {"ClusterName": "cli.example.com", "Kind": "node", "Name": NODE_DB}

    status, both, _ = as_user("requester@example.com", "create", "--roles", "resource-access", "--resource", node,
                              "--long-term")
    assert status == 0 and both["resources"] == [node]
    status, full, _ = as_user("admin", "get", both["id"])
    assert full["Spec"]["RequestKind"] == "LONG_TERM"

    status, _, err = as_user("requester@example.com", "create", "--resource", "/cli.example.com/node/missing")
    assert status == 1 and err == 'error: CreateAccessRequestV2: NOT_FOUND: node "missing" is not found\n'
    status, _, err = as_user("requester@example.com", "create")
    assert status == 1 and "must specify at least one role" in err


def test_a_malformed_resource_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        tctl.main(["--addr", "127.0.0.1:1", "--identity", "x", "requests", "create", "--resource", "node/n1"])
    assert exited.value.code == 2
    assert "is not /<cluster>/<kind>/<name>" in capsys.readouterr().err
