"""Times for the rich texts: absolute in UTC (readers sit in many zones) and relative to the render's `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["dated", "relative", "span", "utc_minute"]


def _utc(moment: datetime) -> datetime:
    # A naive time is taken as UTC, as classic's go_rfc822 does.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_minute(moment: datetime) -> str:
    """`2025-01-02 15:04 UTC`: ISO order, so no reader mistakes day for month."""
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def span(delta: timedelta) -> str:
    """A duration to the minute, at most two units: `less than a minute`, `47 min`, `3 h 5 min`, `2 days 4 h`."""
    minutes = int(abs(delta).total_seconds()) // 60
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} day" if days == 1 else f"{days} days"
        return f"{text} {hours} h" if hours else text
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def relative(moment: datetime, now: datetime) -> str:
    """`in 47 min (2025-01-02 15:51 UTC)` or `5 min ago (2025-01-02 15:51 UTC)`, against the render's `now`."""
    delta = _utc(moment) - _utc(now)
    when = utc_minute(moment)
    if delta.total_seconds() >= 0:
        return f"in {span(delta)} ({when})"
    return f"{span(delta)} ago ({when})"


def dated(moment: datetime, now: datetime) -> str:
    """`2025-01-02 23:04 UTC (in 8 h)` or `2025-01-02 15:00 UTC (4 min ago)`: the date first, for "until" and "from"."""
    delta = _utc(moment) - _utc(now)
    when = utc_minute(moment)
    if delta.total_seconds() >= 0:
        return f"{when} (in {span(delta)})"
    return f"{when} ({span(delta)} ago)"
