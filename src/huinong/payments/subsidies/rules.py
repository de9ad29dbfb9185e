"""Row rules of a subsidy batch file, as pure functions (no database).

A batch file (惠农补贴代发 清单) lists one payment per row: name, resident ID number, deposit
account number (or blank), amount, subsidy type and year. Everything that can be decided from
the row alone is decided here and reported as :class:`RowError` values naming the row as the
user sees it in the file and the column at fault; what needs the database (does the customer
exist, does the name match, is the account theirs and open, was the row paid by an earlier
batch) is decided set-wise by ``service``.

**Amounts** are yuan as written by the agriculture bureau (``1234.5``, ``1,234.50``, ``80``),
converted to fen exactly once. More than two decimals is an error rather than a rounding:
a subsidy list is an instruction to pay, and silently paying 0.005 yuan more or less than the
file says is a difference nobody would find. Within two decimals the conversion is exact (the
``ROUND_HALF_UP`` of ``Money.from_yuan`` never has anything to round).

**Duplicates**: the same person (ID number) may receive a given subsidy type once per year.
Within a file the first row wins and every later one is an error naming the first.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from huinong.ids import is_ascii_digits, luhn_is_valid
from huinong.money import MAX_FEN, Money
from huinong.parties import rules as party_rules

# The columns of a batch file: canonical name -> headers accepted for it (Chinese as the
# bureaus write them, English as the platform exports them). Compared after trimming and
# lower-casing, so "ID Number " matches.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "姓名", "户主姓名", "收款人姓名"),
    "id_number": ("id_number", "id number", "身份证号", "身份证号码", "证件号码"),
    "account_number": ("account_number", "account number", "账号", "银行账号", "一卡通账号"),
    "amount": ("amount", "金额", "补贴金额", "金额(元)", "金额（元）"),
    "subsidy_type": ("subsidy_type", "subsidy type", "补贴类型", "补贴项目", "补贴名称"),
    "year": ("year", "年度", "补贴年度"),
}
REQUIRED_COLUMNS = tuple(COLUMNS)

# Subsidy types paid through 一卡通 (names as the Ministry of Agriculture and the Ministry of
# Finance publish them); the code is what the platform stores, the name what a file says.
SUBSIDY_TYPES: dict[str, str] = {
    "cultivated_land_protection": "耕地地力保护补贴",
    "machinery_purchase": "农机购置补贴",
    "grain_growing": "种粮补贴",
    "grain_farmer_one_off": "实际种粮农民一次性补贴",
    "ecological_compensation": "生态补偿",
    "forest_ecological_compensation": "森林生态效益补偿",
    "grassland_ecological_reward": "草原生态保护补助奖励",
    "returning_farmland_to_forest": "退耕还林补助",
    "improved_seed": "良种补贴",
    "livestock_insurance_premium": "能繁母猪补贴",
    "agricultural_insurance_premium": "农业保险保费补贴",
}
_TYPE_BY_TEXT: dict[str, str] = {
    **{name: code for code, name in SUBSIDY_TYPES.items()},
    **{code: code for code in SUBSIDY_TYPES},
}

FIRST_YEAR = 2000
_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]*)?$")
MAX_NAME = 200


@dataclass(frozen=True)
class RowError:
    """One finding: ``row`` as numbered in the file (the header is row 1)."""

    row: int
    column: str
    code: str
    message: str


@dataclass
class CheckedRow:
    """A data row after the pure checks. Fields that failed are ``None``."""

    row: int
    name: str | None
    id_number: str | None
    account_number: str | None  # None when blank (or invalid: see ``errors``)
    amount: int | None  # fen
    subsidy_type: str | None  # code of SUBSIDY_TYPES
    year: int | None
    errors: list[RowError] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def fail(self, column: str, code: str, message: str) -> None:
        self.errors.append(RowError(self.row, column, code, message))

    def __repr__(self) -> str:  # a traceback or debug print shows no ID or account number
        return f"CheckedRow(row={self.row}, valid={self.valid})"


def parse_amount(text: str) -> int:
    """Fen from a yuan amount with at most two decimals; ``ValueError`` with a reason."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if cleaned.startswith(("¥", "￥")):
        cleaned = cleaned[1:].strip()
    if not cleaned:
        raise ValueError("the amount is missing")
    if cleaned.startswith("-"):
        raise ValueError("the amount must be greater than zero")
    if not _AMOUNT.fullmatch(cleaned):
        raise ValueError("not an amount in yuan, such as 1234.50")
    _whole, _, decimals = cleaned.partition(".")
    if len(decimals) > 2:
        raise ValueError("at most two decimals (fen)")
    try:
        fen = Money.from_yuan(Decimal(cleaned)).amount_fen
    except (InvalidOperation, ValueError):
        raise ValueError(f"the amount must be at most {MAX_FEN // 100} yuan") from None
    if fen <= 0:
        raise ValueError("the amount must be greater than zero")
    if fen > MAX_FEN:
        raise ValueError(f"the amount must be at most {MAX_FEN // 100} yuan")
    return fen


