"""Synthetic households and operators: deterministic, plausible, and with a learnable label."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from huinong.credit.features.compute import OPERATOR_SOURCES, compute
from huinong.credit.synthetic import (
    LABEL,
    synthetic_features,
    synthetic_households,
    synthetic_operators,
)

AS_OF = dt.date(2024, 6, 30)


def test_the_same_seed_gives_the_same_frame() -> None:
    first = synthetic_households(2_000, seed=5, as_of=AS_OF)
    pd.testing.assert_frame_equal(first, synthetic_households(2_000, seed=5, as_of=AS_OF))
    other = synthetic_households(2_000, seed=6, as_of=AS_OF)
    assert not first["cultivated_land_mu"].equals(other["cultivated_land_mu"])
    operators = synthetic_operators(500, seed=5, as_of=AS_OF)
    pd.testing.assert_frame_equal(operators, synthetic_operators(500, seed=5, as_of=AS_OF))


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return synthetic_features(30_000, seed=3, as_of=AS_OF)


def test_households_look_rural(features: pd.DataFrame) -> None:
    land = features["cultivated_land_mu"].dropna()
    assert land.min() >= 0 and land.max() <= 50
    assert 4 <= land.median() <= 10
    assert 0.02 <= features["cultivated_land_mu"].isna().mean() <= 0.05  # no archive
    assert 0.05 <= features["total_income_fen"].isna().mean() <= 0.12
    income_yuan = features["total_income_fen"].dropna() / 100
    assert 20_000 <= income_yuan.median() <= 80_000
    assert 0.25 <= (features["bank_debt_fen"] > 0).mean() <= 0.45
    assert 0.01 <= (features["veto_count"] > 0).mean() <= 0.08
    assert features["age_years"].dropna().between(18, 80).all()
    assert 0.03 <= features[LABEL].mean() <= 0.12
    # flows are consistent: a balance never goes negative and means are integer fen
    assert (features["balance_mean_12m_fen"].dropna() >= 0).all()


def _auc(features: pd.DataFrame) -> float:
    x = features.drop(columns=[LABEL]).astype("float64")
    x = x.fillna(x.median()).fillna(0)
    x = ((x - x.mean()) / x.std().replace(0, 1)).to_numpy()
    y = features[LABEL].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    model = LogisticRegression(max_iter=1_000).fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def test_a_logistic_regression_finds_the_signal(features: pd.DataFrame) -> None:
    assert 0.7 < _auc(features) < 0.9


def test_shuffled_labels_have_no_signal(features: pd.DataFrame) -> None:
    shuffled = features.copy()
    shuffled[LABEL] = np.random.default_rng(0).permutation(shuffled[LABEL].to_numpy())
    assert _auc(shuffled) < 0.6


def test_operators_have_telematics_features_and_a_learnable_label() -> None:
    facts = synthetic_operators(20_000, seed=9, as_of=AS_OF)
    features = compute(facts, as_of=AS_OF, sources=OPERATOR_SOURCES)
    assert features["tele_km_monthly_mean"].between(1_000, 30_000).all()
    assert features["tele_harsh_braking_per_100km"].median() == pytest.approx(1.0, abs=0.2)
    assert 0.03 <= features["tele_route_score"].isna().mean() <= 0.07
    features[LABEL] = facts[LABEL].to_numpy()
    assert 0.03 <= features[LABEL].mean() <= 0.12
    assert _auc(features) > 0.7
