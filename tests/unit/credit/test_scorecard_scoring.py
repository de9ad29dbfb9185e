"""Vectorized scoring against a slow per-row reference, reason codes, and PDO scaling."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.scorecards import scoring
from huinong.credit.scorecards.model import (
    Bin,
    Feature,
    Scaling,
    ScorecardInvalid,
    ScorecardModel,
    TrainingMetadata,
)
from huinong.credit.scorecards.scoring import NO_REASON, score_batch

CROPS = ("tea", "grain", "rice", "fruit", "pigs")


def bin_with(points: int, categories: tuple[str, ...] = ()) -> Bin:
    return Bin(count=10, bad_count=1, event_rate=0.1, woe=0.0, points=points, categories=categories)


def numeric(name: str, edges: tuple[float, ...], points: list[int]) -> Feature:
    """``points`` holds one entry per regular bin and the missing bin last."""
    return Feature(
        name=name,
        kind="numeric",
        coefficient=1.0,
        iv=0.1,
        edges=edges,
        bins=tuple(bin_with(p) for p in points),
    )


def categorical(
    name: str, groups: list[tuple[str, ...]], points: list[int], unseen_bin: int
) -> Feature:
    regular = [bin_with(p, group) for p, group in zip(points, groups, strict=False)]
    return Feature(
        name=name,
        kind="categorical",
        coefficient=1.0,
        iv=0.1,
        bins=(*regular, bin_with(points[-1])),
        unseen_bin=unseen_bin,
    )


def model_of(*features: Feature, base_points: int = 500) -> ScorecardModel:
    return ScorecardModel(
        name="test",
        target="bad",
        scaling=Scaling(),
        intercept=0.0,
        base_points=base_points,
        features=features,
        training=TrainingMetadata(rows=0, bad_rows=0, trained_at="", seed=0),
    )


def reference_bin(feature: Feature, value: object) -> int:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return feature.missing_bin
    if feature.kind == "numeric":
        return sum(1 for edge in feature.edges if edge <= value)  # type: ignore[operator]
    for index, bin_ in enumerate(feature.bins[:-1]):
        if str(value) in bin_.categories:
            return index
    assert feature.unseen_bin is not None
    return feature.unseen_bin


def reference_score(
    model: ScorecardModel, row: dict[str, object]
) -> tuple[int, list[tuple[int, int]]]:
    """Score and reasons ``(feature index, points lost)`` of one row, the obvious way."""
    score = model.base_points
    losses = []
    for index, feature in enumerate(model.features):
        points = feature.bins[reference_bin(feature, row[feature.name])].points
        score += points
        lost = max(b.points for b in feature.bins) - points
        if lost > 0:
            losses.append((lost, index))
    losses.sort(key=lambda pair: (-pair[0], pair[1]))
    return score, [(index, lost) for lost, index in losses[:3]]


def hand_made() -> ScorecardModel:
    return model_of(
        numeric("land_mu", (5.0, 10.0), [-10, 0, 10, -5]),  # best 10
        categorical("crop", [("tea",), ("grain", "rice")], [2, 12, 0], unseen_bin=2),  # best 12
        numeric("labour", (2.0,), [0, 10, 0]),  # best 10
        numeric("age", (30.0, 60.0), [5, 20, 0, 5]),  # best 20
    )


def test_scores_and_reasons_of_a_hand_made_model() -> None:
    model = hand_made()
    columns = {
        "land_mu": np.array([12.0, 1.0, np.nan, 7.0]),
        "crop": np.array(["grain", "tea", None, "millet"], dtype=object),
        "labour": np.array([3.0, 0.0, 1.0, 2.0]),
        "age": np.array([40.0, 70.0, 25.0, 45.0]),
    }
    result = score_batch(model, columns)
    # row 0: best bin everywhere -> no reason at all
    # row 1: land -10 (lost 20), tea 2 (lost 10), labour 0 (lost 10), age 60+ 0 (lost 20)
    # row 2: land missing -5 (lost 15), crop missing 0 (lost 12), labour 0 (lost 10),
    #        age 5 (lost 15)
    # row 3: land 0 (lost 10), unseen crop -> missing bin 0 (lost 12), labour 10, age 20
    assert result.scores.tolist() == [552, 492, 500, 530]
    assert result.reasons.tolist() == [
        [NO_REASON, NO_REASON, NO_REASON],
        [0, 3, 1],  # ties broken by feature order: land before age, crop before labour
        [0, 3, 1],
        [1, 0, NO_REASON],
    ]
    assert result.points_lost.tolist() == [[0, 0, 0], [20, 20, 10], [15, 15, 12], [12, 10, 0]]
    assert result.reasons_for(model, 3) == [("crop", 12), ("land_mu", 10)]
    assert result.reasons_for(model, 0) == []


def test_bin_edges_are_right_open_and_infinities_land_in_the_outer_bins() -> None:
    model = model_of(numeric("x", (5.0, 10.0), [1, 2, 3, 4]), base_points=0)
    values = np.array([-np.inf, 4.999, 5.0, 9.999, 10.0, np.inf, np.nan])
    assert score_batch(model, {"x": values}).scores.tolist() == [1, 1, 2, 2, 3, 3, 4]


def test_dataframe_categorical_and_integer_columns_score_like_arrays() -> None:
    model = hand_made()
    frame = pd.DataFrame(
        {
            "land_mu": pd.array([12, None, 3], dtype="Int64"),
            "crop": pd.Categorical(["rice", None, "pigs"]),
            "labour": [3, 0, 2],
            "age": [40.0, 70.0, np.nan],
        }
    )
    result = score_batch(model, frame)
    expected = [reference_score(model, row)[0] for row in frame.astype(object).to_dict("records")]
    assert result.scores.tolist() == expected == [552, 495, 505]
    as_strings = frame.assign(crop=frame["crop"].astype(object))
    assert score_batch(model, as_strings).scores.tolist() == expected


def test_integer_categories_match_their_string_form() -> None:
    model = model_of(categorical("grade", [("1",), ("2", "3")], [0, 9, 4], unseen_bin=0))
    scores = score_batch(model, {"grade": np.array([1, 3, 7])}).scores
    assert scores.tolist() == [500, 509, 500]


def test_an_invalid_model_is_refused_rather_than_scored_wrong() -> None:
    model = model_of(numeric("x", (10.0, 5.0), [1, 2, 3, 4]))
    with pytest.raises(ScorecardInvalid) as raised:
        score_batch(model, {"x": np.array([7.0])})
    assert raised.value.problems == ["features.x.edges: must be strictly increasing"]


def test_missing_or_ragged_columns_are_refused_by_name() -> None:
    model = hand_made()
    with pytest.raises(ScorecardInvalid) as raised:
        score_batch(model, {"land_mu": np.zeros(2), "labour": np.zeros(2)})
    assert raised.value.problems == ["columns.crop: missing", "columns.age: missing"]
    columns = {
        "land_mu": np.zeros(2),
        "crop": ["tea"] * 3,
        "labour": np.zeros(2),
        "age": np.zeros(2),
    }
    with pytest.raises(ScorecardInvalid, match="lengths differ"):
        score_batch(model, columns)


@st.composite
def random_model_and_rows(draw: st.DrawFn) -> tuple[ScorecardModel, dict[str, list[object]]]:
    features = []
    columns: dict[str, list[object]] = {}
    rows = draw(st.integers(1, 60))
    for position in range(draw(st.integers(1, 8))):
        name = f"f{position}"
        points = st.integers(-40, 40)
        if draw(st.booleans()):
            edges = tuple(sorted(draw(st.sets(st.integers(-20, 20).map(float), max_size=5))))
            features.append(numeric(name, edges, [draw(points) for _ in range(len(edges) + 2)]))
            value = st.one_of(
                st.integers(-25, 25).map(float),
                st.just(math.nan),
                st.sampled_from([-math.inf, math.inf]),
            )
        else:
            groups = draw(st.integers(1, 3))
            grouped = [CROPS[i:3:groups] for i in range(groups)]
            bin_points = [draw(points) for _ in range(groups + 1)]
            features.append(categorical(name, grouped, bin_points, draw(st.integers(0, groups))))
            value = st.one_of(st.sampled_from(CROPS), st.none())  # "fruit", "pigs": unseen
        columns[name] = [draw(value) for _ in range(rows)]
    return model_of(*features, base_points=draw(st.integers(0, 900))), columns


@settings(max_examples=150, deadline=None)
@given(random_model_and_rows(), st.sampled_from([3, 64, scoring.CHUNK_ROWS]))
def test_vectorized_scoring_equals_the_row_by_row_reference(
    model_and_rows: tuple[ScorecardModel, dict[str, list[object]]], chunk_rows: int
) -> None:
    model, columns = model_and_rows
    arrays = {
        feature.name: np.array(
            columns[feature.name], dtype=float if feature.kind == "numeric" else object
        )
        for feature in model.features
    }
    original = scoring.CHUNK_ROWS
    scoring.CHUNK_ROWS = chunk_rows  # exercise chunk boundaries inside small inputs
    try:
        result = score_batch(model, arrays)
    finally:
        scoring.CHUNK_ROWS = original
    for row in range(len(next(iter(columns.values())))):
        expected_score, expected_reasons = reference_score(
            model, {name: values[row] for name, values in columns.items()}
        )
        assert result.scores[row] == expected_score
        assert [
            (model.feature_names.index(n), lost) for n, lost in result.reasons_for(model, row)
        ] == (expected_reasons)


def test_scores_are_int64_and_reasons_small_integers() -> None:
    result = score_batch(
        hand_made(), {"land_mu": [1.0], "crop": ["tea"], "labour": [0.0], "age": [1.0]}
    )
    assert result.scores.dtype == np.int64
    assert result.reasons.dtype == np.int16
    assert result.reasons.shape == (1, 3)


@pytest.mark.parametrize(
    ("base_score", "base_odds", "pdo"), [(600, 50, 20), (500, 20, 40), (650, 1, 15)]
)
def test_doubling_the_odds_adds_pdo_points(base_score: float, base_odds: float, pdo: float) -> None:
    scaling = Scaling(base_score=base_score, base_odds=base_odds, pdo=pdo)
    assert scaling.score_for_odds(base_odds) == pytest.approx(base_score)
    for odds in (0.5, 3.0, base_odds, 400.0):
        assert scaling.score_for_odds(2 * odds) - scaling.score_for_odds(odds) == pytest.approx(pdo)
    log_odds_bad = math.log(1 / base_odds)  # p_bad / p_good at good:bad odds base_odds
    assert scaling.score_for_log_odds_bad(log_odds_bad) == pytest.approx(base_score)
    assert scaling.score_for_log_odds_bad(log_odds_bad - math.log(2)) == pytest.approx(
        base_score + pdo
    )


def test_default_scaling_is_600_at_50_to_1_with_20_points_to_double() -> None:
    scaling = Scaling()
    assert (scaling.base_score, scaling.base_odds, scaling.pdo) == (600, 50, 20)
    assert scaling.factor == pytest.approx(28.8539, abs=1e-4)
    assert scaling.offset == pytest.approx(600 - 28.8539 * math.log(50), abs=1e-3)


def test_scoring_a_loaded_json_model_needs_no_optbinning_or_scikit_learn() -> None:
    program = f"""
import sys
import numpy as np
from huinong.credit.scorecards.model import load_model
from huinong.credit.scorecards.scoring import score_batch
model = load_model({hand_made().to_json()!r})
row = {{"land_mu": [12.0], "crop": ["grain"], "labour": [3.0], "age": [40.0]}}
result = score_batch(model, row)
assert result.scores.tolist() == [552], result.scores
loaded = sorted(m for m in ("optbinning", "sklearn", "toad") if m in sys.modules)
assert not loaded, loaded
"""
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
