"""Resources in the fake Auth: ListResources (wire shapes, RBAC through preview/search roles, filters, paging),
resource access requests, the admin face, the seed format, and the predicate language subset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
import pytest

from fakes.teleport_auth.errors import AccessDenied, BadParameter
from fakes.teleport_auth.predicate import compile_predicate, go_unquote
from fakes.teleport_auth.rbac import Caller
from fakes.teleport_auth.seed import SeedError, parse_seed
from fakes.teleport_auth.seed_resources import ResourceDef
from fakes.teleport_auth.server import FakeAuthServer
from fakes.teleport_auth.state import AuthState
from sidecar.teleport.wire import authservice_pb2, types_pb2

from .conftest import CLUSTER, Stubs
from .test_grpc import expect_code

Connect = Callable[..., Stubs]

NODE_DB = "5e0c8a7e-2c3b-4f41-9a8e-0d9b7c1f4a21"
NODE_WEB = "9b1f3d22-6a0e-4c7b-8f55-3e2d1c0b9a88"
ORDERS = "orders-rds-us-east-1-123456789012"
EKS = "prod-eks-us-east-1-123456789012"


def listing(
    resource_type: str, limit: int = 100, *, preview: bool = True, search: bool = False, **fields: Any
) -> authservice_pb2.ListResourcesRequest:
    return authservice_pb2.ListResourcesRequest(
        ResourceType=resource_type, Limit=limit, UsePreviewAsRoles=preview, UseSearchAsRoles=search, **fields
    )


def names(page: authservice_pb2.ListResourcesResponse) -> list[str]:
    out = []
    for item in page.Resources:
        which = item.WhichOneof("resource")
        assert which is not None
        out.append(getattr(item, which).Metadata.Name)
    return out


def resource_request(*ids: str, roles: tuple[str, ...] = ()) -> types_pb2.AccessRequestV3:
    req = types_pb2.AccessRequestV3()
    req.Spec.Roles.extend(roles)
    for rid in ids:
        _, cluster, kind, name, *sub = rid.split("/", 4)
        req.Spec.RequestedResourceIDs.add(ClusterName=cluster, Kind=kind, Name=name, SubResourceName="".join(sub))
    return req


# ----------------------------------------------------------------------------------------------- wire shapes


async def test_each_listing_type_answers_with_teleports_shapes(connect: Connect) -> None:
    plugin = connect("access-plugin")
    nodes = await plugin.auth.ListResources(listing("node"))
    assert names(nodes) == [NODE_DB, NODE_WEB] and nodes.NextKey == ""
    node = nodes.Resources[0].Node
    assert (node.Kind, node.SubKind, node.Version) == ("node", "teleport", "v2")
    assert (node.Spec.Hostname, node.Spec.Addr) == ("db-1.prod.internal", "10.0.0.5:3022")
    assert dict(node.Metadata.Labels) == {"env": "prod", "team": "data"}

    apps = await plugin.auth.ListResources(listing("app_server"))
    assert names(apps) == ["0oa1salesforce", "grafana"]
    server = apps.Resources[1].AppServer
    assert (server.Kind, server.Version, server.Spec.App.Kind, server.Spec.App.Version) == (
        "app_server", "v3", "app", "v3",
    )
    assert server.Spec.App.Metadata.Description == "Grafana dashboards"
    assert server.Spec.App.Spec.PublicAddr == "grafana.teleport.example.com" and server.Spec.HostID

    dbs = await plugin.auth.ListResources(listing("db_server"))
    database = dbs.Resources[0].DatabaseServer.Spec.Database
    assert dbs.Resources[0].DatabaseServer.Kind == "db_server"
    assert (database.Kind, database.Spec.Protocol) == ("db", "postgres")
    assert database.Metadata.Labels["teleport.internal/discovered-name"] == "orders"

    kubes = await plugin.auth.ListResources(listing("kube_server"))
    cluster = kubes.Resources[0].KubernetesServer.Spec.Cluster
    assert (kubes.Resources[0].KubernetesServer.Kind, cluster.Kind, cluster.Metadata.Name) == (
        "kube_server", "kube_cluster", EKS,
    )


async def test_types_without_resources_list_empty_and_unknown_types_are_refused(connect: Connect) -> None:
    plugin = connect("access-plugin")
    for empty in ("user_group", "identity_center_account", "windows_desktop"):
        assert not (await plugin.auth.ListResources(listing(empty))).Resources
    refused = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, plugin.auth.ListResources(listing("toaster")))
    assert refused.details() == 'resource type "toaster" is not supported by ListResources'
    refused = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, plugin.auth.ListResources(listing("node", 0)))
    assert refused.details() == "nonpositive parameter limit"


# ----------------------------------------------------------------------------------------------- RBAC


async def test_the_plugin_sees_resources_only_through_its_preview_roles(connect: Connect) -> None:
    plugin = connect("access-plugin")
    refused = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plugin.auth.ListResources(listing("node", preview=False))
    )
    assert refused.details() == 'access denied to perform action "list" on "node"'
    refused = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plugin.auth.ListResources(listing("db_server", preview=False))
    )
    assert refused.details() == 'access denied to perform action "list" on "db_server"'
    assert names(await plugin.auth.ListResources(listing("node"))) == [NODE_DB, NODE_WEB]
    # The building block without preview_as_roles never sees them, even when asking to preview.
    base = connect("access-plugin", ("access-plugin-base",))
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, base.auth.ListResources(listing("node")))


LABEL_SEED = """
[roles.staging-lister]
rules = [{ resources = ["node"], verbs = ["list"] }]
node_labels = { env = "staging" }
[roles.glob-lister]
rules = [{ resources = ["node_server_never", "node"], verbs = ["list"] }]
node_labels = { team = ["da*", "^ops$"] }
[roles.searcher]
search_as_roles = ["all-nodes"]
[roles.all-nodes]
rules = [{ resources = ["node"], verbs = ["list"] }]
node_labels = { "*" = "*" }
[[resources]]
kind = "node"
name = "a"
hostname = "a.internal"
labels = { env = "staging", team = "data" }
[[resources]]
kind = "node"
name = "b"
hostname = "b.internal"
labels = { env = "prod", team = "ops" }
[[resources]]
kind = "node"
name = "c"
hostname = "c.internal"
labels = { env = "prod", team = "opsx" }
"""


def test_label_matchers_and_search_roles_decide_what_is_visible() -> None:
    state = AuthState(parse_seed(LABEL_SEED, "labels.toml"))

    def visible(roles: tuple[str, ...], *, search: bool = False) -> list[str]:
        page = state.list_resources(Caller("u", roles, CLUSTER), listing("node", preview=False, search=search))
        return [r.name for r in page.resources]

    assert visible(("staging-lister",)) == ["a"]
    assert visible(("glob-lister",)) == ["a", "b"]  # "da*" matches data, "^ops$" matches ops only
    assert visible(("staging-lister", "glob-lister")) == ["a", "b"]
    assert visible(("searcher",), search=True) == ["a", "b", "c"]
    with pytest.raises(AccessDenied, match='action "list" on "node"'):
        visible(("searcher",))


# ----------------------------------------------------------------------------------------------- filters, paging


async def test_the_go_plugins_name_predicate_labels_and_keywords_filter(connect: Connect) -> None:
    plugin = connect("access-plugin")
    predicate = f'resource.metadata.name == "{NODE_WEB}" || resource.metadata.name == "nope"'
    assert names(await plugin.auth.ListResources(listing("node", 2, PredicateExpression=predicate))) == [NODE_WEB]
    assert names(await plugin.auth.ListResources(listing("node", Labels={"env": "prod"}))) == [NODE_DB]
    assert names(await plugin.auth.ListResources(listing("app_server", SearchKeywords=["GRAFANA"]))) == ["grafana"]
    okta = 'labels["teleport.dev/origin"] == "okta"'
    assert names(await plugin.auth.ListResources(listing("app_server", PredicateExpression=okta))) == ["0oa1salesforce"]
    refused = await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        plugin.auth.ListResources(listing("node", PredicateExpression='resource.metadata.name = "x"')),
    )
    assert "failed to parse predicate expression" in refused.details()


async def test_pages_follow_name_order_with_inclusive_start_keys(server: FakeAuthServer, connect: Connect) -> None:
    for index in range(5):
        server.state.inventory.put(ResourceDef(kind="node", name=f"n{index}", hostname=f"h{index}"))
    plugin = connect("access-plugin")
    first = await plugin.auth.ListResources(listing("node", 3, NeedTotalCount=True))
    assert names(first) == [NODE_DB, NODE_WEB, "n0"] and first.NextKey == "n1" and first.TotalCount == 7
    second = await plugin.auth.ListResources(listing("node", 3, StartKey=first.NextKey))
    assert names(second) == ["n1", "n2", "n3"] and second.NextKey == "n4" and second.TotalCount == 0
    last = await plugin.auth.ListResources(listing("node", 3, StartKey=second.NextKey))
    assert names(last) == ["n4"] and last.NextKey == ""


# ----------------------------------------------------------------------------------------------- resource requests


async def test_resource_requests_get_roles_from_search_as_roles(connect: Connect) -> None:
    requester = connect("requester@example.com")
    ids = (f"/{CLUSTER}/node/{NODE_DB}", f"/{CLUSTER}/db/{ORDERS}")
    created = await requester.auth.CreateAccessRequestV2(resource_request(*ids))
    spec = created.Spec
    assert list(spec.Roles) == ["resource-access"]
    assert [(r.ClusterName, r.Kind, r.Name) for r in spec.RequestedResourceIDs] == [
        (CLUSTER, "node", NODE_DB), (CLUSTER, "db", ORDERS),
    ]
    assert [(t.Approve, t.Deny) for t in spec.Thresholds] == [(1, 1)]
    assert list(spec.RoleThresholdMapping["resource-access"].Sets[0].Indexes) == [0]
    # The plugin reads the same ids back.
    [listed] = (
        await connect("access-plugin").auth.ListAccessRequests(
            authservice_pb2.ListAccessRequestsRequest(Filter=types_pb2.AccessRequestFilter(ID=created.Metadata.Name))
        )
    ).AccessRequests
    assert listed.Spec.RequestedResourceIDs == spec.RequestedResourceIDs


async def test_resource_requests_are_validated(connect: Connect) -> None:
    requester, myuser = connect("requester@example.com"), connect("myuser")
    cases = [
        (grpc.StatusCode.NOT_FOUND, 'node "nope" is not found', resource_request(f"/{CLUSTER}/node/nope")),
        (grpc.StatusCode.NOT_FOUND, 'remote cluster "leaf" is not found', resource_request(f"/leaf/node/{NODE_DB}")),
        (grpc.StatusCode.INVALID_ARGUMENT, 'resource kind "windows_desktop" is not supported by the fake Auth',
         resource_request(f"/{CLUSTER}/windows_desktop/dc1")),
        (grpc.StatusCode.INVALID_ARGUMENT, 'resource kind "node" has no sub-resources',
         resource_request(f"/{CLUSTER}/node/{NODE_DB}/x")),
    ]
    for code, message, request in cases:
        refused = await expect_code(code, requester.auth.CreateAccessRequestV2(request))
        assert refused.details() == message
    # A requester whose roles have no search_as_roles cannot make resource requests.
    bare = connect("bare", ("editor-reviewer",))
    only_node = resource_request(f"/{CLUSTER}/node/{NODE_DB}")
    refused = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, bare.auth.CreateAccessRequestV2(only_node))
    assert refused.details().startswith('no roles configured in the "search_as_roles" for this user')
    # Explicit roles must reach the resources.
    refused = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        myuser.auth.CreateAccessRequestV2(resource_request(f"/{CLUSTER}/node/{NODE_DB}", roles=("editor",))),
    )
    assert refused.details() == f'user "myuser" can not request access to node "{NODE_DB}"'


async def test_request_kind_and_assume_start_are_kept(connect: Connect) -> None:
    request = resource_request(f"/{CLUSTER}/kube_cluster/{EKS}")
    request.Spec.RequestKind = types_pb2.LONG_TERM
    request.Spec.AssumeStartTime.seconds = 2_000_000_000
    created = await connect("requester@example.com").auth.CreateAccessRequestV2(request)
    assert created.Spec.RequestKind == types_pb2.LONG_TERM and created.Spec.AssumeStartTime.seconds == 2_000_000_000


async def test_two_approval_roles_carry_their_threshold(connect: Connect) -> None:
    created = await connect("requester@example.com").auth.CreateAccessRequestV2(
        resource_request(roles=("dba",))
    )
    assert [(t.Name, t.Approve, t.Deny) for t in created.Spec.Thresholds] == [("two-approvals", 2, 1)]
    assert created.Spec.MaxDuration.seconds > created.Spec.Created.seconds


# ----------------------------------------------------------------------------------------------- admin face


async def test_admin_api_adds_and_removes_resources(server: FakeAuthServer, connect: Connect) -> None:
    plugin = connect("access-plugin")
    body = {"kind": "node", "name": "n-new", "hostname": "new.internal", "labels": {"env": "dev"}}
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        async with http.post("/resources", json=body) as resp:
            assert resp.status == 200 and await resp.json() == body
        assert "n-new" in names(await plugin.auth.ListResources(listing("node")))
        async with http.get("/resources") as resp:
            listed = {(r["kind"], r["name"]): r for r in await resp.json()}
            assert listed["db", ORDERS]["protocol"] == "postgres" and listed["node", "n-new"] == body
        async with http.post("/resources", json={"kind": "node", "name": "x"}) as resp:
            assert resp.status == 400 and "needs its hostname" in (await resp.json())["error"]
        async with http.post("/resources", json={"kind": "printer", "name": "x"}) as resp:
            assert resp.status == 400
        async with http.delete("/resources/node/n-new") as resp:
            assert await resp.json() == {"deleted": "node/n-new"}
        async with http.delete("/resources/node/n-new") as resp:
            assert resp.status == 404
    assert "n-new" not in names(await plugin.auth.ListResources(listing("node")))


# ----------------------------------------------------------------------------------------------- seed and predicate


def test_seed_resources_and_role_fields_are_checked() -> None:
    seed = parse_seed(
        """
