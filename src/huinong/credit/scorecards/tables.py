"""Reading labelled or scoring tables (CSV or Parquet) — without importing the training stack,
so that scoring and monitoring from the command line start in a moment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huinong.credit.scorecards.model import ScorecardInvalid


def read_training_table(path: Path) -> pd.DataFrame:
    """A training table from a ``.csv`` or ``.parquet`` file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ScorecardInvalid([f"path: {path.name} is neither .csv nor .parquet"])
