"""Credit scoring throughput: our table-lookup scorer against optbinning and toad, same data.

    .venv/bin/python benchmarks/credit.py             # 1,000,000 households
    .venv/bin/python benchmarks/credit.py --quick     # 100,000 households (a smoke run)

Workload: N synthetic households (seeded), twelve variables as a household archive and the
ledger would give them — eight numeric (land, labour, income, debts, assets, months active,
age, balance stability; a few per cent missing) and four categorical (main crop, housing,
education, village type, as strings, some missing, a few unseen in training). The bad flag
comes from a logistic model over them, so the scorecards have something real to find.

Every library is trained (not timed) on the same first ``TRAIN_ROWS`` rows, with the same
scaling (600 points at 50:1, 20 points to double the odds), then scores all N rows:

* **ours**: ``huinong.credit.scorecards.scoring.score_batch`` — integer score and the top-3
  reason codes per row, from the JSON artefact alone (the model goes through ``to_json`` /
  ``load_model`` first, so nothing of training is reused).
* **optbinning**: ``optbinning.scorecard.Scorecard.score`` (score only, no reasons).
* **toad**: ``toad.ScoreCard.predict`` (score only, no reasons).

One function per table row (``row_*``), so a row (e.g. the full decision) can join later. The
target from issue 5: >= 1,000,000 households/s for score with top-3 reasons. After the clock
stops, our scores are recomputed another way (``bin_indices`` and the JSON's points per bin)
and must agree on every row: a fast wrong answer does not count.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from huinong.credit.scorecards.model import load_model
from huinong.credit.scorecards.scoring import bin_indices, score_batch
from huinong.credit.scorecards.training import TrainingConfig, train_scorecard

TARGET_ROWS_PER_SECOND = 1_000_000
TRAIN_ROWS = 50_000
SEED = 20240505
NUMERIC = (
    "land_mu",
    "labour",
    "income_yuan",
    "debt_yuan",
    "assets_yuan",
    "months_active",
    "age",
    "balance_stability",
)
CATEGORICAL = ("main_crop", "housing", "education", "village_type")
SCALING_POINTS, SCALING_ODDS, SCALING_PDO = 600, 50, 20


@dataclass(frozen=True)
class Row:
    name: str
    rows: int
    seconds: float
    note: str


def synthetic_households(rows: int, seed: int = SEED) -> pd.DataFrame:
    """Seeded households with a bad flag drawn from a logistic model of the variables."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "land_mu": rng.gamma(2.0, 4.0, rows),
            "labour": rng.integers(0, 6, rows).astype(np.float64),
            "income_yuan": rng.lognormal(10.5, 0.6, rows),
            "debt_yuan": rng.exponential(20_000, rows),
            "assets_yuan": rng.lognormal(11.0, 0.8, rows),
            "months_active": rng.integers(0, 61, rows).astype(np.float64),
            "age": rng.integers(20, 71, rows).astype(np.float64),
            "balance_stability": rng.beta(2.0, 2.0, rows),
        }
    )
    choices = {
        "main_crop": ["grain", "vegetables", "fruit", "livestock", "tea", "mixed"],
        "housing": ["own", "rent", "family"],
        "education": ["none", "primary", "middle", "high", "college"],
        "village_type": ["plain", "hill", "mountain", "suburb"],
    }
    for name, values in choices.items():
        frame[name] = rng.choice(np.array(values, dtype=object), rows)
    log_odds = (
        -1.6
        - 0.05 * frame["land_mu"]
        - 0.25 * frame["labour"]
        - 0.6 * np.log(frame["income_yuan"] / 36_000)
        + 0.00002 * frame["debt_yuan"]
        - 0.3 * np.log(frame["assets_yuan"] / 60_000)
        - 0.02 * frame["months_active"]
        + 0.0004 * (frame["age"] - 45) ** 2
        - 1.2 * (frame["balance_stability"] - 0.5)
        + frame["main_crop"].map({"livestock": 0.4, "tea": -0.3}).fillna(0.0)
        + frame["housing"].map({"rent": 0.5, "own": -0.2}).fillna(0.0)
        + frame["education"].map({"none": 0.4, "college": -0.4}).fillna(0.0)
    )
    frame["bad"] = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(np.int8)
    for name in ("income_yuan", "assets_yuan", "balance_stability", "main_crop", "education"):
        frame.loc[rng.random(rows) < 0.03, name] = np.nan
    unseen = rng.random(rows) < 0.001
    unseen[:TRAIN_ROWS] = False
    frame.loc[unseen, "main_crop"] = "herbs"
    return frame


