"""Compare-and-swap over plugin data that hands back what the modifier decided.

    run(request_id, modify):
        read the entry; decode it (None when nothing is stored)
        modify(record) → Write(new_record, decision)   write Set=encode(new_record),
                                                       Expect=<values just read> (all "" when nothing was stored)
                       → Keep(decision)                write nothing; with retry=True back off and read again
        → Updated(old, new, decision) | Skipped(decision) | GaveUp(attempts, reason)

A write that loses a race (CompareFailed from the store) backs off and starts over with a fresh read, so
`modify` may run several times and must be pure; only the decision of the attempt that wrote (or kept) is
returned. Expecting all-"" when nothing was stored is Teleport's create (upstream `lib/plugindata/cas.go`),
so two replicas never both create a record. The loop ends after `max_attempts` tries or `timeout` seconds
with GaveUp. Other store errors propagate unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sidecar.codec.plugindata import KEYS, decode, encode
from sidecar.domain.backoff import Backoff
from sidecar.domain.errors import CompareFailed
from sidecar.domain.ports import PluginDataStore
from sidecar.domain.record import PluginData

__all__ = ["Cas", "GaveUp", "Keep", "Modifier", "Outcome", "Skipped", "Updated", "Write"]

_log = logging.getLogger("sidecar.engine.cas")

W = TypeVar("W")  # what a modifier decides when it writes
K = TypeVar("K")  # what it decides when it keeps the record as it is

# Go's CAS backoff: decorrelated jitter from 1 ms to 1 s.
CAS_BACKOFF_BASE = 0.001
CAS_BACKOFF_CAP = 1.0


@dataclass(frozen=True)
class Write(Generic[W]):
    """Returned by a modifier: store `record`; `decision` comes back in Updated once the write lands."""

    record: PluginData
    decision: W


@dataclass(frozen=True)
class Keep(Generic[K]):
    """Returned by a modifier: write nothing. With `retry`, back off and decide again on a fresh read."""

    decision: K
    retry: bool = False
    reason: str = ""


Modifier = Callable[[PluginData | None], Write[W] | Keep[K]]


@dataclass(frozen=True)
class Updated(Generic[W]):
    """`old` (None: nothing was stored) was replaced by `new`, as `decision` wanted."""

    old: PluginData | None
    new: PluginData
    decision: W


@dataclass(frozen=True)
class Skipped(Generic[K]):
    """The modifier chose not to write; `current` is the record it decided on."""

    decision: K
    current: PluginData | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GaveUp:
    """Attempts or time ran out; `reason` is the last conflict."""

    attempts: int
    reason: str


Outcome = Updated[W] | Skipped[K] | GaveUp

_EMPTY = encode(PluginData())


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
        on_conflict: Callable[[], None] = lambda: None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._store = store
        self._new_backoff = backoff or (lambda: Backoff(CAS_BACKOFF_BASE, CAS_BACKOFF_CAP))
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._clock = clock
        self._on_conflict = on_conflict

    async def run(
        self, request_id: str, modify: Modifier[W, K], *, known: PluginData | None = None, absent: bool = False
    ) -> Outcome[W, K]:
        """Read, let `modify` decide, and write if it asked to; retry on conflicts.

        `known` is the record the caller itself wrote last: the first attempt trusts it instead of reading
        (saving a round trip), and a conflict falls back to reading as usual. `absent` says the caller expects
        nothing to be stored (a request it has never seen): the first attempt decides on None and writes as a
        create; if a record exists after all, that write fails and the loop reads it at once (not a race, so
        neither a backoff nor a reported conflict).
        """
        if known is not None and absent:
            raise ValueError("known and absent exclude each other")
        backoff = self._new_backoff()
        started = self._clock()
        attempts = 0
        assumed = encode(known) if known is not None else None
        guess = absent
        while True:
            attempts += 1
            guessed, guess = guess, False
            if guessed:
                stored: dict[str, str] | None = None
            elif assumed is not None:
                stored = {key: value for key, value in assumed.items() if value}
                assumed = None
            else:
                stored = await self._store.get(request_id)
            old = decode(stored) if stored is not None else None
            result = modify(old)
            if isinstance(result, Keep):
                if not result.retry:
                    return Skipped(result.decision, old)
                reason = result.reason or "the modifier asked to decide again"
            else:
                expect = _expect_from(stored) if stored is not None else _EMPTY
                try:
                    await self._store.update(request_id, encode(result.record), expect)
                except CompareFailed as exc:
                    if guessed:
                        continue  # the record exists: read it and decide again, at once
                    reason = str(exc) or "compare failed"
                    self._on_conflict()
                else:
                    return Updated(old, result.record, result.decision)
            if attempts >= self._max_attempts or self._clock() - started >= self._timeout:
                return GaveUp(attempts, reason)
            _log.debug("Plugin data write must be retried: %s", reason, extra={"request_id": request_id})
            await backoff.wait()
