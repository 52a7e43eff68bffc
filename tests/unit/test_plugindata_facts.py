"""Our plugin-data keys for the rich style, the requester's messages and reminders (sidecar/codec/plugindata.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidecar.codec.plugindata import DELIVERY_KEY, FACTS_KEY, decode, encode
from sidecar.domain.errors import PluginDataError
from sidecar.domain.model import PostRef, RequestState, Review
from sidecar.domain.record import Delivery, Facts, PluginData

AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
FACTS = Facts(
    cluster="prod",
    recipients=("team/ops", "bob@example.com"),
    reviewers=(("bob@example.com", "bob"), ("carol", "")),
    friendly_names={"/prod/node/abc": "web-1"},
    approvals_required=2,
    created=AT,
    access_expires=AT.replace(hour=23),
    request_expires=AT.replace(hour=16),
    reviews=(Review("bob@example.com", RequestState.APPROVED, "ok <b>&", AT),),
)
DELIVERY = Delivery(
    tracked=True,
    since_ms=5,
    replies_done={"p1": 1},
    edits_done={"p1": 0},
    requester="alice@example.com",
    dms_done=2,
    reminder_rounds=1,
    reminder_last_ms=1234,
    reminded={"p1": 1},
    escalated=True,
    escalation_owed=("team/leads",),
    notes_owed=("p2",),
)


def test_facts_and_the_new_delivery_fields_round_trip() -> None:
    record = PluginData(user="alice@example.com", messages=(PostRef("c1", "p1"),), delivery=DELIVERY, facts=FACTS)
    stored = encode(record)
    assert decode(stored) == record
    assert "\\u003cb\\u003e\\u0026" in stored[FACTS_KEY]  # Go's HTML-safe JSON, like the other keys


def test_without_the_features_the_stored_shape_is_unchanged() -> None:
    record = PluginData(user="alice@example.com", delivery=Delivery(tracked=True, since_ms=5))
    stored = encode(record)
    assert stored[FACTS_KEY] == ""  # Teleport deletes a key set to "": the entry has no tm_view
    assert stored[DELIVERY_KEY] == '{"edits":{},"failed":[],"replies":{},"roots":[],"since":5,"v":1,"version":0}'
    assert decode(stored).facts is None


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '{"v": 2}',
        '{"v": 1, "reviews": [{"author": "a"}]}',
        '{"v": 1, "created": "yesterday"}',
        '{"v": 1, "created": "2025-01-02T15:04:00"}',
        '{"v": 1, "approvals": -1}',
        "{",
    ],
)
def test_malformed_facts_name_the_key(raw: str) -> None:
    with pytest.raises(PluginDataError) as caught:
        decode({FACTS_KEY: raw})
    assert FACTS_KEY in str(caught.value)


def test_malformed_delivery_fields_name_the_key() -> None:
    base = '{"edits":{},"failed":[],"replies":{},"roots":[],"since":5,"v":1,"version":0'
    with pytest.raises(PluginDataError) as caught:
        decode({DELIVERY_KEY: base + ',"dms":-1}'})
    assert DELIVERY_KEY in str(caught.value)
