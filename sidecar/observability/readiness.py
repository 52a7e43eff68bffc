"""Readiness: can the sidecar do its job right now? Three checks, each with a detail an operator can act on.

* `watch`: the Teleport watch stream is open and its INIT has arrived (events are being received).
* `identity`: the Teleport identity stays valid for at least `identity_margin` seconds more. The app uses the
  identity refresh interval, and at least one minute: an identity closer to its end than one refresh interval
  may expire before a renewal is even read, so the pod should stop looking healthy while there is still time.
* `mattermost`: the last contact with Mattermost (the periodic health check or any call) got a usable answer,
  and it is no older than `mattermost_stale_after` seconds (the checker itself could be stuck).

Permanent delivery failures (what, error, fix) are listed with the report but do not make the sidecar unready:
they need a person (add the bot to a channel), not a restart. The list keeps the latest `max_failures`
distinct (what, error) pairs, each with how often and when it was last seen.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sidecar.domain.secret import mask_secrets

__all__ = ["MAX_FAILURES", "Check", "Clock", "PermanentFailure", "Readiness", "ReadinessReport"]

Clock = Callable[[], float]

MAX_FAILURES: Final = 20
_MAX_TEXT: Final = 300  # per field of a permanent failure: the /readyz body stays small whatever is reported


@dataclass(frozen=True)
class Check:
    """One readiness check's verdict."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class PermanentFailure:
    """A delivery that failed for good, as reported by the engine (times are unix seconds)."""

    what: str
    error: str
    fix: str
    count: int
    first_seen: float
    last_seen: float

    def to_json(self) -> dict[str, object]:
        """The JSON object shown on /readyz."""
        return {
            "what": self.what,
            "error": self.error,
            "fix": self.fix,
            "count": self.count,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
        }


@dataclass(frozen=True)
class ReadinessReport:
    """Every check, and the recent permanent failures (newest first)."""

    checks: tuple[Check, ...]
    permanent_failures: tuple[PermanentFailure, ...]

    @property
    def ready(self) -> bool:
        """True when every check passes."""
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, object]:
        """The /readyz body."""
        return {
            "ready": self.ready,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "permanent_failures": [f.to_json() for f in self.permanent_failures],
        }


class Readiness:
    """The state the checks read, updated by the telemetry recorder; `report()` judges it at the clock's now."""

    def __init__(
        self,
        *,
        identity_margin: float,
        mattermost_stale_after: float,
        max_failures: int = MAX_FAILURES,
        clock: Clock = time.time,
    ) -> None:
        if identity_margin < 0 or mattermost_stale_after <= 0 or max_failures < 1:
            raise ValueError("identity_margin must be >= 0, mattermost_stale_after > 0 and max_failures >= 1")
        self._margin = identity_margin
        self._stale_after = mattermost_stale_after
        self._max_failures = max_failures
        self._clock = clock
        self._streams = 0  # watch streams whose INIT has arrived
        self._watching = False
        self._lost_at: float | None = None
        self._expires_at: float | None = None
        self._mm_ok: bool | None = None
        self._mm_at = 0.0
        self._mm_failing_since = 0.0
        self._mm_detail = ""
        self._failures: collections.OrderedDict[tuple[str, str], PermanentFailure] = collections.OrderedDict()

    # --- updates -------------------------------------------------------------------------------------------

    def watcher_connected(self, connected: bool) -> None:
        """A stream's INIT arrived (True) or the stream was lost (False)."""
        if connected:
            self._streams += 1
        elif self._watching:
            self._lost_at = self._clock()
        self._watching = connected

    def identity_expiry(self, expires_at: float) -> None:
        """The identity in use is valid until `expires_at` (unix seconds)."""
        self._expires_at = expires_at

    def mattermost_result(self, ok: bool, detail: str) -> None:
        """The outcome of the latest contact with Mattermost."""
        now = self._clock()
        if not ok and self._mm_ok is not False:
            self._mm_failing_since = now
        self._mm_ok, self._mm_at, self._mm_detail = ok, now, mask_secrets(detail)[:_MAX_TEXT]

    def permanent_failure(self, what: str, error: str, fix: str) -> None:
        """Remember a permanent failure; a repeat of the same (what, error) counts up and moves to the front."""
        what, error, fix = (mask_secrets(text)[:_MAX_TEXT] for text in (what, error, fix))
        now = self._clock()
        key = (what, error)
        earlier = self._failures.pop(key, None)
        if earlier is None:
            self._failures[key] = PermanentFailure(what, error, fix, 1, now, now)
        else:
            self._failures[key] = PermanentFailure(what, error, fix, earlier.count + 1, earlier.first_seen, now)
        while len(self._failures) > self._max_failures:
            self._failures.popitem(last=False)

    # --- the verdict ---------------------------------------------------------------------------------------

    def report(self) -> ReadinessReport:
        """Judge every check now."""
        now = self._clock()
        return ReadinessReport(
            checks=(self._watch_check(now), self._identity_check(now), self._mattermost_check(now)),
            permanent_failures=tuple(reversed(self._failures.values())),
        )

    def _watch_check(self, now: float) -> Check:
        if self._watching:
            return Check("watch", True, "watch stream open, INIT received")
        if self._streams == 0:
            return Check("watch", False, "waiting for the first watch stream's INIT from Teleport")
        lost = f" {now - self._lost_at:.0f} s ago" if self._lost_at is not None else ""
        return Check("watch", False, f"watch stream lost{lost}; reconnecting to Teleport")

    def _identity_check(self, now: float) -> Check:
        if self._expires_at is None:
            return Check("identity", False, "no Teleport identity loaded yet")
        left = self._expires_at - now
        until = _iso(self._expires_at)
        if left <= 0:
            return Check("identity", False, f"the Teleport identity expired at {until}: renew it (is tbot running?)")
        if left < self._margin:
            return Check(
                "identity", False,
                f"the Teleport identity expires at {until}, in {left:.0f} s, less than the {self._margin:.0f} s "
                "margin: renew it (is tbot running?)",
            )
        return Check("identity", True, f"valid until {until} ({left:.0f} s left, margin {self._margin:.0f} s)")

    def _mattermost_check(self, now: float) -> Check:
        if self._mm_ok is None:
            return Check("mattermost", False, "no contact with Mattermost yet")
        age = now - self._mm_at
        if not self._mm_ok:
            failing = now - self._mm_failing_since
            return Check("mattermost", False, f"unreachable for {failing:.0f} s: {self._mm_detail}")
        if age > self._stale_after:
            return Check(
                "mattermost", False,
                f"no contact with Mattermost for {age:.0f} s (more than {self._stale_after:.0f} s); last: "
                f"{self._mm_detail}",
            )
        return Check("mattermost", True, f"reachable {age:.0f} s ago: {self._mm_detail}")


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
