"""Maker-checker for subsidy batches: submit, approve, reject (审核).

The maker who imported a batch submits it; an approver who is not the maker approves or
rejects it (a rejection needs a reason). The service enforces the four eyes, and so does a
check constraint on the table. Each step locks the batch row (``SELECT … FOR UPDATE``), so two
checkers deciding at once are serialised; repeating a submission, or an approval by the same
checker, returns the batch unchanged.

Approval is also the last guard against paying a person twice: imports check duplicates
against every batch not rejected, but two imports running at the same moment do not see each
other's rows, so approval refuses a batch that repeats a (person, type, year) of a batch
already approved.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden, InvalidInput
from huinong.payments.subsidies.common import locked_batch, require_status
from huinong.payments.subsidies.models import (
    BatchStatus,
    RowStatus,
    SubsidyBatch,
    SubsidyRow,
)
from huinong.security.audit import service as audit
from huinong.security.principals import Principal


def submit_batch(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    actor_id: uuid.UUID,
    actor: Principal | None = None,
) -> SubsidyBatch:
    """The maker hands the batch to a checker."""
    batch = locked_batch(session, institution_id, batch_id)
    if batch.status == BatchStatus.submitted:
        return batch
    require_status(batch, BatchStatus.imported, doing="submitted")
    if actor_id != batch.maker_id:
        raise Forbidden(
            "subsidies.not_the_maker",
            "only the maker who imported the batch submits it",
            field="batch_id",
        )
    if batch.valid_count == 0:
        raise Conflict(
            "subsidies.nothing_to_pay",
            "no row of the batch is valid: correct the file and import it again",
            field="batch_id",
        )
    batch.status = str(BatchStatus.submitted)
    batch.submitted_at = clock.now()
    session.flush()
    _audit_decision(session, batch, "subsidies.batch_submitted", actor)
    return batch


def _check_checker(batch: SubsidyBatch, checker_id: uuid.UUID) -> None:
    if checker_id == batch.maker_id:
        raise Forbidden(
            "subsidies.self_approval",
            "the maker of a batch cannot approve or reject it: another approver must",
            field="batch_id",
        )


def approve_batch(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    checker_id: uuid.UUID,
    actor: Principal | None = None,
) -> SubsidyBatch:
    batch = locked_batch(session, institution_id, batch_id)
    _check_checker(batch, checker_id)
    if batch.status == BatchStatus.approved and batch.checker_id == checker_id:
        return batch
    require_status(batch, BatchStatus.submitted, doing="approved")
    clashes = _clashes_with_approved_batches(session, batch)
    if clashes:
        raise Conflict(
            "subsidies.duplicate_of_approved_batch",
            f"{clashes} rows pay a person a subsidy type and year that another approved batch "
            "pays too (the two were imported at the same time): reject this batch",
            field="batch_id",
        )
    batch.status = str(BatchStatus.approved)
    batch.checker_id = checker_id
    batch.decided_at = clock.now()
    session.flush()
    _audit_decision(session, batch, "subsidies.batch_approved", actor)
    return batch


def _clashes_with_approved_batches(session: Session, batch: SubsidyBatch) -> int:
    """Rows of ``batch`` that an approved (or paying, or paid) batch pays too.

    Imports check duplicates against every batch not rejected, but two imports running at the
    same moment do not see each other's rows; approval catches such a pair: the second of
    them to be approved is refused. (What is left is two checkers approving the two batches
    in the same instant; a per-person unique key would close it, at the cost of a unique
    index on every row written.)
    """
    mine = SubsidyRow.__table__.alias("mine")
    theirs = SubsidyRow.__table__.alias("theirs")
    other = SubsidyBatch.__table__.alias("other")
    live = [str(RowStatus.invalid), str(RowStatus.failed)]
    query = (
        select(func.count())
        .select_from(mine)
        .join(
            theirs,
            (theirs.c.institution_id == mine.c.institution_id)
            & (theirs.c.id_number_index == mine.c.id_number_index)
            & (theirs.c.subsidy_type == mine.c.subsidy_type)
            & (theirs.c.year == mine.c.year)
            & (theirs.c.batch_id != mine.c.batch_id),
        )
        .join(other, other.c.id == theirs.c.batch_id)
        .where(
            mine.c.batch_id == batch.id,
            mine.c.status.not_in(live),
            theirs.c.status.not_in(live),
            other.c.status.in_(
                [str(BatchStatus.approved), str(BatchStatus.disbursing), str(BatchStatus.disbursed)]
            ),
        )
    )
    return int(session.scalar(query) or 0)


def reject_batch(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    checker_id: uuid.UUID,
    reason: str,
    actor: Principal | None = None,
) -> SubsidyBatch:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "subsidies.reason_required", "say why the batch is rejected", field="reason"
        )
    if len(reason) > 500:
        raise InvalidInput("subsidies.reason_too_long", "at most 500 characters", field="reason")
    batch = locked_batch(session, institution_id, batch_id)
    _check_checker(batch, checker_id)
    if (
        batch.status == BatchStatus.rejected
        and batch.checker_id == checker_id
        and batch.rejection_reason == reason
    ):
        return batch  # the same decision sent again (a retry): nothing changes
    require_status(batch, BatchStatus.submitted, doing="rejected")
    batch.status = str(BatchStatus.rejected)
    batch.checker_id = checker_id
    batch.decided_at = clock.now()
    batch.rejection_reason = reason
    session.flush()
    _audit_decision(session, batch, "subsidies.batch_rejected", actor)
    return batch


def _audit_decision(
    session: Session, batch: SubsidyBatch, action: str, actor: Principal | None
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=batch.institution_id,
        actor=actor,
        object_type="subsidy_batch",
        object_id=str(batch.id),
        detail={"rows": batch.valid_count, "amount": batch.valid_amount},
    )
