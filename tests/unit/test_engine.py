"""The engine end to end over in-memory ports: posts, replies, edits and the stored plugin-data map."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.codec.plugindata import decode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import (
    AccessDenied,
    CasGaveUp,
    NotFound,
    RecipientError,
    Rejected,
    ResolutionConflict,
    SidecarError,
    StepFailure,
    StepsFailed,
    TransientError,
    Unauthorized,
)
from sidecar.domain.model import AccessRequest, EventOp, PostMarker, PostRef, RequestEvent, RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.domain.telemetry import NotificationResult, NullTelemetry, TargetKind
from sidecar.engine.cas import Cas
from sidecar.engine.engine import Engine, EngineSettings, fix_for
from sidecar.engine.owed import Edit, PostRoot, Step
from sidecar.engine.retries import RetryScheduler
from sidecar.render.classic import RenderSettings, review_reply_text, root_post_text
from tests.unit.fakes_ports import FakeChat, FakePluginDataStore, FakeRoleLookup

RID = "0b3d1c0e-7a0f-4a1f-9d7e-000000000001"
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
R1 = Review("reviewer1@example.com", RequestState.APPROVED, "okay", AT)
R2 = Review("reviewer2@example.com", RequestState.APPROVED, "finally okay", AT)
SETTINGS = EngineSettings(role_to_recipients={"*": ["team-llama/channel-llama"]}, render=RenderSettings())
CHANNELS = {"team-llama/channel-llama": "chan-llama", "reviewer1@example.com": "dm-1", "reviewer2@example.com": "dm-2"}


async def _no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


def _cas(store: FakePluginDataStore) -> Cas:
    return Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=_no_sleep))


def _engine(
    store: FakePluginDataStore,
    chat: FakeChat,
    roles: FakeRoleLookup | None = None,
    settings: EngineSettings = SETTINGS,
) -> Engine:
    return Engine(
        store=store,
        roles=roles or FakeRoleLookup({"editor": ["root"]}),
        chat=chat,
        settings=settings,
        cas=_cas(store),
    )


def _request(state: RequestState = RequestState.PENDING, **changes: Any) -> AccessRequest:
    request = AccessRequest(
        id=RID,
        user="requester1@example.com",
        roles=("editor",),
        state=state,
        request_reason="because of",
        suggested_reviewers=("reviewer1@example.com",),
    )
    return dataclasses.replace(request, **changes)


def _go_keys(entry: dict[str, str]) -> dict[str, str]:
    """The entry without our own key: what the Go plugin would read."""
    return {key: value for key, value in entry.items() if key != "tm_delivery"}


def _put(state: RequestState = RequestState.PENDING, **changes: Any) -> RequestEvent:
    return RequestEvent(EventOp.PUT, RID, _request(state, **changes))


DELETE = RequestEvent(EventOp.DELETE, RID)

STORED_DATA = PluginData(
    user="requester1@example.com",
    roles=("editor",),
    request_reason="because of",
    logins_by_role={"editor": ("root",)},
)


def _text(**changes: Any) -> str:
    return root_post_text(RID, dataclasses.replace(STORED_DATA, **changes), RenderSettings())


async def test_full_life_pending_review_approve_delete(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine = _engine(store, chat)

    # 1. New pending request: one root post per recipient ("*" list first, then the suggested reviewer).
    await engine.handle(_put())
    pending = _text()
    assert [(p.channel_id, p.post_id, p.message, p.root_id) for p in chat.posts] == [
        ("chan-llama", "post-1", pending, ""),
        ("dm-1", "post-2", pending, ""),
    ]
    assert _go_keys(store.entries[RID]) == {
        "user": "requester1@example.com",
        "roles": "editor",
        "request_reason": "because of",
        "logins_by_role": '{"editor":["root"]}',
        "messages": "chan-llama/post-1,dm-1/post-2",
    }
    posted = [r for r in caplog.records if r.getMessage() == "Successfully posted messages"]
    assert [(r.channel_id, r.message_id, r.request_id) for r in posted] == [  # type: ignore[attr-defined]
        ("chan-llama", "post-1", RID),
        ("dm-1", "post-2", RID),
    ]

    # 2. First review: a reply in each thread, then the pending re-update with unchanged text.
    await engine.handle(_put(reviews=(R1,)))
    reply1 = review_reply_text(R1)
    assert [(p.channel_id, p.root_id, p.message) for p in chat.replies()] == [
        ("chan-llama", "post-1", reply1),
        ("dm-1", "post-2", reply1),
    ]
    assert chat.edits == [(PostRef("chan-llama", "post-1"), pending), (PostRef("dm-1", "post-2"), pending)]
    assert store.entries[RID]["reviews_count"] == "1"

    # 3. Approved by the second review: reply for review 2 only, then the APPROVED edit.
    await engine.handle(_put(RequestState.APPROVED, reviews=(R1, R2), resolve_reason="finally okay"))
    approved = _text(resolution=Resolution.APPROVED, resolve_reason="finally okay")
    assert "**Status**: \u2705 APPROVED\n**Resolution reason**: ```\nfinally okay```\n" in approved
    assert [(p.root_id, p.message) for p in chat.replies()[2:]] == [
        ("post-1", review_reply_text(R2)),
        ("post-2", review_reply_text(R2)),
    ]
    assert chat.edits[2:] == [(PostRef("chan-llama", "post-1"), approved), (PostRef("dm-1", "post-2"), approved)]
    assert _go_keys(store.entries[RID]) == {
        "user": "requester1@example.com",
        "roles": "editor",
        "request_reason": "because of",
        "logins_by_role": '{"editor":["root"]}',
        "messages": "chan-llama/post-1,dm-1/post-2",
        "reviews_count": "2",
        "resolution": "APPROVED",
        "resolve_reason": "finally okay",
    }
    marked = [r for r in caplog.records if r.getMessage() == "Marked request with resolution and sent emails!"]
    assert [r.resolution for r in marked] == ["", "APPROVED"]  # type: ignore[attr-defined]

    # 4. Deleted after approval: posts stay APPROVED and, as in Go, this is reported as an error.
    with pytest.raises(ResolutionConflict, match="existing: APPROVED, event: EXPIRED"):
        await engine.handle(DELETE)
    assert len(chat.edits) == 4
    assert len(chat.root_posts()) == 2
    assert store.entries[RID]["resolution"] == "APPROVED"


async def test_pending_then_expired() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine = _engine(store, chat)
    await engine.handle(_put())
    await engine.handle(DELETE)
    expired = _text(resolution=Resolution.EXPIRED)
    assert "**Status**: \u231b EXPIRED" in expired
    assert chat.edits == [(PostRef("chan-llama", "post-1"), expired), (PostRef("dm-1", "post-2"), expired)]
    assert store.entries[RID]["resolution"] == "EXPIRED"


async def test_pending_event_with_reviews_announces_then_replies() -> None:
    # A request pending before the plugin started is announced on its first event, e.g. its first review.
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    await _engine(store, chat).handle(_put(reviews=(R1,)))
    assert [p.post_id for p in chat.root_posts()] == ["post-1", "post-2"]
    assert [(p.root_id, p.message) for p in chat.replies()] == [
        ("post-1", review_reply_text(R1)),
        ("post-2", review_reply_text(R1)),
    ]
    assert len(chat.edits) == 2
    assert store.entries[RID]["reviews_count"] == "1"


async def test_records_written_by_go_are_continued() -> None:
    # Exactly the map the Go plugin leaves behind after announcing the request and replying to one review.
    store = FakePluginDataStore()
    store.entries[RID] = {
        "user": "requester1@example.com",
        "roles": "editor",
        "request_reason": "because of",
        "reviews_count": "1",
        "logins_by_role": '{"editor":["root"]}',
        "messages": "go-chan-a/go-post-a,go-chan-b/go-post-b",
    }
    chat = FakeChat(channels=dict(CHANNELS))
    chat.adopted.extend([PostRef("go-chan-a", "go-post-a"), PostRef("go-chan-b", "go-post-b")])
    engine = _engine(store, chat)

    await engine.handle(_put(reviews=(R1,)))  # replayed event: no new reply, no new root post
    assert chat.root_posts() == []
    assert chat.replies() == []

    await engine.handle(_put(RequestState.APPROVED, reviews=(R1, R2), resolve_reason="finally okay"))
    assert chat.root_posts() == []
    assert [(p.channel_id, p.root_id) for p in chat.replies()] == [
        ("go-chan-a", "go-post-a"),
        ("go-chan-b", "go-post-b"),
    ]
    approved = _text(resolution=Resolution.APPROVED, resolve_reason="finally okay")
    assert chat.edits[-2:] == [
        (PostRef("go-chan-a", "go-post-a"), approved),
        (PostRef("go-chan-b", "go-post-b"), approved),
    ]
    assert store.entries[RID]["reviews_count"] == "2"
    assert store.entries[RID]["resolution"] == "APPROVED"
    assert store.entries[RID]["messages"] == "go-chan-a/go-post-a,go-chan-b/go-post-b"


async def test_legacy_single_message_record_is_edited() -> None:
    store = FakePluginDataStore()
    store.entries[RID] = {"user": "u", "roles": "editor", "channel_id": "C1", "timestamp": "T1"}
    chat = FakeChat()
    chat.adopted.append(PostRef("C1", "T1"))
    await _engine(store, chat).handle(DELETE)
    assert [ref for ref, _ in chat.edits] == [PostRef("C1", "T1")]
    assert store.entries[RID]["messages"] == "C1/T1"


async def test_existing_record_is_never_announced_again() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine = _engine(store, chat)
    await engine.handle(_put())
    await engine.handle(_put())
    assert len(chat.root_posts()) == 2


async def test_no_recipients_warns_and_skips_reviews(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat()
    engine = _engine(store, chat, settings=EngineSettings())
    await engine.handle(_put(suggested_reviewers=(), reviews=(R1,)))
    assert chat.posts == []
    assert "messages" not in store.entries[RID]
    assert [r.getMessage() for r in caplog.records] == ["No channel to post"]


async def test_missing_role_permission_warns_and_continues(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    await _engine(store, chat, roles=FakeRoleLookup(denied=True)).handle(_put())
    assert "logins_by_role" not in store.entries[RID]
    assert len(chat.root_posts()) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "Missing permissions to get logins by role, please add role.read to the associated role"
    ]


async def test_other_role_lookup_errors_fail_before_anything_is_stored() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    with pytest.raises(NotFound):
        await _engine(store, chat, roles=FakeRoleLookup({})).handle(_put())
    assert store.entries == {}
    assert chat.posts == []


async def test_transient_store_error_propagates_for_an_event_retry() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    store.get_errors.append(TransientError("auth unavailable"))
    engine = _engine(store, chat)
    with pytest.raises(TransientError):
        await engine.handle(dataclasses.replace(_put(), listed=True))  # listed: the record is read first
    assert chat.posts == []
    await engine.handle(_put())  # the retry succeeds
    assert len(chat.root_posts()) == 2


async def test_events_for_unknown_records_do_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine = _engine(store, chat)
    await engine.handle(DELETE)
    await engine.handle(_put(RequestState.APPROVED, reviews=(R1,)))
    assert chat.posts == [] and chat.edits == [] and store.writes == []
    assert [r.getMessage() for r in caplog.records].count("Failed to update messages: plugin data is missing") == 2


async def test_unknown_state_is_ignored_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat()
    await _engine(store, chat).handle(_put(RequestState.NONE))
    assert [r.getMessage() for r in caplog.records] == ["Unknown request state"]
    assert caplog.records[0].request_state == "NONE"  # type: ignore[attr-defined]
    assert store.writes == []


async def test_race_two_engines_many_requests_no_double_root_post() -> None:
    store = FakePluginDataStore()
    chat = FakeChat(channels=dict(CHANNELS))
    engines = [_engine(store, chat), _engine(store, chat)]
    ids = [f"req-{n}" for n in range(40)]

    def event(request_id: str, state: RequestState = RequestState.PENDING, **changes: Any) -> RequestEvent:
        request = dataclasses.replace(_request(state, **changes), id=request_id)
        return RequestEvent(EventOp.PUT, request_id, request)

    async def both(evt: RequestEvent) -> list[BaseException | None]:
        results = await asyncio.gather(*(engine.handle(evt) for engine in engines), return_exceptions=True)
        return list(results)

    # Every replica sees every event; different requests run concurrently.
    results = await asyncio.gather(*(both(event(rid)) for rid in ids))
    assert all(result is None for pair in results for result in pair)
    results = await asyncio.gather(*(both(event(rid, reviews=(R1,))) for rid in ids))
    assert all(result is None for pair in results for result in pair)
    results = await asyncio.gather(
        *(both(event(rid, RequestState.APPROVED, reviews=(R1, R2), resolve_reason="ok")) for rid in ids)
    )

    for rid in ids:
        stored = decode(store.entries[rid])
        roots = [p for p in chat.root_posts() if p.message.find(f"**Request ID**: {rid}\n") >= 0]
        assert len(roots) == 2, rid
        assert set(stored.messages) == {PostRef(p.channel_id, p.post_id) for p in roots}
        root_ids = {p.post_id for p in roots}
        replies = [p for p in chat.replies() if p.root_id in root_ids]
        # Exactly one reply per review per thread, despite two replicas handling each event.
        assert sorted((p.root_id, p.message) for p in replies) == sorted(
            (root, review_reply_text(review)) for root in root_ids for review in (R1, R2)
        )
        assert stored.resolution is Resolution.APPROVED
        approved_edits = [ref for ref, text in chat.edits if ref.post_id in root_ids and "APPROVED" in text]
        assert len(approved_edits) == 2
    # The replicas really did race on the plugin data.
    assert store.conflicts > 0
    # The replica that lost each resolution race reports the Go conflict error, and nothing else fails.
    # The replica that lost each resolution race finds it already resolved the same way: nothing fails.
    assert all(result is None for pair in results for result in pair)


async def test_review_waits_for_posts_another_replica_is_storing() -> None:
    store, chat = FakePluginDataStore(), FakeChat()
    chat.adopted.append(PostRef("chan-x", "post-x"))
    # Another replica created the record and is still posting.
    store.entries[RID] = {"user": "requester1@example.com", "roles": "editor", "request_reason": "because of"}
    original_get = store.get
    reads = 0

    async def get_then_posts_land(request_id: str) -> dict[str, str] | None:
        nonlocal reads
        reads += 1
        if reads == 3:
            store.entries[RID]["messages"] = "chan-x/post-x"
        return await original_get(request_id)

    store.get = get_then_posts_land  # type: ignore[method-assign]
    await _engine(store, chat).handle(_put(RequestState.APPROVED, reviews=(R1,), resolve_reason="okay"))
    assert [(p.channel_id, p.root_id) for p in chat.replies()] == [("chan-x", "post-x")]
    assert [ref for ref, _ in chat.edits] == [PostRef("chan-x", "post-x")]
    assert chat.root_posts() == []


async def test_review_on_a_request_whose_announcement_posted_nothing_gives_up() -> None:
    store, chat = FakePluginDataStore(), FakeChat()
    store.entries[RID] = {"user": "requester1@example.com", "roles": "editor"}
    engine = Engine(
        store=store,
        roles=FakeRoleLookup({"editor": []}),
        chat=chat,
        settings=SETTINGS,
        cas=Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=_no_sleep), max_attempts=3),
    )
    with pytest.raises(CasGaveUp, match="after 3 attempts: existing sentMessages is empty") as info:
        await engine.handle(_put(reviews=(R1,)))
    assert not isinstance(info.value, TransientError)
    assert chat.posts == [] and store.writes == []


async def test_permanent_failure_everywhere_is_not_retried_and_keeps_the_record() -> None:
    store = FakePluginDataStore()
    gone = Rejected("channel archived", 400)
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": gone, "dm-1": gone})
    with pytest.raises(StepsFailed) as info:
        await _engine(store, chat).handle(_put())
    assert not isinstance(info.value, TransientError)
    assert store.entries[RID]["user"] == "requester1@example.com"  # Go's behaviour: announced once, never again




class RecordingRetries(RetryScheduler):
    """A retry scheduler that only records what it was asked to do; tests resume by hand."""

    def __init__(self) -> None:
        super().__init__(lambda event: None)
        self.scheduled: list[tuple[str, float | None]] = []
        self.cleared: list[str] = []

    def schedule(self, request_id: str, *, delay: float | None = None) -> None:
        self.scheduled.append((request_id, delay))

    def succeeded(self, request_id: str) -> None:
        self.cleared.append(request_id)


RESUME = RequestEvent(EventOp.RESUME, RID)


def _owed_engine(store: FakePluginDataStore, chat: FakeChat, **kwargs: Any) -> tuple[Engine, RecordingRetries]:
    retries = RecordingRetries()
    engine = Engine(
        store=store, roles=FakeRoleLookup({"editor": ["root"]}), chat=chat, settings=SETTINGS, cas=_cas(store),
        retries=retries, **kwargs,
    )
    return engine, retries


async def test_permanent_post_failure_is_given_up_once_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    store = FakePluginDataStore()
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": Rejected("channel archived", 400)})
    engine, retries = _owed_engine(store, chat)
    with pytest.raises(StepsFailed) as info:
        await engine.handle(_put())
    [failure] = info.value.failures
    assert failure.step == PostRoot(RID, "team-llama/channel-llama", _text())
    assert isinstance(failure.error, Rejected) and not info.value.transient
    stored = decode(store.entries[RID])
    assert stored.messages == (PostRef("dm-1", "post-1"),)
    assert stored.delivery.roots_owed == ()  # given up, never retried
    assert stored.delivery.failed == ("post to 'team-llama/channel-llama': channel archived",)
    assert retries.scheduled == [] and retries.cleared == [RID]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Failed to post one or more messages", "Gave up a notification"]
    assert errors[0].error == "team-llama/channel-llama: channel archived"  # type: ignore[attr-defined]
    assert errors[1].step == "post to 'team-llama/channel-llama'"  # type: ignore[attr-defined]
    assert "teleport-mattermost check" in errors[1].fix  # type: ignore[attr-defined]
    # Handling the event again owes nothing, sends nothing and says nothing more.
    caplog.clear()
    await engine.handle(_put())
    assert len(chat.root_posts()) == 1
    assert [r for r in caplog.records if r.levelno == logging.ERROR] == []


async def test_unresolvable_recipient_is_given_up() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels={"reviewer1@example.com": "dm-1"})
    engine, _ = _owed_engine(store, chat)
    with pytest.raises(StepsFailed) as info:
        await engine.handle(_put())
    assert [p.channel_id for p in chat.root_posts()] == ["dm-1"]
    assert [f.step for f in info.value.failures] == [PostRoot(RID, "team-llama/channel-llama", _text())]
    assert decode(store.entries[RID]).delivery.roots_owed == ()


async def test_transient_failures_stay_owed_and_a_resume_delivers_them() -> None:
    store = FakePluginDataStore()
    down = TransientError("mattermost: 503 Service Unavailable")
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": down, "dm-1": down})
    engine, retries = _owed_engine(store, chat)
    await engine.handle(_put())  # nothing raised: the work is owed, not lost
    stored = decode(store.entries[RID])
    assert stored.delivery.roots_owed == ("team-llama/channel-llama", "reviewer1@example.com")
    assert retries.scheduled == [(RID, None)]
    chat.post_errors.clear()
    await engine.handle(RESUME)
    assert sorted(p.channel_id for p in chat.root_posts()) == ["chan-llama", "dm-1"]
    stored = decode(store.entries[RID])
    assert stored.delivery.roots_owed == () and len(stored.messages) == 2
    assert stored.delivery.claim is None  # nothing left to claim
    assert chat.finds == []  # tried moments ago by this process: the idempotency key covers a retry
    assert retries.cleared == [RID]


async def test_transient_lookup_failures_stay_owed() -> None:
    store = FakePluginDataStore()
    timeout = TransientError("timeout")
    chat = FakeChat(
        channels=dict(CHANNELS), resolve_errors={"reviewer1@example.com": timeout, "team-llama/channel-llama": timeout}
    )
    engine, _ = _owed_engine(store, chat)
    await engine.handle(_put())
    assert chat.root_posts() == [] and len(decode(store.entries[RID]).delivery.roots_owed) == 2
    chat.resolve_errors.clear()
    await engine.handle(RESUME)
    assert len(chat.root_posts()) == 2


async def test_posts_whose_recording_failed_are_not_posted_twice() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    writes = 0

    def fail_second_write(request_id: str) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:  # the record is created, the posts land, recording them fails
            raise TransientError("auth unavailable")

    store.before_update = fail_second_write
    engine, _ = _owed_engine(store, chat)
    with pytest.raises(TransientError):
        await engine.handle(_put())  # the dispatcher retries the event
    assert len(chat.root_posts()) == 2
    await engine.handle(_put())
    assert len(chat.root_posts()) == 2  # the same markers: the server hands back the first posts
    assert set(decode(store.entries[RID]).messages) == {PostRef("chan-llama", "post-1"), PostRef("dm-1", "post-2")}


async def test_a_restarted_engine_finds_posts_made_before_the_crash() -> None:
    # Past the server's deduplication window nothing but a search prevents a second post.
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS), dedupe=False)
    writes = 0

    def crash_before_recording(request_id: str) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise TransientError("killed")

    store.before_update = crash_before_recording
    first, _ = _owed_engine(store, chat)
    with pytest.raises(TransientError):
        await first.handle(_put())
    restarted, _ = _owed_engine(store, chat, wall_clock=lambda: 10**10)  # its claim has long expired
    await restarted.handle(_put())
    assert len(chat.root_posts()) == 2
    assert {m.recipient for m in chat.finds} == {"chan-llama", "dm-1"}
    assert len(decode(store.entries[RID]).messages) == 2


async def test_a_post_whose_answer_was_lost_is_not_doubled() -> None:
    store = FakePluginDataStore()
    chat = FakeChat(channels=dict(CHANNELS), lose_answers={"chan-llama": 1}, dedupe=False)
    now = [1000.0]
    engine, _ = _owed_engine(store, chat, monotonic=lambda: now[0])
    await engine.handle(_put())
    assert decode(store.entries[RID]).delivery.roots_owed == ("team-llama/channel-llama",)
    now[0] += 60  # well past the server's 30 s window: the retry must search
    await engine.handle(RESUME)
    assert sorted(p.channel_id for p in chat.root_posts()) == ["chan-llama", "dm-1"]
    assert decode(store.entries[RID]).delivery.roots_owed == ()


async def test_replies_keep_their_order_and_a_given_up_edit_is_reported() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine, _ = _owed_engine(store, chat)
    await engine.handle(_put())
    chat.reply_errors["post-1"] = TransientError("503")
    chat.edit_errors["post-2"] = Rejected("too long", 400)
    with pytest.raises(StepsFailed) as info:
        await engine.handle(_put(RequestState.DENIED, reviews=(R1, R2), resolve_reason="no"))
    denied = _text(resolution=Resolution.DENIED, resolve_reason="no")
    assert [f.step for f in info.value.failures] == [Edit(PostRef("dm-1", "post-2"), 1, denied)]
    stored = decode(store.entries[RID])
    assert (stored.reviews_count, stored.resolution) == (2, Resolution.DENIED)  # committed before sending
    assert stored.delivery.replies_done == {"post-1": 0, "post-2": 2}
    assert [(p.root_id, p.message) for p in chat.replies()] == [
        ("post-2", review_reply_text(R1)),
        ("post-2", review_reply_text(R2)),
    ]
    chat.reply_errors.clear()
    await engine.handle(RESUME)
    assert [(p.root_id, p.message) for p in chat.replies()][2:] == [
        ("post-1", review_reply_text(R1)),
        ("post-1", review_reply_text(R2)),
    ]
    # A replay of the same resolution is quiet; the given-up edit is not retried.
    await engine.handle(_put(RequestState.DENIED, reviews=(R1, R2), resolve_reason="no"))
    assert [ref.post_id for ref, _ in chat.edits] == ["post-1"]


async def test_a_claimed_request_is_left_to_its_replica_until_the_claim_expires() -> None:
    store = FakePluginDataStore()
    down = TransientError("mattermost down")
    chat_a = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": down, "dm-1": down})
    chat_b = FakeChat(channels=dict(CHANNELS))
    clock = [1000.0]
    a, _ = _owed_engine(store, chat_a, replica="a", wall_clock=lambda: clock[0])
    b, b_retries = _owed_engine(store, chat_b, replica="b", wall_clock=lambda: clock[0])
    await a.handle(_put())  # a announces, its posts fail: still owed, claimed by a
    await b.handle(_put())  # b sees a's claim and leaves the work alone
    assert chat_b.root_posts() == []
    [(rid, delay)] = b_retries.scheduled
    assert rid == RID and delay is not None and delay > 0
    clock[0] += 31  # a stopped renewing its claim: b takes over, looking for a's posts first
    await b.handle(RESUME)
    assert len(chat_b.root_posts()) == 2
    assert len(chat_b.finds) == 2
    assert decode(store.entries[RID]).delivery.claim is None


async def test_untracked_go_record_owes_nothing_for_what_go_did() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    chat.adopted.append(PostRef("chan-x", "post-x"))
    store.entries[RID] = {"user": "requester1@example.com", "roles": "editor", "reviews_count": "1",
                          "messages": "chan-x/post-x"}
    engine, _ = _owed_engine(store, chat)
    await engine.handle(RESUME)
    await engine.handle(_put(reviews=(R1,)))
    assert chat.posts == [] and chat.edits == []  # Go already replied to review 1
    await engine.handle(_put(reviews=(R1, R2)))
    assert [(p.root_id, p.message) for p in chat.replies()] == [("post-x", review_reply_text(R2))]
    assert len(chat.edits) == 1  # the pending re-update


@pytest.mark.parametrize(
    ("error", "step", "needle"),
    [
        (RecipientError("bob@example.com", "no such user", "check the address"), PostRoot(RID, "x", "t"),
         "check the address"),
        (AccessDenied("403"), PostRoot(RID, "x", "t"), "add the bot to the channel"),
        (NotFound("404"), PostRoot(RID, "x", "t"), "fix the recipient"),
        (NotFound("404"), Edit(PostRef("c", "p"), 1, "t"), "deleted in Mattermost"),
        (Unauthorized("401"), Edit(PostRef("c", "p"), 1, "t"), "create a new token"),
        (Rejected("400"), Edit(PostRef("c", "p"), 1, "t"), "teleport-mattermost check"),
    ],
)
def test_every_given_up_notification_comes_with_a_fix(error: SidecarError, step: Step, needle: str) -> None:
    assert needle in fix_for(StepFailure(step, error))


class RecordingTelemetry(NullTelemetry):
    """Keeps what the engine reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def event(self, kind: str, op: str) -> None:
        self.calls.append(("event", kind, op))

    def notification(self, target_kind: TargetKind, result: NotificationResult) -> None:
        self.calls.append(("notification", target_kind, result))

    def owed_work(self, count: int) -> None:
        self.calls.append(("owed", count))

    def retry(self, what: str) -> None:
        self.calls.append(("retry", what))

    def cas_conflict(self) -> None:
        self.calls.append(("conflict",))

    def permanent_failure(self, what: str, error: str, fix: str) -> None:
        self.calls.append(("failure", what, error))


