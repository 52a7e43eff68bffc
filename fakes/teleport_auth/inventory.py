"""The cluster's nodes, apps, databases and Kubernetes clusters, and `ListResources` over them.

ListResources takes the listing type, not the resource-ID kind: `node`, `app_server` (apps), `db_server`
(databases), `kube_server` (Kubernetes clusters); each item is a PaginatedResource holding the server, whose
metadata name is the resource's (a ServerV2 for a node; an AppServerV3, DatabaseServerV3 or KubernetesServerV3
wrapping the AppV3, DatabaseV3 or KubernetesClusterV3 otherwise, as Teleport's agents heartbeat them).

RBAC, as Teleport's ServerWithRoles: the caller's roles, plus their `preview_as_roles` with UsePreviewAsRoles and
their `search_as_roles` with UseSearchAsRoles, must grant `list` (and `read`, except for nodes) on the kind (a rule
naming the resource-ID kind or the listing type); otherwise PermissionDenied. Then each resource is visible only
when one of those roles' label matchers for its kind matches its labels. Filters: Labels (every pair equal),
PredicateExpression (predicate.py), SearchKeywords (every word in the name, hostname, description or a label value,
case-insensitive). Items come in name order: StartKey is the name of the first item to return, NextKey the name
of the next one ("" at the end). Limit must be positive ("nonpositive parameter limit"). Types the fake has no
resources of (`windows_desktop`, `user_group`, `identity_center_account`) list as empty; SortBy is not read.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sidecar.teleport.wire import authservice_pb2, types_pb2

from .errors import AccessDenied, BadParameter, NotFound
from .predicate import compile_predicate
from .rbac import Caller, Policy
from .seed_resources import KIND_KEYS, ResourceDef

#: Listing type → resource-ID kind, and back.
LISTING_TYPES = {"node": "node", "app_server": "app", "db_server": "db", "kube_server": "kube_cluster"}
KIND_TO_TYPE = {kind: listing for listing, kind in LISTING_TYPES.items()}
#: Real listing types the fake has nothing of: an empty page rather than an error.
EMPTY_TYPES = frozenset({"windows_desktop", "user_group", "identity_center_account", "git_server"})
AGENT_VERSION = "18.0.0"


@dataclass(frozen=True)
class Page:
    """One ListResources answer."""

    resources: list[ResourceDef]
    next_key: str
    total: int


class Inventory:
    """Resources by kind and name, kept in name order per kind."""

    def __init__(self, resources: Iterable[ResourceDef] = ()) -> None:
        self._by_kind: dict[str, dict[str, ResourceDef]] = {kind: {} for kind in KIND_KEYS}
        self._names: dict[str, list[str]] = {kind: [] for kind in KIND_KEYS}
        for resource in resources:
            self.put(resource)

    def put(self, resource: ResourceDef) -> None:
        """Add or replace a resource."""
        names = self._names[resource.kind]
        if resource.name not in self._by_kind[resource.kind]:
            bisect.insort(names, resource.name)
        self._by_kind[resource.kind][resource.name] = resource

    def remove(self, kind: str, name: str) -> None:
        """Delete a resource; NotFound when there is none."""
        self.get(kind, name)
        del self._by_kind[kind][name]
        self._names[kind].remove(name)

    def get(self, kind: str, name: str) -> ResourceDef:
        """A resource by resource-ID kind and name; NotFound when there is none."""
        found = self._by_kind.get(kind, {}).get(name)
        if found is None:
            raise NotFound(f'{kind} "{name}" is not found')
        return found

    def find(self, kind: str, name: str) -> ResourceDef | None:
        """A resource, or None."""
        return self._by_kind.get(kind, {}).get(name)

    def all(self) -> list[ResourceDef]:
        """Every resource, by kind then name."""
        return [self._by_kind[kind][name] for kind in KIND_KEYS for name in self._names[kind]]

    def list_page(self, policy: Policy, caller: Caller, request: authservice_pb2.ListResourcesRequest) -> Page:
        """ListResources' RBAC, filters and paging."""
        listing = request.ResourceType
        if request.Limit <= 0:
            raise BadParameter("nonpositive parameter limit")
        if listing in EMPTY_TYPES:
            return Page([], "", 0)
        kind = LISTING_TYPES.get(listing)
        if kind is None:
            raise BadParameter(f'resource type "{listing}" is not supported by ListResources')
        roles = policy.effective_roles(caller, preview=request.UsePreviewAsRoles, search=request.UseSearchAsRoles)
        for verb in ("list",) if kind == "node" else ("list", "read"):
            if not (policy.roles_allow(roles, kind, verb) or policy.roles_allow(roles, listing, verb)):
                raise AccessDenied(f'access denied to perform action "{verb}" on "{listing}"')
        predicate = compile_predicate(request.PredicateExpression)
        wanted = dict(request.Labels)
        words = [w.lower() for w in request.SearchKeywords]
        matching = [
            r
            for r in (self._by_kind[kind][n] for n in self._names[kind])
            if policy.labels_allow(roles, kind, r.labels)
            and all(r.labels.get(k) == v for k, v in wanted.items())
            and _has_words(r, words)
            and predicate(r)
        ]
        remaining = [r for r in matching if r.name >= request.StartKey]
        page, rest = remaining[: request.Limit], remaining[request.Limit :]
        return Page(page, rest[0].name if rest else "", len(matching) if request.NeedTotalCount else 0)


