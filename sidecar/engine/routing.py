"""Who gets a new request's root posts: access monitoring rules first, the static configuration as fallback.

Go 18.0.0 (`accessrequest/app.go: getMessageRecipients`, `accessmonitoring: RecipientsFromAccessMonitoringRules`):

    traits     GetUser(request.user); AccessDenied → WARN "Missing permissions to read user.traits, please add
               user.read to the associated role", any other error → WARN "Failed to read user.traits"; either
               way the traits are empty and routing goes on
    evaluate   every cached rule (sidecar/engine/rule_cache.py) against the request and the traits; a rule whose
               condition does not parse or fails to evaluate gets a WARN naming it and the reason (once per
               revision and reason, not per request) and counts as not matched
    collect    the union of the matching rules' recipients (first-seen order, duplicates removed)
    choose     those recipients, when at least one of them is usable; otherwise the static path
               (sidecar/engine/recipients.py: role_to_recipients and the suggested reviewers)

Messages already posted are never re-routed: updates and thread replies go to the posts stored in plugin data,
whatever the rules say now. Only a request seen for the first time is routed (Engine.handle).

Deviations from Go (README, "Deviations"):
* Unresolvable rule recipients (Go's R10 quirk). Go turns a well-formed rule recipient that Mattermost does not
  know (`ghost@example.com`, `team/missing`) into a recipient with channel "", which suppresses the static
  fallback and then fails to post. Here every rule recipient is resolved before choosing: one that does not
  resolve (or is neither an email nor `team/channel`) is WARNed about and does not count, and when none
  resolves the static path is used, with a WARN saying so. A transient failure (Mattermost down, rate limited)
  fails the event, which the dispatcher retries, rather than silently falling back.
* No rules, no GetUser: with nothing cached there is nothing to evaluate, so the static path is taken without
  reading the traits (Go reads them anyway, and warns each time when it may not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.domain.errors import (
    AccessDenied,
    ConditionError,
    ConditionParseError,
    SidecarError,
    TransientError,
    Unauthorized,
)
from sidecar.domain.model import AccessRequest, Channel, MonitoringRule
from sidecar.domain.ports import ChatPort, TraitsLookup
from sidecar.engine.recipients import Origin, Source, static_recipients
from sidecar.engine.rule_cache import CachedRule, Compiler, RuleCache, why_not_applying
from sidecar.rules import RequestEnv, compile_condition

__all__ = [
    "Candidate",
    "Explanation",
    "Route",
    "Router",
    "RuleVerdict",
    "explain",
    "judge",
    "request_env",
    "rule_recipients",
]

_log = logging.getLogger("sidecar.engine.routing")

TRAITS_DENIED = "Missing permissions to read user.traits, please add user.read to the associated role"
TRAITS_FAILED = "Failed to read user.traits"
RULE_FAILED = "Failed to parse access monitoring notification rule"
RECIPIENT_FAILED = "Failed to fetch plugin recipients based on Access monitoring rule recipients"
NONE_RESOLVED = "No recipient of the matching access monitoring rules can be resolved, using the static recipients"

Traits = Mapping[str, tuple[str, ...]]


def request_env(request: AccessRequest, traits: Traits) -> RequestEnv:
    """What a condition sees of a request (`access_request.spec.*`) and its requester (`user.traits`)."""
    return RequestEnv(
        roles=tuple(request.roles),
        suggested_reviewers=tuple(request.suggested_reviewers),
        system_annotations={key: tuple(values) for key, values in request.system_annotations.items()},
        user=request.user,
        request_reason=request.request_reason,
        creation_time=request.created,
        expiry=request.expiry,
        traits={key: tuple(values) for key, values in traits.items()},
    )


@dataclass(frozen=True)
class RuleVerdict:
    """What one rule made of one request."""

    name: str
    recipients: tuple[str, ...]
    skipped: str = ""  # why the rule is not for this plugin ("" when it is)
    matched: bool = False
    failure: str = ""  # "parse" or "evaluate" when the condition could not be decided
    error: str = ""

    @property
    def applies(self) -> bool:
        """The rule is for this plugin (notification name and subject), whatever its condition says."""
        return not self.skipped


def judge(cached: CachedRule, env: RequestEnv) -> RuleVerdict:
    """Evaluate one rule that applies. A condition that fails to parse or evaluate is a verdict, not an error."""
    rule = cached.rule
    condition = cached.condition()
    if isinstance(condition, ConditionParseError):
        return RuleVerdict(rule.name, rule.recipients, failure="parse", error=str(condition))
    try:
        matched = condition.evaluate(env)
    except ConditionError as exc:  # the evaluator turns its own failures into this too
        return RuleVerdict(rule.name, rule.recipients, failure="evaluate", error=str(exc))
    return RuleVerdict(rule.name, rule.recipients, matched=matched is True)


def rule_recipients(verdicts: Sequence[RuleVerdict]) -> dict[str, tuple[Origin, ...]]:
    """The matching rules' recipients, in first-seen order, each with the rules that name it."""
    found: dict[str, list[Origin]] = {}
    for verdict in verdicts:
        if not verdict.matched:
            continue
        for recipient in verdict.recipients:
            origin = Origin(Source.RULE, verdict.name)
            if origin not in found.setdefault(recipient, []):
                found[recipient].append(origin)
    return {recipient: tuple(origins) for recipient, origins in found.items()}


