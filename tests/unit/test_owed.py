"""owed() turns a record into steps; settle() folds outcomes back in (sidecar/engine/owed.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sidecar.codec.plugindata import decode, encode
from sidecar.domain.errors import NotFound, Rejected, TransientError
from sidecar.domain.model import AccessRequest, PostKind, PostMarker, PostRef, RequestState, Review
from sidecar.domain.record import Claim, Delivery, PluginData, Resolution
from sidecar.engine.owed import Edit, Outcome, PostRoot, ThreadReply, owed, settle, unanswerable
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text

RID = "req-1"
OSS = RenderSettings()
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
R1 = Review("r1@example.com", RequestState.APPROVED, "okay", AT)
R2 = Review("r2@example.com", RequestState.DENIED, "no", AT)
P1, P2 = PostRef("c1", "p1"), PostRef("c2", "p2")
REQUEST = AccessRequest(id=RID, user="alice@example.com", roles=("editor",), state=RequestState.PENDING,
                        reviews=(R1, R2))


def _record(**delivery: object) -> PluginData:
    base = Delivery(tracked=True, since_ms=5, replies_done={"p1": 0, "p2": 0}, edits_done={"p1": 0, "p2": 0})
    return PluginData(user="alice@example.com", roles=("editor",), reviews_count=2, messages=(P1, P2),
                      delivery=dataclasses.replace(base, **delivery))  # type: ignore[arg-type]


def test_nothing_is_owed_for_a_record_the_go_plugin_wrote() -> None:
    go = PluginData(user="alice@example.com", reviews_count=2, messages=(P1,))
    assert owed(RID, go, REQUEST, OSS) == []


def test_roots_then_replies_in_review_order_then_edits() -> None:
    record = _record(roots_owed=("team/ops",), replies_done={"p1": 1, "p2": 0}, edit_version=1)
    text = root_post_text(RID, record, OSS)
    assert owed(RID, record, REQUEST, OSS) == [
        PostRoot(RID, "team/ops", text),
        ThreadReply(RID, P1, 1, review_reply_text(R2)),
        ThreadReply(RID, P2, 0, review_reply_text(R1)),
        ThreadReply(RID, P2, 1, review_reply_text(R2)),
        Edit(P1, 1, text),
        Edit(P2, 1, text),
    ]


def test_without_the_request_replies_cannot_be_written_but_edits_still_can() -> None:
    record = _record(edit_version=1)
    assert [type(step) for step in owed(RID, record, None, OSS)] == [Edit, Edit]
    assert unanswerable(record, None)
    assert not unanswerable(record, REQUEST)
    # An event that is behind the record (fewer reviews) keeps the replies owed for a later one.
    assert not unanswerable(record, dataclasses.replace(REQUEST, reviews=(R1,)))


def test_settle_records_successes_and_gives_up_permanent_failures_only() -> None:
    record = _record(roots_owed=("team/ops", "bob@example.com", "eve@example.com"), edit_version=1)
    text = root_post_text(RID, record, OSS)
    new_post = PostRef("c3", "p3")
    outcomes = [
        Outcome(PostRoot(RID, "team/ops", text), post=new_post),
        Outcome(PostRoot(RID, "bob@example.com", text), error=TransientError("503")),
        Outcome(PostRoot(RID, "eve@example.com", text), error=NotFound("no such user")),
        Outcome(ThreadReply(RID, P1, 0, "r"), post=PostRef("c1", "x1")),
        Outcome(ThreadReply(RID, P1, 1, "r"), error=TransientError("timeout")),
        Outcome(Edit(P1, 1, text)),
        Outcome(Edit(P2, 1, text), error=Rejected("too long", 400)),
    ]
    settled = settle(record, outcomes)
    delivery = settled.delivery
    assert settled.messages == (P1, P2, new_post)
    assert delivery.roots_owed == ("bob@example.com",)  # transient: still owed; eve given up
    assert delivery.replies_done == {"p1": 1, "p2": 0, "p3": 0}
    assert delivery.edits_done == {"p1": 1, "p2": 1, "p3": 0}  # p2's edit given up
    assert delivery.failed == ("post to 'eve@example.com': no such user", "edit post p2: too long")
    # The new post owes every reply so far and the current version's edit.
    steps = owed(RID, settled, REQUEST, OSS)
    assert [(type(s).__name__, getattr(s, "review_index", None)) for s in steps if not isinstance(s, PostRoot)] == [
        ("ThreadReply", 1), ("ThreadReply", 0), ("ThreadReply", 1), ("ThreadReply", 0), ("ThreadReply", 1),
        ("Edit", None),
    ]


def test_settle_on_a_fresher_record_keeps_the_other_writers_work() -> None:
    record = _record(roots_owed=("team/ops",))
    fresher = dataclasses.replace(record, messages=(*record.messages, PostRef("c9", "p9")))
    settled = settle(fresher, [Outcome(PostRoot(RID, "team/ops", "t"), post=PostRef("c3", "p3"))])
    assert [p.post_id for p in settled.messages] == ["p1", "p2", "p9", "p3"]


def test_dropping_unanswerable_replies() -> None:
    settled = settle(_record(), [], drop_unanswerable=True)
    assert settled.delivery.replies_done == {"p1": 2, "p2": 2}


def test_delivery_round_trips_through_the_codec() -> None:
    record = _record(roots_owed=("team/ops",), edit_version=3, failed=("edit post p2: too long",),
                     claim=Claim("replica-a", 1234.5))
    assert decode(encode(record)).delivery == record.delivery
    assert decode(encode(dataclasses.replace(record, delivery=Delivery()))).delivery == Delivery()


def test_markers_name_one_post_per_recipient_and_review() -> None:
    root = PostRoot(RID, "team/ops", "t")
    reply = ThreadReply(RID, P1, 1, "r")
    assert root.marker("c3") == PostMarker(RID, "c3", PostKind.ROOT)
    assert reply.marker == PostMarker(RID, "c1", PostKind.REPLY, 1)
    assert Resolution.UNRESOLVED.value == ""
