"""Friendly names of requested resources (sidecar/teleport/inventory.py) against the fake Auth, and the conversion
of resource requests and their thresholds into the domain AccessRequest."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from fakes.teleport_auth.seed_resources import ResourceDef
from fakes.teleport_auth.server import FakeAuthServer, ServeConfig
from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import TransientError
from sidecar.domain.model import AccessRequest, RequestState
from sidecar.domain.ports import ResourceNames
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import access_request_from_proto, access_request_to_proto, approvals_required
from sidecar.teleport.inventory import (
    NAMES_PER_CALL,
    ListResourcesCall,
    TeleportResourceNames,
    friendly_name,
    go_quote,
    name_predicate,
)
from sidecar.teleport.wire import authservice_pb2, types_pb2

CLUSTER = "fake.example.com"
NODE_DB = "5e0c8a7e-2c3b-4f41-9a8e-0d9b7c1f4a21"
NODE_WEB = "9b1f3d22-6a0e-4c7b-8f55-3e2d1c0b9a88"


def rid(kind: str, name: str, cluster: str = CLUSTER) -> str:
    return f"/{cluster}/{kind}/{name}"


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeAuthServer]:
    config = ServeConfig(
        state_dir=tmp_path / "state", listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
        cluster_name=CLUSTER,
    )
    async with FakeAuthServer(config) as running:
        yield running


async def connect(fake: FakeAuthServer, tmp_path: Path, user: str, roles: list[str]) -> TeleportClient:
    path = tmp_path / f"{user}-{'-'.join(roles)}.identity"
    fake.ca.issue_user(user, roles, timedelta(hours=1)).write_identity_file(path)
    return await TeleportClient.connect(fake.auth_addr, identity_file=path, timeout=5)


class CountingLister:
    """ListResourcesCall that counts the calls by listing type."""

    def __init__(self, client: TeleportClient) -> None:
        self._inner = ListResourcesCall(client)
        self.calls: list[str] = []

    async def list_resources(
        self, request: authservice_pb2.ListResourcesRequest
    ) -> authservice_pb2.ListResourcesResponse:
        self.calls.append(request.ResourceType)
        return await self._inner.list_resources(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_friendly_names_of_every_kind(fake: FakeAuthServer, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        names: ResourceNames = TeleportResourceNames(ListResourcesCall(client), cluster_name=CLUSTER)
        ids = [
            rid("node", NODE_DB), rid("node", NODE_WEB), rid("app", "0oa1salesforce"), rid("app", "grafana"),
            rid("db", "orders-rds-us-east-1-123456789012"), rid("kube_cluster", "prod-eks-us-east-1-123456789012"),
            rid("node", "missing"), rid("node", NODE_DB, "leaf.example.com"), rid("kube_cluster", "prod-eks") + "/ns",
            rid("windows_desktop", "dc1"), "not-an-id", rid("node", NODE_DB),
        ]
        assert await names.friendly_names(ids) == {
            rid("node", NODE_DB): "db-1.prod.internal",
            rid("node", NODE_WEB): "web-1.staging.internal",
            rid("app", "0oa1salesforce"): "Salesforce",
            rid("db", "orders-rds-us-east-1-123456789012"): "orders",
            rid("kube_cluster", "prod-eks-us-east-1-123456789012"): "prod-eks",
        }
        # Without a cluster name, ids of any cluster are looked up here, as the Go plugin does.
        anywhere = TeleportResourceNames(ListResourcesCall(client))
        assert await anywhere.friendly_names([rid("node", NODE_DB, "leaf.example.com")]) == {
            rid("node", NODE_DB, "leaf.example.com"): "db-1.prod.internal"
        }
        assert await names.friendly_names([]) == {}


async def test_names_the_plugin_may_not_list_are_absent_not_errors(
    fake: FakeAuthServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin-base"]) as client:
        names = TeleportResourceNames(ListResourcesCall(client))
        with caplog.at_level(logging.WARNING):
            assert await names.friendly_names([rid("node", NODE_DB), rid("app", "0oa1salesforce")]) == {}
        assert not caplog.records


async def test_answers_and_absences_are_kept_for_the_ttl(fake: FakeAuthServer, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        lister, clock = CountingLister(client), Clock()
        names = TeleportResourceNames(lister, ttl=30, clock=clock)
        ids = [rid("node", NODE_DB), rid("node", "missing"), rid("app", "grafana")]
        expected = {rid("node", NODE_DB): "db-1.prod.internal"}
        assert await names.friendly_names(ids) == expected
        assert sorted(lister.calls) == ["app_server", "node"]
        fake.state.inventory.put(ResourceDef(kind="node", name="missing", hostname="late.internal"))
        clock.now += 29
        assert await names.friendly_names(ids) == expected and len(lister.calls) == 2
        clock.now += 2
        assert await names.friendly_names(ids) == {**expected, rid("node", "missing"): "late.internal"}
        assert len(lister.calls) == 4
        uncached = TeleportResourceNames(lister, ttl=0, clock=clock)
        await uncached.friendly_names(ids[:1])
        await uncached.friendly_names(ids[:1])
        assert len(lister.calls) == 6


async def test_many_names_are_asked_in_chunks_and_every_page_is_read(fake: FakeAuthServer, tmp_path: Path) -> None:
    wanted = [f"node-{i:03}" for i in range(2 * NAMES_PER_CALL + 7)]
    for name in wanted:
        fake.state.inventory.put(ResourceDef(kind="node", name=name, hostname=f"{name}.internal"))
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        lister = CountingLister(client)
        found = await TeleportResourceNames(lister).friendly_names([rid("node", n) for n in wanted])
        assert found == {rid("node", n): f"{n}.internal" for n in wanted}
        assert lister.calls == ["node"] * 3


async def test_transient_failures_raise_and_are_not_kept(fake: FakeAuthServer, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        names = TeleportResourceNames(ListResourcesCall(client))
        fake.faults.fail_next("ListResources", 1, grpc.StatusCode.UNAVAILABLE, "busy")
        with pytest.raises(TransientError, match="ListResources: UNAVAILABLE: busy"):
            await names.friendly_names([rid("node", NODE_DB)])
        assert await names.friendly_names([rid("node", NODE_DB)]) == {rid("node", NODE_DB): "db-1.prod.internal"}


async def test_other_refusals_leave_the_kind_out_with_one_warning(
    fake: FakeAuthServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await connect(fake, tmp_path, "access-plugin", ["access-plugin"]) as client:
        names = TeleportResourceNames(ListResourcesCall(client), ttl=0)
        fake.faults.fail_next("ListResources", 2, grpc.StatusCode.INVALID_ARGUMENT, "no")
        with caplog.at_level(logging.WARNING):
            assert await names.friendly_names([rid("node", NODE_DB)]) == {}
            assert await names.friendly_names([rid("node", NODE_DB)]) == {}
        assert [r.getMessage() for r in caplog.records] == ["Cannot look up resource names"]


def test_go_quoting_and_the_name_predicate() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\there\x00é\u2028") == '"tab\\there\\x00é\\u2028"'
    assert name_predicate(["a", "b c"]) == 'resource.metadata.name == "a" || resource.metadata.name == "b c"'


def test_friendly_name_rules() -> None:
    okta = authservice_pb2.PaginatedResource()
    app = okta.AppServer.Spec.App
    app.Metadata.Name, app.Metadata.Description = "0oa9", "Payroll (Okta)"
    app.Metadata.Labels["teleport.dev/origin"] = "okta"
    assert friendly_name(okta) == ("0oa9", "Payroll (Okta)")  # no Okta name label: the description
    app.Metadata.Labels["teleport.internal/okta-group-name"] = "Payroll admins"
    assert friendly_name(okta) == ("0oa9", "Payroll admins")
    node = authservice_pb2.PaginatedResource()
    node.Node.Metadata.Name, node.Node.Spec.Hostname = "same", "same"
    assert friendly_name(node) == ("same", "")  # a name that adds nothing is no friendly name
    database = authservice_pb2.PaginatedResource()
    database.DatabaseServer.Spec.Database.Metadata.Name = "plain-db"
    assert friendly_name(database) == ("plain-db", "")
    assert friendly_name(authservice_pb2.PaginatedResource()) == ("", "")


# ----------------------------------------------------------------------------------------------- conversion


async def test_resource_requests_and_thresholds_become_domain_values(fake: FakeAuthServer, tmp_path: Path) -> None:
    async with await connect(fake, tmp_path, "requester@example.com", ["editor-requester", "dba-requester"]) as client:
        harness = HarnessClient(client)
        resources = await harness.create(
            resources=[rid("node", NODE_DB), rid("kube_cluster", "prod-eks-us-east-1-123456789012") + "/default"],
            long_term=True,
        )
        dba = await harness.create(["dba"], reason="migrate")
    converted = access_request_from_proto(resources)
    assert converted.resources == (
        rid("node", NODE_DB), rid("kube_cluster", "prod-eks-us-east-1-123456789012") + "/default",
    )
    assert converted.roles == ("resource-access",) and converted.approvals_required == 1 and converted.long_term
    two = access_request_from_proto(dba)
    assert two.approvals_required == 2 and not two.long_term
    assert two.max_duration == dba.Spec.MaxDuration.ToDatetime(tzinfo=UTC) and two.assume_start_time is None


def thresholds(*rows: tuple[int, str], mapping: dict[str, list[list[int]]]) -> types_pb2.AccessRequestSpecV3:
    spec = types_pb2.AccessRequestSpecV3()
    for approve, flt in rows:
        spec.Thresholds.add(Approve=approve, Deny=1, Filter=flt)
    for role, sets in mapping.items():
        for indexes in sets:
            spec.RoleThresholdMapping[role].Sets.add(Indexes=indexes)
    return spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (thresholds((1, ""), mapping={"a": [[0]]}), 1),
        # Thresholds of a set are alternatives (the easiest counts); sets and roles must all pass (the hardest).
        (thresholds((3, ""), (2, ""), mapping={"a": [[0, 1]]}), 2),
        (thresholds((1, ""), (2, ""), mapping={"a": [[0], [1]]}), 2),
        (thresholds((1, ""), (3, ""), mapping={"a": [[0]], "b": [[1]]}), 3),
        (thresholds((0, ""), (2, ""), mapping={"a": [[0, 1]]}), 2),
        (thresholds((0, ""), mapping={"a": [[0]]}), None),
        (thresholds((2, 'contains(reviewer.roles, "x")'), mapping={"a": [[0]]}), None),
        (thresholds((1, ""), mapping={"a": [[5]]}), None),
        (thresholds((1, ""), mapping={}), None),
        (types_pb2.AccessRequestSpecV3(), None),
    ],
)
def test_approvals_required(spec: types_pb2.AccessRequestSpecV3, expected: int | None) -> None:
    assert approvals_required(spec) == expected


def test_new_fields_survive_a_round_trip() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    original = AccessRequest(
        id="r", user="u", roles=("a", "b"), state=RequestState.PENDING, resources=("/c/node/n",),
        approvals_required=2, max_duration=at, assume_start_time=at - timedelta(hours=1), long_term=True,
    )
    wire = access_request_to_proto(original)
    assert wire.Spec.RequestKind == types_pb2.LONG_TERM and len(wire.Spec.Thresholds) == 1
    assert access_request_from_proto(wire) == original
    plain = AccessRequest(id="p", user="u", roles=("a",), state=RequestState.PENDING)
    assert access_request_from_proto(access_request_to_proto(plain)) == plain
