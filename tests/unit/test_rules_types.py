"""The predicate walk and its types (sidecar/rules/check.py, tree.py): what parses, what only fails when
evaluated, and what is simply false (reference §5.1, §5.2, §5.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sidecar.domain.errors import ConditionEvalError, ConditionParseError
from sidecar.rules import RequestEnv, compile_condition, matches

ENV = RequestEnv(
    roles=("dev",),
    suggested_reviewers=("bob@example.com",),
    system_annotations={"teleport.dev/notify": ("y",), "k": ("v",)},
    user="alice",
    request_reason="URGENT",
    creation_time=datetime(2025, 1, 1, tzinfo=UTC),
    expiry=datetime(2025, 1, 2, tzinfo=UTC),
    traits={"team": ("x",), "alice": ("x",)},
)


def outcome(condition: str, env: RequestEnv = ENV) -> bool | str:
    try:
        return matches(condition, env)
    except ConditionParseError as exc:
        return f"parse error: {exc}"
    except ConditionEvalError as exc:
        return f"eval error: {exc}"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # Longest-prefix lookup; a map variable with one field left reads that key.
        ('user.traits.team.contains("x")', True),
        ('user.traits.nope.contains("x")', False),
        ('user.traits["team"].contains("x")', True),
        ("is_empty(user.traits.nope)", True),
        ('user.traits.a.b.contains("x")', 'parse error: unknown identifier: "user.traits.a.b"'),
        ('access_request.spec.roles.x.contains("x")', 'parse error: unknown identifier: "access_request.spec.roles.x"'),
        ("true.x", 'parse error: unknown identifier: "true.x"'),
        ("user", 'parse error: unknown identifier: "user"'),
        ("access_request.spec.state", 'parse error: unknown identifier: "access_request.spec.state"'),
        ("plugin.spec.name", 'parse error: unknown identifier: "plugin.spec.name"'),
        ("nil", 'parse error: unknown identifier: "nil"'),
        ("(user.traits).team", "parse error: unsupported selector type: *ast.ParenExpr"),
        ('set("a").x', "parse error: unsupported selector type: *ast.CallExpr"),
        # Map keys: any string expression, but only the map variables themselves can be indexed.
        ('user.traits[access_request.spec.user].contains("x")', True),
        ('(user.traits)["team"].contains("x")', True),
        ('user.traits[ifelse(true, "team", "x")].contains("x")', True),
        (
            'user.traits[ifelse(true, 1, "x")].contains("x")',
            "eval error: expected type string, got value (1) with type (int)",
        ),
        ("user.traits[1]", "parse error: expected type string, got value (1) with type (int)"),
        (
            'user.traits["a"]["b"]',
            "parse error: expected type map[string]string, got expression returning type (expression.Set)",
        ),
        (
            'dict(pair("a", set("b")))["a"]',
            "parse error: expected type map[string]string, got expression returning type (expression.Dict)",
        ),
        ('"abc"["a"]', "parse error: expected type map[string]string, got value (abc) with type (string)"),
        # Calls: a method when the name after the dot is one, else a `module.function`.
        ('(set("a")).contains("a")', True),
        ('strings.lower(set("A")).contains("a")', True),
        ('strings.contains("x")', 'parse error: unknown identifier: "strings"'),
        ('strings.nope("x")', "parse error: unsupported function: strings.nope"),
        ("isempty(set())", "parse error: unsupported function: isempty"),
        ("set().is_empty()", "parse error: expected selector identifier, got: *ast.CallExpr"),
        ('"a".foo()', "parse error: expected selector identifier, got: *ast.BasicLit"),
        ("f()()", "parse error: unknown function type *ast.CallExpr"),
        ("(set)()", "parse error: unknown function type *ast.ParenExpr"),
        ("set().contains()", "parse error: function (contains) accepts 2 arguments, given 1"),
        ("is_empty()", "parse error: function (is_empty) accepts 1 argument, given 0"),
        ("access_request.spec.creation_time.between()", "eval error: between expected 2 parameters: got 0"),
        ("between()", "parse error: function (between) accepts 1 or more arguments, given 0"),
        ("user.traits.add_values()", "parse error: function (add_values) accepts 2 or more arguments, given 1"),
        # Strings are never Sets.
        ('"a".contains("a")', "parse error: expected type expression.Set, got value (a) with type (string)"),
        (
            'access_request.spec.user.contains("a")',
            "parse error: expected type expression.Set, got expression returning type (string)",
        ),
        (
            'strings.split(access_request.spec.user, ",")',
            "parse error: expected type expression.Set, got expression returning type (string)",
        ),
        # == and != on strings and ints only, typed by the left operand unless that is `any`.
        ('access_request.spec.user != "bob"', True),
        ("1 != 2", True),
        ('1 == "a"', "parse error: expected type int, got value (a) with type (string)"),
        ("access_request.spec.user == 1", "parse error: expected type string, got value (1) with type (int)"),
        ("ifelse(true, 1, 2) == 1", True),
        ('ifelse(true, 1, 2) == "a"', "eval error: expected type string, got value (1) with type (int)"),
        (
            'strings.lower("A") == strings.upper("a")',
            "parse error: operator (==) can only be used when at least one operand type is known at parse time",
        ),
        ("true == true", "parse error: operator (==) not supported for type: bool"),
        ("access_request.spec.roles != set()", "parse error: operator (!=) not supported for type: expression.Set"),
        (
            "access_request.spec.creation_time == access_request.spec.expiry",
            "parse error: operator (==) not supported for type: time.Time",
        ),
        ("user.traits == user.traits", "parse error: operator (==) not supported for type: expression.Dict"),
        ("1 == 1 == true", "parse error: operator (==) not supported for type: bool"),
        # Only ! && || == != exist.
        ("access_request.spec.creation_time > access_request.spec.expiry", "parse error: > is not supported"),
        ("1 <= 2", "parse error: <= is not supported"),
        ("1 + 1 == 2", "parse error: + is not supported"),
        ("-1 == -1", "parse error: - is not supported"),
        ("*user", "parse error: *ast.StarExpr is not supported"),
        ("1 &^ 2", "parse error: &^ is not supported"),
        # Operands of ! && || must be bools when compiled, or when evaluated for an `any` result.
        ("!1", "parse error: expected type bool, got value (1) with type (int)"),
        ("true && access_request.spec.user", "parse error: expected type bool, got expression returning type (string)"),
        (
            "access_request.spec.roles || true",
            "parse error: expected type bool, got expression returning type (expression.Set)",
        ),
        ('!ifelse(true, false, "x")', True),
        ('!ifelse(false, false, "x")', "eval error: expected type bool, got value (x) with type (string)"),
        # Precedence: ! then == then && then ||.
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("!false == true", "parse error: operator (==) not supported for type: bool"),
        ('!(access_request.spec.user == "bob")', True),
        # A result that is not the bool true is no match, and no error.
        ("access_request.spec.user", False),
        ("access_request.spec.roles", False),
        ('"true"', False),
        ("1", False),
        ('ifelse(true, "true", false)', False),
        ('user.traits.remove("team")', False),
        ('dict(pair("a", set("b"))).put("c", set()).add_values("c", "x")', False),
        ("access_request.spec.creation_time", False),
        ("false", False),
        ("!true", False),
        # Everything is case-sensitive.
        ('access_request.spec.roles.contains("Dev")', False),
        ("True", 'parse error: unknown identifier: "True"'),
        ('Set("a")', "parse error: unsupported function: Set"),
    ],
)
def test_type_rules(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # && and || stop as soon as they know: an error on the other side never surfaces.
        ("false && choose(option(false, true))", False),
        ("true || choose(option(false, true))", True),
        ("false || false || true || choose()", True),
        ("true && true && false && choose()", False),
        (
            "true && choose()",
            "eval error: evaluating choose expression: no option could be selected, consider adding a default "
            'option by hardcoding the condition to "true"',
        ),
        # Function arguments are all evaluated first: ifelse is not lazy.
        (
            'ifelse(true, "a", choose()) == "a"',
            "eval error: evaluating choose expression: no option could be selected, consider adding a default "
            'option by hardcoding the condition to "true"',
        ),
        ('choose(option(false, "a"), option(true, "b")) == "b"', True),
        (
            'choose(option(true, "a"), "b")',
            "parse error: expected type expression.option, got value (b) with type (string)",
        ),
    ],
)
def test_evaluation_order(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('access_request.spec.roles.remove("dev").contains("dev")', False),
        (
            'user.traits.remove("team").contains("x")',
            "eval error: expected type expression.Set, got value (map[alice:map[x:{}]]) with type (expression.Dict)",
        ),
        ('"a".remove("a")', "parse error: expected type expression.remover, got value (a) with type (string)"),
        ('ifelse(true, access_request.spec.roles, "x").remove("dev").isempty()', True),
        (
            'ifelse(false, access_request.spec.roles, "x").remove("dev")',
            "eval error: expected type expression.remover, got value (x) with type (string)",
        ),
        ("dict(pair(1, set()))", "eval error: dict keys must have type string, got int"),
        ('dict(pair("a", "b"))', "eval error: dict values must have type set, got string"),
    ],
)
def test_remove_works_on_sets_and_dicts(condition: str, expected: bool | str) -> None:
    assert outcome(condition) == expected


def test_the_request_variables() -> None:
    env = RequestEnv(
        roles=("r1", "r2", "r1"),
        suggested_reviewers=("s1",),
        system_annotations={"a": ("1", "2")},
        user="u",
        request_reason="why",
        traits={"t": ("v",)},
    )
    assert matches('access_request.spec.roles.contains_all(set("r1", "r2"))', env)
    assert matches('access_request.spec.suggested_reviewers.contains("s1")', env)
    assert matches('access_request.spec.system_annotations.a.contains("2")', env)
    assert matches('access_request.spec.user == "u" && access_request.spec.request_reason == "why"', env)
    assert matches('user.traits.t.contains("v")', env)
    assert matches('is_empty(user.traits.t.remove("v"))', env)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (None, True),  # Go's zero time, 0001-01-01T00:00:00Z
        (datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC), False),
        (datetime(2025, 1, 1), False),  # naive: taken as UTC
    ],
)
def test_a_missing_time_is_gos_zero_time(created: datetime | None, expected: bool) -> None:
    condition = 'access_request.spec.creation_time.before(time.RFC3339("0001-01-01T00:00:01Z"))'
    assert matches(condition, RequestEnv(creation_time=created)) is expected


def test_times_compare_as_instants_whatever_their_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    env = RequestEnv(creation_time=datetime(2025, 1, 1, 2, 0, tzinfo=plus_two), expiry=datetime(2025, 1, 1, tzinfo=UTC))
    assert not matches("access_request.spec.creation_time.after(access_request.spec.expiry)", env)
    assert not matches("access_request.spec.creation_time.before(access_request.spec.expiry)", env)
    assert matches('access_request.spec.creation_time.before(time.RFC3339("2025-01-01T00:00:00.000000001Z"))', env)
    assert matches('access_request.spec.creation_time.after(time.RFC3339("2025-01-01T01:59:59.999999999+02:00"))', env)


def test_evaluate_is_true_only_for_the_bool_true() -> None:
    condition = compile_condition('ifelse(access_request.spec.user == "a", true, "true")')
    assert condition.evaluate(RequestEnv(user="a")) is True
    assert condition.evaluate(RequestEnv(user="b")) is False


def test_a_malformed_request_env_is_an_evaluation_error_not_a_crash() -> None:
    bad = RequestEnv(traits={"team": 5})  # type: ignore[dict-item]
    with pytest.raises(ConditionEvalError, match="internal error"):
        compile_condition('user.traits["team"].contains("x")').evaluate(bad)
