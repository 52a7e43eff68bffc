"""Go's regular expression syntax (RE2, `regexp/syntax` with the Perl flags that `regexp.Compile` uses) → a tree.

Teleport's `regexp.replace` compiles its pattern with Go's `regexp`, whose syntax and matching rules differ from
Python's `re` (no backreferences or lookaround, `\\d` is ASCII, `$` is the very end of the text, octal `\\1`, ...),
and whose matching takes linear time. So the pattern is parsed here by Go's rules and run by `regexp_engine`.

Deliberate limits (Go's are higher): 100 levels of nesting, and a compiled program of at most `MAX_PROGRAM`
instructions; Unicode script classes (`\\p{Greek}`) are not supported. All three are evaluation errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.domain.errors import ConditionEvalError
from sidecar.rules.regexp_classes import (
    PERL_CLASSES,
    POSIX_CLASSES,
    category_test,
    folded,
    in_ranges,
    negated,
    union_of,
)

__all__ = [
    "Alternate",
    "Any",
    "Assert",
    "Capture",
    "CharClass",
    "Concat",
    "Literal",
    "Node",
    "Repeat",
    "parse_regexp",
]

MAX_NESTING = 100
_MAX_REPEAT = 1000

# Go's flags, as far as they change a parse.
_FOLD = 1  # (?i)
_MULTILINE = 2  # (?m): ^ and $ match at line ends (Go: OneLine off)
_DOT_NL = 4  # (?s)
_UNGREEDY = 8  # (?U)


@dataclass(frozen=True)
class Literal:
    """One character; with `fold`, any character of its case orbit."""

    char: str
    fold: bool


@dataclass(frozen=True)
class CharClass:
    """`[...]`, `\\d`, `\\pL`, ...: `test` says whether a character is in the class."""

    test: Callable[[str], bool] = field(compare=False)


@dataclass(frozen=True)
class Any:
    """`.`: any character, or any but newline."""

    newline: bool


@dataclass(frozen=True)
class Assert:
    """An empty-width assertion: `begin_text`, `end_text`, `begin_line`, `end_line`, `word`, `not_word`."""

    kind: str


@dataclass(frozen=True)
class Concat:
    """Items in sequence (none: the empty match)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alternate:
    """`a|b|c`: the first branch that leads to a match wins."""

    branches: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat:
    """`x*`, `x+`, `x?`, `x{n,m}`; `maximum` is -1 for no upper bound."""

    sub: Node
    minimum: int
    maximum: int
    greedy: bool


@dataclass(frozen=True)
class Capture:
    """A capture group (`index` from 1, by opening parenthesis; `name` from `(?P<name>...)`)."""

    index: int
    name: str
    sub: Node


Node = Literal | CharClass | Any | Assert | Concat | Alternate | Repeat | Capture


@dataclass(frozen=True)
class Parsed:
    """A parsed pattern: the tree and the capture groups' names (index 0 is the whole match, named "")."""

    tree: Node
    names: tuple[str, ...]


def regexp_error(code: str, expr: str) -> ConditionEvalError:
    """Go's `*syntax.Error` text."""
    return ConditionEvalError(f"error parsing regexp: {code}: `{expr}`")


def parse_regexp(pattern: str) -> Parsed:
    """Parse `pattern` by Go's rules; a bad pattern raises ConditionEvalError with Go's message."""
    parser = _Parser(pattern)
    tree = parser.alternation(0)
    if parser.pos < len(pattern):  # only a `)` stops the top-level alternation early
        raise regexp_error("unexpected )", pattern)
    return Parsed(tree, tuple(parser.names))


