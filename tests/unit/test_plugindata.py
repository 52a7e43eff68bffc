"""The plugin-data codec against the exact maps the Go plugin writes, both directions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sidecar.codec.plugindata import KEYS, decode, encode, go_json
from sidecar.domain.errors import PluginDataError
from sidecar.domain.model import PostRef
from sidecar.domain.record import PluginData, Resolution

# What Teleport stores after the Go plugin's Create and the messages update of a request by
# requester-oss with reviewer DMs (keys set to "" are deleted by Teleport, so they are absent).
GO_STORED_PENDING = {
    "user": "requester-oss@example.com",
    "roles": "editor,auditor",
    "resources": '["node/web-1","/cluster/node/0b3d"]',
    "request_reason": "because of <it> & more",
    "system_annotations": '{"pagerduty_services":["svc-a","svc-b"],"team":["ops"]}',
    "logins_by_role": '{"auditor":null,"editor":["root","ubuntu"]}',
    "messages": "channel-1/post-1,channel-2/post-2",
}

PENDING_RECORD = PluginData(
    user="requester-oss@example.com",
    roles=("editor", "auditor"),
    resources=("node/web-1", "/cluster/node/0b3d"),
    request_reason="because of <it> & more",
    system_annotations={"team": ("ops",), "pagerduty_services": ("svc-a", "svc-b")},
    logins_by_role={"editor": ("root", "ubuntu"), "auditor": ()},
    messages=(PostRef("channel-1", "post-1"), PostRef("channel-2", "post-2")),
)

GO_STORED_RESOLVED = {
    "user": "requester1@example.com",
    "roles": "editor",
    "request_reason": "because of",
    "reviews_count": "2",
    "resolution": "APPROVED",
    "resolve_reason": "finally okay",
    "max_duration": "2025-01-02T15:04:05Z",
    "suggested_reviewers": '["reviewer1@example.com","a\\u003cb\\u003e@example.com"]',
    "messages": "channel-3/post-7",
}

RESOLVED_RECORD = PluginData(
    user="requester1@example.com",
    roles=("editor",),
    request_reason="because of",
    reviews_count=2,
    resolution=Resolution.APPROVED,
    resolve_reason="finally okay",
    max_duration=datetime(2025, 1, 2, 15, 4, 5, tzinfo=UTC),
    suggested_reviewers=("reviewer1@example.com", "a<b>@example.com"),
    messages=(PostRef("channel-3", "post-7"),),
)


def _non_empty(data: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in data.items() if value}


@pytest.mark.parametrize(
    ("stored", "record"), [(GO_STORED_PENDING, PENDING_RECORD), (GO_STORED_RESOLVED, RESOLVED_RECORD)]
)
def test_decode_go_map(stored: dict[str, str], record: PluginData) -> None:
    assert decode(stored) == record


@pytest.mark.parametrize(
    ("stored", "record"), [(GO_STORED_PENDING, PENDING_RECORD), (GO_STORED_RESOLVED, RESOLVED_RECORD)]
)
def test_encode_matches_go_map(stored: dict[str, str], record: PluginData) -> None:
    encoded = encode(record)
    assert set(encoded) == set(KEYS)
    assert _non_empty(encoded) == stored


def test_empty_record_encodes_to_all_empty_values_and_back() -> None:
    encoded = encode(PluginData())
    assert encoded == dict.fromkeys(KEYS, "")
    assert decode(encoded) == PluginData()
    assert decode({}) == PluginData()


def test_legacy_messages_encoding() -> None:
    # The old in-package plugindata_test.go map.
    stored = {
        "user": "user-foo",
        "roles": "role-foo,role-bar",
        "request_reason": "foo reason",
        "reviews_count": "5",
        "resolution": "APPROVED",
        "resolve_reason": "foo ok",
        "messages": "CHANNEL1/POST01,CHANNEL2/POST02",
    }
    record = decode(stored)
    assert record.messages == (PostRef("CHANNEL1", "POST01"), PostRef("CHANNEL2", "POST02"))
    assert record.reviews_count == 5
    assert _non_empty(encode(record)) == stored


def test_malformed_message_entries_are_skipped() -> None:
    record = decode({"messages": "a/b,broken,c/d/e,,f/g"})
    assert record.messages == (PostRef("a", "b"), PostRef("f", "g"))


def test_legacy_channel_and_timestamp_pair_is_one_message() -> None:
    assert decode({"channel_id": "C1", "timestamp": "1234.5"}).messages == (PostRef("C1", "1234.5"),)
    assert decode({"messages": "a/b", "channel_id": "C1", "timestamp": "T"}).messages == (
        PostRef("a", "b"),
        PostRef("C1", "T"),
    )
    # Once re-encoded into `messages`, the legacy keys still stored must not add a duplicate.
    assert decode({"messages": "C1/T", "channel_id": "C1", "timestamp": "T"}).messages == (PostRef("C1", "T"),)
    assert decode({"channel_id": "C1"}).messages == ()


def test_empty_json_values_decode_to_none() -> None:
    stored = {"resources": "[]", "system_annotations": "{}", "suggested_reviewers": "null", "logins_by_role": "null"}
    assert decode(stored) == PluginData()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("reviews_count", "two"),
        ("reviews_count", "1.5"),
        ("reviews_count", " 1"),
        ("reviews_count", "-1"),
        ("resources", "[1,2]"),
        ("resources", "not json"),
        ("suggested_reviewers", '{"a":"b"}'),
        ("system_annotations", '["x"]'),
        ("system_annotations", '{"team":"ops"}'),
        ("logins_by_role", '{"editor":[1]}'),
        ("logins_by_role", "{"),
        ("resolution", "MAYBE"),
        ("max_duration", "tomorrow"),
        ("max_duration", "2025-01-02T15:04:05"),
    ],
)
def test_malformed_values_raise_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(PluginDataError) as info:
        decode({key: value})
    assert info.value.key == key
    assert repr(key) in str(info.value)


def test_reviews_count_accepts_go_atoi_forms() -> None:
    assert decode({"reviews_count": "+3"}).reviews_count == 3
    assert decode({"reviews_count": "007"}).reviews_count == 7


@pytest.mark.parametrize("bad", [PostRef("a/b", "c"), PostRef("a", "b,c"), PostRef("", "c")])
def test_encoding_a_post_ref_that_would_corrupt_messages_raises(bad: PostRef) -> None:
    with pytest.raises(PluginDataError, match="messages"):
        encode(PluginData(messages=(bad,)))


def test_max_duration_with_offset_keeps_rfc3339_offset() -> None:
    moment = datetime(2025, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    encoded = encode(PluginData(max_duration=moment))["max_duration"]
    assert encoded == "2025-06-01T08:00:00-05:30"
    assert decode({"max_duration": encoded}).max_duration == moment


def test_go_json_matches_go_marshal() -> None:
    value = {"z": ["<&>", "é", "\u2028\u2029", 'q"\\'], "a": None, "m": ["\n\t\x01"]}
    assert go_json(value) == (
        '{"a":null,"m":["\\n\\t\\u0001"],"z":["\\u003c\\u0026\\u003e","é","\\u2028\\u2029","q\\"\\\\"]}'
    )


def test_round_trip_preserves_record() -> None:
    for record in (PENDING_RECORD, RESOLVED_RECORD):
        assert decode(encode(record)) == record
