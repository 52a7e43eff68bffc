"""`teleport-mattermost route` from files alone: the resource files, the report, the exit status."""

from __future__ import annotations

import io
import json
import logging
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli import main
from sidecar.config import Config, load_config
from sidecar.domain.errors import ConfigError
from sidecar.logs import QUIET_LIBRARIES, close_logging
from sidecar.route.command import RouteInputs, recipient_problem, run_route
from sidecar.route.files import load_documents, request_from_file, rules_from_file, traits_from_file

CONFIG = """
[teleport]
addr = "127.0.0.1:1"
identity = "/nonexistent/identity"

[mattermost]
url = "https://mattermost.example.com"
token = "not-a-real-token"

[role_to_recipients]
"*" = ["team-llama/channel-llama", "fallback"]
"editor" = ["reviewer@example.com"]
"""

REQUEST = """
kind: access_request
version: v3
metadata:
  name: 0b6c5b84-3f5e-4a43-9d1e-9b9a7d1c2e11
  expires: 2025-01-01T01:00:00Z
spec:
  user: alice@example.com
  roles: [editor, auditor]
  state: 1
  created: 2025-01-01T00:00:00Z
  request_reason: urgent
  suggested_reviewers: [rev2@example.com, not-an-email]
  system_annotations:
    teleport.dev/notify: [ops]
"""

RULES = """
kind: access_monitoring_rule
version: v1
metadata:
  name: dev-team
spec:
  subjects: [access_request]
  condition: 'user.traits["team"].contains("dev")'
  notification:
    name: mattermost
    recipients: [team-llama/dev, lead@example.com, foo]
---
kind: access_monitoring_rule
version: v1
metadata:
  name: for-slack
spec:
  subjects: [access_request]
  condition: 'true'
  notification: {name: slack, recipients: [x@example.com]}
---
kind: access_monitoring_rule
version: v1
metadata:
  name: broken
spec:
  subjects: [access_request]
  condition: 'contains(access_request.spec.roles, "dev")'
  notification: {name: mattermost, recipients: [y@example.com]}
"""

