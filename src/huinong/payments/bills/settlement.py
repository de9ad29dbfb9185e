"""Settlement files and reconciliation: what we collected for a biller, checked against what
the biller says it received, and paid over.

:func:`settlement_file` lists a biller's payments of one business date (会计日期) with
totals. :func:`reconcile` compares the biller's return file with our payments of that date
and stores every mismatch (missing on their side, missing on ours, amount differs,
duplicate); :func:`compare` is that comparison, pure. Only matched payments are settled: one
transfer of their sum from the biller's settlement account to clearing (3001), and each
settled payment points to the reconciliation that settled it, so it is never settled twice;
mismatched payments stay in the settlement account until a later return file matches them.
Re-running the same return file returns the stored result.

Functions that take a session never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.types import TransferInput
from huinong.payments.bills import files
from huinong.payments.bills.billers import get_biller
from huinong.payments.bills.common import FileRejected, derived_transfer_id
from huinong.payments.bills.models import (
    Bill,
    BillPayment,
    BillReconciliation,
    BillReconciliationItem,
    MismatchKind,
)
from huinong.payments.codes import TransferCode
from huinong.security.audit import service as audit
from huinong.security.crypto import sm3
from huinong.security.principals import Principal


def day_payments(
    session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID, business_date: date
) -> list[tuple[BillPayment, Bill]]:
    rows = session.execute(
        select(BillPayment, Bill)
        .join(Bill, Bill.id == BillPayment.bill_id)
        .where(
            BillPayment.institution_id == institution_id,
            BillPayment.biller_id == biller_id,
            BillPayment.business_date == business_date,
        )
        .order_by(BillPayment.created_at, BillPayment.id)
    ).all()
    return [(payment, bill) for payment, bill in rows]


def settlement_file(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    business_date: date,
    actor: Principal | None = None,
) -> tuple[bytes, files.SettlementTotals]:
    """The day's settlement file for one biller and its totals."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    lines = [
        files.SettlementLine(str(p.id), b.reference, b.period, p.amount, p.created_at)
        for p, b in day_payments(
            session, institution_id=institution_id, biller_id=biller.id, business_date=business_date
        )
    ]
    audit.record(
        session,
        action="bills.settlement_file",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"business_date": business_date.isoformat(), "count": len(lines)},
    )
    return files.write_settlement_file(lines), files.settlement_totals(lines)


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    payment_reference: str
    reference: str | None
    our_amount: int | None
    their_amount: int | None
    their_row: int | None


def compare(
    ours: dict[str, tuple[str, int]], theirs: Sequence[files.ReturnRow]
) -> tuple[list[str], list[Mismatch]]:
    """Pure comparison. ``ours``: payment id -> (reference, fen). Returns the payment ids
    that match exactly once, and every mismatch."""
    counts = Counter(row.payment_id for row in theirs)
    mismatches: list[Mismatch] = []
    matched: list[str] = []
    reported_duplicates: set[str] = set()
    for row in theirs:
        mine = ours.get(row.payment_id)
        if counts[row.payment_id] > 1:
            if row.payment_id not in reported_duplicates:
                reported_duplicates.add(row.payment_id)
                mismatches.append(
                    Mismatch(
                        MismatchKind.duplicate,
                        row.payment_id,
                        row.reference,
                        mine[1] if mine else None,
                        row.amount,
                        row.row,
                    )
                )
            continue
        if mine is None:
            mismatches.append(
                Mismatch(
                    MismatchKind.missing_on_our_side,
                    row.payment_id,
                    row.reference,
                    None,
                    row.amount,
                    row.row,
                )
            )
        elif mine[1] != row.amount:
            mismatches.append(
                Mismatch(
                    MismatchKind.amount_differs,
                    row.payment_id,
                    mine[0],
                    mine[1],
                    row.amount,
                    row.row,
                )
            )
        else:
            matched.append(row.payment_id)
    for payment_id, (reference, amount) in ours.items():
        if payment_id not in counts:
            mismatches.append(
                Mismatch(
                    MismatchKind.missing_on_their_side, payment_id, reference, amount, None, None
                )
            )
    return matched, mismatches


