"""Bills in: how the bills we can collect come to us, and the bills on record.

**Bill files.** A file biller sends its bills as a CSV file (:mod:`huinong.payments.bills.files`
parses it). :func:`import_bill_file` writes all rows or none, and is idempotent twice over:
the same file (by SM3 digest) returns its first import; a row already on record with the same
amount and due date (from an earlier, overlapping file) is skipped. A row that contradicts a
bill on record is an error of that row.

**HTTP billers.** A bill of an HTTP biller is queried from the biller before it is paid
(:func:`refresh_bills`, outside any database transaction: we never hold locks while waiting on
someone else's server). The biller is authoritative for a bill we have not paid: its amount
wins, and a bill it no longer holds open is closed here (:func:`store_remote_bills`).

Functions that take a session never commit (the entry point owns the transaction);
:func:`refresh_bills` talks to a biller, so it takes the session factory instead and runs its
short transactions around the HTTP call, like ``audit.seal_all``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import is_postgres, run_in_transaction
from huinong.errors import InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.money import MAX_FEN
from huinong.payments.bills import files
from huinong.payments.bills.billers import endpoint, get_biller
from huinong.payments.bills.client import BillerClient, BillerEndpoint, RemoteBill
from huinong.payments.bills.common import FileRejected, check_choice
from huinong.payments.bills.models import Bill, BillFile, BillSource, BillStatus
from huinong.security.audit import service as audit
from huinong.security.crypto import sm3
from huinong.security.principals import Principal

MAX_FILE_BYTES = 20 * 1024 * 1024


def get_bill(
    session: Session, *, institution_id: uuid.UUID, bill_id: uuid.UUID, lock: bool = False
) -> Bill:
    statement = select(Bill).where(Bill.id == bill_id, Bill.institution_id == institution_id)
    if lock and is_postgres(session):
        statement = statement.with_for_update()
    bill = session.scalar(statement)
    if bill is None:
        raise NotFound("bills.bill_not_found", "no such bill", field="bill_id")
    return bill


def list_bills(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID | None = None,
    reference: str | None = None,
    status: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 100,
) -> Sequence[Bill]:
    statement = select(Bill).where(Bill.institution_id == institution_id)
    if biller_id is not None:
        statement = statement.where(Bill.biller_id == biller_id)
    if reference is not None:
        statement = statement.where(Bill.reference == reference)
    if status is not None:
        statement = statement.where(Bill.status == check_choice(status, BillStatus, "status"))
    if after is not None:
        statement = statement.where(Bill.id > after)
    return session.scalars(statement.order_by(Bill.id).limit(limit)).all()


@dataclass(frozen=True)
class ImportResult:
    bill_file: BillFile
    replayed: bool  # the same file was imported before: nothing new written


def _existing_bills(
    session: Session, institution_id: uuid.UUID, biller_id: uuid.UUID, references: set[str]
) -> dict[tuple[str, str], Bill]:
    found: dict[tuple[str, str], Bill] = {}
    ordered = sorted(references)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for bill in session.scalars(
            select(Bill).where(
                Bill.institution_id == institution_id,
                Bill.biller_id == biller_id,
                Bill.reference.in_(chunk),
            )
        ):
            found[(bill.reference, bill.period)] = bill
    return found


def import_bill_file(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    data: bytes,
    filename: str | None = None,
    encoding: str | None = None,
    actor: Principal | None = None,
) -> ImportResult:
    """Import a biller's bill file: all rows or none.

    Idempotent twice over: the same file (by SM3 digest) returns its first import; a row
    already on record with the same amount and due date (from an earlier, overlapping file)
    is skipped. A row that contradicts a bill on record is an error of that row.
    """
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            "bills.file_too_large", f"a bill file is at most {MAX_FILE_BYTES} bytes", field="file"
        )
    digest = sm3(data).hex()
    earlier = session.scalar(
        select(BillFile).where(
            BillFile.institution_id == institution_id,
            BillFile.biller_id == biller.id,
            BillFile.digest == digest,
        )
    )
    if earlier is not None:
        return ImportResult(earlier, replayed=True)
    parsed = files.parse_bill_file(data, encoding=encoding)
    if not parsed.ok:
        raise FileRejected(parsed.errors, what="bill file")
    existing = _existing_bills(
        session, institution_id, biller.id, {r.reference for r in parsed.rows}
    )
    errors: list[files.RowError] = []
    new_rows: list[files.BillRow] = []
    for row in parsed.rows:
        bill = existing.get((row.reference, row.period))
        if bill is None:
            new_rows.append(row)
        elif bill.amount_due != row.amount or bill.due_date != row.due_date:
            errors.append(
                files.RowError(
                    row.row,
                    "amount",
                    f"a bill for this reference and period is on record with amount "
                    f"{files.format_yuan(bill.amount_due)} and due date {bill.due_date}",
                )
            )
    if errors:
        raise FileRejected(errors, what="bill file")
    now = clock.now()
    bill_file = BillFile(
        id=uuid7(),
        institution_id=institution_id,
        biller_id=biller.id,
        digest=digest,
        filename=(filename or None) and filename[-255:],
        encoding=parsed.encoding,
        row_count=len(parsed.rows),
        new_bills=len(new_rows),
        total_amount=sum(r.amount for r in parsed.rows),
        imported_at=now,
    )
    session.add(bill_file)
    session.flush()
    session.add_all(
        Bill(
            id=uuid7(),
            institution_id=institution_id,
            biller_id=biller.id,
            reference=row.reference,
            period=row.period,
            amount_due=row.amount,
            due_date=row.due_date,
            status=BillStatus.open,
            source=BillSource.file,
            bill_file_id=bill_file.id,
            biller_bill_id=row.bill_number,
            created_at=now,
            paid_at=None,
        )
        for row in new_rows
    )
    session.flush()
    audit.record(
        session,
        action="bills.bill_file_imported",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_file",
        object_id=str(bill_file.id),
        detail={
            "biller_id": str(biller.id),
            "rows": bill_file.row_count,
            "new_bills": bill_file.new_bills,
            "total_amount": bill_file.total_amount,
        },
    )
    return ImportResult(bill_file, replayed=False)


def store_remote_bills(
    session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID, remote: list[RemoteBill]
) -> list[Bill]:
    """Record what an HTTP biller answered to a query. The biller is authoritative for a bill
    we have not paid: its amount wins, and a bill it no longer holds open is closed here
    (``cancelled``: we can no longer collect it)."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    existing = _existing_bills(session, institution_id, biller.id, {r.reference for r in remote})
    out: list[Bill] = []
    for item in remote:
        try:
            reference = files.parse_reference(item.reference)
            period = files.parse_period(item.period)
        except ValueError:
            continue  # the biller's own oddity; never stored
        if not 0 < item.amount <= MAX_FEN:
            continue
        bill = existing.get((reference, period))
        if bill is None:
            if item.status != "open":
                continue
            bill = Bill(
                id=uuid7(),
                institution_id=institution_id,
                biller_id=biller.id,
                reference=reference,
                period=period,
                amount_due=item.amount,
                due_date=item.due_date,
                status=BillStatus.open,
                source=BillSource.http,
                bill_file_id=None,
                biller_bill_id=item.bill_id[:64],
                created_at=clock.now(),
                paid_at=None,
            )
            session.add(bill)
        elif bill.status == BillStatus.open:
            bill.amount_due = item.amount
            bill.due_date = item.due_date
            bill.biller_bill_id = item.bill_id[:64]
            if item.status != "open":
                bill.status = BillStatus.cancelled
        out.append(bill)
    session.flush()
    return out


def refresh_bills(
    factory: sessionmaker[Session],
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    reference: str,
) -> list[uuid.UUID]:
    """Query an HTTP biller for a reference's bills and record them; the ids of the bills
    it answered, open ones first. Raises :class:`BillerError` when the biller fails."""
    try:
        reference = files.parse_reference(reference)
    except ValueError as exc:
        raise InvalidInput("bills.invalid_reference", str(exc), field="reference") from exc

    def load(session: Session) -> BillerEndpoint:
        biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
        return endpoint(session, biller)

    remote = BillerClient(run_in_transaction(factory, load)).query(reference)
    remote = [r for r in remote if r.reference == reference]
    bills = run_in_transaction(
        factory,
        lambda s: [
            (b.status != BillStatus.open, b.period, b.id)
            for b in store_remote_bills(
                s, institution_id=institution_id, biller_id=biller_id, remote=remote
            )
        ],
    )
    return [bill_id for *_, bill_id in sorted(bills)]
