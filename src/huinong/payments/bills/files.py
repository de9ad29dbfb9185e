"""The three files of bill payment, as pure functions (no database): the biller's bill file
we import, the daily settlement file we send, and the biller's return file we reconcile.

All three are CSV with a header row. Billers in China commonly write GBK; we read UTF-8
(with or without a BOM) and GBK (decoded as GB 18030, its superset), detected when the caller
does not say which, and we always write UTF-8. Headers may be English or Chinese (``户号`` or
``reference``); unknown columns are ignored — a biller's file may carry the payer's name,
which we do not want and so never read.

Amounts in files are yuan with at most two decimals (``123.45``), as billers print them;
they become integer fen exactly (``Decimal``, never ``float``), and an amount with fen
fractions is an error, not a rounding.

Every problem is reported by row and column: ``row`` is the line number in the file as a
text editor shows it (the header is row 1, the first bill row 2), ``column`` the header name
as the file spells it. A file with any bad row is rejected whole by the caller.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

from huinong.money import MAX_FEN

ENCODINGS = ("utf-8", "gbk")
TOTAL_MARKER = "TOTAL"

# canonical column -> the header names accepted for it (lower-cased English, or Chinese)
BILL_COLUMNS: dict[str, tuple[str, ...]] = {
    "reference": ("reference", "户号", "用户编号", "缴费号"),
    "period": ("period", "账期", "账单月份"),
    "amount": ("amount", "金额", "应缴金额"),
    "due_date": ("due_date", "缴费截止日期", "截止日期"),
    "bill_number": ("bill_number", "账单号", "账单编号"),
}
BILL_REQUIRED = ("reference", "period", "amount", "due_date")

RETURN_COLUMNS: dict[str, tuple[str, ...]] = {
    "payment_id": ("payment_id", "流水号", "银行流水号"),
    "reference": ("reference", "户号", "用户编号", "缴费号"),
    "amount": ("amount", "金额", "缴费金额"),
    "paid_at": ("paid_at", "缴费时间"),
}
RETURN_REQUIRED = ("payment_id", "amount")

SETTLEMENT_HEADER = ("payment_id", "reference", "period", "amount", "paid_at")

_REFERENCE = re.compile(r"[0-9A-Za-z][0-9A-Za-z\-]{0,63}")
_PERIOD = re.compile(r"([0-9]{4})-?(0[1-9]|1[0-2])")
_YUAN = re.compile(r"[0-9]{1,14}(\.[0-9]{1,2})?")


@dataclass(frozen=True)
class RowError:
    row: int  # line number in the file: the header is 1; 0 is the file as a whole
    column: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class BillRow:
    row: int
    reference: str
    period: str
    amount: int
    due_date: date
    bill_number: str | None


@dataclass(frozen=True)
class ReturnRow:
    row: int
    payment_id: str
    reference: str | None
    amount: int


T = TypeVar("T")


@dataclass
class Parsed(Generic[T]):
    encoding: str
    rows: list[T] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class FileRejected(ValueError):
    """A file that cannot be used; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} problem(s): {shown}{more}")


