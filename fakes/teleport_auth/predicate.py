"""ListResources' `PredicateExpression`: the part of Teleport's resource predicate language plugins and tctl use.

    expr    := or ; or := and ("||" and)* ; and := unary ("&&" unary)* ; unary := "!" unary | compare
    compare := operand (("==" | "!=") operand)?
    operand := "(" expr ")" | STRING | FUNCTION "(" args ")" | FIELD

Strings are Go literals ("..." with Go's escapes, or `raw`), as `fmt.Sprintf("%q")` writes them (the Go plugin
builds `resource.metadata.name == "a" || resource.metadata.name == "b"`). Fields: `name`, `resource.metadata.name`,
`resource.metadata.description`, `resource.spec.hostname`, `labels["k"]`, `resource.metadata.labels["k"]`
(a missing label reads as absent and equals nothing). Functions: `equals(a, b)`, `hasPrefix(s, prefix)`,
`exists(labels["k"])` and `search("word", ...)` (case-insensitive, against the name, hostname, description and
label values, every word must be found). Anything else is a BadParameter, as Teleport refuses what it cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import BadParameter
from .seed_resources import ResourceDef

Value = str | bool | None
Evaluator = Callable[[ResourceDef], Value]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<op>&&|\|\||==|!=|[!()\[\],.])|(?P<ident>[A-Za-z_]\w*))'
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"',
                   "'": "'"}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_FIELDS: dict[str, Callable[[ResourceDef], str]] = {
    "name": lambda r: r.name,
    "resource.metadata.name": lambda r: r.name,
    "resource.metadata.description": lambda r: r.description,
    "resource.spec.hostname": lambda r: r.hostname,
}
_LABELS = ("labels", "resource.metadata.labels")


def go_unquote(literal: str) -> str:
    """The value of a Go string literal (Go's `strconv.Unquote`); BadParameter when it is malformed."""
    if literal.startswith("`"):
        return literal[1:-1]
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        kind = body[i + 1] if i + 1 < len(body) else ""
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(kind)
        digits = body[i + 2 : i + 2 + width] if width else body[i + 1 : i + 4]
        allowed = _HEX if width else _OCTAL
        if len(digits) != (width or 3) or not set(digits) <= allowed:
            raise BadParameter(f"invalid escape in string literal {literal}")
        try:
            out.append(chr(int(digits, 16 if width else 8)))
        except (ValueError, OverflowError):
            raise BadParameter(f"invalid escape in string literal {literal}") from None
        i += (2 + width) if width else 4
    return "".join(out)


@dataclass(frozen=True)
class _Node:
    evaluate: Evaluator
    boolean: bool


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise BadParameter(f"failed to parse predicate expression {text!r} at offset {pos}")
            kind = match.lastgroup or ""
            self.tokens.append(("str" if kind == "raw" else kind, match.group(kind)))
            pos = match.end()
        self.at = 0

    def fail(self, what: str) -> BadParameter:
        return BadParameter(f"failed to parse predicate expression {self.text!r}: {what}")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] == "op":
            self.at += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.take(value):
            raise self.fail(f"expected {value!r}, found {self.peek()[1] or 'the end'!r}")

    def parse(self) -> _Node:
        node = self.or_()
        if self.peek()[0] != "end":
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        if not node.boolean:
            raise self.fail("the expression is not a condition")
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.take("||"):
            node = _Node(_any(*self._bools(node, self.and_())), True)
        return node

    def and_(self) -> _Node:
        node = self.unary()
        while self.take("&&"):
            node = _Node(_all(*self._bools(node, self.unary())), True)
        return node

    def _bools(self, left: _Node, right: _Node) -> tuple[Evaluator, Evaluator]:
        if not (left.boolean and right.boolean):
            raise self.fail("&& and || need conditions on both sides")
        return left.evaluate, right.evaluate

    def unary(self) -> _Node:
        if self.take("!"):
            inner = self.unary()
            if not inner.boolean:
                raise self.fail("! needs a condition")
            return _Node(_not(inner.evaluate), True)
        return self.compare()

    def compare(self) -> _Node:
        left = self.operand()
        for op in ("==", "!="):
            if self.take(op):
                right = self.operand()
                if left.boolean or right.boolean:
                    raise self.fail(f"{op} compares values, not conditions")
                equal = _equal(left.evaluate, right.evaluate)
                return _Node(equal if op == "==" else _not(equal), True)
        return left

    def operand(self) -> _Node:
        kind, value = self.peek()
        if self.take("("):
            node = self.or_()
            self.expect(")")
            return node
        if kind == "str":
            self.at += 1
            text = go_unquote(value)
            return _Node(lambda r: text, False)
        if kind != "ident":
            raise self.fail(f"unexpected {value or 'end of expression'!r}")
        self.at += 1
        if self.take("("):
            return self.call(value)
        return self.field(value)

    def field(self, first: str) -> _Node:
        path = first
        while self.take("."):
            kind, value = self.peek()
            if kind != "ident":
                raise self.fail(f"expected a field name after {path!r}")
            self.at += 1
            path = f"{path}.{value}"
        if path in _LABELS:
            self.expect("[")
            kind, value = self.peek()
            if kind != "str":
                raise self.fail("labels[...] needs a string key")
            self.at += 1
            self.expect("]")
            key = go_unquote(value)
            return _Node(lambda r: r.labels.get(key), False)
        getter = _FIELDS.get(path)
        if getter is None:
            raise self.fail(f"unknown field {path!r}")
        return _Node(getter, False)

    def call(self, name: str) -> _Node:
        args: list[_Node] = []
        if not self.take(")"):
            args.append(self.or_())
            while self.take(","):
                args.append(self.or_())
            self.expect(")")
        if any(a.boolean for a in args):
            raise self.fail(f"{name}() takes values, not conditions")
        fns = [a.evaluate for a in args]
        if name == "equals" and len(fns) == 2:
            return _Node(_equal(fns[0], fns[1]), True)
        if name == "hasPrefix" and len(fns) == 2:
            return _Node(lambda r: str(fns[0](r) or "").startswith(str(fns[1](r) or "")), True)
        if name == "exists" and len(fns) == 1:
            return _Node(lambda r: fns[0](r) is not None, True)
        if name == "search" and fns:
            return _Node(lambda r: _search(r, [str(f(r) or "") for f in fns]), True)
        raise self.fail(f"unsupported function {name}() with {len(fns)} argument(s)")


def _any(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda resource: bool(left(resource)) or bool(right(resource))


def _all(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda resource: bool(left(resource)) and bool(right(resource))


def _not(inner: Evaluator) -> Evaluator:
    return lambda resource: not inner(resource)


def _equal(left: Evaluator, right: Evaluator) -> Evaluator:
    def equal(resource: ResourceDef) -> bool:
        a, b = left(resource), right(resource)
        return a is not None and b is not None and a == b

    return equal


def _search(resource: ResourceDef, words: list[str]) -> bool:
    fields = [resource.name, resource.hostname, resource.description, *resource.labels.values()]
    lowered = [f.lower() for f in fields if f]
    return all(any(word.lower() in f for f in lowered) for word in words)


def compile_predicate(expression: str) -> Callable[[ResourceDef], bool]:
    """A resource filter for `expression` (everything passes an empty one); BadParameter when it does not parse."""
    if not expression.strip():
        return lambda resource: True
    node = _Parser(expression).parse()
    return lambda resource: bool(node.evaluate(resource))
