"""End-to-end benchmark: the sidecar as a process against the fakes, next to the least work the job needs.

Every phase starts FRESH fake Auth and fake Mattermost processes (fakes/stack.py), so no phase pays for another's
leftovers. Requests are created over gRPC as `myuser` (fakes/teleport_harness.py); each goes to three recipients
(a channel and two DMs).

1. burst: `--requests` creates at `--concurrency` in flight, once with the sidecar running, once with the
   floor instead (bench/e2e_floor.py: the bare job in this process). Total time (first create → last root
   post), root posts/s, create→post p50/p99, Mattermost calls per delivered post, the sidecar's peak RSS; and
   the fakes' median call time before and after the floor's burst (their per-call cost must stay flat).
2. steady: `--steady-rate` creates/s for `--steady-seconds` (open loop, fixed schedule), sidecar and floor;
   every `--review-every`-th request is approved 1 s after its creation, so replies and edits are exercised.
3. rate-limited: the fake Mattermost limits the bot to `--rate-limit`/s, burst `--rate-burst`; a burst of
   `--limited-requests` for the sidecar: sustained posts/s past the burst allowance, and the 429 answers.
4. rss: the sidecar's RSS idle (2 s after "Plugin is ready") and after a burst of `--rss-requests`.

What is measured, exactly:
* create time: the client's clock just before the CreateAccessRequest call; post time: the post's `create_at`
  in the fake (same machine, same clock). Latencies are per root post.
* a delivered post is a root post, a reply or an edit the fake stored in the measured window (after a warm-up
  request, which resolves the recipients); calls are every /api/v4 call the fake logged in that window.
* RSS: VmRSS and VmHWM (peak) of the sidecar process from /proc/<pid>/status.

Run: `make bench` (default sizes: about 2.5 minutes on 2 cores, half a minute of it the 10,000-request phase,
which takes as long as the sidecar's throughput at that backlog says), `python -m bench.e2e_burst --quick` (small sizes,
about a minute and a half), or pick phases with `--phases burst,steady`. `--workdir DIR` keeps every process's
log, `--sidecar-debug` logs the sidecar at DEBUG there, `--profile` samples it with py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e_floor import Floor, time_calls
from bench.e2e_profile import find_py_spy, profiled, summarize
from bench.e2e_report import (
    FakeCost,
    LogEntry,
    PhaseResult,
    Row,
    create_to_post_ms,
    format_table,
    format_targets,
    percentile,
    phase_rows,
    rate_limit_stats,
    request_id_of,
    targets,
)
from fakes.stack import BOT_TOKEN, Stack, StackOptions
from fakes.teleport_harness import HarnessClient
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient

RECIPIENTS = ("myteam/town-square", "reviewer@example.com", "reviewer2@example.com")
REQUESTER = "myuser"
REVIEWER = "reviewer@example.com"
REVIEW_DELAY = 1.0  # seconds between a steady-phase create and its approval
PHASES = ("burst", "steady", "limited", "rss")


@dataclass(frozen=True)
class Sizes:
    """How much each phase does."""

    requests: int = 1000
    concurrency: int = 32
    steady_rate: float = 20.0
    steady_seconds: float = 30.0
    review_every: int = 4
    limited_requests: int = 100
    rate_limit: float = 10.0
    rate_burst: int = 100
    rss_requests: int = 10_000
    probes: int = 30


QUICK = Sizes(requests=60, concurrency=8, steady_rate=10.0, steady_seconds=3.0, review_every=3,
              limited_requests=45, rss_requests=100, probes=5)


# ---- talking to the fakes ---------------------------------------------------------------------------------------


class FakeMattermostApi:
    """The fake Mattermost's `/fake/` routes (admin token) and a bot-token post, over one session."""

    def __init__(self, http: aiohttp.ClientSession, url: str, admin_token: str) -> None:
        self._http = http
        self._url = url
        self._admin = {"Authorization": f"Bearer {admin_token}"}

    async def _get(self, path: str) -> Any:
        async with self._http.get(self._url + path, headers=self._admin) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def counts(self) -> dict[str, int]:
        """Posts, root posts, replies, edits and logged requests (constant time in the fake)."""
        return dict(await self._get("/fake/counts"))

    async def log_since(self, offset: int) -> tuple[list[LogEntry], int]:
        """Every API call logged from `offset` on, and how many of those the bounded log had already dropped."""
        page = await self._get(f"/fake/log?offset={offset}")
        entries = [LogEntry(r["method"], r["route"], r["status"], int(r["at"])) for r in page["requests"]]
        return entries, int(page["offset"]) - offset

    async def posts(self) -> list[dict[str, Any]]:
        """Every stored post (read once, after a phase)."""
        return list(await self._get("/fake/posts"))

    async def post_as_bot(self, channel_id: str, message: str) -> None:
        """A post made with the bot's token (the per-call cost probe)."""
        body = {"channel_id": channel_id, "message": message}
        async with self._http.post(self._url + "/api/v4/posts", json=body,
                                   headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as resp:
            resp.raise_for_status()

    async def ping(self) -> None:
        """GET /api/v4/system/ping: a call whose cost does not depend on the fake's state."""
        async with self._http.get(self._url + "/api/v4/system/ping") as resp:
            resp.raise_for_status()
            await resp.read()

    async def channel_id(self, team_channel: str) -> str:
        """A seeded channel's id."""
        return str((await self._get("/fake/seed"))["channels"][team_channel])

    async def wait_for(self, done: Callable[[Mapping[str, int]], bool], timeout: float) -> bool:
        """Poll the counts (10 per second: cheap for the fake) until `done`; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(await self.counts()):
                return True
            await asyncio.sleep(0.1)
        return False

    async def wait_quiet(self, quiet: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until no API call has been logged for `quiet` seconds (late retries belong to the phase)."""
        deadline = time.monotonic() + timeout
        last = (await self.counts())["requests"]
        since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            await asyncio.sleep(0.1)
            now = (await self.counts())["requests"]
            if now != last:
                last, since = now, time.monotonic()


def read_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc/<pid>/status; NaN when it cannot be read."""
    values = {"VmRSS": math.nan, "VmHWM": math.nan}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


def read_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat); NaN when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


#: Our names for the stack's processes in the CPU rows.
CPU_NAMES = {"teleport-auth": "fake Auth", "mattermost": "fake Mattermost", "sidecar": "sidecar"}
BENCH_CPU = "bench process (creates, polls, floor)"


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of every process of the stack, and of this process."""
    found = {CPU_NAMES.get(p.name, p.name): read_cpu_s(p.pid) for p in stack.processes if p.returncode is None}
    found[BENCH_CPU] = time.process_time()
    return found


# ---- the workload ---------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """What was sent: request id → the client's send time (ms since the epoch), and the reviews."""

    sent_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    answered_ms: float = math.nan  # when the last create was answered
    reviewed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def first_ms(self) -> float:
        """When the first create was sent."""
        return min(self.sent_ms.values(), default=math.nan)


class Requester:
    """Creates (as myuser) and approves (as reviewer@example.com) requests over gRPC."""

    def __init__(self, creator: HarnessClient, reviewer: HarnessClient) -> None:
        self._creator = creator
        self._reviewer = reviewer

    async def create(self, workload: Workload, reason: str) -> str:
        """One create; its send time goes into `workload`."""
        sent = time.time() * 1000
        created = await self._creator.create(["editor"], reason=reason)
        rid = created.Metadata.Name
        workload.sent_ms[rid] = sent
        workload.answered_ms = time.time() * 1000
        return rid

    async def burst(self, count: int, concurrency: int) -> Workload:
        """`count` creates with `concurrency` in flight (closed loop)."""
        workload = Workload()
        numbers = iter(range(count))

        async def worker() -> None:
            for i in numbers:
                await self.create(workload, f"burst {i}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return workload

    async def steady(self, rate: float, seconds: float, review_every: int) -> Workload:
        """Creates on a fixed schedule of `rate`/s (open loop: a slow answer does not delay the next create);
        every `review_every`-th request is approved REVIEW_DELAY s after its create was sent."""
        workload = Workload()
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()

        async def one(i: int) -> None:
            try:
                rid = await self.create(workload, f"steady {i}")
                if review_every and i % review_every == 0:
                    await asyncio.sleep(max(0.0, workload.sent_ms[rid] / 1000 + REVIEW_DELAY - time.time()))
                    await self._reviewer.submit_access_review(rid, RequestState.APPROVED, reason="benchmark")
                    workload.reviewed += 1
            except Exception as exc:  # counted and reported; the schedule goes on
                workload.errors.append(f"{type(exc).__name__}: {exc}")

        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return workload


@contextlib.asynccontextmanager
async def requester(stack: Stack) -> AsyncIterator[Requester]:
    """A Requester with its two gRPC clients, closed on exit."""
    async with (
        await TeleportClient.connect(stack.auth["auth_addr"], identity_file=stack.identities[REQUESTER]) as creator,
        await TeleportClient.connect(stack.auth["auth_addr"], identity_file=stack.identities[REVIEWER]) as reviewer,
    ):
        yield Requester(HarnessClient(creator), HarnessClient(reviewer))


@contextlib.asynccontextmanager
async def fresh_stack(workdir: Path, *, sidecar: bool, rate_limit: float | None = None, rate_burst: int | None = None,
                      debug: bool = False) -> AsyncIterator[tuple[Stack, FakeMattermostApi]]:
    """New fake Auth and Mattermost processes (and the sidecar), all stopped on exit, also on errors or Ctrl-C."""
    options = StackOptions(recipients=RECIPIENTS, sidecar_debug=debug, rate_limit=rate_limit, rate_burst=rate_burst)
    stack = Stack(workdir, options)
    try:
        await stack.start(sidecar=sidecar)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            yield stack, FakeMattermostApi(http, stack.mm["url"], stack.mm["admin_token"])
    finally:
        await stack.stop()


# ---- one run: the workload against a fresh stack ------------------------------------------------------------------


Drive = Callable[[Requester], Awaitable[Workload]]


@dataclass(frozen=True)
class RunSpec:
    """One phase variant: which workload, with the sidecar or the floor, and what to measure besides."""

    name: str
    requests: int
    drive: Drive
    sidecar: bool
    warm_up: bool = True
    rate_limit: float | None = None
    rate_burst: int | None = None
    probes: int = 0  # floor only: time the fakes' calls before and after, this many of each
    timeout: float = 300.0


async def run_phase(spec: RunSpec, workdir: Path, py_spy: str | None = None, debug: bool = False) -> PhaseResult:
    """Start fresh fakes (and the sidecar or the floor), run the workload, and measure it; with `py_spy`, profile
    the sidecar from the first create until the phase is quiet; with `debug`, the sidecar logs at DEBUG."""
    expected = spec.requests * len(RECIPIENTS)
    result = PhaseResult(spec.name, spec.requests, expected)
    here = workdir / spec.name.replace(" ", "-")
    stacks_file = here / "sidecar.py-spy.txt"
    async with fresh_stack(here, sidecar=spec.sidecar, rate_limit=spec.rate_limit, rate_burst=spec.rate_burst,
                           debug=debug) as (stack, mm), requester(stack) as people:
        async with contextlib.AsyncExitStack() as floor_scope:
            pid = stack.sidecar.pid if stack.sidecar is not None else None
            if pid is not None:
                await asyncio.sleep(2.0)  # let start-up settle: "idle" is after start, before load
                result.rss_idle_mb = read_rss_mb(pid)[0]
            probes: FakeCostProbe | None = None
            floor: Floor | None = None
            if not spec.sidecar:
                if spec.probes:
                    probes = await FakeCostProbe.open(stack, mm, people, floor_scope)
                    await probes.measure("empty", spec.probes)
                floor = await floor_scope.enter_async_context(Floor(
                    stack.auth["auth_addr"], stack.plugin_identity or Path(), stack.mm["url"], BOT_TOKEN,
                    RECIPIENTS))
            if spec.warm_up:
                base = await mm.counts()
                await people.create(Workload(), "warm-up")
                if not await mm.wait_for(lambda c: c["root_posts"] >= base["root_posts"] + len(RECIPIENTS), 60):
                    raise RuntimeError(f"{spec.name}: the warm-up request was not announced within 60 s")
                await mm.wait_quiet(0.5)
            base = await mm.counts()
            cpu_before = cpu_snapshot(stack)
            if py_spy is not None and pid is not None:
                await floor_scope.enter_async_context(profiled(pid, stacks_file, py_spy))
            workload = await spec.drive(people)
            result.reviewed = workload.reviewed
            result.notes += workload.errors[:5]
            want_roots = base["root_posts"] + len(workload.sent_ms) * len(RECIPIENTS)
            want_threads = workload.reviewed * len(RECIPIENTS)
            finished = await mm.wait_for(
                lambda c: c["root_posts"] >= want_roots and c["replies"] >= base["replies"] + want_threads
                and c["edits"] >= base["edits"] + want_threads, spec.timeout)
            if not finished:
                result.notes.append(f"not finished within {spec.timeout:.0f} s")
            await mm.wait_quiet()
            cpu_after = cpu_snapshot(stack)
            result.cpu_s = {k: cpu_after[k] - cpu_before[k] for k in cpu_after if k in cpu_before}
            end = await mm.counts()
            entries, lost = await mm.log_since(base["requests"])
            if lost:
                result.notes.append(f"the fake's request log dropped {lost} calls: calls are undercounted")
            if floor is not None:
                await floor.stop_watching()
                result.notes += floor.errors[:5]
            if probes is not None:
                await probes.measure("full", spec.probes)
                result.fake_cost = probes.costs()
            if pid is not None:
                result.rss_now_mb, result.rss_peak_mb = read_rss_mb(pid)
        posts = await mm.posts()
    measure(result, workload, posts, entries, base, end)
    if py_spy is not None and stacks_file.exists():
        result.profile = summarize(stacks_file.read_text().splitlines())
    if spec.rate_burst is not None and spec.rate_limit is not None:
        result.rate = rate_limit_stats(entries, burst=spec.rate_burst, start_ms=workload.first_ms)
        result.rate_limit = spec.rate_limit
    return result


def measure(result: PhaseResult, workload: Workload, posts: Sequence[Mapping[str, Any]], entries: Sequence[LogEntry],
            base: Mapping[str, int], end: Mapping[str, int]) -> None:
    """Fill in the post-derived measures: roots found, total time, latencies, calls per delivered post, and where
    the time went (create → first post of a request, first → last post of a request)."""
    ours = [p for p in posts if not p.get("root_id") and request_id_of(str(p.get("message", ""))) in workload.sent_ms]
    result.roots = len(ours)
    result.latencies_ms = create_to_post_ms(ours, workload.sent_ms)
    if ours:
        result.total_s = (max(float(p["create_at"]) for p in ours) - workload.first_ms) / 1000
    result.calls = len(entries)
    result.delivered = sum(end[k] - base[k] for k in ("root_posts", "replies", "edits"))
    by_request: dict[str, list[float]] = {}
    for post in ours:
        by_request.setdefault(request_id_of(str(post["message"])) or "", []).append(float(post["create_at"]))
    if workload.sent_ms:
        seconds = (workload.answered_ms - workload.first_ms) / 1000
        result.notes.append(f"{len(workload.sent_ms)} creates answered within {seconds:.2f} s "
                            f"({len(workload.sent_ms) / max(seconds, 1e-3):.0f}/s)")
    first = [min(times) - workload.sent_ms[rid] for rid, times in by_request.items()]
    spread = [max(times) - min(times) for times in by_request.values() if len(times) > 1]
    if first:
        result.notes.append(f"create → first post of a request p50/p99 {percentile(first, 50):.0f}/"
                            f"{percentile(first, 99):.0f} ms; first → last post of a request p50/p99 "
                            f"{percentile(spread, 50):.0f}/{percentile(spread, 99):.0f} ms")
    others = sorted({f"{e.method} {e.route} {e.status}" for e in entries if not e.is_post
                     and not (e.method == "PUT" and e.route == "/api/v4/posts/{post_id}" and e.status == 200)})
    if others:
        result.notes.append("calls besides posts and edits: " + ", ".join(
            f"{o} ×{sum(1 for e in entries if f'{e.method} {e.route} {e.status}' == o)}" for o in others))


class FakeCostProbe:
    """Times the fakes' calls one after another while nothing else of ours runs: the per-call cost of a fake."""

    def __init__(self, plugin: TeleportClient, people: Requester, mm: FakeMattermostApi, channel: str) -> None:
        self._plugin = plugin
        self._people = people
        self._mm = mm
        self._channel = channel
        self._probe_request = ""
        self.results: dict[str, dict[str, tuple[float, float]]] = {}

    @classmethod
    async def open(cls, stack: Stack, mm: FakeMattermostApi, people: Requester,
                   scope: contextlib.AsyncExitStack) -> FakeCostProbe:
        """A probe with its own plugin client (closed with `scope`)."""
        client = await scope.enter_async_context(
            await TeleportClient.connect(stack.auth["auth_addr"], identity_file=stack.plugin_identity or Path()))
        return cls(client, people, mm, await mm.channel_id(RECIPIENTS[0]))

    async def measure(self, label: str, count: int) -> None:
        """Median ms of `count` sequential calls of each kind the job makes (and of pings), under `label`."""
        scratch = Workload()
        if not self._probe_request:
            self._probe_request = await self._people.create(scratch, "probe")
        rid, plugin, mm = self._probe_request, self._plugin, self._mm
        teleport_ping, mm_ping = plugin.ping, mm.ping
        self.results[label] = {
            "CreateAccessRequest": await time_calls(
                count, lambda i: self._people.create(scratch, f"probe {i}"), teleport_ping),
            "UpdatePluginData": await time_calls(
                count, lambda i: plugin.update_plugin_data(rid, "bench-probe", {"n": str(i)}, {}), teleport_ping),
            "GetPluginData": await time_calls(
                count, lambda i: plugin.get_plugin_data(rid, "bench-probe"), teleport_ping),
            "POST /posts": await time_calls(
                count, lambda i: mm.post_as_bot(self._channel, "probe " * 60), mm_ping),
        }

    def costs(self) -> dict[str, FakeCost]:
        """Per call: its medians with empty and with full state, each with the ping's."""
        empty, full = self.results.get("empty", {}), self.results.get("full", {})
        return {k: FakeCost(empty[k][0], full[k][0], empty[k][1], full[k][1]) for k in empty if k in full}


# ---- the phases -----------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Every phase's results, for the table and the targets."""

    sizes: Sizes
    burst: tuple[PhaseResult, PhaseResult] | None = None
    steady: tuple[PhaseResult, PhaseResult] | None = None
    limited: PhaseResult | None = None
    rss: PhaseResult | None = None
    seconds: float = 0.0


async def run(sizes: Sizes, phases: Sequence[str] = PHASES, workdir: Path | None = None,
              progress: Callable[[str], None] = lambda _: None, py_spy: str | None = None,
              debug: bool = False) -> Report:
    """Run the chosen phases one after another (each on fresh fakes) and return their results; with `py_spy`,
    profile the sidecar in its phases; with `debug`, the sidecar logs at DEBUG (slower; for reading its logs)."""
    report = Report(sizes)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        root = workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="e2e-bench-")))
        s = sizes

        def burst(count: int) -> Drive:
            return lambda people: people.burst(count, s.concurrency)

        def timeout_for(count: int, rate: float = 20.0) -> float:
            return 120.0 + count * len(RECIPIENTS) / rate

        async def one(spec: RunSpec) -> PhaseResult:
            progress(f"{spec.name}: {spec.requests} requests ...")
            t0 = time.monotonic()
            result = await run_phase(spec, root, py_spy, debug)
            progress(f"{spec.name}: done in {time.monotonic() - t0:.0f} s")
            return result

        if "burst" in phases:
            report.burst = (
                await one(RunSpec("burst sidecar", s.requests, burst(s.requests), sidecar=True,
                                  timeout=timeout_for(s.requests))),
                await one(RunSpec("burst floor", s.requests, burst(s.requests), sidecar=False, probes=s.probes,
                                  timeout=timeout_for(s.requests))),
            )
        if "steady" in phases:
            count = int(s.steady_rate * s.steady_seconds)

            def steady(people: Requester) -> Awaitable[Workload]:
                return people.steady(s.steady_rate, s.steady_seconds, s.review_every)

            report.steady = (
                await one(RunSpec("steady sidecar", count, steady, sidecar=True)),
                await one(RunSpec("steady floor", count, steady, sidecar=False)),
            )
        if "limited" in phases:
            report.limited = await one(RunSpec(
                "rate-limited sidecar", s.limited_requests, burst(s.limited_requests), sidecar=True, warm_up=False,
                rate_limit=s.rate_limit, rate_burst=s.rate_burst,
                timeout=timeout_for(s.limited_requests, s.rate_limit)))
        if "rss" in phases:
            # At least 50 posts/s: a sidecar slower than that has failed this phase anyway (and the run ends).
            report.rss = await one(RunSpec("rss sidecar", s.rss_requests, burst(s.rss_requests), sidecar=True,
                                           timeout=timeout_for(s.rss_requests, 50.0)))
    report.seconds = time.monotonic() - started
    return report


