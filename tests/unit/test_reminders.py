"""Reminders and escalation: due times and advance (pure), the timer, and the engine on a fake clock."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sidecar.domain.model import EventOp, PostKind, PostRef, RequestEvent, RequestState
from sidecar.domain.record import Delivery, PluginData, Resolution
from sidecar.engine.engine import EngineSettings
from sidecar.engine.reminders import (
    DueTimer,
    ReminderSettings,
    advance,
    escalation_due_ms,
    next_due_ms,
    reminder_due_ms,
)
from tests.unit.engine_kit import RID, START, Clock, Kit, make_kit, request, review

SINCE = 1_000_000
EVERY = ReminderSettings(after=60, every=120, max=2)
ESCALATE = ReminderSettings(escalate_to=("team/leads",), escalate_after=300)
BOTH = ReminderSettings(after=60, every=120, max=2, escalate_to=("team/leads",), escalate_after=300)
P1 = PostRef("c1", "p1")


def _record(**delivery: object) -> PluginData:
    base = Delivery(tracked=True, since_ms=SINCE, roots_owed=(), replies_done={"p1": 0}, edits_done={"p1": 0})
    return PluginData(user="alice@example.com", roles=("editor",), messages=(P1,),
                      delivery=dataclasses.replace(base, **delivery))  # type: ignore[arg-type]


# ---- due times and advance ----------------------------------------------------------------------


def test_the_first_reminder_is_due_after_the_announcement_the_next_every_after_the_last() -> None:
    record = _record()
    assert reminder_due_ms(record, EVERY) == SINCE + 60_000
    later = _record(reminder_rounds=1, reminder_last_ms=SINCE + 65_000)
    assert reminder_due_ms(later, EVERY) == SINCE + 65_000 + 120_000
    assert reminder_due_ms(_record(reminder_rounds=2, reminder_last_ms=5), EVERY) is None  # max reached
    assert reminder_due_ms(record, ReminderSettings()) is None


def test_nothing_is_due_for_a_decided_a_go_or_an_unposted_request() -> None:
    assert next_due_ms(dataclasses.replace(_record(), resolution=Resolution.APPROVED), BOTH) is None
    assert next_due_ms(_record(since_ms=0), BOTH) is None  # Go's record: no announcement time of ours
    assert next_due_ms(PluginData(user="a"), BOTH) is None
    # No root post to thread a reminder into, but an escalation can still find someone.
    unposted = dataclasses.replace(_record(), messages=())
    assert reminder_due_ms(unposted, BOTH) is None
    assert escalation_due_ms(unposted, BOTH) == SINCE + 300_000


def test_advance_makes_one_round_owed_per_call() -> None:
    record = _record()
    assert advance(record, SINCE + 59_999, EVERY) is None
    once = advance(record, SINCE + 10_000_000, EVERY)
    assert once is not None
    assert (once.delivery.reminder_rounds, once.delivery.reminder_last_ms) == (1, SINCE + 10_000_000)
    assert advance(once, SINCE + 10_000_000, EVERY) is None  # the next one waits `every` from now


def test_escalation_owes_new_root_posts_once() -> None:
    record = _record(roots_owed=("team/ops",))
    escalated = advance(record, SINCE + 300_000, ESCALATE)
    assert escalated is not None
    delivery = escalated.delivery
    assert delivery.escalated
    assert delivery.roots_owed == ("team/ops", "team/leads")
    assert delivery.escalation_owed == ("team/leads",)
    assert advance(escalated, SINCE + 900_000, ESCALATE) is None
    assert next_due_ms(escalated, BOTH) == SINCE + 60_000


# ---- the timer ----------------------------------------------------------------------------------


class FakeSleeps:
    """Sleeps that end only when the test releases them; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.release.wait()


async def test_the_timer_submits_a_resume_when_due_and_keeps_the_earliest() -> None:
    clock = Clock()
    sleeps = FakeSleeps()
    submitted: list[RequestEvent] = []
    timer = DueTimer(submitted.append, clock=clock, sleep=sleeps.sleep)
    timer.arm(RID, START + 60)
    timer.arm(RID, START + 90)  # later: the earlier one stays
    assert timer.due(RID) == START + 60
    timer.arm(RID, START + 30)  # earlier: replaces it
    assert timer.due(RID) == START + 30
    await asyncio.sleep(0)
    assert sleeps.asked[-1] == 30
    sleeps.release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert submitted == [RequestEvent(EventOp.RESUME, RID)]
    assert timer.pending == 0
    await timer.close()


async def test_the_timer_disarms_and_closes() -> None:
    sleeps = FakeSleeps()
    submitted: list[RequestEvent] = []
    timer = DueTimer(submitted.append, clock=Clock(), sleep=sleeps.sleep)
    timer.arm(RID, START + 60)
    timer.arm(RID, None)
    assert timer.pending == 0
    timer.arm("other", START + 60)
    await timer.close()
    timer.arm(RID, START + 1)  # closed: ignored
    assert timer.pending == 0
    sleeps.release.set()
    await asyncio.sleep(0)
    assert submitted == []


# ---- the engine ---------------------------------------------------------------------------------


def _settings(reminders: ReminderSettings, **changes: object) -> EngineSettings:
    base = EngineSettings(role_to_recipients={"*": ["team/ops"]}, style="rich", cluster="prod", reminders=reminders)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _reminders(kit: Kit) -> list[tuple[str, int]]:
    """(thread, number) of every reminder posted, in order."""
    return [
        (p.root_id, p.marker.review_index)
        for p in kit.chat.posts
        if p.marker is not None and p.marker.kind is PostKind.REMINDER
    ]


