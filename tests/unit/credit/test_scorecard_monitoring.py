"""PSI of the score and the features, on the model's own bins, with the conventional bands."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.credit.scorecards.model import ScorecardInvalid
from huinong.credit.scorecards.monitoring import (
    PSI_SIGNIFICANT_ABOVE,
    PSI_STABLE_BELOW,
    psi,
    psi_band,
    stability_report,
)
from huinong.credit.scorecards.training import TrainedScorecard, TrainingConfig, train_scorecard

GERMAN_CREDIT = Path(__file__).parents[2] / "data" / "germancredit.csv"


@pytest.fixture(scope="module")
def frame_and_model() -> tuple[pd.DataFrame, TrainedScorecard]:
    frame = pd.read_csv(GERMAN_CREDIT)
    frame["bad"] = (frame.pop("creditability") == "bad").astype(np.int8)
    trained = train_scorecard(frame, TrainingConfig(), trained_at=datetime(2025, 5, 5, tzinfo=UTC))
    return frame, trained


def test_bands_are_the_conventional_ones() -> None:
    assert (PSI_STABLE_BELOW, PSI_SIGNIFICANT_ABOVE) == (0.10, 0.25)
    assert psi_band(0.0) == "stable"
    assert psi_band(0.0999) == "stable"
    assert psi_band(0.10) == "monitor"
    assert psi_band(0.25) == "monitor"
    assert psi_band(0.2501) == "significant"


def test_psi_by_hand() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert psi([50, 50], [500, 500]) == 0.0


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=10), st.integers(1, 5))
def test_psi_is_zero_for_proportional_counts_and_never_negative(
    counts: list[int], scale: int
) -> None:
    if sum(counts) == 0:
        return
    assert psi(counts, [c * scale for c in counts]) == pytest.approx(0.0, abs=1e-12)
    assert psi(counts, list(reversed(counts))) >= 0.0


def test_psi_refuses_mismatched_or_empty_counts() -> None:
    with pytest.raises(ScorecardInvalid):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ScorecardInvalid):
        psi([0, 0], [1, 2])


def test_training_population_is_stable_against_itself(
    frame_and_model: tuple[pd.DataFrame, TrainedScorecard],
) -> None:
    frame, trained = frame_and_model
    report = stability_report(trained.model, frame)
    assert [s.name for s in report] == ["score", *trained.model.feature_names]
    for stability in report:
        assert stability.psi == pytest.approx(0.0, abs=1e-12)
        assert stability.band == "stable"
        assert stability.actual_counts == stability.expected_counts


def test_a_shifted_feature_is_flagged_and_the_others_are_not(
    frame_and_model: tuple[pd.DataFrame, TrainedScorecard],
) -> None:
    frame, trained = frame_and_model
    shifted = frame.assign(duration_in_month=frame["duration_in_month"] + 24)
    report = {s.name: s for s in stability_report(trained.model, shifted)}
    assert report["duration_in_month"].band == "significant"
    assert report["duration_in_month"].psi > PSI_SIGNIFICANT_ABOVE
    assert report["purpose"].psi == pytest.approx(0.0, abs=1e-12)
    assert report["score"].psi > report["purpose"].psi
    assert sum(report["score"].actual_counts) == len(frame)
