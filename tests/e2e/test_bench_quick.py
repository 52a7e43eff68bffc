"""The end-to-end benchmark still runs: every phase at tiny sizes against the real process stack.

Numbers are not checked (the machine is shared); what is checked is that each phase found every post it waited
for, counted the calls, and that the printout has every target with a verdict. `make bench` runs the real sizes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.e2e_burst import Sizes, render, run

TINY = Sizes(requests=12, concurrency=4, steady_rate=5.0, steady_seconds=2.0, review_every=2,
             limited_requests=15, rate_limit=20.0, rate_burst=20, rss_requests=20, probes=3)


@pytest.mark.timeout(600)
async def test_every_phase_runs_end_to_end(tmp_path: Path) -> None:
    if os.environ.get("TM_E2E_MODE", "processes") != "processes":
        pytest.skip("the benchmark runs the stack as processes")
    report = await run(TINY, workdir=tmp_path)
    assert report.burst is not None and report.steady is not None
    assert report.limited is not None and report.rss is not None
    for result in (*report.burst, *report.steady, report.limited, report.rss):
        assert result.complete, (result.name, result.roots, result.expected_roots, result.notes)
        assert result.calls >= result.delivered >= result.expected_roots
        assert len(result.latencies_ms) == result.expected_roots
        assert result.total_s > 0
    sidecar, floor = report.steady
    assert sidecar.reviewed == floor.reviewed == 5  # every second of 10 requests
    assert sidecar.delivered == floor.delivered == 10 * 3 + 5 * 3 * 2  # roots, then a reply and an edit per root
    assert report.rss.rss_idle_mb > 0 and report.rss.rss_peak_mb >= report.rss.rss_idle_mb
    assert report.limited.rate is not None
    assert set(report.burst[1].fake_cost) == {"CreateAccessRequest", "UpdatePluginData", "GetPluginData",
                                              "POST /posts"}
    printed = render(report)
    verdicts = [line for line in printed.splitlines() if line.startswith(("PASS  ", "FAIL  "))]
    assert len(verdicts) == 8, printed
