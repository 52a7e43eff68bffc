"""The pure half of the end-to-end benchmark (bench/e2e_burst.py): statistics, the issue's targets, the table.

Nothing here starts a process or opens a socket, so tests/unit/test_bench_e2e.py checks all of it directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: A root post names its request on this line (the sidecar's text, and the floor's copy of it).
REQUEST_ID_LINE = re.compile(r"^\*\*Request ID\*\*: (\S+)$", re.MULTILINE)

# The targets (issue 9, item 8).
BURST_RATIO_MAX = 1.3
STEADY_P99_RATIO_MAX = 1.5
CALLS_PER_POST_MAX = 1.005  # "1.00 call per delivered post": the ratio must round to 1.00
RATE_FRACTION_MIN = 0.9
RSS_IDLE_MAX_MB = 80.0
RSS_LOADED_MAX_MB = 120.0
FAKE_COST_RATIO_MAX = 1.5  # a fake's median call may grow this much from empty to full state, no more
LOADED_REQUESTS = 10_000  # what "RSS after 10,000 requests" means; a smaller --rss-requests cannot pass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing (NaN) or the denominator is 0."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def request_id_of(message: str) -> str | None:
    """The request id a root post is about, from its `**Request ID**:` line."""
    found = REQUEST_ID_LINE.search(message)
    return found.group(1) if found else None


def create_to_post_ms(posts: Iterable[Mapping[str, object]], sent_ms: Mapping[str, float]) -> list[float]:
    """For every root post about a request in `sent_ms`: its `create_at` minus when the request was sent."""
    latencies = []
    for post in posts:
        if post.get("root_id"):
            continue
        rid = request_id_of(str(post.get("message", "")))
        created = post.get("create_at")
        if rid is not None and rid in sent_ms and isinstance(created, int | float):
            latencies.append(float(created) - sent_ms[rid])
    return latencies


@dataclass(frozen=True)
class LogEntry:
    """One API call from the fake Mattermost's request log (`/fake/log`)."""

    method: str
    route: str
    status: int | None
    at_ms: int

    @property
    def is_post(self) -> bool:
        """A post (root or reply) the server created."""
        return self.method == "POST" and self.route == "/api/v4/posts" and self.status == 201


@dataclass(frozen=True)
class RateLimitStats:
    """How a client used a rate-limited server: sustained throughput past the burst allowance, and 429s."""

    sustained_calls_per_s: float
    sustained_posts_per_s: float
    limited: int
    limited_after_first_second: int


def rate_limit_stats(entries: Sequence[LogEntry], *, burst: int, start_ms: float) -> RateLimitStats:
    """Throughput beyond the burst allowance and the 429 answers, from the log of one rate-limited phase.

    The limiter (GCRA, like Mattermost's) lets `burst + 1` calls through at once and then one per 1/rate s, so
    N calls between the first and the last at T s apart are at most `burst + 1 + rate·T`: the rate achieved is
    (N − burst − 1) / T, counting every call (all of them spend the same budget) and, separately, only the posts
    past the allowance. Measured from the first call, not the end of the allowance, so a client that spends
    its allowance slowly is not credited with more than it used. A 429 is "after the first second" when it came
    more than 1 s after `start_ms` (the first create).
    """
    answered = sorted((e for e in entries if e.status != 429), key=lambda e: e.at_ms)
    limited = [e for e in entries if e.status == 429]
    late = sum(1 for e in limited if e.at_ms > start_ms + 1000)
    allowance = burst + 1
    if len(answered) <= allowance:
        return RateLimitStats(math.nan, math.nan, len(limited), late)
    sustained = answered[allowance:]
    seconds = (answered[-1].at_ms - answered[0].at_ms) / 1000
    if seconds <= 0:
        return RateLimitStats(math.nan, math.nan, len(limited), late)
    posts = sum(1 for e in sustained if e.is_post)
    return RateLimitStats(len(sustained) / seconds, posts / seconds, len(limited), late)


@dataclass(frozen=True)
class FakeCost:
    """Median times of one fake call with nearly empty state and with the state a burst left behind, each next
    to the median of a call whose cost cannot depend on the state (a ping of the same server, timed alternately
    with it), so a machine that got busier in between does not look like a fake that got slower."""

    empty_ms: float
    full_ms: float
    empty_ping_ms: float
    full_ping_ms: float

    @property
    def growth(self) -> float:
        """How much the call's cost grew, relative to the ping's."""
        return ratio(ratio(self.full_ms, self.full_ping_ms), ratio(self.empty_ms, self.empty_ping_ms))


