"""Bureau files: reports read, problems named by row and column, files refused whole."""

from __future__ import annotations

import datetime as dt

import pytest

from huinong.credit.features.bureau import BureauReport, RowProblem, parse_file, read_rows
from huinong.errors import InvalidInput
from huinong.parties.rules import resident_id_check_char


def resident_id(birth: str, sequence: str = "123") -> str:
    first17 = f"110105{birth}{sequence}"
    return first17 + resident_id_check_char(first17)


ALICE = resident_id("19800229")
BOB = resident_id("19751103", "456")
HEADER_ZH = (
    "身份证号,报告日期,逾期次数,最长逾期天数,逾期金额(元),未结清贷款笔数,未结清余额(元),黑名单"
)


def test_a_gbk_file_with_chinese_headers_is_read() -> None:
    text = "\n".join(
        [
            HEADER_ZH,
            f'{ALICE},2024-03-31,2,45,123.455,1,"50,000.00",否',
            f"{BOB.lower()},20231105,0,0,0,0,,是",
        ]
    )
    parsed = parse_file("征信.csv", text.encode("gbk"))
    assert parsed.problems == ()
    assert parsed.reports == (
        BureauReport(ALICE, dt.date(2024, 3, 31), 2, 45, 12_346, 1, 5_000_000, False, 2),
        BureauReport(BOB, dt.date(2023, 11, 5), 0, 0, 0, 0, None, True, 3),
    )


def test_english_headers_in_utf8_with_a_bom() -> None:
    text = (
        "id_number,report_date,overdue_count,max_overdue_days,overdue_amount,"
        f"outstanding_loans,blacklisted\n{ALICE},2024/1/5,1,3,0.5,2,no\n"
    )
    parsed = parse_file("bureau.csv", b"\xef\xbb\xbf" + text.encode())
    (report,) = parsed.reports
    assert (report.report_date, report.overdue_fen, report.outstanding_fen) == (
        dt.date(2024, 1, 5),
        50,
        None,
    )


def cells(**overrides: str) -> dict[str, str]:
    row = {
        "id_number": ALICE,
        "report_date": "2024-03-31",
        "overdue_count": "1",
        "max_overdue_days": "10",
        "overdue_amount": "0",
        "outstanding_loans": "1",
        "outstanding_balance": "",
        "blacklisted": "否",
    }
    return {**row, **overrides}


def test_every_bad_cell_is_a_problem_naming_its_row_and_column() -> None:
    parsed = read_rows(
        [
            (2, cells()),
            (3, cells(id_number="110105198002291230", report_date="2024-02-30")),
            (4, cells(overdue_count="-1", max_overdue_days="3.5", overdue_amount="12元")),
            (5, cells(outstanding_loans="", blacklisted="maybe", outstanding_balance="-5")),
            (6, cells(overdue_count="0", max_overdue_days="30", overdue_amount="100")),
            (7, cells()),  # the same person and date as row 2
        ]
    )
    assert [r.row for r in parsed.reports] == [2]
    found = {(p.row, p.column, p.code) for p in parsed.problems}
    assert found == {
        (3, "id_number", "credit.bureau.invalid_id_number"),
        (3, "report_date", "credit.bureau.invalid_date"),
        (4, "overdue_count", "credit.bureau.invalid_count"),
        (4, "max_overdue_days", "credit.bureau.invalid_count"),
        (4, "overdue_amount", "credit.bureau.invalid_amount"),
        (5, "outstanding_loans", "credit.bureau.required"),
        (5, "blacklisted", "credit.bureau.invalid_flag"),
        (5, "outstanding_balance", "credit.bureau.invalid_amount"),
        (6, "max_overdue_days", "credit.bureau.inconsistent"),
        (6, "overdue_amount", "credit.bureau.inconsistent"),
        (7, "report_date", "credit.bureau.duplicate_report"),
    }
    duplicate = next(p for p in parsed.problems if p.row == 7)
    assert duplicate == RowProblem(
        7,
        "report_date",
        "credit.bureau.duplicate_report",
        "row 2 already reports this person on this date",
    )


def test_a_blank_blacklist_flag_is_not_a_no() -> None:
    parsed = read_rows([(2, cells(blacklisted=""))])
    assert parsed.reports == ()
    assert [(p.column, p.code) for p in parsed.problems] == [
        ("blacklisted", "credit.bureau.required")
    ]


def test_a_file_without_a_required_column_is_refused_whole() -> None:
    text = f"身份证号,报告日期,逾期次数\n{ALICE},2024-03-31,0\n"
    with pytest.raises(InvalidInput) as error:
        parse_file("bureau.csv", text.encode())
    assert (error.value.code, error.value.field) == ("credit.bureau.missing_columns", "file")
    assert "max_overdue_days / 最长逾期天数" in error.value.message


def test_a_file_in_neither_utf8_nor_gbk_is_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        parse_file("bureau.csv", HEADER_ZH.encode("utf-16"))
    assert error.value.code == "credit.bureau.wrong_encoding"
