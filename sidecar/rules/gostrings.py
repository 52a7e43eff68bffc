"""Go's `strings.ToLower`, `ToUpper`, `ReplaceAll` and `Split` over our strings (see `values` for the encoding).

Go maps each rune with its simple (one-to-one) case mapping, and turns a byte that is not UTF-8 into U+FFFD;
Python's `str.lower`/`upper` use the full mappings (`ß` → `SS`) and context (final sigma), so we map rune by rune.
`ReplaceAll` and `Split` with a non-empty separator work on bytes, as Go's do.
"""

from __future__ import annotations

from functools import lru_cache

from sidecar.rules.values import canonical

__all__ = ["replace_all", "split", "to_lower", "to_upper"]

_REPLACEMENT = "\ufffd"


def _is_invalid_byte(char: str) -> bool:
    return "\udc80" <= char <= "\udcff"


@lru_cache(maxsize=4096)
def _lower_rune(char: str) -> str:
    if _is_invalid_byte(char):
        return _REPLACEMENT
    lowered = char.lower()
    # Only U+0130 lowers to two runes; its simple mapping is the first of them ('i').
    return lowered if len(lowered) == 1 else lowered[0]


@lru_cache(maxsize=4096)
def _upper_rune(char: str) -> str:
    if _is_invalid_byte(char):
        return _REPLACEMENT
    uppered = char.upper()
    if len(uppered) == 1:
        return uppered
    # A full mapping of several runes (ß → SS); the simple mapping, when there is one, is the title case form
    # (ᾳ → ᾼ), otherwise the rune stays as it is.
    titled = char.title()
    return titled if len(titled) == 1 else char


def to_lower(text: str) -> str:
    """`strings.ToLower`."""
    if text.isascii():
        return text.lower()
    return "".join(_lower_rune(char) for char in text)


def to_upper(text: str) -> str:
    """`strings.ToUpper`."""
    if text.isascii():
        return text.upper()
    return "".join(_upper_rune(char) for char in text)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def replace_all(text: str, old: str, new: str) -> str:
    """`strings.ReplaceAll`: an empty `old` matches before every rune and at the end."""
    if not old:
        return canonical(text.replace("", new))
    return _decode(_encode(text).replace(_encode(old), _encode(new)))


def split(text: str, sep: str) -> list[str]:
    """`strings.Split`: an empty `sep` splits into runes (and an empty text into nothing)."""
    if not sep:
        return list(text)
    return [_decode(part) for part in _encode(text).split(_encode(sep))]