@dataclass
class PhaseResult:
    """What one phase measured; NaN (or None) where a measure does not apply to it."""

    name: str
    requests: int
    expected_roots: int
    roots: int = 0
    total_s: float = math.nan
    latencies_ms: list[float] = field(default_factory=list)
    calls: int = 0
    delivered: int = 0  # root posts + replies + edits made in the measured window
    reviewed: int = 0
    rss_idle_mb: float = math.nan
    rss_peak_mb: float = math.nan
    rss_now_mb: float = math.nan
    rate: RateLimitStats | None = None
    rate_limit: float = math.nan
    fake_cost: dict[str, FakeCost] = field(default_factory=dict)  # per call the job makes
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)  # py-spy summary of the sidecar (bench/e2e_profile.py)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process over the measured window

    @property
    def complete(self) -> bool:
        """Every root post the phase expected was found."""
        return self.roots >= self.expected_roots

    @property
    def posts_per_s(self) -> float:
        """Root posts per second over the phase's total time."""
        return ratio(self.roots, self.total_s)

    @property
    def p50_ms(self) -> float:
        """Median create-to-post latency."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        """99th percentile create-to-post latency."""
        return percentile(self.latencies_ms, 99)

    @property
    def calls_per_post(self) -> float:
        """Mattermost API calls per delivered post (roots, replies and edits)."""
        return ratio(self.calls, self.delivered)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets with what was measured and whether it was met."""

    goal: str
    measured: str
    met: bool

    @property
    def verdict(self) -> str:
        """PASS or FAIL."""
        return "PASS" if self.met else "FAIL"


def _at_most(value: float, limit: float) -> bool:
    return not math.isnan(value) and value <= limit


def targets(
    *,
    burst: tuple[PhaseResult, PhaseResult] | None = None,
    steady: tuple[PhaseResult, PhaseResult] | None = None,
    limited: PhaseResult | None = None,
    rss: PhaseResult | None = None,
) -> list[Target]:
    """The issue's targets for the phases that ran (sidecar, floor pairs where there is a floor)."""
    out: list[Target] = []
    if burst is not None:
        ours, floor = burst
        r = ratio(ours.total_s, floor.total_s)
        out.append(Target(f"burst total ≤ {BURST_RATIO_MAX}× the floor's", f"{_num(r, 2)}× "
                          f"({_num(ours.total_s, 2)} s vs {_num(floor.total_s, 2)} s)",
                          ours.complete and floor.complete and _at_most(r, BURST_RATIO_MAX)))
    if steady is not None:
        ours, floor = steady
        r = ratio(ours.p99_ms, floor.p99_ms)
        out.append(Target(f"steady p99 ≤ {STEADY_P99_RATIO_MAX}× the floor's p99", f"{_num(r, 2)}× "
                          f"({_num(ours.p99_ms, 0)} ms vs {_num(floor.p99_ms, 0)} ms)",
                          ours.complete and floor.complete and _at_most(r, STEADY_P99_RATIO_MAX)))
        out.append(Target("steady: 1.00 Mattermost call per delivered post (roots + replies + edits)",
                          f"{_num(ours.calls_per_post, 3)} ({ours.calls} calls / {ours.delivered} posts)",
                          _at_most(ours.calls_per_post, CALLS_PER_POST_MAX)))
    if limited is not None and limited.rate is not None:
        fraction = ratio(limited.rate.sustained_posts_per_s, limited.rate_limit)
        out.append(Target(f"rate-limited: ≥ {RATE_FRACTION_MIN:.0%} of the allowed rate (sustained posts/s)",
                          f"{_pct(fraction)} ({_num(limited.rate.sustained_posts_per_s, 2)}/s of "
                          f"{_num(limited.rate_limit, 0)}/s)",
                          limited.complete and not math.isnan(fraction) and fraction >= RATE_FRACTION_MIN))
        out.append(Target("rate-limited: no 429 after the first second",
                          f"{limited.rate.limited_after_first_second} (of {limited.rate.limited} in all)",
                          limited.rate.limited_after_first_second == 0))
    if rss is not None:
        out.append(Target(f"sidecar RSS < {RSS_IDLE_MAX_MB:.0f} MB idle", f"{_num(rss.rss_idle_mb, 1)} MB",
                          not math.isnan(rss.rss_idle_mb) and rss.rss_idle_mb < RSS_IDLE_MAX_MB))
        enough = rss.requests >= LOADED_REQUESTS and rss.complete
        note = "" if enough else f" (only {rss.requests} requests)"
        out.append(Target(f"sidecar RSS < {RSS_LOADED_MAX_MB:.0f} MB after {LOADED_REQUESTS:,} requests (peak)",
                          f"{_num(rss.rss_peak_mb, 1)} MB{note}",
                          enough and not math.isnan(rss.rss_peak_mb) and rss.rss_peak_mb < RSS_LOADED_MAX_MB))
    if burst is not None and burst[1].fake_cost:
        costs = burst[1].fake_cost
        worst = max(costs, key=lambda k: costs[k].growth)
        out.append(Target(f"fakes: per-call cost flat as state grows (full/empty ≤ {FAKE_COST_RATIO_MAX}×, "
                          "relative to a ping)", f"worst {worst} {_num(costs[worst].growth, 2)}×",
                          all(_at_most(c.growth, FAKE_COST_RATIO_MAX) for c in costs.values())))
    return out


