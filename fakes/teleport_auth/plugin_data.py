"""Plugin data records with Teleport's compare-and-swap rules (upstream `api/types/plugin_data.go`).

`apply_update` is the one implementation of those rules in this repository: the fake Auth (`PluginRecord.apply`),
the in-test gRPC servicer (tests/teleport/servers.py) and the unit tests' PluginDataStore
(tests/unit/fakes_ports.py) all call it, each turning `ExpectMismatch` into its own error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.teleport.wire import types_pb2

from .errors import BadParameter, CompareFailed

KIND_ACCESS_REQUEST = "access_request"


class ExpectMismatch(Exception):
    """An Expect value differs from the stored one; `key` names the first such key."""

    def __init__(self, key: str, expected: str, found: str) -> None:
        # Teleport's message (PluginDataV3.checkExpectations in upstream `api/types/plugin_data.go`).
        super().__init__(f'expectations not met for field "{key}"')
        self.key = key
        self.expected = expected
        self.found = found


def apply_update(
    current: Mapping[str, str] | None, set_values: Mapping[str, str], expect: Mapping[str, str]
) -> dict[str, str] | None:
    """One plugin's entry after an UpdatePluginData, or None when no entry is left; `current` is not changed.

    Teleport's rules (upstream `api/types/plugin_data.go` PluginDataV3.Update and checkExpectations, called from
    `lib/services/local/plugin_data.go`):

    * each Expect value is compared with the stored entry's; a missing entry or a missing key reads as "";
    * an empty Expect skips the check;
    * a key Set to "" is deleted, any other value is stored;
    * an entry left empty is removed (None).

    Raises ExpectMismatch (nothing is changed) when an expected value differs.
    """
    stored = current or {}
    for key, want in expect.items():
        have = stored.get(key, "")
        if have != want:
            raise ExpectMismatch(key, want, have)
    entry = dict(stored)
    for key, value in set_values.items():
        if value == "":
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry or None


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
        """UpdatePluginData for one plugin (`apply_update`). A mismatch is CompareFailed and changes nothing."""
        try:
            entry = apply_update(self.entries.get(plugin), set_values, expect)
        except ExpectMismatch as exc:
            raise CompareFailed(str(exc)) from None
        if entry is None:
            self.entries.pop(plugin, None)
        else:
            self.entries[plugin] = entry


def check_kind(kind: str) -> None:
    """Only access requests carry plugin data in this fake."""
    if kind != KIND_ACCESS_REQUEST:
        raise BadParameter(f'unsupported resource kind "{kind}" for plugin data')
