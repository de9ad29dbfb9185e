"""The peer-review source: the blind peer review's aggregate (背靠背评议), taken as plain values.

The campaign's aggregation (median integrity, suggested limit, share recommending, dispersion,
reviewers counted) is computed by :mod:`huinong.credit.campaigns` once the panel's quorum is
met; a household below quorum has no aggregate and every peer feature is missing — a pending
review is not a bad one. The features are the aggregate's values as they are; from
:class:`huinong.credit.campaigns.peer_review.Aggregate`: ``integrity`` → integrity median,
``integrity_range`` → dispersion, the others by name. Floats are fine here: these are ratings
and shares, not money.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

import pandas as pd

from huinong.credit.features.catalogue import Column, Source, spec

PENDING = "the review has not reached its quorum (or there was none)"

FACTS = (
    spec("peer_integrity_median", "score", "float64",
         "median integrity rating, 1 (poor) to 4 (excellent)", "评议诚信度中位数(1-4)", PENDING),
    spec("peer_suggested_limit_fen", "fen", "Int64",
         "the panel's suggested credit limit", "评议建议额度", PENDING),
    spec("peer_recommend_share", "share", "float64",
         "share of reviewers recommending credit", "推荐授信评议人占比", PENDING),
    spec("peer_dispersion", "score", "float64",
         "spread of the integrity ratings, max - min (0-3)", "评议诚信度极差", PENDING),
    spec("peer_reviewer_count", "count", "Int64",
         "reviewers who rated the household", "评议人数", PENDING),
)  # fmt: skip

FEATURES = FACTS


def peer_facts(
    *,
    integrity_median: Decimal | float | None,
    suggested_limit_fen: int | None,
    recommend_share: Decimal | float | None,
    dispersion: Decimal | float | None,
    reviewer_count: int | None,
) -> dict[str, object]:
    """One household's aggregate (all ``None`` while the review is pending)."""
    return {
        "peer_integrity_median": None if integrity_median is None else float(integrity_median),
        "peer_suggested_limit_fen": suggested_limit_fen,
        "peer_recommend_share": None if recommend_share is None else float(recommend_share),
        "peer_dispersion": None if dispersion is None else float(dispersion),
        "peer_reviewer_count": reviewer_count,
    }


def pending() -> dict[str, object]:
    return {column.name: None for column in FACTS}


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    return {column.name: facts[column.name] for column in FEATURES}


SOURCE = Source("peer_review", FACTS, FEATURES, _compute)
