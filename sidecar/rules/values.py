"""The runtime values of the condition language, and the static types (`Kind`) the checker gives expressions.

Go strings are byte strings; ours are `str` in which a byte that is not valid UTF-8 (only a `\\x..` or octal escape
in a literal can make one) is held as a lone surrogate (Python's `surrogateescape`). Equal bytes are then equal
`str`s, as long as every string is kept canonical (`canonical`).

A Set is a `frozenset[str]`; a Dict (`Dict`) maps strings to Sets and gives the empty Set for a missing key.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "EMPTY_SET",
    "Dict",
    "GoTime",
    "Kind",
    "Option",
    "Pair",
    "Value",
    "canonical",
    "format_value",
    "kind_of",
]


class Kind(enum.Enum):
    """A static type; the value is the Go type name that Teleport's messages print."""

    STRING = "string"
    INT = "int"
    FLOAT = "float64"
    BOOL = "bool"
    TIME = "time.Time"
    SET = "expression.Set"
    DICT = "expression.Dict"
    PAIR = "expression.pair"
    OPTION = "expression.option"
    ANY = "interface {}"  # a function result whose type is only known at evaluation time
    REMOVER = "expression.remover"  # the receiver of `remove`: a Set or a Dict (a parameter type only)

    def accepts(self, kind: Kind) -> bool:
        """Whether a value of `kind` can be passed where `self` is expected (Go interface satisfaction)."""
        if self is Kind.ANY:
            return True
        if self is Kind.REMOVER:
            return kind in (Kind.SET, Kind.DICT)
        return self is kind


@dataclass(frozen=True, order=True)
class GoTime:
    """An instant, as nanoseconds since Go's zero time (0001-01-01T00:00:00Z); may be negative (year 0)."""

    ns: int


@dataclass(frozen=True)
class Pair:
    """`pair(a, b)`: an argument of `dict(...)`."""

    first: Value
    second: Value


@dataclass(frozen=True)
class Option:
    """`option(cond, value)`: an argument of `choose(...)`."""

    condition: bool
    value: Value


class Dict(Mapping[str, frozenset[str]]):
    """Go's `expression.Dict`: string → Set, where a missing key reads as the empty Set."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, frozenset[str]] | None = None) -> None:
        self._items: dict[str, frozenset[str]] = dict(items or {})

    def __getitem__(self, key: str) -> frozenset[str]:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get_set(self, key: str) -> frozenset[str]:
        """`Dict.Get`: the Set under `key`, or the empty Set."""
        return self._items.get(key, EMPTY_SET)

    def __repr__(self) -> str:
        return f"Dict({self._items!r})"


Value: TypeAlias = str | int | float | bool | GoTime | frozenset[str] | Dict | Pair | Option

EMPTY_SET: frozenset[str] = frozenset()


def kind_of(value: Value) -> Kind:
    """The Go type of a runtime value (a Python bool is checked before int, which it subclasses)."""
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, int):
        return Kind.INT
    if isinstance(value, float):
        return Kind.FLOAT
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, GoTime):
        return Kind.TIME
    if isinstance(value, frozenset):
        return Kind.SET
    if isinstance(value, Dict):
        return Kind.DICT
    if isinstance(value, Pair):
        return Kind.PAIR
    return Kind.OPTION


def canonical(text: str) -> str:
    """The one `str` for the bytes `text` stands for (joining pieces can leave a split UTF-8 sequence as surrogates)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def format_value(value: Value) -> str:
    """Roughly Go's `%+v`, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, frozenset):
        return "map[" + " ".join(f"{item}:{{}}" for item in sorted(value)) + "]"
    if isinstance(value, Dict):
        return "map[" + " ".join(f"{key}:{format_value(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, GoTime):
        from sidecar.rules.gotime import format_time  # a cycle otherwise: gotime builds GoTime values

        return format_time(value)
    if isinstance(value, Pair):
        return f"{{first:{format_value(value.first)} second:{format_value(value.second)}}}"
    if isinstance(value, Option):
        return f"{{condition:{format_value(value.condition)} value:{format_value(value.value)}}}"
    return str(value)


def _go_float(value: float) -> str:
    """Go's `%v` of a float64: the shortest digits, in %e form when the exponent is below -4 or at least 6."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    digits, exponent = _digits_and_exponent(repr(value))
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:
        head, tail = digits[0], digits[1:]
        fraction = f".{tail}" if tail else ""
        return f"{sign}{head}{fraction}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    fraction = digits[exponent + 1 :]
    return f"{sign}{whole}{'.' + fraction if fraction else ''}"


def _digits_and_exponent(text: str) -> tuple[str, int]:
    """The significant digits of Python's shortest repr, and the decimal exponent of the first one."""
    text = text.lstrip("-")
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return "0", 0
    leading_zeros = len(whole + fraction) - len((whole + fraction).lstrip("0"))
    exponent += len(whole) - 1 - leading_zeros
    return digits.rstrip("0") or "0", exponent
