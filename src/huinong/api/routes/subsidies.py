"""Subsidy disbursement (惠农补贴 一卡通): import a batch file, maker-checker, disburse, report.

The file travels base64-encoded in the JSON body. A file that cannot be read is refused with
``field: file`` and nothing is written; rows with findings are stored as invalid and listed by
``GET /subsidy-batches/{batch_id}/errors`` (CSV: row, column, code, message — no values from
the file, so the report holds no personal data).

Rows carry personal data: ID numbers are masked in every response, names and account numbers
by the caller's role (``security.personal_data.masking``), and every read of rows is audited.

The disbursement runs in the request, chunk by chunk (one transaction each). It is idempotent
by construction — transfer ids derive from the batch and row — so it needs no Idempotency-Key:
calling it again after a time-out or an error finishes the batch and never pays a row twice.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.uploads import decode_file
from huinong.ledger.models import Account
from huinong.payments.subsidies import approval, disbursement, importing, reporting
from huinong.payments.subsidies.models import RowStatus, SubsidyBatch, SubsidyRow
from huinong.payments.subsidies.schemas import (
    DisbursementCreate,
    DisbursementRead,
    DisbursementRunRead,
    ReconciliationRead,
    RejectionCreate,
    StatusTotalRead,
    SubsidyBatchCreate,
    SubsidyBatchRead,
    SubsidyBatchSummaryRead,
    SubsidyRowPage,
    SubsidyRowRead,
)
from huinong.security.audit import service as audit
from huinong.security.personal_data import masking
from huinong.security.principals import Principal

router = APIRouter(tags=["subsidies"])


def batch_read(batch: SubsidyBatch) -> SubsidyBatchRead:
    return SubsidyBatchRead(
        id=batch.id,
        status=batch.status,
        payer_customer_id=batch.payer_customer_id,
        payer_account_id=batch.payer_account_id,
        file_name=batch.file_name,
        file_format=batch.file_format,
        row_count=batch.row_count,
        valid_count=batch.valid_count,
        invalid_count=batch.row_count - batch.valid_count,
        valid_amount=batch.valid_amount,
        maker_id=batch.maker_id,
        checker_id=batch.checker_id,
        created_at=batch.created_at,
        submitted_at=batch.submitted_at,
        decided_at=batch.decided_at,
        rejection_reason=batch.rejection_reason,
        disbursed_at=batch.disbursed_at,
    )


def summary_read(summary: reporting.BatchSummary) -> SubsidyBatchSummaryRead:
    paid = summary.by_status.get(RowStatus.paid, reporting.StatusTotal()).amount
    held = summary.by_status.get(RowStatus.suspense, reporting.StatusTotal()).amount
    return SubsidyBatchSummaryRead(
        **batch_read(summary.batch).model_dump(),
        totals={
            status: StatusTotalRead(rows=t.rows, amount=t.amount)
            for status, t in summary.by_status.items()
        },
        released_from_suspense=StatusTotalRead(
            rows=summary.released_from_suspense.rows,
            amount=summary.released_from_suspense.amount,
        ),
        reconciliation=ReconciliationRead(
            payer_debit=summary.payer_debit,
            paid_plus_suspense=paid + held,
            reconciled=summary.reconciled,
        ),
    )


def _staff_id(principal: Principal) -> uuid.UUID:
    return principal.subject_id


@router.post("/subsidy-batches", status_code=201, response_model=SubsidyBatchRead)
def import_batch(body: SubsidyBatchCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The maker imports the bureau's list; rows are validated and stored, invalid ones with
    their findings."""
    content = decode_file(body.content_base64, domain="subsidies")
    return database.run(
        lambda s: batch_read(
            importing.import_batch(
                s,
                institution_id=principal.institution_id,
                maker_id=_staff_id(principal),
                payer_account_number=body.payer_account_number,
                file_name=body.file_name,
                content=content,
                encoding=body.encoding,
                actor=principal,
            )
        )
    )


