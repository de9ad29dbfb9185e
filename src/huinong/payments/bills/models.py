"""Tables of bill payment (代缴费): billers, their bills, our payments of them, and the
reconciliation of each day's payments against the biller's return file.

* ``billers``: a utility or social-insurance fund the institution collects for. Each has a
  settlement account in the ledger (code 2314, 代理业务负债: money we hold for the biller)
  owned by the biller row. A biller that speaks the HTTP protocol also has its base URL, its
  SM2 public key (we verify its answers) and our SM2 key pair for it (it verifies our
  requests); our private key is stored wrapped under a key derived from the master key.
* ``bills``: what a household owes a biller for a period, from a bill file or from the
  biller's answer to a query. ``reference`` is the biller's customer reference (户号): it
  names a meter or a line, not a person, but it is still kept out of logs.
* ``bill_files``: one row per imported file, keyed by its SM3 digest, so importing the same
  file again finds the first import and writes nothing.
* ``bill_payments``: one per paid bill (``bill_id`` is unique: a bill is paid once), with
  the ledger transfer it made, the channel, and the state of the biller's confirmation.
* ``bill_reconciliations`` and their ``bill_reconciliation_items`` (every mismatch found).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class BillerKind(StrEnum):
    electricity = "electricity"
    water = "water"
    telecom = "telecom"
    resident_medical_insurance = "resident_medical_insurance"
    resident_pension_insurance = "resident_pension_insurance"


class BillerProtocol(StrEnum):
    file = "file"  # bills arrive in bill files only
    http = "http"  # bills are queried and payments confirmed over the HTTP biller protocol


class BillStatus(StrEnum):
    open = "open"
    paid = "paid"
    cancelled = "cancelled"


class BillSource(StrEnum):
    file = "file"
    http = "http"


class Channel(StrEnum):
    counter = "counter"
    service_point = "service_point"
    web_hall = "web_hall"


class Confirmation(StrEnum):
    not_required = "not_required"  # a file biller learns of payments from the settlement file
    pending = "pending"
    confirmed = "confirmed"


class MismatchKind(StrEnum):
    missing_on_their_side = "missing_on_their_side"
    missing_on_our_side = "missing_on_our_side"
    amount_differs = "amount_differs"
    duplicate = "duplicate"


def _choices(column: str, enum: type[StrEnum]) -> str:
    return f"{column} in ({', '.join(repr(str(m)) for m in enum)})"


class Biller(Base):
    __tablename__ = "billers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(8))
    settlement_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    base_url: Mapped[str | None] = mapped_column(String(500))
    biller_public_key: Mapped[str | None] = mapped_column(String(130))
    our_public_key: Mapped[str | None] = mapped_column(String(130))
    our_private_key_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_billers_institution_code"),
        CheckConstraint(_choices("kind", BillerKind), name="kind"),
        CheckConstraint(_choices("protocol", BillerProtocol), name="protocol"),
        CheckConstraint(
            "(protocol = 'http') = (base_url is not null and biller_public_key is not null "
            "and our_private_key_wrapped is not null)",
            name="http_settings",
        ),
    )


class BillFile(Base):
    __tablename__ = "bill_files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    digest: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    encoding: Mapped[str] = mapped_column(String(16))
    row_count: Mapped[int] = mapped_column(Integer)
    new_bills: Mapped[int] = mapped_column(Integer)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "biller_id", "digest", name="uq_bill_files_digest"),
    )


class Bill(Base):
    __tablename__ = "bills"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    reference: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))
    bill_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bill_files.id"))
    biller_bill_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "institution_id", "biller_id", "reference", "period", name="uq_bills_reference_period"
        ),
        CheckConstraint("amount_due > 0", name="amount_due_positive"),
        CheckConstraint(_choices("status", BillStatus), name="status"),
        CheckConstraint(_choices("source", BillSource), name="source"),
        CheckConstraint("(status = 'paid') = (paid_at is not null)", name="paid_at"),
        Index("ix_bills_institution_reference", "institution_id", "reference"),
    )


class BillPayment(Base):
    __tablename__ = "bill_payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    client_id: Mapped[str] = mapped_column(String(128))
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id"), unique=True)
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    transfer_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    business_date: Mapped[date] = mapped_column(Date)
    confirmation: Mapped[str] = mapped_column(String(16))
    confirmation_attempts: Mapped[int] = mapped_column(Integer)
    last_confirmation_error: Mapped[str | None] = mapped_column(String(200))
    biller_receipt: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bill_reconciliations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "client_id", name="uq_bill_payments_client_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_choices("channel", Channel), name="channel"),
        CheckConstraint(_choices("confirmation", Confirmation), name="confirmation"),
        CheckConstraint(
            "(confirmation = 'confirmed') = (confirmed_at is not null)", name="confirmed_at"
        ),
        Index("ix_bill_payments_biller_date", "institution_id", "biller_id", "business_date"),
        Index("ix_bill_payments_confirmation", "institution_id", "confirmation"),
    )


class BillReconciliation(Base):
    __tablename__ = "bill_reconciliations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    business_date: Mapped[date] = mapped_column(Date)
    digest: Mapped[str] = mapped_column(String(64))
    their_count: Mapped[int] = mapped_column(Integer)
    their_amount: Mapped[int] = mapped_column(BigInteger)
    our_count: Mapped[int] = mapped_column(Integer)
    our_amount: Mapped[int] = mapped_column(BigInteger)
    matched_count: Mapped[int] = mapped_column(Integer)
    matched_amount: Mapped[int] = mapped_column(BigInteger)
    mismatch_count: Mapped[int] = mapped_column(Integer)
    settled_amount: Mapped[int] = mapped_column(BigInteger)
    settlement_transfer_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "institution_id", "biller_id", "digest", name="uq_bill_reconciliations_digest"
        ),
        Index(
            "ix_bill_reconciliations_biller_date", "institution_id", "biller_id", "business_date"
        ),
    )


class BillReconciliationItem(Base):
    __tablename__ = "bill_reconciliation_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    reconciliation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bill_reconciliations.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payment_reference: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(64))
    our_amount: Mapped[int | None] = mapped_column(BigInteger)
    their_amount: Mapped[int | None] = mapped_column(BigInteger)
    their_row: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(_choices("kind", MismatchKind), name="kind"),
        Index("ix_bill_reconciliation_items_reconciliation", "reconciliation_id"),
    )
