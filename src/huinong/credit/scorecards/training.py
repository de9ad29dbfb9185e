"""Training a scorecard from a labelled table: bins, WOE, selection, regression, points.

The steps are the textbook ones, each with a decision a reviewer can check:

1. **Binning** — optbinning's ``OptimalBinning`` per candidate variable (numeric or
   categorical), with a monotonic event-rate trend (``auto_asc_desc`` by default: increasing
   or decreasing, whichever fits) so that points never zig-zag over a variable's range, which a
   credit committee would reject. Only the cut points / category groups are taken from
   optbinning; counts, WOE and IV are recomputed here with the scoring path's own bin lookup
   (``scoring.bin_indices``), so the numbers in the artefact are exactly what scoring will use.
2. **WOE** ``ln(bad share / good share)`` per bin; a bin with no goods or no bads gets half a
   count added to both sides (else its WOE is infinite), an empty bin (the missing bin when
   training had no missing values) gets WOE 0: an unseen situation scores as average.
3. **Selection** — drop variables under ``min_iv``; walk the rest by IV, best first, and keep a
   variable only if its WOE column correlates with every kept one below ``max_correlation``
   (absolute Pearson), until ``max_features``.
4. **Logistic regression** (scikit-learn, L2 with ``regularization_c``) of the bad flag on the
   WOE columns. With WOE oriented towards risk every coefficient should be positive; a
   non-positive one means collinearity has flipped it, and such a variable would give points
   *against* its own evidence, so the lowest is dropped and the model refitted until none is.
5. **Points** — :class:`~huinong.credit.scorecards.model.Scaling`: a bin is worth
   ``round(-factor * coefficient * woe)`` points and the intercept ``round(offset - factor *
   intercept)`` base points; the score is their sum. Rounding per bin (not per score) is what
   makes the scorecard a printable table of integers.

Readers for CSV and Parquet training tables are here; the database source belongs to the
credit service. Training is deterministic for a given table and config (``seed`` is passed to
scikit-learn and recorded).
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version

import numpy as np
import numpy.typing as npt
import optbinning
import pandas as pd
from sklearn.linear_model import LogisticRegression

from huinong import clock
from huinong.credit.scorecards.model import (
    Bin,
    Feature,
    FeatureKind,
    Scaling,
    ScorecardInvalid,
    ScorecardModel,
    TrainingMetadata,
)
from huinong.credit.scorecards.scoring import bin_indices, score_batch

EMPTY_SIDE_PSEUDO_COUNT = 0.5
SCORE_DECILES = tuple(q / 10 for q in range(1, 10))


@dataclass(frozen=True)
class TrainingConfig:
    name: str = "scorecard"
    target: str = "bad"
    """Column holding 1 for a bad outcome and 0 for a good one."""
    features: tuple[str, ...] | None = None
    """Candidate variables; ``None`` takes every column but the target."""
    categorical: tuple[str, ...] | None = None
    """Variables binned as categories; ``None`` takes the string, category and bool columns."""
    min_iv: float = 0.02
    max_features: int = 15
    max_correlation: float = 0.7
    monotonic_trend: str = "auto_asc_desc"
    max_n_bins: int | None = 8
    min_bin_size: float = 0.05
    regularization_c: float = 1.0
    scaling: Scaling = field(default_factory=Scaling)
    seed: int = 0


@dataclass(frozen=True)
class Candidate:
    """A candidate variable and what selection made of it (for the IV table of the report)."""

    name: str
    kind: FeatureKind
    iv: float
    selected: bool
    reason: str
    """Why it was dropped (empty when selected)."""


@dataclass(frozen=True)
class TrainedScorecard:
    model: ScorecardModel
    candidates: tuple[Candidate, ...]


def validate_training_config(config: TrainingConfig) -> list[str]:
    problems = []
    if config.min_iv < 0:
        problems.append("min_iv: must not be negative")
    if config.max_features < 1:
        problems.append("max_features: must be at least 1")
    if not 0 < config.max_correlation <= 1:
        problems.append("max_correlation: must lie in (0, 1]")
    if config.regularization_c <= 0:
        problems.append("regularization_c: must be positive")
    if config.scaling.pdo <= 0 or config.scaling.base_odds <= 0:
        problems.append("scaling: pdo and base_odds must be positive")
    if config.max_n_bins is not None and config.max_n_bins < 2:
        problems.append("max_n_bins: must be at least 2")
    return problems


def validate_training_table(frame: pd.DataFrame, config: TrainingConfig) -> list[str]:
    """Problems of a training table under ``config``, naming the column and row."""
    if config.target not in frame.columns:
        return [f"columns.{config.target}: the target column is missing"]
    problems = []
    target = frame[config.target]
    bad_rows = frame.index[~target.isin([0, 1])]
    if len(bad_rows):
        problems.append(f"{config.target}: row {bad_rows[0]} is not 0 or 1 ({len(bad_rows)} rows)")
    elif target.nunique() < 2:
        problems.append(f"{config.target}: needs both goods (0) and bads (1)")
    problems.extend(
        f"columns.{name}: missing"
        for name in (config.features or ())
        if name not in frame.columns or name == config.target
    )
    return problems


def train_scorecard(
    frame: pd.DataFrame, config: TrainingConfig, *, trained_at: datetime | None = None
) -> TrainedScorecard:
    """Train a scorecard on ``frame``; raises :class:`ScorecardInvalid` on bad input."""
    problems = validate_training_config(config) + validate_training_table(frame, config)
    if problems:
        raise ScorecardInvalid(problems)
    target = frame[config.target].to_numpy(dtype=np.int8)
    names = config.features or tuple(c for c in frame.columns if c != config.target)
    binned = [_binned_feature(frame[name], target, config) for name in names]
    woe = {f.name: _woe_column(f, frame) for f in binned}
    chosen, candidates = _select(binned, woe, config)
    regression = LogisticRegression(
        C=config.regularization_c, max_iter=1000, random_state=config.seed
    )
    while True:
        regression.fit(np.column_stack([woe[f.name] for f in chosen]), target)
        coefficients = regression.coef_[0]
        if coefficients.min() > 0:
            break
        worst = chosen[int(np.argmin(coefficients))]
        if len(chosen) == 1:
            raise ScorecardInvalid(
                [f"features: no variable keeps a positive coefficient ({worst.name})"]
            )
        candidates[worst.name] = _dropped(candidates[worst.name], "non-positive coefficient")
        chosen = [f for f in chosen if f is not worst]
    scaling = config.scaling
    features = tuple(
        _with_points(feature, float(coefficient), scaling)
        for feature, coefficient in zip(chosen, coefficients, strict=True)
    )
    intercept = float(regression.intercept_[0])
    base_points = int(np.rint(scaling.offset - scaling.factor * intercept))
    model = ScorecardModel(
        name=config.name,
        target=config.target,
        scaling=scaling,
        intercept=intercept,
        base_points=base_points,
        features=features,
        training=_metadata(frame, target, config, trained_at),
    )
    scores = score_batch(model, frame).scores
    edges = tuple(int(e) for e in np.unique(np.rint(np.quantile(scores, SCORE_DECILES))))
    counts = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1)
    distribution = replace(model.training, score_edges=edges, score_counts=tuple(counts.tolist()))
    model = replace(model, training=distribution)
    return TrainedScorecard(model=model, candidates=tuple(candidates[n] for n in names))


def _binned_feature(
    column: pd.Series, target: npt.NDArray[np.int8], config: TrainingConfig
) -> Feature:
    """The feature with optbinning's bins and our own counts, WOE and IV (no points yet)."""
    name = str(column.name)
    kind: FeatureKind = "categorical" if _is_categorical(column, config) else "numeric"
    binning = optbinning.OptimalBinning(
        name=name,
        dtype="categorical" if kind == "categorical" else "numerical",
        monotonic_trend=config.monotonic_trend,
        max_n_bins=config.max_n_bins,
        min_bin_size=config.min_bin_size,
    )
    if kind == "categorical":
        values = _as_strings(column)
        binning.fit(values, target)
        groups = [tuple(sorted(str(c) for c in group)) for group in binning.splits]
        skeleton = Feature(
            name=name,
            kind=kind,
            coefficient=1.0,
            iv=0.0,
            bins=(*(_empty_bin(group) for group in groups), _empty_bin(())),
            unseen_bin=len(groups),
        )
        bins = bin_indices(_wrap(skeleton), {name: values})[0]
    else:
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        binning.fit(numbers, target)
        edges = tuple(float(edge) for edge in binning.splits)
        skeleton = Feature(
            name=name,
            kind=kind,
            coefficient=1.0,
            iv=0.0,
            bins=tuple(_empty_bin(()) for _ in range(len(edges) + 2)),
            edges=edges,
        )
        bins = bin_indices(_wrap(skeleton), {name: numbers})[0]
    return _with_counts(skeleton, bins, target)


