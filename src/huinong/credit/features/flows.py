"""The ledger source: fund flows of the household's deposit accounts, month by month.

Input is what the ledger's statements give, in either of two shapes:

* raw postings — (booked at, signed amount in fen: + into the account) of all the household's
  deposit accounts, read from the first posting so running balances are right
  (:func:`monthly_from_postings` buckets them by calendar month in Asia/Shanghai, the
  institutions' business time zone);
* already monthly figures (:class:`MonthlyFlow`: inflow, outflow, month-end balance).

The window is the twelve *complete* calendar months ending on or before ``as_of``: the month
of ``as_of`` counts only when ``as_of`` is its last day. A half month would look like a drop in
activity, and excluding it also means nothing dated after ``as_of`` can reach a fact. Months of
the window before the household's first month on the ledger are "not on book": their facts are
0 and ``flow_months_on_book`` (0–12) says how many months count, so a new account's means are
over its own months, not diluted by months it did not exist. A month on book without a record
had no flows and carries the previous month-end balance.

Facts are 12 monthly columns per measure (``inflow_m01_fen`` is the latest complete month,
``m12`` eleven months earlier): extraction is per household, the statistics are vectorized over
the whole table. Means of money are integer fen (ROUND_HALF_UP once); stability statistics are
floats. Transfers between the household's own accounts count as both an inflow and an outflow
here: the caller leaves them out if it wants them ignored.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from huinong.credit.features.arrays import mean_fen, nullable_int, ratio
from huinong.credit.features.catalogue import Column, Source, spec

BUSINESS_TIME_ZONE = ZoneInfo("Asia/Shanghai")
WINDOW_MONTHS = 12
NO_ACCOUNT = "no deposit account was on the ledger in the window"


@dataclass(frozen=True)
class Posting:
    """One posting to a deposit account: + into the account, - out of it."""

    booked_at: dt.datetime | dt.date
    amount_fen: int


@dataclass(frozen=True)
class MonthlyFlow:
    """One calendar month of a household's deposit accounts (``month`` is its first day)."""

    month: dt.date
    inflow_fen: int
    outflow_fen: int
    balance_fen: int  # at the end of the month


def _month_names(measure: str) -> list[str]:
    return [f"{measure}_m{k:02d}_fen" for k in range(1, WINDOW_MONTHS + 1)]


INFLOW_COLUMNS = _month_names("inflow")
OUTFLOW_COLUMNS = _month_names("outflow")
BALANCE_COLUMNS = _month_names("balance")

FACTS = (
    spec(
        "flow_months_on_book", "months", "int64",
        "months of the 12-month window the household had a deposit account", "存款账户在册月数",
        "never",
    ),
    *(
        spec(name, "fen", "int64", f"{measure} of month {k} back (1 = latest complete month)",
             f"前第{k}月{zh}", "never: 0 when not on book")
        for measure, zh, names in (
            ("inflow", "流入", INFLOW_COLUMNS),
            ("outflow", "流出", OUTFLOW_COLUMNS),
            ("month-end balance", "月末余额", BALANCE_COLUMNS),
        )
        for k, name in enumerate(names, start=1)
    ),
)  # fmt: skip

FEATURES = (
    spec("flow_months_on_book", "months", "int64",
         "months on book in the 12-month window", "存款账户在册月数", "never"),
    spec("inflow_mean_6m_fen", "fen", "Int64",
         "mean monthly inflow, last 6 complete months on book", "近6月月均流入", NO_ACCOUNT),
    spec("inflow_mean_12m_fen", "fen", "Int64",
         "mean monthly inflow, last 12 complete months on book", "近12月月均流入", NO_ACCOUNT),
    spec("outflow_mean_6m_fen", "fen", "Int64",
         "mean monthly outflow, last 6 complete months on book", "近6月月均流出", NO_ACCOUNT),
    spec("outflow_mean_12m_fen", "fen", "Int64",
         "mean monthly outflow, last 12 complete months on book", "近12月月均流出", NO_ACCOUNT),
    spec("net_flow_mean_12m_fen", "fen", "Int64",
         "mean monthly inflow less outflow, 12 months", "近12月月均净流入", NO_ACCOUNT),
    spec("months_active_12m", "count", "Int64",
         "months of the 12 with any inflow or outflow", "近12月活跃月数", NO_ACCOUNT),
    spec("balance_mean_12m_fen", "fen", "Int64",
         "mean month-end balance, 12 months", "近12月月末余额均值", NO_ACCOUNT),
    spec("balance_cv_12m", "ratio", "float64",
         "coefficient of variation of month-end balances (population sd / mean)",
         "月末余额变异系数", "fewer than 2 months on book or a mean balance <= 0"),
    spec("positive_balance_share_12m", "share", "float64",
         "share of months on book ending with a balance > 0", "月末余额为正月份占比", NO_ACCOUNT),
    spec("inflow_trend_ratio", "ratio", "float64",
         "mean inflow of the last 3 months over the 12-month mean (> 1: growing)",
         "流入趋势(近3月/近12月)", "fewer than 6 months on book or no inflow in 12 months"),
)  # fmt: skip


