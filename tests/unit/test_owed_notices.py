"""owed()/settle() for the requester's messages, reminders and the escalation note; the view of a record."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sidecar.domain.errors import RecipientError, TransientError
from sidecar.domain.model import AccessRequest, PostRef, RequestState, Review
from sidecar.domain.record import Delivery, Facts, PluginData, Resolution
from sidecar.engine.owed import Outcome, PostRoot, Reminder, RequesterDM, destinations, notices, owed, settle
from sidecar.engine.texts import Texts
from sidecar.engine.views import announced_facts, request_view
from sidecar.render.view import RichPost

RID = "req-1"
AT = datetime(2025, 1, 2, 15, 4, tzinfo=UTC)
R1 = Review("r1@example.com", RequestState.APPROVED, "okay", AT)
P1, P2 = PostRef("c1", "p1"), PostRef("c2", "p2")
TEXTS = Texts(style="rich", clock=lambda: AT.timestamp())
FACTS = Facts(cluster="prod", recipients=("team/ops", "bob@example.com"), reviews=(R1,))


def _record(**delivery: object) -> PluginData:
    base = Delivery(tracked=True, since_ms=5, replies_done={"p1": 1, "p2": 1}, edits_done={"p1": 0, "p2": 0},
                    requester="alice@example.com")
    return PluginData(user="alice@example.com", roles=("editor",), reviews_count=1, messages=(P1, P2), facts=FACTS,
                      delivery=dataclasses.replace(base, **delivery))  # type: ignore[arg-type]


def _kinds(steps: Sequence[object]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for step in steps:
        if isinstance(step, RequesterDM):
            out.append(("dm", step.index))
        elif isinstance(step, Reminder):
            out.append(("note" if step.escalation else "reminder", step.round))
        else:
            out.append((type(step).__name__, -1))
    return out


def test_the_requester_is_owed_the_announcement_each_review_and_the_outcome_in_order() -> None:
    record = _record()
    assert notices(record) == 2
    assert _kinds(owed(RID, record, None, TEXTS)) == [("dm", 0), ("dm", 1)]
    resolved = dataclasses.replace(record, resolution=Resolution.APPROVED)
    assert notices(resolved) == 3
    assert _kinds(owed(RID, _record(dms_done=2), None, TEXTS)) == []
    assert _kinds(owed(RID, dataclasses.replace(resolved, delivery=_record(dms_done=2).delivery), None, TEXTS)) == [
        ("dm", 2)
    ]


def test_the_announcement_waits_for_the_root_posts() -> None:
    waiting = _record(roots_owed=("team/ops",))
    assert [k for k in _kinds(owed(RID, waiting, None, TEXTS)) if k[0] == "dm"] == []
    # Later root posts (an escalation) hold nothing back once the announcement went out.
    later = _record(roots_owed=("team/leads",), dms_done=1)
    assert ("dm", 1) in _kinds(owed(RID, later, None, TEXTS))


def test_destinations_leave_out_recipients_given_up_on() -> None:
    record = _record(failed=("post to 'bob@example.com': no such user",))
    assert destinations(record) == ("team/ops",)


def test_settling_messages_counts_in_order_and_a_permanent_failure_stops_them() -> None:
    record = _record()
    look = lambda limit: RichPost("m")  # noqa: E731
    dm0, dm1 = RequesterDM(RID, "alice@example.com", 0, look), RequesterDM(RID, "alice@example.com", 1, look)
    done = settle(record, [Outcome(dm0, post=PostRef("d", "x")), Outcome(dm1, error=TransientError("503"))])
    assert (done.delivery.dms_done, done.delivery.requester) == (1, "alice@example.com")
    stopped = settle(done, [Outcome(dm1, error=RecipientError("alice@example.com", "no such user"))])
    assert (stopped.delivery.requester, stopped.delivery.failed) == ("", ())
    assert owed(RID, stopped, None, TEXTS) == []


def test_reminders_are_owed_per_thread_and_only_while_pending() -> None:
    record = _record(dms_done=2, reminder_rounds=2, reminded={"p1": 1})
    assert _kinds(owed(RID, record, None, TEXTS)) == [("reminder", 1), ("reminder", 0), ("reminder", 1)]
    decided = dataclasses.replace(record, resolution=Resolution.DENIED)
    assert [k for k in _kinds(owed(RID, decided, None, TEXTS)) if k[0] == "reminder"] == []


def test_an_escalation_post_gets_the_note_and_only_the_reminders_to_come() -> None:
    record = _record(dms_done=2, reminder_rounds=2, reminded={"p1": 2, "p2": 2}, roots_owed=("team/leads",),
                     escalated=True, escalation_owed=("team/leads",))
    root = PostRoot(RID, "team/leads", "")
    landed = settle(record, [Outcome(root, post=PostRef("c3", "p3"))])
    assert landed.delivery.notes_owed == ("p3",)
    assert landed.delivery.escalation_owed == ()
    assert landed.delivery.reminded["p3"] == 2
    steps = owed(RID, landed, None, TEXTS)
    assert ("note", 0) in _kinds(steps)
    note = next(s for s in steps if isinstance(s, Reminder) and s.escalation)
    assert "**Escalation**" in note.content(16_383).message
    sent = settle(landed, [Outcome(note, post=PostRef("c3", "n1"))])
    assert sent.delivery.notes_owed == ()


def test_the_view_prefers_the_request_and_falls_back_on_the_kept_facts() -> None:
    request = AccessRequest(id=RID, user="alice@example.com", roles=("editor",), state=RequestState.PENDING,
                            suggested_reviewers=("r1@example.com",), reviews=(R1,), created=AT,
                            expires=AT + timedelta(hours=8), expiry=AT + timedelta(hours=1),
                            resources=("/prod/node/n1",))
    facts = announced_facts(request, cluster="prod", recipients=("team/ops",), usernames={"r1@example.com": "r1"},
                            friendly_names={"/prod/node/n1": "web-1", "/other": "x"})
    assert facts.friendly_names == {"/prod/node/n1": "web-1"}
    record = PluginData(user="alice@example.com", roles=("editor",), reviews_count=1, facts=facts,
                        resources=request.resources)
    view = request_view(RID, record, None, now=AT, cluster="ignored", web_proxy_url="https://tp.example.com")
    assert view.cluster == "prod"
    assert view.reviews == (R1,)
    assert view.suggested_reviewers[0].mattermost_username == "r1"
    assert view.resources[0].friendly_name == "web-1"
    assert view.request_expires == AT + timedelta(hours=1)
    assert view.link == f"https://tp.example.com/web/requests/{RID}"
    bare = request_view(RID, dataclasses.replace(record, facts=None), request, now=AT, cluster="from-ping")
    assert bare.cluster == "from-ping"
    assert bare.access_expires == AT + timedelta(hours=8)
