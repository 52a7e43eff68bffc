"""The record the sidecar keeps per access request in Teleport plugin data, as a value.

`sidecar/codec/plugindata.py` turns it into the Go plugin's flat string map and back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.domain.model import PostRef

__all__ = ["PluginData", "Resolution"]


class Resolution(enum.Enum):
    """The stored resolution tag; UNRESOLVED is the empty string."""

    UNRESOLVED = ""
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    PROMOTED = "PROMOTED"


@dataclass(frozen=True)
class PluginData:
    """What the plugin remembers about one access request."""

    user: str = ""
    roles: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    request_reason: str = ""
    reviews_count: int = 0
    resolution: Resolution = Resolution.UNRESOLVED
    resolve_reason: str = ""
    max_duration: datetime | None = None
    system_annotations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suggested_reviewers: tuple[str, ...] = ()
    logins_by_role: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    messages: tuple[PostRef, ...] = ()