def reconcile(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    data: bytes,
    business_date: date | None = None,
    encoding: str | None = None,
    settle: bool = True,
    actor: Principal | None = None,
) -> BillReconciliation:
    """Reconcile a biller's return file with our payments of ``business_date`` (by default
    the date of our payments the file names), store every mismatch, and settle the matched
    payments not settled before (see the module docstring). The same file again returns the
    stored result."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    digest = sm3(data).hex()
    earlier = session.scalar(
        select(BillReconciliation).where(
            BillReconciliation.institution_id == institution_id,
            BillReconciliation.biller_id == biller.id,
            BillReconciliation.digest == digest,
        )
    )
    if earlier is not None:
        return earlier
    parsed = files.parse_return_file(data, encoding=encoding)
    if not parsed.ok:
        raise FileRejected(parsed.errors, what="return file")
    if business_date is None:
        named = {_as_uuid(r.payment_id) for r in parsed.rows} - {None}
        dates = set(
            session.scalars(
                select(BillPayment.business_date).where(
                    BillPayment.institution_id == institution_id,
                    BillPayment.biller_id == biller.id,
                    BillPayment.id.in_(list(named)[:10_000]),
                )
            )
        )
        if len(dates) != 1:
            raise InvalidInput(
                "bills.business_date_required",
                "the file does not name payments of exactly one day; give the business date",
                field="business_date",
            )
        business_date = dates.pop()
    payments_of_day = day_payments(
        session, institution_id=institution_id, biller_id=biller.id, business_date=business_date
    )
    by_id = {str(p.id): p for p, _ in payments_of_day}
    ours = {str(p.id): (b.reference, p.amount) for p, b in payments_of_day}
    matched, mismatches = compare(ours, parsed.rows)
    to_settle = [by_id[m] for m in matched if by_id[m].settled_by_id is None]
    settled_amount = sum(p.amount for p in to_settle)
    reconciliation = BillReconciliation(
        id=uuid7(),
        institution_id=institution_id,
        biller_id=biller.id,
        business_date=business_date,
        digest=digest,
        their_count=len(parsed.rows),
        their_amount=sum(r.amount for r in parsed.rows),
        our_count=len(ours),
        our_amount=sum(amount for _, amount in ours.values()),
        matched_count=len(matched),
        matched_amount=sum(by_id[m].amount for m in matched),
        mismatch_count=len(mismatches),
        settled_amount=0,
        settlement_transfer_id=None,
        created_at=clock.now(),
    )
    session.add(reconciliation)
    session.flush()
    session.add_all(
        BillReconciliationItem(
            id=uuid7(),
            institution_id=institution_id,
            reconciliation_id=reconciliation.id,
            kind=m.kind,
            payment_reference=m.payment_reference[:64],
            reference=m.reference[:64] if m.reference else None,
            our_amount=m.our_amount,
            their_amount=m.their_amount,
            their_row=m.their_row,
        )
        for m in mismatches
    )
    if settle and settled_amount:
        settlement = ledger.get_account(
            session, institution_id=institution_id, account_id=biller.settlement_account_id
        )
        clearing = ledger.system_account(
            session,
            institution_id=institution_id,
            code=AccountCode.clearing,
            ledger=settlement.ledger,
        )
        transfer_id = derived_transfer_id(
            institution_id, f"reconciliation/{reconciliation.id}", "settle"
        )
        results = ledger.create_transfers(
            session,
            institution_id=institution_id,
            batch=[
                TransferInput(
                    id=transfer_id,
                    debit_account_id=settlement.id,
                    credit_account_id=clearing.id,
                    amount=settled_amount,
                    ledger=settlement.ledger,
                    code=TransferCode.biller_settlement,
                    reference=str(reconciliation.id),
                )
            ],
        )
        if not results[0].result.applied:
            raise Conflict(
                f"ledger.{results[0].result.value}",
                f"the settlement transfer was refused: {results[0].result}",
            )
        reconciliation.settled_amount = settled_amount
        reconciliation.settlement_transfer_id = transfer_id
        for payment in to_settle:
            payment.settled_by_id = reconciliation.id
    session.flush()
    audit.record(
        session,
        action="bills.reconciled",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_reconciliation",
        object_id=str(reconciliation.id),
        detail={
            "biller_id": str(biller.id),
            "business_date": business_date.isoformat(),
            "matched": reconciliation.matched_count,
            "mismatches": reconciliation.mismatch_count,
            "settled_amount": reconciliation.settled_amount,
        },
    )
    return reconciliation


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def get_reconciliation(
    session: Session, *, institution_id: uuid.UUID, reconciliation_id: uuid.UUID
) -> BillReconciliation:
    found = session.get(BillReconciliation, reconciliation_id)
    if found is None or found.institution_id != institution_id:
        raise NotFound(
            "bills.reconciliation_not_found", "no such reconciliation", field="reconciliation_id"
        )
    return found


def reconciliation_items(
    session: Session, *, reconciliation: BillReconciliation
) -> Sequence[BillReconciliationItem]:
    return session.scalars(
        select(BillReconciliationItem)
        .where(BillReconciliationItem.reconciliation_id == reconciliation.id)
        .order_by(BillReconciliationItem.kind, BillReconciliationItem.payment_reference)
    ).all()
