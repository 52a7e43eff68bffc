"""The fault suite: bursts of requests through Mattermost and Teleport faults; nothing lost, nothing twice.

Every case sends a burst of access requests, each with three recipients (the team channel `editor` maps to
and the DMs of the two suggested reviewers), and takes each request to a fate (approved or denied by two
reviews, approved by an admin, or left pending with one review) while a fault is going on. Then
`expect_delivered`, the one checker, compares the fake Mattermost with the requests the fake Auth holds:
every request has exactly one root post in each recipient channel, every review exactly one reply in each
of its root posts' threads, every root post shows the request's final status, and the request's plugin data
lists exactly those posts and owes nothing more. It polls until that holds, waits for the barrier that says
nothing else is coming (`settled()`, where one sidecar saw every watch event), and checks again.

A request is resolved only once its root posts are visible (as a person would, having seen the message): a
request resolved before anybody announced it is, as in Go, never announced (test_reconcile.py), so resolving
earlier would make "announced once per recipient" depend on timing. A first review goes right away.

Retries of owed work are capped at 2 s (TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL) so that each case ends
quickly. Separate processes or containers, public interfaces only; the compose deployment runs none of these
configurations, so compose mode skips the suite. Random choices (kill and cut moments) print their seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, TypeVar

import pytest

from fakes.launch import ManagedProcess
from fakes.stack import Stack, StackError, eventually
from fakes.teleport_harness import HarnessClient
from sidecar.codec.plugindata import decode
from sidecar.domain.errors import TransientError
from sidecar.domain.model import RequestState
from tests.e2e.conftest import MODE_ENV, MakeStack, channel_id, dm_channel, fields

CHANNEL = "myteam/town-square"
REVIEWER, REVIEWER2 = "reviewer@example.com", "reviewer2@example.com"
TWO_REVIEWS = "requester@example.com"  # the seed's advanced requester: two approvals (or denials) resolve
ONE_APPROVAL = "myuser"
ADMIN = "admin"
PEOPLE = (TWO_REVIEWS, ONE_APPROVAL, REVIEWER, REVIEWER2, ADMIN)
RECIPIENTS = 3  # CHANNEL by role, and both suggested reviewers' DMs
T = TypeVar("T")

FAULT_OPTIONS: dict[str, Any] = {
    "edition": "oss",
    "role_to_recipients": {"editor": [CHANNEL]},
    "extra_env": {"TELEPORT_MATTERMOST_RETRY_MAX_INTERVAL": "2s"},
}
STATUS = {"PENDING": "⏳ PENDING", "APPROVED": "✅ APPROVED", "DENIED": "❌ DENIED"}
REPLY = re.compile(r"\A(\S+) reviewed the request at [^\n]*\nResolution: (?:\S+ )?([A-Z]+)\.")

# Each case passes well within this; a wait that runs out reports what it last saw.
DELIVERY_TIMEOUT = 120.0


# ---- the burst -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fate:
    """What happens to one request: REVIEWER's review at once; REVIEWER2's review or the admin's verdict later."""

    requester: str
    first: RequestState | None = None
    second: RequestState | None = None
    admin: RequestState | None = None

    @property
    def resolves(self) -> bool:
        return self.second is not None or self.admin is not None


APPROVED, DENIED = RequestState.APPROVED, RequestState.DENIED
FATES = (
    Fate(TWO_REVIEWS, first=APPROVED, second=APPROVED),
    Fate(TWO_REVIEWS, first=DENIED, second=DENIED),
    Fate(ONE_APPROVAL, admin=APPROVED),
    Fate(TWO_REVIEWS, first=APPROVED),  # stays pending, with one review
)


