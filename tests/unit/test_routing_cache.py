"""The rule cache and its lifecycle: which rules are kept, PUT/DELETE, listing after each INIT, the fatal cases."""

from __future__ import annotations

import logging

import pytest

from sidecar.domain.errors import AccessDenied, ConditionParseError, StartupError, TransientError
from sidecar.domain.model import EventOp, MonitoringRule, RuleChange
from sidecar.engine.rule_cache import NOT_WATCHED, CachedRule, RuleCache, RuleSync, why_not_applying
from sidecar.rules import Condition, compile_condition


def rule(name: str = "r1", *, condition: str = "true", notification: str = "mattermost",
         subjects: tuple[str, ...] = ("access_request",), recipients: tuple[str, ...] = ("team/chan",),
         revision: str = "1") -> MonitoringRule:
    return MonitoringRule(name, subjects, condition, notification, recipients, revision)


class FakeRuleSource:
    """RuleSource over a list; `errors` are raised by the next calls, in order."""

    def __init__(self, rules: list[MonitoringRule] | None = None) -> None:
        self.rules = list(rules or [])
        self.errors: list[Exception] = []
        self.calls = 0

    async def list_rules(self) -> list[MonitoringRule]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return list(self.rules)


class CountingCompiler:
    def __init__(self) -> None:
        self.compiled: list[str] = []

    def __call__(self, text: str) -> Condition:
        self.compiled.append(text)
        return compile_condition(text)


def names(cache: RuleCache) -> list[str]:
    return [cached.rule.name for cached in cache.rules()]


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (rule(), ""),
        (rule(subjects=("someOtherKind", "access_request")), ""),
        (rule(notification="slack"), "notification name is 'slack', not 'mattermost'"),
        (rule(notification="Mattermost"), "notification name is 'Mattermost', not 'mattermost'"),
        (rule(notification=""), "notification name is missing, not 'mattermost'"),
        (rule(subjects=("someOtherKind",)), "subjects ['someOtherKind'] do not include 'access_request'"),
        (rule(subjects=()), "subjects [] do not include 'access_request'"),
    ],
)
def test_a_rule_applies_with_the_exact_plugin_name_and_the_access_request_subject(
    candidate: MonitoringRule, reason: str
) -> None:
    assert why_not_applying(candidate, "mattermost") == reason


def test_put_keeps_rules_that_apply_and_an_update_that_no_longer_applies_removes_it() -> None:
    cache = RuleCache("mattermost")
    cache.put(rule("a"))
    cache.put(rule("b", notification="slack"))  # R3: never cached
    assert names(cache) == ["a"]
    cache.put(rule("a", subjects=("someOtherKind",), revision="2"))  # R4: moved to another subject
    assert names(cache) == []


def test_delete_removes_by_name_and_ignores_unknown_names() -> None:
    cache = RuleCache("mattermost")
    cache.put(rule("a"))
    cache.put(rule("b"))
    cache.delete("a")  # R5
    cache.delete("never-seen")
    assert names(cache) == ["b"]


def test_rules_are_listed_by_name_and_a_snapshot_does_not_change_later() -> None:
    cache = RuleCache("mattermost")
    for name in ("c", "a", "b"):
        cache.put(rule(name))
    snapshot = cache.rules()
    cache.delete("a")
    assert [c.rule.name for c in snapshot] == ["a", "b", "c"]
    assert names(cache) == ["b", "c"]


def test_a_condition_is_compiled_once_per_revision() -> None:
    compiler = CountingCompiler()
    cache = RuleCache("mattermost", compiler=compiler)
    cache.put(rule("a", condition="true"))
    [first] = cache.rules()
    first.condition()
    first.condition()
    cache.put(rule("a", condition="true"))  # the same revision again (a re-listing): the entry is kept
    assert cache.rules()[0] is first
    cache.rules()[0].condition()
    assert compiler.compiled == ["true"]
    cache.put(rule("a", condition="false", revision="2"))
    cache.rules()[0].condition()
    assert compiler.compiled == ["true", "false"]


def test_a_condition_that_does_not_parse_is_kept_as_its_error_and_reported_once() -> None:
    compiler = CountingCompiler()
    cached = CachedRule(rule(condition="access_request.spec.roles == set(\"x\")"), compiler)
    assert isinstance(cached.condition(), ConditionParseError)
    assert isinstance(cached.condition(), ConditionParseError)
    assert len(compiler.compiled) == 1
    assert cached.first_time("parse: x")
    assert not cached.first_time("parse: x")
    assert cached.first_time("evaluate: y")