def _month_of(when: dt.datetime | dt.date) -> dt.date:
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise ValueError("posting times must carry a time zone (they are stored in UTC)")
        when = when.astimezone(BUSINESS_TIME_ZONE).date()
    return when.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def monthly_from_postings(
    postings: Iterable[Posting], *, opening_balance_fen: int = 0
) -> list[MonthlyFlow]:
    """Calendar months from the first posting's to the last's, gaps included, with running
    month-end balances starting from ``opening_balance_fen``."""
    by_month: dict[dt.date, list[int]] = {}
    for posting in postings:
        flows = by_month.setdefault(_month_of(posting.booked_at), [0, 0])
        flows[0 if posting.amount_fen >= 0 else 1] += abs(posting.amount_fen)
    if not by_month:
        return []
    months: list[MonthlyFlow] = []
    balance = opening_balance_fen
    month, last = min(by_month), max(by_month)
    while month <= last:
        inflow, outflow = by_month.get(month, (0, 0))
        balance += inflow - outflow
        months.append(MonthlyFlow(month, inflow, outflow, balance))
        month = add_months(month, 1)
    return months


def last_complete_month(as_of: dt.date) -> dt.date:
    """The first day of the latest calendar month that has ended by the end of ``as_of``."""
    month = as_of.replace(day=1)
    if as_of.day == calendar.monthrange(as_of.year, as_of.month)[1]:
        return month
    return add_months(month, -1)


def flow_facts(months: Iterable[MonthlyFlow], as_of: dt.date) -> dict[str, object]:
    """The ledger facts of one household as of ``as_of`` from its monthly figures."""
    newest = last_complete_month(as_of)
    known = {m.month.replace(day=1): m for m in months if m.month.replace(day=1) <= newest}
    facts: dict[str, object] = {"flow_months_on_book": 0}
    facts.update(dict.fromkeys((*INFLOW_COLUMNS, *OUTFLOW_COLUMNS, *BALANCE_COLUMNS), 0))
    if not known:
        return facts
    first = min(known)
    window = [add_months(newest, -k) for k in range(WINDOW_MONTHS)]
    on_book = [month for month in window if month >= first]
    facts["flow_months_on_book"] = len(on_book)
    earlier = [m for m in known if m < on_book[-1]] if on_book else []
    balance = known[max(earlier)].balance_fen if earlier else 0
    for k in reversed(range(len(on_book))):  # oldest first, carrying the balance
        record = known.get(on_book[k])
        if record is not None:
            facts[INFLOW_COLUMNS[k]] = record.inflow_fen
            facts[OUTFLOW_COLUMNS[k]] = record.outflow_fen
            balance = record.balance_fen
        facts[BALANCE_COLUMNS[k]] = balance
    return facts


def _matrix(facts: pd.DataFrame, names: list[str]) -> np.ndarray:
    return np.column_stack([facts[name].to_numpy(dtype=np.int64) for name in names])


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    # Column by column over the 12 months: each step is a contiguous vector operation, which
    # is several times faster than stacking a (rows x 12) matrix first.
    on_book_count = facts["flow_months_on_book"].to_numpy(dtype=np.int64)
    rows = len(on_book_count)
    sums = {key: np.zeros(rows, np.int64) for key in ("in6", "in12", "out6", "out12", "bal")}
    active = np.zeros(rows, np.int64)
    positive = np.zeros(rows, np.int64)
    inflow_3m = np.zeros(rows, np.int64)
    balances: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(WINDOW_MONTHS):
        on_book = k < on_book_count
        inflow = np.where(on_book, facts[INFLOW_COLUMNS[k]].to_numpy(dtype=np.int64), 0)
        outflow = np.where(on_book, facts[OUTFLOW_COLUMNS[k]].to_numpy(dtype=np.int64), 0)
        balance = np.where(on_book, facts[BALANCE_COLUMNS[k]].to_numpy(dtype=np.int64), 0)
        sums["in12"] += inflow
        sums["out12"] += outflow
        if k < 6:
            sums["in6"] += inflow
            sums["out6"] += outflow
        if k < 3:
            inflow_3m += inflow
        sums["bal"] += balance
        active += (inflow > 0) | (outflow > 0)
        positive += balance > 0
        balances.append((balance, on_book))
    last6 = np.minimum(on_book_count, 6)

    out: dict[str, Column] = {"flow_months_on_book": facts["flow_months_on_book"]}
    for name, total, count in (
        ("inflow_mean_6m_fen", sums["in6"], last6),
        ("inflow_mean_12m_fen", sums["in12"], on_book_count),
        ("outflow_mean_6m_fen", sums["out6"], last6),
        ("outflow_mean_12m_fen", sums["out12"], on_book_count),
        ("net_flow_mean_12m_fen", sums["in12"] - sums["out12"], on_book_count),
        ("balance_mean_12m_fen", sums["bal"], on_book_count),
    ):
        out[name] = nullable_int(*mean_fen(total, count))
    no_account = on_book_count == 0
    out["months_active_12m"] = nullable_int(active, no_account)

    months = np.where(no_account, np.nan, on_book_count)
    balance_mean = sums["bal"] / months
    squares = np.zeros(rows)
    for balance, on_book in balances:  # two passes: no cancellation in sum(x²) - n·mean²
        squares += np.where(on_book, (balance - balance_mean) ** 2, 0.0)
    cv = ratio(np.sqrt(squares / months), np.where(balance_mean > 0, balance_mean, np.nan))
    out["balance_cv_12m"] = np.where(on_book_count >= 2, cv, np.nan)
    out["positive_balance_share_12m"] = ratio(positive, months)
    trend = ratio(inflow_3m / 3, sums["in12"] / months)
    out["inflow_trend_ratio"] = np.where(on_book_count >= 6, trend, np.nan)
    return out


SOURCE = Source("ledger", FACTS, FEATURES, _compute)