async def test_reminders_go_into_every_thread_when_due_up_to_max() -> None:
    kit = make_kit(_settings(EVERY))
    await kit.put(request())
    roots = [p.post_id for p in kit.chat.root_posts()]
    kit.clock.advance(59)
    await kit.resume()
    assert _reminders(kit) == []
    kit.clock.advance(1)
    await kit.resume()
    assert sorted(_reminders(kit)) == sorted((root, 0) for root in roots)
    reminder = kit.chat.thread(roots[0])[0].message
    assert "**Reminder** (1 of 2)" in reminder
    assert "has waited 1 min without a decision" in reminder
    kit.clock.advance(119)
    await kit.resume()
    assert len(_reminders(kit)) == 2
    kit.clock.advance(1)
    await kit.resume()
    assert len(_reminders(kit)) == 4
    assert "**Reminder** (2 of 2)" in kit.chat.thread(roots[0])[-1].message
    kit.clock.advance(10_000)
    await kit.resume()
    assert len(_reminders(kit)) == 4  # max reached


async def test_any_event_brings_a_due_reminder_along() -> None:
    kit = make_kit(_settings(EVERY))
    await kit.put(request())
    kit.clock.advance(61)
    await kit.put(request(reviews=(review(state=RequestState.DENIED),)))
    assert len(_reminders(kit)) == 2


async def test_a_decision_stops_them() -> None:
    kit = make_kit(_settings(BOTH))
    await kit.put(request())
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    kit.clock.advance(10_000)
    await kit.resume()
    assert _reminders(kit) == []
    assert kit.record().delivery.escalated is False
    deleted = make_kit(_settings(EVERY))
    await deleted.put(request())
    await deleted.delete()
    deleted.clock.advance(10_000)
    await deleted.resume()
    assert _reminders(deleted) == []


async def test_escalation_posts_the_request_to_new_recipients_with_a_note_and_edits_them_later() -> None:
    kit = make_kit(_settings(BOTH))
    await kit.put(request())
    for step in (60, 120, 120):  # reminders at 1 and 3 min, the escalation at 5
        kit.clock.advance(step)
        await kit.resume()
    leads = kit.chat.in_channel("chan-leads")
    assert len(leads) == 2
    root, note = leads
    assert root.root_id == "" and note.root_id == root.post_id
    assert note.marker is not None and note.marker.kind is PostKind.ESCALATION
    assert "**Escalation**" in note.message
    assert len(_reminders(kit)) == 4  # none in the escalation thread: they were all sent before it
    await kit.put(request(RequestState.APPROVED, reviews=(review(),)))
    assert root.post_id in {post.post_id for post, _ in kit.chat.edits}


async def test_a_restart_neither_skips_nor_repeats_a_reminder() -> None:
    kit = make_kit(_settings(EVERY))
    await kit.put(request())
    kit.clock.advance(60)
    await kit.resume()
    assert len(_reminders(kit)) == 2
    restarted = kit.restarted()
    await restarted.put(request())  # the reconcile's event after the start
    kit.clock.advance(60)
    await restarted.resume()
    assert len(_reminders(kit)) == 2  # not due yet: the second is `every` after the first
    kit.clock.advance(60)
    await restarted.resume()
    assert sorted(n for _, n in _reminders(kit)) == [0, 0, 1, 1]


async def test_two_replicas_woken_together_send_each_reminder_once() -> None:
    kit = make_kit(_settings(EVERY))
    other = kit.restarted()
    await kit.put(request())
    await other.put(request())
    kit.clock.advance(60)
    await asyncio.gather(kit.resume(), other.resume())
    await asyncio.gather(kit.resume(), other.resume())  # whoever lost the claim looks again
    assert len(_reminders(kit)) == 2


async def test_a_long_outage_catches_up_one_reminder_at_a_time() -> None:
    kit = make_kit(_settings(EVERY))
    await kit.put(request())
    kit.clock.advance(36_000)
    await kit.resume()
    await kit.resume()
    assert len(_reminders(kit)) == 2  # one round, not a burst
    kit.clock.advance(120)
    await kit.resume()
    assert len(_reminders(kit)) == 4


async def test_the_engine_arms_the_timer_with_the_next_due_time() -> None:
    sleeps = FakeSleeps()
    kit = make_kit(_settings(BOTH))
    submitted: list[RequestEvent] = []
    timer = DueTimer(submitted.append, clock=kit.clock, sleep=sleeps.sleep)
    kit.engine.attach_timer(timer)
    await kit.put(request())
    assert timer.due(RID) == START + 60
    kit.clock.advance(60)
    sleeps.release.set()  # the timer fires
    for _ in range(3):
        await asyncio.sleep(0)
    sleeps.release.clear()
    assert submitted == [RequestEvent(EventOp.RESUME, RID)]
    await kit.engine.handle(submitted[0])
    assert len(_reminders(kit)) == 2
    assert timer.due(RID) == START + 60 + 120
    await kit.put(request(RequestState.DENIED, reviews=(review(state=RequestState.DENIED),)))
    assert timer.due(RID) is None
    await timer.close()


@pytest.mark.parametrize("style", ["classic", "rich"])
async def test_reminders_in_both_styles_mention_resolved_reviewers(style: str) -> None:
    kit = make_kit(_settings(EVERY, style=style))
    kit.chat.usernames["reviewer1@example.com"] = "rev1"
    await kit.put(request())
    kit.clock.advance(60)
    await kit.resume()
    reminder = kit.chat.replies()[0].message
    assert "@rev1, please review it." in reminder
    assert "**Reminder** (1 of 2)" in reminder
