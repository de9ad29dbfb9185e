"""Reading tabular files people prepare in Excel: CSV (UTF-8 or GBK) and XLSX, as pure functions.

Subsidy batch lists, village surveys and bureau files all arrive the same way: somebody fills
in a spreadsheet and sends it as ``.xlsx`` or as "CSV" — which on a Chinese Windows means GBK.
This module reads such a file into data rows keyed by *canonical* column names; what a column
means and whether a value is valid is the caller's business. A :class:`Layout` names the
columns, the headers accepted for each (aliases, e.g. ``身份证号`` / ``证件号码`` /
``id_number``), which are required, the limits, and the prefix of the error codes.

A file is read whole before anything is checked. What makes the *file* unusable — an encoding
that is neither UTF-8 nor GBK, a spreadsheet that does not open, a required column missing,
no data rows — raises :class:`~huinong.errors.InvalidInput` naming ``file``. What is wrong with
a *row* is left to the caller.

Rows are numbered as the user sees them: in a CSV the header is row 1 and the first data row
row 2; in a spreadsheet the sheet's own row numbers (people like a title row above the header,
so the header is looked for among the first rows — it is the first row naming at least two
known columns). Blank rows are skipped, not reported.

Encodings: ``encoding=None`` tries UTF-8 (with or without BOM) and then GBK (the default of
Excel's "CSV" on a Chinese Windows, and of most bureau systems); a caller that knows the
encoding names it, and a file that does not decode under it is refused — so a GBK file sent
as UTF-8 is an error the user sees, never mojibake in a name that then "does not match".
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from huinong.errors import InvalidInput

ENCODINGS = ("utf-8", "gbk")
MAX_ROWS = 200_000
MAX_BYTES = 64 * 1024 * 1024
_HEADER_SEARCH_ROWS = 10

Record = tuple[int, list[str]]  # (row number as the user sees it, the cells as text)
Row = tuple[int, dict[str, str]]  # (row number, stripped text by canonical column)


@dataclass(frozen=True)
class Layout:
    """What one kind of table looks like.

    ``columns`` maps each canonical column to the headers accepted for it, lower-case (the
    header is stripped and lower-cased before it is looked up); ``error_prefix`` starts every
    error code (``subsidies`` gives ``subsidies.missing_columns``).
    """

    error_prefix: str
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...]
    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES
    what: str = "file"  # how messages call one such table: "batch file", "survey sheet"

    def canonical(self, header: str) -> str | None:
        wanted = header.strip().lower()
        for column, names in self.columns.items():
            if wanted in names:
                return column
        return None

    def label(self, column: str) -> str:
        """``column / 中文名``: how messages name a column (its first non-ASCII alias)."""
        chinese = next((n for n in self.columns[column] if not n.isascii()), None)
        return column if chinese is None else f"{column} / {chinese}"


@dataclass(frozen=True)
class ParsedFile:
    """The data rows of a file, by canonical column, with their row numbers."""

    format: str  # "csv" or "xlsx"
    encoding: str | None  # of a CSV
    rows: list[Row]


def refuse(error_prefix: str, code: str, message: str) -> InvalidInput:
    """The error for a file that cannot be used at all (``field="file"``)."""
    return InvalidInput(f"{error_prefix}.{code}", message, field="file")


def file_format(file_name: str, content: bytes, *, error_prefix: str) -> str:
    """``xlsx`` for a spreadsheet (by its zip signature or name), ``csv`` otherwise."""
    if content[:4] == b"PK\x03\x04" or file_name.lower().endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if file_name.lower().endswith(".xls"):
        raise refuse(
            error_prefix,
            "unsupported_file_format",
            "old Excel .xls files are not read: save the list as .xlsx or as CSV",
        )
    return "csv"


def check_size(content: bytes, layout: Layout) -> None:
    if not content:
        raise refuse(layout.error_prefix, "empty_file", "the file is empty")
    if len(content) > layout.max_bytes:
        raise refuse(
            layout.error_prefix,
            "file_too_large",
            f"a {layout.what} is at most {layout.max_bytes // 2**20} MiB",
        )


def parse(
    file_name: str, content: bytes, layout: Layout, *, encoding: str | None = None
) -> ParsedFile:
    """The data rows of a CSV, or of the first sheet of a spreadsheet."""
    check_size(content, layout)
    if file_format(file_name, content, error_prefix=layout.error_prefix) == "xlsx":
        return ParsedFile(
            "xlsx", None, table_rows(xlsx_records(content, layout.error_prefix), layout)
        )
    text, used = decode(content, encoding, error_prefix=layout.error_prefix)
    return ParsedFile("csv", used, table_rows(csv_records(text, layout.error_prefix), layout))


def decode(content: bytes, encoding: str | None, *, error_prefix: str) -> tuple[str, str]:
    """The text of a CSV and the encoding that read it (``utf-8`` or ``gbk``)."""
    if encoding is not None:
        wanted = encoding.strip().lower().replace("_", "-")
        if wanted in ("utf8", "utf-8-sig"):
            wanted = "utf-8"
        if wanted in ("gb2312", "cp936", "gb18030"):
            wanted = "gbk"
        if wanted not in ENCODINGS:
            raise InvalidInput(
                f"{error_prefix}.unsupported_encoding",
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
    raise refuse(
        error_prefix,
        "wrong_encoding",
        f"the file is not readable as {' or '.join(t.upper() for t in tried)} text: save it "
        "as CSV UTF-8 (or GBK), or as an .xlsx spreadsheet",
    )


def csv_records(text: str, error_prefix: str) -> Iterator[Record]:
    """The records of a CSV text, numbered from 1; comma, tab or semicolon separated."""
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
        raise refuse(error_prefix, "unreadable_csv", f"the CSV is malformed: {exc}") from None


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person typed: ``2026.0`` is ``2026``, ``100.5`` stays
    ``100.5`` (via its shortest repr, never a binary expansion), dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return str(Decimal(repr(value)))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def xlsx_sheet_names(content: bytes, error_prefix: str) -> list[str]:
    with _open_workbook(content, error_prefix) as workbook:
        return list(workbook.sheetnames)


def xlsx_records(content: bytes, error_prefix: str, sheet: int | str = 0) -> Iterator[Record]:
    """The records of one sheet (by position or name), with the sheet's row numbers."""
    with _open_workbook(content, error_prefix) as workbook:
        worksheet = workbook.worksheets[sheet] if isinstance(sheet, int) else workbook[sheet]
        for index, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield index, [cell_text(v) for v in values]