def subsidy_type_code(text: str) -> str | None:
    return _TYPE_BY_TEXT.get(text.strip())


def check_row(row: int, values: dict[str, str], *, this_year: int) -> CheckedRow:
    """The pure checks of one data row (``values`` by canonical column, stripped strings)."""
    checked = CheckedRow(row, None, None, None, None, None, None)
    name = values.get("name", "").strip()
    if not name:
        checked.fail("name", "subsidies.name_required", "the name is missing")
    elif len(name) > MAX_NAME:
        checked.fail("name", "subsidies.name_too_long", f"at most {MAX_NAME} characters")
    else:
        checked.name = name
    id_number = values.get("id_number", "").strip().upper()
    if not id_number:
        checked.fail("id_number", "subsidies.id_number_required", "the ID number is missing")
    elif not party_rules.is_valid_resident_id(id_number):
        checked.fail(
            "id_number",
            "subsidies.invalid_id_number",
            "not a valid 18-character resident identity card number (GB 11643): check the "
            "last character and the birth date",
        )
    else:
        checked.id_number = id_number
    account = values.get("account_number", "").strip().replace(" ", "")
    if account:
        if not is_ascii_digits(account) or not luhn_is_valid(account):
            checked.fail(
                "account_number",
                "subsidies.invalid_account_number",
                "the account number's check digit does not match; check it for a typo",
            )
        else:
            checked.account_number = account
    try:
        checked.amount = parse_amount(values.get("amount", ""))
    except ValueError as exc:
        checked.fail("amount", "subsidies.invalid_amount", str(exc))
    type_text = values.get("subsidy_type", "").strip()
    code = subsidy_type_code(type_text)
    if code is None:
        checked.fail(
            "subsidy_type",
            "subsidies.unknown_subsidy_type",
            "not a known subsidy type; use one of: " + "、".join(SUBSIDY_TYPES.values()),
        )
    else:
        checked.subsidy_type = code
    checked.year = _year(checked, values.get("year", ""), this_year)
    return checked


def _year(checked: CheckedRow, text: str, this_year: int) -> int | None:
    text = text.strip()
    if text.endswith("年"):
        text = text[:-1]
    if text.endswith(".0"):  # a spreadsheet number cell
        text = text[:-2]
    if not is_ascii_digits(text) or len(text) != 4:
        checked.fail("year", "subsidies.invalid_year", "the year is four digits, such as 2026")
        return None
    year = int(text)
    if not FIRST_YEAR <= year <= this_year + 1:
        checked.fail(
            "year",
            "subsidies.year_out_of_range",
            f"the year must be between {FIRST_YEAR} and {this_year + 1}",
        )
        return None
    return year


def mark_duplicates(rows: Sequence[CheckedRow]) -> None:
    """Fail every row repeating the (ID number, subsidy type, year) of an earlier valid row."""
    first: dict[tuple[str, str, int], int] = {}
    for row in rows:
        if row.id_number is None or row.subsidy_type is None or row.year is None:
            continue
        key = (row.id_number, row.subsidy_type, row.year)
        if key in first:
            row.fail(
                "id_number",
                "subsidies.duplicate_in_file",
                f"this person already has this subsidy type and year in row {first[key]}",
            )
        else:
            first[key] = row.row


def check_rows(rows: Iterable[tuple[int, dict[str, str]]], *, this_year: int) -> list[CheckedRow]:
    checked = [check_row(number, values, this_year=this_year) for number, values in rows]
    mark_duplicates(checked)
    return checked


def error_report_csv(errors: Iterable[RowError]) -> str:
    """The downloadable error report: CSV with row, column, code, message (UTF-8 with BOM
    so that Excel on a Chinese Windows opens it right)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "column", "code", "message"])
    for error in errors:
        writer.writerow([error.row, error.column, error.code, error.message])
    return out.getvalue()
