"""Compare-and-swap over plugin data (Teleport `lib/plugindata/cas.go` semantics, outcomes as values).

    create(record):  read; an entry exists → AlreadyCreated;
                     else write Set=encode(record), Expect=encode(empty record)
    update(modify):  read; nothing stored → Missing;
                     modify(record) → a new record, or Skip (no write; Skip(retry=True) re-reads later);
                     write Set=encode(new), Expect=<values just read>

A write that loses a race (CompareFailed from the store) backs off and starts over with a fresh read, so
`modify` may run several times and must be pure. The loop ends after `max_attempts` tries or `timeout`
seconds with GaveUp. Unlike Go, a create that loses its race re-reads and reports AlreadyCreated instead
of failing, so two replicas never both announce a request. Other store errors propagate unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.codec.plugindata import KEYS, decode, encode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import CompareFailed
from sidecar.domain.ports import PluginDataStore
from sidecar.domain.record import PluginData

__all__ = [
    "AlreadyCreated",
    "Cas",
    "Created",
    "GaveUp",
    "Missing",
    "Modifier",
    "Skip",
    "Skipped",
    "Updated",
]

_log = logging.getLogger("sidecar.engine.cas")

# Go's CAS backoff: decorrelated jitter from 1 ms to 1 s.
CAS_BACKOFF_BASE = 0.001
CAS_BACKOFF_CAP = 1.0


@dataclass(frozen=True)
class Skip:
    """Returned by a modifier: write nothing. With `retry`, back off and call the modifier again."""

    reason: str
    retry: bool = False


Modifier = Callable[[PluginData], PluginData | Skip]


@dataclass(frozen=True)
class Created:
    """The entry did not exist and now holds `record`."""

    record: PluginData


@dataclass(frozen=True)
class AlreadyCreated:
    """An entry already existed; nothing was written."""


@dataclass(frozen=True)
class Updated:
    """`old` was replaced by `new`."""

    old: PluginData
    new: PluginData


@dataclass(frozen=True)
class Skipped:
    """The modifier chose not to write."""

    reason: str


@dataclass(frozen=True)
class Missing:
    """Nothing is stored for the request."""


@dataclass(frozen=True)
class GaveUp:
    """Attempts or time ran out; `reason` is the last conflict."""

    attempts: int
    reason: str


CreateOutcome = Created | AlreadyCreated | GaveUp
UpdateOutcome = Updated | Skipped | Missing | GaveUp


def _expect_from(stored: dict[str, str]) -> dict[str, str]:
    # Compare against exactly what was read (a missing key equals ""), not a re-encoding of it, so an
    # entry written with different but equivalent formatting can still be updated.
    return {key: stored.get(key, "") for key in KEYS}


class Cas:
    """The CAS loop for one PluginDataStore."""

    def __init__(
        self,
        store: PluginDataStore,
        *,
        backoff: Callable[[], Backoff] | None = None,
        max_attempts: int = 30,
        timeout: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._store = store
        self._new_backoff = backoff or (lambda: Backoff(CAS_BACKOFF_BASE, CAS_BACKOFF_CAP))
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._clock = clock

    async def create(self, request_id: str, record: PluginData) -> CreateOutcome:
        """Store `record` only if nothing is stored for the request yet."""
        backoff = self._new_backoff()
        started = self._clock()
        attempts = 0
        empty = encode(PluginData())
        while True:
            attempts += 1
            if await self._store.get(request_id) is not None:
                return AlreadyCreated()
            try:
                await self._store.update(request_id, encode(record), empty)
            except CompareFailed as exc:
                reason = str(exc) or "compare failed"
                if self._exhausted(attempts, started):
                    return GaveUp(attempts, reason)
                _log.debug("Plugin data create lost a race, retrying", extra={"request_id": request_id})
                await backoff.wait()
                continue
            return Created(record)

    async def update(self, request_id: str, modify: Modifier) -> UpdateOutcome:
        """Read, let `modify` decide, and write if it returned a record; retry on conflicts."""
        backoff = self._new_backoff()
        started = self._clock()
        attempts = 0
        while True:
            attempts += 1
            stored = await self._store.get(request_id)
            if stored is None:
                return Missing()
            old = decode(stored)
            result = modify(old)
            if isinstance(result, Skip):
                if not result.retry:
                    return Skipped(result.reason)
                reason = result.reason
            else:
                try:
                    await self._store.update(request_id, encode(result), _expect_from(stored))
                except CompareFailed as exc:
                    reason = str(exc) or "compare failed"
                else:
                    return Updated(old, result)
            if self._exhausted(attempts, started):
                return GaveUp(attempts, reason)
            _log.debug("Plugin data update must be retried: %s", reason, extra={"request_id": request_id})
            await backoff.wait()

    def _exhausted(self, attempts: int, started: float) -> bool:
        return attempts >= self._max_attempts or self._clock() - started >= self._timeout
