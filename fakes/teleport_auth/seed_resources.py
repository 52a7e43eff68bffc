"""The resources of the seed (`[[resources]]`): nodes, apps, databases and Kubernetes clusters an access request
can name and ListResources returns.

    [[resources]]
    kind = "node"                     node | app | db | kube_cluster (the resource-ID kinds)
    name = "5e0c..."                  metadata.name, what resource IDs name (a UUID for a node)
    hostname = "db-1.prod.internal"   node: its hostname (required); others: the agent's host (optional)
    addr = "10.0.0.5:3022"            node only
    uri = "..."                       app and db
    public_addr = "..."               app only
    protocol = "postgres"             db only
    description = "..."               metadata.description
    labels = { env = "prod" }         metadata.labels, what role label matchers and ListResources filters see

Friendly names come from these: a node's hostname, and labels such as `teleport.internal/discovered-name` or,
with `teleport.dev/origin = "okta"`, `teleport.internal/okta-app-name` (and the description).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .seed_toml import SeedError, as_table, check_keys, string_map, text

#: The resource-ID kinds the fake serves, and the keys each accepts besides kind, name, description and labels.
KIND_KEYS = {
    "node": {"hostname", "addr"},
    "app": {"hostname", "uri", "public_addr"},
    "db": {"hostname", "uri", "protocol"},
    "kube_cluster": {"hostname"},
}


@dataclass(frozen=True)
class ResourceDef:
    """One resource: its kind and name (its resource ID without the cluster) and what ListResources shows."""

    kind: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    hostname: str = ""
    addr: str = ""
    uri: str = ""
    public_addr: str = ""
    protocol: str = ""


def parse_resource(body: Mapping[str, Any], where: str) -> ResourceDef:
    """One `[[resources]]` table (or the admin API's JSON object of the same shape)."""
    kind = text(body, "kind", where)
    if kind not in KIND_KEYS:
        raise SeedError(f"{where} kind: expected one of {', '.join(KIND_KEYS)}, got {kind!r}")
    check_keys(body, {"kind", "name", "description", "labels", *KIND_KEYS[kind]}, where)
    name = text(body, "name", where)
    if not name or "/" in name:
        raise SeedError(f"{where} name: expected a non-empty name without '/', got {name!r}")
    hostname = text(body, "hostname", where)
    if kind == "node" and not hostname:
        raise SeedError(f"{where} hostname: a node needs its hostname")
    return ResourceDef(
        kind=kind,
        name=name,
        labels=string_map(body, "labels", where),
        description=text(body, "description", where),
        hostname=hostname,
        addr=text(body, "addr", where),
        uri=text(body, "uri", where),
        public_addr=text(body, "public_addr", where),
        protocol=text(body, "protocol", where),
    )


def parse_resources(bodies: list[Any], source: str) -> tuple[ResourceDef, ...]:
    """Every `[[resources]]` table; a kind and name may appear once."""
    found: dict[tuple[str, str], ResourceDef] = {}
    for index, body in enumerate(bodies):
        where = f"{source}: [[resources]] #{index + 1}"
        resource = parse_resource(as_table(body, where), where)
        key = (resource.kind, resource.name)
        if key in found:
            raise SeedError(f"{where}: {resource.kind} {resource.name!r} is defined twice")
        found[key] = resource
    return tuple(found.values())
