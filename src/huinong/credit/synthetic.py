"""Seeded synthetic households and transport operators, with a default label that has signal.

Tests, the demo and the benchmarks need many households that look like a county's: most farm
2–15 mu, a few large growers up to 50; income mixes planting, livestock and wages from work
away; a third owe a bank, a few owe relatives; one in a hundred has a veto fact; some archive
sections are missing. :func:`synthetic_households` draws such a *facts* table (the same columns
and dtypes as :func:`huinong.credit.features.facts.facts_frame` produces), so the features step
and everything after it run on it unchanged; :func:`synthetic_features` adds the features step
for benchmarks.

The label: each household has a hidden *character* (how reliably it repays) that the bank only
sees through proxies — the peer review, the bureau's overdue history, how steadily money goes
through its account — and its economics (income, debt-to-income, informal debt, vetoes). Default
is drawn from a logistic model of those: ``P(default) = sigmoid(b0 + β·x)``, about 7 % overall.
Because part of the logit is the hidden character and the Bernoulli draw adds noise, a
scorecard trained on the features reaches an AUC of about 0.75–0.8, like real retail portfolios,
rather than a perfect separation no real data gives.

Everything is vectorized numpy from one ``numpy.random.Generator`` seeded by ``seed``: the same
seed gives the same frame; a million households take about three seconds on a busy 2-core
machine, most of it drawing the twelve months of account flows. Money is drawn in yuan as
floats and converted once to integer fen (rounded) — synthetic *inputs*, the facts are int64.

:func:`synthetic_operators` does the same for rural bus operators (客运贷): telematics facts
(mileage, harsh braking and speeding events, violations, route assessment) and a default label
driven by the same idea of a hidden driving discipline the telematics reveal.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from huinong.credit.features.compute import (
    CATALOGUE,
    HOUSEHOLD_SOURCES,
    OPERATOR_SOURCES,
    compute,
)
from huinong.credit.features.flows import BALANCE_COLUMNS, INFLOW_COLUMNS, OUTFLOW_COLUMNS

LABEL = "default"  # 1 = defaulted (bad), 0 = repaid (good)


def _fen(yuan: np.ndarray) -> np.ndarray:
    return np.rint(yuan * 100).astype(np.int64)


def _int(values: np.ndarray, missing: np.ndarray | None = None) -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.int64)
    mask = np.zeros(values.shape, bool) if missing is None else missing
    return pd.arrays.IntegerArray(np.where(mask, 0, values), mask.copy())


def _bool(values: np.ndarray, missing: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & ~missing, missing.copy())


def _dates(as_of: dt.date, days_back: np.ndarray, missing: np.ndarray) -> np.ndarray:
    dates = np.datetime64(as_of, "D") - days_back.astype("timedelta64[D]")
    return np.where(missing, np.datetime64("NaT"), dates).astype("datetime64[s]")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    # float32 draws: twice as fast, and ample precision for synthetic inputs.
    return median * np.exp(np.float32(sigma) * rng.standard_normal(n, dtype=np.float32))


def _frame(columns: dict[str, object], as_of: dt.date, sources: tuple[str, ...]) -> pd.DataFrame:
    order = [c.name for c in CATALOGUE.facts_columns(sources)]
    frame = pd.DataFrame({name: columns[name] for name in [*order, LABEL]}, copy=False)
    frame.attrs["as_of"] = as_of
    return frame


def synthetic_households(n: int, *, seed: int, as_of: dt.date) -> pd.DataFrame:
    """A facts table of ``n`` households as of ``as_of`` plus the label column ``default``."""
    rng = np.random.default_rng(seed)
    character = rng.standard_normal(n)  # hidden: higher repays worse
    columns: dict[str, object] = {}

    age = np.clip(rng.normal(48, 11, n), 21, 79)
    columns["head_born_on"] = _dates(as_of, (age * 365.25).astype(np.int64), rng.random(n) < 0.01)

    no_archive = rng.random(n) < 0.03
    members = np.minimum(1 + rng.poisson(2.6, n), 9)
    labour = np.clip(rng.binomial(members, 0.62), 1, members)
    large = rng.random(n) < 0.05
    land = np.where(large, rng.uniform(20, 50, n), np.clip(_lognormal(rng, 6.0, 0.8, n), 0, 50))
    land = np.round(land, 1)
    rented = np.round(np.where(land > 10, land * rng.uniform(0, 0.6, n), 0.0), 1)
    forest = np.round(np.where(rng.random(n) < 0.3, _lognormal(rng, 3.0, 1.0, n), 0.0), 1)
    livestock = np.where(
        rng.random(n) < 0.4, np.minimum(_lognormal(rng, 6, 1.0, n).astype(np.int64), 500), 0
    )
    machinery = np.where(rng.random(n) < 0.4, _lognormal(rng, 20_000, 0.8, n), 0.0)
    vehicles = np.where(rng.random(n) < 0.5, _lognormal(rng, 30_000, 0.7, n), 0.0)
    house = _lognormal(rng, 150_000, 0.6, n)
    no_house_value = no_archive | (rng.random(n) < 0.1)

    planting = land * rng.uniform(600, 1_500, n) * np.exp(0.3 * rng.standard_normal(n))
    breeding = livestock * rng.uniform(300, 1_500, n)
    wages = np.where(rng.random(n) < 0.6, _lognormal(rng, 22_000, 0.6, n) * labour**0.5, 0.0)
    business = np.where(rng.random(n) < 0.15, _lognormal(rng, 40_000, 0.8, n), 0.0)
    transfer = rng.uniform(500, 8_000, n)
    other = np.where(rng.random(n) < 0.2, rng.uniform(0, 5_000, n), 0.0)
    income_yuan = planting + breeding + wages + business + transfer + other
    no_income = no_archive | (rng.random(n) < 0.05)

    deposits = _lognormal(rng, 20_000, 1.0, n) * np.exp(-0.3 * character)
    assets = deposits + house + machinery + vehicles + livestock * 1_500.0
    bank_debt = np.where(rng.random(n) < 0.35, _lognormal(rng, 50_000, 0.9, n), 0.0)
    informal_p = _sigmoid(-2.0 + 0.6 * character)
    informal_debt = np.where(rng.random(n) < informal_p, _lognormal(rng, 20_000, 1.0, n), 0.0)

    vetoes = {
        "lawsuit": rng.random(n) < 0.01 * np.exp(0.5 * character),
        "bad_loan": rng.random(n) < 0.012 * np.exp(0.7 * character),
        "gambling_or_drugs": rng.random(n) < 0.003 * np.exp(0.7 * character),
        "other": rng.random(n) < 0.005,
    }
    subsidy_years = np.where(land > 0, rng.choice([3, 4, 5, 5, 5], n), 0)

    columns["archive_surveyed_on"] = _dates(as_of, rng.integers(0, 720, n), no_archive)
    columns["income_year"] = _int(np.full(n, as_of.year - 1), no_income)
    columns["member_count"] = _int(members, no_archive)
    columns["labour_count"] = _int(labour, no_archive)
    columns["cultivated_land_mu"] = np.where(no_archive, np.nan, land)
    columns["rented_in_land_mu"] = np.where(no_archive, np.nan, rented)
    columns["forest_land_mu"] = np.where(no_archive, np.nan, forest)
    columns["livestock_heads"] = _int(livestock, no_archive)
    columns["machinery_value_fen"] = _int(_fen(machinery), no_archive)
    columns["vehicle_value_fen"] = _int(_fen(vehicles), no_archive)
    columns["house_value_fen"] = _int(_fen(house), no_house_value)
    for name, yuan in (
        ("planting", planting),
        ("breeding", breeding),
        ("wages", wages),
        ("business", business),
        ("transfer", transfer),
        ("other", other),
    ):
        columns[f"income_{name}_fen"] = _int(_fen(yuan), no_income)
    columns["assets_fen"] = _int(_fen(assets), no_archive)
    columns["bank_debt_fen"] = _int(_fen(bank_debt), no_archive)
    columns["informal_debt_fen"] = _int(_fen(informal_debt), no_archive)
    columns["subsidies_5y_fen"] = _int(_fen(land * 110.0 * subsidy_years), no_archive)
    columns["subsidy_years_5y"] = _int(subsidy_years, no_archive)
    columns["entity_family_farm"] = _bool((land > 30) & (rng.random(n) < 0.5), no_archive)
    columns["entity_cooperative_member"] = _bool(rng.random(n) < 0.15, no_archive)
    columns["entity_large_grower"] = _bool((land > 25) & (rng.random(n) < 0.6), no_archive)
    columns["entity_leading_enterprise_contract"] = _bool(rng.random(n) < 0.05, no_archive)
    columns["honours_count"] = _int(rng.poisson(0.2 * np.exp(-0.3 * character)), no_archive)
    for kind, has in vetoes.items():
        columns[f"veto_{kind}_count"] = _int(has.astype(np.int64), no_archive)

    steadiness = _flows(rng, columns, n, income_yuan, deposits, character)
    _peer_review(rng, columns, n, income_yuan, character)
    blacklisted = _bureau(rng, columns, n, as_of, bank_debt, character)

    debt_to_income = np.minimum((bank_debt + informal_debt) / np.maximum(income_yuan, 1.0), 5.0)
    logit = (
        -3.55
        + 0.85 * character
        - 0.45 * (np.log(np.maximum(income_yuan, 1_000.0)) - np.log(60_000.0))
        + 0.35 * debt_to_income
        + 0.45 * (informal_debt > 0)
        + 1.6 * (vetoes["lawsuit"] | vetoes["bad_loan"] | vetoes["gambling_or_drugs"])
        + 1.5 * blacklisted
        - 0.5 * steadiness
        + 0.25 * ((age < 25) | (age > 65))
    )
    columns[LABEL] = (rng.random(n) < _sigmoid(logit)).astype(np.int8)
    return _frame(columns, as_of, HOUSEHOLD_SOURCES)


def _flows(
    rng: np.random.Generator,
    columns: dict[str, object],
    n: int,
    income_yuan: np.ndarray,
    deposits: np.ndarray,
    character: np.ndarray,
) -> np.ndarray:
    """Twelve months of deposit-account flows; returns the hidden steadiness in [0, 1]."""
    months = len(INFLOW_COLUMNS)
    has_account = rng.random(n) < 0.92
    on_book = np.where(rng.random(n) < 0.1, rng.integers(1, months, n), months)
    on_book = np.where(has_account, on_book, 0)
    steadiness = _sigmoid(1.2 - 0.8 * character + 0.5 * rng.standard_normal(n))
    monthly_yuan = income_yuan / 12 * rng.uniform(0.3, 0.9, n)  # the share that is banked
    threshold = (0.35 + 0.6 * steadiness).astype(np.float32)
    overspend = (0.1 * (1 - steadiness)).astype(np.float32)
    balance = _fen(deposits * rng.uniform(0.2, 0.8, n))
    season = 1 + 0.35 * np.cos(np.arange(months) * 2 * np.pi / 12)
    for t in range(months):  # oldest first; column m01 is the newest month
        k = months - 1 - t
        on_book_now = k < on_book
        active = on_book_now & (rng.random(n, dtype=np.float32) < threshold)
        noise = np.exp(np.float32(0.5) * rng.standard_normal(n, dtype=np.float32))
        inflow = np.where(active, _fen(monthly_yuan * (season[t] * noise)), 0)
        spend = rng.uniform(0.75, 1.05, n).astype(np.float32) + overspend
        outflow = np.where(active, np.minimum(_fen(inflow * spend / 100), balance + inflow), 0)
        balance = np.where(on_book_now, balance + inflow - outflow, 0)
        columns[INFLOW_COLUMNS[k]] = inflow
        columns[OUTFLOW_COLUMNS[k]] = outflow
        columns[BALANCE_COLUMNS[k]] = balance
    columns["flow_months_on_book"] = on_book.astype(np.int64)
    return np.where(has_account, steadiness, 0.5)


def _peer_review(
    rng: np.random.Generator,
    columns: dict[str, object],
    n: int,
    income_yuan: np.ndarray,
    character: np.ndarray,
) -> None:
    pending = rng.random(n) < 0.15
    reviewers = rng.integers(5, 10, n)
    integrity = np.clip(np.round((3.1 - 0.55 * character + rng.normal(0, 0.5, n)) * 2) / 2, 1, 4)
    recommend = np.clip(0.8 - 0.25 * character + rng.normal(0, 0.15, n), 0, 1)
    recommend = np.round(recommend * reviewers) / reviewers
    limit_yuan = np.round(income_yuan * 0.6 * (recommend >= 0.5) / 10_000) * 10_000
    columns["peer_integrity_median"] = np.where(pending, np.nan, integrity)
    columns["peer_suggested_limit_fen"] = _int(_fen(limit_yuan), pending)
    columns["peer_recommend_share"] = np.where(pending, np.nan, recommend)
    dispersion = np.clip(np.round(np.abs(rng.normal(0.6, 0.6, n)) + 0.4 * np.abs(character)), 0, 3)
    columns["peer_dispersion"] = np.where(pending, np.nan, dispersion)
    columns["peer_reviewer_count"] = _int(reviewers, pending)


def _bureau(
    rng: np.random.Generator,
    columns: dict[str, object],
    n: int,
    as_of: dt.date,
    bank_debt: np.ndarray,
    character: np.ndarray,
) -> np.ndarray:
    """Bureau report facts; returns who is blacklisted (for the label)."""
    no_report = rng.random(n) < 0.25
    overdue = rng.poisson(np.exp(-1.4 + 0.9 * character))
    max_days = np.where(
        overdue > 0, np.ceil(_lognormal(rng, 12, 0.9, n) * np.exp(0.4 * character)), 0
    )
    overdue_now = (overdue > 0) & (rng.random(n) < _sigmoid(-2.5 + character))
    overdue_yuan = np.where(overdue_now, _lognormal(rng, 5_000, 1.0, n), 0.0)
    loans = rng.poisson(0.3, n) + (bank_debt > 0)
    outstanding_yuan = np.where(loans > 0, bank_debt * rng.uniform(0.8, 1.2, n), 0.0)
    blacklisted = (rng.random(n) < _sigmoid(-6.5 + 1.5 * character)) & ~no_report
    columns["bureau_report_date"] = _dates(as_of, rng.integers(0, 540, n), no_report)
    columns["bureau_overdue_count"] = _int(overdue, no_report)
    columns["bureau_max_overdue_days"] = _int(max_days, no_report)
    columns["bureau_overdue_fen"] = _int(_fen(overdue_yuan), no_report)
    columns["bureau_outstanding_loans"] = _int(loans, no_report)
    columns["bureau_outstanding_fen"] = _int(
        _fen(outstanding_yuan), no_report | (rng.random(n) < 0.3)
    )
    columns["bureau_blacklisted"] = _bool(blacklisted, no_report)
    return blacklisted


def synthetic_features(n: int, *, seed: int, as_of: dt.date) -> pd.DataFrame:
    """The features table of :func:`synthetic_households` with its ``default`` label."""
    facts = synthetic_households(n, seed=seed, as_of=as_of)
    features = compute(facts, as_of=as_of)
    features[LABEL] = facts[LABEL].to_numpy()
    return features


def synthetic_operators(n: int, *, seed: int, as_of: dt.date) -> pd.DataFrame:
    """A telematics facts table of ``n`` rural bus operators plus the label ``default``."""
    rng = np.random.default_rng(seed)
    discipline = rng.standard_normal(n)  # hidden: higher drives worse
    months = np.where(rng.random(n) < 0.1, rng.integers(3, 12, n), 12)
    monthly_km = _lognormal(rng, 6_000, 0.35, n)
    km_sd = monthly_km * (0.08 + 0.12 * rng.random(n) + 0.06 * np.maximum(discipline, 0))
    km = np.rint(monthly_km * months).astype(np.int64)
    braking_rate = _lognormal(rng, 1.0, 0.3, n) * np.exp(0.35 * discipline)
    speeding_rate = _lognormal(rng, 0.3, 0.4, n) * np.exp(0.45 * discipline)
    violations = rng.poisson(np.exp(0.2 + 0.5 * discipline) * months / 12)
    not_assessed = rng.random(n) < 0.05
    route_score = np.clip(85 - 6 * discipline + rng.normal(0, 5, n), 40, 100).round(1)
    variability = km_sd / monthly_km
    logit = (
        -3.2
        + 1.0 * discipline
        + 2.5 * (variability - 0.15)
        - 0.35 * (np.log(monthly_km) - np.log(6_000))
        + 0.4 * rng.standard_normal(n)
    )
    columns: dict[str, object] = {
        "tele_months_observed": months.astype(np.int64),
        "tele_km_12m": _int(km),
        "tele_km_monthly_sd": km_sd,
        "tele_harsh_braking_12m": _int(rng.poisson(braking_rate * km / 100)),
        "tele_speeding_12m": _int(rng.poisson(speeding_rate * km / 100)),
        "tele_violations_12m": _int(violations),
        "tele_route_score": np.where(not_assessed, np.nan, route_score),
        "tele_route_assessed_on": _dates(as_of, rng.integers(0, 365, n), not_assessed),
        LABEL: (rng.random(n) < _sigmoid(logit)).astype(np.int8),
    }
    return _frame(columns, as_of, OPERATOR_SOURCES)
