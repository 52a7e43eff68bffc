"""Fault injection rules: errors, latency, outages, and "commit then drop the response"."""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass, field
from typing import Any

_METHODS = frozenset({"*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class FaultSpecError(ValueError):
    """A fault rule is malformed; the message names the field."""


@dataclass(frozen=True)
class FaultSpec:
    """What to do to matching requests.

    - `route`: a route template (`/api/v4/posts/{post_id}`) or a glob over templates (`/api/v4/posts*`);
      `*` matches every API route.
    - `method`: an HTTP method or `*`.
    - `rate`: the fraction of matching requests the rule fires for (seeded RNG, reproducible).
    - `status`: answer with this status (AppError body; 429 uses the rate-limit shape) without
      running the handler.
    - `latency_ms`: delay before handling.
    - `outage`: close the connection without running the handler (server unreachable).
    - `drop_after_commit`: run the handler (the change is stored), then close the connection without
      an answer; `hang_ms` first holds the connection open that long (clients with a shorter timeout
      see a timeout rather than a reset).
    - `times`: fire at most this many times (None: forever).
    """

    route: str = "*"
    method: str = "*"
    status: int | None = None
    rate: float = 1.0
    latency_ms: int = 0
    outage: bool = False
    drop_after_commit: bool = False
    hang_ms: int = 0
    times: int | None = None

    def __post_init__(self) -> None:
        if not self.route:
            raise FaultSpecError("route must not be empty")
        if self.method.upper() not in _METHODS:
            raise FaultSpecError(f"method {self.method!r} is not an HTTP method or '*'")
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultSpecError("status must be between 400 and 599")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultSpecError("rate must be between 0 and 1")
        if self.latency_ms < 0 or self.hang_ms < 0:
            raise FaultSpecError("latency_ms and hang_ms must not be negative")
        if self.times is not None and self.times < 1:
            raise FaultSpecError("times must be at least 1")
        actions = [self.status is not None, self.outage, self.drop_after_commit, self.latency_ms > 0]
        if not any(actions):
            raise FaultSpecError("a fault needs one of status, outage, drop_after_commit or latency_ms")
        if self.outage and (self.status is not None or self.drop_after_commit):
            raise FaultSpecError("outage cannot be combined with status or drop_after_commit")
        if self.status is not None and self.drop_after_commit:
            raise FaultSpecError("status cannot be combined with drop_after_commit")

    @classmethod
    def from_json(cls, doc: Any) -> FaultSpec:
        """Build from a JSON object, naming the bad field on error."""
        if not isinstance(doc, dict):
            raise FaultSpecError("a fault must be a JSON object")
        allowed = set(cls.__dataclass_fields__)
        extra = set(doc) - allowed
        if extra:
            raise FaultSpecError(f"unknown fault fields {sorted(extra)}")
        typed: dict[str, tuple[type, ...]] = {
            "route": (str,),
            "method": (str,),
            "status": (int, type(None)),
            "rate": (int, float),
            "latency_ms": (int,),
            "outage": (bool,),
            "drop_after_commit": (bool,),
            "hang_ms": (int,),
            "times": (int, type(None)),
        }
        for key, value in doc.items():
            is_bool = isinstance(value, bool)
            if not isinstance(value, typed[key]) or (is_bool and bool not in typed[key]):
                raise FaultSpecError(f"fault field {key!r} has the wrong type")
        return cls(**{**doc, "method": str(doc.get("method", "*")).upper(), "rate": float(doc.get("rate", 1.0))})

    def matches(self, method: str, route: str) -> bool:
        """Whether a request (method, route template) is covered."""
        if self.method != "*" and self.method != method.upper():
            return False
        return self.route == "*" or self.route == route or fnmatch.fnmatchcase(route, self.route)


@dataclass
class Fault:
    """An installed rule and how often it fired."""

    id: str
    spec: FaultSpec
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON view for `/fake/faults`."""
        return {"id": self.id, **asdict(self.spec), "fired": self.fired}


@dataclass(frozen=True)
class FaultPlan:
    """What the server must do for one request (merged from all matching rules)."""

    fault_ids: tuple[str, ...] = ()
    latency_ms: int = 0
    status: int | None = None
    outage: bool = False
    drop_after_commit: bool = False
    hang_ms: int = 0

    @property
    def active(self) -> bool:
        """Whether anything is to be done."""
        return bool(self.fault_ids)


@dataclass
class FaultBook:
    """The installed faults; `rng` is seeded so rates are reproducible."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    faults: list[Fault] = field(default_factory=list)
    _counter: int = 0

    def add(self, spec: FaultSpec) -> Fault:
        """Install a rule; returns it with its id."""
        self._counter += 1
        fault = Fault(f"fault-{self._counter}", spec)
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        """Remove one rule; False when unknown."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        """Remove every rule."""
        self.faults.clear()

    def plan(self, method: str, route: str) -> FaultPlan:
        """Decide, for one request, which rules fire (spent rules are removed)."""
        fired: list[Fault] = []
        for fault in list(self.faults):
            if not fault.spec.matches(method, route):
                continue
            if fault.spec.rate < 1.0 and self.rng.random() >= fault.spec.rate:
                continue
            fault.fired += 1
            fired.append(fault)
            if fault.spec.times is not None and fault.fired >= fault.spec.times:
                self.faults.remove(fault)
        if not fired:
            return FaultPlan()
        status = next((f.spec.status for f in fired if f.spec.status is not None), None)
        return FaultPlan(
            fault_ids=tuple(f.id for f in fired),
            latency_ms=max(f.spec.latency_ms for f in fired),
            status=status,
            outage=any(f.spec.outage for f in fired),
            drop_after_commit=any(f.spec.drop_after_commit for f in fired),
            hang_ms=max(f.spec.hang_ms for f in fired),
        )
