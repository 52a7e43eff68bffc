"""The notification-cost benchmark runs and measures what it claims (counts only, never times)."""

from __future__ import annotations

from bench.notification_cost import run


async def test_benchmark_counts_one_call_per_recipient_in_steady_state() -> None:
    baseline, ours = await run(requests=4)
    assert ours.posts == baseline.posts == 4 * 3  # three recipients per request in both variants
    assert ours.api_calls == ours.posts  # cached: only the POSTs
    assert baseline.api_calls > ours.api_calls
