"""Syntax tree → checked tree, with the rules of Teleport's `predicate` walk and `typical` types (§5.1, §5.5).

The order of the checks follows Teleport's, so the first error found is the one Teleport reports: a call looks
its function up before its arguments are checked, an operator's operands are checked before the operator is
refused, and so on. Every message is Teleport's innermost error text.
"""

from __future__ import annotations

import re

from sidecar.domain.errors import ConditionParseError
from sidecar.rules.functions import FUNCTIONS, METHODS, Signature
from sidecar.rules.syntax import BasicLit, Binary, Call, Ident, Index, Paren, Selector, SyntaxNode, Unary
from sidecar.rules.tree import (
    Apply,
    Checked,
    Compare,
    Const,
    DictLookup,
    DictVar,
    Expr,
    Logic,
    Not,
    Passed,
    Var,
    unexpected_type,
)
from sidecar.rules.values import Kind

__all__ = ["VARIABLES", "check"]

# §5.2: every variable of 18.0.0. `true` and `false` are literal values, like Go's untyped constants.
VARIABLES: dict[str, Expr] = {
    "true": Const(True, Kind.BOOL),
    "false": Const(False, Kind.BOOL),
    "access_request.spec.roles": Var("access_request.spec.roles", Kind.SET, lambda s: s.roles),
    "access_request.spec.suggested_reviewers": Var(
        "access_request.spec.suggested_reviewers", Kind.SET, lambda s: s.suggested_reviewers
    ),
    "access_request.spec.system_annotations": DictVar(
        "access_request.spec.system_annotations", Kind.DICT, lambda s: s.system_annotations
    ),
    "access_request.spec.user": Var("access_request.spec.user", Kind.STRING, lambda s: s.env.user),
    "access_request.spec.request_reason": Var(
        "access_request.spec.request_reason", Kind.STRING, lambda s: s.env.request_reason
    ),
    "access_request.spec.creation_time": Var("access_request.spec.creation_time", Kind.TIME, lambda s: s.creation_time),
    "access_request.spec.expiry": Var("access_request.spec.expiry", Kind.TIME, lambda s: s.expiry),
    "user.traits": DictVar("user.traits", Kind.DICT, lambda s: s.traits),
}

_MAX_INT = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]+")


def check(node: SyntaxNode) -> Expr:
    """The checked tree of a parsed condition; raises ConditionParseError as Teleport's parser would."""
    if isinstance(node, Paren):
        return check(node.x)
    if isinstance(node, BasicLit):
        return _literal(node)
    if isinstance(node, Ident):
        return _identifier([node.name])
    if isinstance(node, Selector):
        return _identifier(_selector_fields(node))
    if isinstance(node, Index):
        mapping = check(node.x)
        key = check(node.index)
        return _property(mapping, key)
    if isinstance(node, Call):
        return _call(node)
    if isinstance(node, Unary):
        return _unary(node)
    return _binary(node)


# --- literals and names -----------------------------------------------------------------------------------------


def _literal(node: BasicLit) -> Expr:
    """The predicate library's `literalToValue`."""
    if node.kind == "STRING":
        return Const(node.value, Kind.STRING)
    if node.kind == "INT":
        return Const(_atoi(node.raw), Kind.INT)
    if node.kind == "FLOAT":
        return Const(_parse_float(node.raw), Kind.FLOAT)
    raise ConditionParseError(f"unsupported function argument type: '{node.kind}'")


def _atoi(raw: str) -> int:
    """Go's `strconv.Atoi`: decimal digits only (so `0x10` and `1_000` fail), within int64."""
    if not _DECIMAL.fullmatch(raw):
        raise ConditionParseError(
            f'failed to parse argument: {raw}, error: strconv.Atoi: parsing "{raw}": invalid syntax'
        )
    if len(raw.lstrip("0")) > 19 or int(raw) > _MAX_INT:
        raise ConditionParseError(
            f'failed to parse argument: {raw}, error: strconv.Atoi: parsing "{raw}": value out of range'
        )
    return int(raw)


def _parse_float(raw: str) -> float:
    """Go's `strconv.ParseFloat` of a literal the scanner accepted (underscores and hex mantissas included)."""
    text = raw.replace("_", "")
    try:
        value = float.fromhex(text) if text[:2].lower() == "0x" else float(text)
    except OverflowError:
        value = float("inf")
    if value == float("inf"):
        raise ConditionParseError(
            f'failed to parse argument: {raw}, error: strconv.ParseFloat: parsing "{raw}": value out of range'
        )
    return value


def _selector_fields(node: Selector) -> list[str]:
    """`a.b.c` → ["a", "b", "c"]; the innermost base must be a plain name."""
    fields: list[str] = []
    current: SyntaxNode = node
    while isinstance(current, Selector):
        fields.append(current.name)
        current = current.x
    if not isinstance(current, Ident):
        raise ConditionParseError(f"unsupported selector type: {current.ast_name}")
    fields.append(current.name)
    fields.reverse()
    return fields


