"""`apply_update`: Teleport's plugin-data compare-and-swap rules (upstream `api/types/plugin_data.go`), written once
for the fake Auth, the in-test gRPC servicer (tests/teleport/servers.py) and the unit tests' store
(tests/unit/fakes_ports.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from fakes.teleport_auth.errors import CompareFailed
from fakes.teleport_auth.plugin_data import ExpectMismatch, PluginRecord, apply_update

Entry = Mapping[str, str] | None


@pytest.mark.parametrize(
    ("current", "set_values", "expect", "result"),
    [
        pytest.param(None, {"a": "1"}, {}, {"a": "1"}, id="no entry, no expect: created"),
        pytest.param(None, {"a": "1"}, {"a": "", "b": ""}, {"a": "1"}, id="missing entry reads as empty"),
        pytest.param({"a": "1"}, {"b": "2"}, {"b": ""}, {"a": "1", "b": "2"}, id="missing key reads as empty"),
        pytest.param({"a": "1"}, {"a": "2"}, {"a": "1"}, {"a": "2"}, id="expect met: set"),
        pytest.param({"a": "1"}, {"a": "2"}, {}, {"a": "2"}, id="empty expect skips the check"),
        pytest.param({"a": "1", "b": "2"}, {"b": ""}, {}, {"a": "1"}, id="set to empty deletes the key"),
        pytest.param({"a": "1"}, {"z": ""}, {}, {"a": "1"}, id="deleting a missing key is a no-op"),
        pytest.param({"a": "1"}, {"a": ""}, {"a": "1"}, None, id="entry left empty is removed"),
        pytest.param(None, {"a": ""}, {}, None, id="nothing stored, nothing set: no entry"),
        pytest.param({"a": "1"}, {}, {"a": "1"}, {"a": "1"}, id="expect only: unchanged"),
        pytest.param({"a": "1"}, {"b": "2"}, {"a": "1", "c": ""}, {"a": "1", "b": "2"}, id="several expectations"),
    ],
)
def test_rules(current: Entry, set_values: dict[str, str], expect: dict[str, str], result: Entry) -> None:
    before = dict(current) if current is not None else None
    assert apply_update(current, set_values, expect) == result
    assert (dict(current) if current is not None else None) == before  # pure: the input is not changed


@pytest.mark.parametrize(
    ("current", "expect", "key", "found"),
    [
        pytest.param(None, {"a": "1"}, "a", "", id="missing entry vs a value"),
        pytest.param({"a": "1"}, {"b": "x"}, "b", "", id="missing key vs a value"),
        pytest.param({"a": "1"}, {"a": "2"}, "a", "1", id="different value"),
        pytest.param({"a": "1"}, {"a": ""}, "a", "1", id="expected absent, but present"),
        pytest.param({"a": "1"}, {"a": "1", "b": "x"}, "b", "", id="one of several differs"),
    ],
)
def test_mismatch_names_the_key(current: Entry, expect: dict[str, str], key: str, found: str) -> None:
    with pytest.raises(ExpectMismatch) as caught:
        apply_update(current, {"a": "new"}, expect)
    assert (caught.value.key, caught.value.expected, caught.value.found) == (key, expect[key], found)
    assert str(caught.value) == f'expectations not met for field "{key}"'  # Teleport's message


def test_record_maps_a_mismatch_to_compare_failed_and_drops_empty_entries() -> None:
    record = PluginRecord(kind="access_request", resource="r1", expires=datetime(2030, 1, 1, tzinfo=UTC))
    record.apply("mattermost", {"a": "1"}, {"a": ""})
    record.apply("slack", {"s": "1"}, {})
    with pytest.raises(CompareFailed, match='expectations not met for field "a"'):
        record.apply("mattermost", {"a": "2"}, {"a": "x"})
    assert record.entries == {"mattermost": {"a": "1"}, "slack": {"s": "1"}}
    record.apply("mattermost", {"a": ""}, {"a": "1"})
    assert record.entries == {"slack": {"s": "1"}}
    assert list(record.to_proto().Spec.Entries) == ["slack"]
