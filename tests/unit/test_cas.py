"""The CAS loop over the in-memory store with Teleport's compare-and-swap semantics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from sidecar.codec.plugindata import KEYS, decode, encode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import NotFound, TransientError
from sidecar.domain.model import PostRef
from sidecar.domain.record import PluginData, Resolution
from sidecar.engine.cas import Cas, GaveUp, Keep, Outcome, Skipped, Updated, Write
from tests.unit.fakes_ports import FakePluginDataStore

RECORD = PluginData(user="alice@example.com", roles=("editor",), request_reason="need access")


class CountingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _cas(store: FakePluginDataStore, sleep: CountingSleep, max_attempts: int = 30) -> Cas:
    return Cas(store, backoff=lambda: Backoff(0.001, 1.0, rand=lambda: 0.5, sleep=sleep), max_attempts=max_attempts)


def create(record: PluginData) -> Callable[[PluginData | None], Write[str] | Keep[str]]:
    """A modifier that creates `record` when nothing is stored and keeps whatever is."""

    def modify(stored: PluginData | None) -> Write[str] | Keep[str]:
        return Write(record, "created") if stored is None else Keep("already there")

    return modify


async def test_nothing_stored_writes_with_empty_expect() -> None:
    store = FakePluginDataStore()
    outcome = await _cas(store, CountingSleep()).run("r1", create(RECORD))
    assert outcome == Updated(old=None, new=RECORD, decision="created")
    assert store.entries["r1"] == {"user": "alice@example.com", "roles": "editor", "request_reason": "need access"}
    assert store.writes[0].expect == dict.fromkeys(KEYS, "")
    assert store.writes[0].set_ == encode(RECORD)


async def test_modifier_sees_the_stored_record_and_can_keep_it() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = {"user": "bob"}
    seen: list[PluginData | None] = []

    def modify(stored: PluginData | None) -> Write[str] | Keep[str]:
        seen.append(stored)
        return Keep("already there")

    assert await _cas(store, CountingSleep()).run("r1", modify) == Skipped("already there")
    assert seen == [PluginData(user="bob")]
    assert store.writes == []
    assert store.entries["r1"] == {"user": "bob"}


async def test_create_losing_a_race_decides_again_on_the_winner() -> None:
    store = FakePluginDataStore()

    def someone_else_creates(request_id: str) -> None:
        store.before_update = None
        store.entries[request_id] = {"user": "winner"}

    store.before_update = someone_else_creates
    sleep = CountingSleep()
    outcome = await _cas(store, sleep).run("r1", create(RECORD))
    assert outcome == Skipped("already there")
    assert store.entries["r1"] == {"user": "winner"}
    assert store.conflicts == 1
    assert len(sleep.delays) == 1


async def test_update_writes_new_record_expecting_what_was_read() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD) | {"channel_id": "legacy"}
    new = dataclasses.replace(RECORD, messages=(PostRef("c1", "p1"),))
    outcome: Outcome[int, None] = await _cas(store, CountingSleep()).run("r1", lambda record: Write(new, 7))
    assert outcome == Updated(old=decode(encode(RECORD)), new=new, decision=7)
    assert store.entries["r1"]["messages"] == "c1/p1"
    # Keys we do not own are neither expected nor touched.
    assert store.entries["r1"]["channel_id"] == "legacy"
    assert "channel_id" not in store.writes[0].expect


async def test_keep_returns_the_decision_without_writing() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = {"user": "alice"}
    outcome: Outcome[None, str] = await _cas(store, CountingSleep()).run("r1", lambda record: Keep("already resolved"))
    assert outcome == Skipped("already resolved")
    assert store.writes == []


async def test_conflict_reruns_modifier_on_a_fresh_read_and_returns_the_last_decision() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    seen: list[int] = []

    def concurrent_writer(request_id: str) -> None:
        store.before_update = None
        store.entries[request_id] = store.entries[request_id] | {"reviews_count": "1"}

    store.before_update = concurrent_writer

    def modify(record: PluginData | None) -> Write[int] | Keep[None]:
        assert record is not None
        seen.append(record.reviews_count)
        return Write(dataclasses.replace(record, reviews_count=record.reviews_count + 1), record.reviews_count)

    sleep = CountingSleep()
    outcome = await _cas(store, sleep).run("r1", modify)
    assert isinstance(outcome, Updated)
    assert outcome.decision == 1  # decided on the second read, not the first
    assert seen == [0, 1]
    assert store.entries["r1"]["reviews_count"] == "2"
    assert sleep.delays == pytest.approx([0.002])


async def test_keep_with_retry_waits_for_data_then_succeeds() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    rounds = 0

    def modify(record: PluginData | None) -> Write[str] | Keep[str]:
        nonlocal rounds
        rounds += 1
        assert record is not None
        if rounds == 3:
            # The broadcast of another instance has landed meanwhile.
            return Write(dataclasses.replace(record, resolution=Resolution.APPROVED), "resolved")
        return Keep("waiting", retry=True, reason="existing sentMessages is empty")

    sleep = CountingSleep()
    outcome = await _cas(store, sleep).run("r1", modify)
    assert isinstance(outcome, Updated)
    assert outcome.decision == "resolved"
    assert len(sleep.delays) == 2


async def test_gives_up_after_max_attempts() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    sleep = CountingSleep()
    cas = _cas(store, sleep, max_attempts=4)
    outcome: Outcome[None, None] = await cas.run("r1", lambda r: Keep(None, retry=True, reason="waiting"))
    assert outcome == GaveUp(attempts=4, reason="waiting")
    assert len(sleep.delays) == 3


async def test_gives_up_after_timeout() -> None:
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
    outcome: Outcome[None, None] = await cas.run("r1", lambda r: Keep(None, retry=True, reason="waiting"))
    assert outcome == GaveUp(attempts=4, reason="waiting")


async def test_gives_up_when_every_create_conflicts() -> None:
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
    outcome = await _cas(store, CountingSleep(), max_attempts=3).run("r1", create(RECORD))
    assert isinstance(outcome, GaveUp)
    assert outcome.attempts == 3
    assert "expected ''" in outcome.reason


async def test_store_errors_propagate() -> None:
    store = FakePluginDataStore(known_requests=set())
    with pytest.raises(NotFound):
        await _cas(store, CountingSleep()).run("r1", create(RECORD))
    store.get_errors.append(TransientError("unavailable"))
    with pytest.raises(TransientError):
        await _cas(store, CountingSleep()).run("r1", lambda r: Keep(None))


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Cas(FakePluginDataStore(), max_attempts=0)


async def test_a_known_record_saves_the_read_and_a_stale_one_falls_back_to_reading() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = encode(RECORD)
    reads = 0
    original_get = store.get

    async def counting_get(request_id: str) -> dict[str, str] | None:
        nonlocal reads
        reads += 1
        return await original_get(request_id)

    store.get = counting_get  # type: ignore[method-assign]
    bumped = dataclasses.replace(RECORD, reviews_count=1)
    outcome: Outcome[int, None] = await _cas(store, CountingSleep()).run("r1", lambda r: Write(bumped, 1), known=RECORD)
    assert isinstance(outcome, Updated) and reads == 0
    # Stale: someone wrote since; the first write conflicts, then it reads and decides on what is stored.
    seen: list[int] = []

    def modify(record: PluginData | None) -> Write[int] | Keep[None]:
        assert record is not None
        seen.append(record.reviews_count)
        return Write(dataclasses.replace(record, reviews_count=record.reviews_count + 1), record.reviews_count)

    outcome = await _cas(store, CountingSleep()).run("r1", modify, known=RECORD)
    assert isinstance(outcome, Updated)
    assert seen == [0, 1] and reads == 1
    assert decode(store.entries["r1"]).reviews_count == 2


async def test_absent_creates_without_a_read() -> None:
    store = FakePluginDataStore()
    outcome = await _cas(store, CountingSleep()).run("r1", create(RECORD), absent=True)
    assert outcome == Updated(old=None, new=RECORD, decision="created")
    assert store.reads == 0
    assert store.writes[0].expect == dict.fromkeys(KEYS, "")


async def test_absent_but_stored_reads_at_once_and_decides_on_the_record() -> None:
    store = FakePluginDataStore()
    store.entries["r1"] = {"user": "bob"}
    conflicts: list[None] = []
    sleep = CountingSleep()
    cas = Cas(store, backoff=lambda: Backoff(0.001, 1.0, sleep=sleep), on_conflict=lambda: conflicts.append(None))
    outcome = await cas.run("r1", create(RECORD), absent=True)
    assert isinstance(outcome, Skipped) and outcome.decision == "already there"
    assert store.entries["r1"] == {"user": "bob"}  # the blind create changed nothing
    assert (store.reads, sleep.delays, conflicts) == (1, [], [])


async def test_known_and_absent_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude"):
        await _cas(FakePluginDataStore(), CountingSleep()).run("r1", create(RECORD), known=RECORD, absent=True)