async def test_the_engine_reports_events_notifications_owed_work_retries_and_failures() -> None:
    store = FakePluginDataStore()
    chat = FakeChat(
        channels=dict(CHANNELS),
        post_errors={"chan-llama": TransientError("503"), "dm-1": Rejected("archived", 400)},
    )
    telemetry = RecordingTelemetry()
    retries = RecordingRetries()
    engine = Engine(store=store, roles=FakeRoleLookup({"editor": ["root"]}), chat=chat, settings=SETTINGS,
                    retries=retries, telemetry=telemetry)
    with pytest.raises(StepsFailed):
        await engine.handle(_put())
    assert telemetry.calls == [
        ("event", "access_request", "put"),
        ("notification", "channel", "retry"),
        ("notification", "dm", "failed"),
        ("owed", 1),
        ("retry", "owed_work"),
        ("failure", "post to 'reviewer1@example.com'", "archived"),
    ]
    chat.post_errors.clear()
    telemetry.calls.clear()
    await engine.handle(RESUME)
    assert telemetry.calls == [("event", "access_request", "resume"), ("notification", "channel", "ok"), ("owed", 0)]


async def test_cas_conflicts_are_reported() -> None:
    store = FakePluginDataStore()
    telemetry = RecordingTelemetry()
    engine = Engine(store=store, roles=FakeRoleLookup({"editor": ["root"]}), chat=FakeChat(channels=dict(CHANNELS)),
                    settings=SETTINGS, telemetry=telemetry)

    def someone_else_writes(request_id: str) -> None:
        store.before_update = None
        store.entries[request_id] = {"user": "someone"}

    store.before_update = someone_else_writes
    await engine.handle(dataclasses.replace(_put(), listed=True))
    assert ("conflict",) in telemetry.calls