# --- the parser -------------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the pattern, keeping Go's flag scoping: a flag set by `(?i)` lasts to the end
    of the enclosing group, across `|`."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0
        self.flags = 0
        self.names: list[str] = [""]

    # -- structure

    def alternation(self, depth: int) -> Node:
        if depth > MAX_NESTING:
            raise regexp_error("expression nests too deeply", self.text)
        branches = [self.concatenation(depth)]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.concatenation(depth))
        return branches[0] if len(branches) == 1 else Alternate(tuple(branches))

    def concatenation(self, depth: int) -> Node:
        items: list[Node] = []
        last_repeat_at = -1  # where the repetition operator just before started, if the last token was one
        while self.pos < len(self.text) and self.peek() not in "|)":
            start = self.pos
            char = self.peek()
            if char in "*+?":
                self.pos += 1
                minimum, maximum = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[char]
                self.repetition(items, minimum, maximum, start, last_repeat_at)
                last_repeat_at = start
                continue
            if char == "{":
                bounds = self.repeat_bounds()
                if bounds is not None:
                    minimum, maximum = bounds
                    if minimum < 0 or minimum > _MAX_REPEAT or maximum > _MAX_REPEAT or 0 <= maximum < minimum:
                        raise regexp_error("invalid repeat count", self.text[start : self.pos])
                    self.repetition(items, minimum, maximum, start, last_repeat_at)
                    last_repeat_at = start
                    continue
                self.pos += 1
                items.append(Literal("{", bool(self.flags & _FOLD)))
            elif self.text.startswith("\\Q", self.pos):
                items.extend(self.quoted_literals())  # separate atoms: `\Qab\E*` repeats only the `b`
            else:
                node = self.atom(depth)
                if node is not None:
                    items.append(node)
            last_repeat_at = -1
        if len(items) == 1:
            return items[0]
        return Concat(tuple(items))

    def repetition(self, items: list[Node], minimum: int, maximum: int, start: int, last_repeat_at: int) -> None:
        greedy = not self.flags & _UNGREEDY
        if self.peek() == "?":
            self.pos += 1
            greedy = not greedy
        if last_repeat_at >= 0:
            raise regexp_error("invalid nested repetition operator", self.text[last_repeat_at : self.pos])
        if not items:
            raise regexp_error("missing argument to repetition operator", self.text[start : self.pos])
        repeated = Repeat(items[-1], minimum, maximum, greedy)
        if (minimum >= 2 or maximum >= 2) and not _repeat_is_valid(repeated, _MAX_REPEAT):
            raise regexp_error("invalid repeat count", self.text[start : self.pos])
        items[-1] = repeated

    def repeat_bounds(self) -> tuple[int, int] | None:
        """`{n}`, `{n,}`, `{n,m}` at `pos` (then consumed), or None when the `{` is a literal."""
        text = self.text
        minimum, pos = _parse_int(text, self.pos + 1)
        if minimum is None or pos >= len(text):
            return None
        maximum = minimum
        if text[pos] == ",":
            pos += 1
            if pos >= len(text):
                return None
            if text[pos] == "}":
                maximum = -1
            else:
                upper, pos = _parse_int(text, pos)
                if upper is None:
                    return None
                maximum = upper
        if pos >= len(text) or text[pos] != "}":
            return None
        self.pos = pos + 1
        return minimum, maximum

    def atom(self, depth: int) -> Node | None:
        """One atom, or None for a flag group like `(?i)` that only changes flags."""
        char = self.next_char()
        fold = bool(self.flags & _FOLD)
        if char == "(":
            return self.group(depth)
        if char == "^":
            return Assert("begin_line" if self.flags & _MULTILINE else "begin_text")
        if char == "$":
            return Assert("end_line" if self.flags & _MULTILINE else "end_text")
        if char == ".":
            return Any(newline=bool(self.flags & _DOT_NL))
        if char == "[":
            return self.char_class(self.pos - 1)
        if char == "\\":
            return self.escape_atom(fold)
        return Literal(char, fold)

    def group(self, depth: int) -> Node | None:
        start = self.pos - 1
        saved = self.flags
        name = ""
        capture = True
        if self.peek() == "?":
            text = self.text
            if text.startswith("P<", self.pos + 1) or text.startswith("<", self.pos + 1):
                name_start = self.pos + (3 if text[self.pos + 1] == "P" else 2)
                end = text.find(">", name_start)
                if end < 0:
                    raise regexp_error("invalid named capture", text[start:])
                name = text[name_start:end]
                if not name or not all(c == "_" or (c.isascii() and c.isalnum()) for c in name):
                    raise regexp_error("invalid named capture", text[start : end + 1])
                self.pos = end + 1
            else:
                capture = False
                if self.flag_group(start):
                    return None  # `(?i)`: the flags stay changed to the end of the enclosing group
        index = 0
        if capture:
            index = len(self.names)
            self.names.append(name)
        sub = self.alternation(depth + 1)
        if self.peek() != ")":
            raise regexp_error("missing closing )", self.text)
        self.pos += 1
        self.flags = saved
        return Capture(index, name, sub) if capture else sub

    def flag_group(self, start: int) -> bool:
        """After `(?`: read flags; True for `(?flags)`, False for `(?flags:` (a group follows)."""
        self.pos += 1
        flags = self.flags
        negate = False
        saw_flag = False
        while self.pos < len(self.text):
            char = self.next_char()
            bit = {"i": _FOLD, "m": _MULTILINE, "s": _DOT_NL, "U": _UNGREEDY}.get(char)
            if bit is not None:
                flags = flags & ~bit if negate else flags | bit
                saw_flag = True
                continue
            if char == "-" and not negate:
                negate = True
                saw_flag = False
                continue
            if char in ":)" and (not negate or saw_flag):
                self.flags = flags
                return char == ")"
            break
        raise regexp_error("invalid or unsupported Perl syntax", self.text[start : self.pos])

    def quoted_literals(self) -> list[Node]:
        """`\\Q...\\E` at `pos` (consumed): every character literally, to `\\E` or the end."""
        end = self.text.find("\\E", self.pos + 2)
        quoted = self.text[self.pos + 2 :] if end < 0 else self.text[self.pos + 2 : end]
        self.pos = len(self.text) if end < 0 else end + 2
        _check_utf8(quoted)
        fold = bool(self.flags & _FOLD)
        return [Literal(char, fold) for char in quoted]

    def escape_atom(self, fold: bool) -> Node:
        start = self.pos - 1
        char = self.peek()
        simple = {"A": "begin_text", "z": "end_text", "b": "word", "B": "not_word"}
        if char in simple:
            self.pos += 1
            return Assert(simple[char])
        if char == "C":
            raise regexp_error("invalid escape sequence", "\\C")
        self.pos = start
        group = self.class_escape(fold)
        if group is not None:
            return CharClass(group)
        return Literal(self.escape(), fold)

    def class_escape(self, fold: bool) -> Callable[[str], bool] | None:
        """`\\d`, `\\D`, ... or `\\pL`, `\\p{Greek}`, `\\PL` at `pos` (consumed), as a test; None if not one."""
        text, pos = self.text, self.pos
        if not text.startswith("\\", pos) or pos + 1 >= len(text):
            return None
        kind = text[pos + 1]
        if kind.lower() in PERL_CLASSES:
            self.pos = pos + 2
            test = folded(in_ranges(PERL_CLASSES[kind.lower()]), fold)
            return negated(test) if kind.isupper() else test
        if kind not in "pP":
            return None
        negate = kind == "P"
        if pos + 2 >= len(text):
            raise regexp_error("invalid character class range", text[pos:])
        if text[pos + 2] != "{":
            name = text[pos + 2]
            end = pos + 3
        else:
            close = text.find("}", pos)
            if close < 0:
                raise regexp_error("invalid character class range", text[pos:])
            name = text[pos + 3 : close]
            end = close + 1
        _check_utf8(name)
        sequence = text[pos:end]
        if name.startswith("^"):
            negate = not negate
            name = name[1:]
        category = category_test(name)
        if category is None:
            if name and name.isascii() and name.isalpha():
                raise ConditionEvalError(
                    f"regexp class `{sequence}`: not a Unicode category; Unicode scripts are not supported here"
                )
            raise regexp_error("invalid character class range", sequence)
        self.pos = end
        test = folded(category, fold)
        return negated(test) if negate else test

    def escape(self) -> str:
        """A single-character escape at `pos` (Go's `parseEscape`), consumed."""
        start = self.pos
        self.pos += 1
        if self.pos >= len(self.text):
            raise regexp_error("trailing backslash at end of expression", "")
        char = self.next_char()
        if char < "\x80" and not char.isalnum():
            return char
        if "1" <= char <= "7" and not self._octal_digit_next():
            raise regexp_error("invalid escape sequence", self.text[start : self.pos])
        if "0" <= char <= "7":
            value = int(char)
            for _ in range(2):
                if not self._octal_digit_next():
                    break
                value = value * 8 + int(self.text[self.pos])
                self.pos += 1
            return chr(value)
        if char == "x":
            return self._hex_escape(start)
        controls = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
        if char in controls:
            return controls[char]
        raise regexp_error("invalid escape sequence", self.text[start : self.pos])

    def _octal_digit_next(self) -> bool:
        return self.pos < len(self.text) and "0" <= self.text[self.pos] <= "7"

    def _hex_escape(self, start: int) -> str:
        text = self.text
        if self.pos < len(text) and text[self.pos] == "{":
            close = text.find("}", self.pos)
            digits = text[self.pos + 1 : close] if close >= 0 else ""
            if close < 0 or not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                self.pos = close + 1 if close >= 0 else len(text)
                raise regexp_error("invalid escape sequence", text[start : self.pos])
            value = int(digits, 16)
            self.pos = close + 1
            if value > 0x10FFFF:
                raise regexp_error("invalid escape sequence", text[start : self.pos])
            return chr(value)
        digits = text[self.pos : self.pos + 2]
        self.pos = min(self.pos + 2, len(text))
        if len(digits) < 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise regexp_error("invalid escape sequence", text[start : self.pos])
        return chr(int(digits, 16))

    def char_class(self, start: int) -> CharClass:
        fold = bool(self.flags & _FOLD)
        negate = False
        if self.peek() == "^":
            negate = True
            self.pos += 1
        tests: list[Callable[[str], bool]] = []
        ranges: list[tuple[str, str]] = []
        first = True
        while True:
            if self.pos >= len(self.text):
                raise regexp_error("missing closing ]", self.text[start:])
            if self.peek() == "]" and not first:
                self.pos += 1
                break
            first = False
            if self.text.startswith("[:", self.pos):
                named = self.posix_class(fold)
                if named is not None:
                    tests.append(named)
                    continue
            group = self.class_escape(fold)
            if group is not None:
                tests.append(group)
                continue
            range_start = self.pos
            low = self.class_char(start)
            high = low
            if self.text.startswith("-", self.pos) and self.pos + 1 < len(self.text) and self.text[self.pos + 1] != "]":
                self.pos += 1
                high = self.class_char(start)
                if high < low:
                    raise regexp_error("invalid character class range", self.text[range_start : self.pos])
            ranges.append((low, high))
        if ranges:
            tests.append(folded(in_ranges(tuple(ranges)), fold))
        test = union_of(tests)
        return CharClass(negated(test) if negate else test)

    def posix_class(self, fold: bool) -> Callable[[str], bool] | None:
        end = self.text.find(":]", self.pos + 2)
        if end < 0:
            return None
        name = self.text[self.pos : end + 2]
        inner = name[2:-2]
        negate = inner.startswith("^")
        ranges = POSIX_CLASSES.get(inner[1:] if negate else inner)
        if ranges is None:
            raise regexp_error("invalid character class range", name)
        self.pos = end + 2
        test = folded(in_ranges(ranges), fold)
        return negated(test) if negate else test

    def class_char(self, class_start: int) -> str:
        if self.pos >= len(self.text):
            raise regexp_error("missing closing ]", self.text[class_start:])
        if self.peek() == "\\":
            return self.escape()
        return self.next_char()

    # -- characters

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next_char(self) -> str:
        char = self.text[self.pos]
        if "\ud800" <= char <= "\udfff":
            raise regexp_error("invalid UTF-8", self.text[self.pos :])
        self.pos += 1
        return char