class Poll:
    """Polls the fakes for the request ids that reached a stage, and wakes whoever waits for one of them."""

    def __init__(self, probe: Callable[[], Awaitable[set[str]]], interval: float = 0.4) -> None:
        self._probe = probe
        self._interval = interval
        self._seen: set[str] = set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def wait_for(self, request_id: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="poll")
        async with self._changed:
            await self._changed.wait_for(lambda: request_id in self._seen)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(StackError):
                seen = await self._probe()
                async with self._changed:
                    self._seen = seen
                    self._changed.notify_all()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Burst:
    """`size` requests created `pace` seconds apart, each taken to its fate (FATES in turn), all concurrently.

    The resolving action of a request waits for `gate` (its root posts are all visible by default; "recorded":
    the sidecar has written its plugin data) and then for `hold`, when given. The people act through their own
    Teleport clients; a call failing for a transient reason (a fault on Auth) is made again, as a person would.
    """

    def __init__(
        self, stack: Stack, size: int, *, label: str, pace: float = 0.0,
        gate: Literal["announced", "recorded"] = "announced",
        hold: asyncio.Event | None = None,
    ) -> None:
        self.stack = stack
        self.size = size
        self.label = label
        self.pace = pace
        self.hold = hold
        self.ids: list[str] = []  # in the order they were created
        self.opened = 0  # requests created and given their first review, if any
        probe = announced_ids if gate == "announced" else recorded_ids
        self._gate = Poll(lambda: probe(stack))
        self._task: asyncio.Task[list[str]] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"burst:{self.label}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def finished(self, timeout: float = DELIVERY_TIMEOUT) -> list[str]:
        """The ids, once every action was sent."""
        assert self._task is not None
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._task)

    async def reach(self, reached: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT) -> None:
        """Wait until `reached()` (about this burst's counters); the burst's own failure is raised instead."""
        async with asyncio.timeout(timeout):
            while not reached():
                assert self._task is not None
                if self._task.done():
                    self._task.result()
                    raise AssertionError(f"burst {self.label} finished without reaching the point waited for")
                await asyncio.sleep(0.05)

    async def _run(self) -> list[str]:
        try:
            async with contextlib.AsyncExitStack() as exits:
                people = {p: HarnessClient(await exits.enter_async_context(self.stack.teleport_client(p)))
                          for p in PEOPLE}
                created = await asyncio.gather(*(self._one(people, i) for i in range(self.size)))
                return list(created)
        finally:
            await self._gate.close()

    async def _one(self, people: Mapping[str, HarnessClient], index: int) -> str:
        await asyncio.sleep(index * self.pace)
        fate = FATES[index % len(FATES)]
        created = await again(lambda: people[fate.requester].create(
            ["editor"], reason=f"{self.label} {index}", reviewers=[REVIEWER, REVIEWER2]))
        rid = created.Metadata.Name
        self.ids.append(rid)
        first, second, verdict = fate.first, fate.second, fate.admin
        if first is not None:
            await again(lambda: people[REVIEWER].submit_access_review(rid, first, reason="first look"))
        self.opened += 1
        if not fate.resolves:
            return rid
        await self._gate.wait_for(rid)
        if self.hold is not None:
            await self.hold.wait()
        if second is not None:
            await again(lambda: people[REVIEWER2].submit_access_review(rid, second, reason="second look"))
        elif verdict is not None:
            await again(lambda: people[ADMIN].set_access_request_state(rid, verdict, reason="admin says so"))
        return rid

    @property
    def resolving(self) -> int:
        """How many requests of the burst get a resolving action."""
        return sum(FATES[i % len(FATES)].resolves for i in range(self.size))


async def again(call: Callable[[], Awaitable[T]], timeout: float = 90.0) -> T:
    """`call()`, repeated while it fails for a transient reason."""
    delay = 0.1
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await call()
            except TransientError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


async def announced_ids(stack: Stack) -> set[str]:
    """Requests with a root post in as many channels as they have recipients."""
    channels: defaultdict[str, set[str]] = defaultdict(set)
    for post in await stack.posts():
        if not post["root_id"]:
            channels[fields(post["message"]).get("Request ID", "")].add(post["channel_id"])
    return {rid for rid, seen in channels.items() if len(seen) >= RECIPIENTS}


async def records(stack: Stack) -> dict[str, dict[str, str]]:
    """Every request's `mattermost` plugin data (GET /plugin-data on the fake Auth)."""
    found = {}
    for item in await stack.auth_admin("GET", "/plugin-data"):
        entry = item.get("Spec", {}).get("Entries", {}).get("mattermost")
        if entry:
            found[item["Metadata"]["Name"]] = {str(k): str(v) for k, v in entry.get("Data", {}).items()}
    return found


async def recorded_ids(stack: Stack) -> set[str]:
    return set(await records(stack))


