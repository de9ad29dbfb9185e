"""Input columns for the rules engine, checked and brought to one representation per type.

Callers hand in numpy arrays, pandas Series (nullable dtypes included), a DataFrame, or — for
a single replayed decision — plain lists. Each declared column becomes:

* ``number`` / ``integer``: float64, missing as NaN; infinities are refused, and so is a
  fraction in an ``integer`` column (a stored decision keeps the value as a JSON integer, and
  a replay must see what the first decision saw);
* ``fen``: int64 values with missing rows set to 0, plus a mask of the missing rows. Money
  stays integer: a float column is accepted only when every value is a whole number of fen
  within 2**53 (a CSV read into pandas turns an integer column with gaps into floats), and
  refused otherwise rather than rounded;
* ``boolean``: bool values (False where missing) plus a mask of the missing rows;
* ``string``: an object array of ``str`` (None where missing) plus the mask.

Typed columns — numpy arrays and pandas' nullable ``Int64`` / ``boolean`` / ``float64``
Series, as the feature catalogue computes them — are converted with whole-array operations;
only object columns (lists, a replayed decision's JSON values) are checked value by value, so a
100,000-row features table costs milliseconds here, not the second a per-row loop would.

A column that is absent, of the wrong length or holding values of the wrong type is an
:class:`~huinong.errors.InvalidInput` naming the column (code ``credit.rules.bad_input``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from huinong.credit.rules.expressions import BoolArray, FloatArray, ObjectArray, Value
from huinong.credit.rules.ruleset import ColumnType
from huinong.errors import InvalidInput

IntArray = npt.NDArray[np.int64]
# A value of one row as stored in a decision's JSON.
Scalar = bool | int | float | str | None
_EXACT_FLOAT = 2.0**53


def bad_input(column: str, message: str) -> InvalidInput:
    return InvalidInput("credit.rules.bad_input", f"column {column!r}: {message}", field=column)


@dataclass(frozen=True)
class Column:
    """One input column in the engine's representation."""

    type: ColumnType
    values: FloatArray | IntArray | BoolArray | ObjectArray
    missing: BoolArray | None

    def as_value(self) -> Value:
        """The column as the expression evaluator sees it."""
        if self.type is ColumnType.fen:
            numbers = self.values.astype(np.float64)
            if self.missing is not None:
                numbers[self.missing] = np.nan
            return numbers
        if self.type in (ColumnType.number, ColumnType.integer):
            return self.values  # type: ignore[return-value]
        return self.values, self.missing  # type: ignore[return-value]

    def scalar(self, row: int) -> Scalar:
        """Row ``row`` as a JSON value (None when missing)."""
        if self.missing is not None and self.missing[row]:
            return None
        value = self.values[row]
        if self.type in (ColumnType.number, ColumnType.integer):
            if math.isnan(value):
                return None
            return int(value) if self.type is ColumnType.integer else float(value)
        if self.type is ColumnType.fen:
            return int(value)
        if self.type is ColumnType.boolean:
            return bool(value)
        return str(value)


def read_columns(
    declared: Mapping[str, ColumnType], columns: Mapping[str, Any] | pd.DataFrame
) -> tuple[int, dict[str, Column]]:
    """The row count and every declared column, converted; extra columns are ignored."""
    read: dict[str, Column] = {}
    length: int | None = None
    for name, column_type in declared.items():
        if name not in columns:
            raise bad_input(name, "the rule set needs this column and it was not given")
        raw = columns[name]
        column = _convert(name, column_type, raw)
        size = len(column.values)
        if length is None:
            length = size
        elif size != length:
            raise bad_input(name, f"has {size} rows, the other columns have {length}")
        read[name] = column
    if length is None:
        length = len(columns) if isinstance(columns, pd.DataFrame) else 0
    return length, read


def _series(name: str, raw: Any) -> pd.Series:
    if isinstance(raw, pd.Series):
        return raw.reset_index(drop=True)
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1:
            raise bad_input(name, "must be one-dimensional")
        return pd.Series(raw)
    return pd.Series(list(raw), dtype=object)


def _mask(missing: BoolArray) -> BoolArray | None:
    return missing if missing.any() else None


