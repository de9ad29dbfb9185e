"""The scorecard artefact: a frozen value that is also a reviewable JSON document.

A trained scorecard is what a credit committee signs off and what an auditor asks for years
later, so the artefact is data a person can read, not a pickle: every feature with its bins,
each bin with its training count, bad count, event rate, weight of evidence and integer points,
plus the scaling parameters and the intercept. Scoring (``scoring.py``) needs nothing else —
no optbinning or scikit-learn object survives training.

Decisions:

* **Bins.** A numeric feature has sorted, finite cut points ``edges``; its regular bins are
  right-open intervals ``(-inf, e0), [e0, e1), …, [ek, +inf)`` — ``len(edges) + 1`` of them, in
  that order. A categorical feature has one regular bin per group of categories (strings).
  After the regular bins comes exactly one **missing** bin (``None``/NaN), always present even
  when training saw no missing value (then it is empty, its WOE 0 and its points neutral).
  A categorical value never seen in training goes to ``unseen_bin`` — by default the missing
  bin; a reviewer may point it at any bin (e.g. the riskiest) by editing the JSON.
* **Weight of evidence** is ``ln(bad share / good share)`` of the bin: higher means riskier, so
  a predictive feature gets a positive logistic coefficient. Points follow the usual scaling
  ``score = offset + factor * ln(good:bad odds)`` with ``factor = pdo / ln 2`` and
  ``offset = base_score - factor * ln(base_odds)``; see :class:`Scaling`.
* **Exact round trip.** Sequences are tuples, floats are written with Python's shortest
  ``repr`` (which reads back bit-identical), keys are sorted and indented, so
  ``ScorecardModel.from_json(m.to_json()) == m`` and the text survives a round trip unchanged.
  ``format`` names the layout so a later layout can be read alongside this one.
* **Validation** (:func:`validate_model`) returns problems naming the feature and bin, like
  every validation in Huinong; :func:`load_model` raises :class:`ScorecardInvalid` with them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from huinong.errors import InvalidInput

FORMAT = "huinong.scorecard/1"

FeatureKind = Literal["numeric", "categorical"]

EVENT_RATE_TOLERANCE = 1e-9


class ScorecardInvalid(InvalidInput):
    """A scorecard document or its input data breaks a rule; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("credit.scorecard.invalid", "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Scaling:
    """Points-to-double-odds scaling: ``base_score`` points at good:bad odds ``base_odds``;
    every doubling of the odds adds ``pdo`` points."""

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_for_odds(self, good_bad_odds: float) -> float:
        """The unrounded score at the given good:bad odds."""
        return self.offset + self.factor * math.log(good_bad_odds)

    def score_for_log_odds_bad(self, log_odds_bad: float) -> float:
        """The unrounded score for a logistic regression's ``ln(p_bad / p_good)``."""
        return self.offset - self.factor * log_odds_bad


@dataclass(frozen=True)
class Bin:
    """One bin of a feature as seen in training, with the points it is worth."""

    count: int
    bad_count: int
    event_rate: float
    woe: float
    points: int
    categories: tuple[str, ...] = ()
    """The categories of a categorical feature's regular bin; empty otherwise."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: FeatureKind
    coefficient: float
    iv: float
    bins: tuple[Bin, ...]
    """Regular bins, then the missing bin last."""
    edges: tuple[float, ...] = ()
    """Numeric only: sorted right-open cut points, ``len(bins) - 2`` of them."""
    unseen_bin: int | None = None
    """Categorical only: the bin a category not seen in training goes to."""

    @property
    def missing_bin(self) -> int:
        return len(self.bins) - 1

    def bin_label(self, index: int) -> str:
        """A human label for bin ``index``: an interval, a category list or ``missing``."""
        if index == self.missing_bin:
            return "missing"
        if self.kind == "categorical":
            return ", ".join(self.bins[index].categories)
        lower = "-inf" if index == 0 else f"{self.edges[index - 1]:g}"
        upper = "+inf" if index == len(self.edges) else f"{self.edges[index]:g}"
        return f"[{lower}, {upper})"


@dataclass(frozen=True)
class TrainingMetadata:
    rows: int
    bad_rows: int
    trained_at: str
    """ISO 8601, UTC."""
    seed: int
    library_versions: tuple[tuple[str, str], ...] = ()
    score_edges: tuple[int, ...] = ()
    """Right-open cut points of the training score distribution (deciles), for score PSI."""
    score_counts: tuple[int, ...] = ()
    """Training rows per score bin, ``len(score_edges) + 1`` of them."""


@dataclass(frozen=True)
class ScorecardModel:
    name: str
    target: str
    scaling: Scaling
    intercept: float
    base_points: int
    features: tuple[Feature, ...]
    training: TrainingMetadata
    format: str = field(default=FORMAT)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    def to_json(self) -> str:
        return json.dumps(_to_document(self), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ScorecardModel:
        """Parse a document; raises :class:`ScorecardInvalid` if its structure is wrong.

        Only the structure is checked here; :func:`validate_model` checks the content."""
        try:
            return _from_document(json.loads(text))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ScorecardInvalid([f"document: {type(error).__name__}: {error}"]) from error


def load_model(text: str) -> ScorecardModel:
    """Parse and validate a scorecard document; raises :class:`ScorecardInvalid`."""
    model = ScorecardModel.from_json(text)
    problems = validate_model(model)
    if problems:
        raise ScorecardInvalid(problems)
    return model


def validate_model(model: ScorecardModel) -> list[str]:
    """Every problem of a scorecard, each naming the feature and bin at fault."""
    problems: list[str] = []
    if model.format != FORMAT:
        problems.append(f"format: {model.format!r} is not {FORMAT!r}")
    if not model.features:
        problems.append("features: a scorecard needs at least one feature")
    if model.scaling.pdo <= 0 or model.scaling.base_odds <= 0:
        problems.append("scaling: pdo and base_odds must be positive")
    if not isinstance(model.base_points, int) or isinstance(model.base_points, bool):
        problems.append("base_points: must be an integer")
    names = [feature.name for feature in model.features]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"features.{name}: appears more than once")
    for feature in model.features:
        problems.extend(_feature_problems(feature))
    training = model.training
    if training.score_counts and len(training.score_counts) != len(training.score_edges) + 1:
        problems.append("training.score_counts: needs one count more than score_edges")
    if list(training.score_edges) != sorted(set(training.score_edges)):
        problems.append("training.score_edges: must be strictly increasing")
    return problems


def _feature_problems(feature: Feature) -> list[str]:
    where = f"features.{feature.name}"
    problems: list[str] = []
    if feature.kind not in ("numeric", "categorical"):
        return [f"{where}.kind: {feature.kind!r} is neither numeric nor categorical"]
    if len(feature.bins) < 2:
        problems.append(f"{where}.bins: needs at least one regular bin and the missing bin")
    if not math.isfinite(feature.coefficient):
        problems.append(f"{where}.coefficient: must be finite")
    if feature.kind == "numeric":
        if any(not math.isfinite(edge) for edge in feature.edges):
            problems.append(f"{where}.edges: must be finite")
        elif list(feature.edges) != sorted(set(feature.edges)):
            problems.append(f"{where}.edges: must be strictly increasing")
        if len(feature.bins) != len(feature.edges) + 2:
            problems.append(f"{where}.bins: needs len(edges) + 1 regular bins and a missing bin")
        if feature.unseen_bin is not None:
            problems.append(f"{where}.unseen_bin: only categorical features have one")
    else:
        if feature.edges:
            problems.append(f"{where}.edges: categorical features have no edges")
        if feature.unseen_bin is None or not 0 <= feature.unseen_bin < len(feature.bins):
            problems.append(f"{where}.unseen_bin: must name one of the feature's bins")
        seen: set[str] = set()
        for index, bin_ in enumerate(feature.bins[:-1]):
            if not bin_.categories:
                problems.append(f"{where}.bins[{index}]: a categorical bin needs categories")
            for category in bin_.categories:
                if category in seen:
                    problems.append(f"{where}.bins[{index}]: category {category!r} is repeated")
                seen.add(category)
    if feature.bins and feature.bins[-1].categories:
        problems.append(f"{where}.bins[-1]: the missing bin holds no categories")
    for index, bin_ in enumerate(feature.bins):
        problems.extend(_bin_problems(f"{where}.bins[{index}]", bin_))
    return problems


def _bin_problems(where: str, bin_: Bin) -> list[str]:
    problems: list[str] = []
    if not isinstance(bin_.points, int) or isinstance(bin_.points, bool):
        problems.append(f"{where}.points: must be an integer")
    if not 0 <= bin_.bad_count <= bin_.count:
        problems.append(f"{where}: bad_count must lie between 0 and count")
    if not math.isfinite(bin_.woe):
        problems.append(f"{where}.woe: must be finite")
    expected_rate = bin_.bad_count / bin_.count if bin_.count else 0.0
    if abs(bin_.event_rate - expected_rate) > EVENT_RATE_TOLERANCE:
        problems.append(f"{where}.event_rate: is not bad_count / count")
    return problems


def _to_document(model: ScorecardModel) -> dict[str, Any]:
    training = model.training
    return {
        "format": model.format,
        "name": model.name,
        "target": model.target,
        "scaling": {
            "base_score": model.scaling.base_score,
            "base_odds": model.scaling.base_odds,
            "pdo": model.scaling.pdo,
        },
        "intercept": model.intercept,
        "base_points": model.base_points,
        "features": [_feature_document(feature) for feature in model.features],
        "training": {
            "rows": training.rows,
            "bad_rows": training.bad_rows,
            "trained_at": training.trained_at,
            "seed": training.seed,
            "library_versions": dict(training.library_versions),
            "score_edges": list(training.score_edges),
            "score_counts": list(training.score_counts),
        },
    }


def _feature_document(feature: Feature) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": feature.name,
        "kind": feature.kind,
        "coefficient": feature.coefficient,
        "iv": feature.iv,
        "bins": [
            {
                "label": feature.bin_label(index),
                "count": bin_.count,
                "bad_count": bin_.bad_count,
                "event_rate": bin_.event_rate,
                "woe": bin_.woe,
                "points": bin_.points,
                **({"categories": list(bin_.categories)} if bin_.categories else {}),
            }
            for index, bin_ in enumerate(feature.bins)
        ],
    }
    if feature.kind == "numeric":
        document["edges"] = list(feature.edges)
    else:
        document["unseen_bin"] = feature.unseen_bin
    return document


def _from_document(document: dict[str, Any]) -> ScorecardModel:
    scaling = document["scaling"]
    training = document["training"]
    return ScorecardModel(
        format=document["format"],
        name=document["name"],
        target=document["target"],
        scaling=Scaling(
            base_score=scaling["base_score"], base_odds=scaling["base_odds"], pdo=scaling["pdo"]
        ),
        intercept=document["intercept"],
        base_points=document["base_points"],
        features=tuple(_feature_from_document(feature) for feature in document["features"]),
        training=TrainingMetadata(
            rows=training["rows"],
            bad_rows=training["bad_rows"],
            trained_at=training["trained_at"],
            seed=training["seed"],
            library_versions=tuple(sorted(training["library_versions"].items())),
            score_edges=tuple(training["score_edges"]),
            score_counts=tuple(training["score_counts"]),
        ),
    )


def _feature_from_document(document: dict[str, Any]) -> Feature:
    return Feature(
        name=document["name"],
        kind=document["kind"],
        coefficient=document["coefficient"],
        iv=document["iv"],
        bins=tuple(
            Bin(
                count=bin_["count"],
                bad_count=bin_["bad_count"],
                event_rate=bin_["event_rate"],
                woe=bin_["woe"],
                points=bin_["points"],
                categories=tuple(bin_.get("categories", ())),
            )
            for bin_ in document["bins"]
        ),
        edges=tuple(document.get("edges", ())),
        unseen_bin=document.get("unseen_bin"),
    )
