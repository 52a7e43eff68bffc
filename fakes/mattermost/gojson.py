"""JSON the way Go's `encoding/json` treats `map[string]any`: what a value looks like after the server stored it.

The real server keeps post props, button contexts and dialog submissions as `map[string]any`, so after a round
trip every number is a float64 and every object a map, which Go writes with sorted keys. `normalize` applies
that round trip to a decoded Python value; `marshal` writes bytes exactly as `json.Marshal` would (compact,
`<`, `>`, `&`, U+2028 and U+2029 escaped, Go's float format, no trailing newline).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

#: Go writes floats in positional notation between these magnitudes and in exponent notation outside them.
_POSITIONAL_MIN = 1e-6
_POSITIONAL_MAX = 1e21


def normalize(value: Any) -> Any:
    """The value as Go would hand it back after decoding it into `any`: numbers become float64 (kept as an
    int when integral, as Go prints them), objects get sorted keys. Booleans, strings and None are unchanged."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _float64(value)
    if isinstance(value, dict):
        return {str(key): normalize(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _float64(number: float) -> int | float:
    as_float = float(number)  # an int above 2**53 loses precision here, exactly as in Go
    if math.isfinite(as_float) and as_float.is_integer() and abs(as_float) < _POSITIONAL_MAX:
        # The digits Go prints (shortest form, zero-padded), so any JSON encoder writes the same text.
        return int(format_float(as_float))
    return as_float


def format_float(number: float) -> str:
    """`strconv.FormatFloat(f, 'f'|'e', -1, 64)` as encoding/json picks it."""
    if not math.isfinite(number):
        raise ValueError("JSON has no NaN or infinity")
    if number == 0:
        return "0"
    shortest = repr(number)  # Python's repr is the shortest round-trip form, as Go's -1 precision
    if _POSITIONAL_MIN <= abs(number) < _POSITIONAL_MAX:
        text = format(Decimal(shortest), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = shortest.partition("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    power = int(exponent)  # always present: repr switches to exponent form far below 1e21 and above 1e-6
    # Go writes at least one exponent digit ("1e-7"), where Python pads to two ("1e-07").
    return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power)}"


def marshal(value: Any) -> bytes:
    """`json.Marshal(value)`: dicts are written in their own order (callers sort maps with `normalize`)."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return (
        encoded.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def struct_fields(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """How Go fills a struct from a JSON object: each key picks the field of that exact name, else one that
    matches ignoring case; unknown keys are dropped; a later duplicate wins."""
    folded = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in names else folded.get(key.lower())
        if name is not None:
            out[name] = value
    return out
