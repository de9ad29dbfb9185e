"""Reading a subsidy batch: its rows, its error report and its reconciliation (对账).

Reads only. Batches and rows are listed by keyset (after an id / a row number); a row's ID
number is decrypted only for masking on the way out, never for a log. The error report is the
CSV of the findings that ``importing`` stored with the invalid rows (row, column, code,
message — no values from the file).

**Reconciliation.** The batch summary (:func:`summary`) sums rows per status and compares the
payer's debits for the batch in the ledger (transfers with the batch's reference) with
paid + suspense: they are equal unless something is wrong. Rows later released from suspense
are counted apart, since they stay part of "paid" once released.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huinong.ledger.models import Transfer
from huinong.payments.subsidies import rules
from huinong.payments.subsidies.common import ROWS_TABLE, batch_reference, get_batch
from huinong.payments.subsidies.models import (
    RowStatus,
    SubsidyBatch,
    SubsidyRow,
    SubsidyRowError,
)
from huinong.security.personal_data import service as personal_data


def list_batches(
    session: Session, *, institution_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 50
) -> list[SubsidyBatch]:
    query = select(SubsidyBatch).where(SubsidyBatch.institution_id == institution_id)
    if after is not None:
        query = query.where(SubsidyBatch.id > after)
    return list(session.scalars(query.order_by(SubsidyBatch.id).limit(limit)))


def list_rows(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    status: str | None = None,
    after_row: int = 0,
    limit: int = 100,
) -> list[SubsidyRow]:
    get_batch(session, institution_id=institution_id, batch_id=batch_id)
    query = select(SubsidyRow).where(
        SubsidyRow.batch_id == batch_id, SubsidyRow.row_number > after_row
    )
    if status is not None:
        query = query.where(SubsidyRow.status == status)
    return list(session.scalars(query.order_by(SubsidyRow.row_number).limit(limit)))


def row_id_number(session: Session, row: SubsidyRow) -> str | None:
    """The row's decrypted ID number (for masking; never for a log)."""
    if row.id_number_ciphertext is None:
        return None
    return personal_data.unseal(
        session,
        row.id_number_ciphertext,
        version=row.data_key_version,
        table=ROWS_TABLE,
        field="id_number",
        row_id=row.id,
    )


def row_errors(
    session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID
) -> list[rules.RowError]:
    get_batch(session, institution_id=institution_id, batch_id=batch_id)
    return [
        rules.RowError(e.row_number, e.column, e.code, e.message)
        for e in session.scalars(
            select(SubsidyRowError)
            .where(SubsidyRowError.batch_id == batch_id)
            .order_by(SubsidyRowError.row_number, SubsidyRowError.id)
        )
    ]


def error_report(session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID) -> str:
    """The CSV error report: row, column, code, message."""
    return rules.error_report_csv(
        row_errors(session, institution_id=institution_id, batch_id=batch_id)
    )


@dataclass(frozen=True)
class StatusTotal:
    rows: int = 0
    amount: int = 0


@dataclass(frozen=True)
class BatchSummary:
    batch: SubsidyBatch
    by_status: dict[str, StatusTotal]
    payer_debit: int  # fen the ledger shows debited from the payer for this batch
    released_from_suspense: StatusTotal = field(default_factory=StatusTotal)

    @property
    def reconciled(self) -> bool:
        paid = self.by_status.get(RowStatus.paid, StatusTotal()).amount
        held = self.by_status.get(RowStatus.suspense, StatusTotal()).amount
        return self.payer_debit == paid + held


def summary(session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID) -> BatchSummary:
    batch = get_batch(session, institution_id=institution_id, batch_id=batch_id)
    by_status = {str(s): StatusTotal() for s in RowStatus}
    for status, count, amount in session.execute(
        select(SubsidyRow.status, func.count(), func.coalesce(func.sum(SubsidyRow.amount), 0))
        .where(SubsidyRow.batch_id == batch.id)
        .group_by(SubsidyRow.status)
    ):
        by_status[status] = StatusTotal(int(count), int(amount))
    released = session.execute(
        select(func.count(), func.coalesce(func.sum(SubsidyRow.amount), 0)).where(
            SubsidyRow.batch_id == batch.id, SubsidyRow.released_at.is_not(None)
        )
    ).one()
    payer_debit = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.debit_account_id == batch.payer_account_id,
            Transfer.reference == batch_reference(batch.id),
        )
    )
    return BatchSummary(
        batch, by_status, int(payer_debit or 0), StatusTotal(int(released[0]), int(released[1]))
    )