def _num(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


Row = tuple[str, str, str, str]


def phase_rows(ours: PhaseResult, floor: PhaseResult | None, label: str) -> list[Row]:
    """Table rows for one phase: the sidecar's value, the floor's, and sidecar/floor where it means something."""

    def row(what: str, a: float, b: float | None, digits: int, with_ratio: bool = False) -> Row:
        theirs = "" if b is None else _num(b, digits)
        r = _num(ratio(a, b), 2) + "×" if with_ratio and b is not None and not math.isnan(ratio(a, b)) else ""
        return (f"{label}: {what}", _num(a, digits), theirs, r)

    def count(what: str, a: str, b: str | None) -> Row:
        return (f"{label}: {what}", a, "" if b is None else b, "")

    fb = floor
    rows = [count("requests" + (" (reviewed)" if ours.reviewed else ""),
                  f"{ours.requests}" + (f" ({ours.reviewed})" if ours.reviewed else ""),
                  None if fb is None else f"{fb.requests}" + (f" ({fb.reviewed})" if fb.reviewed else "")),
            count("root posts found", f"{ours.roots}/{ours.expected_roots}",
                  None if fb is None else f"{fb.roots}/{fb.expected_roots}")]
    if not math.isnan(ours.total_s):
        rows.append(row("total s (first create → last root post)", ours.total_s,
                        None if fb is None else fb.total_s, 2, with_ratio=True))
        rows.append(row("root posts/s", ours.posts_per_s, None if fb is None else fb.posts_per_s, 1))
    rows.append(row("create→post p50 ms", ours.p50_ms, None if fb is None else fb.p50_ms, 0, with_ratio=True))
    rows.append(row("create→post p99 ms", ours.p99_ms, None if fb is None else fb.p99_ms, 0, with_ratio=True))
    rows.append(row("MM calls / delivered post", ours.calls_per_post, None if fb is None else fb.calls_per_post, 3))
    rows.append(count("MM calls, delivered (roots+replies+edits)", f"{ours.calls}, {ours.delivered}",
                      None if fb is None else f"{fb.calls}, {fb.delivered}"))
    if not math.isnan(ours.rss_idle_mb):
        rows.append(row("sidecar RSS idle MB", ours.rss_idle_mb, None, 1))
    if not math.isnan(ours.rss_peak_mb):
        rows.append(row("sidecar peak RSS (VmHWM) MB", ours.rss_peak_mb, None, 1))
    if not math.isnan(ours.rss_now_mb):
        rows.append(row("sidecar RSS at the end MB", ours.rss_now_mb, None, 1))
    if ours.rate is not None:
        rows.append(row("sustained calls/s", ours.rate.sustained_calls_per_s, None, 2))
        rows.append(count(f"sustained posts/s (of {_num(ours.rate_limit, 0)}/s allowed)",
                          f"{_num(ours.rate.sustained_posts_per_s, 2)} "
                          f"({_pct(ratio(ours.rate.sustained_posts_per_s, ours.rate_limit))})", None))
        rows.append(count("429 answers (after the first second)",
                          f"{ours.rate.limited} ({ours.rate.limited_after_first_second})", None))
    for name in dict.fromkeys([*ours.cpu_s, *(fb.cpu_s if fb is not None else {})]):
        rows.append(row(f"CPU s, {name}", ours.cpu_s.get(name, math.nan),
                        None if fb is None else fb.cpu_s.get(name, math.nan), 2))
    if fb is not None:
        for call, cost in fb.fake_cost.items():
            rows.append((f"{label}: fake {call} ms, empty → full (ping)",
                         f"{cost.empty_ms:.2f} ({cost.empty_ping_ms:.2f}) → "
                         f"{cost.full_ms:.2f} ({cost.full_ping_ms:.2f})",
                         "", _num(cost.growth, 2) + "×"))
    return rows


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned, widths from the content."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [str(r[0]).ljust(widths[0]), *(str(c).rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_targets(found: Sequence[Target]) -> str:
    """One line per target: PASS/FAIL, the goal, what was measured."""
    width = max((len(t.goal) for t in found), default=0)
    return "\n".join(f"{t.verdict}  {t.goal.ljust(width)}  {t.measured}" for t in found)