def test_replace_holds_exactly_the_listed_rules_that_apply() -> None:
    cache = RuleCache("mattermost")
    cache.put(rule("gone"))
    cache.put(rule("kept"))
    [kept] = [c for c in cache.rules() if c.rule.name == "kept"]
    cache.replace([rule("kept"), rule("new"), rule("other-plugin", notification="slack")])
    assert names(cache) == ["kept", "new"]
    assert [c for c in cache.rules() if c.rule.name == "kept"] == [kept]


async def test_started_with_the_kind_granted_lists_the_rules() -> None:
    source = FakeRuleSource([rule("a"), rule("b", notification="slack")])
    sync = RuleSync(RuleCache("mattermost"), source)
    await sync.started(1, granted=True)
    assert source.calls == 1
    assert names(sync.cache) == ["a"]  # filtered again: the server's filter is not trusted
    assert sync.granted is True


async def test_without_the_kind_nothing_is_listed_and_the_go_warning_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = FakeRuleSource([rule("a")])
    sync = RuleSync(RuleCache("mattermost"), source)
    with caplog.at_level(logging.WARNING):
        await sync.started(1, granted=False)
        await sync.started(2, granted=False)
    assert source.calls == 0  # R16: no List call
    assert [r.getMessage() for r in caplog.records] == [NOT_WATCHED]
    sync.changed(RuleChange(EventOp.PUT, "a", rule("a")))  # cannot happen without the kind; harmless if it did
    assert names(sync.cache) == ["a"]


async def test_losing_the_kind_on_a_reconnect_empties_the_cache(caplog: pytest.LogCaptureFixture) -> None:
    sync = RuleSync(RuleCache("mattermost"), FakeRuleSource([rule("a")]))
    await sync.started(1, granted=True)
    with caplog.at_level(logging.WARNING):
        await sync.started(2, granted=False)
    assert names(sync.cache) == []
    assert NOT_WATCHED in caplog.text


async def test_a_failed_listing_at_start_up_is_fatal_with_the_go_message() -> None:
    source = FakeRuleSource()
    source.errors.append(AccessDenied("ListAccessMonitoringRulesWithFilter: PERMISSION_DENIED: access denied"))
    sync = RuleSync(RuleCache("mattermost"), source)
    with pytest.raises(StartupError, match=r"^initializing Access Monitoring Rule cache: .*PERMISSION_DENIED"):
        await sync.started(1, granted=True)  # R17


async def test_a_transient_failure_at_start_up_is_fatal_too() -> None:
    source = FakeRuleSource()
    source.errors.append(TransientError("unavailable"))
    with pytest.raises(StartupError):
        await RuleSync(RuleCache("mattermost"), source).started(1, granted=True)


async def test_every_reconnect_lists_again_so_changes_made_meanwhile_are_not_missed() -> None:
    source = FakeRuleSource([rule("a"), rule("b")])
    sync = RuleSync(RuleCache("mattermost"), source)
    await sync.started(1, granted=True)
    source.rules = [rule("b", revision="2"), rule("c")]  # while disconnected: a deleted, b updated, c created
    await sync.started(2, granted=True)
    assert names(sync.cache) == ["b", "c"]
    assert sync.cache.rules()[0].rule.revision == "2"


async def test_a_transient_failure_on_a_reconnect_is_raised_so_the_stream_is_reopened() -> None:
    source = FakeRuleSource([rule("a")])
    sync = RuleSync(RuleCache("mattermost"), source)
    await sync.started(1, granted=True)
    source.errors.append(TransientError("unavailable"))
    with pytest.raises(TransientError):
        await sync.started(2, granted=True)
    assert names(sync.cache) == ["a"]


async def test_a_permanent_failure_on_a_reconnect_keeps_the_cache(caplog: pytest.LogCaptureFixture) -> None:
    source = FakeRuleSource([rule("a")])
    sync = RuleSync(RuleCache("mattermost"), source)
    await sync.started(1, granted=True)
    source.errors.append(AccessDenied("denied"))
    with caplog.at_level(logging.ERROR):
        await sync.started(2, granted=True)
    assert names(sync.cache) == ["a"]
    assert "Failed to list access monitoring rules after reconnecting" in caplog.text


def test_changed_applies_puts_and_deletes() -> None:
    sync = RuleSync(RuleCache("mattermost"), FakeRuleSource())
    sync.changed(RuleChange(EventOp.PUT, "a", rule("a")))
    sync.changed(RuleChange(EventOp.PUT, "b", rule("b")))
    sync.changed(RuleChange(EventOp.DELETE, "a"))
    sync.changed(RuleChange(EventOp.PUT, "b", rule("b", notification="slack", revision="2")))
    assert names(sync.cache) == []


def test_an_unexpected_change_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    sync = RuleSync(RuleCache("mattermost"), FakeRuleSource())
    with caplog.at_level(logging.ERROR):
        sync.changed(RuleChange(EventOp.RESUME, "a"))
    assert "Unexpected access monitoring rule event" in caplog.text