@router.get("/subsidy-batches", response_model=list[SubsidyBatchRead])
def list_batches(
    principal: PrincipalDep,
    database: DatabaseDep,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return database.run(
        lambda s: [
            batch_read(b)
            for b in reporting.list_batches(
                s, institution_id=principal.institution_id, after=after, limit=limit
            )
        ]
    )


@router.get("/subsidy-batches/{batch_id}", response_model=SubsidyBatchSummaryRead)
def get_batch(batch_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The batch with counts and sums per row status, and the reconciliation of the payer's
    debit with what was paid and what waits in suspense."""
    return database.run(
        lambda s: summary_read(
            reporting.summary(s, institution_id=principal.institution_id, batch_id=batch_id)
        )
    )


@router.get("/subsidy-batches/{batch_id}/errors")
def batch_errors(batch_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Response:
    """The error report, CSV: row (as numbered in the file), column, code, message."""
    report = database.run(
        lambda s: reporting.error_report(
            s, institution_id=principal.institution_id, batch_id=batch_id
        )
    )
    return Response(
        content=report.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subsidy-{batch_id}-errors.csv"'},
    )


@router.get("/subsidy-batches/{batch_id}/rows", response_model=SubsidyRowPage)
def batch_rows(
    batch_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    status: RowStatus | None = None,
    after_row: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    def work(s: Session) -> list[SubsidyRowRead]:
        rows = reporting.list_rows(
            s,
            institution_id=principal.institution_id,
            batch_id=batch_id,
            status=None if status is None else str(status),
            after_row=after_row,
            limit=limit,
        )
        audit.record(
            s,
            action="subsidies.rows_read",
            institution_id=principal.institution_id,
            actor=principal,
            object_type="subsidy_batch",
            object_id=str(batch_id),
            detail={"returned": len(rows), "after_row": after_row},
        )
        return [_row_read(s, row, principal) for row in rows]

    items = database.run(work)
    return SubsidyRowPage(
        items=items, next_after_row=items[-1].row_number if len(items) == limit else None
    )


def _row_read(session: Session, row: SubsidyRow, principal: Principal) -> SubsidyRowRead:
    id_number = reporting.row_id_number(session, row)
    account = session.get(Account, row.account_id) if row.account_id else None
    return SubsidyRowRead(
        row_number=row.row_number,
        status=row.status,
        name=masking.present("name", row.name, principal.roles),
        id_number_masked=None if id_number is None else masking.mask_id_number(id_number),
        customer_id=row.customer_id,
        account_number=masking.present(
            "account_number", account.account_number if account else None, principal.roles
        ),
        amount=row.amount,
        subsidy_type=row.subsidy_type,
        year=row.year,
        failure_code=row.failure_code,
        paid_at=row.paid_at,
        released_at=row.released_at,
    )


@router.post("/subsidy-batches/{batch_id}/submission", response_model=SubsidyBatchRead)
def submit_batch(batch_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The maker hands the batch to a checker."""
    return database.run(
        lambda s: batch_read(
            approval.submit_batch(
                s,
                institution_id=principal.institution_id,
                batch_id=batch_id,
                actor_id=_staff_id(principal),
                actor=principal,
            )
        )
    )


@router.post("/subsidy-batches/{batch_id}/approval", response_model=SubsidyBatchRead)
def approve_batch(batch_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """A checker who is not the maker approves the batch for disbursement."""
    return database.run(
        lambda s: batch_read(
            approval.approve_batch(
                s,
                institution_id=principal.institution_id,
                batch_id=batch_id,
                checker_id=_staff_id(principal),
                actor=principal,
            )
        )
    )


@router.post("/subsidy-batches/{batch_id}/rejection", response_model=SubsidyBatchRead)
def reject_batch(
    batch_id: uuid.UUID, body: RejectionCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: batch_read(
            approval.reject_batch(
                s,
                institution_id=principal.institution_id,
                batch_id=batch_id,
                checker_id=_staff_id(principal),
                reason=body.reason,
                actor=principal,
            )
        )
    )


@router.post("/subsidy-batches/{batch_id}/disbursement", response_model=DisbursementRead)
def disburse_batch(
    batch_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    body: DisbursementCreate | None = None,
) -> Any:
    """Pay the approved batch's pending rows, chunk by chunk; safe to call again."""
    chunk_size = body.chunk_size if body is not None else disbursement.DEFAULT_CHUNK
    run = disbursement.run_disbursement(
        database.factory,
        institution_id=principal.institution_id,
        batch_id=batch_id,
        chunk_size=chunk_size,
        actor=principal,
    )
    summary = database.run(
        lambda s: summary_read(
            reporting.summary(s, institution_id=principal.institution_id, batch_id=batch_id)
        )
    )
    return DisbursementRead(
        run=DisbursementRunRead(
            chunks=run.chunks,
            rows=run.rows,
            paid=run.paid,
            suspense=run.suspense,
            failed=run.failed,
            amount=run.amount,
        ),
        batch=summary,
    )