# ---- the checker ---------------------------------------------------------------------------------------------


async def recipient_channels(stack: Stack) -> list[str]:
    """The three channels every request of a burst goes to (looked up before any fault is installed)."""
    return [await channel_id(stack, CHANNEL), await dm_channel(stack, REVIEWER), await dm_channel(stack, REVIEWER2)]


def unfinished(record: Mapping[str, str]) -> list[str]:
    """What the record still owes Mattermost, or gave up on."""
    data = decode(record)
    delivery = data.delivery
    owed = [f"a root post for {recipient}" for recipient in delivery.roots_owed]
    for post in data.messages:
        if delivery.replies_done.get(post.post_id, 0) < data.reviews_count:
            owed.append(f"replies in {post.post_id}")
        if delivery.edits_done.get(post.post_id, 0) < delivery.edit_version:
            owed.append(f"an edit of {post.post_id}")
    owed += [f"gave up on {failure}" for failure in delivery.failed]
    return owed


def delivery_problems(
    posts: Sequence[Mapping[str, Any]], requests: Sequence[Mapping[str, Any]],
    stored: Mapping[str, Mapping[str, str]], channels: Collection[str],
) -> list[str]:
    """Everything about `requests` that Mattermost or plugin data does not show exactly once; [] when all is well."""
    roots_of: defaultdict[str, list[Mapping[str, Any]]] = defaultdict(list)
    thread: defaultdict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for post in posts:
        if post["root_id"]:
            thread[post["root_id"]].append(post)
        else:
            roots_of[fields(post["message"]).get("Request ID", "")].append(post)
    wanted = {request["Metadata"]["Name"] for request in requests}
    problems = [f"{len(roots_of[rid])} root posts about {rid!r}, not a request of the burst"
                for rid in sorted(set(roots_of) - wanted)]
    for request in requests:
        rid, spec = request["Metadata"]["Name"], request["Spec"]
        state = spec.get("State", "NONE")
        reviews = Counter((r["Author"], r["ProposedState"]) for r in spec.get("Reviews", []))
        mine = roots_of.get(rid, [])
        per_channel = Counter(root["channel_id"] for root in mine)
        if per_channel != Counter(channels):
            problems.append(f"{rid}: root posts per channel {dict(per_channel)}, want one in each of {channels}")
        for root in mine:
            where = f"{rid}: root post {root['id']} in {root['channel_id']}"
            status = fields(root["message"]).get("Status")
            if status != STATUS.get(state):
                problems.append(f"{where} shows {status!r}; the request is {state}")
            answered = Counter(_review_of(reply["message"]) for reply in thread.get(root["id"], []))
            if answered != reviews:
                problems.append(f"{where}: replies for {dict(answered)}, reviews {dict(reviews)}")
        record = stored.get(rid)
        if record is None:
            problems.append(f"{rid}: no plugin data")
            continue
        listed = sorted(filter(None, record.get("messages", "").split(",")))
        if listed != sorted(f"{root['channel_id']}/{root['id']}" for root in mine):
            problems.append(f"{rid}: plugin data lists {listed}, Mattermost has {[r['id'] for r in mine]}")
        if owed := unfinished(record):
            problems.append(f"{rid}: the record still owes {owed}")
    return problems


def _review_of(message: str) -> tuple[str, str]:
    found = REPLY.match(message)
    return (found.group(1), found.group(2)) if found else ("not a review reply", message[:60])


async def current_problems(stack: Stack, ids: Sequence[str], channels: Collection[str]) -> list[str]:
    held = {r["Metadata"]["Name"]: r for r in await stack.auth_admin("GET", "/requests")}
    missing = [f"{rid}: the fake Auth no longer holds it" for rid in ids if rid not in held]
    posts = await stack.posts()
    return missing + delivery_problems(posts, [held[rid] for rid in ids if rid in held], await records(stack),
                                       channels)


def _summary(problems: Sequence[str]) -> str:
    return f"{len(problems)} problems:\n" + "\n".join(problems[:12])


