"""The bureau source: an imported credit-bureau file (外部征信文件), parsed and dated.

The file is a CSV (UTF-8 or GBK) or an XLSX sheet, one row per report: ID number, report date,
overdue count, longest overdue in days, overdue amount (yuan), outstanding loans (count),
optionally the outstanding balance (yuan), and a blacklist flag. Headers may be English or
Chinese (:data:`LAYOUT`). Reading is :mod:`huinong.tabular`'s: a file that cannot be used at all
raises ``InvalidInput`` naming ``file`` (codes ``credit.bureau.*``); a bad *row* is a
:class:`RowProblem` naming the row as the user sees it and the column, and the row is left out
while the good rows are kept — one mistyped date must not block a village's import.

Amounts convert from yuan to fen once, ROUND_HALF_UP (:meth:`huinong.money.Money.from_yuan`).
A blank blacklist flag is a problem, not a "no": an unknown answer is not a clean record.

As of a date, only reports dated on or before it count, and of those the latest (the last row
among equal dates): a report dated later, even if already imported, is never seen.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pandas as pd

from huinong import tabular
from huinong.credit.features.arrays import nullable_int, whole_months_since
from huinong.credit.features.catalogue import Column, Source, spec
from huinong.money import Money, MoneyError
from huinong.parties.rules import is_valid_resident_id

LAYOUT = tabular.Layout(
    error_prefix="credit.bureau",
    columns={
        "id_number": ("id_number", "身份证号", "身份证号码", "证件号码"),
        "report_date": ("report_date", "报告日期", "查询日期"),
        "overdue_count": ("overdue_count", "逾期次数", "累计逾期次数"),
        "max_overdue_days": ("max_overdue_days", "最长逾期天数", "最大逾期天数"),
        "overdue_amount": ("overdue_amount", "逾期金额", "逾期金额(元)", "当前逾期金额"),
        "outstanding_loans": ("outstanding_loans", "未结清贷款笔数", "未结清贷款"),
        "outstanding_balance": ("outstanding_balance", "未结清余额", "未结清余额(元)"),
        "blacklisted": ("blacklisted", "blacklist", "黑名单", "是否黑名单"),
    },
    required=(
        "id_number", "report_date", "overdue_count", "max_overdue_days", "overdue_amount",
        "outstanding_loans", "blacklisted",
    ),
    what="bureau file",
)  # fmt: skip
_YES = frozenset({"是", "y", "yes", "true", "1"})
_NO = frozenset({"否", "n", "no", "false", "0"})
_DATE = re.compile(r"^(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})(?:[T ]00:00(?::00)?)?$")
NO_REPORT = "no report dated on or before the as-of date"


@dataclass(frozen=True)
class BureauReport:
    id_number: str
    report_date: dt.date
    overdue_count: int
    max_overdue_days: int
    overdue_fen: int
    outstanding_loans: int
    outstanding_fen: int | None
    blacklisted: bool
    row: int  # in the file, as the user sees it


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    code: str
    message: str


@dataclass(frozen=True)
class BureauFile:
    reports: tuple[BureauReport, ...]
    problems: tuple[RowProblem, ...]


def parse_file(file_name: str, content: bytes, *, encoding: str | None = None) -> BureauFile:
    """The good reports of a bureau file and the problems of the others."""
    return read_rows(tabular.parse(file_name, content, LAYOUT, encoding=encoding).rows)


class _RowReader:
    """Reads the cells of one row, collecting a problem per bad cell."""

    def __init__(self, number: int, cells: Mapping[str, str]) -> None:
        self.number = number
        self.cells = cells
        self.problems: list[RowProblem] = []

    def problem(self, column: str, code: str, message: str) -> None:
        self.problems.append(RowProblem(self.number, column, f"credit.bureau.{code}", message))

    def text(self, column: str) -> str | None:
        value = self.cells.get(column, "").strip()
        if not value:
            if column in LAYOUT.required:
                self.problem(column, "required", "this cell must not be empty")
            return None
        return value

    def count(self, column: str) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            self.problem(column, "invalid_count", f"{value!r} is not a whole number >= 0")
            return None
        return int(value)

    def fen(self, column: str) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            amount = Decimal(value.replace(",", ""))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
            return Money.from_yuan(amount).amount_fen
        except (InvalidOperation, MoneyError):
            self.problem(column, "invalid_amount", f"{value!r} is not an amount in yuan >= 0")
            return None

    def date(self, column: str) -> dt.date | None:
        value = self.text(column)
        if value is None:
            return None
        match = _DATE.fullmatch(value)
        try:
            if match is None:
                raise ValueError
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            self.problem(column, "invalid_date", f"{value!r} is not a date like 2024-03-31")
            return None

    def flag(self, column: str) -> bool | None:
        value = self.text(column)
        if value is None:
            return None
        if value.lower() in _YES:
            return True
        if value.lower() in _NO:
            return False
        self.problem(column, "invalid_flag", f"{value!r} is not 是/否 (yes/no)")
        return None


def read_row(number: int, cells: Mapping[str, str]) -> BureauReport | list[RowProblem]:
    """One row as a report, or every problem it has."""
    reader = _RowReader(number, cells)
    id_number = reader.text("id_number")
    if id_number is not None:
        id_number = id_number.upper()
        if not is_valid_resident_id(id_number):
            reader.problem("id_number", "invalid_id_number", "not a valid resident ID number")
    values = (
        reader.date("report_date"),
        reader.count("overdue_count"),
        reader.count("max_overdue_days"),
        reader.fen("overdue_amount"),
        reader.count("outstanding_loans"),
    )
    outstanding_fen = reader.fen("outstanding_balance")
    blacklisted = reader.flag("blacklisted")
    report_date, overdue_count, max_days, overdue_fen, loans = values
    if overdue_count == 0 and max_days:
        reader.problem(
            "max_overdue_days", "inconsistent", "overdue days without any overdue counted"
        )
    if overdue_count == 0 and overdue_fen:
        reader.problem("overdue_amount", "inconsistent", "an overdue amount without any overdue")
    if (
        reader.problems
        or id_number is None
        or report_date is None
        or overdue_count is None
        or max_days is None
        or overdue_fen is None
        or loans is None
        or blacklisted is None
    ):
        return reader.problems
    return BureauReport(
        id_number, report_date, overdue_count, max_days, overdue_fen, loans, outstanding_fen,
        blacklisted, number,
    )  # fmt: skip


def read_rows(rows: Iterable[tuple[int, Mapping[str, str]]]) -> BureauFile:
    """Every row read; a second report for the same person and date is a problem."""
    reports: list[BureauReport] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for number, cells in rows:
        result = read_row(number, cells)
        if isinstance(result, list):
            problems.extend(result)
            continue
        key = (result.id_number, result.report_date)
        if key in seen:
            problems.append(
                RowProblem(
                    number,
                    "report_date",
                    "credit.bureau.duplicate_report",
                    f"row {seen[key]} already reports this person on this date",
                )
            )
            continue
        seen[key] = number
        reports.append(result)
    return BureauFile(tuple(reports), tuple(problems))


def latest_report(reports: Iterable[BureauReport], as_of: dt.date) -> BureauReport | None:
    """The latest report dated on or before ``as_of`` (the last given among equal dates)."""
    chosen: BureauReport | None = None
    for report in reports:
        if report.report_date <= as_of and (
            chosen is None or report.report_date >= chosen.report_date
        ):
            chosen = report
    return chosen


FACTS = (
    spec("bureau_report_date", "date", "datetime64[s]",
         "date of the bureau report used", "征信报告日期", NO_REPORT),
    spec("bureau_overdue_count", "count", "Int64",
         "overdue occurrences reported", "征信逾期次数", NO_REPORT),
    spec("bureau_max_overdue_days", "count", "Int64",
         "longest overdue, days", "最长逾期天数", NO_REPORT),
    spec("bureau_overdue_fen", "fen", "Int64", "amount overdue now", "当前逾期金额", NO_REPORT),
    spec("bureau_outstanding_loans", "count", "Int64",
         "loans not yet repaid, elsewhere", "未结清贷款笔数", NO_REPORT),
    spec("bureau_outstanding_fen", "fen", "Int64",
         "balance of loans not yet repaid", "未结清贷款余额",
         "no report, or the report does not give it"),
    spec("bureau_blacklisted", "flag", "boolean",
         "on the bureau's blacklist", "征信黑名单", NO_REPORT),
)  # fmt: skip

FEATURES = (
    spec("bureau_report_age_months", "months", "Int64",
         "completed months since the report", "征信报告距今月数", NO_REPORT),
    *FACTS[1:],
)  # fmt: skip


def bureau_facts(reports: Iterable[BureauReport], as_of: dt.date) -> dict[str, object]:
    """One person's bureau facts from their reports (matched by ID number by the caller)."""
    report = latest_report(reports, as_of)
    if report is None:
        return {column.name: None for column in FACTS}
    return {
        "bureau_report_date": report.report_date,
        "bureau_overdue_count": report.overdue_count,
        "bureau_max_overdue_days": report.max_overdue_days,
        "bureau_overdue_fen": report.overdue_fen,
        "bureau_outstanding_loans": report.outstanding_loans,
        "bureau_outstanding_fen": report.outstanding_fen,
        "bureau_blacklisted": report.blacklisted,
    }


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    age, missing = whole_months_since(facts["bureau_report_date"], as_of)
    out: dict[str, Column] = {"bureau_report_age_months": nullable_int(age, missing)}
    out.update({column.name: facts[column.name] for column in FACTS[1:]})
    return out


SOURCE = Source("bureau", FACTS, FEATURES, _compute)