def _convert(name: str, column_type: ColumnType, raw: Any) -> Column:
    if column_type in (ColumnType.number, ColumnType.integer):
        numbers = _numbers(name, raw)
        finite = np.isfinite(numbers) | np.isnan(numbers)
        whole = (
            finite
            if column_type is ColumnType.number
            else finite
            & (
                np.isnan(numbers)
                | ((np.floor(numbers) == numbers) & (np.abs(numbers) <= _EXACT_FLOAT))
            )
        )
        if not whole.all():
            row = int(np.flatnonzero(~whole)[0])
            wanted = "a finite number" if column_type is ColumnType.number else "a whole number"
            raise bad_input(name, f"row {row}: expected {wanted}, got {float(numbers[row])!r}")
        return Column(column_type, numbers, None)
    if column_type is ColumnType.fen:
        values, missing = _fen(name, raw)
        return Column(column_type, values, missing)
    if column_type is ColumnType.boolean:
        flags, missing = _booleans(name, raw)
        return Column(column_type, flags, missing)
    texts, missing = _strings(name, raw)
    return Column(column_type, texts, missing)


def _numbers(name: str, raw: Any) -> FloatArray:
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iuf":
        if raw.ndim != 1:
            raise bad_input(name, "must be one-dimensional")
        return raw.astype(np.float64, copy=False)
    series = _series(name, raw)
    if pd.api.types.is_bool_dtype(series.dtype) or (
        series.dtype == object and any(isinstance(v, bool | np.bool_) for v in series.dropna())
    ):
        raise bad_input(name, "expected numbers, found true/false")
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise bad_input(name, "expected numbers") from exc


def _fen(name: str, raw: Any) -> tuple[IntArray, BoolArray | None]:
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iu" and raw.ndim == 1:
        return raw.astype(np.int64, copy=False), None
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "f" and raw.ndim == 1:
        return _whole_fen(name, raw)
    series = _series(name, raw)
    missing = series.isna().to_numpy()
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64, na_value=0), _mask(missing)
    if pd.api.types.is_float_dtype(series.dtype):
        return _whole_fen(name, series.to_numpy(dtype=np.float64, na_value=np.nan))
    values = np.zeros(len(series), dtype=np.int64)
    for row, value in enumerate(series.to_numpy(dtype=object)):
        if missing[row]:
            continue
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise bad_input(name, f"row {row}: money is a whole number of fen, got {value!r}")
        values[row] = value
    return values, _mask(missing)


def _whole_fen(name: str, floats: FloatArray) -> tuple[IntArray, BoolArray | None]:
    missing = np.isnan(floats)
    present = np.where(missing, 0.0, floats)
    if not np.all(np.abs(present) <= _EXACT_FLOAT) or not np.all(np.floor(present) == present):
        row = int(
            np.flatnonzero((np.floor(present) != present) | (np.abs(present) > _EXACT_FLOAT))[0]
        )
        raise bad_input(
            name, f"row {row}: money is a whole number of fen, got {float(floats[row])!r}"
        )
    return present.astype(np.int64), _mask(missing)


def _booleans(name: str, raw: Any) -> tuple[BoolArray, BoolArray | None]:
    if isinstance(raw, np.ndarray) and raw.dtype == bool and raw.ndim == 1:
        return raw, None
    series = _series(name, raw)
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype):  # numpy bool or pandas' nullable boolean
        return series.to_numpy(dtype=bool, na_value=False), _mask(missing)
    flags = np.zeros(len(series), dtype=bool)
    for row, value in enumerate(series.to_numpy(dtype=object)):
        if missing[row]:
            continue
        if isinstance(value, bool | np.bool_) or value in (0, 1):
            flags[row] = bool(value)
        else:
            raise bad_input(name, f"row {row}: expected true or false, got {value!r}")
    return flags, _mask(missing)


def _strings(name: str, raw: Any) -> tuple[ObjectArray, BoolArray | None]:
    series = _series(name, raw)
    missing = series.isna().to_numpy()
    texts = series.to_numpy(dtype=object).copy()
    texts[missing] = None
    for row, value in enumerate(texts):
        if value is not None and not isinstance(value, str):
            raise bad_input(name, f"row {row}: expected text, got {value!r}")
    return texts, _mask(missing)
