"""The Go-syntax regexp engine behind `regexp.replace` (sidecar/rules/regexp_syntax.py, regexp_engine.py).

Where Go's semantics and Perl's agree (leftmost-first, greedy or lazy), our matches must equal Python's `re`,
spans and capture groups alike: a seeded differential test over random patterns. They disagree only for a
repetition whose body can match the empty string, where Go (RE2) drops a thread that comes back to the same
state at the same position; those patterns are left out here.
"""

from __future__ import annotations

import random
import re

from sidecar.rules.regexp_engine import MAX_STEPS, _nullable, compile_regexp
from sidecar.rules.regexp_syntax import Alternate, Capture, Concat, Node, Repeat, parse_regexp


def _atom(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(["a", "b", "c", ".", "[ab]", "[^a]", "\\w", "[b-c]"])
    if roll < 0.6:
        return "(" + _pattern(rng, depth + 1) + ")"
    if roll < 0.7:
        return "(?:" + _pattern(rng, depth + 1) + ")"
    return _atom(rng, depth + 1)


def _piece(rng: random.Random, depth: int) -> str:
    atom = _atom(rng, depth)
    if rng.random() < 0.5:
        return atom
    quantifier = rng.choice(["*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}"])
    return atom + quantifier + ("?" if rng.random() < 0.3 else "")


def _pattern(rng: random.Random, depth: int = 0) -> str:
    branches = ["".join(_piece(rng, depth) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 2))]
    anchor = rng.choice(["", "", "", "^", "\\b"])
    return anchor + "|".join(branches)


def _repeats_a_nullable_body(node: Node) -> bool:
    if isinstance(node, Repeat):
        loops = node.maximum == -1 or node.maximum > 1
        return (loops and _nullable(node.sub)) or _repeats_a_nullable_body(node.sub)
    if isinstance(node, Concat):
        return any(_repeats_a_nullable_body(item) for item in node.items)
    if isinstance(node, Alternate):
        return any(_repeats_a_nullable_body(branch) for branch in node.branches)
    if isinstance(node, Capture):
        return _repeats_a_nullable_body(node.sub)
    return False


def test_matches_agree_with_perl_semantics_where_go_and_perl_agree() -> None:
    rng = random.Random(20250101)
    compared = 0
    for _ in range(1200):
        pattern = _pattern(rng)
        if _repeats_a_nullable_body(parse_regexp(pattern).tree):
            continue
        python = re.compile(pattern, re.ASCII)
        ours = compile_regexp(pattern)
        for _ in range(4):
            text = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 8)))
            expected = python.search(text)
            found = ours.search(text, 0, [MAX_STEPS])
            spans = None if found is None else [(found[2 * g], found[2 * g + 1]) for g in range(python.groups + 1)]
            wanted = None if expected is None else [expected.span(g) for g in range(python.groups + 1)]
            assert spans == wanted, (pattern, text)
            compared += 1
    assert compared > 2000


def test_an_empty_iteration_ends_a_thread_as_in_go() -> None:
    # Perl stops `(?:[ab]?|.)+` at the empty iteration and matches "a"; Go's state machine goes on with `.`.
    found = compile_regexp("(?:[ab]?|.)+").search("acb", 0, [MAX_STEPS])
    assert found is not None and found[:2] == [0, 3]


def test_search_starts_anywhere_but_anchors_see_the_whole_text() -> None:
    regexp = compile_regexp("^a|\\bb")
    assert regexp.search("aab", 1, [MAX_STEPS]) is None  # `^` only at 0, and "ab" has no word boundary before b
    assert regexp.search("a b", 1, [MAX_STEPS]) == [2, 3]