# --------------------------------------------------------------------------- reading


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of a file and the name of its encoding (``utf-8`` or ``gbk``)."""
    if encoding is not None:
        name = encoding.lower().replace("_", "-")
        if name in ("utf8", "utf-8", "utf-8-sig"):
            name = "utf-8"
        elif name in ("gbk", "gb2312", "gb18030", "cp936"):
            name = "gbk"
        else:
            raise FileRejected(
                [RowError(0, None, f"unknown encoding {encoding!r}; use utf-8 or gbk")]
            )
        try:
            return _decode_as(data, name), name
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise FileRejected(
                [RowError(line, None, f"the file is not valid {name} (byte {exc.start})")]
            ) from None
    for name in ENCODINGS:
        try:
            return _decode_as(data, name), name
        except UnicodeDecodeError:
            continue
    raise FileRejected([RowError(0, None, "the file is neither UTF-8 nor GBK text")])


def _decode_as(data: bytes, name: str) -> str:
    if name == "utf-8":
        return data.decode("utf-8-sig")
    return data.decode("gb18030")


def _header_map(
    header: Sequence[str], columns: dict[str, tuple[str, ...]], required: Iterable[str]
) -> tuple[dict[str, int], dict[str, str], list[RowError]]:
    """canonical name -> column index, canonical -> the file's spelling, and errors for
    missing or repeated columns."""
    index: dict[str, int] = {}
    spelled: dict[str, str] = {}
    errors: list[RowError] = []
    for position, raw in enumerate(header):
        name = raw.strip().lower()
        for canonical, aliases in columns.items():
            if name in aliases:
                if canonical in index:
                    errors.append(RowError(1, raw.strip(), f"column {canonical} appears twice"))
                index[canonical] = position
                spelled[canonical] = raw.strip()
    for canonical in required:
        if canonical not in index:
            names = " or ".join(columns[canonical][:2])
            errors.append(RowError(1, canonical, f"the file has no {names} column"))
    return index, spelled, errors


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank record; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out = []
    start = 1
    for cells in reader:
        if any(c.strip() for c in cells):
            out.append((start, cells))
        start = reader.line_num + 1
    return out


def parse_yuan(text: str) -> int:
    """``"123.45"`` -> 12345 fen. Raises ``ValueError`` for anything but a plain,
    non-negative amount with at most two decimals."""
    value = text.strip().replace(",", "")
    if not _YUAN.fullmatch(value):
        raise ValueError("an amount in yuan with at most two decimals, like 123.45")
    try:
        fen = int(Decimal(value) * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern rules it out
        raise ValueError("not a number") from exc
    if fen > MAX_FEN:
        raise ValueError("the amount is too large")
    return fen


def format_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def parse_period(text: str) -> str:
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        raise ValueError("a month like 2026-10 or 202610")
    return f"{match.group(1)}-{match.group(2)}"


def parse_date(text: str) -> date:
    value = text.strip()
    for pattern in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError("a date like 2026-11-30 or 20261130")


def parse_reference(text: str) -> str:
    value = text.strip()
    if not _REFERENCE.fullmatch(value):
        raise ValueError("1 to 64 letters, digits or hyphens")
    return value


# --------------------------------------------------------------------------- bill file


def parse_bill_file(data: bytes, *, encoding: str | None = None) -> Parsed[BillRow]:
    """Every row of a biller's bill file, or every problem in it (all of them, not just
    the first: whoever fixes the file fixes it once)."""
    try:
        text, used = decode(data, encoding)
    except FileRejected as rejected:
        return Parsed(encoding or "unknown", errors=rejected.errors)
    parsed: Parsed[BillRow] = Parsed(used)
    records = _rows(text)
    if not records:
        parsed.errors.append(RowError(0, None, "the file is empty"))
        return parsed
    (_, header), body = records[0], records[1:]
    index, spelled, errors = _header_map(header, BILL_COLUMNS, BILL_REQUIRED)
    if errors:
        parsed.errors.extend(errors)
        return parsed
    if not body:
        parsed.errors.append(RowError(0, None, "the file has a header but no bills"))
    seen: dict[tuple[str, str], int] = {}
    for line, cells in body:
        row_errors: list[RowError] = []

        def cell(name: str, line: int = line, cells: list[str] = cells) -> str:
            position = index.get(name)
            return cells[position] if position is not None and position < len(cells) else ""

        def check(name, convert, line=line, row_errors=row_errors, cell=cell):  # type: ignore[no-untyped-def]
            raw = cell(name)
            if not raw.strip():
                row_errors.append(RowError(line, spelled[name], "is empty"))
                return None
            try:
                return convert(raw)
            except ValueError as exc:
                row_errors.append(RowError(line, spelled[name], f"{raw.strip()!r} is not {exc}"))
                return None

        reference = check("reference", parse_reference)
        period = check("period", parse_period)
        amount = check("amount", parse_yuan)
        due_date = check("due_date", parse_date)
        if amount == 0:
            row_errors.append(RowError(line, spelled["amount"], "a bill of 0.00 is not a bill"))
        bill_number = cell("bill_number").strip() or None
        if bill_number is not None and len(bill_number) > 64:
            row_errors.append(RowError(line, spelled["bill_number"], "is longer than 64"))
        if reference is not None and period is not None:
            earlier = seen.setdefault((reference, period), line)
            if earlier != line:
                row_errors.append(
                    RowError(
                        line,
                        spelled["reference"],
                        f"the same reference and period as row {earlier}",
                    )
                )
        if row_errors:
            parsed.errors.extend(row_errors)
            continue
        assert reference and period and amount and due_date
        parsed.rows.append(BillRow(line, reference, period, amount, due_date, bill_number))
    return parsed


# --------------------------------------------------------------------------- return file


def parse_return_file(data: bytes, *, encoding: str | None = None) -> Parsed[ReturnRow]:
    """The biller's record of the payments it received. Duplicates are *not* errors here:
    a payment listed twice is a finding of the reconciliation, not a malformed file."""
    try:
        text, used = decode(data, encoding)
    except FileRejected as rejected:
        return Parsed(encoding or "unknown", errors=rejected.errors)
    parsed: Parsed[ReturnRow] = Parsed(used)
    records = _rows(text)
    if not records:
        parsed.errors.append(RowError(0, None, "the file is empty"))
        return parsed
    (_, header), body = records[0], records[1:]
    index, spelled, errors = _header_map(header, RETURN_COLUMNS, RETURN_REQUIRED)
    if errors:
        parsed.errors.extend(errors)
        return parsed
    for line, cells in body:

        def cell(name: str, cells: list[str] = cells) -> str:
            position = index.get(name)
            return cells[position].strip() if position is not None and position < len(cells) else ""

        if cell("payment_id").upper() == TOTAL_MARKER:
            continue  # a trailer row of totals, if the biller echoes ours
        payment_id = cell("payment_id")
        if not payment_id or len(payment_id) > 64:
            parsed.errors.append(RowError(line, spelled["payment_id"], "is empty or too long"))
            continue
        try:
            amount = parse_yuan(cell("amount"))
        except ValueError as exc:
            parsed.errors.append(
                RowError(line, spelled["amount"], f"{cell('amount')!r} is not {exc}")
            )
            continue
        parsed.rows.append(ReturnRow(line, payment_id, cell("reference") or None, amount))
    return parsed


def write_return_file(rows: Iterable[tuple[str, str, int, datetime]]) -> bytes:
    """A return file as a biller writes it: (our payment id, reference, fen, paid at)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("payment_id", "reference", "amount", "paid_at"))
    for payment_id, reference, amount, paid_at in rows:
        writer.writerow((payment_id, reference, format_yuan(amount), paid_at.isoformat()))
    return out.getvalue().encode()


