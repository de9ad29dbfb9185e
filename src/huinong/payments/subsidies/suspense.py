"""Releasing subsidies held in suspense when the beneficiary opens an account (挂账).

A row that named no account is paid by ``disbursement`` into the institution's suspense
account (2241). When that customer opens a deposit account (``payments.service``), their rows
in suspense are paid from 2241 into it in the same transaction (:func:`release_suspense`), so
the account never exists without its waiting subsidies, nor are they paid into an account that
rolled back. The release transfers carry the batch's reference and their ids derive from the
batch and row, so a retried opening pays nothing twice; the row turns from ``suspense`` to
``paid``, so the batch still reconciles (``reporting.summary`` counts the released rows apart).
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.ledger.types import TransferInput
from huinong.payments.codes import TransferCode
from huinong.payments.subsidies.common import TRANSFER_ID_NAMESPACE, batch_reference
from huinong.payments.subsidies.disbursement import MAX_CHUNK
from huinong.payments.subsidies.models import (
    RowStatus,
    SubsidyRow,
)
from huinong.security.audit import service as audit


def release_transfer_id(batch_id: uuid.UUID, row_number: int) -> uuid.UUID:
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{batch_id}/{row_number}/release")


def release_suspense(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID, account: Account
) -> int:
    """Pay the customer's rows waiting in suspense into ``account`` (just opened); how many.

    Runs in the caller's transaction (the account opening), so the account never exists
    without its waiting subsidies, nor the subsidies paid into an account that rolled back.
    """
    rows = session.execute(
        select(SubsidyRow.id, SubsidyRow.batch_id, SubsidyRow.row_number, SubsidyRow.amount)
        .where(
            SubsidyRow.institution_id == institution_id,
            SubsidyRow.customer_id == customer_id,
            SubsidyRow.status == str(RowStatus.suspense),
        )
        .order_by(SubsidyRow.batch_id, SubsidyRow.row_number)
        .limit(MAX_CHUNK)
    ).all()
    if not rows:
        return 0
    suspense = ledger.system_account(
        session, institution_id=institution_id, code=AccountCode.suspense, ledger=account.ledger
    )
    results = ledger.create_transfers(
        session,
        institution_id=institution_id,
        batch=[
            TransferInput(
                id=release_transfer_id(r.batch_id, r.row_number),
                debit_account_id=suspense.id,
                credit_account_id=account.id,
                amount=r.amount,
                ledger=account.ledger,
                code=TransferCode.subsidy_from_suspense,
                reference=batch_reference(r.batch_id),
            )
            for r in rows
        ],
    )
    now = clock.now()
    released = [r for r, result in zip(rows, results, strict=True) if result.result.applied]
    if released:
        table = SubsidyRow.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(status=str(RowStatus.paid), account_id=account.id, released_at=now),
            [{"b_id": r.id} for r in released],
        )
        by_batch: dict[uuid.UUID, int] = {}
        for r in released:
            by_batch[r.batch_id] = by_batch.get(r.batch_id, 0) + 1
        for released_batch, count in by_batch.items():
            audit.record(
                session,
                action="subsidies.suspense_released",
                institution_id=institution_id,
                object_type="subsidy_batch",
                object_id=str(released_batch),
                detail={
                    "rows": count,
                    "customer_id": str(customer_id),
                    "account_id": str(account.id),
                },
            )
    return len(released)