USER = """
kind: user
version: v2
metadata:
  name: alice@example.com
spec:
  roles: [editor-requester]
  traits:
    team: [dev]
    logins: null
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write(tmp_path, "config.toml", CONFIG))


async def route(config: Config, inputs: RouteInputs, *, as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_route(config, inputs, as_json_output=as_json, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_files_in_teleport_shapes_become_domain_values(tmp_path: Path) -> None:
    request = request_from_file(write(tmp_path, "request.yaml", REQUEST))
    assert (request.id, request.user, request.roles) == (
        "0b6c5b84-3f5e-4a43-9d1e-9b9a7d1c2e11", "alice@example.com", ("editor", "auditor"))
    assert request.state.value == "PENDING"
    assert request.system_annotations == {"teleport.dev/notify": ("ops",)}
    assert request.created is not None and request.created.isoformat() == "2025-01-01T00:00:00+00:00"
    assert request.expiry is not None and request.expiry.isoformat() == "2025-01-01T01:00:00+00:00"
    rules = rules_from_file(write(tmp_path, "rules.yaml", RULES))
    assert [(r.name, r.notification_name) for r in rules] == [
        ("dev-team", "mattermost"), ("for-slack", "slack"), ("broken", "mattermost")]
    assert traits_from_file(write(tmp_path, "user.yaml", USER)) == (
        "alice@example.com", {"team": ("dev",), "logins": ()})


def test_a_json_list_as_tctl_prints_it_is_read_too(tmp_path: Path) -> None:
    listed = [{"kind": "access_monitoring_rule", "version": "v1", "metadata": {"name": f"r{i}"},
               "spec": {"subjects": ["access_request"], "condition": "true",
                        "notification": {"name": "mattermost", "recipients": []}}} for i in range(2)]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(listed))
    assert [r.name for r in rules_from_file(path)] == ["r0", "r1"]
    empty = tmp_path / "none.yaml"
    empty.write_text("")
    assert rules_from_file(empty) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: user\nmetadata: {name: x}\n", "expected kind 'access_request', got 'user'"),
        ("[unclosed", "not YAML or JSON"),
        ("", "no resource in the file"),
        ("kind: access_request\nmetadata: {}\nspec: {}\n", "metadata.name (the request id) is missing"),
        ("kind: access_request\nmetadata: {name: a}\nspec: {roles: editor}\n", "spec.roles: expected a list"),
        ("kind: access_request\nmetadata: {name: a}\nspec: {state: 9}\n", "unknown request state 9"),
        ("kind: access_request\nmetadata: {name: a}\nspec: {created: yesterday}\n", "not an RFC 3339 time"),
        ("kind: access_request\nmetadata: {name: a}\n---\nkind: access_request\nmetadata: {name: b}\n",
         "expected one access_request resource, found 2"),
    ],
)
def test_bad_request_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        request_from_file(write(tmp_path, "bad.yaml", text))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_documents(tmp_path / "missing.yaml")


def test_a_rule_file_with_another_kind_or_a_duplicate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resource 1: expected kind 'access_monitoring_rule'"):
        rules_from_file(write(tmp_path, "r.yaml", REQUEST))
    twice = RULES.split("---")[0] + "---" + RULES.split("---")[0]
    with pytest.raises(ConfigError, match="two rules are called 'dev-team'"):
        rules_from_file(write(tmp_path, "r2.yaml", twice))
    with pytest.raises(ConfigError, match=r"spec\.condition: expected a string"):
        rules_from_file(write(tmp_path, "r3.yaml", RULES.replace("condition: 'true'", "condition: true")))


@pytest.mark.parametrize(
    ("recipient", "usable"),
    [("a@example.com", True), ("team/channel", True), ("foo", False), ("a/b/c", False), ("Bob <b@x.y>", False)],
)
def test_recipient_shapes_are_checked_as_fetch_recipient_does(recipient: str, usable: bool) -> None:
    problem = recipient_problem(recipient)
    assert (problem == "") is usable
    if not usable:
        assert problem.startswith('Recipient must be either a user email or a channel in the format "team/channel"')


async def test_rules_traits_and_recipients_are_explained(config: Config, tmp_path: Path) -> None:
    inputs = RouteInputs(request_file=write(tmp_path, "request.yaml", REQUEST),
                         rules_file=write(tmp_path, "rules.yaml", RULES), user_file=write(tmp_path, "user.yaml", USER))
    code, out, err = await route(config, inputs)
    assert (code, err) == (0, "")
    assert "traits      logins=[], team=[dev]" in out
    assert "  matched          dev-team: team-llama/dev, lead@example.com, foo" in out
    assert "  skipped          for-slack: notification name is 'slack', not 'mattermost'" in out
    assert "  parse error      broken: " in out
    assert "routing     by access monitoring rules: dev-team" in out
    assert "recipients  2 (not resolved in Mattermost)" in out
    assert "team-llama/dev" in out and "from rule dev-team" in out
    assert "left out" in out and "foo" in out
    assert "fallback    if no rule recipient resolves in Mattermost" in out

    code, out, _ = await route(config, inputs, as_json=True)
    report: dict[str, Any] = json.loads(out)
    assert code == 0
    assert report["fallback"] is False and report["resolved"] is False
    assert [r["recipient"] for r in report["recipients"]] == ["team-llama/dev", "lead@example.com"]
    assert {r["name"]: r["verdict"] for r in report["rules"]} == {
        "broken": "parse error", "dev-team": "matched", "for-slack": "skipped"}
    assert report["left_out"] == [{"recipient": "foo", "from": ["rule dev-team"],
                                   "problem": 'Recipient must be either a user email or a channel in the format '
                                              '"team/channel" but got "foo"'}]
    assert [r["recipient"] for r in report["static_if_none_resolves"]] == [
        "reviewer@example.com", "team-llama/channel-llama", "rev2@example.com"]


async def test_without_a_matching_rule_the_static_fallback_is_explained(config: Config, tmp_path: Path) -> None:
    user = USER.replace("team: [dev]", "team: [ops]")
    inputs = RouteInputs(request_file=write(tmp_path, "request.yaml", REQUEST),
                         rules_file=write(tmp_path, "rules.yaml", RULES), user_file=write(tmp_path, "user.yaml", user))
    code, out, _ = await route(config, inputs, as_json=True)
    report = json.loads(out)
    assert code == 0
    assert report["fallback"] is True and report["fallback_reason"] == "no rule matched"
    assert [(r["recipient"], r["from"]) for r in report["recipients"]] == [
        ("reviewer@example.com", ["role_to_recipients[editor]"]),
        ("team-llama/channel-llama", ['role_to_recipients["*"] for role auditor']),
        ("rev2@example.com", ["suggested reviewer"]),
    ]
    assert [(r["recipient"], r["problem"]) for r in report["left_out"]] == [
        ("fallback", 'Recipient must be either a user email or a channel in the format "team/channel" but got '
                     '"fallback"'),
        ("not-an-email", "not an email address"),
    ]


async def test_with_no_rule_that_applies_traits_are_not_needed(config: Config, tmp_path: Path) -> None:
    inputs = RouteInputs(request_file=write(tmp_path, "request.yaml", REQUEST),
                         rules_file=write(tmp_path, "rules.yaml", RULES.split("---")[1]))
    code, out, _ = await route(config, inputs)  # no --user and no Teleport: nothing needs them
    assert code == 0
    assert "traits      (none) (not read: no rule applies)" in out
    assert "routing     static fallback: no rule applies to this plugin" in out


async def test_a_resolved_request_is_explained_with_a_note(config: Config, tmp_path: Path) -> None:
    inputs = RouteInputs(request_file=write(tmp_path, "request.yaml", REQUEST.replace("state: 1", "state: APPROVED")),
                         rules_file=write(tmp_path, "rules.yaml", ""))
    code, out, _ = await route(config, inputs)
    assert code == 0
    assert "note        the request is APPROVED" in out
    assert "routing     static fallback: no access monitoring rules" in out


async def test_what_cannot_be_read_is_one_line_and_exit_1(config: Config, tmp_path: Path) -> None:
    code, out, err = await route(config, RouteInputs(request_file=tmp_path / "missing.yaml"))
    assert (code, out) == (1, "")
    assert err.startswith("teleport-mattermost route: error: ") and "missing.yaml: cannot read" in err
    assert err.count("\n") == 1
    # The rules must come from Teleport here, and its identity file does not exist.
    code, _, err = await route(config, RouteInputs(request_file=write(tmp_path, "request.yaml", REQUEST)))
    assert code == 1 and "identity" in err


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The command line installs its own logging; put the test process's back afterwards."""
    names = ("", *QUIET_LIBRARIES)
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        close_logging()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "config.toml", CONFIG)
    request = write(tmp_path, "request.yaml", REQUEST)
    rules = write(tmp_path, "rules.yaml", RULES)
    user = write(tmp_path, "user.yaml", USER)
    code = main(["route", "-c", str(config), "--request", str(request), "--rules", str(rules), "--user", str(user),
                 "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["recipients"][0]["recipient"] == "team-llama/dev"
    with pytest.raises(SystemExit) as exited:
        main(["route", "-c", str(config), "--request", str(request), "--request-id", "x"])
    assert exited.value.code == 1
    with pytest.raises(SystemExit):
        main(["route", "-c", str(config)])
