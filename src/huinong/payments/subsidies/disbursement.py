"""Disbursing an approved subsidy batch, chunk by chunk (代发).

:func:`run_disbursement` pays the pending rows of an approved batch in chunks, one
transaction per chunk (:func:`disburse_chunk`). A chunk's transfers go to the ledger in one
``create_transfers`` batch: each debits the payer and credits the beneficiary's account, or
the institution's suspense account (2241) when the row gave none. Transfer ids derive from the
batch id and row number (:func:`row_transfer_id`), and a row's status changes in the same
transaction as its transfer is written, so

* a crash loses at most the chunk in flight, which rolled back whole, and the next run picks
  up the rows still ``pending``;
* a run racing another (or a retried transaction) finds its transfers stored (``exists``) and
  records the row as paid: no row is ever paid twice.

A row the ledger refuses (the account was closed after validation, say) becomes ``failed``
and the payer is not debited for it. If the payer's balance runs short the chunk stops with
``subsidies.payer_insufficient_funds`` and nothing of it is written: top up and run again.
Rows paid to suspense are paid on later by ``suspense``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import run_in_transaction
from huinong.errors import Conflict, InvalidInput
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.types import CreateTransferResult, TransferInput
from huinong.payments.codes import TransferCode
from huinong.payments.subsidies.common import (
    TRANSFER_ID_NAMESPACE,
    batch_reference,
    get_batch,
    locked_batch,
    one_of,
    require_status,
)
from huinong.payments.subsidies.models import (
    BatchStatus,
    RowStatus,
    SubsidyRow,
)
from huinong.security.audit import service as audit
from huinong.security.principals import Principal

DEFAULT_CHUNK = 2000
MAX_CHUNK = 8000  # under the ledger's batch limit


def row_transfer_id(batch_id: uuid.UUID, row_number: int) -> uuid.UUID:
    """The id of the transfer paying a row: the same on every run, so none pays twice."""
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{batch_id}/{row_number}")


@dataclass(frozen=True)
class ChunkOutcome:
    rows: int = 0
    paid: int = 0
    suspense: int = 0
    failed: int = 0
    amount: int = 0  # fen debited from the payer by this chunk
    done: bool = False  # no pending row is left
    last_row: int = 0  # the last row number this chunk handled


def disburse_chunk(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    limit: int = DEFAULT_CHUNK,
    after_row: int = 0,
    actor: Principal | None = None,
) -> ChunkOutcome:
    """Pay the next ``limit`` pending rows of an approved batch (one transaction).

    ``after_row`` is where the previous chunk of the same run ended: rows are paid in row
    order, so nothing pending lies before it, and starting the index scan there skips the
    index entries of rows already paid (dead versions, on PostgreSQL, until vacuumed).
    """
    if not 1 <= limit <= MAX_CHUNK:
        raise InvalidInput(
            "subsidies.invalid_chunk_size", f"a chunk is 1 to {MAX_CHUNK} rows", field="chunk_size"
        )
    batch = locked_batch(session, institution_id, batch_id)
    if batch.status == BatchStatus.disbursed:
        return ChunkOutcome(done=True)
    require_status(batch, BatchStatus.approved, BatchStatus.disbursing, doing="disbursed")

    def pending_after(row_number: int) -> Sequence[Any]:
        return session.execute(
            select(SubsidyRow.id, SubsidyRow.row_number, SubsidyRow.account_id, SubsidyRow.amount)
            .where(
                SubsidyRow.batch_id == batch.id,
                SubsidyRow.status == str(RowStatus.pending),
                SubsidyRow.row_number > row_number,
            )
            .order_by(SubsidyRow.row_number)
            .limit(limit)
        ).all()

    rows = pending_after(after_row)
    if not rows and after_row:
        rows = pending_after(0)  # a row left behind (by a racing run): start over
    now = clock.now()
    if not rows:
        batch.status = str(BatchStatus.disbursed)
        batch.disbursed_at = now
        session.flush()
        return ChunkOutcome(done=True)
    payer = ledger.get_account(
        session, institution_id=institution_id, account_id=batch.payer_account_id
    )
    suspense_id = (
        ledger.system_account(
            session, institution_id=institution_id, code=AccountCode.suspense, ledger=payer.ledger
        ).id
        if any(r.account_id is None for r in rows)
        else None
    )
    reference = batch_reference(batch.id)
    transfers = [
        TransferInput(
            id=row_transfer_id(batch.id, r.row_number),
            debit_account_id=payer.id,
            credit_account_id=r.account_id or suspense_id,
            amount=r.amount,
            ledger=payer.ledger,
            code=TransferCode.subsidy_to_beneficiary
            if r.account_id
            else TransferCode.subsidy_to_suspense,
            reference=reference,
        )
        for r in rows
    ]
    results = ledger.create_transfers(session, institution_id=institution_id, batch=transfers)
    groups: dict[tuple[str, str | None], list[uuid.UUID]] = {}
    paid = held = failed = amount = 0
    for r, result in zip(rows, results, strict=True):
        outcome = result.result
        if outcome is CreateTransferResult.exceeds_credits:
            # The payer ran short: stop with nothing of this chunk written (the transaction
            # rolls back), so a top-up and a re-run carry on from here.
            raise Conflict(
                "subsidies.payer_insufficient_funds",
                "the payer's account does not hold enough to pay the batch: fund it and run "
                "the disbursement again (rows already paid stay paid)",
                field="payer_account_number",
            )
        if outcome.applied:
            status = RowStatus.paid if r.account_id else RowStatus.suspense
            paid += status is RowStatus.paid
            held += status is RowStatus.suspense
            amount += r.amount
            groups.setdefault((str(status), None), []).append(r.id)
        else:
            failed += 1
            groups.setdefault((str(RowStatus.failed), outcome.value), []).append(r.id)
    table = SubsidyRow.__table__
    connection = session.connection()
    for (status, failure), ids in groups.items():
        for among in one_of(session, table.c.id, ids):
            connection.execute(
                update(table)
                .where(among)
                .values(
                    status=status,
                    failure_code=failure,
                    paid_at=None if status == RowStatus.failed else now,
                )
            )
    remaining = session.scalar(
        select(SubsidyRow.id)
        .where(
            SubsidyRow.batch_id == batch.id,
            SubsidyRow.status == str(RowStatus.pending),
            SubsidyRow.row_number > rows[-1].row_number,
        )
        .limit(1)
    ) or session.scalar(  # rows before this run's start (only if the caller skipped some)
        select(SubsidyRow.id)
        .where(
            SubsidyRow.batch_id == batch.id,
            SubsidyRow.status == str(RowStatus.pending),
            SubsidyRow.row_number <= after_row,
        )
        .limit(1)
    )
    batch.status = str(BatchStatus.disbursing if remaining else BatchStatus.disbursed)
    if remaining is None:
        batch.disbursed_at = now
    session.flush()
    outcome_ = ChunkOutcome(
        len(rows), paid, held, failed, amount, done=remaining is None, last_row=rows[-1].row_number
    )
    audit.record(
        session,
        action="subsidies.chunk_disbursed",
        institution_id=institution_id,
        actor=actor,
        object_type="subsidy_batch",
        object_id=str(batch.id),
        detail={
            "first_row": rows[0].row_number,
            "last_row": rows[-1].row_number,
            "rows": len(rows),
            "paid": paid,
            "suspense": held,
            "failed": failed,
            "amount": amount,
        },
    )
    return outcome_


def pending_rows(session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID) -> int:
    batch = get_batch(session, institution_id=institution_id, batch_id=batch_id)
    return int(
        session.scalar(
            select(func.count()).where(
                SubsidyRow.batch_id == batch.id, SubsidyRow.status == str(RowStatus.pending)
            )
        )
        or 0
    )


@dataclass
class DisbursementRun:
    chunks: int = 0
    rows: int = 0
    paid: int = 0
    suspense: int = 0
    failed: int = 0
    amount: int = 0

    def add(self, chunk: ChunkOutcome) -> None:
        self.chunks += 1 if chunk.rows else 0
        self.rows += chunk.rows
        self.paid += chunk.paid
        self.suspense += chunk.suspense
        self.failed += chunk.failed
        self.amount += chunk.amount


def run_disbursement(
    factory: sessionmaker[Session],
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    chunk_size: int = DEFAULT_CHUNK,
    actor: Principal | None = None,
    on_chunk: Callable[[ChunkOutcome], None] | None = None,
) -> DisbursementRun:
    """Disburse a batch to the end, one transaction per chunk (an entry point's helper: it
    owns its transactions, so callers hand it the session factory, not a session).

    ``on_chunk`` is called after each chunk commits — for a progress bar, and for tests to
    inject a crash between chunks. Running it again after any interruption finishes the batch.
    """
    run = DisbursementRun()
    after = 0
    while True:
        chunk = run_in_transaction(
            factory,
            functools.partial(
                disburse_chunk,
                institution_id=institution_id,
                batch_id=batch_id,
                limit=chunk_size,
                after_row=after,
                actor=actor,
            ),
        )
        after = chunk.last_row
        run.add(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
        if chunk.done:
            return run
