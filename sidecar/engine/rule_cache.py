"""The access monitoring rules routing reads, kept current from the watch (the Go plugin's rule cache).

    RuleSync.started(connection, granted)   after each watch stream's INIT, before any of its events
        granted                          list the rules (RuleSource); the cache holds exactly those that apply
          ... listing fails, 1st stream  StartupError "initializing Access Monitoring Rule cache: ..." (as Go:
                                         the plugin does not start, e.g. a role with `read` but not `list`)
          ... listing fails later        TransientError: raised, so the watcher re-opens the stream and lists
                                         again; a permanent error: ERROR, and the cache keeps what it has
        not granted                      WARN Go's text; the cache is emptied: static routing only
    RuleSync.changed(PUT rule)           kept when it applies (notification name is exactly the plugin's and
                                         the subjects include access_request), removed otherwise (an update
                                         can move a rule to another plugin or subject)
    RuleSync.changed(DELETE name)        removed

Go lists once, at start-up, and keeps its cache across reconnects; listing after every reconnect (an
improvement) means changes made while no stream was open are not missed. Events are applied in stream
order, as the watcher reads them, so a request that follows a rule in the stream is routed with it.

A rule's condition is compiled on first use and kept with the rule: a PUT that changes nothing (a re-listing)
keeps the entry, one with a new revision replaces it. So a rule that does not parse costs one parse and
one WARN per revision, not one per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sidecar.domain.errors import ConditionParseError, SidecarError, StartupError, TransientError
from sidecar.domain.model import EventOp, MonitoringRule, RuleChange
from sidecar.domain.ports import RuleSource
from sidecar.rules import Condition, compile_condition

__all__ = [
    "ACCESS_REQUEST_SUBJECT",
    "NOT_WATCHED",
    "CachedRule",
    "Compiler",
    "RuleCache",
    "RuleSync",
    "why_not_applying",
]

_log = logging.getLogger("sidecar.engine.rules")

ACCESS_REQUEST_SUBJECT = "access_request"
NOT_WATCHED = (
    "Failed to watch access_monitoring_rule events. Allow access_monitoring_rule read permissions in the plugin role."
)
CACHE_INIT_FAILED = "initializing Access Monitoring Rule cache"

Compiler = Callable[[str], Condition]


def why_not_applying(rule: MonitoringRule, plugin_name: str) -> str:
    """Why the plugin ignores `rule` (Go's `ruleApplies`), or "" when the rule is for it."""
    if rule.notification_name != plugin_name:
        shown = repr(rule.notification_name) if rule.notification_name else "missing"
        return f"notification name is {shown}, not {plugin_name!r}"
    if ACCESS_REQUEST_SUBJECT not in rule.subjects:
        return f"subjects {list(rule.subjects)} do not include {ACCESS_REQUEST_SUBJECT!r}"
    return ""


class CachedRule:
    """A rule with its condition compiled once, and the warnings already given about this revision."""

    def __init__(self, rule: MonitoringRule, compiler: Compiler = compile_condition) -> None:
        self.rule = rule
        self._compiler = compiler
        self._compiled: Condition | ConditionParseError | None = None
        self._warned: set[str] = set()

    def condition(self) -> Condition | ConditionParseError:
        """The compiled condition, or why it does not parse (worked out once)."""
        if self._compiled is None:
            try:
                self._compiled = self._compiler(self.rule.condition)
            except ConditionParseError as exc:
                self._compiled = exc
        return self._compiled

    def first_time(self, reason: str) -> bool:
        """True the first time `reason` is reported for this revision of the rule (warn once, not per request)."""
        if reason in self._warned:
            return False
        self._warned.add(reason)
        return True


class RuleCache:
    """The rules that apply to this plugin, by name."""

    def __init__(self, plugin_name: str, *, compiler: Compiler = compile_condition) -> None:
        self.plugin_name = plugin_name
        self._compiler = compiler
        self._rules: dict[str, CachedRule] = {}
        self._snapshot: tuple[CachedRule, ...] | None = None

    def __len__(self) -> int:
        return len(self._rules)

    def rules(self) -> tuple[CachedRule, ...]:
        """Every cached rule, by name (a snapshot: later changes do not alter it)."""
        if self._snapshot is None:
            self._snapshot = tuple(self._rules[name] for name in sorted(self._rules))
        return self._snapshot

    def put(self, rule: MonitoringRule) -> None:
        """Keep `rule` if it applies to this plugin; otherwise forget any older copy of it."""
        reason = why_not_applying(rule, self.plugin_name)
        if reason:
            if self._rules.pop(rule.name, None) is not None:
                self._snapshot = None
                _log.info("Access monitoring rule no longer applies", extra={"rule": rule.name, "reason": reason})
            return
        kept = self._rules.get(rule.name)
        if kept is not None and kept.rule == rule:
            return  # the same revision: keep its compiled condition and what was said about it
        self._rules[rule.name] = CachedRule(rule, self._compiler)
        self._snapshot = None

    def delete(self, name: str) -> None:
        """Forget the rule called `name` (nothing happens when it is not cached)."""
        if self._rules.pop(name, None) is not None:
            self._snapshot = None

    def replace(self, rules: Iterable[MonitoringRule]) -> None:
        """Hold exactly the rules of `rules` that apply (a fresh listing); unchanged ones keep their entries."""
        listed = {rule.name: rule for rule in rules}
        for name in [name for name in self._rules if name not in listed]:
            self.delete(name)
        for rule in listed.values():
            self.put(rule)

    def clear(self) -> None:
        """Forget every rule."""
        if self._rules:
            self._rules.clear()
            self._snapshot = None


class RuleSync:
    """Fills the cache from the listing after each INIT and keeps it current from watch events (the watcher's
    rule feed, `sidecar.teleport.watcher.RuleFeed`)."""

    def __init__(self, cache: RuleCache, source: RuleSource) -> None:
        self.cache = cache
        self._source = source
        self.granted: bool | None = None  # None until the first stream started

    async def started(self, connection: int, granted: bool) -> None:
        """A watch stream started; list the rules when it watches them. See the module docstring for failures."""
        was_granted, self.granted = self.granted, granted
        if not granted:
            if was_granted is not False:
                _log.warning(NOT_WATCHED)
            self.cache.clear()
            return
        try:
            rules = await self._source.list_rules()
        except SidecarError as exc:
            if connection == 1:
                raise StartupError(f"{CACHE_INIT_FAILED}: {exc}") from exc
            if isinstance(exc, TransientError):
                raise
            _log.error(
                "Failed to list access monitoring rules after reconnecting; routing keeps the rules it knows",
                extra={"error": str(exc), "rules": len(self.cache)},
            )
            return
        self.cache.replace(rules)
        _log.info(
            "Loaded access monitoring rules",
            extra={"listed": len(rules), "rules": [cached.rule.name for cached in self.cache.rules()]},
        )

    def changed(self, change: RuleChange) -> None:
        """Apply one watch event: PUT keeps or drops the rule, DELETE drops it."""
        if change.op is EventOp.PUT and change.rule is not None:
            self.cache.put(change.rule)
            _log.debug("Access monitoring rule written", extra={"rule": change.name})
        elif change.op is EventOp.DELETE:
            self.cache.delete(change.name)
            _log.debug("Access monitoring rule deleted", extra={"rule": change.name})
        else:
            _log.error("Unexpected access monitoring rule event", extra={"rule": change.name, "op": change.op.value})
