"""The functions and methods of the language (Teleport's `expression.DefaultParserSpec`, 18.0.0): signatures,
checked when a condition is compiled, and implementations, run when it is evaluated.

A method is called as `x.name(args)` and gets `x` as its first argument. Some names are both (`contains_any`),
some only one: `is_empty` is a function and `isempty` a method; `contains` is a method only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sidecar.domain.errors import ConditionEvalError
from sidecar.rules import gostrings
from sidecar.rules.gomail import email_local
from sidecar.rules.gotime import parse_rfc3339
from sidecar.rules.regexp_engine import MAX_STEPS, compile_regexp
from sidecar.rules.values import EMPTY_SET, Dict, GoTime, Kind, Option, Pair, Value, canonical, kind_of

__all__ = ["FUNCTIONS", "METHODS", "Signature"]


@dataclass(frozen=True)
class Signature:
    """A function's parameter kinds (`variadic` repeats last, any number of times) and result kind."""

    name: str
    params: tuple[Kind, ...]
    result: Kind
    impl: Callable[..., Value]
    variadic: Kind | None = None

    def arity_error(self, given: int) -> str | None:
        """Teleport's message when `given` arguments do not fit, else None."""
        fixed = len(self.params)
        if self.variadic is None:
            if given != fixed:
                plural = "" if fixed == 1 else "s"
                return f"function ({self.name}) accepts {fixed} argument{plural}, given {given}"
        elif given < fixed:
            return f"function ({self.name}) accepts {fixed} or more arguments, given {given}"
        return None

    def param(self, position: int) -> Kind:
        """The kind expected for the argument at `position` (0-based)."""
        if position < len(self.params):
            return self.params[position]
        assert self.variadic is not None
        return self.variadic


# --- implementations ---------------------------------------------------------------------------------------------


def _set(*items: str) -> frozenset[str]:
    return frozenset(items)


def _union(*sets: frozenset[str]) -> frozenset[str]:
    return frozenset().union(*sets)


def _contains_any(first: frozenset[str], second: frozenset[str]) -> bool:
    return not first.isdisjoint(second)


def _contains_all(first: frozenset[str], second: frozenset[str]) -> bool:
    return bool(second) and second <= first


def _is_empty(items: frozenset[str]) -> bool:
    return not items


def _contains(items: frozenset[str], item: str) -> bool:
    return item in items


def _add(items: frozenset[str], *more: str) -> frozenset[str]:
    return items.union(more)


def _remove(target: frozenset[str] | Dict, *names: str) -> Value:
    if isinstance(target, Dict):
        return Dict({key: value for key, value in target.items() if key not in names})
    return target.difference(names)


def _put(mapping: Dict, key: str, value: frozenset[str]) -> Dict:
    return Dict({**mapping, key: value})


def _add_values(mapping: Dict, key: str, *values: str) -> Dict:
    return Dict({**mapping, key: mapping.get_set(key).union(values)})


def _dict(*pairs: Pair) -> Dict:
    out: dict[str, frozenset[str]] = {}
    for pair in pairs:
        if not isinstance(pair.first, str):
            raise ConditionEvalError(f"dict keys must have type string, got {kind_of(pair.first).value}")
        if not isinstance(pair.second, frozenset):
            raise ConditionEvalError(f"dict values must have type set, got {kind_of(pair.second).value}")
        out[pair.first] = pair.second
    return Dict(out)


def _pair(first: Value, second: Value) -> Pair:
    return Pair(first, second)


def _ifelse(condition: bool, when_true: Value, when_false: Value) -> Value:
    return when_true if condition else when_false


def _option(condition: bool, value: Value) -> Option:
    return Option(condition, value)


def _choose(*options: Option) -> Value:
    for option in options:
        if option.condition:
            return option.value
    raise ConditionEvalError(
        "evaluating choose expression: no option could be selected, consider adding a default option by "
        'hardcoding the condition to "true"'
    )


