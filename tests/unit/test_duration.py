"""sidecar.duration: Go's time.ParseDuration grammar and Duration.String rendering."""

from __future__ import annotations

import pytest

from sidecar.domain.errors import DurationError
from sidecar.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("-0", 0.0),
        ("+0", 0.0),
        ("0s", 0.0),
        ("5s", 5.0),
        ("30s", 30.0),
        ("1478s", 1478.0),
        ("-5s", -5.0),
        ("+5s", 5.0),
        ("5.0s", 5.0),
        ("5.6s", 5.6),
        ("5.s", 5.0),
        (".5s", 0.5),
        ("1.004s", 1.004),
        ("100.00100s", 100.001),
        ("10ns", 10e-9),
        ("11us", 11e-6),
        ("12µs", 12e-6),  # micro sign
        ("12μs", 12e-6),  # greek mu
        ("13ms", 0.013),
        ("15m", 900.0),
        ("16h", 57600.0),
        ("3h30m", 12600.0),
        ("1m30s", 90.0),
        ("10.5s4m", 250.5),
        ("-2m3.4s", -123.4),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("39h9m14.425s", 140954.425),
        ("52763797000ns", 52.763797),
        ("1.5h", 5400.0),
    ],
)
def test_parse_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'invalid duration ""'),
        ("-", 'invalid duration "-"'),
        ("s", 'invalid duration "s"'),
        (".", 'invalid duration "."'),
        ("-.", 'invalid duration "-."'),
        (".s", 'invalid duration ".s"'),
        ("+.s", 'invalid duration "+.s"'),
        ("1m 30s", 'unknown unit "m " in duration "1m 30s"'),
        ("3", 'missing unit in duration "3"'),
        ("1m3", 'missing unit in duration "1m3"'),
        ("1.0.0s", 'missing unit in duration "1.0.0s"'),
        ("1d", 'unknown unit "d" in duration "1d"'),
        ("1h-5m", 'unknown unit "h-" in duration "1h-5m"'),
        ("5S", 'unknown unit "S" in duration "5S"'),
        ("\n1s", 'invalid duration "\\n1s"'),
    ],
)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(DurationError):
        parse_duration(5)  # type: ignore[arg-type]


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (60.0, "1m0s"),
        (90.0, "1m30s"),
        (3600.0, "1h0m0s"),
        (9000.0, "2h30m0s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (1e-6, "1µs"),
        (1e-9, "1ns"),
        (-90.0, "-1m30s"),
        (141014.425, "39h10m14.425s"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.25, 1.0, 59.999, 61.5, 3723.004005006, 86400.0, -7.5])
def test_round_trip(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)
