"""The rule-set column catalogue derived from the feature catalogue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
import pytest

from huinong.credit.features.catalogue import Catalogue, Column, ColumnSpec, Source, spec
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.rules import ColumnType, catalogue_columns
from huinong.errors import InvalidInput


def test_every_feature_of_the_real_catalogue_maps_and_score_is_added() -> None:
    columns = catalogue_columns(CATALOGUE)
    names = [feature.column.name for feature in CATALOGUE.features()]
    assert list(columns) == [*names, "score"]
    assert columns["score"] is ColumnType.number


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("assets_fen", ColumnType.fen),
        ("total_income_fen", ColumnType.fen),
        ("bureau_blacklisted", ColumnType.boolean),
        ("entity_family_farm", ColumnType.boolean),
        ("age_years", ColumnType.integer),  # Int64
        ("flow_months_on_book", ColumnType.integer),  # int64, never missing
        ("peer_recommend_share", ColumnType.number),
        ("debt_to_income", ColumnType.number),
    ],
)
def test_types_of_real_features(name: str, expected: ColumnType) -> None:
    assert catalogue_columns(CATALOGUE)[name] is expected


def test_money_of_every_dtype_is_fen_and_every_fen_feature_is_money() -> None:
    columns = catalogue_columns(CATALOGUE)
    for feature in CATALOGUE.features():
        is_fen = columns[feature.column.name] is ColumnType.fen
        assert is_fen == (feature.column.unit == "fen"), feature.column.name


def _catalogue(*features: ColumnSpec) -> Catalogue:
    def compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
        return {}

    return Catalogue([Source("test", (), features, compute)])


def test_unit_decides_money_dtype_the_rest_and_dates_are_left_out() -> None:
    catalogue = _catalogue(
        spec("paid_fen", "fen", "int64", "paid", "已付", "never"),
        spec("tenure_months", "months", "int64", "tenure", "在册月数", "never"),
        spec("opened_on", "date", "datetime64[s]", "opened", "开户日期", "no account"),
        spec("member", "flag", "boolean", "member", "成员", "no archive"),
    )
    assert catalogue_columns(catalogue) == {
        "paid_fen": ColumnType.fen,
        "tenure_months": ColumnType.integer,
        "member": ColumnType.boolean,
        "score": ColumnType.number,
    }


def test_a_feature_named_score_is_refused() -> None:
    catalogue = _catalogue(spec("score", "score", "float64", "a score", "评分", "never"))
    with pytest.raises(InvalidInput) as raised:
        catalogue_columns(catalogue)
    assert raised.value.code == "credit.rules.catalogue_conflict"
    assert raised.value.field == "score"
