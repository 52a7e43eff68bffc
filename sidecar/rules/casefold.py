"""Case orbits for `(?i)` in regular expressions: the characters Go's simple case folding treats as one.

Go folds with Unicode's simple case folding (one character to one character: `k`, `K` and the Kelvin sign `K`
are one orbit). Python has only the full folding (`ß` → `ss`), so a character's key is its full folding when that
is one character, else its lower case when that is, else itself; an orbit is every character with the same key.
The inverse index is built once, on first use, over the planes that hold cased letters.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["orbit"]

_CASED_PLANES_END = 0x20000  # every cased letter of Unicode is below U+20000


def _key(char: str) -> str:
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


@lru_cache(maxsize=1)
def _members() -> dict[str, tuple[str, ...]]:
    """key → the characters with that key, for keys shared by more than one character."""
    groups: dict[str, list[str]] = {}
    for code in range(_CASED_PLANES_END):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        key = _key(char)
        if key != char or char.upper() != char or char.lower() != char:
            groups.setdefault(key, []).append(char)
    return {key: tuple(sorted(set(chars) | {key})) for key, chars in groups.items()}


@lru_cache(maxsize=8192)
def orbit(char: str) -> frozenset[str]:
    """Every character `char` matches case-insensitively (itself included)."""
    if char.isascii() and not char.isalpha():
        return frozenset((char,))
    return frozenset(_members().get(_key(char), (char,))) | {char}
