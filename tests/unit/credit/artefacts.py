"""Comparing a retrained scorecard with the shipped artefact.

Retraining with the same library versions gives the same model, but not always the same bytes:
OpenBLAS picks its kernels by the CPU it runs on, and two kernels may round a sum differently
in the last digit. So the points, which a bank's decisions use, must be equal exactly; every
other field exactly, but floats to within a relative 1e-9.
"""

from __future__ import annotations

import json
import math
from typing import Any

from huinong.credit.scorecards.model import ScorecardModel


def points(model: ScorecardModel) -> tuple[float, list[list[float]]]:
    return model.base_points, [[b.points for b in f.bins] for f in model.features]


def differences(ours: Any, theirs: Any, where: str = "$") -> list[str]:
    """Where two JSON documents differ beyond a float's rounding."""
    if isinstance(ours, float) and isinstance(theirs, float):
        close = math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
        return [] if close else [f"{where}: {ours!r} != {theirs!r}"]
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{where}: keys {sorted(ours)} != {sorted(theirs)}"]
        return [d for key in ours for d in differences(ours[key], theirs[key], f"{where}.{key}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} items != {len(theirs)}"]
        return [
            d
            for i, pair in enumerate(zip(ours, theirs, strict=True))
            for d in differences(*pair, f"{where}[{i}]")
        ]
    return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]


def assert_retrained_matches(retrained: ScorecardModel, shipped: ScorecardModel) -> None:
    assert points(retrained) == points(shipped)
    if dict(retrained.training.library_versions) == dict(shipped.training.library_versions):
        assert differences(json.loads(retrained.to_json()), json.loads(shipped.to_json())) == []
