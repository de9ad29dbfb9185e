"""Value types of the ledger, free of any framework: flags, result codes, inputs, states."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntFlag, StrEnum
from typing import Any


class AccountType(StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"

    @property
    def debit_normal(self) -> bool:
        """Assets and expenses grow by debits; the others by credits."""
        return self in (AccountType.asset, AccountType.expense)


class TransferFlags(IntFlag):
    """Bit values as in TigerBeetle, so the numbers mean the same thing to people who know it."""

    none = 0
    linked = 1 << 0
    pending = 1 << 1
    post_pending = 1 << 2
    void_pending = 1 << 3
    balancing_debit = 1 << 4
    balancing_credit = 1 << 5


def flags_from_names(names: list[str] | tuple[str, ...]) -> TransferFlags:
    value = TransferFlags.none
    for name in names:
        value |= TransferFlags[name]
    return value


def flag_names(flags: int) -> list[str]:
    return [flag.name for flag in TransferFlags if flag.value and flags & flag.value and flag.name]


class CreateTransferResult(StrEnum):
    """One result per transfer of a batch, named as in TigerBeetle.

    ``ok`` and ``exists`` mean the transfer is in the ledger as asked; every other value
    means this transfer wrote nothing.
    """

    ok = "ok"
    linked_event_failed = "linked_event_failed"
    linked_event_chain_open = "linked_event_chain_open"
    id_must_not_be_zero = "id_must_not_be_zero"
    id_must_not_be_int_max = "id_must_not_be_int_max"
    flags_are_mutually_exclusive = "flags_are_mutually_exclusive"
    debit_account_id_must_not_be_zero = "debit_account_id_must_not_be_zero"
    credit_account_id_must_not_be_zero = "credit_account_id_must_not_be_zero"
    accounts_must_be_different = "accounts_must_be_different"
    pending_id_must_be_zero = "pending_id_must_be_zero"
    pending_id_must_not_be_zero = "pending_id_must_not_be_zero"
    pending_id_must_be_different = "pending_id_must_be_different"
    timeout_reserved_for_pending_transfer = "timeout_reserved_for_pending_transfer"
    amount_must_not_be_zero = "amount_must_not_be_zero"
    ledger_must_not_be_zero = "ledger_must_not_be_zero"
    code_must_not_be_zero = "code_must_not_be_zero"
    exists_with_different_flags = "exists_with_different_flags"
    exists_with_different_pending_id = "exists_with_different_pending_id"
    exists_with_different_timeout = "exists_with_different_timeout"
    exists_with_different_debit_account_id = "exists_with_different_debit_account_id"
    exists_with_different_credit_account_id = "exists_with_different_credit_account_id"
    exists_with_different_amount = "exists_with_different_amount"
    exists_with_different_reference = "exists_with_different_reference"
    exists_with_different_metadata = "exists_with_different_metadata"
    exists_with_different_ledger = "exists_with_different_ledger"
    exists_with_different_code = "exists_with_different_code"
    exists = "exists"
    id_already_used = "id_already_used"
    debit_account_not_found = "debit_account_not_found"
    credit_account_not_found = "credit_account_not_found"
    accounts_must_have_the_same_ledger = "accounts_must_have_the_same_ledger"
    transfer_must_have_the_same_ledger_as_accounts = (
        "transfer_must_have_the_same_ledger_as_accounts"
    )
    pending_transfer_not_found = "pending_transfer_not_found"
    pending_transfer_not_pending = "pending_transfer_not_pending"
    pending_transfer_has_different_debit_account_id = (
        "pending_transfer_has_different_debit_account_id"
    )
    pending_transfer_has_different_credit_account_id = (
        "pending_transfer_has_different_credit_account_id"
    )
    pending_transfer_has_different_ledger = "pending_transfer_has_different_ledger"
    pending_transfer_has_different_code = "pending_transfer_has_different_code"
    exceeds_pending_transfer_amount = "exceeds_pending_transfer_amount"
    pending_transfer_has_different_amount = "pending_transfer_has_different_amount"
    pending_transfer_already_posted = "pending_transfer_already_posted"
    pending_transfer_already_voided = "pending_transfer_already_voided"
    pending_transfer_expired = "pending_transfer_expired"
    debit_account_already_closed = "debit_account_already_closed"
    credit_account_already_closed = "credit_account_already_closed"
    overflows_debits_pending = "overflows_debits_pending"
    overflows_credits_pending = "overflows_credits_pending"
    overflows_debits_posted = "overflows_debits_posted"
    overflows_credits_posted = "overflows_credits_posted"
    overflows_debits = "overflows_debits"
    overflows_credits = "overflows_credits"
    overflows_timeout = "overflows_timeout"
    exceeds_credits = "exceeds_credits"
    exceeds_debits = "exceeds_debits"

    @property
    def applied(self) -> bool:
        return self in (CreateTransferResult.ok, CreateTransferResult.exists)


class PendingStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"
    expired = "expired"


@dataclass(frozen=True, slots=True)
class TransferInput:
    """What a client asks for. ``id`` is the client's idempotency key.

    For ``post_pending`` / ``void_pending`` the accounts, ledger and amount may be left out
    (``None``; the nil UUID also counts as left out, as TigerBeetle's zero does) and the code
    too (``0``): they are taken from the pending transfer, and a post without an amount posts
    the full pending amount. An amount of ``0`` is not "left out" but refused
    (``amount_must_not_be_zero``): amounts are never zero.
    """

    id: uuid.UUID
    debit_account_id: uuid.UUID | None = None
    credit_account_id: uuid.UUID | None = None
    amount: int | None = None
    ledger: str | None = None
    code: int = 0
    flags: int = 0
    pending_id: uuid.UUID | None = None
    timeout: int = 0
    reference: str | None = None
    metadata: dict[str, Any] | None = None
    # Set only by the expiry sweep: the void releases a pending whose timeout has passed.
    expiry: bool = False


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A transfer as stored: immutable once written."""

    id: uuid.UUID
    institution_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    ledger: str
    code: int
    flags: int
    pending_id: uuid.UUID | None
    timeout: int
    reference: str | None
    metadata: dict[str, Any] | None
    timestamp: datetime


@dataclass(slots=True)
class AccountState:
    """The parts of an account the transfer rules read and change."""

    id: uuid.UUID
    ledger: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def balances(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)


@dataclass(slots=True)
class PendingState:
    pending_id: uuid.UUID
    status: PendingStatus
    expires_at: datetime | None
    resolved_by: uuid.UUID | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TransferResult:
    index: int
    id: uuid.UUID
    result: CreateTransferResult
    timestamp: datetime | None = None
    amount: int | None = None


@dataclass(slots=True)
class BatchOutcome:
    """What the engine decided: results in input order, and the writes to make."""

    results: list[TransferResult] = field(default_factory=list)
    created: list[TransferRecord] = field(default_factory=list)
    new_pendings: list[PendingState] = field(default_factory=list)
    resolved_pendings: list[PendingState] = field(default_factory=list)
    touched_accounts: set[uuid.UUID] = field(default_factory=set)