async def expect_delivered(
    stack: Stack, ids: Sequence[str], channels: Collection[str], *, settle: bool = True,
    timeout: float = DELIVERY_TIMEOUT,
) -> None:
    """The suite's one checker: wait until everything is shown exactly once, then check that it stays so.

    `settle`: wait for `settled()` (every watch event handled) before the last check; only valid while a single
    sidecar received every event (not after a SIGKILL, not with two replicas). Without it, the records owing
    nothing is the barrier: no sidecar has anything left to do for these requests.
    """
    assert len(set(ids)) == len(ids) and ids, ids

    async def complete() -> bool:
        problems = await current_problems(stack, ids, channels)
        assert not problems, _summary(problems)
        return True

    await eventually(complete, timeout=timeout, interval=0.5)
    if settle:
        await stack.settled(*ids, timeout=60)
    problems = await current_problems(stack, ids, channels)
    assert not problems, _summary(problems)


def test_the_checker_sees_losses_duplicates_stale_texts_and_owed_work() -> None:
    """The checker itself, on posts and records made up here: each way of going wrong is reported."""
    channels = ["chan-a", "chan-b", "chan-c"]
    reviews = [{"Author": REVIEWER, "ProposedState": "APPROVED"}, {"Author": REVIEWER2, "ProposedState": "APPROVED"}]
    request = {"Metadata": {"Name": "r1"}, "Spec": {"State": "APPROVED", "Reviews": reviews}}

    def root(channel: str, status: str = STATUS["APPROVED"]) -> dict[str, Any]:
        text = f"**Request ID**: r1\n**Status**: {status}\n"
        return {"id": f"root-{channel}", "channel_id": channel, "root_id": "", "message": text}

    def reply(channel: str, author: str) -> dict[str, Any]:
        text = f"{author} reviewed the request at 02 Jan 26 15:04 UTC.\nResolution: ✅ APPROVED.\n"
        return {"id": f"{author}-{channel}", "channel_id": channel, "root_id": f"root-{channel}", "message": text}

    def stored(*, roots_owed: Sequence[str] = (), edited: int = 1) -> dict[str, dict[str, str]]:
        delivery = {"v": 1, "since": 1, "roots": list(roots_owed), "version": 1, "failed": [],
                    "replies": {f"root-{c}": 2 for c in channels}, "edits": {f"root-{c}": edited for c in channels}}
        messages = ",".join(f"{c}/root-{c}" for c in channels)
        return {"r1": {"user": TWO_REVIEWS, "reviews_count": "2", "resolution": "APPROVED", "messages": messages,
                       "tm_delivery": json.dumps(delivery)}}

    posts = [root(c) for c in channels] + [reply(c, a) for c in channels for a in (REVIEWER, REVIEWER2)]
    assert delivery_problems(posts, [request], stored(), channels) == []
    wrong = {
        "root post twice": ([*posts, {**root("chan-a"), "id": "again"}], stored()),
        "root post lost": (posts[1:], stored()),
        "reply twice": ([*posts, {**posts[-1], "id": "again"}], stored()),
        "reply lost": (posts[:-1], stored()),
        "stale text": ([root("chan-a", STATUS["PENDING"]), *posts[1:]], stored()),
        "root post owed": (posts, stored(roots_owed=[CHANNEL])),
        "edit owed": (posts, stored(edited=0)),
        "no record": (posts, {}),
    }
    for what, (seen, records_) in wrong.items():
        assert delivery_problems(seen, [request], records_, channels), what


# ---- faults and processes ------------------------------------------------------------------------------------


async def add_fault(stack: Stack, **rule: Any) -> str:
    """Install a fault rule on the fake Mattermost; returns its id."""
    return str((await stack.mm_admin("POST", "/fake/faults", rule))["id"])


async def fired(stack: Stack, fault: str) -> int:
    """How often a fault rule has fired so far."""
    return sum(int(f["fired"]) for f in await stack.mm_admin("GET", "/fake/faults") if f["id"] == fault)


async def kill_sidecar(stack: Stack) -> None:
    """SIGKILL the sidecar: no graceful shutdown, whatever it was doing is cut off. Then forget it."""
    sidecar = stack.sidecar
    assert sidecar is not None
    sidecar.send_signal(signal.SIGKILL)
    await sidecar.wait(30)
    await stack.stop_sidecar()  # it has exited: this only removes it from the stack


