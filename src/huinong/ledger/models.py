"""Ledger tables. The rules of ``engine.py`` that a database can hold are constraints here,
on SQLite and PostgreSQL alike, so a bug in Python cannot store a broken ledger:

* balances are never negative; an account cannot carry both limit flags;
* ``debits_must_not_exceed_credits`` / ``credits_must_not_exceed_debits`` as CHECKs;
* a transfer's amount is positive, its accounts differ, its code is positive, a timeout only
  on a pending transfer, flags only the defined bits;
* a pending transfer is resolved at most once (a unique index on ``transfers.pending_id``,
  partial: only the rows that resolve something are in it);
* a customer's account number is unique within the institution;
* a transfer's debit and credit accounts exist and belong to its institution and ledger;
  the ``pending_id`` of a post or void names a pending transfer of the same institution and
  ledger;
* an account is never deleted and its id, institution and ledger never change; a transfer
  never changes and is never deleted.

The last two are triggers (migrations 0013 and 0014), not foreign keys: PostgreSQL checks a
foreign key with a trigger per row, and a batch of 8,190 transfers would run 24,570 of them; one
trigger per statement checks the batch with one lookup per distinct account.

On PostgreSQL the account table's pages are kept half empty (``fillfactor = 50``): a balance
update then finds room on its own page and is heap-only (HOT), touching none of the indexes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    ledger: Mapped[str] = mapped_column(String(3))
    type: Mapped[str] = mapped_column(String(16))
    code: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    account_number: Mapped[str | None] = mapped_column(String(32))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "account_number", name="uq_ledger_accounts_number"),
        Index("ix_ledger_accounts_institution_code", "institution_id", "code"),
        Index("ix_ledger_accounts_institution_owner", "institution_id", "owner_id"),
        CheckConstraint(
            "type in ('asset', 'liability', 'equity', 'income', 'expense')", name="type"
        ),
        CheckConstraint("code > 0", name="code_positive"),
        CheckConstraint(
            "debits_pending >= 0 and debits_posted >= 0 "
            "and credits_pending >= 0 and credits_posted >= 0",
            name="balances_not_negative",
        ),
        CheckConstraint(
            "not (debits_must_not_exceed_credits and credits_must_not_exceed_debits)",
            name="one_limit_flag",
        ),
        CheckConstraint(
            "not debits_must_not_exceed_credits "
            "or debits_pending + debits_posted <= credits_posted",
            name="debits_must_not_exceed_credits",
        ),
        CheckConstraint(
            "not credits_must_not_exceed_debits "
            "or credits_pending + credits_posted <= debits_posted",
            name="credits_must_not_exceed_debits",
        ),
        {"postgresql_with": {"fillfactor": 50}},
    )


class Transfer(Base):
    __tablename__ = "ledger_transfers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # No foreign keys to institutions or accounts: the per-statement trigger of migration 0013
    # checks that both accounts exist in this institution and ledger (see the module docstring).
    institution_id: Mapped[uuid.UUID] = mapped_column()
    debit_account_id: Mapped[uuid.UUID] = mapped_column()
    credit_account_id: Mapped[uuid.UUID] = mapped_column()
    amount: Mapped[int] = mapped_column(BigInteger)
    ledger: Mapped[str] = mapped_column(String(3))
    code: Mapped[int] = mapped_column(Integer)
    flags: Mapped[int] = mapped_column(Integer)
    pending_id: Mapped[uuid.UUID | None] = mapped_column()
    timeout: Mapped[int] = mapped_column(Integer, default=0)
    reference: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        CheckConstraint("code > 0", name="code_positive"),
        CheckConstraint("flags >= 0 and flags < 64", name="flags_defined"),
        CheckConstraint("timeout >= 0 and (timeout = 0 or flags % 4 >= 2)", name="timeout"),
        CheckConstraint("(pending_id is null) = (flags % 16 < 4)", name="pending_id_on_resolve"),
        Index("ix_ledger_transfers_debit", "debit_account_id", "timestamp"),
        Index("ix_ledger_transfers_credit", "credit_account_id", "timestamp"),
        Index("ix_ledger_transfers_institution_time", "institution_id", "timestamp"),
        Index(
            "uq_ledger_transfers_pending_id",
            "pending_id",
            unique=True,
            postgresql_where=text("pending_id IS NOT NULL"),
            sqlite_where=text("pending_id IS NOT NULL"),
        ),
    )


class PendingTransfer(Base):
    """The state of each pending transfer (the transfer row itself never changes)."""

    __tablename__ = "ledger_pending_transfers"

    pending_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transfers.id"), primary_key=True
    )
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    status: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transfers.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status in ('pending', 'posted', 'voided', 'expired')", name="status"),
        CheckConstraint("(status = 'pending') = (resolved_by is null)", name="resolution"),
        Index("ix_ledger_pending_transfers_expiry", "status", "expires_at"),
    )


class AccountNumberSequence(Base):
    """The last serial handed out per institution, for customer account numbers."""

    __tablename__ = "ledger_account_number_sequences"

    institution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("institutions.id"), primary_key=True
    )
    last_serial: Mapped[int] = mapped_column(BigInteger, default=0)
