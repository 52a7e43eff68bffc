"""Go-style duration strings ("1m30s", "300ms", "1.5h") ↔ seconds as float.

The grammar is Go's `time.ParseDuration`: an optional sign, then one or more
`<decimal number><unit>` pairs; units are ns, us (or µs / μs), ms, s, m, h. The bare string
"0" is the only value allowed without a unit. Config files written for the Go plugin carry such
strings, so we accept exactly what Go accepts.
"""

from __future__ import annotations

import re

from sidecar.domain.errors import DurationError
from sidecar.messages_text import go_quote

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

# One `<number><unit>` pair. Go requires digits on at least one side of the dot; the unit is
# any run of non-digit, non-dot characters, checked against the table afterwards so an unknown
# unit gets its own message.
_PAIR = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")


def parse_duration(text: str) -> float:
    """Parse a Go duration string and return seconds (may be negative, like Go)."""
    if not isinstance(text, str):
        raise DurationError(f"invalid duration {text!r}: expected a string")
    quoted = go_quote(text)
    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise DurationError(f"invalid duration {quoted}")
    total = 0.0
    pos = 0
    while pos < len(rest):
        match = _PAIR.match(rest, pos)
        if match is None:
            raise DurationError(f"invalid duration {quoted}")
        number, unit = match.group(1), match.group(2)
        if not unit:
            raise DurationError(f"missing unit in duration {quoted}")
        if unit not in _UNIT_SECONDS:
            raise DurationError(f"unknown unit {go_quote(unit)} in duration {quoted}")
        total += float(number) * _UNIT_SECONDS[unit]
        pos = match.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Render seconds the way Go's `Duration.String` does: "1m30s", "1.5s", "500ms", "0s"."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        # Below one second Go picks the largest unit that keeps the integer part non-zero.
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _decimal(nanos, size) + unit
    hours, nanos = divmod(nanos, 3600 * 1_000_000_000)
    minutes, nanos = divmod(nanos, 60 * 1_000_000_000)
    text = _decimal(nanos, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, unit: int) -> str:
    """`value / unit` as a decimal without trailing zeros (exact, no float rounding)."""
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
