"""decide(): a table of (stored record, event) → plan, plus the properties the engine relies on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.domain.model import AccessRequest, EventOp, PostRef, RequestEvent, RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.decide import (
    Apply,
    BroadcastRoot,
    Edit,
    NoOp,
    NoOpReason,
    Plan,
    ReviewReply,
    ThreadReply,
    decide,
    initial_record,
)
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text

OSS = RenderSettings()
RID = "req-1"
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
R1 = Review("reviewer1@example.com", RequestState.APPROVED, "okay", AT)
R2 = Review("reviewer2@example.com", RequestState.APPROVED, "finally okay", AT)
P1 = PostRef("chan-1", "post-1")
P2 = PostRef("chan-2", "post-2")

BASE = PluginData(user="alice@example.com", roles=("editor",), request_reason="need access")
POSTED = dataclasses.replace(BASE, messages=(P1, P2))


def _request(state: RequestState = RequestState.PENDING, **changes: Any) -> AccessRequest:
    request = AccessRequest(
        id=RID, user="alice@example.com", roles=("editor",), state=state, request_reason="need access"
    )
    return dataclasses.replace(request, **changes)


def _put(state: RequestState = RequestState.PENDING, **changes: Any) -> RequestEvent:
    return RequestEvent(op=EventOp.PUT, request_id=RID, request=_request(state, **changes))


DELETE = RequestEvent(op=EventOp.DELETE, request_id=RID)


def _rec(**changes: Any) -> PluginData:
    return dataclasses.replace(POSTED, **changes)


def _text(record: PluginData) -> str:
    return root_post_text(RID, record, OSS)


def _replies(*reviews: tuple[int, Review]) -> tuple[ThreadReply, ...]:
    return tuple(ThreadReply(post, index, review_reply_text(review)) for post in (P1, P2) for index, review in reviews)


def _edits(record: PluginData) -> tuple[Edit, ...]:
    return tuple(Edit(post, _text(record)) for post in record.messages)


APPROVED_1 = _rec(reviews_count=1, resolution=Resolution.APPROVED, resolve_reason="okay")
APPROVED_2 = _rec(reviews_count=2, resolution=Resolution.APPROVED, resolve_reason="finally okay")
EXPIRED = _rec(resolution=Resolution.EXPIRED)
DENIED = _rec(resolution=Resolution.DENIED, resolve_reason="no")

TABLE: list[tuple[str, PluginData | None, RequestEvent, Plan]] = [
    ("pending, new", None, _put(), Apply(BASE, (BroadcastRoot(_text(BASE)),))),
    (
        "pending, new, with reviews: announce, then reply to them in the new threads",
        None,
        _put(reviews=(R1,)),
        Apply(
            dataclasses.replace(BASE, reviews_count=1),
            (BroadcastRoot(_text(BASE), (ReviewReply(0, review_reply_text(R1)),)),),
        ),
    ),
    ("pending, announced", POSTED, _put(), NoOp(NoOpReason.ALREADY_ANNOUNCED)),
    ("pending, created but nothing posted", BASE, _put(), NoOp(NoOpReason.ALREADY_ANNOUNCED)),
    ("pending review, posts not stored yet", BASE, _put(reviews=(R1,)), NoOp(NoOpReason.AWAITING_POSTS)),
    (
        "pending, first review: reply in each thread, then the pending re-update",
        POSTED,
        _put(reviews=(R1,)),
        Apply(_rec(reviews_count=1), (*_replies((0, R1)), *_edits(POSTED))),
    ),
    (
        "pending, only reviews beyond the count are replied",
        _rec(reviews_count=1),
        _put(reviews=(R1, R2)),
        Apply(_rec(reviews_count=2), (*_replies((1, R2)), *_edits(POSTED))),
    ),
    (
        "pending, replies already sent: only the re-update (as Go)",
        _rec(reviews_count=1),
        _put(reviews=(R1,)),
        Apply(_rec(reviews_count=1), _edits(POSTED)),
    ),
    ("pending review after resolution", APPROVED_1, _put(reviews=(R1,)), NoOp(NoOpReason.ALREADY_RESOLVED)),
    (
        "approved without reviews",
        POSTED,
        _put(RequestState.APPROVED, resolve_reason="okay"),
        Apply(
            _rec(resolution=Resolution.APPROVED, resolve_reason="okay"),
            _edits(_rec(resolution=Resolution.APPROVED, resolve_reason="okay")),
        ),
    ),
    (
        "approved by the second review: reply first, then the edit",
        _rec(reviews_count=1),
        _put(RequestState.APPROVED, reviews=(R1, R2), resolve_reason="finally okay"),
        Apply(APPROVED_2, (*_replies((1, R2)), *_edits(APPROVED_2))),
    ),
    (
        "denied",
        POSTED,
        _put(RequestState.DENIED, resolve_reason="no"),
        Apply(DENIED, _edits(DENIED)),
    ),
    (
        "promoted",
        POSTED,
        _put(RequestState.PROMOTED),
        Apply(_rec(resolution=Resolution.PROMOTED), _edits(_rec(resolution=Resolution.PROMOTED))),
    ),
    ("approved, never announced", None, _put(RequestState.APPROVED), NoOp(NoOpReason.NOTHING_POSTED)),
    ("approved, nothing posted", BASE, _put(RequestState.APPROVED), NoOp(NoOpReason.NOTHING_POSTED)),
    (
        "approved with reviews, posts not stored yet",
        BASE,
        _put(RequestState.APPROVED, reviews=(R1,)),
        NoOp(NoOpReason.AWAITING_POSTS),
    ),
    (
        "approved twice: the Go error quirk",
        APPROVED_1,
        _put(RequestState.APPROVED, reviews=(R1,)),
        NoOp(NoOpReason.RESOLUTION_CONFLICT, "existing: APPROVED, event: APPROVED"),
    ),
    ("deleted", POSTED, DELETE, Apply(EXPIRED, _edits(EXPIRED))),
    (
        "deleted keeps the stored count and drops any resolve reason",
        _rec(reviews_count=1, resolve_reason="stale"),
        DELETE,
        Apply(_rec(reviews_count=1, resolution=Resolution.EXPIRED), _edits(EXPIRED)),
    ),
    ("deleted, never announced", None, DELETE, NoOp(NoOpReason.NOTHING_POSTED)),
    ("deleted, nothing posted", BASE, DELETE, NoOp(NoOpReason.NOTHING_POSTED)),
    (
        "deleted after approval: posts stay APPROVED, Go logs an error",
        APPROVED_1,
        DELETE,
        NoOp(NoOpReason.RESOLUTION_CONFLICT, "existing: APPROVED, event: EXPIRED"),
    ),
    ("deleted twice", EXPIRED, DELETE, NoOp(NoOpReason.RESOLUTION_CONFLICT, "existing: EXPIRED, event: EXPIRED")),
    ("unknown state", POSTED, _put(RequestState.NONE), NoOp(NoOpReason.UNKNOWN_STATE, "state NONE")),
    (
        "put without request",
        POSTED,
        RequestEvent(EventOp.PUT, RID),
        NoOp(NoOpReason.UNKNOWN_STATE, "put event without a request"),
    ),
]


@pytest.mark.parametrize(("record", "event", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_decide_table(record: PluginData | None, event: RequestEvent, expected: Plan) -> None:
    assert decide(record, event, OSS) == expected


def test_replies_to_every_post_and_review_in_order() -> None:
    plan = decide(POSTED, _put(reviews=(R1, R2)), OSS)
    assert isinstance(plan, Apply)
    replies = [(step.post, step.review_index) for step in plan.steps if isinstance(step, ThreadReply)]
    assert replies == [(P1, 0), (P1, 1), (P2, 0), (P2, 1)]
    # All replies come before any edit.
    kinds = [type(step).__name__ for step in plan.steps]
    assert kinds == ["ThreadReply"] * 4 + ["Edit"] * 2


def test_texts_come_from_stored_data_not_the_event() -> None:
    # The request changed after announcement (different reason/user on the event): posts keep the stored data.
    event = _put(RequestState.DENIED, user="mallory", request_reason="changed", resolve_reason="no")
    plan = decide(POSTED, event, OSS)
    assert isinstance(plan, Apply)
    edit = plan.steps[0]
    assert isinstance(edit, Edit)
    assert "**User**: alice@example.com\n" in edit.text
    assert "need access" in edit.text
    assert "changed" not in edit.text


def test_create_stores_request_data_and_logins() -> None:
    request = _request(
        roles=("editor", "auditor"),
        resources=("node/web-1",),
        system_annotations={"team": ("ops",)},
        suggested_reviewers=("r@example.com",),
    )
    plan = decide(None, RequestEvent(EventOp.PUT, RID, request), OSS, logins_by_role={"editor": ["root"]})
    expected = PluginData(
        user="alice@example.com",
        roles=("editor", "auditor"),
        resources=("node/web-1",),
        request_reason="need access",
        system_annotations={"team": ("ops",)},
        logins_by_role={"editor": ("root",)},
    )
    assert isinstance(plan, Apply)
    assert plan.new_record == expected == initial_record(request, {"editor": ["root"]})


def test_link_setting_is_used_for_texts() -> None:
    plan = decide(None, _put(), RenderSettings(web_proxy_url="https://teleport.example.com"))
    assert isinstance(plan, Apply)
    step = plan.steps[0]
    assert isinstance(step, BroadcastRoot)
    assert "**Link**: [https://teleport.example.com/web/requests/req-1]" in step.text


def test_only_awaiting_posts_is_retryable() -> None:
    assert NoOp(NoOpReason.AWAITING_POSTS).retry
    assert not any(NoOp(reason).retry for reason in NoOpReason if reason is not NoOpReason.AWAITING_POSTS)


def test_replaying_a_plan_from_its_own_record_sends_nothing_new() -> None:
    # Idempotence: deciding the same event again on the stored outcome yields no new replies or edits
    # (except the pending re-update, which is an idempotent PUT with identical text).
    first = decide(POSTED, _put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"), OSS)
    assert isinstance(first, Apply)
    again = decide(first.new_record, _put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"), OSS)
    assert isinstance(again, NoOp)
    pending = decide(POSTED, _put(reviews=(R1,)), OSS)
    assert isinstance(pending, Apply)
    replay = decide(pending.new_record, _put(reviews=(R1,)), OSS)
    assert isinstance(replay, Apply)
    assert all(isinstance(step, Edit) for step in replay.steps)
