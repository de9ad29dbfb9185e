"""Reading subsidy batch files: CSV in UTF-8 and GBK, XLSX, and the files that are refused."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from huinong.errors import InvalidInput
from huinong.payments.subsidies import files

HEADER = "姓名,身份证号,账号,金额,补贴类型,年度"
ROWS = [
    "张三,11010519491231002X,,100.50,耕地地力保护补贴,2026",
    "李四,110105195001010011,,80,种粮补贴,2026",
]


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def test_utf8_csv_with_bom() -> None:
    parsed = files.parse("list.csv", ("\ufeff" + csv_text(*ROWS)).encode())
    assert parsed.format == "csv" and parsed.encoding == "utf-8"
    assert [n for n, _ in parsed.rows] == [2, 3]
    assert parsed.rows[0][1]["name"] == "张三"
    assert parsed.rows[1][1]["subsidy_type"] == "种粮补贴"


def test_gbk_csv_is_detected() -> None:
    parsed = files.parse("list.csv", csv_text(*ROWS).encode("gbk"))
    assert parsed.encoding == "gbk"
    assert parsed.rows[0][1]["name"] == "张三"


def test_gbk_sent_as_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        files.parse("list.csv", csv_text(*ROWS).encode("gbk"), encoding="utf-8")
    assert caught.value.code == "subsidies.wrong_encoding" and caught.value.field == "file"


def test_utf16_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        files.parse("list.csv", csv_text(*ROWS).encode("utf-16"))
    assert caught.value.code == "subsidies.wrong_encoding"


def test_a_missing_column_is_named() -> None:
    header = "姓名,身份证号,账号,金额,年度"
    with pytest.raises(InvalidInput) as caught:
        files.parse("list.csv", csv_text("张三,11010519491231002X,,1,2026", header=header).encode())
    assert caught.value.code == "subsidies.missing_columns"
    assert "subsidy_type" in str(caught.value)


def test_empty_and_header_only_files_are_refused() -> None:
    for content, code in (
        (b"", "subsidies.empty_file"),
        (csv_text().encode(), "subsidies.no_rows"),
    ):
        with pytest.raises(InvalidInput) as caught:
            files.parse("list.csv", content)
        assert caught.value.code == code


def test_rows_keep_their_file_numbers_past_blank_lines_and_a_title() -> None:
    text = "2026年耕地地力保护补贴发放清单\r\n" + csv_text(ROWS[0], ",,,,,", ROWS[1])
    parsed = files.parse("list.csv", text.encode())
    assert [n for n, _ in parsed.rows] == [3, 5]


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_with_numbers_in_cells() -> None:
    content = xlsx(
        [
            ["补贴发放清单"],
            HEADER.split(","),
            ["张三", "11010519491231002X", None, 100.5, "耕地地力保护补贴", 2026],
            ["李四", "110105195001010011", "6228480000000000006", 80, "种粮补贴", 2026.0],
        ]
    )
    parsed = files.parse("list.xlsx", content)
    assert parsed.format == "xlsx"
    assert [n for n, _ in parsed.rows] == [3, 4]
    first, second = parsed.rows[0][1], parsed.rows[1][1]
    assert (first["amount"], first["account_number"], first["year"]) == ("100.5", "", "2026")
    assert (second["amount"], second["year"]) == ("80", "2026")


def test_a_broken_spreadsheet_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        files.parse("list.xlsx", b"PK\x03\x04 not really a zip")
    assert caught.value.code == "subsidies.unreadable_spreadsheet"


def test_old_xls_is_refused_with_advice() -> None:
    with pytest.raises(InvalidInput) as caught:
        files.parse("list.xls", b"\xd0\xcf\x11\xe0 binary")
    assert caught.value.code == "subsidies.unsupported_file_format"
