"""The bill payment files, without a database: bill files (UTF-8 and GBK, Chinese or English
headers), every problem reported by row and column, return files, settlement files and
their totals, and the pure reconciliation comparison."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from huinong.payments.bills import files
from huinong.payments.bills.models import MismatchKind
from huinong.payments.bills.settlement import compare

GOOD = (
    "户号,账期,金额,缴费截止日期,姓名\n"
    "3301001,2026-10,128.50,2026-11-30,张三\n"
    "3301002,202610,7,20261130,李四\n"
)


def test_a_gbk_bill_file_with_chinese_headers_is_read_and_names_are_ignored():
    parsed = files.parse_bill_file(GOOD.encode("gbk"))
    assert parsed.ok, parsed.errors
    assert parsed.encoding == "gbk"
    assert [(r.row, r.reference, r.period, r.amount, r.due_date) for r in parsed.rows] == [
        (2, "3301001", "2026-10", 12850, date(2026, 11, 30)),
        (3, "3301002", "2026-10", 700, date(2026, 11, 30)),
    ]
    assert not any("张三" in repr(r) for r in parsed.rows)


def test_utf8_with_a_bom_and_english_headers():
    data = "\ufeffreference,period,amount,due_date,bill_number\nA-1,2026-09,0.01,2026-10-15,N9\n"
    parsed = files.parse_bill_file(data.encode())
    assert parsed.ok and parsed.encoding == "utf-8"
    assert parsed.rows[0].amount == 1 and parsed.rows[0].bill_number == "N9"


def test_the_declared_encoding_must_fit_the_bytes():
    parsed = files.parse_bill_file(GOOD.encode("gbk"), encoding="utf-8")
    assert not parsed.ok
    assert parsed.errors[0].row == 1  # the first undecodable byte is on the header line
    assert files.parse_bill_file(GOOD.encode("gbk"), encoding="gbk").ok
    assert not files.parse_bill_file(b"reference\n", encoding="latin-9").ok


def test_bytes_neither_utf8_nor_gbk_are_refused_as_a_whole():
    parsed = files.parse_bill_file(b"\xff\xfe\xfd\x80\x81")
    assert [(e.row, e.column) for e in parsed.errors] == [(0, None)]


def test_every_bad_row_is_reported_by_row_and_column():
    data = (
        "reference,period,amount,due_date\n"
        "OK-1,2026-10,1.00,2026-11-30\n"
        "bad ref!,2026-13,1.234,someday\n"
        "\n"
        "OK-2,2026-10,,2026-11-30\n"
        "OK-3,2026-10,0.00,2026-11-30\n"
        "OK-1,2026-10,2.00,2026-11-30\n"
    )
    parsed = files.parse_bill_file(data.encode())
    assert [(e.row, e.column) for e in parsed.errors] == [
        (3, "reference"),
        (3, "period"),
        (3, "amount"),
        (3, "due_date"),
        (5, "amount"),
        (6, "amount"),
        (7, "reference"),
    ]
    assert "row 2" in parsed.errors[-1].message  # the duplicate names the first row
    assert str(parsed.errors[0]).startswith("row 3, column reference:")


def test_missing_columns_are_named():
    parsed = files.parse_bill_file("户号,金额\n1,2\n".encode("gbk"))
    assert [(e.row, e.column) for e in parsed.errors] == [(1, "period"), (1, "due_date")]
    assert "账期" in parsed.errors[0].message


def test_an_empty_file_or_a_header_alone_is_refused():
    assert not files.parse_bill_file(b"").ok
    assert not files.parse_bill_file(b"reference,period,amount,due_date\n").ok


@pytest.mark.parametrize(
    ("text", "fen"), [("0.01", 1), ("12", 1200), ("12.3", 1230), ("1,234.56", 123456)]
)
def test_yuan_to_fen_is_exact(text, fen):
    assert files.parse_yuan(text) == fen
    assert files.parse_yuan(files.format_yuan(fen)) == fen


@pytest.mark.parametrize("text", ["-1", "1.001", "1e3", "NaN", "", "１２"])
def test_yuan_refuses_anything_else(text):
    with pytest.raises(ValueError):
        files.parse_yuan(text)


def test_a_settlement_file_carries_its_totals_and_reads_back():
    at = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    lines = [
        files.SettlementLine("p1", "3301001", "2026-10", 12850, at),
        files.SettlementLine("p2", "3301002", "2026-10", 700, at),
    ]
    data = files.write_settlement_file(lines)
    assert data.decode().splitlines()[-1] == "TOTAL,2,,135.50,"
    read, totals = files.read_settlement_file(data)
    assert read == lines
    assert totals == files.SettlementTotals(2, 13550)
    tampered = data.replace(b"TOTAL,2,,135.50", b"TOTAL,2,,135.51")
    with pytest.raises(files.FileRejected):
        files.read_settlement_file(tampered)


def test_an_empty_day_still_has_a_totals_row():
    data = files.write_settlement_file([])
    assert files.read_settlement_file(data) == ([], files.SettlementTotals(0, 0))


def test_a_return_file_in_gbk_skips_an_echoed_totals_row():
    data = "流水号,户号,金额\np1,3301001,128.50\np1,3301001,128.50\nTOTAL,,257.00\n"
    parsed = files.parse_return_file(data.encode("gbk"))
    assert parsed.ok
    assert [(r.row, r.payment_id, r.amount) for r in parsed.rows] == [
        (2, "p1", 12850),
        (3, "p1", 12850),
    ]
    bad = files.parse_return_file(b"payment_id,amount\np1,abc\n,1.00\n")
    assert [(e.row, e.column) for e in bad.errors] == [(2, "amount"), (3, "payment_id")]
    assert [(e.column) for e in files.parse_return_file(b"reference\n1\n").errors] == [
        "payment_id",
        "amount",
    ]


def test_compare_lists_every_kind_of_mismatch():
    ours = {"p1": ("R1", 100), "p2": ("R2", 200), "p3": ("R3", 300), "p4": ("R4", 400)}
    theirs = [
        files.ReturnRow(2, "p1", "R1", 100),  # matched
        files.ReturnRow(3, "p2", "R2", 250),  # amount differs
        files.ReturnRow(4, "p3", "R3", 300),  # duplicate
        files.ReturnRow(5, "p3", "R3", 300),
        files.ReturnRow(6, "x9", "R9", 900),  # missing on our side
    ]  # p4: missing on their side
    matched, mismatches = compare(ours, theirs)
    assert matched == ["p1"]
    assert sorted((m.kind, m.payment_reference) for m in mismatches) == sorted(
        [
            (MismatchKind.amount_differs, "p2"),
            (MismatchKind.duplicate, "p3"),
            (MismatchKind.missing_on_our_side, "x9"),
            (MismatchKind.missing_on_their_side, "p4"),
        ]
    )
    differs = next(m for m in mismatches if m.kind == MismatchKind.amount_differs)
    assert (differs.our_amount, differs.their_amount, differs.their_row) == (200, 250, 3)
    assert compare({}, []) == ([], [])