def _has_words(resource: ResourceDef, words: list[str]) -> bool:
    fields = [resource.name, resource.hostname, resource.description, *resource.labels.values()]
    lowered = [f.lower() for f in fields if f]
    return all(any(word in f for f in lowered) for word in words)


def _metadata(target: types_pb2.Metadata, resource: ResourceDef) -> None:
    target.Name, target.Namespace, target.Description = resource.name, "default", resource.description
    target.Labels.update(resource.labels)


def resource_to_proto(resource: ResourceDef) -> authservice_pb2.PaginatedResource:
    """A resource as ListResources returns it."""
    out = authservice_pb2.PaginatedResource()
    host = resource.hostname or f"{resource.kind}-agent"
    if resource.kind == "node":
        node = out.Node
        node.Kind, node.SubKind, node.Version = "node", "teleport", "v2"
        _metadata(node.Metadata, resource)
        node.Spec.Addr, node.Spec.Hostname, node.Spec.Version = resource.addr, resource.hostname, AGENT_VERSION
    elif resource.kind == "app":
        server = out.AppServer
        server.Kind, server.Version = "app_server", "v3"
        _metadata(server.Metadata, resource)
        server.Spec.Version, server.Spec.Hostname, server.Spec.HostID = AGENT_VERSION, host, _host_id(resource)
        app = server.Spec.App
        app.Kind, app.Version = "app", "v3"
        _metadata(app.Metadata, resource)
        app.Spec.URI, app.Spec.PublicAddr = resource.uri, resource.public_addr
    elif resource.kind == "db":
        server_db = out.DatabaseServer
        server_db.Kind, server_db.Version = "db_server", "v3"
        _metadata(server_db.Metadata, resource)
        spec = server_db.Spec
        spec.Version, spec.Hostname, spec.HostID = AGENT_VERSION, host, _host_id(resource)
        database = spec.Database
        database.Kind, database.Version = "db", "v3"
        _metadata(database.Metadata, resource)
        database.Spec.Protocol, database.Spec.URI = resource.protocol, resource.uri
    else:
        server_kube = out.KubernetesServer
        server_kube.Kind, server_kube.Version = "kube_server", "v3"
        _metadata(server_kube.Metadata, resource)
        kube_spec = server_kube.Spec
        kube_spec.Version, kube_spec.Hostname, kube_spec.HostID = AGENT_VERSION, host, _host_id(resource)
        cluster = kube_spec.Cluster
        cluster.Kind, cluster.Version = "kube_cluster", "v3"
        _metadata(cluster.Metadata, resource)
        cluster.Spec.SetInParent()
    return out


def _host_id(resource: ResourceDef) -> str:
    # A stable fake agent UUID per resource (a real agent sends its host's UUID).
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource.kind}/{resource.name}"))
