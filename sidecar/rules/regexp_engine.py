"""Runs a parsed Go regular expression: a Pike VM (Thompson simulation with thread priorities), so it matches
leftmost-first like Go's `regexp` and, like it, in time linear in the text, whatever the pattern.

`replace_all` and `expand` follow Go's `ReplaceAllString` and `Expand` (`$1`, `${name}`, `$$`), including how
empty matches next to a previous match are skipped. Characters that stand for invalid UTF-8 bytes match as
U+FFFD, as Go decodes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sidecar.domain.errors import ConditionEvalError
from sidecar.rules.casefold import orbit
from sidecar.rules.regexp_syntax import (
    Alternate,
    Any,
    Assert,
    Capture,
    CharClass,
    Concat,
    Literal,
    Node,
    Parsed,
    Repeat,
    parse_regexp,
    regexp_error,
)

__all__ = ["MAX_PROGRAM", "MAX_STEPS", "Regexp", "compile_regexp"]

MAX_PROGRAM = 20_000  # instructions in one compiled pattern
MAX_STEPS = 5_000_000  # thread steps for one `regexp.replace` call (all its strings): about a second

# Instruction opcodes.
_CHAR, _SPLIT, _JUMP, _SAVE, _ASSERT, _MATCH = range(6)

Instruction = tuple[int, object, int]  # (opcode, argument, second target for SPLIT)

_INVALID_BYTES = {code: "\ufffd" for code in range(0xDC80, 0xDD00)}
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


@dataclass(frozen=True)
class Regexp:
    """A compiled pattern."""

    program: tuple[Instruction, ...]
    names: tuple[str, ...]  # capture group names by index; index 0 is the whole match

    def search(self, text: str, start: int, budget: list[int]) -> list[int] | None:
        """The leftmost-first match at or after `start` as [start0, end0, start1, end1, ...] (-1 = unset).

        `budget` holds the thread steps still allowed (shared by the calls of one `regexp.replace`); running out
        raises ConditionEvalError, so a costly pattern on long strings cannot stall the sidecar.
        """
        return _run(self, text.translate(_INVALID_BYTES), start, budget)

    def replace_all(self, text: str, template: str, budget: list[int]) -> str:
        """Go's `ReplaceAllString(text, template)`."""
        subject = text.translate(_INVALID_BYTES)
        out: list[str] = []
        last_end = 0
        search_at = 0
        while search_at <= len(text):
            found = _run(self, subject, search_at, budget)
            if found is None:
                break
            out.append(text[last_end : found[0]])
            # No replacement for an empty match right after the previous match.
            if found[1] > last_end or found[0] == 0:
                out.append(self.expand(template, text, found))
            last_end = found[1]
            search_at = max(search_at + 1, found[1])
        out.append(text[last_end:])
        return "".join(out)

    def matches(self, text: str, budget: list[int]) -> bool:
        """Go's `MatchString`."""
        return self.search(text, 0, budget) is not None

    def expand(self, template: str, text: str, found: list[int]) -> str:
        """Go's `Expand`: `$name` or `${name}` is the group's text ("" if unset or unknown); `$$` is `$`."""
        out: list[str] = []
        rest = template
        while True:
            before, dollar, rest = rest.partition("$")
            out.append(before)
            if not dollar:
                return "".join(out)
            if rest.startswith("$"):
                out.append("$")
                rest = rest[1:]
                continue
            name, rest_after = _template_name(rest)
            if name is None:
                out.append("$")
                continue
            rest = rest_after
            out.append(self._group_text(name, text, found))

    def _group_text(self, name: str, text: str, found: list[int]) -> str:
        if name.isascii() and name.isdigit() and (name == "0" or not name.startswith("0")) and len(name) <= 8:
            index = int(name)
            if index < len(self.names) and found[2 * index] >= 0:
                return text[found[2 * index] : found[2 * index + 1]]
            return ""
        for index, group_name in enumerate(self.names):
            if group_name == name and found[2 * index] >= 0:
                return text[found[2 * index] : found[2 * index + 1]]
        return ""