def render(report: Report) -> str:
    """The whole printout: machine, sizes, the table, notes, and the targets with PASS/FAIL."""
    s = report.sizes
    rows: list[Row] = []
    if report.burst:
        rows += phase_rows(*report.burst, label="burst")
    if report.steady:
        rows += phase_rows(*report.steady, label="steady")
    if report.limited:
        rows += phase_rows(report.limited, None, label="rate-limited")
    if report.rss:
        rows += phase_rows(report.rss, None, label="rss")
    notes = [f"{r.name}: {n}" for r in _all(report) for n in r.notes]
    found = targets(burst=report.burst, steady=report.steady, limited=report.limited, rss=report.rss)
    machine = (f"{os.cpu_count()} cores, Python {platform.python_version()}, "
               f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {report.seconds:.0f} s in all")
    sizes = (f"burst {s.requests} @ {s.concurrency} in flight; steady {s.steady_rate:g}/s × {s.steady_seconds:g} s, "
             f"every {s.review_every}th approved; rate-limited {s.limited_requests} at {s.rate_limit:g}/s burst "
             f"{s.rate_burst}; rss {s.rss_requests}; 3 recipients per request")
    parts = [machine, sizes, "", format_table(("measure", "sidecar", "floor", "ratio"), rows)]
    if notes:
        parts += ["", *notes]
    for result in _all(report):
        if result.profile:
            parts += ["", f"where the sidecar's time went, {result.name} (py-spy):", *result.profile]
    if found:
        parts += ["", format_targets(found)]
    return "\n".join(parts)


def _all(report: Report) -> list[PhaseResult]:
    pairs = [r for pair in (report.burst, report.steady) if pair for r in pair]
    return pairs + [r for r in (report.limited, report.rss) if r]


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute and a half)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    for field in dataclasses.fields(Sizes):
        kind = float if field.type in ("float", float) else int
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=None)
    parser.add_argument("--workdir", type=Path, help="keep the stacks' logs here instead of a temporary directory")
    parser.add_argument("--sidecar-debug", action="store_true",
                        help="log the sidecar at DEBUG (slower; read the logs under --workdir)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the sidecar with py-spy (on PATH or $PY_SPY) and print where its time went")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else Sizes()
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes) if getattr(args, f.name) is not None}
    sizes = dataclasses.replace(sizes, **chosen)
    py_spy = find_py_spy() if args.profile else None
    if args.profile and py_spy is None:
        parser.error("--profile needs py-spy on PATH or in $PY_SPY (pip install py-spy)")
    try:
        report = asyncio.run(run(sizes, phases, args.workdir, py_spy=py_spy, debug=args.sidecar_debug,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True)))
    except KeyboardInterrupt:
        # asyncio.run has cancelled the run, whose cleanup stopped every process it had started.
        print("interrupted; every process the benchmark started has been stopped", file=sys.stderr)
        return 130
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
