"""Every row of the condition truth table (reference access-monitoring-rules.md §9.1): Teleport 18.0.0's own
evaluator gave these outcomes, so each row is a (condition, request) → match / parse error / evaluation error.

Parse errors must carry Teleport's innermost message (the reference's last column); so must evaluation errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sidecar.domain.errors import ConditionError, ConditionEvalError, ConditionParseError
from sidecar.rules import Condition, RequestEnv, compile_condition, matches

PARSE = "parse error"
EVAL = "evaluation error"

JAN_1_2025 = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    id: str
    condition: str
    env: RequestEnv
    outcome: bool | str  # True / False, or PARSE / EVAL
    error: str = ""


def env(**fields: object) -> RequestEnv:
    return RequestEnv(**fields)  # type: ignore[arg-type]


U3_U4 = (
    'contains_any(user.traits["level"], set("L1", "L2")) &&\n'
    '  contains_any(user.traits["team"], set("Cloud")) &&\n'
    '  contains_any(user.traits["location"], set("Seattle"))'
)
U8_U9 = 'contains_all(set("dev"), access_request.spec.roles) ||\n  set("dev").contains_all(access_request.spec.roles)'
I1_I2 = 'user.traits["team"].contains("example")'
ROLES3 = ("dev", "stage", "prod")

ROWS = [
    Row("U1", 'contains_any(user.traits["level"], set("L1"))', env(traits={"level": ("L2",)}), False),
    Row("U2", 'contains_any(user.traits["level"], set("L1", "L2"))', env(traits={"level": ("L1",)}), True),
    Row("U3", U3_U4, env(traits={"level": ("L1",), "team": ("Cloud",), "location": ("Seattle",)}), True),
    Row("U4", U3_U4, env(traits={"level": ("L1",), "team": ("Tools",), "location": ("Seattle",)}), False),
    Row(
        "U5",
        'contains_any(access_request.spec.roles, set("dev")) &&\n  access_request.spec.roles.contains_any(set("dev"))',
        env(roles=ROLES3),
        True,
    ),
    Row(
        "U6",
        'contains_any(access_request.spec.roles, set("no-match")) ||\n'
        '  access_request.spec.roles.contains_any(set("no-match"))',
        env(roles=ROLES3),
        False,
    ),
    Row(
        "U7",
        'contains_all(set("dev", "stage", "prod"), access_request.spec.roles) &&\n'
        '  set("dev", "stage", "prod").contains_all(access_request.spec.roles)',
        env(roles=ROLES3),
        True,
    ),
    Row("U8", U8_U9, env(roles=ROLES3), False),
    Row("U9", U8_U9, env(roles=()), False),
    Row(
        "U10",
        "contains_all(set(), access_request.spec.roles) ||\n  set().contains_all(access_request.spec.roles)",
        env(roles=()),
        False,
    ),
    Row("I1", I1_I2, env(user="requester@example.com", traits={"team": ("example",)}), True),
    Row("I2", I1_I2, env(user="no-traits@example.com", traits={}), False),
    Row("I3", "true", env(), True),
    Row("D1", "!is_empty(access_request.spec.roles)", env(roles=("dev",)), True),
    Row("D1b", "!is_empty(access_request.spec.roles)", env(roles=()), False),
    Row("D2", 'access_request.spec.user == "example_user"', env(user="example_user"), True),
    Row("D2b", 'access_request.spec.user == "example_user"', env(user="other"), False),
    Row("D3", 'access_request.spec.roles.contains("example_role")', env(roles=("example_role", "x")), True),
    Row("D4", 'set("role_1", "role_2").contains_all(access_request.spec.roles)', env(roles=("role_1",)), True),
    Row(
        "D4b", 'set("role_1", "role_2").contains_all(access_request.spec.roles)', env(roles=("role_1", "role_3")), False
    ),
    Row(
        "D5typo",
        'contains_any(user.traits["team"], set("dev". "stage"))',
        env(traits={"team": ("dev",)}),
        PARSE,
        '1:46: expected selector or type assertion, found "stage"',
    ),
    Row("D5", 'contains_any(user.traits["team"], set("dev", "stage"))', env(traits={"team": ("stage",)}), True),
    Row(
        "D6",
        'contains_all(set("access", "editor"), access_request.spec.roles) &&\n'
        '     contains_any(user.traits["team"], set("dev", "stage"))',
        env(roles=("access",), traits={"team": ("dev",)}),
        True,
    ),
    Row("D7", 'access_request.spec.roles.contains_any(set("role_1", "role_2"))', env(roles=("role_2",)), True),
    Row(
        "D8pr52489",
        'access_request.spec.roles == set("cloud-dev")',
        env(roles=("cloud-dev",)),
        PARSE,
        "operator (==) not supported for type: expression.Set",
    ),
    Row(
        "P01",
        'contains(access_request.spec.roles, "dev")',
        env(roles=("dev",)),
        PARSE,
        "unsupported function: contains",
    ),
    Row(
        "P03",
        'access_request.spec.roles == "dev"',
        env(roles=("dev",)),
        PARSE,
        "operator (==) not supported for type: expression.Set",
    ),
    Row(
        "P05",
        "access_request.spec.roles.is_empty()",
        env(roles=()),
        PARSE,
        "expected selector identifier, got: *ast.SelectorExpr",
    ),
    Row("P07", 'user.traits.team.contains("x")', env(traits={"team": ("x",)}), True),
    Row("P09", 'access_request.spec.system_annotations.k.contains("v")', env(system_annotations={"k": ("v",)}), True),
    Row(
        "P11",
        'access_request.spec.creation_time.after(time.RFC3339("2024-01-01T00:00:00Z"))',
        env(creation_time=JAN_1_2025),
        True,
    ),
    Row(
        "P13",
        "access_request.spec.creation_time.between("
        'time.RFC3339("2030-01-01T00:00:00Z"), time.RFC3339("2024-01-01T00:00:00Z"))',
        env(creation_time=JAN_1_2025),
        True,
    ),
    Row("P15", "access_request.spec.user", env(user="alice"), False),
    Row("P17", "true || false", env(), True),
    Row("P19", "!false", env(), True),
    Row("P21", 'strings.lower(access_request.spec.user) == "alice"', env(user="Alice"), True),
    Row("P23", 'ifelse(true, access_request.spec.user, "x") == "alice"', env(user="alice"), True),
    Row(
        "P25",
        'access_request.spec.creation_time.between(time.RFC3339("2024-01-01T00:00:00Z"))',
        env(creation_time=JAN_1_2025),
        EVAL,
        "between expected 2 parameters: got 1",
    ),
    Row(
        "P27",
        "access_request.spec.user == 'a'",
        env(user="a"),
        PARSE,
        "unsupported function argument type: 'CHAR'",
    ),
    Row("P29", "1 == 1", env(), True),
    Row(
        "P31", 'contains_all(access_request.spec.roles, set("dev", "prod"))', env(roles=("dev", "prod", "stage")), True
    ),
    Row("P33", 'union(access_request.spec.roles, set("x")).contains("x")', env(roles=("dev",)), True),
    Row("P35", 'access_request.spec.roles.remove("dev").contains("dev")', env(roles=("dev",)), False),
    Row(
        "P37",
        'regexp.replace(user.traits["groups"], "^team-(.*)$", "$1").contains("dev")',
        env(traits={"groups": ("team-dev", "other")}),
        True,
    ),
    Row(
        "P39",
        'access_request.spec.resources.contains("x")',
        env(),
        PARSE,
        'unknown identifier: "access_request.spec.resources"',
    ),
    Row(
        "P41",
        'has_labels(access_request.spec.requested_resources, "env", "prod")',
        env(),
        PARSE,
        "unsupported function: has_labels",
    ),
    Row(
        "P43",
        'access_request.spec.roles.contains("dev") && ',
        env(roles=("dev",)),
        PARSE,
        "1:46: expected operand, found 'EOF'",
    ),
    Row("P45", "false && choose(option(false, true))", env(), False),
    Row("P47", '!access_request.spec.roles.contains("dev")', env(roles=("dev",)), False),
    Row(
        "P49",
        'access_request.spec.roles.contains("dev")\n&& access_request.spec.user == "alice"',
        env(roles=("dev",), user="alice"),
        PARSE,
        "2:1: expected 'EOF', found '&&'",
    ),
    Row(
        "P51",
        'access_request.spec.system_annotations["k"] == "v"',
        env(system_annotations={"k": ("v",)}),
        PARSE,
        "operator (==) not supported for type: expression.Set",
    ),
    Row(
        "P53",
        "access_request.spec.expiry.after(access_request.spec.creation_time)",
        env(creation_time=JAN_1_2025, expiry=datetime(2025, 1, 2, tzinfo=UTC)),
        True,
    ),
    Row(
        "P55",
        'contains_any(access_request.spec.roles, "dev")',
        env(roles=("dev",)),
        PARSE,
        "expected type expression.Set, got value (dev) with type (string)",
    ),
    Row("P57", 'user.traits["team"].contains("x")', env(traits={"team": ()}), False),
    Row("P59", '(access_request.spec.user == "alice")', env(user="alice"), True),
    Row(
        "P61",
        'contains_any(access_request.spec.roles, set("dev")) == true',
        env(roles=("dev",)),
        PARSE,
        "operator (==) not supported for type: bool",
    ),
    Row("P63", 'access_request.spec.request_reason == ""', env(), True),
    Row(
        "P65",
        'user.traits["logins"].contains("root") && !contains_any(access_request.spec.roles, set("admin"))',
        env(traits={"logins": ("root",)}, roles=("dev",)),
        True,
    ),
    Row("P67", 'access_request.spec.user == strings.lower("ALICE")', env(user="alice"), True),
    Row("P69", "TRUE", env(), PARSE, 'unknown identifier: "TRUE"'),
    Row(
        "Q01",
        'access_request.spec.system_annotations["teleport.dev/notify"].contains("y")',
        env(system_annotations={"teleport.dev/notify": ("y",)}),
        True,
    ),
    Row(
        "Q03",
        "true && access_request.spec.user",
        env(user="a"),
        PARSE,
        "expected type bool, got expression returning type (string)",
    ),
    Row("Q05", "access_request.spec.roles", env(roles=("x",)), False),
    Row(
        "Q07",
        "access_request.spec.creation_time.between("
        'time.RFC3339("2025-01-01T00:00:00Z"), time.RFC3339("2025-12-31T00:00:00Z"))',
        env(creation_time=JAN_1_2025),
        False,
    ),
    Row(
        "Q09",
        'access_request.spec.suggested_reviewers.contains("bob@example.com") || '
        "is_empty(access_request.spec.suggested_reviewers)",
        env(suggested_reviewers=()),
        True,
    ),
    Row("Q11", 'contains_all(user.traits["team"], set())', env(traits={"team": ("y",)}), False),
    Row(
        "Q13",
        'user.traits["team"] == set("x")',
        env(traits={"team": ("x",)}),
        PARSE,
        "operator (==) not supported for type: expression.Set",
    ),
    Row("Q15", 'strings.lower(access_request.spec.request_reason) == "urgent"', env(request_reason="URGENT"), True),
]


def test_every_row_of_the_reference_table_is_here() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids)) == 68


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_truth_table(row: Row) -> None:
    if row.outcome == PARSE:
        with pytest.raises(ConditionParseError) as parse_error:
            compile_condition(row.condition)
        assert str(parse_error.value) == row.error
        with pytest.raises(ConditionParseError):
            matches(row.condition, row.env)
        return
    condition = compile_condition(row.condition)
    assert isinstance(condition, Condition)
    assert condition.text == row.condition
    if row.outcome == EVAL:
        with pytest.raises(ConditionEvalError) as eval_error:
            condition.evaluate(row.env)
        assert str(eval_error.value) == row.error
        return
    assert condition.evaluate(row.env) is row.outcome
    assert matches(row.condition, row.env) is row.outcome


def test_a_compiled_condition_is_reused_across_requests() -> None:
    condition = compile_condition('access_request.spec.user == "alice"')
    assert condition.evaluate(RequestEnv(user="alice")) is True
    assert condition.evaluate(RequestEnv(user="bob")) is False
    assert condition.evaluate(RequestEnv(user="alice")) is True


def test_both_errors_are_condition_errors() -> None:
    assert issubclass(ConditionParseError, ConditionError)
    assert issubclass(ConditionEvalError, ConditionError)
