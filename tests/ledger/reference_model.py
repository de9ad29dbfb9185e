"""A second, deliberately naive implementation of ``create_transfers``, for the tests.

Written from the rules stated in ``huinong/ledger/engine.py``'s docstring and TigerBeetle's
documented ``create_transfers`` semantics (its reference and ``state_machine.zig``), not from
the engine's code, which it neither imports nor copies: when the two disagree, one of them has
a bug (or the rules are ambiguous), and the test says so. Used by
``tests/ledger/test_state_machine.py`` (the service on both databases) and
``tests/unit/test_engine_model.py`` (the engine near the 64-bit limits).

How it differs from the engine on purpose, so that one mistake is not made twice:

* state is plain dicts, and a linked chain is undone by restoring a snapshot taken at its start
  (the engine keeps an undo journal);
* the batch loop is TigerBeetle's ``execute`` loop, item by item, with ``chain_broken``;
* results are plain strings (``CreateTransferResult`` values).

The rules, in the order they are checked for one transfer (TigerBeetle's precedence):

1. ``id`` zero / all ones; taken by another institution (huinong: ``id_already_used``);
   then, if the id is taken here, the repeat is compared field by field
   (``exists_with_different_*`` in TigerBeetle's order, or ``exists``): ids come before any
   other rule.
2. post/void: flags, ``pending_id``, timeout, amount (huinong: never zero), the pending
   transfer (found, pending, same accounts / ledger / code), the amount against the pending
   amount, its state, its expiry (judged at this transfer's own timestamp).
3. other transfers: account ids, ``pending_id``, timeout, amount (huinong: never zero), ledger,
   code, the accounts (found, one ledger, open), balancing clamp (huinong: clamped to zero
   fails with ``exceeds_credits`` / ``exceeds_debits``), overflows, timeout range, limits.

Huinong choices the model follows: amounts and limits are signed 64-bit (``MAX_AMOUNT``), a
timeout is at most ``2**31 - 1`` seconds, ``None`` means "omitted" on a post or void, ``exists``
counts as success inside a linked chain, and every item of a batch is stamped ``now`` plus its
index in microseconds, as TigerBeetle stamps each event of a batch.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

NIL = uuid.UUID(int=0)
ALL_ONES = uuid.UUID(int=(1 << 128) - 1)
MAX_AMOUNT = 2**63 - 1
MAX_TIMEOUT = 2**31 - 1

LINKED = 1
PENDING = 2
POST = 4
VOID = 8
BALANCING_DEBIT = 16
BALANCING_CREDIT = 32


class Request(Protocol):
    """What the model reads of a ``TransferInput``."""

    id: uuid.UUID
    debit_account_id: uuid.UUID | None
    credit_account_id: uuid.UUID | None
    amount: int | None
    ledger: str | None
    code: int
    flags: int
    pending_id: uuid.UUID | None
    timeout: int
    reference: str | None
    metadata: dict[str, Any] | None
    expiry: bool


@dataclass
class ModelAccount:
    id: uuid.UUID
    ledger: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    closed: bool = False
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def balances(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)


@dataclass(frozen=True)
class ModelTransfer:
    id: uuid.UUID
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
    timestamp: datetime | None  # None only for the expiry voids, stamped by the sweep

    @property
    def expires_at(self) -> datetime | None:
        if not self.flags & PENDING or not self.timeout or self.timestamp is None:
            return None
        return self.timestamp + timedelta(seconds=self.timeout)


@dataclass(frozen=True)
class Outcome:
    """What the model expects for one item: the result code, and for ``ok`` / ``exists`` the
    transfer's timestamp and amount."""

    result: str
    timestamp: datetime | None = None
    amount: int | None = None


class _Rejected(Exception):
    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


def _omitted(value: uuid.UUID | None) -> bool:
    return value is None or value == NIL


def _id(value: uuid.UUID | None) -> uuid.UUID | None:
    return None if _omitted(value) else value