def _with_counts(
    skeleton: Feature, bins: npt.NDArray[np.intp], target: npt.NDArray[np.int8]
) -> Feature:
    size = len(skeleton.bins)
    counts = np.bincount(bins, minlength=size)
    bads = np.bincount(bins, weights=target, minlength=size).astype(np.int64)
    goods = counts - bads
    total_bads, total_goods = int(bads.sum()), int(goods.sum())
    new_bins = []
    iv = 0.0
    for count, bad, good, old in zip(counts, bads, goods, skeleton.bins, strict=True):
        if count == 0:
            woe = 0.0
        else:
            pseudo = EMPTY_SIDE_PSEUDO_COUNT if bad == 0 or good == 0 else 0.0
            bad_share = (bad + pseudo) / total_bads
            good_share = (good + pseudo) / total_goods
            woe = math.log(bad_share / good_share)
            iv += (bad_share - good_share) * woe
        new_bins.append(
            Bin(
                count=int(count),
                bad_count=int(bad),
                event_rate=float(bad / count) if count else 0.0,
                woe=woe,
                points=0,
                categories=old.categories,
            )
        )
    return replace(skeleton, bins=tuple(new_bins), iv=float(iv))


def _select(
    binned: list[Feature], woe: dict[str, npt.NDArray[np.float64]], config: TrainingConfig
) -> tuple[list[Feature], dict[str, Candidate]]:
    candidates: dict[str, Candidate] = {}
    chosen: list[Feature] = []
    for feature in sorted(binned, key=lambda f: (-f.iv, f.name)):
        reason = ""
        if feature.iv < config.min_iv:
            reason = f"IV below {config.min_iv}"
        elif len(chosen) >= config.max_features:
            reason = f"beyond max_features {config.max_features}"
        else:
            for kept in chosen:
                correlation = abs(np.corrcoef(woe[feature.name], woe[kept.name])[0, 1])
                if correlation >= config.max_correlation:
                    reason = f"WOE correlation {correlation:.2f} with {kept.name}"
                    break
        if not reason:
            chosen.append(feature)
        candidates[feature.name] = Candidate(
            name=feature.name, kind=feature.kind, iv=feature.iv, selected=not reason, reason=reason
        )
    if not chosen:
        raise ScorecardInvalid([f"features: no variable reaches min_iv {config.min_iv}"])
    return chosen, candidates


