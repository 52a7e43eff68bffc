"""The checked expression tree: every node has a static `kind` and evaluates against a `Scope`.

This is Teleport's `typical` expression tree: types are settled when the condition is compiled, except below a
function that returns `any` (`ifelse`, `strings.lower`, `choose`, `remove`), whose result is checked when the
condition is evaluated (`Checked`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.domain.errors import ConditionEvalError
from sidecar.rules.env import Scope
from sidecar.rules.values import Dict, Kind, Value, format_value, kind_of

__all__ = [
    "Apply",
    "Checked",
    "Compare",
    "Const",
    "DictLookup",
    "DictVar",
    "Expr",
    "Logic",
    "Not",
    "Passed",
    "Var",
    "unexpected_type",
]


class Expr(ABC):
    """A node of the checked tree."""

    kind: Kind
    literal = False  # a literal value (Go's untyped `true`, `"x"`, `1`), not an expression

    @abstractmethod
    def evaluate(self, scope: Scope) -> Value:
        """The node's value for one request; raises ConditionEvalError."""


def unexpected_type(expected: str, got: Expr | Value) -> str:
    """Teleport's `unexpectedTypeError` text (`expected` is a Go type name), for a literal or value
    (`got value (x) with type (string)`) or an expression (`got expression returning type (string)`)."""
    prefix = f"expected type {expected}, "
    if isinstance(got, Expr):
        if isinstance(got, Const):
            return prefix + f"got value ({format_value(got.value)}) with type ({got.kind.value})"
        return prefix + f"got expression returning type ({got.kind.value})"
    return prefix + f"got value ({format_value(got)}) with type ({kind_of(got).value})"


@dataclass(eq=False)
class Const(Expr):
    """A literal (`"x"`, `1`, `1.5`, `true`)."""

    value: Value
    kind: Kind
    literal = True

    def evaluate(self, scope: Scope) -> Value:
        return self.value


@dataclass(eq=False)
class Var(Expr):
    """A request variable (`access_request.spec.user`)."""

    name: str
    kind: Kind
    read: Callable[[Scope], Value]

    def evaluate(self, scope: Scope) -> Value:
        return self.read(scope)


@dataclass(eq=False)
class DictVar(Var):
    """A map variable (`user.traits`): the only expressions that `[key]` and `.key` can index."""


@dataclass(eq=False)
class DictLookup(Expr):
    """`map[key]`: the Set under the key, empty when missing (the key is evaluated first, as in Go)."""

    mapping: DictVar
    key: Expr
    kind: Kind = Kind.SET

    def evaluate(self, scope: Scope) -> Value:
        key = self.key.evaluate(scope)
        mapping = self.mapping.evaluate(scope)
        assert isinstance(key, str) and isinstance(mapping, Dict)
        return mapping.get_set(key)


@dataclass(eq=False)
class Apply(Expr):
    """A function or method call: every argument is evaluated, in order, before the function runs."""

    name: str
    impl: Callable[..., Value]
    args: tuple[Expr, ...]
    kind: Kind

    def evaluate(self, scope: Scope) -> Value:
        return self.impl(*(arg.evaluate(scope) for arg in self.args))


@dataclass(eq=False)
class Checked(Expr):
    """An `any` result used where `kind` is needed: its type is checked when evaluated."""

    inner: Expr
    kind: Kind

    def evaluate(self, scope: Scope) -> Value:
        value = self.inner.evaluate(scope)
        if not self.kind.accepts(kind_of(value)):
            raise ConditionEvalError(unexpected_type(self.kind.value, value))
        return value


@dataclass(eq=False)
class Passed(Expr):
    """An expression passed where an interface (`any`, a Set-or-Dict receiver) is expected: unchanged."""

    inner: Expr
    kind: Kind

    def evaluate(self, scope: Scope) -> Value:
        return self.inner.evaluate(scope)


@dataclass(eq=False)
class Not(Expr):
    """`!x`."""

    operand: Expr
    kind: Kind = Kind.BOOL

    def evaluate(self, scope: Scope) -> Value:
        return not self.operand.evaluate(scope)


@dataclass(eq=False)
class Logic(Expr):
    """A run of `&&` or `||`, evaluated left to right and stopping as soon as the result is known."""

    op: str
    operands: tuple[Expr, ...]
    kind: Kind = Kind.BOOL

    def evaluate(self, scope: Scope) -> Value:
        stop_on = self.op == "||"  # || stops at the first true, && at the first false
        for operand in self.operands:
            if operand.evaluate(scope) is stop_on:
                return stop_on
        return not stop_on


@dataclass(eq=False)
class Compare(Expr):
    """`==` or `!=` on two strings or two ints."""

    op: str
    left: Expr
    right: Expr
    kind: Kind = Kind.BOOL

    def evaluate(self, scope: Scope) -> Value:
        equal = self.left.evaluate(scope) == self.right.evaluate(scope)
        return equal if self.op == "==" else not equal
