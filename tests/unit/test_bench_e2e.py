"""The pure parts of the end-to-end benchmark: statistics, the targets and the table (bench/e2e_report.py)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import pytest

from bench.e2e_burst import QUICK, Sizes, main, read_cpu_s, read_rss_mb
from bench.e2e_profile import summarize
from bench.e2e_report import (
    FakeCost,
    LogEntry,
    PhaseResult,
    create_to_post_ms,
    format_table,
    format_targets,
    percentile,
    phase_rows,
    rate_limit_stats,
    ratio,
    request_id_of,
    targets,
)

ROOT_TEXT = "*You have new pending request to review!*\n**User**: myuser\n**Request ID**: {rid}\n**Status**: x\n"


def test_percentile_interpolates_between_ranks() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile(values, 101)


def test_ratio_is_nan_when_it_means_nothing() -> None:
    assert ratio(3, 2) == 1.5
    assert math.isnan(ratio(1, 0))
    assert math.isnan(ratio(math.nan, 1))


def test_latencies_come_from_root_posts_of_known_requests() -> None:
    posts = [
        {"root_id": "", "create_at": 1_000_150, "message": ROOT_TEXT.format(rid="a")},
        {"root_id": "", "create_at": 1_000_300, "message": ROOT_TEXT.format(rid="a")},
        {"root_id": "x", "create_at": 1_000_900, "message": ROOT_TEXT.format(rid="a")},  # a reply: not a root
        {"root_id": "", "create_at": 1_000_500, "message": ROOT_TEXT.format(rid="warm-up")},  # not measured
        {"root_id": "", "create_at": 1_000_500, "message": "no id here"},
    ]
    assert create_to_post_ms(posts, {"a": 1_000_000.0}) == [150.0, 300.0]
    assert request_id_of(ROOT_TEXT.format(rid="abc-1")) == "abc-1"
    assert request_id_of("**Request ID**: inline only") is None


def _entries(statuses_at: Sequence[tuple[int | None, int]], route: str = "/api/v4/posts") -> list[LogEntry]:
    return [LogEntry("POST", route, status, at) for status, at in statuses_at]


def test_rate_limit_stats_measure_after_the_burst_allowance() -> None:
    # burst 2: three calls at once, then one every 100 ms (10/s); a 429 early and one late.
    calls = _entries([(201, 0), (201, 0), (201, 0), (429, 50), (201, 100), (201, 200), (201, 300), (429, 1500)])
    calls.append(LogEntry("GET", "/api/v4/users/{user_id}", 200, 400))  # a lookup: a call, not a post
    stats = rate_limit_stats(calls, burst=2, start_ms=0)
    assert stats.sustained_calls_per_s == pytest.approx(10.0)  # 4 calls after the allowance, in 400 ms
    assert stats.sustained_posts_per_s == pytest.approx(7.5)  # 3 of them posts
    assert (stats.limited, stats.limited_after_first_second) == (2, 1)
    # The allowance spent slowly (the third call of it 200 ms late) is not credited: 4 calls past it in 600 ms.
    slow = rate_limit_stats(_entries([(201, 0), (201, 0), (201, 200), (201, 300), (201, 400), (201, 500),
                                      (201, 600)]), burst=2, start_ms=0)
    assert slow.sustained_calls_per_s == pytest.approx(4 / 0.6)
    too_few = rate_limit_stats(_entries([(201, 0), (201, 10)]), burst=2, start_ms=0)
    assert math.isnan(too_few.sustained_posts_per_s)


def _result(name: str, **values: object) -> PhaseResult:
    result = PhaseResult(name, requests=10, expected_roots=30, roots=30)
    for key, value in values.items():
        setattr(result, key, value)
    return result


def test_targets_pass_and_fail_on_the_issue_limits() -> None:
    burst = (_result("s", total_s=13.0), _result("f", total_s=10.0))
    burst[1].fake_cost = {"POST /posts": FakeCost(1.0, 2.0, 1.0, 1.5), "GetPluginData": FakeCost(1.0, 1.0, 1.0, 1.0)}
    steady = (_result("s", latencies_ms=[10.0] * 90 + [160.0] * 10, calls=101, delivered=100),
              _result("f", latencies_ms=[10.0] * 90 + [100.0] * 10))
    found = {t.goal.split(" ")[0] + " " + t.goal.split(" ")[1]: t for t in targets(burst=burst, steady=steady)}
    assert found["burst total"].met  # 1.3× exactly is within the target
    assert found["fakes: per-call"].met  # 2× slower, but the ping slowed 1.5×: 1.33× is within 1.5×
    assert not found["steady p99"].met  # 160 vs 100
    assert not found["steady: 1.00"].met  # 1.01 calls per post does not round to 1.00
    burst[1].fake_cost["POST /posts"] = FakeCost(1.0, 2.0, 1.0, 1.0)
    assert not next(t for t in targets(burst=burst) if t.goal.startswith("fakes")).met
    incomplete = (_result("s", total_s=1.0, roots=29), _result("f", total_s=10.0))
    assert not targets(burst=incomplete)[0].met  # fast but not every post made: no pass


def test_rate_limited_and_rss_targets() -> None:
    limited = _result("l", rate_limit=10.0)
    # Three at once (burst 2), then ten posts 110 ms apart: 9.1/s of 10/s.
    paced = [(201, 0), (201, 0), (201, 0)] + [(201, i * 110) for i in range(1, 11)]
    limited.rate = rate_limit_stats(_entries(paced), burst=2, start_ms=0)
    rss = _result("r", requests=10_000, roots=30_000, expected_roots=30_000, rss_idle_mb=60.0, rss_peak_mb=119.0)
    verdicts = {t.goal: t.met for t in targets(limited=limited, rss=rss)}
    assert verdicts == {
        "rate-limited: ≥ 90% of the allowed rate (sustained posts/s)": True,
        "rate-limited: no 429 after the first second": True,
        "sidecar RSS < 80 MB idle": True,
        "sidecar RSS < 120 MB after 10,000 requests (peak)": True,
    }
    small = _result("r", requests=100, rss_idle_mb=60.0, rss_peak_mb=70.0)
    loaded = next(t for t in targets(rss=small) if "10,000" in t.goal)
    assert not loaded.met  # too few requests to say
    assert "only 100 requests" in loaded.measured


def test_table_lines_up_and_targets_print_verdicts() -> None:
    table = format_table(("measure", "a", "b"), [("x", "1", "22"), ("longer name", "333", "4")])
    assert table.splitlines() == [
        "measure        a   b",
        "x              1  22",
        "longer name  333   4",
    ]
    ours = _result("s", total_s=2.0, latencies_ms=[1.0, 3.0], calls=30, delivered=30, rss_peak_mb=50.0)
    floor = _result("f", total_s=1.0, latencies_ms=[1.0, 1.0], calls=30, delivered=30)
    rows = {r[0]: r[1:] for r in phase_rows(ours, floor, "burst")}
    assert rows["burst: total s (first create → last root post)"] == ("2.00", "1.00", "2.00×")
    assert rows["burst: MM calls / delivered post"] == ("1.000", "1.000", "")
    assert rows["burst: sidecar peak RSS (VmHWM) MB"] == ("50.0", "", "")
    printed = format_targets(targets(burst=(ours, floor)))
    assert printed.startswith("FAIL  burst total ≤ 1.3× the floor's  2.00× (2.00 s vs 1.00 s)")


def test_quick_sizes_are_small_and_the_command_line_checks_phases() -> None:
    assert QUICK.requests < Sizes().requests
    assert QUICK.rss_requests < Sizes().rss_requests
    with pytest.raises(SystemExit):
        main(["--phases", "burst,nonsense"])


def test_profile_summary_shares_self_and_sidecar_time() -> None:
    collapsed = [
        "<module> (/work/main/sidecar/__main__.py);handle (/work/main/sidecar/engine/engine.py);"
        "loads (/usr/lib/python3.11/json/__init__.py) 30",
        "<module> (/work/main/sidecar/__main__.py);select (/usr/lib/python3.11/selectors.py) 10",
        "garbage line",
    ]
    summary = summarize(collapsed, top=2)
    assert summary[0].startswith("40 samples")
    assert summary[1:3] == ["   75.0%  loads (json/__init__.py)", "   25.0%  select (selectors.py)"]
    assert "  100.0%  <module> (sidecar/__main__.py)" in summary
    assert "   75.0%  handle (sidecar/engine/engine.py)" in summary
    assert summarize([]) == ["no samples"]


def test_process_readings_come_from_proc() -> None:
    rss, peak = read_rss_mb(os.getpid())
    assert 0 < rss <= peak
    assert read_cpu_s(os.getpid()) > 0
    assert math.isnan(read_rss_mb(2**22 + 12345)[0])  # no such process
