"""What a condition can see of a request: `RequestEnv` (filled by the caller) and the variable table (§5.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sidecar.rules.gotime import from_datetime
from sidecar.rules.values import Dict, GoTime

__all__ = ["RequestEnv", "Scope"]


@dataclass(frozen=True)
class RequestEnv:
    """The variables of an access monitoring rule condition, for one access request.

    Fields map to `access_request.spec.*` (roles, suggested_reviewers, system_annotations, user, request_reason,
    creation_time, expiry) and to `user.traits`. A time of None is Go's zero time; a naive datetime is UTC.
    `expiry` is Go's `Expiry()`: the resource expiry if set, else the request's metadata expiry.
    """

    roles: tuple[str, ...] = ()
    suggested_reviewers: tuple[str, ...] = ()
    system_annotations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    user: str = ""
    request_reason: str = ""
    creation_time: datetime | None = None
    expiry: datetime | None = None
    traits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _dict(mapping: Mapping[str, tuple[str, ...]]) -> Dict:
    return Dict({key: frozenset(values) for key, values in mapping.items()})


class Scope:
    """An environment as the evaluator reads it: each variable converted once, on first use."""

    def __init__(self, env: RequestEnv) -> None:
        self.env = env

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(self.env.roles)

    @cached_property
    def suggested_reviewers(self) -> frozenset[str]:
        return frozenset(self.env.suggested_reviewers)

    @cached_property
    def system_annotations(self) -> Dict:
        return _dict(self.env.system_annotations)

    @cached_property
    def traits(self) -> Dict:
        return _dict(self.env.traits)

    @cached_property
    def creation_time(self) -> GoTime:
        return from_datetime(self.env.creation_time)

    @cached_property
    def expiry(self) -> GoTime:
        return from_datetime(self.env.expiry)