@dataclass(frozen=True)
class Route:
    """Who gets the root posts of a new request, and why."""

    recipients: tuple[str, ...]
    by_rules: bool = False  # False: the static fallback
    rules: tuple[str, ...] = ()  # the matching rules, when by_rules
    invalid_reviewers: tuple[str, ...] = ()  # suggested reviewers left out (static path only, as in Go)


class Router:
    """Routes new requests: the cached rules first, the static configuration when they yield no recipient."""

    def __init__(
        self,
        *,
        role_to_recipients: Mapping[str, Sequence[str]],
        chat: ChatPort,
        rules: RuleCache | None = None,
        traits: TraitsLookup | None = None,
    ) -> None:
        self._role_to_recipients = role_to_recipients
        self._chat = chat
        self._rules = rules
        self._traits = traits

    def immediate(self, request: AccessRequest) -> Route | None:
        """The route when it needs no lookup (no rule is cached: the static path), else None: call `route`."""
        if self._rules is not None and len(self._rules):
            return None
        return self._static(request)

    async def route(self, request: AccessRequest, *, context: Mapping[str, Any] | None = None) -> Route:
        """The recipients of a new request. Raises TransientError (and Unauthorized) when Mattermost cannot
        tell whether a rule's recipient exists: the event is retried rather than routed differently."""
        context = dict(context or {})
        cached = self._rules.rules() if self._rules is not None else ()
        if not cached:
            return self._static(request)
        env = request_env(request, await self._read_traits(request.user, context))
        verdicts = [self._judged(rule, env, context) for rule in cached]
        candidates = rule_recipients(verdicts)
        matched = tuple(v.name for v in verdicts if v.matched)
        usable = await self._resolvable(candidates, context)
        if usable:
            _log.info(
                "Routing by access monitoring rules",
                extra={**context, "rules": list(matched), "recipients": len(usable)},
            )
            return Route(tuple(usable), by_rules=True, rules=matched)
        if candidates:
            _log.warning(NONE_RESOLVED, extra={**context, "rules": list(matched)})
        return self._static(request)

    def _static(self, request: AccessRequest) -> Route:
        found, invalid = static_recipients(request.roles, request.suggested_reviewers, self._role_to_recipients)
        return Route(tuple(found), invalid_reviewers=tuple(invalid))

    async def _read_traits(self, user: str, context: Mapping[str, Any]) -> Traits:
        if self._traits is None:
            return {}
        try:
            return await self._traits.user_traits(user)
        except AccessDenied as exc:
            _log.warning(TRAITS_DENIED, extra={**context, "error": str(exc)})
        except SidecarError as exc:
            _log.warning(TRAITS_FAILED, extra={**context, "error": str(exc)})
        return {}

    def _judged(self, cached: CachedRule, env: RequestEnv, context: Mapping[str, Any]) -> RuleVerdict:
        verdict = judge(cached, env)
        if verdict.failure:
            # A broken rule stays broken for every request until it is rewritten: say so once per revision.
            level = logging.WARNING if cached.first_time(f"{verdict.failure}: {verdict.error}") else logging.DEBUG
            _log.log(level, RULE_FAILED, extra={**context, "rule": verdict.name, "error": verdict.error})
        return verdict

    async def _resolvable(self, candidates: Mapping[str, tuple[Origin, ...]], context: Mapping[str, Any]) -> list[str]:
        """The candidates Mattermost resolves, in order; the others are WARNed about and left out."""
        names = list(candidates)
        results = await asyncio.gather(*(self._resolve(name) for name in names))
        usable: list[str] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Channel):
                usable.append(name)
                continue
            rules = [origin.name for origin in candidates[name]]
            _log.warning(RECIPIENT_FAILED, extra={**context, "recipient": name, "rules": rules, "error": str(result)})
        return usable

    async def _resolve(self, recipient: str) -> Channel | SidecarError:
        try:
            return await self._chat.resolve(recipient)
        except (TransientError, Unauthorized):
            raise  # not about this recipient
        except SidecarError as exc:
            return exc