def _identifier(fields: list[str]) -> Expr:
    """Longest-prefix lookup (`typical`'s `getIdentifier`): a map variable with one field left reads that key."""
    joined = ""
    for position, name in enumerate(fields):
        joined = name if position == 0 else f"{joined}.{name}"
        variable = VARIABLES.get(joined)
        if variable is None:
            continue
        remaining = fields[position + 1 :]
        if not remaining:
            return variable
        if len(remaining) == 1:
            try:
                return _property(variable, Const(remaining[0], Kind.STRING))
            except ConditionParseError:
                pass  # not a map: keep looking, and report the whole name as unknown
    raise ConditionParseError(f'unknown identifier: "{joined}"')


def _property(mapping: Expr, key: Expr) -> Expr:
    """`mapping[key]` (`typical`'s `getProperty`): only the map variables themselves can be indexed."""
    key = _coerce(key, Kind.STRING)
    if isinstance(mapping, DictVar):
        return DictLookup(mapping, key)
    raise ConditionParseError(unexpected_type("map[string]string", mapping))


# --- calls ------------------------------------------------------------------------------------------------------


def _call(node: Call) -> Expr:
    """A function call, or a method call when the name after the dot is a method (receiver first)."""
    fun = node.fun
    arguments: tuple[SyntaxNode, ...] = node.args
    if isinstance(fun, Ident):
        signature = _function(fun.name)
    elif isinstance(fun, Selector):
        method = METHODS.get(fun.name)
        if method is not None:
            signature = method
            arguments = (fun.x, *node.args)
        elif isinstance(fun.x, Ident):
            signature = _function(f"{fun.x.name}.{fun.name}")
        else:
            raise ConditionParseError(f"expected selector identifier, got: {fun.x.ast_name}")
    else:
        raise ConditionParseError(f"unknown function type {fun.ast_name}")
    checked = [check(argument) for argument in arguments]
    arity_error = signature.arity_error(len(checked))
    if arity_error is not None:
        raise ConditionParseError(arity_error)
    coerced = tuple(_coerce(argument, signature.param(position)) for position, argument in enumerate(checked))
    return Apply(signature.name, signature.impl, coerced, signature.result)


def _function(name: str) -> Signature:
    signature = FUNCTIONS.get(name)
    if signature is None:
        raise ConditionParseError(f"unsupported function: {name}")
    return signature


def _coerce(argument: Expr, wanted: Kind) -> Expr:
    """`typical`'s `coerce`: make `argument` usable where `wanted` is expected, or refuse it."""
    if not argument.literal:
        if argument.kind is wanted:
            return argument
        if argument.kind is Kind.ANY:
            return Checked(argument, wanted)  # known only when evaluated
        if wanted in (Kind.ANY, Kind.REMOVER) and wanted.accepts(argument.kind):
            return Passed(argument, wanted)
    elif wanted is Kind.ANY or argument.kind is wanted:
        return argument
    raise ConditionParseError(unexpected_type(wanted.value, argument))


# --- operators --------------------------------------------------------------------------------------------------


def _unary(node: Unary) -> Expr:
    if node.op == "*":
        raise ConditionParseError("*ast.StarExpr is not supported")
    if node.op != "!":
        raise ConditionParseError(f"{node.op} is not supported")
    return Not(_coerce(check(node.x), Kind.BOOL))


def _binary(node: Binary) -> Expr:
    """A run of one precedence level, joined from the left; `&&`/`||` runs become one short-circuit node."""
    left = check(node.first)
    if node.level in (1, 2):
        op = node.rest[0][0]
        operands: list[Expr] = []
        for position, (_, right_node) in enumerate(node.rest):
            right = check(right_node)
            if position == 0:
                operands.append(_coerce(left, Kind.BOOL))
            operands.append(_coerce(right, Kind.BOOL))
        return Logic(op, tuple(operands))
    for op, right_node in node.rest:
        right = check(right_node)
        if op not in ("==", "!="):
            raise ConditionParseError(f"{op} is not supported")
        left = _compare(op, left, right)
    return left


def _compare(op: str, left: Expr, right: Expr) -> Expr:
    """`==`/`!=` take the type of the left operand, or of the right one when the left is only known later."""
    operand = right if not left.literal and left.kind is Kind.ANY else left
    if operand.kind in (Kind.STRING, Kind.INT):
        return Compare(op, _coerce(left, operand.kind), _coerce(right, operand.kind))
    if not operand.literal and operand.kind is Kind.ANY:
        raise ConditionParseError(
            f"operator ({op}) can only be used when at least one operand type is known at parse time"
        )
    raise ConditionParseError(f"operator ({op}) not supported for type: {operand.kind.value}")
