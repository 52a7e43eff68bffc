"""The routing RPCs of the sidecar's client against the fake Auth: rule listing, GetUser traits, the two-kind watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import AccessDenied, NotFound
from sidecar.domain.model import EventOp, MonitoringRule
from sidecar.teleport.client import TeleportClient, TeleportRules, TeleportTraits
from sidecar.teleport.convert import KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST, rule_change_from_proto
from sidecar.teleport.wire import access_monitoring_rules_pb2, event_pb2, header_metadata_pb2

server_module = pytest.importorskip("fakes.teleport_auth.server")

WATCH_KINDS = (KIND_ACCESS_REQUEST, KIND_ACCESS_MONITORING_RULE)


def amr(
    name: str, *, plugin: str = "mattermost", subjects: tuple[str, ...] = ("access_request",),
    recipients: tuple[str, ...] = ("team/channel",), review: bool = False,
) -> access_monitoring_rules_pb2.AccessMonitoringRule:
    spec = access_monitoring_rules_pb2.AccessMonitoringRuleSpec(
        subjects=list(subjects),
        condition='access_request.spec.roles.contains("editor")',
        notification=access_monitoring_rules_pb2.Notification(name=plugin, recipients=list(recipients)),
    )
    if review:
        spec.automatic_review.CopyFrom(access_monitoring_rules_pb2.AutomaticReview(integration="builtin",
                                                                                    decision="APPROVED"))
    return access_monitoring_rules_pb2.AccessMonitoringRule(
        kind=KIND_ACCESS_MONITORING_RULE, version="v1", metadata=header_metadata_pb2.Metadata(name=name), spec=spec
    )


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[Any]:
    config = server_module.ServeConfig(
        state_dir=tmp_path / "state", listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
        cluster_name="fake.example.com",
    )
    async with server_module.FakeAuthServer(config) as running:
        yield running


async def connect(fake: Any, tmp_path: Path, user: str, roles: list[str]) -> TeleportClient:
    path = tmp_path / f"{user}-{'-'.join(roles)}.identity"
    fake.ca.issue_user(user, roles, timedelta(hours=1)).write_identity_file(path)
    return await TeleportClient.connect(fake.auth_addr, identity_file=path, timeout=5)


async def test_rules_are_listed_every_page_and_filtered_for_the_plugin(fake: Any, tmp_path: Path) -> None:
    async with (
        await connect(fake, tmp_path, "admin", ["admin"]) as admin_client,
        await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as plugin,
    ):
        admin = HarnessClient(admin_client)
        for index in range(5):
            await admin.create_access_monitoring_rule(amr(f"rule-{index}"))
        await admin.create_access_monitoring_rule(amr("slack", plugin="slack"))
        await admin.create_access_monitoring_rule(amr("other-subject", subjects=("someOtherKind",)))
        await admin.create_access_monitoring_rule(amr("with-review", review=True))  # R19: still routes

        listed = await plugin.list_access_monitoring_rules(
            subjects=["access_request"], notification_name="mattermost", page_size=2
        )
        assert [rule.metadata.name for rule in listed] == [*(f"rule-{i}" for i in range(5)), "with-review"]
        rules = await TeleportRules(plugin, "mattermost").list_rules()
        assert rules[0] == MonitoringRule(
            "rule-0", ("access_request",), 'access_request.spec.roles.contains("editor")', "mattermost",
            ("team/channel",), rules[0].revision,
        )
        assert all(rule.revision for rule in rules)
        assert [rule.name for rule in rules][-1] == "with-review"


async def test_listing_needs_read_and_list(fake: Any, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin-base", "amr-read-only"]) as plugin:
        with pytest.raises(AccessDenied, match="ListAccessMonitoringRulesWithFilter"):
            await TeleportRules(plugin, "mattermost").list_rules()


async def test_traits_come_from_get_user_when_the_role_may_read_users(fake: Any, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as plugin:
        assert dict(await TeleportTraits(plugin).user_traits("myuser")) == {"logins": ("myuser",)}
        assert dict(await TeleportTraits(plugin).user_traits("reviewer@example.com")) == {}
        with pytest.raises(NotFound):
            await TeleportTraits(plugin).user_traits("nobody@example.com")
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin-base"]) as plugin:
        with pytest.raises(AccessDenied, match="GetUser"):
            await TeleportTraits(plugin).user_traits("myuser")


async def test_the_watch_grants_rules_only_with_read_and_carries_puts_and_deletes(fake: Any, tmp_path: Path) -> None:
    async with (
        await connect(fake, tmp_path, "admin", ["admin"]) as admin_client,
        await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as plugin,
        await connect(fake, tmp_path, "access-plugin", ["access-plugin-base"]) as no_rules,
    ):
        denied = no_rules.watch_events(WATCH_KINDS)
        try:
            init = await anext(denied)
            assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == ["access_request"]  # R16
        finally:
            await denied.aclose()
        stream = plugin.watch_events(WATCH_KINDS)
        try:
            init = await anext(stream)
            assert init.Type == event_pb2.INIT
            assert sorted(k.Kind for k in init.WatchStatus.Spec.Kinds) == sorted(WATCH_KINDS)
            admin = HarnessClient(admin_client)
            await admin.create_access_monitoring_rule(amr("watched"))
            await admin.delete_access_monitoring_rule("watched")
            put = rule_change_from_proto(await anext(stream))
            deleted = rule_change_from_proto(await anext(stream))
        finally:
            await stream.aclose()
        assert (put.op, put.name, put.rule is not None and put.rule.recipients) == (
            EventOp.PUT, "watched", ("team/channel",))
        assert (deleted.op, deleted.name, deleted.rule) == (EventOp.DELETE, "watched", None)
