"""The one source of "now".

Code asks :func:`now` (UTC, timezone-aware) instead of ``datetime.now()`` so that tests and
batch jobs (the demo's history, close of business) can set the time. :func:`frozen` pins the
clock inside a ``with`` block; it is process-wide, which is what a test of expiry or of close
of business wants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

DISPLAY_TIMEZONE = ZoneInfo("Asia/Shanghai")

_pinned: datetime | None = None


def now() -> datetime:
    if _pinned is not None:
        return _pinned
    return datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    global _pinned
    if at.tzinfo is None:
        raise ValueError("the clock takes timezone-aware datetimes only")
    previous = _pinned
    _pinned = at.astimezone(UTC)
    try:
        yield
    finally:
        _pinned = previous


def local_date(moment: datetime):
    """The calendar date in the display timezone (what a teller calls "today")."""
    return moment.astimezone(DISPLAY_TIMEZONE).date()


def start_of_local_day(day: date) -> datetime:
    """The UTC moment a calendar day begins in the display timezone."""
    return datetime.combine(day, time(), DISPLAY_TIMEZONE).astimezone(UTC)