async def test_a_new_request_is_created_without_a_read_and_an_existing_one_is_not_announced_twice() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    telemetry = RecordingTelemetry()
    engine = Engine(store=store, roles=FakeRoleLookup({"editor": ["root"]}), chat=chat, settings=SETTINGS,
                    cas=_cas(store), telemetry=telemetry)
    await engine.handle(_put())
    assert store.reads == 0  # created blind: the compare-and-swap expects nothing stored
    assert len(chat.root_posts()) == 2
    # Another process (a restart, a replica) sees the same request for the first time: its blind create
    # fails, it reads the record, and nothing is posted again; that is no conflict worth reporting.
    other = Engine(store=store, roles=FakeRoleLookup({"editor": ["root"]}), chat=chat, settings=SETTINGS,
                   cas=_cas(store), telemetry=telemetry)
    await other.handle(_put())
    assert store.reads == 1
    assert len(chat.root_posts()) == 2
    assert ("conflict",) not in telemetry.calls


async def test_a_new_request_to_a_recipient_tried_long_ago_is_not_searched() -> None:
    # Attempts are remembered per request: another request's old post to the same channel is no reason to search.
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    now = [1000.0]
    engine, _ = _owed_engine(store, chat, monotonic=lambda: now[0])
    await engine.handle(_put())
    now[0] += 3600
    other = dataclasses.replace(_request(), id="0b3d1c0e-7a0f-4a1f-9d7e-000000000002")
    await engine.handle(RequestEvent(EventOp.PUT, other.id, other))
    assert len(chat.root_posts()) == 4
    assert chat.finds == []


