"""The feature catalogue: complete, consistent, and open to a new source without changes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from huinong.credit.features import archive, bureau, flows, household, peer_review, telematics
from huinong.credit.features.catalogue import (
    MISSING_REPRESENTATION,
    Catalogue,
    Column,
    FeaturesInvalid,
    Source,
    spec,
)
from huinong.credit.features.compute import (
    CATALOGUE,
    HOUSEHOLD_SOURCES,
    OPERATOR_SOURCES,
    compute,
    numeric_columns,
)
from huinong.credit.synthetic import synthetic_households, synthetic_operators

AS_OF = dt.date(2024, 6, 30)
UNITS = {
    "fen", "mu", "count", "ratio", "share", "months", "years", "km", "per_100km", "score", "flag",
}  # fmt: skip


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    return synthetic_households(500, seed=7, as_of=AS_OF)


def test_every_computed_column_is_documented_and_every_documented_feature_computed(
    households: pd.DataFrame,
) -> None:
    features = compute(households, as_of=AS_OF)
    documented = [f.column.name for f in CATALOGUE.features(HOUSEHOLD_SOURCES)]
    assert list(features.columns) == documented
    for feature in CATALOGUE.features(HOUSEHOLD_SOURCES):
        assert str(features[feature.column.name].dtype) == feature.column.dtype

    operators = synthetic_operators(50, seed=7, as_of=AS_OF)
    computed = compute(operators, as_of=AS_OF, sources=OPERATOR_SOURCES)
    assert list(computed.columns) == [f.column.name for f in CATALOGUE.features(["telematics"])]


def test_every_feature_is_documented_in_english_and_chinese() -> None:
    names = [f.column.name for f in CATALOGUE.features()]
    assert len(names) == len(set(names))
    assert CATALOGUE.source_names == (
        "household", "archive", "ledger", "peer_review", "bureau", "telematics",
    )  # fmt: skip
    for feature in CATALOGUE.features():
        column = feature.column
        assert re.fullmatch(r"[a-z][a-z0-9_]*", column.name)
        assert column.unit in UNITS, column.name
        assert column.meaning.isascii() and len(column.meaning) > 8, column.name
        assert not column.meaning_zh.isascii(), column.name
        assert column.missing_when, column.name
        if column.unit == "fen":
            assert column.dtype == "Int64" or column.dtype == "int64", column.name
            assert column.name.endswith("_fen"), column.name
        assert (column.unit == "flag") == (column.dtype == "boolean"), column.name
        if column.dtype == "int64":
            assert column.missing_when.startswith("never"), column.name


def test_documentation_says_how_missing_is_represented() -> None:
    records = {r["name"]: r for r in CATALOGUE.documentation()}
    assert records["total_income_fen"]["missing"].startswith(MISSING_REPRESENTATION["Int64"])
    assert records["debt_to_income"]["missing"].startswith("NaN when no income")
    assert records["flow_months_on_book"]["missing"] == "never missing"
    assert records["tele_speeding_per_100km"]["source"] == "telematics"
    assert records["age_years"]["meaning_zh"] == "户主年龄(周岁)"


def _produce_sales(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    sales = facts["produce_sales_12m_fen"]
    buyers = facts["produce_buyers_12m"].to_numpy(dtype=np.float64, na_value=np.nan)
    per_buyer = np.full(len(facts), np.nan)
    np.divide(sales.to_numpy(dtype=np.float64, na_value=np.nan), buyers, out=per_buyer,
              where=buyers > 0)  # fmt: skip
    return {"produce_sales_12m_fen": sales, "produce_sales_per_buyer": per_buyer}


PRODUCE_SALES = Source(
    "produce_sales",
    (
        spec(
            "produce_sales_12m_fen", "fen", "Int64", "produce sold at POS", "收购结算金额", "none"
        ),
        spec("produce_buyers_12m", "count", "Int64", "distinct buyers", "收购商数", "none"),
    ),
    (
        spec(
            "produce_sales_12m_fen", "fen", "Int64", "produce sold at POS", "收购结算金额", "none"
        ),
        spec("produce_sales_per_buyer", "ratio", "float64", "sales per buyer", "户均", "none"),
    ),
    _produce_sales,
)


def test_a_new_source_joins_by_registering_without_changing_the_core(
    households: pd.DataFrame,
) -> None:
    catalogue = Catalogue(CATALOGUE.source(name) for name in CATALOGUE.source_names)
    catalogue.register(PRODUCE_SALES)
    facts = households.head(3).copy()
    facts["produce_sales_12m_fen"] = pd.array([600_000, None, 0], dtype="Int64")
    facts["produce_buyers_12m"] = pd.array([3, None, 0], dtype="Int64")
    sources = [*HOUSEHOLD_SOURCES, "produce_sales"]
    features = catalogue.compute(facts, as_of=AS_OF, sources=sources)
    assert features["produce_sales_per_buyer"].iloc[0] == 200_000.0
    assert features["produce_sales_12m_fen"].isna().tolist() == [False, True, False]
    pd.testing.assert_frame_equal(
        features.drop(columns=["produce_sales_12m_fen", "produce_sales_per_buyer"]),
        compute(households.head(3), as_of=AS_OF),
    )


def test_registration_refuses_taken_and_badly_formed_names() -> None:
    catalogue = Catalogue([household.SOURCE])
    with pytest.raises(FeaturesInvalid) as taken:
        catalogue.register(household.SOURCE)
    assert taken.value.code == "credit.features.duplicate_source"
    clash = Source("other", (), (household.FEATURES[0],), lambda facts, as_of: {})
    with pytest.raises(FeaturesInvalid) as duplicate:
        catalogue.register(clash)
    assert (duplicate.value.code, duplicate.value.field) == (
        "credit.features.duplicate_name",
        "age_years",
    )
    bad = Source("bad", (), (spec("Age", "years", "Int64", "x", "年龄", "x"),), lambda f, a: {})
    with pytest.raises(FeaturesInvalid) as badly_named:
        catalogue.register(bad)
    assert badly_named.value.code == "credit.features.bad_name"


def test_a_source_that_computes_other_than_it_documents_is_refused() -> None:
    lying = Source(
        "lying",
        (),
        (spec("documented_only", "count", "Int64", "a feature", "特征", "never"),),
        lambda facts, as_of: {"undocumented": np.zeros(len(facts))},
    )
    with pytest.raises(FeaturesInvalid) as error:
        Catalogue([lying]).compute(pd.DataFrame(index=range(2)), as_of=AS_OF)
    assert error.value.code == "credit.features.catalogue_mismatch"
    wrong_dtype = Source(
        "wrong",
        (),
        (spec("a_count", "count", "Int64", "a feature", "特征", "never"),),
        lambda facts, as_of: {"a_count": np.zeros(len(facts))},
    )
    with pytest.raises(FeaturesInvalid) as dtype_error:
        Catalogue([wrong_dtype]).compute(pd.DataFrame(index=range(2)), as_of=AS_OF)
    assert dtype_error.value.field == "a_count"


def test_facts_tables_are_checked_column_by_column(households: pd.DataFrame) -> None:
    with pytest.raises(FeaturesInvalid) as missing:
        compute(households.drop(columns=["bank_debt_fen"]), as_of=AS_OF)
    assert (missing.value.code, missing.value.field) == (
        "credit.features.missing_facts",
        "bank_debt_fen",
    )
    floats = households.assign(bank_debt_fen=households["bank_debt_fen"].astype("float64"))
    with pytest.raises(FeaturesInvalid) as money_as_float:
        compute(floats, as_of=AS_OF)
    assert money_as_float.value.field == "bank_debt_fen"
    with pytest.raises(FeaturesInvalid) as mismatch:
        compute(households, as_of=dt.date(2024, 7, 1))
    assert mismatch.value.code == "credit.features.as_of_mismatch"


def test_plain_integer_facts_are_accepted_as_nullable(households: pd.DataFrame) -> None:
    plain = households.head(20).copy()
    plain.attrs = {}
    plain["member_count"] = plain["member_count"].fillna(1).astype("int64")
    features = compute(plain, as_of=AS_OF)
    assert str(features["member_count"].dtype) == "Int64"
    assert features["member_count"].tolist() == plain["member_count"].tolist()


def test_the_sources_list_their_facts_for_the_extractors() -> None:
    # Each extractor returns exactly its source's facts columns.
    extracted = {
        "household": household.household_facts(None),
        "archive": archive.archive_facts([], AS_OF),
        "ledger": flows.flow_facts([], AS_OF),
        "peer_review": peer_review.pending(),
        "bureau": bureau.bureau_facts([], AS_OF),
        "telematics": telematics.telematics_facts([], [], AS_OF),
    }
    for name, facts in extracted.items():
        assert sorted(facts) == sorted(c.name for c in CATALOGUE.source(name).facts), name


def test_numeric_columns_give_floats_with_nan_for_models_and_rules(
    households: pd.DataFrame,
) -> None:
    features = compute(households.head(50), as_of=AS_OF)
    columns = numeric_columns(features)
    assert list(columns) == list(features.columns)
    assert all(values.dtype == np.float64 for values in columns.values())
    flag = features["veto_lawsuit"]
    assert np.array_equal(np.isnan(columns["veto_lawsuit"]), flag.isna().to_numpy())
    assert columns["veto_lawsuit"][~flag.isna().to_numpy()].tolist() == [
        1.0 if v else 0.0 for v in flag.dropna()
    ]
    income = features["total_income_fen"]
    known = ~income.isna().to_numpy()
    assert columns["total_income_fen"][known].tolist() == [float(v) for v in income.dropna()]
