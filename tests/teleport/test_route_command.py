"""`teleport-mattermost route` reading what no file gives from the fake Auth: the request, the rules, the traits."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.teleport_harness import HarnessClient
from sidecar.config import load_config
from sidecar.route.command import RouteInputs, run_route
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.wire import access_monitoring_rules_pb2, header_metadata_pb2, types_pb2

server_module = pytest.importorskip("fakes.teleport_auth.server")

@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[Any]:
    config = server_module.ServeConfig(
        state_dir=tmp_path / "state", listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
        cluster_name="fake.example.com",
    )
    async with server_module.FakeAuthServer(config) as running:
        yield running


def identity(fake: Any, tmp_path: Path, user: str, roles: list[str]) -> Path:
    path = tmp_path / f"{user}-{'-'.join(roles)}.identity"
    fake.ca.issue_user(user, roles, timedelta(hours=1)).write_identity_file(path)
    return path


def config_for(fake: Any, tmp_path: Path, plugin_identity: Path) -> Any:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[teleport]\naddr = "{fake.auth_addr}"\nidentity = "{plugin_identity}"\n\n'
        '[mattermost]\nurl = "https://mattermost.example.com"\ntoken = "not-a-real-token"\n\n'
        '[role_to_recipients]\n"*" = ["myteam/town-square"]\n'
    )
    return load_config(path)


async def seed(fake: Any, tmp_path: Path) -> str:
    """A request by myuser (traits: logins=[myuser]) and two rules, as the administrator; the request's id."""
    async with await TeleportClient.connect(fake.auth_addr, identity_file=identity(fake, tmp_path, "admin", ["admin"]),
                                            timeout=5) as client:
        admin = HarnessClient(client)
        created = await admin.create_access_request(types_pb2.AccessRequestV3(
            Metadata=types_pb2.Metadata(Name="0b6c5b84-3f5e-4a43-9d1e-9b9a7d1c2e42"),
            Spec=types_pb2.AccessRequestSpecV3(User="myuser", Roles=["editor"], SuggestedReviewers=["x@example.com"]),
        ))
        for name, condition in (("by-login", 'user.traits["logins"].contains("myuser")'), ("never", "false")):
            await admin.create_access_monitoring_rule(access_monitoring_rules_pb2.AccessMonitoringRule(
                kind="access_monitoring_rule", version="v1", metadata=header_metadata_pb2.Metadata(name=name),
                spec=access_monitoring_rules_pb2.AccessMonitoringRuleSpec(
                    subjects=["access_request"], condition=condition,
                    notification=access_monitoring_rules_pb2.Notification(name="mattermost",
                                                                           recipients=["reviewer@example.com"]),
                ),
            ))
        return created.Metadata.Name


async def route(config: Any, inputs: RouteInputs) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_route(config, inputs, as_json_output=True, out=out, err=err)
    return code, json.loads(out.getvalue()) if code == 0 else {}, err.getvalue()


async def test_everything_from_teleport(fake: Any, tmp_path: Path) -> None:
    request_id = await seed(fake, tmp_path)
    config = config_for(fake, tmp_path, identity(fake, tmp_path, "access-plugin", ["access-plugin"]))
    code, report, err = await route(config, RouteInputs(request_id=request_id))
    assert (code, err) == (0, "")
    assert report["request"]["user"] == "myuser" and report["request"]["source"] == "Teleport"
    assert report["traits"] == {"values": {"logins": ["myuser"]}, "source": "Teleport"}
    assert {r["name"]: r["verdict"] for r in report["rules"]} == {"by-login": "matched", "never": "not matched"}
    assert report["fallback"] is False
    assert report["recipients"] == [{"recipient": "reviewer@example.com", "from": ["rule by-login"]}]


async def test_without_the_permissions_the_plugin_would_lack_the_report_says_so(fake: Any, tmp_path: Path) -> None:
    request_id = await seed(fake, tmp_path)
    no_users = config_for(fake, tmp_path, identity(fake, tmp_path, "access-plugin", ["access-plugin-base",
                                                                                     "amr-reader"]))
    code, report, _ = await route(no_users, RouteInputs(request_id=request_id))
    assert code == 0
    assert report["traits"]["source"].startswith("not read: GetUser: PERMISSION_DENIED")
    assert report["fallback"] is True and report["fallback_reason"] == "no rule matched"
    assert any("Missing permissions to read user.traits" in note for note in report["notes"])
    no_rules = config_for(fake, tmp_path, identity(fake, tmp_path, "access-plugin", ["access-plugin-base"]))
    code, report, _ = await route(no_rules, RouteInputs(request_id=request_id))
    assert code == 0
    assert report["rules"] == [] and report["fallback_reason"] == "no access monitoring rules"
    assert [r["recipient"] for r in report["recipients"]] == ["myteam/town-square", "x@example.com"]
    assert any("cannot list access monitoring rules" in note for note in report["notes"])


async def test_an_unknown_request_or_an_unreachable_teleport_is_exit_1(fake: Any, tmp_path: Path) -> None:
    config = config_for(fake, tmp_path, identity(fake, tmp_path, "access-plugin", ["access-plugin"]))
    code, _, err = await route(config, RouteInputs(request_id="no-such-request"))
    assert code == 1 and "access request no-such-request not found" in err
    unreachable = config_for(fake, tmp_path, identity(fake, tmp_path, "access-plugin", ["access-plugin"]))
    unreachable = dataclasses.replace(unreachable, teleport=dataclasses.replace(unreachable.teleport,
                                                                               addr="127.0.0.1:1"))
    code, _, err = await route(unreachable, RouteInputs(request_id="any"))
    assert code == 1 and err.startswith("teleport-mattermost route: error: ") and err.count("\n") == 1
