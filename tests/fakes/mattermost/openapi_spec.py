"""The official Mattermost OpenAPI spec, assembled from its source fragments, and openapi-core adapters.

The fragments live outside the repository (reference data, see `MATTERMOST_OPENAPI_DIR`). They are
assembled the way the upstream build does it: `introduction.yaml` (which ends with `paths:`), the path
fragments, then `definitions.yaml` (`components:`).
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import ImmutableMultiDict

# A checked-in copy of the official fragments (see openapi/README.md), so CI never depends on outside files.
DEFAULT_DIR = str(Path(__file__).with_name("openapi"))
PATH_FRAGMENTS = ("users", "bots", "channels", "posts", "teams", "system", "actions")
#: The spec's own server URL; requests are presented to openapi-core as if sent there.
SPEC_HOST = "http://your-mattermost-url.com"


def spec_dir() -> Path:
    """Folder of the YAML fragments (`MATTERMOST_OPENAPI_DIR` overrides the default)."""
    return Path(os.environ.get("MATTERMOST_OPENAPI_DIR", DEFAULT_DIR))


@functools.cache
def _pristine_spec() -> dict[str, Any]:
    folder = spec_dir()
    parts = [(folder / "introduction.yaml").read_text(encoding="utf-8").rstrip() + "\n"]
    parts += [(folder / f"{name}.yaml").read_text(encoding="utf-8").rstrip() + "\n" for name in PATH_FRAGMENTS]
    parts.append((folder / "definitions.yaml").read_text(encoding="utf-8"))
    spec: dict[str, Any] = yaml.safe_load("".join(parts))
    _dedupe_operation_ids(spec)
    return spec


def load_spec() -> dict[str, Any]:
    """A fresh, mutable copy of the assembled spec."""
    return copy.deepcopy(_pristine_spec())


def _dedupe_operation_ids(spec: dict[str, Any]) -> None:
    # Upstream reuses `SaveAcknowledgementForPost` for POST and DELETE .../ack, which makes the spec
    # invalid for openapi-spec-validator; the operation is unrelated to the fake, so it is renamed.
    seen: set[str] = set()
    for item in spec["paths"].values():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                if operation["operationId"] in seen:
                    operation["operationId"] = f"{operation['operationId']}_{method}"
                seen.add(operation["operationId"])


@dataclass
class SpecRequest:
    """openapi-core's Request protocol over a recorded exchange."""

    path: str
    method: str
    query: dict[str, str]
    content_type: str
    body: bytes | None
    host_url: str = SPEC_HOST
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(self.query.items())))


@dataclass
class SpecResponse:
    """openapi-core's Response protocol over a recorded exchange."""

    status_code: int
    content_type: str
    headers: dict[str, str]
    data: bytes | None
