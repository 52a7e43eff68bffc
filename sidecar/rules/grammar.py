"""Go's expression grammar (the part `parser.ParseExpr` accepts that can matter here), as a lark LALR grammar
over the tokens of `scanner`, building `syntax` nodes as it reduces (no recursion, however deep the input).

Everything Go would parse but the predicate library rejects anyway (composite literals, function literals, type
expressions, slices, type assertions) is simply a syntax error here: either way the condition does not parse.
All of Go's operators are kept, so that `a > b` fails as Teleport's does (`> is not supported`), after parsing.

Syntax errors are reported as Go reports them: `line:column: expected operand, found 'EOF'`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedToken
from lark.lexer import Lexer

from sidecar.domain.errors import ConditionParseError
from sidecar.rules.scanner import GoToken, position, scan
from sidecar.rules.syntax import BasicLit, Binary, Call, Ident, Index, Paren, Selector, SyntaxNode, Unary

__all__ = ["MAX_DEPTH", "parse_syntax"]

# How deeply expressions may nest (Go allows 100000; a flat `a || b || ...` chain counts once). Checking and
# evaluating walk the tree recursively, so this keeps them far from Python's recursion limit.
MAX_DEPTH = 100

_GRAMMAR = r"""
start: expr NLSEMI?

?expr: lor
?lor: land
    | lor LOR land                                   -> binary
?land: cmp
    | land LAND cmp                                  -> binary
?cmp: add
    | cmp (EQL | NEQ | LSS | LEQ | GTR | GEQ) add    -> binary
?add: mul
    | add (ADD | SUB | OR | XOR) mul                 -> binary
?mul: unary
    | mul (MUL | QUO | REM | SHL | SHR | AND | AND_NOT) unary   -> binary
?unary: primary
    | (NOT | ADD | SUB | XOR | MUL | AND | ARROW | TILDE) unary -> unary
?primary: operand
    | primary PERIOD IDENT                           -> selector
    | primary LBRACK expr COMMA? RBRACK              -> index
    | primary LPAREN [args] RPAREN                   -> call
args: expr (COMMA expr)* ELLIPSIS? COMMA?
?operand: IDENT                                      -> ident
    | (INT | FLOAT | IMAG | CHAR | STRING)           -> literal
    | LPAREN expr RPAREN                             -> paren