async def owing(stack: Stack) -> int:
    """How many requests' records owe Mattermost something right now."""
    return sum(bool(unfinished(record)) for record in (await records(stack)).values())


async def start_replica(stack: Stack) -> ManagedProcess:
    """A second sidecar on the same fakes and config; `stack.sidecar` stays the first."""
    if os.environ.get(MODE_ENV, "processes") == "processes":
        return await stack.start_extra_sidecar()
    # A container stack starts a new container on every start_sidecar() and keeps the others running.
    first = stack.sidecar
    second = await stack.start_sidecar()
    stack.sidecar = first
    return second


def seeded(name: str) -> random.Random:
    seed = int(os.environ.get("TM_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"{name}: TM_FAULT_SEED={seed}")  # shown with a failure, to replay the same moments
    return random.Random(seed)


# ---- the cases -----------------------------------------------------------------------------------------------


async def test_mattermost_failing_30_percent_of_calls(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    fault = await add_fault(stack, route="*", method="*", status=500, rate=0.3)
    async with Burst(stack, 24, label="flaky") as burst:
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)  # with the fault still on
    assert await fired(stack, fault) > 0


async def test_a_429_storm_loses_nothing(make_stack: MakeStack) -> None:
    """The rate limit binds all along (the sidecar paces itself to it), and 429s come anyway, as a storm."""
    stack = await make_stack(**FAULT_OPTIONS, rate_limit=10, rate_burst=20)
    channels = await recipient_channels(stack)
    # Pacing avoids the limiter's own 429s, so the storm is injected: answers without X-RateLimit-* headers.
    storm = await add_fault(stack, route="*", method="*", status=429, rate=0.3, times=20)
    async with Burst(stack, 20, label="limited") as burst:
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)
    assert await stack.mm_admin("GET", "/fake/faults") == [], f"fault {storm} must have fired all 20 times"
    calls = await stack.mm_admin("GET", "/fake/requests")
    assert len(calls) > 5 * 21, "the burst must need several times the limiter's allowance"


async def test_posts_committed_with_the_answer_lost_are_not_duplicated(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    fault = await add_fault(stack, route="/api/v4/posts", method="POST", drop_after_commit=True, rate=0.3)
    async with Burst(stack, 24, label="dropped answers") as burst:
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)
    assert await fired(stack, fault) > 0


async def test_a_10_second_mattermost_outage_mid_burst(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    async with Burst(stack, 24, label="outage", pace=0.3) as burst:
        await burst.reach(lambda: len(burst.ids) >= 8)
        fault = await add_fault(stack, route="*", method="*", outage=True)
        await asyncio.sleep(10)  # the length of the outage, not a wait for the sidecar
        assert await fired(stack, fault) > 0
        await stack.mm_admin("DELETE", f"/fake/faults/{fault}")
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)


async def test_watch_stream_cut_every_second_or_two(make_stack: MakeStack) -> None:
    """Events queued for a stream that is cut are never sent: only the reconcile after the reconnect shows them."""
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    rng = seeded("cuts")
    cuts = 0
    async with Burst(stack, 24, label="cut", pace=0.25) as burst:
        while not burst.done:
            await asyncio.sleep(rng.uniform(1.0, 2.0))
            cuts += (await stack.auth_admin("POST", "/faults/drop-watchers"))["dropped"]
        ids = await burst.finished()
    assert cuts >= 2, f"only {cuts} streams were cut"
    await expect_delivered(stack, ids, channels)


async def test_auth_refusing_every_call_for_10_seconds_mid_burst(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    async with Burst(stack, 24, label="refused", pace=0.3) as burst:
        await burst.reach(lambda: len(burst.ids) >= 8)
        await stack.auth_admin("POST", "/faults/refuse", {"seconds": 10})  # ends by itself
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)


async def test_identity_rotated_every_2_seconds(make_stack: MakeStack) -> None:
    # Certificates live 6 s: a sidecar that kept an old one would be refused within the burst.
    stack = await make_stack(**FAULT_OPTIONS, tbot_renewal="2s", tbot_ttl="6s")
    channels = await recipient_channels(stack)
    tbot = stack.tbot
    assert tbot is not None
    renewals = len(tbot.stdout_lines)
    async with Burst(stack, 24, label="rotated", pace=0.4) as burst:
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)
    assert len(tbot.stdout_lines) >= renewals + 4  # more than one certificate lifetime went by


