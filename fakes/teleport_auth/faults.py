"""Fault injection for the fake Auth's RPCs, driven by the admin API: refusal windows, latency, failing calls."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc

from .errors import AuthError, ConnectionProblem

ANY_METHOD = "*"


class InjectedFault(AuthError):
    """A failure the admin API asked for, with an arbitrary status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Failure:
    code: grpc.StatusCode
    message: str
    remaining: int


@dataclass
class Faults:
    """Current fault settings; `before(method)` applies them at the start of every RPC."""

    refuse_until: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)

    def refuse_for(self, seconds: float) -> None:
        """Fail every RPC with UNAVAILABLE for `seconds` (0 ends a refusal window)."""
        self.refuse_until = time.monotonic() + seconds if seconds > 0 else 0.0

    @property
    def refusing(self) -> bool:
        """Whether a refusal window is open."""
        return time.monotonic() < self.refuse_until

    def set_latency(self, seconds: float, method: str = ANY_METHOD) -> None:
        """Delay calls of `method` (or all calls) by `seconds`; 0 removes the delay."""
        if seconds > 0:
            self.latency[method] = seconds
        else:
            self.latency.pop(method, None)

    def fail_next(self, method: str, count: int, code: grpc.StatusCode, message: str) -> None:
        """Fail the next `count` calls of `method` (or of any method) with `code`."""
        self.failures.setdefault(method, []).append(_Failure(code, message, count))

    def clear(self) -> None:
        """Remove every fault."""
        self.refuse_until = 0.0
        self.latency.clear()
        self.failures.clear()

    def snapshot(self) -> dict[str, object]:
        """The current settings, JSON-ready."""
        return {
            "refusing": self.refusing,
            "refuse_remaining_s": max(0.0, self.refuse_until - time.monotonic()),
            "latency": dict(self.latency),
            "failures": {
                m: [{"code": f.code.name, "message": f.message, "remaining": f.remaining} for f in fs]
                for m, fs in self.failures.items()
                if fs
            },
        }

    async def before(self, method: str) -> None:
        """Apply latency, then the refusal window, then any pending failure for this call."""
        delay = self.latency.get(method, self.latency.get(ANY_METHOD, 0.0))
        if delay > 0:
            await asyncio.sleep(delay)
        if self.refusing:
            raise ConnectionProblem("auth server is refusing connections (injected fault)")
        for key in (method, ANY_METHOD):
            queue = self.failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.pop(0)
                raise InjectedFault(failure.code, failure.message)
