"""Population stability: has today's population drifted from the one the model was trained on?

PSI compares two distributions over the same bins:
``sum((actual% - expected%) * ln(actual% / expected%))``. The bins are the model's own — each
feature's bins (numeric intervals, category groups, the missing bin) with the training counts
stored in the artefact, and for the score the training deciles stored in
``training.score_edges`` / ``score_counts`` — so monitoring needs the JSON model and today's
data, nothing kept from training.

Bands are the industry convention, stated once here: below ``PSI_STABLE_BELOW`` (0.10) stable;
up to and including ``PSI_SIGNIFICANT_ABOVE`` (0.25) monitor; above it a significant shift
that calls for a look at the model. A bin empty on one side would make the logarithm infinite,
so each share is floored at ``SHARE_FLOOR`` (0.0001) — small enough not to hide a real shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from huinong.credit.scorecards.model import ScorecardInvalid, ScorecardModel
from huinong.credit.scorecards.scoring import Columns, bin_indices, score_batch

PSI_STABLE_BELOW = 0.10
PSI_SIGNIFICANT_ABOVE = 0.25
SHARE_FLOOR = 1e-4

PsiBand = Literal["stable", "monitor", "significant"]


@dataclass(frozen=True)
class Stability:
    name: str
    """The feature's name, or ``score``."""
    psi: float
    band: PsiBand
    expected_counts: tuple[int, ...]
    actual_counts: tuple[int, ...]


def psi(expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike) -> float:
    """Population stability index of two count vectors over the same bins."""
    expected = np.asarray(expected_counts, dtype=np.float64)
    actual = np.asarray(actual_counts, dtype=np.float64)
    if expected.shape != actual.shape or expected.sum() <= 0 or actual.sum() <= 0:
        raise ScorecardInvalid(["counts: need two non-empty count vectors of the same length"])
    expected_share = np.maximum(expected / expected.sum(), SHARE_FLOOR)
    actual_share = np.maximum(actual / actual.sum(), SHARE_FLOOR)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def psi_band(value: float) -> PsiBand:
    if value < PSI_STABLE_BELOW:
        return "stable"
    if value <= PSI_SIGNIFICANT_ABOVE:
        return "monitor"
    return "significant"


def stability_report(model: ScorecardModel, columns: Columns) -> list[Stability]:
    """PSI of the score (first) and of every feature, against the model's training counts."""
    if not model.training.score_counts:
        raise ScorecardInvalid(["training.score_counts: the model holds no score distribution"])
    scores = score_batch(model, columns).scores
    score_bins = np.searchsorted(np.asarray(model.training.score_edges), scores, side="right")
    results = [
        _stability(
            "score",
            model.training.score_counts,
            np.bincount(score_bins, minlength=len(model.training.score_counts)),
        )
    ]
    for feature, bins in zip(model.features, bin_indices(model, columns), strict=True):
        expected = tuple(bin_.count for bin_ in feature.bins)
        results.append(
            _stability(feature.name, expected, np.bincount(bins, minlength=len(expected)))
        )
    return results


def _stability(name: str, expected: tuple[int, ...], actual: npt.NDArray[np.int64]) -> Stability:
    value = psi(expected, actual)
    return Stability(
        name=name,
        psi=value,
        band=psi_band(value),
        expected_counts=expected,
        actual_counts=tuple(int(count) for count in actual),
    )
