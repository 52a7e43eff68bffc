"""Storage of access monitoring rules: keyed by name, listed in ascending name order, a new revision per write.

Paging follows Teleport's cached lister (`lib/cache/generic_operations.go`): the page token is the name of the
first rule to return (inclusive), a page ends after `page_size` *matching* rules, and the next token is the name
of the next rule scanned, matching or not ("" when there is none). A page size of 0 or less means 1000; larger
sizes are not clamped (the cache path, which serves a healthy cluster's reads, has no upper bound).

Rules with `metadata.expires` disappear at that time (the backend TTL); `sweep` returns them so the caller can
publish their DELETE events. Everything is stored and returned as copies.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2 as amr_service_pb2

from .errors import AlreadyExists, NotFound
from .rule_validation import KIND_ACCESS_MONITORING_RULE, go_quote

#: `defaults.DefaultChunkSize`: the page size when the request asks for 0 or less.
DEFAULT_PAGE_SIZE = 1000

Rule = amr_pb2.AccessMonitoringRule


@dataclass(frozen=True)
class RuleFilter:
    """`ListAccessMonitoringRulesWithFilter`'s filter (`services.MatchAccessMonitoringRule`)."""

    subjects: tuple[str, ...] = ()
    notification_name: str = ""
    automatic_review_name: str = ""

    @classmethod
    def from_request(cls, request: amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest) -> RuleFilter:
        """The filter fields of a request."""
        return cls(tuple(request.subjects), request.notification_name, request.automatic_review_name)

    def matches(self, rule: Rule) -> bool:
        """Every requested subject is among the rule's, and each non-empty name equals the rule's."""
        spec = rule.spec
        if self.notification_name and spec.notification.name != self.notification_name:
            return False
        if self.automatic_review_name and spec.automatic_review.integration != self.automatic_review_name:
            return False
        return set(self.subjects) <= set(spec.subjects)


MATCH_ALL = RuleFilter()


def copy_rule(rule: Rule) -> Rule:
    """A deep copy, so callers never share the stored message."""
    out = Rule()
    out.CopyFrom(rule)
    return out


def new_revision() -> str:
    """An opaque revision, new on every write (Teleport's backends use UUID-like strings)."""
    return str(uuid.uuid4())


class RuleStore:
    """The rules of one fake cluster, with no RBAC, validation or events (see `monitoring_rules.py`)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._rules: dict[str, Rule] = {}
        self._names: list[str] = []  # sorted; bisected for page tokens
        # (expiry, order, name, revision): an entry is stale once the rule is deleted or rewritten.
        self._expiries: list[tuple[datetime, int, str, str]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._rules)

    def get(self, name: str) -> Rule:
        """A copy of the stored rule; NotFound when there is none."""
        return copy_rule(self._lookup(name))

    def create(self, rule: Rule) -> Rule:
        """Store a rule under a new name; AlreadyExists when the name is taken."""
        name = rule.metadata.name
        if name in self._rules:
            raise AlreadyExists(f"{_kind_and_name(name)} already exists")
        return self._put(rule)

    def update(self, rule: Rule) -> Rule:
        """Replace an existing rule whatever its revision (`UnconditionalUpdateResource`); NotFound when absent."""
        self._lookup(rule.metadata.name)
        return self._put(rule)

    def upsert(self, rule: Rule) -> Rule:
        """Store a rule, new or not."""
        return self._put(rule)

    def delete(self, name: str) -> Rule:
        """Remove a rule and return what was stored; NotFound when absent."""
        rule = self._lookup(name)
        del self._rules[name]
        del self._names[bisect.bisect_left(self._names, name)]
        return rule

    def all(self) -> list[Rule]:
        """Copies of every rule in name order."""
        return [copy_rule(self._rules[n]) for n in self._names]

    def page(self, page_size: int, page_token: str, rule_filter: RuleFilter = MATCH_ALL) -> tuple[list[Rule], str]:
        """One page of matching rules from `page_token` on, and the next token ("" at the end)."""
        size = page_size if page_size > 0 else DEFAULT_PAGE_SIZE
        start = bisect.bisect_left(self._names, page_token) if page_token else 0
        found: list[Rule] = []
        for index in range(start, len(self._names)):
            if len(found) == size:
                return found, self._names[index]
            rule = self._rules[self._names[index]]
            if rule_filter.matches(rule):
                found.append(copy_rule(rule))
        return found, ""

    def next_expiry(self) -> datetime | None:
        """When the next stored rule expires (None when none does)."""
        while self._expiries and not self._current(self._expiries[0]):
            heapq.heappop(self._expiries)
        return self._expiries[0][0] if self._expiries else None

    def sweep(self) -> list[Rule]:
        """Delete the rules whose expiry has passed and return them, soonest first."""
        now = self._clock()
        gone: list[Rule] = []
        while self._expiries and self._expiries[0][0] <= now:
            entry = heapq.heappop(self._expiries)
            if self._current(entry):
                gone.append(self.delete(entry[2]))
        return gone

    def _lookup(self, name: str) -> Rule:
        rule = self._rules.get(name)
        if rule is None:
            raise NotFound(f"{_kind_and_name(name)} doesn't exist")
        return rule

    def _put(self, rule: Rule) -> Rule:
        stored = copy_rule(rule)
        stored.metadata.revision = new_revision()
        name = stored.metadata.name
        if name not in self._rules:
            bisect.insort(self._names, name)
        self._rules[name] = stored
        if stored.metadata.HasField("expires"):
            when = stored.metadata.expires.ToDatetime(tzinfo=UTC)
            heapq.heappush(self._expiries, (when, next(self._order), name, stored.metadata.revision))
        return copy_rule(stored)

    def _current(self, entry: tuple[datetime, int, str, str]) -> bool:
        stored = self._rules.get(entry[2])
        return stored is not None and stored.metadata.revision == entry[3]


def _kind_and_name(name: str) -> str:
    # `generic.Service` messages: `<resource kind> "<name>" already exists` / `... doesn't exist`.
    return f"{KIND_ACCESS_MONITORING_RULE} {go_quote(name)}"