[roles.r]
search_as_roles = ["r"]
node_labels = { env = ["a", "b"], team = "x" }
[[resources]]
kind = "app"
name = "a1"
uri = "http://x"
labels = { env = "a" }
""",
        "s.toml",
    )
    assert seed.roles["r"].labels == {"node": {"env": ("a", "b"), "team": ("x",)}}
    assert seed.resources == (ResourceDef(kind="app", name="a1", uri="http://x", labels={"env": "a"}),)
    bad = [
        ('[[resources]]\nkind = "node"\nname = "n"\n', "needs its hostname"),
        ('[[resources]]\nkind = "app"\nname = "a"\naddr = "x"\n', "unknown key(s) addr"),
        ('[[resources]]\nkind = "db"\nname = "a/b"\n', "without '/'"),
        ('[[resources]]\nkind = "db"\nname = "d"\n[[resources]]\nkind = "db"\nname = "d"\n', "defined twice"),
        ('[roles.r]\nnode_labels = { env = 3 }\n', "expected a string or a list of strings"),
        ('[roles.r]\npreview_as_roles = ["ghost"]\n', "undefined role 'ghost'"),
        ('[settings]\nadmin_action_mfa = "yes"\n', "expected true or false"),
    ]
    for text, message in bad:
        with pytest.raises(SeedError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_seed(text, "s.toml")


def test_predicate_subset() -> None:
    node = ResourceDef(kind="node", name="n1", hostname="db-1", description="Primary", labels={"env": "prod"})
    cases = {
        'resource.metadata.name == "n1"': True,
        'name != "n1"': False,
        'labels["env"] == "prod" && resource.spec.hostname == "db-1"': True,
        '!(labels["missing"] == "x") || false_field_never_parsed': None,
        'exists(labels["env"]) && !exists(labels["nope"])': True,
        'hasPrefix(resource.spec.hostname, "db-")': True,
        'search("PRIM", "db")': True,
        'equals(resource.metadata.description, "Primary")': True,
        '`n1` == name': True,
    }
    for expression, expected in cases.items():
        if expected is None:
            with pytest.raises(BadParameter, match="unknown field"):
                compile_predicate(expression)
        else:
            assert compile_predicate(expression)(node) is expected, expression
    assert compile_predicate("  ")(node) is True
    for broken in ('name == "x', "name", 'labels[env] == "x"', "(name", 'search(name == "x")', 'nope("x")'):
        with pytest.raises(BadParameter):
            compile_predicate(broken)
    assert go_unquote(r'"a\"b\\c\x41\u00e9\101\t"') == 'a"b\\cAéA\t'
    with pytest.raises(BadParameter):
        go_unquote(r'"\xZZ"')