%declare IDENT INT FLOAT IMAG CHAR STRING NLSEMI LOR LAND EQL NEQ LSS LEQ GTR GEQ ADD SUB OR XOR MUL QUO REM SHL
%declare SHR AND AND_NOT NOT ARROW TILDE PERIOD LBRACK RBRACK LPAREN RPAREN COMMA ELLIPSIS
"""

_LEVELS = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3}  # others: + - | ^ → 4, rest → 5
_ADDITIVE = frozenset(("+", "-", "|", "^"))

_LITERAL_TOKENS = frozenset(("IDENT", "INT", "FLOAT", "IMAG", "CHAR", "STRING"))


def _level(op: str) -> int:
    return _LEVELS.get(op, 4 if op in _ADDITIVE else 5)


def _checked(node: SyntaxNode) -> SyntaxNode:
    if node.depth > MAX_DEPTH:
        raise ConditionParseError(f"expression nested too deeply (more than {MAX_DEPTH} levels)")
    return node


class _Build(Transformer[Token, SyntaxNode]):
    """Reduces straight into syntax nodes (called by the LALR parser as it reduces)."""

    def start(self, children: Sequence[object]) -> SyntaxNode:
        node = children[0]
        assert not isinstance(node, Token)
        return node  # type: ignore[return-value]

    def ident(self, children: Sequence[Token]) -> SyntaxNode:
        return Ident(str(children[0]))

    def literal(self, children: Sequence[GoToken]) -> SyntaxNode:
        token = children[0]
        return BasicLit(token.type, str(token), token.decoded)

    def paren(self, children: Sequence[object]) -> SyntaxNode:
        inner: SyntaxNode = children[1]  # type: ignore[assignment]
        return _checked(Paren(inner, depth=inner.depth + 1))

    def selector(self, children: Sequence[object]) -> SyntaxNode:
        base: SyntaxNode = children[0]  # type: ignore[assignment]
        return _checked(Selector(base, str(children[2]), depth=base.depth + 1))

    def index(self, children: Sequence[object]) -> SyntaxNode:
        base: SyntaxNode = children[0]  # type: ignore[assignment]
        key: SyntaxNode = children[2]  # type: ignore[assignment]
        return _checked(Index(base, key, depth=max(base.depth, key.depth) + 1))

    def call(self, children: Sequence[object]) -> SyntaxNode:
        fun: SyntaxNode = children[0]  # type: ignore[assignment]
        args: tuple[SyntaxNode, ...] = children[2] or ()  # type: ignore[assignment]
        depth = max([fun.depth, *(arg.depth for arg in args)]) + 1
        return _checked(Call(fun, args, depth=depth))

    def args(self, children: Sequence[object]) -> tuple[SyntaxNode, ...]:
        return tuple(child for child in children if not isinstance(child, Token))  # type: ignore[misc]

    def unary(self, children: Sequence[object]) -> SyntaxNode:
        operand: SyntaxNode = children[1]  # type: ignore[assignment]
        return _checked(Unary(str(children[0]), operand, depth=operand.depth + 1))

    def binary(self, children: Sequence[object]) -> SyntaxNode:
        left: SyntaxNode = children[0]  # type: ignore[assignment]
        op = str(children[1])
        right: SyntaxNode = children[2]  # type: ignore[assignment]
        level = _level(op)
        if isinstance(left, Binary) and left.level == level:
            left.rest.append((op, right))
            left.depth = max(left.depth, right.depth + 1)
            return _checked(left)
        return _checked(Binary(left, [(op, right)], level, depth=max(left.depth, right.depth) + 1))


class _GoLexer(Lexer):
    """Feeds lark the Go scanner's tokens."""

    def __init__(self, lexer_conf: object) -> None:
        del lexer_conf

    def lex(self, data: str) -> Iterator[Token]:  # type: ignore[override]
        return scan(data)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer=_GoLexer, transformer=_Build(), maybe_placeholders=True)


def parse_syntax(text: str) -> SyntaxNode:
    """The syntax tree of a condition; raises ConditionParseError for a scan or syntax error."""
    if text == "":
        raise ConditionParseError("empty expression")
    try:
        node = _parser().parse(text)
    except UnexpectedToken as exc:
        raise ConditionParseError(_describe(text, exc)) from None
    assert not isinstance(node, Token)
    return node  # type: ignore[return-value]


def _describe(text: str, exc: UnexpectedToken) -> str:
    """Go's wording for the token the parser could not take."""
    token: Token = exc.token
    # The state's lookahead set mixes contexts (LALR merges them); asking the parser what it would accept from
    # its actual stack gives Go's context (inside a call, an index, parentheses, or at the top).
    parser = exc.interactive_parser
    expected: set[str] = set(parser.accepts()) if parser is not None else set(exc.expected)  # type: ignore[no-untyped-call]
    at_end = token.type == "$END"
    index = len(text) if at_end or token.start_pos is None else token.start_pos
    if at_end:
        found = "'EOF'"
    elif token.type == "NLSEMI":
        found = "newline"
    elif token.type in _LITERAL_TOKENS:
        found = str(token)
    else:
        found = f"'{token}'"
    if expected == {"IDENT"}:
        what = "selector or type assertion"
    elif "IDENT" in expected:  # an identifier can only start an operand here
        what = "operand"
    elif {"COMMA", "RPAREN"} <= expected and "RBRACK" not in expected:
        newline = " before newline" if token.type == "NLSEMI" else ""
        return f"{position(text, index)}: missing ','{newline} in argument list"
    elif "RBRACK" in expected:
        what = "']'"
    elif "RPAREN" in expected:
        what = "')'"
    else:
        what = "'EOF'"
    return f"{position(text, index)}: expected {what}, found {found}"