@dataclass(frozen=True)
class Candidate:
    """A recipient routing considered, why, and why it cannot be used ("" when it can)."""

    recipient: str
    origins: tuple[Origin, ...]
    problem: str = ""


@dataclass(frozen=True)
class Explanation:
    """Every routing decision for one request, for `teleport-mattermost route`."""

    verdicts: tuple[RuleVerdict, ...]
    rule_candidates: tuple[Candidate, ...]
    static_candidates: tuple[Candidate, ...]
    invalid_reviewers: tuple[str, ...]
    fallback: bool  # no rule recipient is usable: the static path decides
    traits: Traits = field(default_factory=dict)

    @property
    def recipients(self) -> tuple[Candidate, ...]:
        """The final recipients: the usable ones of the path taken."""
        chosen = self.static_candidates if self.fallback else self.rule_candidates
        return tuple(c for c in chosen if not c.problem)


def explain(
    request: AccessRequest,
    rules: Sequence[MonitoringRule],
    traits: Traits,
    role_to_recipients: Mapping[str, Sequence[str]],
    *,
    plugin_name: str,
    problem_of: Callable[[str], str],
    compiler: Compiler = compile_condition,
) -> Explanation:
    """Route `request` as the plugin would, without Mattermost: a recipient is usable when `problem_of` finds
    nothing wrong with it (the running plugin also requires it to resolve). Pure."""
    env = request_env(request, traits)
    verdicts: list[RuleVerdict] = []
    for rule in sorted(rules, key=lambda r: r.name):
        reason = why_not_applying(rule, plugin_name)
        if reason:
            verdicts.append(RuleVerdict(rule.name, rule.recipients, skipped=reason))
        else:
            verdicts.append(judge(CachedRule(rule, compiler), env))
    from_rules = [Candidate(r, o, problem_of(r)) for r, o in rule_recipients(verdicts).items()]
    found, invalid = static_recipients(request.roles, request.suggested_reviewers, role_to_recipients)
    from_static = [Candidate(r, o, problem_of(r)) for r, o in found.items()]
    fallback = not any(not c.problem for c in from_rules)
    return Explanation(
        verdicts=tuple(verdicts),
        rule_candidates=tuple(from_rules),
        static_candidates=tuple(from_static),
        invalid_reviewers=tuple(invalid),
        fallback=fallback,
        traits=dict(traits),
    )