def row_ours(frame: pd.DataFrame) -> Row:
    training = frame.iloc[:TRAIN_ROWS]
    config = TrainingConfig(name="bench", target="bad", seed=SEED)
    model = load_model(train_scorecard(training, config).model.to_json())
    columns = {name: frame[name].to_numpy() for name in model.feature_names}
    score_batch(model, {k: v[:1000] for k, v in columns.items()})  # compile the tables
    started = time.perf_counter()
    scores = score_batch(model, columns)
    seconds = time.perf_counter() - started
    points = [
        np.array([b.points for b in feature.bins])[bins]
        for feature, bins in zip(model.features, bin_indices(model, columns), strict=True)
    ]
    if not np.array_equal(scores.scores, model.base_points + np.sum(points, axis=0)):
        raise SystemExit("ours: scores disagree with the points of the bins")
    return Row(
        "ours: score + top-3 reasons", len(frame), seconds, f"{len(model.features)} variables"
    )


def row_optbinning(frame: pd.DataFrame) -> Row:
    from optbinning import BinningProcess
    from optbinning.scorecard import Scorecard
    from sklearn.linear_model import LogisticRegression

    names = [*NUMERIC, *CATEGORICAL]
    training = frame.iloc[:TRAIN_ROWS]
    scorecard = Scorecard(
        binning_process=BinningProcess(
            names,
            categorical_variables=list(CATEGORICAL),
            selection_criteria={"iv": {"min": 0.02}},
        ),
        estimator=LogisticRegression(),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": SCALING_PDO,
            "odds": SCALING_ODDS,
            "scorecard_points": SCALING_POINTS,
        },
    )
    scorecard.fit(training[names], training["bad"])
    started = time.perf_counter()
    scorecard.score(frame[names])
    seconds = time.perf_counter() - started
    return Row("optbinning Scorecard.score", len(frame), seconds, "score only")


def row_toad(frame: pd.DataFrame) -> Row:
    import toad

    names = [*NUMERIC, *CATEGORICAL]
    training = frame.iloc[:TRAIN_ROWS][[*names, "bad"]]
    combiner = toad.transform.Combiner()
    combiner.fit(training, y="bad", method="dt", min_samples=0.05, empty_separate=True)
    transformer = toad.transform.WOETransformer()
    woe = transformer.fit_transform(combiner.transform(training), training["bad"], exclude=["bad"])
    card = toad.ScoreCard(
        combiner=combiner,
        transer=transformer,
        base_score=SCALING_POINTS,
        base_odds=SCALING_ODDS,
        pdo=SCALING_PDO,
    )
    card.fit(woe[names], woe["bad"])
    started = time.perf_counter()
    card.predict(frame[names])
    seconds = time.perf_counter() - started
    return Row("toad ScoreCard.predict", len(frame), seconds, "score only")


ROWS: tuple[Callable[[pd.DataFrame], Row], ...] = (row_ours, row_optbinning, row_toad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 households")
    parser.add_argument("--rows", type=int, default=None)
    arguments = parser.parse_args()
    rows = arguments.rows or (100_000 if arguments.quick else 1_000_000)
    warnings.filterwarnings("ignore")
    console = Console(width=130)
    with console.status(f"generating {rows:,} households"):
        frame = synthetic_households(rows)
    table = Table(
        title=f"Credit scoring, {rows:,} synthetic households (trained on {TRAIN_ROWS:,})"
    )
    for column in ("scorer", "rows", "seconds", "households/s", "target", "note"):
        table.add_column(column, justify="left" if column in ("scorer", "note") else "right")
    for row_function in ROWS:
        with console.status(row_function.__name__):
            row = row_function(frame)
        rate = row.rows / row.seconds
        target = ""
        if row_function is row_ours:
            met = rate >= TARGET_ROWS_PER_SECOND
            target = f"{'met' if met else 'MISSED'} (>= {TARGET_ROWS_PER_SECOND:,}/s)"
        table.add_row(
            row.name, f"{row.rows:,}", f"{row.seconds:.3f}", f"{rate:,.0f}", target, row.note
        )
    console.print(table)


if __name__ == "__main__":
    main()
