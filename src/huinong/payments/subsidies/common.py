"""What every step of a subsidy batch shares (惠农补贴代发).

The subsidy use cases are split by concept: ``importing`` (read and validate a bureau's list),
``approval`` (maker-checker), ``disbursement`` (pay an approved batch in chunks), ``suspense``
(pay the rows that waited for an account when it opens) and ``reporting`` (the batch, its
rows, its error report and its reconciliation). This module holds the little they share and
nothing else: the batch looked up (and locked) within its institution, the batch-status guard,
the namespace of the transfer ids and the ledger reference that ties a batch's transfers
together (the reconciliation key), and the bulk "column among values" condition of the
set-wise lookups.

The names carry no leading underscore because sibling modules use them; they are plumbing of
this package, not use cases for entry points.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from huinong.db import is_postgres
from huinong.errors import Conflict, NotFound
from huinong.payments.subsidies.models import (
    BatchStatus,
    SubsidyBatch,
    SubsidyRow,
)

ROWS_TABLE = SubsidyRow.__tablename__
TRANSFER_ID_NAMESPACE = uuid.UUID("0192f5a2-7c3e-7000-8000-737562736964")
LOOKUP_CHUNK = 5000  # values per IN (...) of the bulk lookups


T = TypeVar("T")


def batch_reference(batch_id: uuid.UUID) -> str:
    """The ledger reference of every transfer of a batch (its reconciliation key)."""
    return f"subsidy:{batch_id}"


def chunks(values: Sequence[T], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def one_of(
    session: Session, column: ColumnElement[Any], values: Sequence[Any]
) -> Iterable[ColumnElement[bool]]:
    """``column`` among ``values``, as few conditions as the backend allows: one
    ``= ANY(array)`` on PostgreSQL (one bound array, whatever its length), ``IN (...)`` lists
    of at most ``LOOKUP_CHUNK`` on SQLite (its limit on bound parameters)."""
    if not values:
        return
    if is_postgres(session):
        yield column == any_(literal(list(values), ARRAY(column.type)))
        return
    for part in chunks(values):
        yield column.in_(part)


def get_batch(session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID) -> SubsidyBatch:
    batch = session.get(SubsidyBatch, batch_id)
    if batch is None or batch.institution_id != institution_id:
        raise NotFound("subsidies.batch_not_found", "no such subsidy batch", field="batch_id")
    return batch


def locked_batch(session: Session, institution_id: uuid.UUID, batch_id: uuid.UUID) -> SubsidyBatch:
    batch = session.scalar(
        select(SubsidyBatch)
        .where(SubsidyBatch.id == batch_id, SubsidyBatch.institution_id == institution_id)
        .with_for_update()
    )
    if batch is None:
        raise NotFound("subsidies.batch_not_found", "no such subsidy batch", field="batch_id")
    return batch


def require_status(batch: SubsidyBatch, *allowed: BatchStatus, doing: str) -> None:
    if batch.status not in {str(s) for s in allowed}:
        raise Conflict(
            "subsidies.wrong_batch_status",
            f"a batch that is {batch.status} cannot be {doing}",
            field="batch_id",
        )
