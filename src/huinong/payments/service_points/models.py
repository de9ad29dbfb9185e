"""Tables of village service points (助农服务点): the points and their agents' float accounts,
the institution's terms for agents, deposit-account PINs, the operation journal and the
daily totals the limits are counted in, and monthly commission payouts.

The operation journal is the service point's own record of what its terminals did; the end
of day report reconciles it against the ledger. Daily totals are one row per (service point,
day) and (customer account, day), raised with a conditional UPDATE, so concurrent
withdrawals cannot pass a limit together.

A withdrawal by farmer code (一码通) is authorised by a one-time code sent to the customer's
phone on record (``withdrawal_codes``): the code is bound to the service point, the account and
the amount, lives five minutes, allows five attempts and is used once. Only an HMAC-SM3 digest
of it is stored, keyed by a key derived for this purpose and bound to the row's id.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class ServicePoint(Base):
    __tablename__ = "service_points"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    outlet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offices.id"))
    # The 12-digit statistical code of the village it serves.
    village_code: Mapped[str | None] = mapped_column(String(12))
    agent_customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    # The agent's float (备付金): a deposit account of the agent, which customers' withdrawals
    # credit and deposits debit; it can never go below zero.
    float_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_service_points_code"),
        CheckConstraint("status in ('active', 'suspended', 'closed')", name="status"),
    )


class AgentTermsRecord(Base):
    __tablename__ = "agent_terms"

    institution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("institutions.id"), primary_key=True
    )
    withdrawal_per_transaction: Mapped[int] = mapped_column(BigInteger)
    withdrawal_per_customer_day: Mapped[int] = mapped_column(BigInteger)
    withdrawal_per_service_point_day: Mapped[int] = mapped_column(BigInteger)
    deposits_enabled: Mapped[bool] = mapped_column(Boolean)
    deposit_per_transaction: Mapped[int] = mapped_column(BigInteger)
    commission_withdrawal: Mapped[int] = mapped_column(BigInteger)
    commission_deposit: Mapped[int] = mapped_column(BigInteger)
    commission_transfer: Mapped[int] = mapped_column(BigInteger)
    commission_balance_inquiry: Mapped[int] = mapped_column(BigInteger)
    commission_bill_payment: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "withdrawal_per_transaction > 0 and withdrawal_per_customer_day > 0 "
            "and withdrawal_per_service_point_day > 0 and deposit_per_transaction > 0",
            name="limits_positive",
        ),
        CheckConstraint(
            "commission_withdrawal >= 0 and commission_deposit >= 0 "
            "and commission_transfer >= 0 and commission_balance_inquiry >= 0 "
            "and commission_bill_payment >= 0",
            name="commissions_not_negative",
        ),
    )


class AccountPin(Base):
    """The PIN of a deposit account (JR/T 0171 C3): an argon2id hash, never the PIN."""

    __tablename__ = "account_pins"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_accounts.id"), primary_key=True
    )
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    pin_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("failed_attempts >= 0", name="failed_not_negative"),)


class AgentOperation(Base):
    __tablename__ = "agent_operations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    service_point_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_points.id"))
    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("terminals.id"))
    kind: Mapped[str] = mapped_column(String(24))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    bill_payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bill_payments.id"), unique=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    commission: Mapped[int] = mapped_column(BigInteger)
    business_date: Mapped[date] = mapped_column(Date)
    commission_payout_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("commission_payouts.id")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "kind in ('balance_inquiry', 'assisted_withdrawal', 'small_deposit', 'transfer', "
            "'bill_payment')",
            name="kind",
        ),
        CheckConstraint("amount >= 0 and commission >= 0", name="amounts_not_negative"),
        CheckConstraint(
            "(kind in ('balance_inquiry', 'bill_payment')) = (payment_id is null) "
            "and (kind = 'bill_payment') = (bill_payment_id is not null)",
            name="money_has_a_payment",
        ),
        Index("ix_agent_operations_point_day", "service_point_id", "business_date"),
    )


class ServicePointDay(Base):
    __tablename__ = "service_point_days"

    service_point_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_points.id"), primary_key=True
    )
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    withdrawn: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("withdrawn >= 0", name="withdrawn_not_negative"),)


class CustomerAccountDay(Base):
    __tablename__ = "customer_account_days"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_accounts.id"), primary_key=True
    )
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    withdrawn: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("withdrawn >= 0", name="withdrawn_not_negative"),)


class CommissionPayout(Base):
    __tablename__ = "commission_payouts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    service_point_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_points.id"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    operations: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("service_point_id", "month", name="uq_commission_payouts_month"),
        CheckConstraint("amount >= 0 and operations >= 0", name="amounts_not_negative"),
    )


class WithdrawalCode(Base):
    __tablename__ = "withdrawal_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    service_point_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_points.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    code_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_withdrawal_codes_point_account", "service_point_id", "account_id", "created_at"),
    )
