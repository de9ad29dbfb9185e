"""The feature catalogue: every feature documented, every source registered the same way.

A *source* (the household archive, the ledger, the peer review, a bureau file, telematics, …)
contributes two things and nothing else:

* the **facts columns** it adds to the facts table (one row per household or operator) — the
  raw, as-of-dated figures its extractor reads from already-fetched data;
* the **features** it derives from those facts, with one vectorized function
  ``compute(facts, as_of) -> {feature name: column}`` over the whole table.

Both are lists of :class:`ColumnSpec`: name (snake_case), meaning in English and Chinese, unit,
dtype, and when the value is missing. The dtype fixes how missing is represented, once for all
sources (:data:`MISSING_REPRESENTATION`):

* ``Int64`` — pandas' nullable integer, for money (fen) and counts: exact int64 values with a
  mask, so a missing income is ``<NA>`` and never a 0 nor a float;
* ``float64`` — ratios, shares, areas, rates and scores (not money), missing as ``NaN``;
* ``boolean`` — pandas' nullable boolean for flags, missing as ``<NA>``;
* ``int64`` — counts that are never missing (e.g. months on book, 0 when there is no account);
* ``datetime64[s]`` — dates in the facts table, missing as ``NaT``.

The :class:`Catalogue` holds the registered sources, refuses a name used twice, and computes
the features table: it checks the facts columns of the chosen sources are present with their
declared dtypes (:class:`FeaturesInvalid` naming the column), calls each source and checks the
result is exactly the documented features with their dtypes — so the catalogue cannot drift from
the code. The core never names a source: a new one (e.g. produce sales settled at POS) is a new
module with its own ``SOURCE`` that is registered, and nothing here changes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from huinong.errors import InvalidInput

Unit = Literal[
    "fen", "mu", "count", "ratio", "share", "months", "years", "km", "per_100km", "score",
    "flag", "date",
]  # fmt: skip
Dtype = Literal["Int64", "float64", "boolean", "int64", "datetime64[s]"]

MISSING_REPRESENTATION: Mapping[str, str] = {
    "Int64": "<NA> (pandas nullable integer)",
    "float64": "NaN",
    "boolean": "<NA> (pandas nullable boolean)",
    "int64": "never missing",
    "datetime64[s]": "NaT",
}
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Money is exact: a float column where integer fen or a count is declared is refused, even
# when its values happen to be whole.
_INTEGER_DTYPES = ("Int64", "int64")


class FeaturesInvalid(InvalidInput):
    """A catalogue or a facts table that breaks the rules; ``field`` names the column."""


@dataclass(frozen=True)
class ColumnSpec:
    """One documented column of the facts table or of the features table."""

    name: str
    meaning: str
    meaning_zh: str
    unit: Unit
    dtype: Dtype
    missing_when: str  # when the value is missing ("never" for int64)

    @property
    def missing_value(self) -> str:
        return MISSING_REPRESENTATION[self.dtype]


def spec(
    name: str, unit: Unit, dtype: Dtype, meaning: str, meaning_zh: str, missing_when: str
) -> ColumnSpec:
    """A :class:`ColumnSpec` in the order the tables of the source modules read best."""
    return ColumnSpec(name, meaning, meaning_zh, unit, dtype, missing_when)


Column = pd.api.extensions.ExtensionArray | np.ndarray | pd.Series
ComputeFunction = Callable[[pd.DataFrame, dt.date], Mapping[str, Column]]


class FeatureSource(Protocol):
    """What a source registers: its facts columns, its features, and how to compute them."""

    @property
    def name(self) -> str: ...

    @property
    def facts(self) -> Sequence[ColumnSpec]: ...

    @property
    def features(self) -> Sequence[ColumnSpec]: ...

    def compute(self, facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]: ...


@dataclass(frozen=True)
class Source:
    """The plain implementation of :class:`FeatureSource` the built-in sources use."""

    name: str
    facts: tuple[ColumnSpec, ...]
    features: tuple[ColumnSpec, ...]
    compute_function: ComputeFunction

    def compute(self, facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
        return self.compute_function(facts, as_of)


@dataclass(frozen=True)
class Feature:
    """A feature as the catalogue lists it: its column and the source it comes from."""

    source: str
    column: ColumnSpec


class Catalogue:
    """The registered sources, in registration order."""

    def __init__(self, sources: Iterable[FeatureSource] = ()) -> None:
        self._sources: dict[str, FeatureSource] = {}
        for source in sources:
            self.register(source)

    def register(self, source: FeatureSource) -> None:
        """Add a source; refuses a source, fact or feature name that is taken or not
        snake_case. A source may pass a fact through as a feature of the same name."""
        if source.name in self._sources:
            raise FeaturesInvalid(
                "credit.features.duplicate_source", f"the source {source.name} is registered"
            )
        for kind, columns in (("facts", source.facts), ("features", source.features)):
            names = [c.name for c in columns]
            for name in names:
                if not _SNAKE_CASE.fullmatch(name):
                    raise FeaturesInvalid(
                        "credit.features.bad_name", f"{name} is not snake_case", field=name
                    )
                if names.count(name) > 1:
                    raise FeaturesInvalid(
                        "credit.features.duplicate_name",
                        f"{source.name} lists {name} twice in its {kind}",
                        field=name,
                    )
        own = {c.name for c in (*source.facts, *source.features)}
        for other in self._sources.values():
            taken = own & {c.name for c in (*other.facts, *other.features)}
            if taken:
                raise FeaturesInvalid(
                    "credit.features.duplicate_name",
                    f"{', '.join(sorted(taken))} already belong(s) to the source {other.name}",
                    field=sorted(taken)[0],
                )
        self._sources[source.name] = source

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(self._sources)

    def source(self, name: str) -> FeatureSource:
        try:
            return self._sources[name]
        except KeyError:
            raise FeaturesInvalid(
                "credit.features.unknown_source",
                f"no source {name}; registered: {', '.join(self._sources)}",
                field="sources",
            ) from None

    def features(self, sources: Iterable[str] | None = None) -> tuple[Feature, ...]:
        return tuple(
            Feature(source.name, column)
            for source in self._chosen(sources)
            for column in source.features
        )

    def feature(self, name: str) -> Feature:
        for feature in self.features():
            if feature.column.name == name:
                return feature
        raise FeaturesInvalid("credit.features.unknown_feature", f"no feature {name}", field=name)

    def facts_columns(self, sources: Iterable[str] | None = None) -> tuple[ColumnSpec, ...]:
        return tuple(column for source in self._chosen(sources) for column in source.facts)

    def documentation(self, sources: Iterable[str] | None = None) -> list[dict[str, str]]:
        """One JSON-able record per feature, for reports and the API."""
        return [
            {
                "name": f.column.name,
                "source": f.source,
                "meaning": f.column.meaning,
                "meaning_zh": f.column.meaning_zh,
                "unit": f.column.unit,
                "dtype": f.column.dtype,
                "missing": f"{f.column.missing_value} when {f.column.missing_when}"
                if f.column.dtype != "int64"
                else "never missing",
            }
            for f in self.features(sources)
        ]

    def compute(
        self, facts: pd.DataFrame, *, as_of: dt.date, sources: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """The features table of ``facts`` (same index), in catalogue order.

        One household is a one-row frame and a million households a million-row frame: the
        path is the same. ``as_of`` must be the date the facts were extracted for; a frame
        built by :func:`~huinong.credit.features.facts.facts_frame` carries it and is checked.
        """
        chosen = self._chosen(sources)
        recorded = facts.attrs.get("as_of")
        if recorded is not None and recorded != as_of:
            raise FeaturesInvalid(
                "credit.features.as_of_mismatch",
                f"the facts were extracted as of {recorded}, not {as_of}",
                field="as_of",
            )
        typed = conform(facts, [c for s in chosen for c in s.facts])
        columns: dict[str, Column] = {}
        for source in chosen:
            produced = source.compute(typed, as_of)
            declared = [c.name for c in source.features]
            if sorted(produced) != sorted(declared):
                raise FeaturesInvalid(
                    "credit.features.catalogue_mismatch",
                    f"{source.name} computed {sorted(set(produced) ^ set(declared))} "
                    "differently from its catalogue",
                )
            for column in source.features:
                columns[column.name] = _checked(produced[column.name], column, len(facts))
        return pd.DataFrame(columns, index=facts.index, copy=False)

    def _chosen(self, sources: Iterable[str] | None) -> list[FeatureSource]:
        if sources is None:
            return list(self._sources.values())
        return [self.source(name) for name in sources]


def conform(facts: pd.DataFrame, columns: Sequence[ColumnSpec]) -> pd.DataFrame:
    """The declared facts columns of ``facts`` with their declared dtypes (a view where they
    already have them), or :class:`FeaturesInvalid` naming the first column that is absent or
    cannot hold its dtype exactly."""
    converted: dict[str, pd.Series] = {}
    for column in columns:
        if column.name not in facts.columns:
            raise FeaturesInvalid(
                "credit.features.missing_facts",
                f"the facts table has no column {column.name}",
                field=column.name,
            )
        values = facts[column.name]
        if str(values.dtype) != column.dtype:
            if column.dtype in _INTEGER_DTYPES and pd.api.types.is_float_dtype(values.dtype):
                raise FeaturesInvalid(
                    "credit.features.bad_facts",
                    f"{column.name} is {column.unit} as integers, not floats",
                    field=column.name,
                )
            try:
                values = values.astype(column.dtype)
            except (TypeError, ValueError) as exc:
                raise FeaturesInvalid(
                    "credit.features.bad_facts",
                    f"{column.name} cannot be read as {column.dtype}: {exc}",
                    field=column.name,
                ) from None
            converted[column.name] = values
    if not converted:
        return facts
    typed = facts.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    for name, values in converted.items():
        typed[name] = values
    return typed


def _checked(values: Column, column: ColumnSpec, rows: int) -> Column:
    if len(values) != rows or str(values.dtype) != column.dtype:
        raise FeaturesInvalid(
            "credit.features.catalogue_mismatch",
            f"{column.name} came out as {values.dtype} x {len(values)}, "
            f"not {column.dtype} x {rows}",
            field=column.name,
        )
    return values.array if isinstance(values, pd.Series) else values
