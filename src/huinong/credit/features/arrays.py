"""Small vectorized helpers the sources share: nullable columns, exact means, calendar arithmetic.

Money stays integer: a mean of fen is rounded once, ROUND_HALF_UP (half away from zero, like
``Decimal``), in integer arithmetic, so the mean of 1 and 2 fen is 2 fen on every platform.
Dates are read as day numbers and whole months or years elapsed are found by a binary search
among the as-of date's own anniversaries (one per period back), so a million ages cost a few
milliseconds and no per-row calendar arithmetic. A period is complete when the date is on or
before the as-of date moved back that many periods, the day clamped to the shorter month: born
on 29 February, one turns a year older on 1 March in common years, and as of 29 February 2024
a survey of 31 January 2024 is not yet a month old.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

IntArray = pd.arrays.IntegerArray
BoolArray = pd.arrays.BooleanArray


def ints(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The int64 values of a nullable integer column (0 where missing) and its missing mask."""
    missing = series.isna().to_numpy()
    return series.to_numpy(dtype=np.int64, na_value=0), missing


def floats(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing (for ratios, never for money)."""
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def nullable_int(values: np.ndarray, missing: np.ndarray) -> IntArray:
    return IntArray(np.asarray(values, dtype=np.int64), np.asarray(missing, dtype=bool))


def nullable_bool(values: np.ndarray, missing: np.ndarray) -> BoolArray:
    return BoolArray(np.asarray(values, dtype=bool), np.asarray(missing, dtype=bool))


def mean_fen(total: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``total / count`` rounded half away from zero, as int64 fen; missing where count is 0."""
    missing = count <= 0
    divisor = np.where(missing, 1, count).astype(np.int64)
    magnitude = (2 * np.abs(total) + divisor) // (2 * divisor)
    return np.where(missing, 0, np.sign(total) * magnitude), missing


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64; NaN where the denominator is 0 or missing."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    usable = np.isfinite(denominator) & (denominator != 0)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=usable)
    return out


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY = 86_400


def day_numbers(dates: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of a date column (0 where missing) and its missing mask."""
    values = dates.to_numpy(dtype="datetime64[s]")
    missing = np.isnat(values)
    days = np.where(missing, 0, values.view(np.int64) // _SECONDS_PER_DAY)
    return days, missing


def _shifted(as_of: dt.date, months_back: int) -> dt.date:
    """``as_of`` moved back whole months, the day clamped to the target month's length."""
    index = as_of.year * 12 + as_of.month - 1 - months_back
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, min(as_of.day, calendar.monthrange(year, month)[1]))


def _completed(
    days: np.ndarray, missing: np.ndarray, as_of: dt.date, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """How many whole periods of ``step`` months lie between each day and ``as_of``.

    A date completes ``p`` periods when it is on or before ``as_of`` moved back ``p`` periods
    (day clamped: as of 28 February 2023, someone born on 29 February 2020 is 2, not 3), so
    the count is a binary search among those thresholds — no calendar arithmetic per row.
    """
    earliest = int(days[~missing].min()) if (~missing).any() else 0
    thresholds: list[int] = []
    periods = 0
    while True:
        threshold = _shifted(as_of, periods * step).toordinal() - _EPOCH_ORDINAL
        thresholds.append(threshold)
        if threshold < earliest:
            break
        periods += 1
    ascending = np.array(thresholds[::-1], dtype=np.int64)
    completed = len(ascending) - np.searchsorted(ascending, days, side="left") - 1
    missing = missing | (completed < 0)
    return np.where(missing, 0, completed), missing


def whole_months_since(dates: pd.Series, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Completed months from each date to ``as_of`` and a mask of the missing (or later)
    dates: 2024-01-31 to 2024-02-29 is 0 months, to 2024-03-31 is 2."""
    return _completed(*day_numbers(dates), as_of, 1)


def whole_years_since(dates: pd.Series, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Completed years from each date to ``as_of`` (an age), with the missing mask."""
    return _completed(*day_numbers(dates), as_of, 12)