def _transform(name: str, value: Value, change: Callable[[str], str]) -> Value:
    """Teleport's `StringTransform`: a string, or every element of a Set."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, frozenset):
        return frozenset(change(item) for item in value)
    raise ConditionEvalError(
        f"failed to evaluate argument to {name}: expected string or set, got value of type {kind_of(value).value}"
    )


def _upper(value: Value) -> Value:
    return _transform("strings.upper", value, gostrings.to_upper)


def _lower(value: Value) -> Value:
    return _transform("strings.lower", value, gostrings.to_lower)


def _replace_all(value: Value, match: str, replacement: str) -> Value:
    return _transform("strings.replaceall", value, lambda text: gostrings.replace_all(text, match, replacement))


def _split(items: frozenset[str], separator: str) -> frozenset[str]:
    return frozenset(part for item in items for part in gostrings.split(item, separator))


def _email_local(items: frozenset[str]) -> frozenset[str]:
    # Teleport drops results that come out empty (an address always has a local part, so none do).
    return frozenset(local for local in (email_local(item) for item in sorted(items)) if local)


def _regexp_replace(items: frozenset[str], pattern: str, replacement: str) -> frozenset[str]:
    regexp = compile_regexp(pattern)  # a bad pattern: Go's `error parsing regexp: ...` (innermost)
    budget = [MAX_STEPS]
    out: set[str] = set()
    for item in items:
        if not regexp.matches(item, budget):
            continue  # elements that do not match are dropped
        replaced = canonical(regexp.replace_all(item, replacement, budget))
        if replaced:  # ...and so are those that come out empty
            out.add(replaced)
    return frozenset(out) if out else EMPTY_SET


def _rfc3339(text: str) -> GoTime:
    return parse_rfc3339(text)


def _before(moment: GoTime, other: GoTime) -> bool:
    return moment < other


def _after(moment: GoTime, other: GoTime) -> bool:
    return moment > other


def _between(moment: GoTime, *interval: GoTime) -> bool:
    if len(interval) != 2:
        raise ConditionEvalError(f"between expected 2 parameters: got {len(interval)}")
    first, second = sorted(interval)
    return first < moment < second


# --- the tables -------------------------------------------------------------------------------------------------

S, D, STR, B, T, A = Kind.SET, Kind.DICT, Kind.STRING, Kind.BOOL, Kind.TIME, Kind.ANY


def _table(*signatures: Signature) -> dict[str, Signature]:
    return {signature.name: signature for signature in signatures}


_BOTH = (
    Signature("before", (T, T), B, _before),
    Signature("after", (T, T), B, _after),
    Signature("between", (T,), B, _between, variadic=T),
    Signature("contains_any", (S, S), B, _contains_any),
    Signature("contains_all", (S, S), B, _contains_all),
)

FUNCTIONS: dict[str, Signature] = _table(
    Signature("set", (), S, _set, variadic=STR),
    Signature("dict", (), D, _dict, variadic=Kind.PAIR),
    Signature("pair", (A, A), Kind.PAIR, _pair),
    Signature("union", (), S, _union, variadic=S),
    Signature("ifelse", (B, A, A), A, _ifelse),
    Signature("strings.upper", (A,), A, _upper),
    Signature("strings.lower", (A,), A, _lower),
    Signature("strings.replaceall", (A, STR, STR), A, _replace_all),
    Signature("choose", (), A, _choose, variadic=Kind.OPTION),
    Signature("option", (B, A), Kind.OPTION, _option),
    Signature("email.local", (S,), S, _email_local),
    Signature("regexp.replace", (S, STR, STR), S, _regexp_replace),
    Signature("strings.split", (S, STR), S, _split),
    Signature("time.RFC3339", (STR,), T, _rfc3339),
    *_BOTH,
    Signature("is_empty", (S,), B, _is_empty),
)

METHODS: dict[str, Signature] = _table(
    Signature("add", (S,), S, _add, variadic=STR),
    Signature("contains", (S, STR), B, _contains),
    Signature("put", (D, STR, S), D, _put),
    Signature("add_values", (D, STR), D, _add_values, variadic=STR),
    Signature("remove", (Kind.REMOVER,), A, _remove, variadic=STR),
    *_BOTH,
    Signature("isempty", (S,), B, _is_empty),
)
