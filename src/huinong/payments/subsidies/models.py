"""Tables of subsidy disbursement (惠农补贴代发 / 一卡通).

``subsidy_batches`` is one imported file: who pays (a government customer's deposit account),
who made it and who decided on it (maker-checker), and its state. ``subsidy_rows`` holds every
data row of the file, valid or not, by its row number in the file; ``subsidy_row_errors`` the
findings of the invalid ones (the downloadable error report).

A row's ID number is class C2 personal data: stored as an SM4-GCM ciphertext bound to the row,
with a keyed blind index for the duplicate checks, exactly as ``customers`` stores it (the
markers let ``huinong keys rotate`` find the column). A row's account is kept as the ledger
account it resolved to, never as the number typed in the file; an invalid row keeps no account
at all.

Row states: ``invalid`` (failed validation; never paid), ``pending`` (valid, not yet paid),
``paid`` (credited to the beneficiary's deposit account), ``suspense`` (no account given: the
payer was debited and the money waits in the institution's suspense account 2241 until the
customer opens one; then the row becomes ``paid`` with ``released_at`` set), ``failed``
(the ledger refused the credit at disbursement, e.g. the account was closed in between;
``failure_code`` says why; the payer was not debited).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime
from huinong.security.personal_data.models import DATA_KEY_VERSION, encrypted


class BatchStatus(StrEnum):
    imported = "imported"  # validated; the maker may submit it (or import a corrected file)
    submitted = "submitted"  # waiting for a checker
    approved = "approved"  # may be disbursed
    rejected = "rejected"  # final; its rows never count as paid or as duplicates
    disbursing = "disbursing"  # some chunks done: run the disbursement again to finish
    disbursed = "disbursed"  # every valid row is paid, in suspense or failed


class RowStatus(StrEnum):
    invalid = "invalid"
    pending = "pending"
    paid = "paid"
    suspense = "suspense"
    failed = "failed"


class SubsidyBatch(Base):
    __tablename__ = "subsidy_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    payer_customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    payer_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    file_name: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    row_count: Mapped[int] = mapped_column(Integer)
    valid_count: Mapped[int] = mapped_column(Integer)
    valid_amount: Mapped[int] = mapped_column(BigInteger)  # fen, sum over valid rows
    maker_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checker_id: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status in ('imported', 'submitted', 'approved', 'rejected', 'disbursing', "
            "'disbursed')",
            name="status",
        ),
        CheckConstraint("file_format in ('csv', 'xlsx')", name="file_format"),
        CheckConstraint("valid_count >= 0 and valid_count <= row_count", name="counts"),
        CheckConstraint("valid_amount >= 0", name="valid_amount_not_negative"),
        CheckConstraint("checker_id is null or checker_id <> maker_id", name="maker_checker"),
        Index("ix_subsidy_batches_institution_created", "institution_id", "created_at"),
    )


class SubsidyRow(Base):
    __tablename__ = "subsidy_rows"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subsidy_batches.id"))
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    id_number_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, info=encrypted("id_number")
    )
    id_number_index: Mapped[str | None] = mapped_column(String(64))
    data_key_version: Mapped[int] = mapped_column(
        ForeignKey("security_data_keys.version"), info=DATA_KEY_VERSION
    )
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int | None] = mapped_column(BigInteger)  # fen
    subsidy_type: Mapped[str | None] = mapped_column(String(40))
    year: Mapped[int | None] = mapped_column(Integer)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # from suspense

    __table_args__ = (
        UniqueConstraint("batch_id", "row_number", name="uq_subsidy_rows_batch_row"),
        CheckConstraint(
            "status in ('invalid', 'pending', 'paid', 'suspense', 'failed')", name="status"
        ),
        CheckConstraint("amount is null or amount > 0", name="amount_positive"),
        CheckConstraint(
            "(id_number_ciphertext is null) = (id_number_index is null)", name="id_number_indexed"
        ),
        CheckConstraint(
            "status = 'invalid' or (customer_id is not null and amount is not null "
            "and id_number_index is not null and subsidy_type is not null and year is not null)",
            name="valid_complete",
        ),
        # Duplicate checks across batches: same person, type and year.
        Index(
            "ix_subsidy_rows_institution_person_type_year",
            "institution_id",
            "id_number_index",
            "subsidy_type",
            "year",
        ),
        Index("ix_subsidy_rows_batch_status", "batch_id", "status", "row_number"),
        # Suspense rows waiting for the customer's account.
        Index("ix_subsidy_rows_customer_status", "customer_id", "status"),
        Index("ix_subsidy_rows_data_key_version", "data_key_version"),
    )


class SubsidyRowError(Base):
    __tablename__ = "subsidy_row_errors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subsidy_batches.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500))

    __table_args__ = (Index("ix_subsidy_row_errors_batch_row", "batch_id", "row_number"),)
