"""Row rules of subsidy batch files (pure: no database)."""

from __future__ import annotations

import pytest

from huinong.ids import luhn_check_digit
from huinong.parties.rules import resident_id_check_char
from huinong.payments.subsidies import files, rules

BODY = "11010519491231002"
ID_NUMBER = BODY + resident_id_check_char(BODY)
ACCOUNT = "622848000000000" + "000"
ACCOUNT = ACCOUNT + luhn_check_digit(ACCOUNT)


def values(**changes: str) -> dict[str, str]:
    row = {
        "name": "张三",
        "id_number": ID_NUMBER,
        "account_number": ACCOUNT,
        "amount": "1234.50",
        "subsidy_type": "耕地地力保护补贴",
        "year": "2026",
    }
    row.update(changes)
    return row


def codes(row: rules.CheckedRow) -> list[tuple[str, str]]:
    return [(e.column, e.code) for e in row.errors]


def test_a_good_row_is_valid_and_converted() -> None:
    row = rules.check_row(2, values(), this_year=2026)
    assert row.valid, row.errors
    assert (row.amount, row.subsidy_type, row.year) == (123450, "cultivated_land_protection", 2026)
    assert row.id_number == ID_NUMBER and row.account_number == ACCOUNT
    assert "张三" not in repr(row) and ID_NUMBER not in repr(row)


@pytest.mark.parametrize(
    ("text", "fen"),
    [("1", 100), ("0.01", 1), ("1,234.5", 123450), ("¥80", 8000), ("80.", 8000), ("12.30", 1230)],
)
def test_amounts_in_yuan_become_fen_exactly(text: str, fen: int) -> None:
    assert rules.parse_amount(text) == fen


@pytest.mark.parametrize(
    "text", ["", "0", "0.00", "-5", "1.005", "abc", "1e3", "1.2.3", "99999999999999999"]
)
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        rules.parse_amount(text)


def test_a_wrong_check_digit_is_an_id_number_error() -> None:
    wrong = ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")
    row = rules.check_row(7, values(id_number=wrong), this_year=2026)
    assert codes(row) == [("id_number", "subsidies.invalid_id_number")]
    assert row.errors[0].row == 7


def test_each_bad_column_is_reported() -> None:
    row = rules.check_row(
        3,
        values(
            name="",
            account_number="6228480000000000001",
            amount="-1",
            subsidy_type="发钱",
            year="1999",
        ),
        this_year=2026,
    )
    assert codes(row) == [
        ("name", "subsidies.name_required"),
        ("account_number", "subsidies.invalid_account_number"),
        ("amount", "subsidies.invalid_amount"),
        ("subsidy_type", "subsidies.unknown_subsidy_type"),
        ("year", "subsidies.year_out_of_range"),
    ]


def test_a_blank_account_is_allowed() -> None:
    row = rules.check_row(2, values(account_number=""), this_year=2026)
    assert row.valid and row.account_number is None


@pytest.mark.parametrize(
    ("text", "ok"),
    [("2026", True), ("2027年", True), ("2028", False), ("26", False), ("2026.0", True)],
)
def test_years(text: str, ok: bool) -> None:
    assert rules.check_row(2, values(year=text), this_year=2026).valid is ok


def test_subsidy_types_by_chinese_name_or_code() -> None:
    assert rules.subsidy_type_code("农机购置补贴") == "machinery_purchase"
    assert rules.subsidy_type_code("生态补偿") == "ecological_compensation"
    assert rules.subsidy_type_code("grain_growing") == "grain_growing"
    assert rules.subsidy_type_code("种粮补贴 ") == "grain_growing"
    assert rules.subsidy_type_code("别的") is None


def test_duplicates_within_a_file_name_the_first_row() -> None:
    checked = rules.check_rows(
        [
            (2, values()),
            (3, values(amount="5")),
            (4, values(subsidy_type="农机购置补贴")),
            (5, values(year="2025")),
        ],
        this_year=2026,
    )
    assert [r.valid for r in checked] == [True, False, True, True]
    assert codes(checked[1]) == [("id_number", "subsidies.duplicate_in_file")]
    assert "row 2" in checked[1].errors[0].message


def test_the_error_report_is_csv_with_a_header() -> None:
    report = rules.error_report_csv(
        [rules.RowError(5, "amount", "subsidies.invalid_amount", "at most, two")]
    )
    lines = report.lstrip("\ufeff").splitlines()
    assert lines == ["row,column,code,message", '5,amount,subsidies.invalid_amount,"at most, two"']


def test_headers_in_chinese_or_english() -> None:
    assert files.LAYOUT.canonical(" 身份证号码 ") == "id_number"
    assert files.LAYOUT.canonical("Account Number") == "account_number"
    assert files.LAYOUT.canonical("备注") is None
