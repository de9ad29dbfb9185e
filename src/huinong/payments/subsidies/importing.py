"""Importing a subsidy batch: reading the bureau's list and validating every row (导入).

A maker uploads the bureau's list (CSV or XLSX) naming the government payer's deposit account
(:func:`payer_account`). The file is read whole (``files``); a file that cannot be read or
lacks a column is refused and nothing is written. Each row gets the pure checks (``rules``)
and then the checks that need the database, done *set-wise* so that a 100,000-row list costs a
few dozen queries rather than several per row: the rows' ID numbers are blind-indexed in
memory and looked up in bulk against ``customers`` (the name must match the customer found by
the ID number), the account numbers in bulk against the ledger (an open deposit account of that
same customer), and the (person, type, year) triples in bulk against the rows of earlier
batches that were not rejected. Every row is stored — the invalid ones with their findings,
which make the downloadable error report (``reporting.error_report``) — and the ID numbers
encrypted as ``customers`` stores them. Rows are written with ``COPY`` on PostgreSQL.

The batch leaves this module ``imported``; ``approval`` takes it from there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.db import is_postgres
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import luhn_is_valid, uuid7
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.money import MAX_FEN
from huinong.parties.models import Customer, CustomerKind
from huinong.payments.subsidies import files, rules
from huinong.payments.subsidies.common import ROWS_TABLE, chunks, one_of
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
    for among in one_of(session, Customer.id_number_index, wanted):
        for customer_id, name, index in session.execute(
            select(Customer.id, Customer.name, Customer.id_number_index).where(
                Customer.institution_id == institution_id, among
            )
        ):
            customers[index] = (customer_id, name)
    accounts: dict[str, tuple[uuid.UUID, uuid.UUID | None, int, bool]] = {}
    numbers = sorted({r.account_number for r in checked if r.account_number is not None})
    for among in one_of(session, Account.account_number, numbers):
        for account_id, number, owner_id, code, closed in session.execute(
            select(
                Account.id, Account.account_number, Account.owner_id, Account.code, Account.closed
            ).where(Account.institution_id == institution_id, among)
        ):
            accounts[number] = (account_id, owner_id, code, closed)
    earlier: set[tuple[str, str, int]] = set()
    for among in one_of(session, SubsidyRow.id_number_index, wanted):
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
    for part in chunks(checked, 2000):
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
