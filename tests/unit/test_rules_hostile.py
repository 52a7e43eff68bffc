"""A bad or hostile condition must never take the sidecar down: every failure is a ConditionParseError or a
ConditionEvalError, promptly, never a RecursionError, a hang or another exception."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from sidecar.domain.errors import ConditionEvalError, ConditionParseError
from sidecar.rules import RequestEnv, compile_condition, matches
from sidecar.rules.condition import MAX_CONDITION_LENGTH
from sidecar.rules.grammar import MAX_DEPTH

ENV = RequestEnv(roles=("a",), user="u", traits={"x": ("y",)})


@pytest.mark.parametrize(
    "condition",
    [
        "!" * 10_000 + "true",
        "(" * 100_000 + "true" + ")" * 100_000,
        "(" * 100_000,
        "set(" * 10_000,
        "union(" * 5_000 + ")" * 5_000,
        "a" + ".b" * 10_000,
        "user.traits" + '["a"]' * 1_000,
        "1 + " * 5_000 + "1",
        "1 == " * 5_000 + "1",
        "true" + " " * MAX_CONDITION_LENGTH,
        '"' + "\\x" * 50_000,
    ],
    ids=[
        "not-chain",
        "parens",
        "open-parens",
        "open-calls",
        "nested-calls",
        "long-selector",
        "index-chain",
        "plus-chain",
        "equals-chain",
        "too-long",
        "bad-escapes",
    ],
)
def test_hostile_conditions_fail_cleanly_and_fast(condition: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConditionParseError):
        compile_condition(condition)
    assert time.monotonic() - started < 5


def test_nesting_up_to_the_limit_works() -> None:
    depth = MAX_DEPTH - 2
    assert matches("(" * depth + "true" + ")" * depth, ENV)
    assert matches("!" * (depth - 1) + "false", ENV) is (depth % 2 == 0)
    nested = "union(" * (depth // 2) + 'set("a")' + ")" * (depth // 2)
    assert matches(f'{nested}.contains("a")', ENV)


def _deep_stack(levels: int, call: Callable[[], bool]) -> bool:
    return call() if levels == 0 else _deep_stack(levels - 1, call)


def test_the_deepest_condition_still_works_from_a_deep_call_stack() -> None:
    depth = (MAX_DEPTH - 2) // 2
    condition = compile_condition("union(" * depth + "access_request.spec.roles" + ")" * depth + '.contains("a")')
    assert _deep_stack(400, lambda: condition.evaluate(ENV))
    assert _deep_stack(400, lambda: compile_condition(condition.text).evaluate(ENV))


def test_long_flat_chains_are_not_nesting() -> None:
    assert matches("false || " * 20_000 + "true", ENV)
    assert matches("true && " * 20_000 + "true", ENV)
    assert not matches("true && " * 20_000 + "false", ENV)


def test_big_literals_and_many_arguments() -> None:
    assert not matches('"' + "a" * 500_000 + '" == access_request.spec.user', ENV)
    assert matches("set(" + ", ".join(['"a"'] * 20_000) + ').contains("a")', ENV)


def test_an_expensive_regexp_is_an_evaluation_error_not_a_stall() -> None:
    started = time.monotonic()
    with pytest.raises(ConditionEvalError, match="too much work"):
        matches('is_empty(regexp.replace(set("' + "a" * 3000 + '"), "a{0,1000}b", ""))', ENV)
    assert time.monotonic() - started < 10


_PIECES = [
    "true", "false", "access_request.spec.roles", "access_request.spec.user", "user.traits", "user.traits.x",
    '"x"', "1", "1.5", "'a'", "set(", "contains_any(", "(", ")", ",", ".", "[", "]", "&&", "||", "!", "==", "!=",
    ">", "+", "\n", "contains(", ".contains(", "strings.lower(", "ifelse(", "choose(", "option(", ".remove(",
    '"\\xff"', "`r`", "email.local(", "regexp.replace(", "time.RFC3339(", ".between(", "is_empty(", ".isempty()",
    "/*", "*/", "//", "...", "{", "}", ";", "0x1p-2", "1i", '"(a"', '"2024-01-01T00:00:00Z"', "union(", "dict(",
    "pair(", "strings.split(", "access_request.spec.creation_time", ".after(",
]  # fmt: skip


def test_random_conditions_only_ever_raise_condition_errors() -> None:
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    for _ in range(3000):
        text = " ".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 14)))
        try:
            condition = compile_condition(text)
        except ConditionParseError:
            outcomes["parse"] = outcomes.get("parse", 0) + 1
            continue
        try:
            result = str(condition.evaluate(ENV))
        except ConditionEvalError:
            result = "eval"
        outcomes[result] = outcomes.get(result, 0) + 1
    assert outcomes.get("parse", 0) > 0
    assert outcomes.get("True", 0) + outcomes.get("False", 0) > 0