def _woe_column(feature: Feature, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    column = frame[feature.name]
    values = _as_strings(column) if feature.kind == "categorical" else column
    bins = bin_indices(_wrap(feature), {feature.name: values})[0]
    return np.array([b.woe for b in feature.bins])[bins]


def _with_points(feature: Feature, coefficient: float, scaling: Scaling) -> Feature:
    bins = tuple(
        Bin(
            count=b.count,
            bad_count=b.bad_count,
            event_rate=b.event_rate,
            woe=b.woe,
            points=int(np.rint(-scaling.factor * coefficient * b.woe)),
            categories=b.categories,
        )
        for b in feature.bins
    )
    return replace(feature, bins=bins, coefficient=coefficient)


def _dropped(candidate: Candidate, reason: str) -> Candidate:
    return Candidate(candidate.name, candidate.kind, candidate.iv, selected=False, reason=reason)


def _is_categorical(column: pd.Series, config: TrainingConfig) -> bool:
    if config.categorical is not None:
        return column.name in config.categorical
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _as_strings(column: pd.Series) -> npt.NDArray[np.object_]:
    """Categories as strings (so JSON holds them as written), missing values as NaN."""
    values = column.to_numpy(dtype=object)
    absent = pd.isna(values)
    strings = values.astype(str).astype(object)
    strings[absent] = np.nan
    return strings


def _empty_bin(categories: tuple[str, ...]) -> Bin:
    return Bin(count=0, bad_count=0, event_rate=0.0, woe=0.0, points=0, categories=categories)


def _wrap(feature: Feature) -> ScorecardModel:
    """A one-feature model, to reuse the scoring path's bin lookup during training."""
    return ScorecardModel(
        name=feature.name,
        target="",
        scaling=Scaling(),
        intercept=0.0,
        base_points=0,
        features=(feature,),
        training=TrainingMetadata(rows=0, bad_rows=0, trained_at="", seed=0),
    )


def _metadata(
    frame: pd.DataFrame,
    target: npt.NDArray[np.int8],
    config: TrainingConfig,
    trained_at: datetime | None,
) -> TrainingMetadata:
    moment = (trained_at or clock.now()).astimezone(UTC)
    libraries = ("numpy", "optbinning", "pandas", "scikit-learn")
    return TrainingMetadata(
        rows=len(frame),
        bad_rows=int(target.sum()),
        trained_at=moment.isoformat(timespec="seconds"),
        seed=config.seed,
        library_versions=tuple(
            sorted([("python", platform.python_version()), *((n, version(n)) for n in libraries)])
        ),
    )
