"""The training report: metrics against brute force, tables and a self-contained HTML page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from huinong.credit.scorecards.report import (
    discrimination,
    report_html,
    score_bands,
    training_report,
)
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.scorecards.training import TrainedScorecard, TrainingConfig, train_scorecard

GERMAN_CREDIT = Path(__file__).parents[2] / "data" / "germancredit.csv"


@pytest.fixture(scope="module")
def trained_and_split() -> tuple[TrainedScorecard, pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(GERMAN_CREDIT)
    frame["bad"] = (frame.pop("creditability") == "bad").astype(np.int8)
    train, test = train_test_split(frame, test_size=0.3, stratify=frame["bad"], random_state=42)
    config = TrainingConfig(name="german<credit>")
    trained = train_scorecard(train, config, trained_at=datetime(2025, 5, 5, tzinfo=UTC))
    return trained, train, test


def brute_force_ks(bad: np.ndarray, scores: np.ndarray) -> float:
    """Largest gap between the cumulative shares of bads and goods at or below a cut-off."""
    gaps = [
        abs((scores[bad == 1] <= cut).mean() - (scores[bad == 0] <= cut).mean())
        for cut in np.unique(scores)
    ]
    return max(gaps)


def brute_force_auc(bad: np.ndarray, scores: np.ndarray) -> float:
    """Share of (bad, good) pairs where the bad scores lower; ties count half."""
    bad_scores, good_scores = scores[bad == 1], scores[bad == 0]
    lower = (bad_scores[:, None] < good_scores[None, :]).mean()
    tied = (bad_scores[:, None] == good_scores[None, :]).mean()
    return float(lower + tied / 2)


def test_metrics_equal_brute_force() -> None:
    rng = np.random.default_rng(5)
    bad = (rng.random(400) < 0.3).astype(int)
    scores = rng.integers(400, 700, 400) - 40 * bad
    metrics = discrimination(bad, scores)
    assert metrics["auc"] == pytest.approx(brute_force_auc(bad, scores))
    assert metrics["ks"] == pytest.approx(brute_force_ks(bad, scores))
    assert metrics["gini"] == pytest.approx(2 * metrics["auc"] - 1)


def test_score_bands_are_aligned_and_count_every_row() -> None:
    bands = score_bands([0, 1, 0, 1, 0], [599, 600, 619, 620, 655], band_width=20)
    assert bands == [
        {"lower": 580, "upper": 600, "count": 1, "bads": 0, "bad_rate": 0.0},
        {"lower": 600, "upper": 620, "count": 2, "bads": 1, "bad_rate": 0.5},
        {"lower": 620, "upper": 640, "count": 1, "bads": 1, "bad_rate": 1.0},
        {"lower": 640, "upper": 660, "count": 1, "bads": 0, "bad_rate": 0.0},
    ]


def test_report_holds_train_and_test_metrics_iv_and_bin_tables(
    trained_and_split: tuple[TrainedScorecard, pd.DataFrame, pd.DataFrame],
) -> None:
    trained, train, test = trained_and_split
    model = trained.model
    report = training_report(model, train, test=test, candidates=trained.candidates)
    assert json.loads(json.dumps(report)) == report  # JSON-able as is
    for sample, frame in (("train", train), ("test", test)):
        performance = report["performance"][sample]
        scores = score_batch(model, frame).scores
        assert performance["rows"] == len(frame)
        assert performance["auc"] == pytest.approx(brute_force_auc(frame["bad"].to_numpy(), scores))
        assert performance["ks"] == pytest.approx(brute_force_ks(frame["bad"].to_numpy(), scores))
        assert sum(band["count"] for band in performance["score_bands"]) == len(frame)
    assert report["performance"]["train"]["auc"] > report["performance"]["test"]["auc"] > 0.7
    iv_table = report["iv_table"]
    assert len(iv_table) == 20
    assert [row["iv"] for row in iv_table] == sorted((row["iv"] for row in iv_table), reverse=True)
    assert {row["feature"] for row in iv_table if row["selected"]} == set(model.feature_names)
    assert [t["feature"] for t in report["bin_tables"]] == list(model.feature_names)
    first = report["bin_tables"][0]
    assert [b["points"] for b in first["bins"]] == [b.points for b in model.features[0].bins]
    assert first["bins"][-1]["label"] == "missing"


def test_html_is_self_contained_and_shows_the_tables(
    trained_and_split: tuple[TrainedScorecard, pd.DataFrame, pd.DataFrame],
) -> None:
    trained, train, test = trained_and_split
    report = training_report(trained.model, train, test=test, candidates=trained.candidates)
    html = report_html(report)
    assert html.startswith("<!doctype html>")
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html
    assert "german&lt;credit&gt;" in html  # escaped, not markup
    assert f"{report['performance']['test']['auc']:.4f}" in html
    for name in trained.model.feature_names:
        assert f"<h3>{name} (" in html
    assert "IV below 0.02" in html