@pytest.mark.timeout(360)
async def test_sidecar_killed_at_random_moments_during_a_burst_of_200(make_stack: MakeStack) -> None:
    """SIGKILL, then start again, several times: the record says what is owed, the reconcile what was missed."""
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    # Slow posts keep deliveries in flight, so every kill cuts some short.
    await add_fault(stack, route="/api/v4/posts", method="POST", latency_ms=100)
    rng = seeded("kills")
    kills = cut_short = 0
    async with Burst(stack, 200, label="killed", pace=0.05) as burst:
        while not burst.done and kills < 6:
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            await kill_sidecar(stack)
            kills += 1
            cut_short += await owing(stack)
            await stack.start_sidecar()
        ids = await burst.finished(timeout=240)
    assert kills >= 3, "the burst ended before the sidecar was killed a few times"
    assert cut_short > 0, "no kill left work owed"
    # Events the killed sidecars took but never handled are not counted by settled(): the records are the barrier.
    await expect_delivered(stack, ids, channels, settle=False, timeout=240)


async def test_requests_created_while_the_sidecar_is_down(make_stack: MakeStack) -> None:
    stack = await make_stack(sidecar=False, **FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    stack.write_config()
    async with Burst(stack, 20, label="while down") as burst:
        await burst.reach(lambda: burst.opened == burst.size)  # all created, first reviews given
        assert await stack.posts() == []
        await stack.start_sidecar()
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels)


async def test_two_replicas_one_killed_mid_burst(make_stack: MakeStack) -> None:
    """Both replicas get every event and race for each record; the survivor takes the dead one's claims over."""
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    survivor = await start_replica(stack)
    # Slow posts keep deliveries in flight, so the kill leaves work claimed by a replica that is gone.
    await add_fault(stack, route="/api/v4/posts", method="POST", latency_ms=200)
    async with Burst(stack, 30, label="replicas", pace=0.15) as burst:
        await burst.reach(lambda: len(burst.ids) >= 12)
        await kill_sidecar(stack)
        assert await owing(stack) > 0, "the kill must come while work is owed"
        ids = await burst.finished()
    await expect_delivered(stack, ids, channels, settle=False)
    assert survivor.returncode is None


async def test_approvals_arriving_while_root_posts_are_still_being_retried(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    fault = await add_fault(stack, route="/api/v4/posts", method="POST", status=503)
    async with Burst(stack, 20, label="approved before posted", gate="recorded") as burst:
        ids = await burst.finished()  # every resolution sent once the sidecar had recorded the request
        await eventually(lambda: _at_least(fired(stack, fault), RECIPIENTS * len(ids)))
        assert await stack.posts() == []  # every root post is still owed
        await stack.mm_admin("DELETE", f"/fake/faults/{fault}")
    await expect_delivered(stack, ids, channels)


async def test_edits_failing_while_requests_are_resolved(make_stack: MakeStack) -> None:
    stack = await make_stack(**FAULT_OPTIONS)
    channels = await recipient_channels(stack)
    edits_failing = asyncio.Event()
    async with Burst(stack, 20, label="edits failing", hold=edits_failing) as burst:
        await burst.reach(lambda: burst.opened == burst.size)
        await eventually(lambda: _covers(announced_ids(stack), burst.ids))
        fault = await add_fault(stack, route="/api/v4/posts/{post_id}", method="PUT", status=500)
        edits_failing.set()
        ids = await burst.finished()
        # Edits were refused at least as often as the resolutions need them.
        await eventually(lambda: _at_least(fired(stack, fault), RECIPIENTS * burst.resolving))
        posts = await stack.posts()
        assert all(fields(p["message"]).get("Status") == STATUS["PENDING"] for p in posts if not p["root_id"])
        await stack.mm_admin("DELETE", f"/fake/faults/{fault}")
    await expect_delivered(stack, ids, channels)


async def _at_least(count: Awaitable[int], wanted: int) -> bool | None:
    return True if await count >= wanted else None


async def _covers(found: Awaitable[set[str]], ids: Collection[str]) -> bool | None:
    return True if set(ids) <= await found else None
