"""Character sets of Go's regular expressions: Perl classes (`\\d`), POSIX classes (`[:alpha:]`), Unicode
categories (`\\pL`), and the tests built from them, with `(?i)` case folding.

Go's Perl and POSIX classes are ASCII only; its `\\pC` is Cc|Cf|Co|Cs (no unassigned code points).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from sidecar.rules.casefold import orbit

__all__ = ["PERL_CLASSES", "POSIX_CLASSES", "Ranges", "category_test", "folded", "in_ranges", "negated", "union_of"]

Ranges = tuple[tuple[str, str], ...]

PERL_CLASSES: dict[str, Ranges] = {
    "d": (("0", "9"),),
    "s": (("\t", "\n"), ("\f", "\r"), (" ", " ")),
    "w": (("0", "9"), ("A", "Z"), ("_", "_"), ("a", "z")),
}

POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": (("0", "9"), ("A", "Z"), ("a", "z")),
    "alpha": (("A", "Z"), ("a", "z")),
    "ascii": (("\x00", "\x7f"),),
    "blank": (("\t", "\t"), (" ", " ")),
    "cntrl": (("\x00", "\x1f"), ("\x7f", "\x7f")),
    "digit": (("0", "9"),),
    "graph": (("!", "~"),),
    "lower": (("a", "z"),),
    "print": ((" ", "~"),),
    "punct": (("!", "/"), (":", "@"), ("[", "`"), ("{", "~")),
    "space": (("\t", "\r"), (" ", " ")),
    "upper": (("A", "Z"),),
    "word": (("0", "9"), ("A", "Z"), ("_", "_"), ("a", "z")),
    "xdigit": (("0", "9"), ("A", "F"), ("a", "f")),
}

# Go's unicode.Categories: the major ones, then each minor one by itself. "C" is Cc|Cf|Co|Cs (unassigned code
# points are in none of them).
_MAJOR_CATEGORIES = {
    "C": ("Cc", "Cf", "Co", "Cs"),
    "L": ("Ll", "Lm", "Lo", "Lt", "Lu"),
    "M": ("Mc", "Me", "Mn"),
    "N": ("Nd", "Nl", "No"),
    "P": ("Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps"),
    "S": ("Sc", "Sk", "Sm", "So"),
    "Z": ("Zl", "Zp", "Zs"),
}
_CATEGORIES = _MAJOR_CATEGORIES | {minor: (minor,) for minors in _MAJOR_CATEGORIES.values() for minor in minors}


def in_ranges(ranges: Ranges) -> Callable[[str], bool]:
    """The test for characters in any of the inclusive `ranges`."""
    return lambda char: any(lo <= char <= hi for lo, hi in ranges)


def category_test(name: str) -> Callable[[str], bool] | None:
    """The test for `\\p{name}` (a Unicode category, or `Any`), or None for a name that is not one."""
    if name == "Any":
        return lambda char: True
    categories = _CATEGORIES.get(name)
    if categories is None:
        return None
    wanted = frozenset(categories)
    return lambda char: unicodedata.category(char) in wanted


def folded(test: Callable[[str], bool], fold: bool) -> Callable[[str], bool]:
    """Under (?i) a set holds every character whose case orbit meets it."""
    if not fold:
        return test
    return lambda char: any(test(other) for other in orbit(char))


def negated(test: Callable[[str], bool]) -> Callable[[str], bool]:
    """The opposite test."""
    return lambda char: not test(char)


def union_of(tests: list[Callable[[str], bool]]) -> Callable[[str], bool]:
    """A character passes when it passes any of `tests` (the items of one `[...]`)."""
    frozen = tuple(tests)
    return lambda char: any(test(char) for test in frozen)
