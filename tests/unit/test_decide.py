"""decide(): every row of the state table in sidecar/engine/decide.py, as records and reasons."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.domain.model import AccessRequest, EventOp, PostRef, RequestEvent, RequestState, Review
from sidecar.domain.record import Delivery, PluginData, Resolution
from sidecar.engine.decide import Apply, NoOp, NoOpReason, Plan, decide, initial_record, tracked

RID = "req-1"
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
R1 = Review("reviewer1@example.com", RequestState.APPROVED, "okay", AT)
R2 = Review("reviewer2@example.com", RequestState.APPROVED, "finally okay", AT)
P1 = PostRef("chan-1", "post-1")
P2 = PostRef("chan-2", "post-2")
NOW_MS = 1_700_000_000_000

BASE = PluginData(user="alice@example.com", roles=("editor",), request_reason="need access")
# Announced by us: both posts made, nothing owed.
DELIVERED = Delivery(tracked=True, since_ms=NOW_MS, replies_done={"post-1": 0, "post-2": 0},
                     edits_done={"post-1": 0, "post-2": 0})
POSTED = dataclasses.replace(BASE, messages=(P1, P2), delivery=DELIVERED)
# Announced by the Go plugin: no delivery record of ours.
GO_POSTED = dataclasses.replace(BASE, messages=(P1, P2))


def _request(state: RequestState = RequestState.PENDING, **changes: Any) -> AccessRequest:
    request = AccessRequest(
        id=RID, user="alice@example.com", roles=("editor",), state=state, request_reason="need access"
    )
    return dataclasses.replace(request, **changes)


def _put(state: RequestState = RequestState.PENDING, **changes: Any) -> RequestEvent:
    return RequestEvent(op=EventOp.PUT, request_id=RID, request=_request(state, **changes))


DELETE = RequestEvent(op=EventOp.DELETE, request_id=RID)
RESUME = RequestEvent(op=EventOp.RESUME, request_id=RID)


def _rec(base: PluginData = POSTED, version: int = 0, **changes: Any) -> PluginData:
    delivery = dataclasses.replace(tracked(base), edit_version=version)
    return dataclasses.replace(base, delivery=delivery, **changes)


def _created(reviews: int = 0, recipients: tuple[str, ...] = ("team/ops", "bob@example.com")) -> PluginData:
    delivery = Delivery(tracked=True, since_ms=NOW_MS, roots_owed=recipients, edit_version=1 if reviews else 0)
    return dataclasses.replace(BASE, reviews_count=reviews, delivery=delivery)


APPROVED_1 = _rec(reviews_count=1, resolution=Resolution.APPROVED, resolve_reason="okay")
APPROVED_2 = _rec(reviews_count=2, resolution=Resolution.APPROVED, resolve_reason="finally okay")

TABLE: list[tuple[str, PluginData | None, RequestEvent, Plan]] = [
    ("pending, new: a root post owed to each recipient", None, _put(), Apply(_created())),
    ("pending, new, with reviews: replies owed, then the re-update", None, _put(reviews=(R1,)), Apply(_created(1))),
    ("pending, announced", POSTED, _put(), NoOp(NoOpReason.ALREADY_ANNOUNCED)),
    ("pending, no new review", _rec(reviews_count=1), _put(reviews=(R1,)), NoOp(NoOpReason.ALREADY_ANNOUNCED)),
    ("pending, Go's record with no posts yet", BASE, _put(reviews=(R1,)), NoOp(NoOpReason.AWAITING_POSTS)),
    ("pending, our record with nobody to post to", _created(recipients=()), _put(reviews=(R1,)),
     NoOp(NoOpReason.NOTHING_POSTED)),
    ("pending, first review: counted, re-update owed", POSTED, _put(reviews=(R1,)),
     Apply(_rec(version=1, reviews_count=1))),
    ("pending, reviews on a Go record: tracking starts from what Go did", GO_POSTED, _put(reviews=(R1, R2)),
     Apply(_rec(GO_POSTED, version=1, reviews_count=2))),
    ("pending review on a resolved request", APPROVED_1, _put(reviews=(R1, R2)), NoOp(NoOpReason.ALREADY_RESOLVED)),
    ("approved by the first review", POSTED, _put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"),
     Apply(_rec(version=1, reviews_count=1, resolution=Resolution.APPROVED, resolve_reason="okay"))),
    ("approved, review already counted", _rec(reviews_count=1),
     _put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"),
     Apply(_rec(version=1, reviews_count=1, resolution=Resolution.APPROVED, resolve_reason="okay"))),
    ("denied outright", POSTED, _put(RequestState.DENIED, resolve_reason="no"),
     Apply(_rec(version=1, resolution=Resolution.DENIED, resolve_reason="no"))),
    ("promoted", POSTED, _put(RequestState.PROMOTED), Apply(_rec(version=1, resolution=Resolution.PROMOTED))),
    ("resolved, never announced", None, _put(RequestState.APPROVED), NoOp(NoOpReason.NOTHING_POSTED)),
    ("resolved, Go's record with no posts, reviews", BASE, _put(RequestState.APPROVED, reviews=(R1,)),
     NoOp(NoOpReason.AWAITING_POSTS)),
    ("resolved, Go's record with no posts", BASE, _put(RequestState.APPROVED), NoOp(NoOpReason.NOTHING_POSTED)),
    ("resolved again the same way: quiet", APPROVED_2, _put(RequestState.APPROVED, reviews=(R1, R2)),
     NoOp(NoOpReason.ALREADY_RESOLVED)),
    ("resolved the other way", APPROVED_1, _put(RequestState.DENIED),
     NoOp(NoOpReason.RESOLUTION_CONFLICT, "existing: APPROVED, event: DENIED")),
    ("deleted while pending: expiry edit owed", POSTED, DELETE, Apply(_rec(version=1, resolution=Resolution.EXPIRED))),
    ("deleted, Go's record", GO_POSTED, DELETE, Apply(_rec(GO_POSTED, version=1, resolution=Resolution.EXPIRED))),
    ("deleted, nothing stored", None, DELETE, NoOp(NoOpReason.NOTHING_POSTED)),
    ("deleted, nothing announced", BASE, DELETE, NoOp(NoOpReason.NOTHING_POSTED)),
    ("deleted after approval", APPROVED_1, DELETE,
     NoOp(NoOpReason.RESOLUTION_CONFLICT, "existing: APPROVED, event: EXPIRED")),
    ("resume", POSTED, RESUME, NoOp(NoOpReason.RESUME)),
    ("state NONE", POSTED, _put(RequestState.NONE), NoOp(NoOpReason.UNKNOWN_STATE, "state NONE")),
    ("put without a request", POSTED, RequestEvent(EventOp.PUT, RID), NoOp(NoOpReason.UNKNOWN_STATE,
                                                                           "put event without a request")),
]


@pytest.mark.parametrize(("record", "event", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_decide_table(record: PluginData | None, event: RequestEvent, expected: Plan) -> None:
    plan = decide(record, event, recipients=("team/ops", "bob@example.com"), now_ms=NOW_MS)
    assert plan == expected


def test_create_stores_request_data_and_logins() -> None:
    request = _request(
        roles=("editor", "auditor"),
        resources=("node/web-1",),
        system_annotations={"team": ("ops",)},
        suggested_reviewers=("r@example.com",),
    )
    plan = decide(None, RequestEvent(EventOp.PUT, RID, request), logins_by_role={"editor": ["root"]})
    expected = PluginData(
        user="alice@example.com",
        roles=("editor", "auditor"),
        resources=("node/web-1",),
        request_reason="need access",
        system_annotations={"team": ("ops",)},
        logins_by_role={"editor": ("root",)},
    )
    assert isinstance(plan, Apply)
    assert dataclasses.replace(plan.new_record, delivery=Delivery()) == expected
    assert expected == initial_record(request, {"editor": ["root"]})


def test_only_awaiting_posts_is_retryable() -> None:
    assert NoOp(NoOpReason.AWAITING_POSTS).retry
    assert not any(NoOp(reason).retry for reason in NoOpReason if reason is not NoOpReason.AWAITING_POSTS)


def test_replaying_an_event_on_its_own_outcome_changes_nothing() -> None:
    # Idempotence: the reconcile and the retries replay events, which must not owe anything new.
    for event in (_put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"), _put(reviews=(R1,))):
        first = decide(POSTED, event)
        assert isinstance(first, Apply)
        assert isinstance(decide(first.new_record, event), NoOp)


def test_counts_never_go_backwards() -> None:
    # An older event arriving late (fewer reviews) does not lower the stored count.
    plan = decide(_rec(reviews_count=2), _put(RequestState.DENIED, reviews=(R1,)))
    assert isinstance(plan, Apply)
    assert plan.new_record.reviews_count == 2