def _parse_int(text: str, pos: int) -> tuple[int | None, int]:
    """Go's `parseInt` for repeat counts: digits without a leading zero (a huge number reads as 10**9)."""
    if pos >= len(text) or not "0" <= text[pos] <= "9":
        return None, pos
    if text[pos] == "0" and pos + 1 < len(text) and "0" <= text[pos + 1] <= "9":
        return None, pos
    end = pos
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    digits = text[pos:end]
    return (int(digits) if len(digits) <= 9 else 10**9), end


def _repeat_is_valid(node: Node, limit: int) -> bool:
    """Go's `repeatIsValid`: nested counted repetitions may not multiply beyond `limit` copies."""
    if isinstance(node, Repeat):
        if node.maximum == 0:
            return True
        bound = node.maximum if node.maximum > 0 else node.minimum
        if bound > limit:
            return False
        if bound > 0:
            limit //= bound
    children: tuple[Node, ...] = ()
    if isinstance(node, Concat):
        children = node.items
    elif isinstance(node, Alternate):
        children = node.branches
    elif isinstance(node, Repeat | Capture):
        children = (node.sub,)
    return all(_repeat_is_valid(child, limit) for child in children)


def _check_utf8(text: str) -> None:
    for index, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            raise regexp_error("invalid UTF-8", text[index:])
