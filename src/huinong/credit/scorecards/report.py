"""The training report: how well a scorecard separates goods from bads, and what it is made of.

One function builds a plain dict (numbers, strings, lists — ``json.dumps``-able as is) and one
renders that dict as a self-contained HTML page (inline CSS, no script, no CDN: it must open on
a branch office PC with no internet). The HTML is made *from the dict*, so the two never
disagree.

Contents: AUC, KS and Gini on the training table and, when given, the test table; the IV
table of every candidate with the reason a variable was dropped; every selected feature's bin
table (label, count, bads, event rate, WOE, points); and the score distribution in bands of
``band_width`` points (aligned to multiples of it) with count and bad rate per band.

Decisions: scores are "higher is better", so AUC is computed on the negated score against the
bad flag; KS is the largest gap between the cumulative distributions of bads and goods over
the score (``max |TPR - FPR|`` on the ROC curve); Gini is ``2 * AUC - 1``.
"""

from __future__ import annotations

from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from huinong.credit.scorecards.model import ScorecardModel
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.scorecards.training import Candidate

DEFAULT_BAND_WIDTH = 20


def discrimination(bad: npt.ArrayLike, scores: npt.ArrayLike) -> dict[str, float]:
    """AUC, KS and Gini of ``scores`` (higher = better) against the bad flag (1 = bad)."""
    bad_flags = np.asarray(bad)
    risk = -np.asarray(scores, dtype=np.float64)
    auc = float(roc_auc_score(bad_flags, risk))
    false_positive, true_positive, _ = roc_curve(bad_flags, risk)
    return {
        "auc": auc,
        "ks": float(np.max(np.abs(true_positive - false_positive))),
        "gini": 2 * auc - 1,
    }


def score_bands(
    bad: npt.ArrayLike, scores: npt.ArrayLike, band_width: int = DEFAULT_BAND_WIDTH
) -> list[dict[str, Any]]:
    """Rows per band ``[lower, lower + band_width)`` with their bads and bad rate."""
    score_values = np.asarray(scores, dtype=np.int64)
    bad_flags = np.asarray(bad, dtype=np.int64)
    lowers = (score_values // band_width) * band_width
    bands = []
    for lower in np.unique(lowers):
        inside = lowers == lower
        count = int(inside.sum())
        bads = int(bad_flags[inside].sum())
        bands.append(
            {
                "lower": int(lower),
                "upper": int(lower + band_width),
                "count": count,
                "bads": bads,
                "bad_rate": bads / count,
            }
        )
    return bands


def training_report(
    model: ScorecardModel,
    train: pd.DataFrame,
    *,
    test: pd.DataFrame | None = None,
    candidates: tuple[Candidate, ...] = (),
    band_width: int = DEFAULT_BAND_WIDTH,
) -> dict[str, Any]:
    """The report as a JSON-able dict; ``train``/``test`` hold the features and the target."""
    samples = {"train": train} if test is None else {"train": train, "test": test}
    performance = {}
    for sample, frame in samples.items():
        scores = score_batch(model, frame).scores
        bad = frame[model.target].to_numpy()
        performance[sample] = {
            "rows": len(frame),
            "bads": int(bad.sum()),
            **discrimination(bad, scores),
            "score_bands": score_bands(bad, scores, band_width),
        }
    return {
        "model": {
            "name": model.name,
            "target": model.target,
            "trained_at": model.training.trained_at,
            "base_score": model.scaling.base_score,
            "base_odds": model.scaling.base_odds,
            "pdo": model.scaling.pdo,
            "base_points": model.base_points,
        },
        "performance": performance,
        "iv_table": _iv_table(model, candidates),
        "bin_tables": [
            {
                "feature": feature.name,
                "kind": feature.kind,
                "iv": feature.iv,
                "coefficient": feature.coefficient,
                "bins": [
                    {
                        "label": feature.bin_label(index),
                        "count": bin_.count,
                        "bads": bin_.bad_count,
                        "event_rate": bin_.event_rate,
                        "woe": bin_.woe,
                        "points": bin_.points,
                    }
                    for index, bin_ in enumerate(feature.bins)
                ],
            }
            for feature in model.features
        ],
    }


def _iv_table(model: ScorecardModel, candidates: tuple[Candidate, ...]) -> list[dict[str, Any]]:
    """Every candidate by IV; without candidates, the model's own features."""
    rows = [
        {"feature": c.name, "kind": c.kind, "iv": c.iv, "selected": c.selected, "reason": c.reason}
        for c in candidates
    ] or [
        {"feature": f.name, "kind": f.kind, "iv": f.iv, "selected": True, "reason": ""}
        for f in model.features
    ]
    return sorted(rows, key=lambda row: (-row["iv"], row["feature"]))


_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Scorecard {{ r.model.name }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
tr.dropped { color: #888; }
</style></head><body>
<h1>Scorecard {{ r.model.name }}</h1>
<p>Target <code>{{ r.model.target }}</code>, trained {{ r.model.trained_at }}.
{{ r.model.base_score }} points at odds {{ r.model.base_odds }}:1, {{ r.model.pdo }} points to
double the odds; base points {{ r.model.base_points }}.</p>
<h2>Performance</h2>
<table><tr><th>sample</th><th>rows</th><th>bads</th><th>AUC</th><th>KS</th><th>Gini</th></tr>
{% for sample, p in r.performance.items() %}<tr><td>{{ sample }}</td><td>{{ p.rows }}</td>
<td>{{ p.bads }}</td><td>{{ "%.4f"|format(p.auc) }}</td><td>{{ "%.4f"|format(p.ks) }}</td>
<td>{{ "%.4f"|format(p.gini) }}</td></tr>
{% endfor %}</table>
<h2>Information value</h2>
<table><tr><th>feature</th><th>kind</th><th>IV</th><th>selected</th><th>reason</th></tr>
{% for row in r.iv_table %}<tr{% if not row.selected %} class="dropped"{% endif %}>
<td>{{ row.feature }}</td><td>{{ row.kind }}</td><td>{{ "%.4f"|format(row.iv) }}</td>
<td>{{ "yes" if row.selected else "no" }}</td><td>{{ row.reason }}</td></tr>
{% endfor %}</table>
<h2>Bins</h2>
{% for t in r.bin_tables %}<h3>{{ t.feature }} ({{ t.kind }}, IV {{ "%.4f"|format(t.iv) }})</h3>
<table><tr><th>bin</th><th>count</th><th>bads</th><th>event rate</th><th>WOE</th>
<th>points</th></tr>
{% for b in t.bins %}<tr><td>{{ b.label }}</td><td>{{ b.count }}</td><td>{{ b.bads }}</td>
<td>{{ "%.4f"|format(b.event_rate) }}</td><td>{{ "%.4f"|format(b.woe) }}</td>
<td>{{ b.points }}</td></tr>
{% endfor %}</table>
{% endfor %}
<h2>Score distribution</h2>
{% for sample, p in r.performance.items() %}<h3>{{ sample }}</h3>
<table><tr><th>band</th><th>count</th><th>bads</th><th>bad rate</th></tr>
{% for band in p.score_bands %}<tr><td>[{{ band.lower }}, {{ band.upper }})</td>
<td>{{ band.count }}</td><td>{{ band.bads }}</td><td>{{ "%.4f"|format(band.bad_rate) }}</td></tr>
{% endfor %}</table>
{% endfor %}
</body></html>
"""
)


def report_html(report: dict[str, Any]) -> str:
    """The report dict as one self-contained HTML page."""
    return _TEMPLATE.render(r=report)
