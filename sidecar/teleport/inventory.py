"""`ResourceNames` over Teleport's ListResources: friendly names of the resources an access request names.

The lookup follows the Go plugins (`api/accessrequest` `GetResourceDetails`): resource-ID kinds map to listing
types (node → node, app → app_server, db → db_server, kube_cluster → kube_server), one ListResources per type
with `PredicateExpression` = `resource.metadata.name == "a" || ...` (names quoted as Go's %q), Limit = the number
of names, UseSearchAsRoles and UsePreviewAsRoles set (the plugin role's `preview_as_roles` is what lets it see
them), every page read. The Go plugin looks up nodes and apps only; databases and Kubernetes clusters are looked
up here too.

A resource's friendly name is Teleport's `types.FriendlyName`: for an Okta-sourced resource (label
`teleport.dev/origin` = `okta`) its `teleport.internal/okta-app-name`, `okta-group-name` or `okta-role-name`
label, else its description; otherwise a node's hostname. Beyond Go: an app, database or Kubernetes cluster found
by Teleport's discovery service carries its cloud name in `teleport.internal/discovered-name` (its resource name
has a uniqueness suffix), which is used when it differs from the name. A friendly name equal to the name itself,
or empty, is no friendly name.

Ids that cannot be looked up (other kinds, sub-resources, other clusters when `cluster_name` is given), resources
that do not exist, and kinds the plugin may not list (PermissionDenied) are simply absent from the answer: the
caller shows the raw id. Answers, absences included, are kept `ttl` seconds per id. Transient failures raise
TransientError (nothing is kept); other refusals (a server that rejects the request or lacks the RPC) make the
kind absent, with one warning per kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sidecar.domain.errors import AccessDenied, NotFound, PermanentError
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import resource_id_from_string
from sidecar.teleport.wire import authservice_pb2, types_pb2

log = logging.getLogger(__name__)

LISTING_TYPES = {"node": "node", "app": "app_server", "db": "db_server", "kube_cluster": "kube_server"}
NAMES_PER_CALL = 50  # bounds the predicate's length
DEFAULT_TTL = 60.0
MAX_ENTRIES = 4096
MAX_PAGES = 100  # a server that keeps paging is not followed for ever

ORIGIN_LABEL = "teleport.dev/origin"
ORIGIN_OKTA = "okta"
OKTA_NAME_LABELS = (
    "teleport.internal/okta-app-name",
    "teleport.internal/okta-group-name",
    "teleport.internal/okta-role-name",
)
DISCOVERED_NAME_LABEL = "teleport.internal/discovered-name"


class ResourceLister(Protocol):
    """What TeleportResourceNames needs of the client (TeleportClient)."""

    async def list_resources(
        self, request: authservice_pb2.ListResourcesRequest
    ) -> authservice_pb2.ListResourcesResponse:
        """One ListResources page."""
        ...


class ListResourcesCall:
    """ResourceLister over TeleportClient (ListResources through the client's one error mapping)."""

    def __init__(self, client: TeleportClient) -> None:
        self._client = client

    async def list_resources(
        self, request: authservice_pb2.ListResourcesRequest
    ) -> authservice_pb2.ListResourcesResponse:
        """One ListResources page; raises the sidecar error for a failed call."""
        return await self._client.unary(
            "ListResources", lambda ch: ch.auth.ListResources(request, timeout=self._client.timeout)
        )


def go_quote(text: str) -> str:
    """Go's `%q` of a string (`strconv.Quote`): printable characters kept, the rest escaped."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():  # Python's printable is Go's IsPrint: no controls, no separators but ' '
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def name_predicate(names: Sequence[str]) -> str:
    """The Go plugin's `anyNameMatcher`: `resource.metadata.name == "a" || resource.metadata.name == "b"`."""
    return " || ".join(f"resource.metadata.name == {go_quote(n)}" for n in names)


def friendly_name(resource: authservice_pb2.PaginatedResource) -> tuple[str, str]:
    """(resource name, friendly name or "") of a listed resource."""
    which = resource.WhichOneof("resource")
    hostname = ""
    metadata: types_pb2.Metadata
    if which == "Node":
        metadata, hostname = resource.Node.Metadata, resource.Node.Spec.Hostname
    elif which == "AppServer":
        metadata = resource.AppServer.Spec.App.Metadata
    elif which == "DatabaseServer":
        metadata = resource.DatabaseServer.Spec.Database.Metadata
    elif which == "KubernetesServer":
        metadata = resource.KubernetesServer.Spec.Cluster.Metadata
    else:
        return "", ""
    labels = metadata.Labels
    if labels.get(ORIGIN_LABEL) == ORIGIN_OKTA:
        found = next((labels[k] for k in OKTA_NAME_LABELS if k in labels), metadata.Description)
    elif which == "Node":
        found = hostname
    else:
        found = labels.get(DISCOVERED_NAME_LABEL, "")
    found = found.strip()
    return metadata.Name, found if found != metadata.Name else ""


class TeleportResourceNames:
    """ResourceNames over ListResources, with a short per-id cache.

    Build it with `TeleportResourceNames(ListResourcesCall(client), cluster_name=...)`.
    """

    def __init__(
        self,
        client: ResourceLister,
        *,
        cluster_name: str | None = None,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if not ttl >= 0:
            raise ValueError(f"ttl must be >= 0 seconds, got {ttl}")
        self._client = client
        self._cluster = cluster_name
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._kept: dict[str, tuple[float, str]] = {}  # id -> (expiry, friendly name or "" for none)
        self._warned: set[str] = set()

    async def friendly_names(self, resource_ids: Sequence[str]) -> dict[str, str]:
        """Resource id → friendly name, for those that have one and the plugin may read; the others are left out.

        Raises TransientError when Teleport cannot answer now."""
        now = self._clock()
        answers: dict[str, str] = {}
        wanted: dict[str, dict[str, list[str]]] = {}  # kind -> name -> ids
        for rid in dict.fromkeys(resource_ids):
            kept = self._kept.get(rid)
            if kept is not None and kept[0] > now:
                answers[rid] = kept[1]
                continue
            target = self._target(rid)
            if target is None:
                answers[rid] = ""
                continue
            kind, name = target
            wanted.setdefault(kind, {}).setdefault(name, []).append(rid)
        for kind, by_name in wanted.items():
            found = await self._lookup(kind, list(by_name))
            for name, ids in by_name.items():
                for rid in ids:
                    answers[rid] = found.get(name, "")
                    self._keep(rid, answers[rid])
        return {rid: name for rid, name in answers.items() if name}

    def _target(self, rid: str) -> tuple[str, str] | None:
        try:
            parsed = resource_id_from_string(rid)
        except PermanentError:
            return None
        if parsed.SubResourceName or parsed.Kind not in LISTING_TYPES:
            return None
        if self._cluster is not None and parsed.ClusterName != self._cluster:
            return None
        return parsed.Kind, parsed.Name

    async def _lookup(self, kind: str, names: list[str]) -> dict[str, str]:
        """name → friendly name ("" for none) of the resources of `kind` the plugin may see."""
        found: dict[str, str] = {}
        try:
            for start in range(0, len(names), NAMES_PER_CALL):
                await self._list_all(kind, names[start : start + NAMES_PER_CALL], found)
        except (AccessDenied, NotFound) as exc:  # TransientError is no PermanentError: it goes to the caller
            log.debug("Resource names not readable", extra={"kind": kind, "error": str(exc)})
            return {}
        except PermanentError as exc:
            if kind not in self._warned:
                self._warned.add(kind)
                log.warning("Cannot look up resource names", extra={"kind": kind, "error": str(exc)})
            return {}
        return found

    async def _list_all(self, kind: str, names: list[str], found: dict[str, str]) -> None:
        request = authservice_pb2.ListResourcesRequest(
            ResourceType=LISTING_TYPES[kind],
            PredicateExpression=name_predicate(names),
            Limit=len(names),
            UseSearchAsRoles=True,
            UsePreviewAsRoles=True,
        )
        asked, seen = set(names), set[str]()
        for _ in range(MAX_PAGES):
            page = await self._client.list_resources(request)
            for item in page.Resources:
                name, friendly = friendly_name(item)
                if name in asked:
                    found[name] = friendly
            if not page.NextKey or page.NextKey in seen:
                return
            seen.add(page.NextKey)
            request.StartKey = page.NextKey

    def _keep(self, rid: str, friendly: str) -> None:
        if self._ttl <= 0:
            return
        self._kept.pop(rid, None)
        self._kept[rid] = (self._clock() + self._ttl, friendly)
        while len(self._kept) > self._max_entries:
            del self._kept[next(iter(self._kept))]