# --------------------------------------------------------------------------- settlement file


@dataclass(frozen=True)
class SettlementLine:
    payment_id: str
    reference: str
    period: str
    amount: int
    paid_at: datetime


@dataclass(frozen=True)
class SettlementTotals:
    count: int
    amount: int


def write_settlement_file(lines: Sequence[SettlementLine]) -> bytes:
    """The day's payments to one biller, in payment order, then a trailer row
    ``TOTAL,<count>,,<amount>,`` the biller checks its reading against."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SETTLEMENT_HEADER)
    for line in lines:
        writer.writerow(
            (
                line.payment_id,
                line.reference,
                line.period,
                format_yuan(line.amount),
                line.paid_at.isoformat(),
            )
        )
    totals = settlement_totals(lines)
    writer.writerow((TOTAL_MARKER, totals.count, "", format_yuan(totals.amount), ""))
    return out.getvalue().encode()


def settlement_totals(lines: Sequence[SettlementLine]) -> SettlementTotals:
    return SettlementTotals(len(lines), sum(line.amount for line in lines))


def read_settlement_file(data: bytes) -> tuple[list[SettlementLine], SettlementTotals]:
    """Read a settlement file back and check its trailer against its lines."""
    text, _ = decode(data, "utf-8")
    records = _rows(text)
    if not records or tuple(c.strip() for c in records[0][1]) != SETTLEMENT_HEADER:
        raise FileRejected([RowError(1, None, "not a settlement file: wrong header")])
    lines: list[SettlementLine] = []
    trailer: SettlementTotals | None = None
    errors: list[RowError] = []
    for line_number, cells in records[1:]:
        if len(cells) != len(SETTLEMENT_HEADER):
            errors.append(RowError(line_number, None, "wrong number of columns"))
            continue
        try:
            if cells[0] == TOTAL_MARKER:
                trailer = SettlementTotals(int(cells[1]), parse_yuan(cells[3]))
                continue
            lines.append(
                SettlementLine(
                    cells[0],
                    cells[1],
                    cells[2],
                    parse_yuan(cells[3]),
                    datetime.fromisoformat(cells[4]),
                )
            )
        except ValueError as exc:
            errors.append(RowError(line_number, None, str(exc)))
    if trailer is None:
        errors.append(RowError(0, TOTAL_MARKER, "the file has no totals row"))
    elif trailer != settlement_totals(lines):
        errors.append(RowError(0, TOTAL_MARKER, "the totals row does not match the lines"))
    if errors:
        raise FileRejected(errors)
    assert trailer is not None
    return lines, trailer