@contextmanager
def _open_workbook(content: bytes, error_prefix: str) -> Iterator[Any]:
    """An openpyxl workbook in read-only mode, closed on exit; unreadable files refused."""
    from openpyxl import load_workbook  # imported on use: only spreadsheet reads need it

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise refuse(
            error_prefix,
            "unreadable_spreadsheet",
            f"the spreadsheet cannot be opened ({type(exc).__name__})",
        ) from None
    try:
        yield workbook
    finally:
        workbook.close()


def table_rows(records: Iterable[Record], layout: Layout) -> list[Row]:
    """The data rows below the header row, keyed by canonical column (unknown columns are
    dropped); the header must name every required column, each once."""
    columns: dict[int, str] | None = None
    rows: list[Row] = []
    for number, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if columns is None:
            found = {i: layout.canonical(cell) for i, cell in enumerate(record)}
            named = {i: c for i, c in found.items() if c is not None}
            if len(named) >= 2 or number >= _HEADER_SEARCH_ROWS:
                columns = named
                _require_columns(columns, layout)
            continue
        if len(rows) >= layout.max_rows:
            raise refuse(
                layout.error_prefix,
                "too_many_rows",
                f"a {layout.what} holds at most {layout.max_rows} rows",
            )
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
        raise refuse(
            layout.error_prefix,
            "missing_columns",
            "no header row found; the first row names the columns: " + _required_headers(layout),
        )
    if not rows:
        raise refuse(layout.error_prefix, "no_rows", "the file has a header but no data rows")
    return rows


def _require_columns(columns: dict[int, str], layout: Layout) -> None:
    seen: dict[str, int] = {}
    for index, column in columns.items():
        if column in seen:
            raise refuse(
                layout.error_prefix,
                "duplicate_column",
                f"the column {column} appears twice (columns {seen[column] + 1} and {index + 1})",
            )
        seen[column] = index
    missing = [c for c in layout.required if c not in seen]
    if missing:
        raise refuse(
            layout.error_prefix,
            "missing_columns",
            "the file lacks the column(s) "
            + ", ".join(layout.label(c) for c in missing)
            + "; the header row names: "
            + _required_headers(layout),
        )


def _required_headers(layout: Layout) -> str:
    return ", ".join(layout.label(c) for c in layout.required)
