"""The reconcile: hand the engine every request Teleport holds, as if the watch stream had just delivered it.

The watch stream does not replay the past (as in Go): whatever happened while no stream was open (the sidecar
down, a stream cut, events taken but not handled when the process died) would never be announced or shown.
The engine decides from the stored plugin data, so a PUT of a request's current state finishes whatever is
owed (announces a pending request nobody announced, replies and edits for reviews and resolutions not yet
shown) and is a no-op for a request that is up to date.

Algorithm:
* `trigger(reason)` asks for a run and returns at once; the app calls it after every watch INIT (the first one
  covers requests created while no sidecar ran). Triggers coalesce: any number arriving while a run is going
  make exactly one more run after it, and two runs never overlap. `serve()` performs the runs until cancelled.
* A run iterates `RequestSource.list_requests()` and submits `RequestEvent(PUT, id, request)` for each through
  the dispatcher's background lane, which admits a bounded number at a time: the listing advances only as
  events finish, so a cluster with 10,000 open requests neither floods Mattermost nor holds them all in memory,
  and watch events keep their own lane. A request that cannot be read is skipped with one WARN naming it; one
  whose earlier background event has not started yet is skipped too (that event will do). The run then waits
  for its events to finish and logs one INFO `Reconcile finished` with its counts, which it also passes to
  `on_finished` (for metrics).
* A listing that fails with a TransientError is logged and started over after a backoff (the backoff carries
  the injected sleep); events already submitted are harmless to submit again. Any other error ends the run
  with an ERROR and the next trigger tries again. Nothing here ever stops the sidecar.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import SidecarError, TransientError
from sidecar.domain.model import EventOp, RequestEvent
from sidecar.domain.ports import RequestSource, UnreadableRequest
from sidecar.engine.dispatcher import SOURCE_RECONCILE, Dispatcher

__all__ = ["RECONCILE_FINISHED", "ReconcileFindings", "Reconciler"]

log = logging.getLogger("sidecar.engine.reconcile")

RECONCILE_FINISHED = "Reconcile finished"
# A failed listing usually means Auth is unreachable; the watcher reconnects on its own schedule meanwhile.
RETRY_BACKOFF_BASE = 0.5
RETRY_BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class ReconcileFindings:
    """What one reconcile run did, for the log line and metrics. Counts cover the listing that completed."""

    trigger: str
    listed: int = 0  # requests the listing returned, readable or not
    submitted: int = 0  # events handed to the dispatcher
    unreadable: int = 0  # skipped: not a usable access request
    already_queued: int = 0  # skipped: an earlier background event for the request had not started yet
    retries: int = 0  # listings started over after a transient error

    @property
    def skipped(self) -> int:
        """Requests listed but not submitted."""
        return self.unreadable + self.already_queued


def _ignore(findings: ReconcileFindings) -> None:
    return None


def _default_backoff() -> Backoff:
    return Backoff(RETRY_BACKOFF_BASE, RETRY_BACKOFF_CAP)


class Reconciler:
    """Lists requests on demand and feeds them to the dispatcher's background lane."""

    def __init__(
        self,
        source: RequestSource,
        dispatcher: Dispatcher,
        *,
        backoff: Callable[[], Backoff] = _default_backoff,
        on_finished: Callable[[ReconcileFindings], None] = _ignore,
    ) -> None:
        self._source = source
        self._dispatcher = dispatcher
        self._new_backoff = backoff
        self._on_finished = on_finished
        self._wanted = asyncio.Event()
        self._reason = ""
        self.runs = 0  # runs finished, successfully or not

    def trigger(self, reason: str) -> None:
        """Ask for a run (`reason` is logged with it); coalesces with a run already asked for."""
        self._reason = reason
        self._wanted.set()

    async def serve(self) -> None:
        """Run whenever triggered, one run at a time, until cancelled."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self.run(self._reason)

    async def run(self, reason: str) -> ReconcileFindings | None:
        """One run: list and submit everything, retrying transient listing failures; None if it gave up."""
        backoff = self._new_backoff()
        retries = 0
        try:
            while True:
                try:
                    findings = await self._list_and_submit(reason, retries)
                    break
                except TransientError as exc:
                    retries += 1
                    log.warning(
                        "Reconcile could not list access requests, retrying",
                        extra={"trigger": reason, "error": str(exc), "attempt": retries},
                    )
                    await backoff.wait()
        except Exception as exc:  # the reconcile is a safety net: its failure must never stop the sidecar
            log.error(
                "Reconcile failed",
                extra={"trigger": reason, "error": str(exc) or type(exc).__name__},
                exc_info=None if isinstance(exc, SidecarError | RuntimeError) else exc,
            )
            return None
        finally:
            self.runs += 1
        log.info(
            RECONCILE_FINISHED,
            extra={
                "trigger": reason,
                "listed": findings.listed,
                "submitted": findings.submitted,
                "skipped": findings.skipped,
                "retries": findings.retries,
            },
        )
        self._on_finished(findings)
        return findings

    async def _list_and_submit(self, reason: str, retries: int) -> ReconcileFindings:
        listed = submitted = unreadable = already_queued = 0
        async for item in self._source.list_requests():
            listed += 1
            if isinstance(item, UnreadableRequest):
                unreadable += 1
                log.warning(
                    "Skipping access request that cannot be read",
                    extra={"request_id": item.request_id, "error": item.error},
                )
                continue
            event = RequestEvent(EventOp.PUT, item.id, item, listed=True)
            if await self._dispatcher.submit_background(event, source=SOURCE_RECONCILE):
                submitted += 1
            else:
                already_queued += 1
        await self._dispatcher.join_background()
        return ReconcileFindings(reason, listed, submitted, unreadable, already_queued, retries)
