"""The syntax tree of a condition: the part of Go's `go/ast` that an expression can produce.

Every node knows its nesting `depth`, so the parser can refuse a hostile condition before anything walks it
recursively. A run of one binary operator level (`a || b || c`) is one `Binary` node with several operands,
so long flat chains add no depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BasicLit",
    "Binary",
    "Call",
    "Ident",
    "Index",
    "Paren",
    "Selector",
    "SyntaxNode",
    "Unary",
]


@dataclass(frozen=True)
class Ident:
    """A plain name (`true`, `user`, `set`)."""

    name: str
    depth: int = 1

    ast_name = "*ast.Ident"


@dataclass(frozen=True)
class BasicLit:
    """A literal token: `kind` is INT, FLOAT, IMAG, CHAR or STRING; `raw` is its source text; `value` is the
    decoded text of a STRING (for other kinds, the source text again)."""

    kind: str
    raw: str
    value: str
    depth: int = 1

    ast_name = "*ast.BasicLit"


@dataclass(frozen=True)
class Selector:
    """`x.name`."""

    x: SyntaxNode
    name: str
    depth: int = field(default=0, compare=False)

    ast_name = "*ast.SelectorExpr"


@dataclass(frozen=True)
class Index:
    """`x[index]`."""

    x: SyntaxNode
    index: SyntaxNode
    depth: int = field(default=0, compare=False)

    ast_name = "*ast.IndexExpr"


@dataclass(frozen=True)
class Call:
    """`fun(args...)` (a trailing `...` is ignored, as the predicate library ignores it)."""

    fun: SyntaxNode
    args: tuple[SyntaxNode, ...]
    depth: int = field(default=0, compare=False)

    ast_name = "*ast.CallExpr"


@dataclass(frozen=True)
class Unary:
    """`op x` for Go's unary operators (`*x` is Go's StarExpr)."""

    op: str
    x: SyntaxNode
    depth: int = field(default=0, compare=False)

    @property
    def ast_name(self) -> str:
        """Go's node type, for messages."""
        return "*ast.StarExpr" if self.op == "*" else "*ast.UnaryExpr"


@dataclass
class Binary:
    """`first op1 x1 op2 x2 ...`: operators of one precedence `level` (1 is `||`), grouped from the left as Go
    does. Built by appending while parsing (a long chain stays linear); read-only afterwards."""

    first: SyntaxNode
    rest: list[tuple[str, SyntaxNode]]
    level: int
    depth: int = 0

    ast_name = "*ast.BinaryExpr"


@dataclass(frozen=True)
class Paren:
    """`(x)`."""

    x: SyntaxNode
    depth: int = field(default=0, compare=False)

    ast_name = "*ast.ParenExpr"


SyntaxNode = Ident | BasicLit | Selector | Index | Call | Unary | Binary | Paren
