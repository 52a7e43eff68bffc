"""The CAS loop over the in-memory store with Teleport's compare-and-swap semantics."""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.codec.plugindata import KEYS, decode, encode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import NotFound, TransientError
from sidecar.domain.model import PostRef
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.cas import AlreadyCreated, Cas, Created, GaveUp, Missing, Skip, Skipped, Updated
from tests.unit.fakes_ports import FakePluginDataStore

RECORD = PluginData(user="alice@example.com", roles=("editor",), request_reason="need access")


class CountingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _cas(store: FakePluginDataStore, sleep: CountingSleep, max_attempts: int = 30) -> Cas:
    return Cas(store, backoff=lambda: Backoff(0.001, 1.0, rand=lambda: 0.5, sleep=sleep), max_attempts=max_attempts)


async def test_create_writes_with_empty_expect() -> None:
    store = FakePluginDataStore()
    outcome = await _cas(store, CountingSleep()).create("r1", RECORD)
    assert outcome == Created(RECORD)
    assert store.entries["r1"] == {"user": "alice@example.com", "roles": "editor", "request_reason": "need access"}
    assert store.writes[0].expect == dict.fromkeys(KEYS, "")
    assert store.writes[0].set_ == encode(RECORD)


async def test_create_when_entry_exists_writes_nothing() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = {"user": "bob"}
    assert await _cas(store, CountingSleep()).create("r1", RECORD) == AlreadyCreated()
    assert store.writes == []
    assert store.entries["r1"] == {"user": "bob"}


async def test_create_losing_a_race_reports_already_created() -> None:
    store = FakePluginDataStore()

    def someone_else_creates(request_id: str) -> None:
        store.before_update = None
        store.entries[request_id] = {"user": "winner"}

    store.before_update = someone_else_creates
    sleep = CountingSleep()
    assert await _cas(store, sleep).create("r1", RECORD) == AlreadyCreated()
    assert store.entries["r1"] == {"user": "winner"}
    assert store.conflicts == 1
    assert len(sleep.delays) == 1


async def test_update_missing_entry() -> None:
    calls: list[PluginData] = []

    def modify(record: PluginData) -> PluginData:
        calls.append(record)
        return record

    assert await _cas(FakePluginDataStore(), CountingSleep()).update("r1", modify) == Missing()
    assert calls == []


async def test_update_writes_new_record_expecting_what_was_read() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD) | {"channel_id": "legacy"}
    new = dataclasses.replace(RECORD, messages=(PostRef("c1", "p1"),))
    outcome = await _cas(store, CountingSleep()).update("r1", lambda record: new)
    assert outcome == Updated(old=decode(encode(RECORD)), new=new)
    assert store.entries["r1"]["messages"] == "c1/p1"
    # Keys we do not own are neither expected nor touched.
    assert store.entries["r1"]["channel_id"] == "legacy"
    assert "channel_id" not in store.writes[0].expect


async def test_update_skip_returns_reason_without_writing() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = {"user": "alice"}
    outcome = await _cas(store, CountingSleep()).update("r1", lambda record: Skip("already resolved"))
    assert outcome == Skipped("already resolved")
    assert store.writes == []


async def test_update_reruns_modifier_on_conflict_with_fresh_read() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    seen: list[int] = []

    def concurrent_writer(request_id: str) -> None:
        store.before_update = None
        store.entries[request_id] = store.entries[request_id] | {"reviews_count": "1"}

    store.before_update = concurrent_writer

    def modify(record: PluginData) -> PluginData:
        seen.append(record.reviews_count)
        return dataclasses.replace(record, reviews_count=record.reviews_count + 1)

    sleep = CountingSleep()
    outcome = await _cas(store, sleep).update("r1", modify)
    assert isinstance(outcome, Updated)
    assert seen == [0, 1]
    assert store.entries["r1"]["reviews_count"] == "2"
    assert sleep.delays == pytest.approx([0.002])


async def test_update_skip_with_retry_waits_for_data_then_succeeds() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    rounds = 0

    def modify(record: PluginData) -> PluginData | Skip:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            # The broadcast of another instance has landed meanwhile.
            return dataclasses.replace(record, resolution=Resolution.APPROVED)
        return Skip("existing sentMessages is empty", retry=True)

    sleep = CountingSleep()
    outcome = await _cas(store, sleep).update("r1", modify)
    assert isinstance(outcome, Updated)
    assert len(sleep.delays) == 2


async def test_update_gives_up_after_max_attempts() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    sleep = CountingSleep()
    outcome = await _cas(store, sleep, max_attempts=4).update("r1", lambda r: Skip("waiting", retry=True))
    assert outcome == GaveUp(attempts=4, reason="waiting")
    assert len(sleep.delays) == 3


async def test_update_gives_up_after_timeout() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    now = [0.0]

    async def advancing_sleep(delay: float) -> None:
        now[0] += delay

    cas = Cas(
        store,
        backoff=lambda: Backoff(1.0, 1.0, sleep=advancing_sleep),
        max_attempts=1000,
        timeout=3.0,
        clock=lambda: now[0],
    )
    outcome = await cas.update("r1", lambda r: Skip("waiting", retry=True))
    assert outcome == GaveUp(attempts=4, reason="waiting")


async def test_create_gives_up_when_every_write_conflicts() -> None:
    store = FakePluginDataStore()

    def always_conflict(request_id: str) -> None:
        # The entry appears and vanishes again (e.g. deleted by its expiry) on every try.
        store.entries[request_id] = {"user": "x"}

    store.before_update = always_conflict
    original_get = store.get

    async def get_sees_nothing(request_id: str) -> dict[str, str] | None:
        store.entries.pop(request_id, None)
        return await original_get(request_id)

    store.get = get_sees_nothing  # type: ignore[method-assign]
    outcome = await _cas(store, CountingSleep(), max_attempts=3).create("r1", RECORD)
    assert isinstance(outcome, GaveUp)
    assert outcome.attempts == 3
    assert "expected ''" in outcome.reason


async def test_store_errors_propagate() -> None:
    store = FakePluginDataStore(known_requests=set())
    with pytest.raises(NotFound):
        await _cas(store, CountingSleep()).create("r1", RECORD)
    store.get_errors.append(TransientError("unavailable"))
    with pytest.raises(TransientError):
        await _cas(store, CountingSleep()).update("r1", lambda r: r)


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Cas(FakePluginDataStore(), max_attempts=0)
