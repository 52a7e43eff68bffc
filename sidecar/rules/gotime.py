"""Go's `time` as far as conditions see it: instants with nanoseconds, and `time.Parse(time.RFC3339, text)`.

Go tries a strict RFC 3339 reader first and falls back to its general layout parser; the fallback accepts all the
strict reader does and a little more (a one-digit hour, a comma before the fraction, a zone offset up to 24:60),
so `parse_rfc3339` follows the fallback's rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sidecar.domain.errors import ConditionEvalError
from sidecar.rules.values import GoTime

__all__ = ["ZERO_TIME", "format_time", "from_datetime", "parse_rfc3339"]

ZERO_TIME = GoTime(0)

_NS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400
_GO_ZERO = datetime(1, 1, 1)  # naive on purpose: only differences with it are taken


_LAYOUT = "2006-01-02T15:04:05Z07:00"


def from_datetime(moment: datetime | None) -> GoTime:
    """A datetime as an instant (naive ones are taken as UTC); None is Go's zero time."""
    if moment is None:
        return ZERO_TIME
    offset = moment.utcoffset() or timedelta(0)
    delta = moment.replace(tzinfo=None) - _GO_ZERO - offset
    seconds = delta.days * _SECONDS_PER_DAY + delta.seconds
    return GoTime(seconds * _NS_PER_SECOND + delta.microseconds * 1000)


def format_time(moment: GoTime) -> str:
    """Go's `%v` of a UTC time, e.g. `2025-01-01 00:00:00 +0000 UTC` (for error messages only)."""
    seconds, nanos = divmod(moment.ns, _NS_PER_SECOND)
    days, rest = divmod(seconds, _SECONDS_PER_DAY)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}{fraction} +0000 UTC"


def parse_rfc3339(text: str) -> GoTime:
    """`time.Parse(time.RFC3339, text)`; a bad text raises ConditionEvalError with Go's message."""
    reader = _Reader(text)
    year = reader.fixed_digits(4, "2006")
    reader.literal("-")
    month = reader.number(fixed=True, element="01")
    if not 1 <= month <= 12:
        raise reader.out_of_range("month")
    reader.literal("-")
    day = reader.number(fixed=True, element="02")
    reader.literal("T")
    hour = reader.number(fixed=False, element="15")
    if hour >= 24:
        raise reader.out_of_range("hour")
    reader.literal(":")
    minute = reader.number(fixed=True, element="04")
    if minute >= 60:
        raise reader.out_of_range("minute")
    reader.literal(":")
    second = reader.number(fixed=True, element="05")
    if second >= 60:
        raise reader.out_of_range("second")
    nanos = reader.fraction()
    offset = reader.zone()
    reader.end()
    if not 1 <= day <= _days_in(month, year):
        raise ConditionEvalError(f"parsing time {_quote(text)}: day out of range")
    days = _days_from_civil(year, month, day)
    seconds = days * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    return GoTime(seconds * _NS_PER_SECOND + nanos)


class _Reader:
    """Walks the text with the layout, raising Go's errors (which quote the layout element and the rest)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rest = text

    def error(self, element: str, value: str) -> ConditionEvalError:
        return ConditionEvalError(
            f"parsing time {_quote(self.text)} as {_quote(_LAYOUT)}: cannot parse {_quote(value)} as {_quote(element)}"
        )

    def out_of_range(self, what: str) -> ConditionEvalError:
        return ConditionEvalError(f"parsing time {_quote(self.text)}: {what} out of range")

    def literal(self, char: str) -> None:
        if not self.rest.startswith(char):
            raise self.error(char, self.rest)
        self.rest = self.rest[1:]

    def fixed_digits(self, count: int, element: str) -> int:
        chunk = self.rest[:count]
        if len(chunk) < count or not _is_ascii_digit(chunk[0]) or not all(_is_ascii_digit(c) for c in chunk):
            raise self.error(element, self.rest)
        self.rest = self.rest[count:]
        return int(chunk)

    def number(self, *, fixed: bool, element: str) -> int:
        """Go's `getnum`: two digits, or one when not `fixed` and the second is not a digit."""
        rest = self.rest
        if not rest or not _is_ascii_digit(rest[0]):
            raise self.error(element, rest)
        if len(rest) < 2 or not _is_ascii_digit(rest[1]):
            if fixed:
                raise self.error(element, rest)
            self.rest = rest[1:]
            return int(rest[0])
        self.rest = rest[2:]
        return int(rest[:2])

    def fraction(self) -> int:
        """A fractional second the layout does not name: `.` or `,` then digits, kept to nanoseconds."""
        rest = self.rest
        if len(rest) < 2 or rest[0] not in ".," or not _is_ascii_digit(rest[1]):
            return 0
        end = 1
        while end < len(rest) and _is_ascii_digit(rest[end]):
            end += 1
        digits = rest[1:end][:9]
        self.rest = rest[end:]
        return int(digits.ljust(9, "0"))

    def zone(self) -> int:
        """`Z07:00`: `Z`, or a sign, two digits, a colon and two digits; the offset in seconds east of UTC."""
        rest = self.rest
        if rest.startswith("Z"):
            self.rest = rest[1:]
            return 0
        if len(rest) < 6 or rest[3] != ":":
            raise self.error("Z07:00", rest)
        sign, hours, minutes = rest[0], rest[1:3], rest[4:6]
        if not all(_is_ascii_digit(c) for c in hours + minutes) or sign not in "+-":
            raise self.error("Z07:00", rest)
        if int(hours) > 24:
            raise ConditionEvalError(f"parsing time {_quote(self.text)}: time zone offset hour out of range")
        if int(minutes) > 60:
            raise ConditionEvalError(f"parsing time {_quote(self.text)}: time zone offset minute out of range")
        self.rest = rest[6:]
        offset = int(hours) * 3600 + int(minutes) * 60
        return -offset if sign == "-" else offset

    def end(self) -> None:
        if self.rest:
            raise ConditionEvalError(f"parsing time {_quote(self.text)}: extra text: {_quote(self.rest)}")


def _is_ascii_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 0001-01-01 to the given proleptic Gregorian date (negative in year 0)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days_since_0000_03_01 = era * 146097 + doe
    return days_since_0000_03_01 - 306  # 0001-01-01 is day 306 after 0000-03-01


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The inverse of `_days_from_civil`."""
    z = days + 306
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day
