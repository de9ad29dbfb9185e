"""Training on the German credit data, beside optbinning's own Scorecard on the same split."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from huinong.credit.scorecards.model import (
    Scaling,
    ScorecardInvalid,
    ScorecardModel,
    validate_model,
)
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.scorecards.tables import read_training_table
from huinong.credit.scorecards.training import (
    TrainedScorecard,
    TrainingConfig,
    train_scorecard,
)

GERMAN_CREDIT = Path(__file__).parents[2] / "data" / "germancredit.csv"
SPLIT_SEED = 42
AUC_FLOOR = 0.70
AUC_BAND_AROUND_OPTBINNING = 0.03
TRAINED_AT = datetime(2025, 5, 5, tzinfo=UTC)


def german_credit() -> pd.DataFrame:
    frame = pd.read_csv(GERMAN_CREDIT)
    frame["bad"] = (frame.pop("creditability") == "bad").astype(np.int8)
    return frame


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = german_credit()
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame["bad"], random_state=SPLIT_SEED
    )
    return train, test


@pytest.fixture(scope="module")
def trained(split: tuple[pd.DataFrame, pd.DataFrame]) -> TrainedScorecard:
    return train_scorecard(split[0], TrainingConfig(), trained_at=TRAINED_AT)


def optbinning_test_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    from optbinning import BinningProcess
    from optbinning.scorecard import Scorecard

    names = [c for c in train.columns if c != "bad"]
    categorical = [c for c in names if not pd.api.types.is_numeric_dtype(train[c])]
    scorecard = Scorecard(
        binning_process=BinningProcess(
            names, categorical_variables=categorical, selection_criteria={"iv": {"min": 0.02}}
        ),
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorecard.fit(train[names], train["bad"])
        return float(roc_auc_score(test["bad"], -scorecard.score(test[names])))


def test_german_credit_test_auc_is_in_line_with_optbinning(
    split: tuple[pd.DataFrame, pd.DataFrame], trained: TrainedScorecard
) -> None:
    train, test = split
    ours = roc_auc_score(test["bad"], -score_batch(trained.model, test).scores)
    theirs = optbinning_test_auc(train, test)
    assert ours > AUC_FLOOR
    assert abs(ours - theirs) <= AUC_BAND_AROUND_OPTBINNING, (ours, theirs)


def test_trained_model_is_valid_and_round_trips(trained: TrainedScorecard) -> None:
    model = trained.model
    assert validate_model(model) == []
    assert ScorecardModel.from_json(model.to_json()) == model
    assert model.training.rows == 700
    assert model.training.bad_rows == 210
    assert model.training.trained_at == "2025-05-05T00:00:00+00:00"
    assert dict(model.training.library_versions).keys() >= {"optbinning", "scikit-learn"}
    assert sum(model.training.score_counts) == 700
    for feature in model.features:
        assert sum(b.count for b in feature.bins) == 700
        assert sum(b.bad_count for b in feature.bins) == 210


def test_selection_keeps_informative_variables_and_explains_the_rest(
    trained: TrainedScorecard,
) -> None:
    selected = {c.name for c in trained.candidates if c.selected}
    assert set(trained.model.feature_names) == selected
    assert "status_of_existing_checking_account" in selected  # the strongest variable
    for candidate in trained.candidates:
        if candidate.iv < 0.02:
            assert not candidate.selected
            assert candidate.reason == "IV below 0.02"
    assert all(f.coefficient > 0 for f in trained.model.features)
    kinds = {f.name: f.kind for f in trained.model.features}
    assert kinds["duration_in_month"] == "numeric"
    assert kinds["purpose"] == "categorical"


def test_numeric_points_are_monotonic_over_the_regular_bins(trained: TrainedScorecard) -> None:
    for feature in trained.model.features:
        if feature.kind != "numeric":
            continue
        points = np.array([b.points for b in feature.bins[:-1]])
        steps = np.diff(points)
        assert (steps >= 0).all() or (steps <= 0).all(), (feature.name, points.tolist())


def test_points_are_the_rounded_scaled_woe(trained: TrainedScorecard) -> None:
    model = trained.model
    factor = model.scaling.factor
    assert model.base_points == round(model.scaling.offset - factor * model.intercept)
    for feature in model.features:
        for bin_ in feature.bins:
            assert abs(bin_.points - (-factor * feature.coefficient * bin_.woe)) <= 0.5


def test_woe_and_event_rate_follow_the_counts(trained: TrainedScorecard) -> None:
    feature = trained.model.features[0]
    goods, bads = 700 - 210, 210
    for bin_ in feature.bins:
        if bin_.count and 0 < bin_.bad_count < bin_.count:
            expected = math.log((bin_.bad_count / bads) / ((bin_.count - bin_.bad_count) / goods))
            assert bin_.woe == pytest.approx(expected)
        assert bin_.event_rate == (bin_.bad_count / bin_.count if bin_.count else 0.0)


def test_doubling_pdo_doubles_the_points(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    config = TrainingConfig(features=("duration_in_month", "purpose"))
    wide = TrainingConfig(features=config.features, scaling=Scaling(600, 50, 40))
    narrow_model = train_scorecard(split[0], config, trained_at=TRAINED_AT).model
    wide_model = train_scorecard(split[0], wide, trained_at=TRAINED_AT).model
    for narrow, wide_feature in zip(narrow_model.features, wide_model.features, strict=True):
        for a, b in zip(narrow.bins, wide_feature.bins, strict=True):
            assert abs(b.points - 2 * a.points) <= 1


def test_missing_values_get_their_own_bin(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train = split[0].copy()
    missing_rows = [*train.index[train["bad"] == 1][:30], *train.index[train["bad"] == 0][:10]]
    train.loc[missing_rows, "duration_in_month"] = np.nan  # riskier than average: WOE > 0
    model = train_scorecard(
        train, TrainingConfig(features=("duration_in_month",), min_iv=0.0), trained_at=TRAINED_AT
    ).model
    missing = model.features[0].bins[-1]
    assert missing.count == 40
    assert (missing.count, missing.bad_count) == (40, 30)
    assert missing.woe == pytest.approx(math.log((30 / 210) / (10 / 490)))
    assert missing.points < 0
    row = {"duration_in_month": np.array([np.nan])}
    assert score_batch(model, row).scores[0] == model.base_points + missing.points


def test_a_variable_whose_coefficient_turns_negative_is_dropped() -> None:
    # b is riskier on its own (IV > 0.02) but, given a, works against it: a suppressor.
    rng = np.random.default_rng(3)
    z, e = rng.normal(size=5000), rng.normal(size=5000)
    a = z + e
    bad = (rng.random(5000) < 1 / (1 + np.exp(-(2 * a - 1.5 * z - 1)))).astype(int)
    frame = pd.DataFrame({"a": a, "b": z, "bad": bad})
    trained = train_scorecard(frame, TrainingConfig(max_correlation=1.0), trained_at=TRAINED_AT)
    assert trained.model.feature_names == ("a",)
    dropped = trained.candidates[1]
    assert (dropped.name, dropped.selected, dropped.reason) == (
        "b",
        False,
        "non-positive coefficient",
    )
    assert dropped.iv > 0.02


def test_bad_training_input_is_refused_with_every_problem() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "bad": [0, 2, 1]})
    with pytest.raises(ScorecardInvalid) as raised:
        train_scorecard(frame, TrainingConfig(min_iv=-1, max_features=0, features=("x", "y")))
    assert raised.value.problems == [
        "min_iv: must not be negative",
        "max_features: must be at least 1",
        "bad: row 1 is not 0 or 1 (1 rows)",
        "columns.y: missing",
    ]
    with pytest.raises(ScorecardInvalid, match="the target column is missing"):
        train_scorecard(frame.drop(columns="bad"), TrainingConfig())


def test_training_tables_are_read_from_csv_and_parquet(tmp_path: Path) -> None:
    frame = german_credit().head(50)
    frame.to_csv(tmp_path / "table.csv", index=False)
    frame.to_parquet(tmp_path / "table.parquet", index=False)
    for name in ("table.csv", "table.parquet"):
        read = read_training_table(tmp_path / name)
        assert read.shape == (50, 21)
        assert read["credit_amount"].tolist() == frame["credit_amount"].tolist()
    with pytest.raises(ScorecardInvalid, match=r"neither \.csv nor \.parquet"):
        read_training_table(tmp_path / "table.xlsx")
