"""Subsidy disbursement use cases (惠农补贴代发 / 一卡通).

**Import.** A maker uploads the bureau's list (CSV or XLSX) naming the government payer's
deposit account. The file is read whole (``files``); a file that cannot be read or lacks a
column is refused and nothing is written. Each row gets the pure checks (``rules``) and then
the checks that need the database, done *set-wise* so that a 100,000-row list costs a few
dozen queries rather than several per row: the rows' ID numbers are blind-indexed in memory
and looked up in bulk against ``customers`` (the name must match the customer found by the ID
number), the account numbers in bulk against the ledger (an open deposit account of that
same customer), and the (person, type, year) triples in bulk against the rows of earlier
batches that were not rejected. Every row is stored — the invalid ones with their findings,
which make the downloadable error report — and the ID numbers encrypted as ``customers``
stores them.

**Maker-checker.** The maker submits; an approver who is not the maker approves or rejects
(with a reason). The service enforces it, and so does a check constraint.

**Disbursement** pays the pending rows of an approved batch in chunks, one transaction per
chunk (:func:`disburse_chunk`, driven by :func:`run_disbursement`). A chunk's transfers go to
the ledger in one ``create_transfers`` batch: each debits the payer and credits the
beneficiary's account, or the institution's suspense account (2241) when the row gave none.
Transfer ids derive from the batch id and row number, and a row's status changes in the same
transaction as its transfer is written, so

* a crash loses at most the chunk in flight, which rolled back whole, and the next run picks
  up the rows still ``pending``;
* a run racing another (or a retried transaction) finds its transfers stored (``exists``) and
  records the row as paid: no row is ever paid twice.

A row the ledger refuses (the account was closed after validation, say) becomes ``failed``
and the payer is not debited for it. If the payer's balance runs short the chunk stops with
``subsidies.payer_insufficient_funds`` and nothing of it is written: top up and run again.

**Suspense.** When a customer opens a deposit account (``payments.service``), their rows in
suspense are paid from 2241 into it in the same transaction (:func:`release_suspense`).

**Reconciliation.** The batch summary sums rows per status and compares the payer's debits
for the batch in the ledger with paid + suspense: they are equal unless something is wrong.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import is_postgres, run_in_transaction
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import luhn_is_valid, uuid7
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account, Transfer
from huinong.ledger.types import CreateTransferResult, TransferInput
from huinong.money import MAX_FEN
from huinong.parties.models import Customer, CustomerKind
from huinong.payments.codes import TransferCode
from huinong.payments.subsidies import files, rules
from huinong.payments.subsidies.models import (
    BatchStatus,
    RowStatus,
    SubsidyBatch,
    SubsidyRow,
    SubsidyRowError,
)
from huinong.security.audit import service as audit
from huinong.security.personal_data import service as personal_data
from huinong.security.principals import Principal

ROWS_TABLE = SubsidyRow.__tablename__
TRANSFER_ID_NAMESPACE = uuid.UUID("0192f5a2-7c3e-7000-8000-737562736964")
DEFAULT_CHUNK = 2000
MAX_CHUNK = 8000  # under the ledger's batch limit
_LOOKUP_CHUNK = 5000  # values per IN (...) of the bulk lookups


T = TypeVar("T")


# --------------------------------------------------------------------------- ids


def row_transfer_id(batch_id: uuid.UUID, row_number: int) -> uuid.UUID:
    """The id of the transfer paying a row: the same on every run, so none pays twice."""
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{batch_id}/{row_number}")


def release_transfer_id(batch_id: uuid.UUID, row_number: int) -> uuid.UUID:
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{batch_id}/{row_number}/release")


def batch_reference(batch_id: uuid.UUID) -> str:
    """The ledger reference of every transfer of a batch (its reconciliation key)."""
    return f"subsidy:{batch_id}"


def _chunks(values: Sequence[T], size: int = _LOOKUP_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _one_of(
    session: Session, column: ColumnElement[Any], values: Sequence[Any]
) -> Iterable[ColumnElement[bool]]:
    """``column`` among ``values``, as few conditions as the backend allows: one
    ``= ANY(array)`` on PostgreSQL (one bound array, whatever its length), ``IN (...)`` lists
    of at most ``_LOOKUP_CHUNK`` on SQLite (its limit on bound parameters)."""
    if not values:
        return
    if is_postgres(session):
        yield column == any_(literal(list(values), ARRAY(column.type)))
        return
    for part in _chunks(values):
        yield column.in_(part)


# --------------------------------------------------------------------------- import


def payer_account(session: Session, *, institution_id: uuid.UUID, account_number: str) -> Account:
    """The open deposit account of a government customer that funds a batch."""
    field_name = "payer_account_number"
    number = account_number.strip()
    if not luhn_is_valid(number):
        raise InvalidInput(
            "payments.invalid_account_number",
            "the account number's check digit does not match; check the number for a typo",
            field=field_name,
        )
    account = session.scalar(
        select(Account).where(
            Account.institution_id == institution_id, Account.account_number == number
        )
    )
    if account is None or account.code != AccountCode.customer_deposits:
        raise NotFound(
            "ledger.account_not_found", "no deposit account with this number", field=field_name
        )
    if account.closed:
        raise Conflict("ledger.account_closed", "the paying account is closed", field=field_name)
    owner = session.get(Customer, account.owner_id) if account.owner_id else None
    if owner is None or owner.kind != CustomerKind.government:
        raise InvalidInput(
            "subsidies.payer_not_government",
            "subsidies are paid from the deposit account of a government customer",
            field=field_name,
        )
    return account


def import_batch(
    session: Session,
    *,
    institution_id: uuid.UUID,
    maker_id: uuid.UUID,
    payer_account_number: str,
    file_name: str,
    content: bytes,
    encoding: str | None = None,
    actor: Principal | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SubsidyBatch:
    """Read, validate and store a batch file; invalid rows are stored with their findings.

    ``progress(stored, total)`` is called as rows are stored (for a progress bar).
    """
    file_name = (file_name or "").strip()[:200] or "batch"
    payer = payer_account(
        session, institution_id=institution_id, account_number=payer_account_number
    )
    parsed = files.parse(file_name, content, encoding=encoding)
    checked = rules.check_rows(parsed.rows, this_year=clock.now().year)
    indexes = {
        row.row: personal_data.blind_index(
            row.id_number, field="id_number", institution_id=institution_id
        )
        for row in checked
        if row.id_number is not None
    }
    resolved = _check_against_database(session, institution_id, checked, indexes)
    total = sum(r.amount or 0 for r in checked if r.valid)
    if total > MAX_FEN:
        raise InvalidInput(
            "subsidies.batch_total_too_large",
            f"the valid rows add up to more than {MAX_FEN} fen: split the list into batches",
            field="file",
        )
    batch = SubsidyBatch(
        id=uuid7(),
        institution_id=institution_id,
        payer_customer_id=payer.owner_id,
        payer_account_id=payer.id,
        file_name=file_name,
        file_format=parsed.format,
        status=str(BatchStatus.imported),
        row_count=len(checked),
        valid_count=sum(1 for r in checked if r.valid),
        valid_amount=total,
        maker_id=maker_id,
        created_at=clock.now(),
    )
    session.add(batch)
    session.flush()
    _store_rows(session, batch, checked, indexes, resolved, progress)
    audit.record(
        session,
        action="subsidies.batch_imported",
        institution_id=institution_id,
        actor=actor,
        object_type="subsidy_batch",
        object_id=str(batch.id),
        detail={
            "rows": batch.row_count,
            "valid": batch.valid_count,
            "invalid": batch.row_count - batch.valid_count,
            "amount": batch.valid_amount,
            "format": parsed.format,
        },
    )
    return batch


@dataclass
class _Resolved:
    customer_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None


def _check_against_database(
    session: Session,
    institution_id: uuid.UUID,
    checked: Sequence[rules.CheckedRow],
    indexes: dict[int, str],
) -> dict[int, _Resolved]:
    """The database checks of every row, in bulk; findings are added to the rows."""
    customers: dict[str, tuple[uuid.UUID, str]] = {}
    wanted = sorted(set(indexes.values()))
    for among in _one_of(session, Customer.id_number_index, wanted):
        for customer_id, name, index in session.execute(
            select(Customer.id, Customer.name, Customer.id_number_index).where(
                Customer.institution_id == institution_id, among
            )
        ):
            customers[index] = (customer_id, name)
    accounts: dict[str, tuple[uuid.UUID, uuid.UUID | None, int, bool]] = {}
    numbers = sorted({r.account_number for r in checked if r.account_number is not None})
    for among in _one_of(session, Account.account_number, numbers):
        for account_id, number, owner_id, code, closed in session.execute(
            select(
                Account.id, Account.account_number, Account.owner_id, Account.code, Account.closed
            ).where(Account.institution_id == institution_id, among)
        ):
            accounts[number] = (account_id, owner_id, code, closed)
    earlier: set[tuple[str, str, int]] = set()
    for among in _one_of(session, SubsidyRow.id_number_index, wanted):
        earlier.update(
            (index, subsidy_type, year)
            for index, subsidy_type, year in session.execute(
                select(SubsidyRow.id_number_index, SubsidyRow.subsidy_type, SubsidyRow.year)
                .join(SubsidyBatch, SubsidyBatch.id == SubsidyRow.batch_id)
                .where(
                    SubsidyRow.institution_id == institution_id,
                    among,
                    SubsidyRow.status.not_in([str(RowStatus.invalid), str(RowStatus.failed)]),
                    SubsidyBatch.status != str(BatchStatus.rejected),
                )
            )
        )
    resolved: dict[int, _Resolved] = {}
    for row in checked:
        found = _Resolved()
        resolved[row.row] = found
        index = indexes.get(row.row)
        if index is None:
            continue
        customer = customers.get(index)
        if customer is None:
            row.fail(
                "id_number",
                "subsidies.customer_not_found",
                "no customer with this ID number: open the customer first",
            )
            continue
        found.customer_id = customer[0]
        if row.name is not None and _same_name(row.name) != _same_name(customer[1]):
            row.fail(
                "name",
                "subsidies.name_mismatch",
                "the name differs from the name of the customer with this ID number",
            )
        if (index, row.subsidy_type, row.year) in earlier:
            row.fail(
                "id_number",
                "subsidies.duplicate_in_earlier_batch",
                "an earlier batch already pays this person this subsidy type for this year",
            )
        if row.account_number is not None:
            account = accounts.get(row.account_number)
            if account is None or account[2] != AccountCode.customer_deposits:
                row.fail(
                    "account_number",
                    "subsidies.account_not_found",
                    "no deposit account with this number",
                )
            elif account[1] != customer[0]:
                row.fail(
                    "account_number",
                    "subsidies.account_of_another_customer",
                    "the account does not belong to the customer with this ID number",
                )
            elif account[3]:
                row.fail("account_number", "subsidies.account_closed", "the account is closed")
            else:
                found.account_id = account[0]
    return resolved


def _same_name(name: str) -> str:
    """Names compared as a clerk would: ignoring spaces and the middle-dot variants of
    minority names (阿依古丽·买买提 / 阿依古丽•买买提)."""
    return "".join(name.split()).replace("•", "·").replace(".", "·")


def _store_rows(
    session: Session,
    batch: SubsidyBatch,
    checked: Sequence[rules.CheckedRow],
    indexes: dict[int, str],
    resolved: dict[int, _Resolved],
    progress: Callable[[int, int], None] | None,
) -> None:
    key = personal_data.active_key(session)
    rows_table = SubsidyRow.__table__
    errors_table = SubsidyRowError.__table__
    for part in _chunks(checked, 2000):
        values: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for row in part:
            row_id = uuid7()
            valid = row.valid
            index = indexes.get(row.row)
            found = resolved[row.row]
            values.append(
                {
                    "id": row_id,
                    "batch_id": batch.id,
                    "institution_id": batch.institution_id,
                    "row_number": row.row,
                    "status": str(RowStatus.pending if valid else RowStatus.invalid),
                    "name": row.name,
                    "id_number_ciphertext": None
                    if row.id_number is None
                    else personal_data.seal(
                        key, row.id_number, table=ROWS_TABLE, field="id_number", row_id=row_id
                    ),
                    "id_number_index": index,
                    "data_key_version": key.version,
                    "customer_id": found.customer_id,
                    "account_id": found.account_id if valid else None,
                    "amount": row.amount,
                    "subsidy_type": row.subsidy_type,
                    "year": row.year,
                    "failure_code": None,
                    "paid_at": None,
                    "released_at": None,
                }
            )
            errors.extend(
                {
                    "id": uuid7(),
                    "batch_id": batch.id,
                    "row_number": error.row,
                    "column": error.column,
                    "code": error.code,
                    "message": error.message[:500],
                }
                for error in row.errors
            )
        _insert(session, rows_table, values)
        _insert(session, errors_table, errors)
        if progress is not None:
            progress(len(part), len(checked))


def _insert(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    """Insert many rows: ``COPY`` on PostgreSQL (several times faster than a multi-row
    INSERT for a 100,000-row file), an executemany INSERT on SQLite."""
    if not values:
        return
    if not is_postgres(session):
        session.connection().execute(insert(table), values)
        return
    names = [column.name for column in table.columns]
    quoted = ", ".join(f'"{name}"' for name in names)  # "column" is a reserved word
    statement = f"COPY {table.name} ({quoted}) FROM STDIN"
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in values:
            copy.write_row([row[name] for name in names])


# --------------------------------------------------------------------------- reads


def get_batch(session: Session, *, institution_id: uuid.UUID, batch_id: uuid.UUID) -> SubsidyBatch:
    batch = session.get(SubsidyBatch, batch_id)
    if batch is None or batch.institution_id != institution_id:
        raise NotFound("subsidies.batch_not_found", "no such subsidy batch", field="batch_id")
    return batch


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


# --------------------------------------------------------------------------- maker-checker


def _locked_batch(session: Session, institution_id: uuid.UUID, batch_id: uuid.UUID) -> SubsidyBatch:
    batch = session.scalar(
        select(SubsidyBatch)
        .where(SubsidyBatch.id == batch_id, SubsidyBatch.institution_id == institution_id)
        .with_for_update()
    )
    if batch is None:
        raise NotFound("subsidies.batch_not_found", "no such subsidy batch", field="batch_id")
    return batch


def _require_status(batch: SubsidyBatch, *allowed: BatchStatus, doing: str) -> None:
    if batch.status not in {str(s) for s in allowed}:
        raise Conflict(
            "subsidies.wrong_batch_status",
            f"a batch that is {batch.status} cannot be {doing}",
            field="batch_id",
        )


def submit_batch(
    session: Session,
    *,
    institution_id: uuid.UUID,
    batch_id: uuid.UUID,
    actor_id: uuid.UUID,
    actor: Principal | None = None,
) -> SubsidyBatch:
    """The maker hands the batch to a checker."""
    batch = _locked_batch(session, institution_id, batch_id)
    if batch.status == BatchStatus.submitted:
        return batch
    _require_status(batch, BatchStatus.imported, doing="submitted")
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
    batch = _locked_batch(session, institution_id, batch_id)
    _check_checker(batch, checker_id)
    if batch.status == BatchStatus.approved and batch.checker_id == checker_id:
        return batch
    _require_status(batch, BatchStatus.submitted, doing="approved")
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
    batch = _locked_batch(session, institution_id, batch_id)
    _check_checker(batch, checker_id)
    _require_status(batch, BatchStatus.submitted, doing="rejected")
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


# --------------------------------------------------------------------------- disbursement


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
    batch = _locked_batch(session, institution_id, batch_id)
    if batch.status == BatchStatus.disbursed:
        return ChunkOutcome(done=True)
    _require_status(batch, BatchStatus.approved, BatchStatus.disbursing, doing="disbursed")

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
        for among in _one_of(session, table.c.id, ids):
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


# --------------------------------------------------------------------------- suspense


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