class LedgerModel:
    """One institution's ledger: accounts, transfers and the state of every pending transfer
    (``pending`` / ``posted`` / ``voided`` / ``expired``)."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, ModelAccount] = {}
        self.transfers: dict[uuid.UUID, ModelTransfer] = {}
        self.status: dict[uuid.UUID, str] = {}
        self.foreign_ids: set[uuid.UUID] = set()  # ids of other institutions' transfers

    # ------------------------------------------------------------------ accounts

    def add_account(self, account: ModelAccount) -> None:
        self.accounts[account.id] = account

    def balances(self) -> dict[uuid.UUID, tuple[int, int, int, int]]:
        return {account_id: a.balances() for account_id, a in self.accounts.items()}

    def close_problem(self, account_id: uuid.UUID) -> str | None:
        """Why ``close_account`` must refuse, or None if it may close (or already closed)."""
        a = self.accounts[account_id]
        if a.closed:
            return None
        if a.debits_pending or a.credits_pending:
            return "ledger.account_has_pending_transfers"
        if a.debits_posted != a.credits_posted:
            return "ledger.account_balance_not_zero"
        return None

    # ------------------------------------------------------------------ batches

    def create_transfers(self, batch: Sequence[Request], now: datetime) -> list[Outcome]:
        """TigerBeetle's ``execute`` loop over one batch applied at ``now``."""
        results: list[Outcome] = []
        chain_start: int | None = None
        chain_broken = False
        snapshot: tuple[Any, ...] | None = None
        last = len(batch) - 1
        for index, t in enumerate(batch):
            linked = bool(t.flags & LINKED)
            if linked and chain_start is None:
                chain_start = index
                snapshot = self._snapshot()
            if linked and index == last:
                outcome = Outcome("linked_event_chain_open")
            elif chain_broken:
                outcome = Outcome("linked_event_failed")
            else:
                try:
                    outcome = self._apply(t, now + timedelta(microseconds=index))
                except _Rejected as rejected:
                    outcome = Outcome(rejected.result)
            succeeded = outcome.result in ("ok", "exists")
            if chain_start is not None and not succeeded and not chain_broken:
                chain_broken = True
                assert snapshot is not None
                self._restore(snapshot)
                for earlier in range(chain_start, index):
                    results[earlier] = Outcome("linked_event_failed")
            results.append(outcome)
            if chain_start is not None and (
                not linked or outcome.result == "linked_event_chain_open"
            ):
                chain_start, chain_broken, snapshot = None, False, None
        return results

    def expire(self, now: datetime) -> list[uuid.UUID]:
        """The expiry sweep: every pending transfer whose timeout has passed is voided."""
        due = [
            pending_id
            for pending_id, status in self.status.items()
            if status == "pending"
            and (expires := self.transfers[pending_id].expires_at) is not None
            and expires <= now
        ]
        for pending_id in due:
            p = self.transfers[pending_id]
            self.accounts[p.debit_account_id].debits_pending -= p.amount
            self.accounts[p.credit_account_id].credits_pending -= p.amount
            self.status[pending_id] = "expired"
        return due

    def _snapshot(self) -> tuple[Any, ...]:
        return (copy.deepcopy(self.accounts), dict(self.transfers), dict(self.status))

    def _restore(self, snapshot: tuple[Any, ...]) -> None:
        accounts, transfers, status = snapshot
        self.accounts, self.transfers, self.status = copy.deepcopy(accounts), transfers, status

    # ------------------------------------------------------------------ one transfer

    def _apply(self, t: Request, stamp: datetime) -> Outcome:
        if t.id == NIL:
            raise _Rejected("id_must_not_be_zero")
        if t.id == ALL_ONES:
            raise _Rejected("id_must_not_be_int_max")
        if t.id in self.foreign_ids:  # huinong's tenancy: ids are unique across institutions
            raise _Rejected("id_already_used")
        existing = self.transfers.get(t.id)
        if existing is not None:
            result = self._compare(t, existing)
            if result != "exists":
                raise _Rejected(result)
            return Outcome("exists", existing.timestamp, existing.amount)
        if t.flags & (POST | VOID):
            return self._post_or_void(t, stamp)
        return self._transfer(t, stamp)

    def _compare(self, t: Request, e: ModelTransfer) -> str:
        if int(t.flags) != e.flags:
            return "exists_with_different_flags"
        if _id(t.pending_id) != e.pending_id:
            return "exists_with_different_pending_id"
        if t.timeout != e.timeout:
            return "exists_with_different_timeout"
        if t.flags & (POST | VOID):
            # Omitted fields of a post/void mean "as the pending transfer": compare only what
            # was given, and an omitted amount means the full pending amount.
            assert e.pending_id is not None
            pending = self.transfers[e.pending_id]
            if not _omitted(t.debit_account_id) and t.debit_account_id != e.debit_account_id:
                return "exists_with_different_debit_account_id"
            if not _omitted(t.credit_account_id) and t.credit_account_id != e.credit_account_id:
                return "exists_with_different_credit_account_id"
            wanted = pending.amount if t.amount is None else t.amount
            if wanted != e.amount:
                return "exists_with_different_amount"
            if t.reference != e.reference:
                return "exists_with_different_reference"
            if (t.metadata or None) != e.metadata:
                return "exists_with_different_metadata"
            if t.ledger and t.ledger != e.ledger:
                return "exists_with_different_ledger"
            if t.code and t.code != e.code:
                return "exists_with_different_code"
            return "exists"
        if _id(t.debit_account_id) != e.debit_account_id:
            return "exists_with_different_debit_account_id"
        if _id(t.credit_account_id) != e.credit_account_id:
            return "exists_with_different_credit_account_id"
        if t.flags & (BALANCING_DEBIT | BALANCING_CREDIT):
            # The amount of a balancing transfer is a ceiling: a repeat may ask for more.
            if (t.amount or 0) < e.amount:
                return "exists_with_different_amount"
        elif t.amount != e.amount:
            return "exists_with_different_amount"
        if t.reference != e.reference:
            return "exists_with_different_reference"
        if (t.metadata or None) != e.metadata:
            return "exists_with_different_metadata"
        if t.ledger != e.ledger:
            return "exists_with_different_ledger"
        if t.code != e.code:
            return "exists_with_different_code"
        return "exists"

    def _transfer(self, t: Request, stamp: datetime) -> Outcome:
        if _omitted(t.debit_account_id):
            raise _Rejected("debit_account_id_must_not_be_zero")
        if _omitted(t.credit_account_id):
            raise _Rejected("credit_account_id_must_not_be_zero")
        if t.debit_account_id == t.credit_account_id:
            raise _Rejected("accounts_must_be_different")
        if not _omitted(t.pending_id):
            raise _Rejected("pending_id_must_be_zero")
        if not t.flags & PENDING and t.timeout != 0:
            raise _Rejected("timeout_reserved_for_pending_transfer")
        if t.amount is None or t.amount <= 0:
            raise _Rejected("amount_must_not_be_zero")
        if not t.ledger:
            raise _Rejected("ledger_must_not_be_zero")
        if t.code <= 0:
            raise _Rejected("code_must_not_be_zero")
        assert t.debit_account_id is not None and t.credit_account_id is not None
        dr = self.accounts.get(t.debit_account_id)
        if dr is None:
            raise _Rejected("debit_account_not_found")
        cr = self.accounts.get(t.credit_account_id)
        if cr is None:
            raise _Rejected("credit_account_not_found")
        if dr.ledger != cr.ledger:
            raise _Rejected("accounts_must_have_the_same_ledger")
        if t.ledger != dr.ledger:
            raise _Rejected("transfer_must_have_the_same_ledger_as_accounts")
        if dr.closed:
            raise _Rejected("debit_account_already_closed")
        if cr.closed:
            raise _Rejected("credit_account_already_closed")
        amount = t.amount
        if t.flags & BALANCING_DEBIT:
            room = dr.credits_posted - dr.debits_posted - dr.debits_pending
            amount = min(amount, max(room, 0))
            if amount == 0:
                raise _Rejected("exceeds_credits")
        if t.flags & BALANCING_CREDIT:
            room = cr.debits_posted - cr.credits_posted - cr.credits_pending
            amount = min(amount, max(room, 0))
            if amount == 0:
                raise _Rejected("exceeds_debits")
        pending = bool(t.flags & PENDING)
        if pending:
            if dr.debits_pending + amount > MAX_AMOUNT:
                raise _Rejected("overflows_debits_pending")
            if cr.credits_pending + amount > MAX_AMOUNT:
                raise _Rejected("overflows_credits_pending")
        if dr.debits_posted + amount > MAX_AMOUNT:
            raise _Rejected("overflows_debits_posted")
        if cr.credits_posted + amount > MAX_AMOUNT:
            raise _Rejected("overflows_credits_posted")
        if dr.debits_pending + dr.debits_posted + amount > MAX_AMOUNT:
            raise _Rejected("overflows_debits")
        if cr.credits_pending + cr.credits_posted + amount > MAX_AMOUNT:
            raise _Rejected("overflows_credits")
        if not 0 <= t.timeout <= MAX_TIMEOUT:
            raise _Rejected("overflows_timeout")
        if dr.debits_must_not_exceed_credits and (
            dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        ):
            raise _Rejected("exceeds_credits")
        if cr.credits_must_not_exceed_debits and (
            cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        ):
            raise _Rejected("exceeds_debits")
        if pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
            self.status[t.id] = "pending"
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        self._store(t, dr.id, cr.id, amount, dr.ledger, t.code, stamp)
        return Outcome("ok", stamp, amount)

    def _post_or_void(self, t: Request, stamp: datetime) -> Outcome:
        posting = bool(t.flags & POST)
        if (
            (posting and t.flags & VOID)
            or t.flags & PENDING
            or t.flags & (BALANCING_DEBIT | BALANCING_CREDIT)
        ):
            raise _Rejected("flags_are_mutually_exclusive")
        if _omitted(t.pending_id):
            raise _Rejected("pending_id_must_not_be_zero")
        if t.pending_id == t.id:
            raise _Rejected("pending_id_must_be_different")
        if t.timeout != 0:
            raise _Rejected("timeout_reserved_for_pending_transfer")
        if t.amount is not None and t.amount <= 0:
            raise _Rejected("amount_must_not_be_zero")
        assert t.pending_id is not None
        p = self.transfers.get(t.pending_id)
        if p is None:
            raise _Rejected("pending_transfer_not_found")
        if not p.flags & PENDING:
            raise _Rejected("pending_transfer_not_pending")
        if not _omitted(t.debit_account_id) and t.debit_account_id != p.debit_account_id:
            raise _Rejected("pending_transfer_has_different_debit_account_id")
        if not _omitted(t.credit_account_id) and t.credit_account_id != p.credit_account_id:
            raise _Rejected("pending_transfer_has_different_credit_account_id")
        if t.ledger and t.ledger != p.ledger:
            raise _Rejected("pending_transfer_has_different_ledger")
        if t.code and t.code != p.code:
            raise _Rejected("pending_transfer_has_different_code")
        amount = p.amount if t.amount is None else t.amount
        if amount > p.amount:
            raise _Rejected("exceeds_pending_transfer_amount")
        if not posting and amount < p.amount:
            raise _Rejected("pending_transfer_has_different_amount")
        status = self.status[p.id]
        if status == "posted":
            raise _Rejected("pending_transfer_already_posted")
        if status == "voided":
            raise _Rejected("pending_transfer_already_voided")
        if status == "expired":
            raise _Rejected("pending_transfer_expired")
        expires_at = p.expires_at
        if not t.expiry and expires_at is not None and expires_at <= stamp:
            raise _Rejected("pending_transfer_expired")
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if posting:
            dr.debits_posted += amount
            cr.credits_posted += amount
        self.status[p.id] = "posted" if posting else ("expired" if t.expiry else "voided")
        self._store(t, dr.id, cr.id, amount, p.ledger, p.code, stamp)
        return Outcome("ok", stamp, amount)

    def _store(
        self,
        t: Request,
        debit: uuid.UUID,
        credit: uuid.UUID,
        amount: int,
        ledger: str,
        code: int,
        stamp: datetime,
    ) -> None:
        self.transfers[t.id] = ModelTransfer(
            id=t.id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger=ledger,
            code=code,
            flags=int(t.flags),
            pending_id=_id(t.pending_id) if t.flags & (POST | VOID) else None,
            timeout=t.timeout,
            reference=t.reference,
            metadata=t.metadata or None,
            timestamp=stamp,
        )
