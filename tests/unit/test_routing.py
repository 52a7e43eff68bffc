"""Routing precedence: access monitoring rules first, the static configuration as fallback (Go's R-scenarios)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from sidecar.domain.errors import AccessDenied, NotFound, RateLimited, TransientError, Unauthorized
from sidecar.domain.model import AccessRequest, MonitoringRule, RequestState
from sidecar.engine.recipients import Origin, Source
from sidecar.engine.routing import (
    NONE_RESOLVED,
    RECIPIENT_FAILED,
    RULE_FAILED,
    TRAITS_DENIED,
    TRAITS_FAILED,
    Route,
    Router,
    explain,
    request_env,
)
from sidecar.engine.rule_cache import RuleCache
from tests.unit.fakes_ports import FakeChat

STATIC = {"*": ["team-llama/channel-llama", "somethingThatWillBeOverWritten"]}
CHANNELS = {
    "team-llama/channel-llama": "chan-llama",
    "team-llama/other": "chan-other",
    "reviewer1@example.com": "dm-1",
    "reviewer2@example.com": "dm-2",
    "rev2@example.com": "dm-rev2",
}
ANY_ROLE = "!is_empty(access_request.spec.roles)"


def request(**changes: object) -> AccessRequest:
    base: dict[str, object] = {
        "id": "req-1",
        "user": "requester-oss@example.com",
        "roles": ("editor",),
        "state": RequestState.PENDING,
        "request_reason": "because",
    }
    base.update(changes)
    return AccessRequest(**base)  # type: ignore[arg-type]


def rule(name: str = "r1", condition: str = ANY_ROLE, recipients: tuple[str, ...] = (), *,
         notification: str = "mattermost", revision: str = "1") -> MonitoringRule:
    return MonitoringRule(name, ("access_request",), condition, notification, recipients, revision)


class FakeTraits:
    """TraitsLookup over a dict; `error` is raised by every call."""

    def __init__(self, traits: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
                 error: Exception | None = None) -> None:
        self.traits = dict(traits or {})
        self.error = error
        self.calls: list[str] = []

    async def user_traits(self, user: str) -> Mapping[str, tuple[str, ...]]:
        self.calls.append(user)
        if self.error is not None:
            raise self.error
        return self.traits.get(user, {})


def router(*rules: MonitoringRule, traits: FakeTraits | None = None, chat: FakeChat | None = None,
           static: Mapping[str, list[str]] | None = None) -> tuple[Router, RuleCache, FakeChat, FakeTraits]:
    cache = RuleCache("mattermost")
    for each in rules:
        cache.put(each)
    chat = chat or FakeChat(channels=dict(CHANNELS))
    traits = traits or FakeTraits()
    made = Router(role_to_recipients=static if static is not None else STATIC, chat=chat, rules=cache, traits=traits)
    return made, cache, chat, traits


async def test_without_rules_the_static_path_needs_no_lookup() -> None:
    made, _, chat, traits = router()
    route = made.immediate(request(suggested_reviewers=("rev2@example.com", "not an email")))
    assert route == Route(
        ("team-llama/channel-llama", "somethingThatWillBeOverWritten", "rev2@example.com"),
        invalid_reviewers=("not an email",),
    )
    assert await made.route(request()) == Route(("team-llama/channel-llama", "somethingThatWillBeOverWritten"))
    assert traits.calls == [] and chat.resolved == []  # no GetUser without rules (Go asks anyway)


async def test_with_a_rule_cached_routing_needs_lookups() -> None:
    made, *_ = router(rule())
    assert made.immediate(request()) is None


async def test_r1_a_matching_rule_replaces_the_static_recipients() -> None:
    made, _, chat, traits = router(rule(recipients=("team-llama/channel-llama", "reviewer1@example.com")))
    route = await made.route(request())
    assert route == Route(("team-llama/channel-llama", "reviewer1@example.com"), by_rules=True, rules=("r1",))
    assert traits.calls == ["requester-oss@example.com"]
    assert "somethingThatWillBeOverWritten" not in chat.resolved  # the bad static entry is never looked at


async def test_r3_a_rule_for_another_plugin_is_not_used() -> None:
    made, cache, *_ = router(rule(notification="slack", recipients=("reviewer1@example.com",)))
    assert len(cache) == 0
    assert (await made.route(request())).by_rules is False


async def test_r6_matching_rules_are_united_without_duplicates() -> None:
    made, *_ = router(
        rule("a", recipients=("team-llama/channel-llama", "reviewer1@example.com")),
        rule("b", recipients=("reviewer1@example.com", "team-llama/other")),
        rule("c", condition="false", recipients=("reviewer2@example.com",)),
    )
    route = await made.route(request())
    assert route.recipients == ("team-llama/channel-llama", "reviewer1@example.com", "team-llama/other")
    assert route.rules == ("a", "b")


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([rule(recipients=())], id="R7-no-recipients"),
        pytest.param([rule(condition="false", recipients=("reviewer1@example.com",))], id="R8-condition-false"),
        pytest.param([rule(condition="access_request.spec.roles.contains(\"admin\")",
                           recipients=("reviewer1@example.com",))], id="R8-roles-differ"),
    ],
)
async def test_no_rule_recipient_means_the_static_path(rules: list[MonitoringRule]) -> None:
    made, *_ = router(*rules)
    route = await made.route(request(suggested_reviewers=("rev2@example.com",)))
    assert route == Route(("team-llama/channel-llama", "somethingThatWillBeOverWritten", "rev2@example.com"))


async def test_r9_a_recipient_of_the_wrong_shape_does_not_count(caplog: pytest.LogCaptureFixture) -> None:
    made, *_ = router(rule(recipients=("foo",)))
    with caplog.at_level(logging.WARNING):
        route = await made.route(request())
    assert route.by_rules is False
    assert RECIPIENT_FAILED in caplog.text
    assert NONE_RESOLVED in caplog.text


async def test_r10_fixed_an_unknown_recipient_does_not_suppress_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    made, _, chat, _ = router(rule(recipients=("ghost@example.com",)))
    with caplog.at_level(logging.WARNING):
        route = await made.route(request())
    assert route == Route(("team-llama/channel-llama", "somethingThatWillBeOverWritten"))
    assert chat.resolved == ["ghost@example.com"]
    warned = [r for r in caplog.records if r.getMessage() == RECIPIENT_FAILED]
    assert [(r.recipient, r.rules) for r in warned] == [("ghost@example.com", ["r1"])]  # type: ignore[attr-defined]


async def test_r10_fixed_only_the_unknown_recipients_are_left_out() -> None:
    made, *_ = router(rule(recipients=("ghost@example.com", "reviewer1@example.com", "team-llama/missing")))
    route = await made.route(request())
    assert route == Route(("reviewer1@example.com",), by_rules=True, rules=("r1",))


@pytest.mark.parametrize("error", [TransientError("down"), RateLimited("slow down", 1.0), Unauthorized("bad token")])
async def test_a_recipient_mattermost_cannot_answer_for_fails_the_routing(error: Exception) -> None:
    chat = FakeChat(channels=dict(CHANNELS), resolve_errors={"reviewer1@example.com": error})
    made, *_ = router(rule(recipients=("reviewer1@example.com",)), chat=chat)
    with pytest.raises(type(error)):
        await made.route(request())


async def test_r11_suggested_reviewers_get_nothing_when_a_rule_decides() -> None:
    made, *_ = router(rule(recipients=("reviewer1@example.com",)))
    route = await made.route(request(suggested_reviewers=("rev2@example.com", "not an email")))
    assert route == Route(("reviewer1@example.com",), by_rules=True, rules=("r1",))  # nor the invalid-reviewer WARN


TEAM_RULE = 'user.traits["team"].contains("example")'


async def test_r12_traits_of_the_requester_are_seen_by_conditions() -> None:
    traits = FakeTraits({"requester-oss@example.com": {"team": ("example",)}})
    made, *_ = router(rule(condition=TEAM_RULE, recipients=("reviewer1@example.com",)), traits=traits)
    assert (await made.route(request())).recipients == ("reviewer1@example.com",)


@pytest.mark.parametrize(
    ("error", "message"),
    [(AccessDenied("GetUser: PERMISSION_DENIED"), TRAITS_DENIED), (NotFound("no user"), TRAITS_FAILED),
     (TransientError("unavailable"), TRAITS_FAILED)],
)
async def test_r13_traits_that_cannot_be_read_are_empty(
    caplog: pytest.LogCaptureFixture, error: Exception, message: str
) -> None:
    made, *_ = router(rule(condition=TEAM_RULE, recipients=("reviewer1@example.com",)),
                      traits=FakeTraits(error=error))
    with caplog.at_level(logging.WARNING):
        route = await made.route(request())
    assert route.by_rules is False
    assert [r.getMessage() for r in caplog.records] == [message]


async def test_r14_a_requester_without_traits_does_not_match() -> None:
    made, *_ = router(rule(condition=TEAM_RULE, recipients=("reviewer1@example.com",)), traits=FakeTraits({}))
    assert (await made.route(request())).by_rules is False


async def test_r15_a_rule_that_fails_to_evaluate_is_warned_about_once_and_the_others_still_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made, *_ = router(
        rule("a", condition="choose(option(false, true))", recipients=("reviewer2@example.com",)),
        rule("b", recipients=("reviewer1@example.com",)),
    )
    with caplog.at_level(logging.WARNING):
        first = await made.route(request())
        second = await made.route(request(id="req-2"))
    assert first.recipients == second.recipients == ("reviewer1@example.com",)
    warned = [r for r in caplog.records if r.getMessage() == RULE_FAILED]
    assert len(warned) == 1
    assert warned[0].rule == "a"  # type: ignore[attr-defined]
    assert warned[0].error  # type: ignore[attr-defined]


async def test_a_rule_that_does_not_parse_is_warned_about_once_per_revision(caplog: pytest.LogCaptureFixture) -> None:
    made, cache, *_ = router(rule("bad", condition="contains(access_request.spec.roles, \"dev\")",
                                  recipients=("reviewer1@example.com",)))
    with caplog.at_level(logging.WARNING):
        for index in range(3):
            assert (await made.route(request(id=f"req-{index}"))).by_rules is False
        cache.put(rule("bad", condition="contains(x)", recipients=("reviewer1@example.com",), revision="2"))
        await made.route(request(id="req-9"))
    warned = [r for r in caplog.records if r.getMessage() == RULE_FAILED]
    assert len(warned) == 2
    assert "contains" in warned[0].error  # type: ignore[attr-defined]


async def test_the_environment_carries_every_variable_of_the_request() -> None:
    created = datetime(2025, 1, 1, tzinfo=UTC)
    expiry = datetime(2025, 1, 2, tzinfo=UTC)
    env = request_env(
        request(suggested_reviewers=("a@example.com",), system_annotations={"k": ("v",)}, created=created,
                expiry=expiry, request_reason="urgent"),
        {"team": ("dev",)},
    )
    assert (env.roles, env.suggested_reviewers, env.user, env.request_reason) == (
        ("editor",), ("a@example.com",), "requester-oss@example.com", "urgent")
    assert dict(env.system_annotations) == {"k": ("v",)}
    assert dict(env.traits) == {"team": ("dev",)}
    assert (env.creation_time, env.expiry) == (created, expiry)


def _problem(recipient: str) -> str:
    return "" if "@" in recipient or recipient.count("/") == 1 else f"bad {recipient}"


def test_explain_gives_every_rule_a_verdict_and_every_recipient_its_origins() -> None:
    rules = [
        rule("matched", recipients=("team-llama/channel-llama", "foo", "reviewer1@example.com")),
        rule("also", recipients=("reviewer1@example.com",)),
        rule("slack", notification="slack", recipients=("x@example.com",)),
        rule("broken", condition="TRUE"),
        rule("fails", condition="choose(option(false, true))"),
        rule("no", condition="false", recipients=("y@example.com",)),
    ]
    result = explain(request(suggested_reviewers=("rev2@example.com",)), rules, {}, STATIC,
                     plugin_name="mattermost", problem_of=_problem)
    verdicts = {v.name: v for v in result.verdicts}
    assert [v.name for v in result.verdicts] == sorted(verdicts)
    assert verdicts["matched"].matched and verdicts["also"].matched
    assert verdicts["slack"].skipped == "notification name is 'slack', not 'mattermost'"
    assert not verdicts["slack"].applies
    assert verdicts["broken"].failure == "parse" and "TRUE" in verdicts["broken"].error
    assert verdicts["fails"].failure == "evaluate"
    assert not verdicts["no"].matched and not verdicts["no"].failure
    assert result.fallback is False
    # Rules are judged by name, so "also" names reviewer1 first.
    assert [(c.recipient, c.origins) for c in result.recipients] == [
        ("reviewer1@example.com", (Origin(Source.RULE, "also"), Origin(Source.RULE, "matched"))),
        ("team-llama/channel-llama", (Origin(Source.RULE, "matched"),)),
    ]
    assert [(c.recipient, c.problem) for c in result.rule_candidates if c.problem] == [("foo", "bad foo")]
    assert [c.recipient for c in result.static_candidates] == [
        "team-llama/channel-llama", "somethingThatWillBeOverWritten", "rev2@example.com"]


def test_explain_falls_back_when_no_rule_recipient_is_usable() -> None:
    result = explain(request(roles=("editor", "auditor"), suggested_reviewers=("bad reviewer",)),
                     [rule(recipients=("foo",))], {}, {"editor": ["team-llama/channel-llama"], "*": ["reviewer1@x.y"]},
                     plugin_name="mattermost", problem_of=_problem)
    assert result.fallback is True
    assert [(c.recipient, [o.describe() for o in c.origins]) for c in result.recipients] == [
        ("team-llama/channel-llama", ["role_to_recipients[editor]"]),
        ("reviewer1@x.y", ['role_to_recipients["*"] for role auditor']),
    ]
    assert result.invalid_reviewers == ("bad reviewer",)
