"""Reading subsidy batch files: CSV (UTF-8 or GBK) and XLSX, as pure functions.

A file is read whole before anything is checked or written. What makes the *file* unusable —
an encoding that is neither UTF-8 nor GBK, a spreadsheet that does not open, a required
column missing, no data rows — raises :class:`~huinong.errors.InvalidInput` naming
``file``, and the import writes nothing. What is wrong with a *row* is left to ``rules``.

Rows are numbered as the user sees them: in a CSV the header is row 1 and the first data row
row 2; in a spreadsheet the sheet's own row numbers (bureaus like a title row above the
header, so the header is looked for among the first rows — it is the first row naming at least
two known columns). Blank rows are skipped, not reported.

Encodings: ``encoding=None`` tries UTF-8 (with or without BOM) and then GBK (the default of
Excel's "CSV" on a Chinese Windows, and of most bureau systems); a caller that knows the
encoding names it, and a file that does not decode under it is refused — so a GBK file sent
as UTF-8 is an error the user sees, never mojibake in a name that then "does not match".
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from huinong.errors import InvalidInput
from huinong.payments.subsidies import rules

ENCODINGS = ("utf-8", "gbk")
MAX_ROWS = 200_000
MAX_BYTES = 64 * 1024 * 1024
_HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class ParsedFile:
    """The data rows of a file, by canonical column, with their row numbers."""

    format: str  # "csv" or "xlsx"
    encoding: str | None  # of a CSV
    rows: list[tuple[int, dict[str, str]]]


def _refuse(code: str, message: str) -> InvalidInput:
    return InvalidInput(f"subsidies.{code}", message, field="file")


def file_format(file_name: str, content: bytes) -> str:
    """``xlsx`` for a spreadsheet (by its zip signature or name), ``csv`` otherwise."""
    if content[:4] == b"PK\x03\x04" or file_name.lower().endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if file_name.lower().endswith(".xls"):
        raise _refuse(
            "unsupported_file_format",
            "old Excel .xls files are not read: save the list as .xlsx or as CSV",
        )
    return "csv"


def parse(file_name: str, content: bytes, *, encoding: str | None = None) -> ParsedFile:
    if not content:
        raise _refuse("empty_file", "the file is empty")
    if len(content) > MAX_BYTES:
        raise _refuse("file_too_large", f"a batch file is at most {MAX_BYTES // 2**20} MiB")
    if file_format(file_name, content) == "xlsx":
        return ParsedFile("xlsx", None, _table_rows(_xlsx_rows(content)))
    text, used = decode(content, encoding)
    return ParsedFile("csv", used, _table_rows(_csv_rows(text)))


def decode(content: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding is not None:
        wanted = encoding.strip().lower().replace("_", "-")
        if wanted in ("utf8", "utf-8-sig"):
            wanted = "utf-8"
        if wanted in ("gb2312", "cp936", "gb18030"):
            wanted = "gbk"
        if wanted not in ENCODINGS:
            raise InvalidInput(
                "subsidies.unsupported_encoding",
                "the encoding is utf-8 or gbk",
                field="encoding",
            )
        tried: Sequence[str] = (wanted,)
    else:
        tried = ENCODINGS
    for name in tried:
        try:
            text = content.decode("utf-8-sig" if name == "utf-8" else name)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # UTF-16 or a binary file decodes "successfully" into NULs
            break
        return text, name
    raise _refuse(
        "wrong_encoding",
        f"the file is not readable as {' or '.join(t.upper() for t in tried)} text: save it "
        "as CSV UTF-8 (or GBK), or as an .xlsx spreadsheet",
    )


def _csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",\t;"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise _refuse("unreadable_csv", f"the CSV is malformed: {exc}") from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return str(Decimal(repr(value)))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(content: bytes) -> Iterable[tuple[int, list[str]]]:
    from openpyxl import load_workbook  # imported on use: only spreadsheet imports need it

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _refuse(
            "unreadable_spreadsheet", f"the spreadsheet cannot be opened ({type(exc).__name__})"
        ) from None
    try:
        sheet = workbook.worksheets[0]
        for index, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield index, [_cell_text(v) for v in values]
    finally:
        workbook.close()


def _table_rows(records: Iterable[tuple[int, list[str]]]) -> list[tuple[int, dict[str, str]]]:
    columns: dict[int, str] | None = None
    unknown_header: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    for number, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if columns is None:
            found = {i: rules.canonical_column(cell) for i, cell in enumerate(record)}
            named = {i: c for i, c in found.items() if c is not None}
            if len(named) >= 2 or number >= _HEADER_SEARCH_ROWS:
                columns = named
                unknown_header = [c.strip() for c in record]
                _require_columns(columns, unknown_header)
            continue
        if len(rows) >= MAX_ROWS:
            raise _refuse("too_many_rows", f"a batch file holds at most {MAX_ROWS} rows")
        rows.append(
            (
                number,
                {
                    column: record[i].strip() if i < len(record) else ""
                    for i, column in columns.items()
                },
            )
        )
    if columns is None:
        raise _refuse(
            "missing_columns",
            "no header row found; the first row names the columns: "
            + ", ".join(_required_headers()),
        )
    if not rows:
        raise _refuse("no_rows", "the file has a header but no data rows")
    return rows


def _require_columns(columns: dict[int, str], header: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, column in columns.items():
        if column in seen:
            raise _refuse(
                "duplicate_column",
                f"the column {column} appears twice (columns {seen[column] + 1} and {index + 1})",
            )
        seen[column] = index
    missing = [c for c in rules.REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise _refuse(
            "missing_columns",
            "the file lacks the column(s) "
            + ", ".join(f"{c} / {_chinese(c)}" for c in missing)
            + "; the header row names: "
            + ", ".join(_required_headers()),
        )


def _chinese(column: str) -> str:
    return next(n for n in rules.COLUMNS[column] if not n.isascii())


def _required_headers() -> list[str]:
    return [f"{c} / {_chinese(c)}" for c in rules.REQUIRED_COLUMNS]
