"""Strict readers for the seed's TOML values: each names the file and the entry in its error (a SeedError)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class SeedError(ValueError):
    """The seed file is malformed; the message names the file and the entry."""


def parse_duration(value: object, where: str) -> timedelta:
    """Parse "1h30m"/"90s"-style strings or integer seconds."""
    if isinstance(value, bool):
        raise SeedError(f"{where}: expected a duration, got a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise SeedError(f"{where}: duration must be positive, got {value}")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groupdict().values()):
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            result = timedelta(hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))
            if result > timedelta(0):
                return result
        raise SeedError(f'{where}: invalid duration {value!r} (use e.g. "1h", "30m", "90s" or seconds)')
    raise SeedError(f"{where}: expected a duration, got {type(value).__name__}")


def check_keys(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuse keys outside `allowed`."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SeedError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def as_table(value: object, where: str) -> dict[str, Any]:
    """`value` as a table."""
    if not isinstance(value, dict):
        raise SeedError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def table(body: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """The table under `key` (empty when absent)."""
    return as_table(body.get(key, {}), f"{where} {key}")


def items(body: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """The list under `key` (empty when absent)."""
    value = body.get(key, [])
    if not isinstance(value, list):
        raise SeedError(f"{where} {key}: expected a list, got {type(value).__name__}")
    return value


def strings(body: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """The list of non-empty strings under `key`."""
    values = items(body, key, where)
    for v in values:
        if not isinstance(v, str) or not v:
            raise SeedError(f"{where} {key}: expected non-empty strings, got {v!r}")
    return tuple(values)


def text(body: Mapping[str, Any], key: str, where: str) -> str:
    """The string under `key` ("" when absent)."""
    value = body.get(key, "")
    if not isinstance(value, str):
        raise SeedError(f"{where} {key}: expected a string, got {type(value).__name__}")
    return value


def flag(body: Mapping[str, Any], key: str, where: str) -> bool:
    """The boolean under `key` (false when absent)."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise SeedError(f"{where} {key}: expected true or false, got {value!r}")
    return value


def count(value: object, where: str) -> int:
    """A positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SeedError(f"{where}: expected a positive integer, got {value!r}")
    return value


def string_map(body: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    """The table of strings under `key` (labels)."""
    found = table(body, key, where)
    for name in found:
        if not isinstance(found[name], str):
            raise SeedError(f"{where} {key}.{name}: expected a string, got {found[name]!r}")
    return dict(found)
