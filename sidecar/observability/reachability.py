"""The periodic Mattermost check behind the `mattermost` readiness check.

Calls do report every answer they get, but a quiet sidecar makes no calls; this check keeps the verdict fresh
(and names the error when Mattermost is down) without waiting for a request to arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from sidecar.domain.backoff import Sleep
from sidecar.domain.errors import SidecarError
from sidecar.domain.telemetry import Telemetry

__all__ = ["CHECK_INTERVAL", "STALE_AFTER", "check_reachability"]

CHECK_INTERVAL: Final = 30.0
# Three missed checks in a row: the checker itself is stuck, so its last verdict means nothing any more.
STALE_AFTER: Final = 3 * CHECK_INTERVAL


async def check_reachability(
    check: Callable[[], Awaitable[object]],
    telemetry: Telemetry,
    *,
    interval: float = CHECK_INTERVAL,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Run `check` every `interval` seconds until cancelled, reporting each result as `mattermost_reachable`.

    `check` passes unless it raises a SidecarError (its answer is ignored).
    """
    if interval <= 0:
        raise ValueError(f"the reachability check interval must be positive, got {interval!r}")
    while True:
        await sleep(interval)
        try:
            await check()
        except SidecarError as exc:
            telemetry.mattermost_reachable(False, str(exc) or type(exc).__name__)
        else:
            telemetry.mattermost_reachable(True, "health check passed")
