"""Reading subsidy batch files: CSV (UTF-8 or GBK) and XLSX, as pure functions.

A file is read whole before anything is checked or written. What makes the *file* unusable —
an encoding that is neither UTF-8 nor GBK, a spreadsheet that does not open, a required
column missing, no data rows — raises :class:`~huinong.errors.InvalidInput` naming
``file``, and the import writes nothing. What is wrong with a *row* is left to ``rules``.

The reading itself (encodings, header search, row numbers as the user sees them, limits) is
:mod:`huinong.tabular`, shared with the other files people prepare in Excel; this module only
says what a subsidy list looks like: the columns and aliases of ``rules.COLUMNS``, all of them
required, error codes under ``subsidies.``.
"""

from __future__ import annotations

from huinong import tabular
from huinong.payments.subsidies import rules
from huinong.tabular import ENCODINGS, MAX_BYTES, MAX_ROWS, ParsedFile

__all__ = ["ENCODINGS", "LAYOUT", "MAX_BYTES", "MAX_ROWS", "ParsedFile", "parse"]

LAYOUT = tabular.Layout(
    error_prefix="subsidies",
    columns=rules.COLUMNS,
    required=rules.REQUIRED_COLUMNS,
    max_rows=MAX_ROWS,
    max_bytes=MAX_BYTES,
    what="batch file",
)


def parse(file_name: str, content: bytes, *, encoding: str | None = None) -> ParsedFile:
    return tabular.parse(file_name, content, LAYOUT, encoding=encoding)