class GatedChat(FakeChat):
    """Holds every root post until `expected` of them are in flight at once."""

    def __init__(self, expected: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = asyncio.Barrier(expected)

    async def post(
        self,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        marker: PostMarker | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> PostRef:
        if not root_id:
            await self.gate.wait()
        return await super().post(channel_id, message, root_id, marker=marker, props=props)


async def test_a_requests_root_posts_are_in_flight_together() -> None:
    # Sequential posts would never fill the barrier: the timeout turns that deadlock into a failure.
    store, chat = FakePluginDataStore(), GatedChat(2, channels=dict(CHANNELS))
    engine, _ = _owed_engine(store, chat)
    await asyncio.wait_for(engine.handle(_put()), timeout=10)
    assert sorted(post.channel_id for post in chat.root_posts()) == ["chan-llama", "dm-1"]
    assert decode(store.entries[RID]).delivery.roots_owed == ()


async def test_edits_and_threads_run_together_and_each_thread_keeps_its_order() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine, _ = _owed_engine(store, chat)
    await engine.handle(_put())
    await engine.handle(_put(RequestState.APPROVED, reviews=(R1, R2), resolve_reason="ok"))
    for root in ("post-1", "post-2"):
        assert [p.message for p in chat.replies() if p.root_id == root] == [
            review_reply_text(R1),
            review_reply_text(R2),
        ]
    assert sorted(ref.post_id for ref, _ in chat.edits) == ["post-1", "post-2"]


async def test_recipients_sharing_a_channel_share_its_one_post() -> None:
    channels = {**CHANNELS, "reviewer1@example.com": "chan-llama"}  # the DM resolves to the channel already used
    store = FakePluginDataStore()
    chat = FakeChat(channels=channels, post_errors={"chan-llama": TransientError("503")})
    engine, _ = _owed_engine(store, chat)
    await engine.handle(_put())
    # The shared post failed: both recipients are still owed, and nothing was posted twice.
    assert set(decode(store.entries[RID]).delivery.roots_owed) == {"team-llama/channel-llama", "reviewer1@example.com"}
    chat.post_errors.clear()
    await engine.handle(RESUME)
    assert [post.channel_id for post in chat.root_posts()] == ["chan-llama"]
    stored = decode(store.entries[RID])
    assert stored.delivery.roots_owed == ()
    assert [ref.channel_id for ref in stored.messages] == ["chan-llama"]