@lru_cache(maxsize=256)
def compile_regexp(pattern: str) -> Regexp:
    """Parse and compile `pattern` (Go's `regexp.Compile`); a bad pattern raises ConditionEvalError."""
    parsed: Parsed = parse_regexp(pattern)
    builder = _Builder(pattern)
    builder.emit((_SAVE, 0, 0))
    builder.node(parsed.tree)
    builder.emit((_SAVE, 1, 0))
    builder.emit((_MATCH, None, 0))
    return Regexp(tuple(builder.program), parsed.names)


def _template_name(rest: str) -> tuple[str | None, str]:
    """Go's `extract`: the name after `$` (letters, digits, `_`; braced or not) and what follows it."""
    braced = rest.startswith("{")
    body = rest[1:] if braced else rest
    end = 0
    while end < len(body) and (body[end].isalpha() or body[end].isdecimal() or body[end] == "_"):
        end += 1
    if end == 0:
        return None, rest
    name = body[:end]
    if braced:
        if end >= len(body) or body[end] != "}":
            return None, rest
        end += 1
    return name, body[end:]


# --- compiling --------------------------------------------------------------------------------------------------


def _nullable(node: Node) -> bool:
    if isinstance(node, Literal | CharClass | Any):
        return False
    if isinstance(node, Assert):
        return True
    if isinstance(node, Concat):
        return all(_nullable(item) for item in node.items)
    if isinstance(node, Alternate):
        return any(_nullable(branch) for branch in node.branches)
    if isinstance(node, Repeat):
        return node.minimum == 0 or _nullable(node.sub)
    return _nullable(node.sub)


class _Builder:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.program: list[Instruction] = []

    def emit(self, instruction: Instruction) -> int:
        if len(self.program) >= MAX_PROGRAM:
            raise regexp_error("expression too large", self.pattern)
        self.program.append(instruction)
        return len(self.program) - 1

    def patch(self, at: int, instruction: Instruction) -> None:
        self.program[at] = instruction

    def node(self, node: Node) -> None:
        if isinstance(node, Literal):
            chars = orbit(node.char) if node.fold else frozenset((node.char,))
            self.emit((_CHAR, chars.__contains__, 0))
        elif isinstance(node, CharClass):
            self.emit((_CHAR, node.test, 0))
        elif isinstance(node, Any):
            self.emit((_CHAR, _any_char if node.newline else _not_newline, 0))
        elif isinstance(node, Assert):
            self.emit((_ASSERT, node.kind, 0))
        elif isinstance(node, Concat):
            for item in node.items:
                self.node(item)
        elif isinstance(node, Alternate):
            self.alternate(node.branches)
        elif isinstance(node, Capture):
            self.emit((_SAVE, 2 * node.index, 0))
            self.node(node.sub)
            self.emit((_SAVE, 2 * node.index + 1, 0))
        else:
            self.repeat(node)

    def alternate(self, branches: tuple[Node, ...]) -> None:
        jumps: list[int] = []
        for branch in branches[:-1]:
            split = self.emit((_SPLIT, 0, 0))
            self.node(branch)
            jumps.append(self.emit((_JUMP, 0, 0)))
            self.patch(split, (_SPLIT, split + 1, len(self.program)))
        self.node(branches[-1])
        for jump in jumps:
            self.patch(jump, (_JUMP, len(self.program), 0))

    def repeat(self, node: Repeat) -> None:
        """Go's simplification: x{n,m} is n copies of x, then m-n nested optional copies (x(x)?)?."""
        sub, minimum, maximum, greedy = node.sub, node.minimum, node.maximum, node.greedy
        if maximum == -1:
            for _ in range(max(minimum - 1, 0)):
                self.node(sub)
            if minimum == 0:
                self.star(sub, greedy)
            else:
                self.plus(sub, greedy)
            return
        for _ in range(minimum):
            self.node(sub)
        optional = maximum - minimum
        splits: list[int] = []
        for _ in range(optional):
            splits.append(self.emit((_SPLIT, 0, 0)))
            self.node(sub)
        end = len(self.program)
        for split in splits:
            self.patch(split, _split(split + 1, end, greedy))

    def star(self, sub: Node, greedy: bool) -> None:
        if _nullable(sub):  # (x+)? keeps Go's priority order for an x that can match empty
            split = self.emit((_SPLIT, 0, 0))
            self.plus(sub, greedy)
            self.patch(split, _split(split + 1, len(self.program), greedy))
            return
        loop = self.emit((_SPLIT, 0, 0))
        self.node(sub)
        self.emit((_JUMP, loop, 0))
        self.patch(loop, _split(loop + 1, len(self.program), greedy))

    def plus(self, sub: Node, greedy: bool) -> None:
        start = len(self.program)
        self.node(sub)
        split = self.emit((_SPLIT, 0, 0))
        self.patch(split, _split(start, split + 1, greedy))


