"""Plugin data records with Teleport's compare-and-swap semantics (reference §5.4, `api/types/plugin_data.go`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.teleport.wire import types_pb2

from .errors import BadParameter, CompareFailed

KIND_ACCESS_REQUEST = "access_request"


@dataclass
class PluginRecord:
    """The plugin data of one resource: an entry (string map) per plugin, and its own expiry."""

    kind: str
    resource: str
    expires: datetime
    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_proto(self) -> types_pb2.PluginDataV3:
        """The wire form, as the real server sends it."""
        msg = types_pb2.PluginDataV3(Kind="plugin_data", SubKind=self.kind, Version="v3")
        msg.Metadata.Name = self.resource
        msg.Metadata.Namespace = "default"
        msg.Metadata.Expires.FromDatetime(self.expires)
        msg.Spec.SetInParent()
        for plugin, data in self.entries.items():
            msg.Spec.Entries[plugin].Data.update(data)
        return msg

    def apply(self, plugin: str, set_values: Mapping[str, str], expect: Mapping[str, str]) -> None:
        """Check `expect` against the plugin's entry, then apply `set_values` ("" deletes a key).

        An empty `expect` skips the check. A missing entry matches only when every expected value is "";
        a missing key counts as "". A mismatch is CompareFailed and changes nothing.
        """
        current = self.entries.get(plugin)
        if expect:
            if current is None:
                if any(v != "" for v in expect.values()):
                    raise CompareFailed("plugin data entry does not exist yet, expected values differ")
            else:
                for key, want in expect.items():
                    if current.get(key, "") != want:
                        raise CompareFailed(f'plugin data key "{key}" does not match the expected value')
        entry = dict(current or {})
        for key, value in set_values.items():
            if value == "":
                entry.pop(key, None)
            else:
                entry[key] = value
        if entry:
            self.entries[plugin] = entry
        else:
            self.entries.pop(plugin, None)


def check_kind(kind: str) -> None:
    """Only access requests carry plugin data in this fake."""
    if kind != KIND_ACCESS_REQUEST:
        raise BadParameter(f'unsupported resource kind "{kind}" for plugin data')
