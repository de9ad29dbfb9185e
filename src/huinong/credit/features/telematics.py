"""The telematics source (车联网): driving data of passenger-transport operators (客运贷).

A rural bus operator is scored on how its vehicles are driven: mileage (is the route really
run, and steadily?), harsh braking and speeding per 100 km (how safely), traffic violations,
and the transport authority's route assessment score. Input per operator: monthly records
(:class:`TelematicsMonth`) of its vehicles, summed, and the dated route assessments.

The window is the same as the ledger's: the twelve complete calendar months ending on or
before ``as_of`` (:func:`~huinong.credit.features.flows.last_complete_month`); the route score
is the latest assessment dated on or before ``as_of``. Event counts are summed over the window
and divided by its kilometres, so a busy operator is not penalised for driving more.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from huinong.credit.features.arrays import floats, ints, nullable_int, ratio, whole_months_since
from huinong.credit.features.catalogue import Column, Source, spec
from huinong.credit.features.flows import WINDOW_MONTHS, add_months, last_complete_month

NOT_OBSERVED = "no telematics month in the 12-month window"
NOT_ASSESSED = "no route assessment dated on or before the as-of date"


@dataclass(frozen=True)
class TelematicsMonth:
    month: dt.date  # any day of the month
    km: int
    harsh_braking_events: int
    speeding_events: int
    violations: int


@dataclass(frozen=True)
class RouteAssessment:
    assessed_on: dt.date
    score: float  # 0–100, the transport authority's assessment


FACTS = (
    spec(
        "tele_months_observed", "months", "int64",
        "months of the 12-month window with telematics data", "车联网数据覆盖月数", "never",
    ),
    spec("tele_km_12m", "km", "Int64",
         "kilometres driven in the window", "近12月行驶里程", NOT_OBSERVED),
    spec(
        "tele_km_monthly_sd", "km", "float64",
        "population sd of monthly kilometres, observed months", "月里程标准差", NOT_OBSERVED,
    ),
    spec("tele_harsh_braking_12m", "count", "Int64",
         "harsh braking events", "急刹车次数", NOT_OBSERVED),
    spec("tele_speeding_12m", "count", "Int64", "speeding events", "超速次数", NOT_OBSERVED),
    spec("tele_violations_12m", "count", "Int64",
         "traffic violations", "交通违法次数", NOT_OBSERVED),
    spec("tele_route_score", "score", "float64",
         "latest route assessment, 0-100", "线路考核评分", NOT_ASSESSED),
    spec(
        "tele_route_assessed_on", "date", "datetime64[s]",
        "date of that route assessment", "线路考核日期", NOT_ASSESSED,
    ),
)  # fmt: skip

FEATURES = (
    FACTS[0],
    spec("tele_km_monthly_mean", "km", "float64",
         "mean kilometres per observed month", "月均行驶里程", NOT_OBSERVED),
    spec(
        "tele_km_monthly_cv", "ratio", "float64",
        "coefficient of variation of monthly kilometres", "月里程变异系数",
        "not observed, or no kilometres",
    ),
    spec(
        "tele_harsh_braking_per_100km", "per_100km", "float64",
        "harsh braking events per 100 km", "百公里急刹车次数", "not observed, or no kilometres",
    ),
    spec(
        "tele_speeding_per_100km", "per_100km", "float64",
        "speeding events per 100 km", "百公里超速次数", "not observed, or no kilometres",
    ),
    FACTS[5],
    FACTS[6],
    spec(
        "tele_route_assessment_age_months", "months", "Int64",
        "completed months since the route assessment", "线路考核距今月数", NOT_ASSESSED,
    ),
)  # fmt: skip


def telematics_facts(
    months: Iterable[TelematicsMonth],
    assessments: Iterable[RouteAssessment],
    as_of: dt.date,
) -> dict[str, object]:
    """One operator's telematics facts as of ``as_of``; months are summed over vehicles."""
    newest = last_complete_month(as_of)
    oldest = add_months(newest, -WINDOW_MONTHS)  # exclusive
    by_month: dict[dt.date, list[int]] = {}
    for record in months:
        month = record.month.replace(day=1)
        if oldest < month <= newest:
            totals = by_month.setdefault(month, [0, 0, 0, 0])
            totals[0] += record.km
            totals[1] += record.harsh_braking_events
            totals[2] += record.speeding_events
            totals[3] += record.violations
    latest: RouteAssessment | None = None
    for assessment in assessments:
        if assessment.assessed_on <= as_of and (
            latest is None or assessment.assessed_on >= latest.assessed_on
        ):
            latest = assessment
    facts: dict[str, object] = {
        "tele_months_observed": len(by_month),
        "tele_route_score": None if latest is None else float(latest.score),
        "tele_route_assessed_on": None if latest is None else latest.assessed_on,
    }
    if not by_month:
        facts.update(
            dict.fromkeys(
                (
                    "tele_km_12m",
                    "tele_km_monthly_sd",
                    "tele_harsh_braking_12m",
                    "tele_speeding_12m",
                    "tele_violations_12m",
                ),
            )
        )
        return facts
    kms = [totals[0] for totals in by_month.values()]
    mean = sum(kms) / len(kms)
    facts["tele_km_12m"] = sum(kms)
    facts["tele_km_monthly_sd"] = math.sqrt(sum((km - mean) ** 2 for km in kms) / len(kms))
    facts["tele_harsh_braking_12m"] = sum(t[1] for t in by_month.values())
    facts["tele_speeding_12m"] = sum(t[2] for t in by_month.values())
    facts["tele_violations_12m"] = sum(t[3] for t in by_month.values())
    return facts


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    observed = facts["tele_months_observed"].to_numpy(dtype=np.int64)
    km = floats(facts["tele_km_12m"])
    mean = ratio(km, observed)
    braking, _ = ints(facts["tele_harsh_braking_12m"])
    speeding, _ = ints(facts["tele_speeding_12m"])
    age, not_assessed = whole_months_since(facts["tele_route_assessed_on"], as_of)
    return {
        "tele_months_observed": facts["tele_months_observed"],
        "tele_km_monthly_mean": mean,
        "tele_km_monthly_cv": ratio(floats(facts["tele_km_monthly_sd"]), mean),
        "tele_harsh_braking_per_100km": ratio(braking * 100.0, km),
        "tele_speeding_per_100km": ratio(speeding * 100.0, km),
        "tele_violations_12m": facts["tele_violations_12m"],
        "tele_route_score": facts["tele_route_score"],
        "tele_route_assessment_age_months": nullable_int(age, not_assessed),
    }


SOURCE = Source("telematics", FACTS, FEATURES, _compute)
