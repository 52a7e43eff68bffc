"""The engine end to end over in-memory ports: posts, replies, edits and the stored plugin-data map."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.codec.plugindata import decode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import (
    CasGaveUp,
    NotFound,
    Rejected,
    ResolutionConflict,
    RetryableStepsFailed,
    StepsFailed,
    TransientError,
)
from sidecar.domain.model import AccessRequest, Channel, EventOp, PostRef, RequestEvent, RequestState, Review
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.cas import Cas
from sidecar.engine.decide import Edit, ThreadReply
from sidecar.engine.engine import Engine, EngineSettings, PostRoot, ResolveRecipient, SaveMessages
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
    assert store.entries[RID] == {
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
    assert store.entries[RID] == {
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


async def test_partial_broadcast_saves_successes_and_keeps_the_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    store = FakePluginDataStore()
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": Rejected("channel archived", 400)})
    with pytest.raises(StepsFailed) as info:
        await _engine(store, chat).handle(_put())
    assert store.entries[RID]["messages"] == "dm-1/post-1"
    [failure] = info.value.failures
    assert failure.step == PostRoot(Channel("chan-llama", "team-llama/channel-llama"), _text())
    assert isinstance(failure.error, Rejected)
    assert not info.value.transient
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Failed to post one or more messages"]
    assert errors[0].error == "channel chan-llama: channel archived"  # type: ignore[attr-defined]


async def test_unresolvable_recipient_is_skipped_and_kept() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels={"reviewer1@example.com": "dm-1"})
    with pytest.raises(StepsFailed) as info:
        await _engine(store, chat).handle(_put())
    assert [p.channel_id for p in chat.root_posts()] == ["dm-1"]
    assert [f.step for f in info.value.failures] == [ResolveRecipient("team-llama/channel-llama", _text())]
    assert store.entries[RID]["messages"] == "dm-1/post-1"


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
        await engine.handle(_put())
    assert chat.posts == []
    await engine.handle(_put())  # the retry succeeds
    assert len(chat.root_posts()) == 2


async def test_transient_error_after_failed_steps_keeps_them_and_is_retryable() -> None:
    # Every root post fails transiently, then withdrawing the announcement meets an unavailable store.
    store = FakePluginDataStore()
    errors: dict[str, Exception] = {"chan-llama": TransientError("502"), "dm-1": TransientError("503")}
    chat = FakeChat(channels=dict(CHANNELS), post_errors=errors)
    engine = _engine(store, chat)
    writes = 0

    def fail_the_withdrawal(request_id: str) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:  # the create, then the withdrawal
            raise TransientError("auth unavailable")

    store.before_update = fail_the_withdrawal
    with pytest.raises(RetryableStepsFailed) as info:
        await engine.handle(_put(reviews=(R1,)))
    assert isinstance(info.value, TransientError)
    assert [type(f.step) for f in info.value.failures] == [PostRoot, PostRoot]
    assert info.value.transient
    assert isinstance(info.value.__cause__, TransientError)


async def test_failed_save_of_posts_is_kept() -> None:
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    calls = 0

    def fail_second_write(request_id: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TransientError("auth unavailable")

    store.before_update = fail_second_write
    with pytest.raises(StepsFailed) as info:
        await _engine(store, chat).handle(_put())
    [failure] = info.value.failures
    assert failure.step == SaveMessages((PostRef("chan-llama", "post-1"), PostRef("dm-1", "post-2")))


async def test_failed_reply_and_edit_are_kept_and_count_is_committed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    store, chat = FakePluginDataStore(), FakeChat(channels=dict(CHANNELS))
    engine = _engine(store, chat)
    await engine.handle(_put())
    chat.reply_errors["post-1"] = TransientError("503")
    chat.edit_errors["post-2"] = Rejected("too long", 400)
    caplog.clear()
    with pytest.raises(StepsFailed) as info:
        await engine.handle(_put(RequestState.DENIED, reviews=(R1,), resolve_reason="no"))
    denied = _text(resolution=Resolution.DENIED, resolve_reason="no")
    assert [f.step for f in info.value.failures] == [
        ThreadReply(PostRef("chan-llama", "post-1"), 0, review_reply_text(R1)),
        Edit(PostRef("dm-1", "post-2"), denied),
    ]
    # Committed before sending: a replay of the event does not resend anything.
    assert decode(store.entries[RID]).reviews_count == 1
    assert decode(store.entries[RID]).resolution is Resolution.DENIED
    assert "Marked request with resolution and sent emails!" not in [r.getMessage() for r in caplog.records]
    with pytest.raises(ResolutionConflict):
        await engine.handle(_put(RequestState.DENIED, reviews=(R1,), resolve_reason="no"))


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
    flat = [result for pair in results for result in pair]
    assert sum(isinstance(r, ResolutionConflict) for r in flat) == len(ids)
    assert sum(r is None for r in flat) == len(ids)


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


async def test_announcement_that_reached_nobody_transiently_is_withdrawn_and_retried() -> None:
    store = FakePluginDataStore()
    down = TransientError("mattermost: 503 Service Unavailable")
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": down, "dm-1": down})
    engine = _engine(store, chat)
    with pytest.raises(RetryableStepsFailed) as info:
        await engine.handle(_put())
    assert isinstance(info.value, TransientError)  # the dispatcher retries the event
    assert RID not in store.entries  # withdrawn, so the retry announces again
    chat.post_errors.clear()
    await engine.handle(_put())
    assert sorted(p.channel_id for p in chat.root_posts()) == ["chan-llama", "dm-1"]
    assert sorted(store.entries[RID]["messages"].split(",")) == ["chan-llama/post-1", "dm-1/post-2"]


async def test_transient_lookup_errors_for_every_recipient_withdraw_the_announcement() -> None:
    store = FakePluginDataStore()
    timeout = TransientError("timeout")
    chat = FakeChat(channels=dict(CHANNELS),
                    resolve_errors={"reviewer1@example.com": timeout, "team-llama/channel-llama": timeout})
    engine = _engine(store, chat)
    with pytest.raises(RetryableStepsFailed):
        await engine.handle(_put())
    assert RID not in store.entries and chat.root_posts() == []
    chat.resolve_errors.clear()
    await engine.handle(_put())
    assert len(chat.root_posts()) == 2


async def test_permanent_failure_everywhere_is_not_retried_and_keeps_the_record() -> None:
    store = FakePluginDataStore()
    gone = Rejected("channel archived", 400)
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": gone, "dm-1": gone})
    with pytest.raises(StepsFailed) as info:
        await _engine(store, chat).handle(_put())
    assert not isinstance(info.value, TransientError)
    assert store.entries[RID]["user"] == "requester1@example.com"  # Go's behaviour: announced once, never again


async def test_withdraw_keeps_a_record_another_replica_filled_meanwhile() -> None:
    store = FakePluginDataStore()
    down = TransientError("mattermost down")
    chat = FakeChat(channels=dict(CHANNELS), post_errors={"chan-llama": down, "dm-1": down})
    other = "chan-other/post-9"

    def replica_posts(request_id: str) -> None:
        # Just before our withdraw is checked, another replica has stored its posts.
        entry = store.entries.get(request_id)
        if entry is not None and "messages" not in entry:
            entry["messages"] = other

    store.before_update = replica_posts
    with pytest.raises(RetryableStepsFailed):
        await _engine(store, chat).handle(_put())
    assert store.entries[RID]["messages"] == other