def _split(preferred: int, other: int, greedy: bool) -> Instruction:
    return (_SPLIT, preferred, other) if greedy else (_SPLIT, other, preferred)


def _any_char(char: str) -> bool:
    return True


def _not_newline(char: str) -> bool:
    return char != "\n"


# --- running ----------------------------------------------------------------------------------------------------


def _assertion_holds(kind: str, text: str, pos: int) -> bool:
    if kind == "begin_text":
        return pos == 0
    if kind == "end_text":
        return pos == len(text)
    if kind == "begin_line":
        return pos == 0 or text[pos - 1] == "\n"
    if kind == "end_line":
        return pos == len(text) or text[pos] == "\n"
    before = pos > 0 and text[pos - 1] in _WORD
    after = pos < len(text) and text[pos] in _WORD
    return (before != after) == (kind == "word")


Thread = tuple[int, tuple[int, ...]]


def _add_thread(
    program: tuple[Instruction, ...],
    threads: list[Thread],
    seen: set[int],
    pc: int,
    caps: tuple[int, ...],
    text: str,
    pos: int,
) -> int:
    """Follow empty transitions from `pc` in priority order; returns the steps taken."""
    stack: list[Thread] = [(pc, caps)]
    steps = 0
    while stack:
        pc, caps = stack.pop()
        if pc in seen:
            continue
        seen.add(pc)
        steps += 1
        opcode, argument, other = program[pc]
        if opcode == _JUMP:
            stack.append((argument, caps))  # type: ignore[arg-type]
        elif opcode == _SPLIT:
            stack.append((other, caps))
            stack.append((argument, caps))  # type: ignore[arg-type]
        elif opcode == _SAVE:
            slot: int = argument  # type: ignore[assignment]
            stack.append((pc + 1, (*caps[:slot], pos, *caps[slot + 1 :])))
        elif opcode == _ASSERT:
            if _assertion_holds(argument, text, pos):  # type: ignore[arg-type]
                stack.append((pc + 1, caps))
        else:
            threads.append((pc, caps))
    return steps


def _run(regexp: Regexp, text: str, start: int, budget: list[int]) -> list[int] | None:
    program = regexp.program
    blank = (-1,) * (2 * len(regexp.names))
    matched: tuple[int, ...] | None = None
    current: list[Thread] = []
    seen: set[int] = set()
    pos = start
    while True:
        if matched is None:  # no match yet: a new attempt may start here, with the lowest priority
            budget[0] -= _add_thread(program, current, seen, 0, blank, text, pos)
        elif not current:
            break  # the match stands: no thread of higher priority is left
        char = text[pos] if pos < len(text) else None
        following: list[Thread] = []
        next_seen: set[int] = set()
        for pc, caps in current:
            opcode, argument, _ = program[pc]
            if opcode == _MATCH:
                matched = caps
                break  # every thread after this one has a lower priority
            test: Callable[[str], bool] = argument  # type: ignore[assignment]
            if char is not None and test(char):
                budget[0] -= _add_thread(program, following, next_seen, pc + 1, caps, text, pos + 1)
        budget[0] -= len(current)
        if budget[0] < 0:
            raise ConditionEvalError("regexp.replace: the pattern needs too much work on this input")
        if char is None:
            break
        current, seen = following, next_seen
        pos += 1
    return list(matched) if matched is not None else None
