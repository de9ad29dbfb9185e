"""The column catalogue a rule set is checked against: the feature catalogue, in rule types.

:func:`~huinong.credit.rules.ruleset.parse_ruleset` accepts a catalogue of the columns the
platform can supply, so that a rule set asking for a column nobody computes — or reading a
flag as a number — is refused when it is uploaded, not when the first batch fails.
:func:`catalogue_columns` derives that catalogue from the feature catalogue
(:mod:`huinong.credit.features.catalogue`), so the two cannot drift apart::

    from huinong.credit.features.compute import CATALOGUE
    ruleset = parse_ruleset(document, catalogue=catalogue_columns(CATALOGUE))

Decisions:

* **The unit decides money, the dtype the rest.** A feature whose unit is ``fen`` is ``fen``
  whatever its dtype (``Int64`` with gaps or ``int64`` never missing), so limit terms and caps
  may use it; otherwise ``boolean`` → ``boolean``, ``Int64``/``int64`` → ``integer``,
  ``float64`` → ``number``, text → ``string``.
* **Dates are left out.** The condition language has no date type; a rule that needs time
  uses a duration feature (``bureau_report_age_months``), so a date column is simply not
  available to rules rather than mistyped.
* **``score`` is added** as a ``number``: the scorecard's points are not a feature of the
  catalogue but every rule set grades by them. A feature of that name would be ambiguous and
  is refused (``credit.rules.catalogue_conflict``).
"""

from __future__ import annotations

from huinong.credit.features.catalogue import Catalogue, ColumnSpec
from huinong.credit.rules.ruleset import ColumnType
from huinong.errors import InvalidInput

SCORE_COLUMN = "score"
_BY_DTYPE: dict[str, ColumnType] = {
    "boolean": ColumnType.boolean,
    "bool": ColumnType.boolean,
    "Int64": ColumnType.integer,
    "int64": ColumnType.integer,
    "float64": ColumnType.number,
    "string": ColumnType.string,
    "object": ColumnType.string,
}


def column_type(column: ColumnSpec) -> ColumnType | None:
    """The rule-set type of one catalogue column; None for a type rules cannot read (dates)."""
    if column.unit == "fen":
        return ColumnType.fen
    return _BY_DTYPE.get(column.dtype)


def catalogue_columns(catalogue: Catalogue) -> dict[str, ColumnType]:
    """Every feature of ``catalogue`` that rules can read, with its type, plus ``score``."""
    columns: dict[str, ColumnType] = {}
    for feature in catalogue.features():
        found = column_type(feature.column)
        if found is not None:
            columns[feature.column.name] = found
    if SCORE_COLUMN in columns:
        raise InvalidInput(
            "credit.rules.catalogue_conflict",
            f"the feature catalogue has a feature named {SCORE_COLUMN!r}, the scorecard's column",
            field=SCORE_COLUMN,
        )
    columns[SCORE_COLUMN] = ColumnType.number
    return columns
