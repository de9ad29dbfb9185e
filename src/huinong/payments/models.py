"""The payment record: one row per business event, linking the ledger transfers it made.

The ledger transfers of a payment have ids derived from the payment's client id (its
idempotency key), so a retried request can never move money twice. A reversal is a new
payment whose transfers mirror the original's; ``reverses_id`` is unique, so a payment is
reversed at most once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class PaymentKind(StrEnum):
    cash_deposit = "cash_deposit"
    cash_withdrawal = "cash_withdrawal"
    transfer = "transfer"
    reversal = "reversal"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    client_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str | None] = mapped_column(String(140))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "client_id", name="uq_payments_client_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        CheckConstraint(
            "kind in ('cash_deposit', 'cash_withdrawal', 'transfer', 'reversal')", name="kind"
        ),
        CheckConstraint("(kind = 'reversal') = (reverses_id is not null)", name="reversal"),
        Index("ix_payments_institution_created", "institution_id", "created_at"),
    )
