"""The transfer rules: TigerBeetle's ``create_transfers`` semantics as a pure function.

Invariants (the database enforces the ones it can with CHECK, UNIQUE and FOREIGN KEY):

1. Every transfer moves ``amount > 0`` fen from one debit account to one different credit
   account of the same institution and ledger (currency). Both sides change by the same
   amount, so for every institution and ledger the sum of debits equals the sum of credits,
   pending and posted alike.
2. Transfers are immutable. A correction is a new transfer; a pending transfer is resolved by
   a new ``post_pending`` or ``void_pending`` transfer, once (``transfers.pending_id`` is
   unique).
3. An account's four balances are exactly the sums of its transfers: a pending transfer adds
   to ``*_pending``; its post moves the pending amount out of ``*_pending`` and the posted
   amount into ``*_posted``; its void (or expiry) only releases ``*_pending``.
4. ``debits_must_not_exceed_credits``: debits_pending + debits_posted <= credits_posted.
   ``credits_must_not_exceed_debits``: credits_pending + credits_posted <= debits_posted.
   A transfer that would break a flag fails with ``exceeds_credits`` / ``exceeds_debits``.
5. A transfer's ``id`` is the client's idempotency key: the id is checked before any business
   rule, and a repeat with the same fields answers ``exists`` (which counts as success).
6. A linked chain (``linked`` on every member but the last) succeeds or fails as one; the
   member at fault gets its own code and the others ``linked_event_failed``.

Deviation from TigerBeetle: amounts are never zero (the storage type is a signed 64-bit
``BIGINT``, and a zero-amount transfer records nothing). A balancing transfer that would be
clamped to zero fails with ``exceeds_credits`` / ``exceeds_debits`` instead.

The caller (``service.create_transfers``) loads and locks every account the batch names,
loads the transfers whose ids the batch uses or whose pendings it resolves, calls
:func:`process_batch`, and writes the outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from huinong.ledger.types import (
    AccountState,
    BatchOutcome,
    CreateTransferResult,
    PendingState,
    PendingStatus,
    TransferFlags,
    TransferInput,
    TransferRecord,
    TransferResult,
)
from huinong.money import MAX_FEN

R = CreateTransferResult
F = TransferFlags
NIL = uuid.UUID(int=0)
MAX_ID = uuid.UUID(int=(1 << 128) - 1)
MAX_TIMEOUT_SECONDS = 2**31 - 1
_TWO_PHASE = F.pending | F.post_pending | F.void_pending
_RESOLVE = F.post_pending | F.void_pending
_BALANCING = F.balancing_debit | F.balancing_credit


class _Failed(Exception):
    def __init__(self, result: CreateTransferResult) -> None:
        self.result = result


class _Undo:
    """Journal of in-memory changes of one linked chain, so a failed chain leaves no trace."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, tuple[AccountState, tuple[int, int, int, int]]] = {}
        self.pending_states: list[tuple[PendingState, PendingStatus, object, object]] = []
        self.created_ids: list[uuid.UUID] = []
        self.new_pending_ids: list[uuid.UUID] = []

    def remember(self, account: AccountState) -> None:
        if account.id not in self.accounts:
            self.accounts[account.id] = (account, account.balances())


def _check_shape(t: TransferInput) -> None:
    """Rules that need nothing but the request itself."""
    if t.id == NIL:
        raise _Failed(R.id_must_not_be_zero)
    if t.id == MAX_ID:
        raise _Failed(R.id_must_not_be_int_max)
    two_phase = t.flags & _TWO_PHASE
    if two_phase & (two_phase - 1):  # more than one of pending / post / void
        raise _Failed(R.flags_are_mutually_exclusive)
    if t.flags & _RESOLVE and t.flags & _BALANCING:
        raise _Failed(R.flags_are_mutually_exclusive)
    if t.flags & _RESOLVE:
        if t.pending_id is None or t.pending_id == NIL:
            raise _Failed(R.pending_id_must_not_be_zero)
        if t.pending_id == t.id:
            raise _Failed(R.pending_id_must_be_different)
        if t.timeout:
            raise _Failed(R.timeout_reserved_for_pending_transfer)
        if t.amount is not None and t.amount <= 0:
            raise _Failed(R.amount_must_not_be_zero)
        if (
            t.debit_account_id is not None
            and t.credit_account_id is not None
            and t.debit_account_id == t.credit_account_id
        ):
            raise _Failed(R.accounts_must_be_different)
        return
    if t.debit_account_id is None or t.debit_account_id == NIL:
        raise _Failed(R.debit_account_id_must_not_be_zero)
    if t.credit_account_id is None or t.credit_account_id == NIL:
        raise _Failed(R.credit_account_id_must_not_be_zero)
    if t.debit_account_id == t.credit_account_id:
        raise _Failed(R.accounts_must_be_different)
    if t.pending_id is not None and t.pending_id != NIL:
        raise _Failed(R.pending_id_must_be_zero)
    if t.timeout and not t.flags & F.pending:
        raise _Failed(R.timeout_reserved_for_pending_transfer)
    if t.timeout < 0 or t.timeout > MAX_TIMEOUT_SECONDS:
        raise _Failed(R.overflows_timeout)
    if not t.ledger:
        raise _Failed(R.ledger_must_not_be_zero)
    if t.code <= 0:
        raise _Failed(R.code_must_not_be_zero)
    if t.amount is None or t.amount <= 0:
        raise _Failed(R.amount_must_not_be_zero)


def _compare_existing(t: TransferInput, e: TransferRecord) -> CreateTransferResult:
    """TigerBeetle's ``exists_with_different_*`` order; fields a post/void may omit are
    compared only when given."""
    resolving = bool(t.flags & _RESOLVE)
    if t.flags != e.flags:
        return R.exists_with_different_flags
    if (t.pending_id or None) != e.pending_id:
        return R.exists_with_different_pending_id
    if t.timeout != e.timeout:
        return R.exists_with_different_timeout
    if not (resolving and t.debit_account_id is None) and t.debit_account_id != e.debit_account_id:
        return R.exists_with_different_debit_account_id
    if not (resolving and t.credit_account_id is None) and (
        t.credit_account_id != e.credit_account_id
    ):
        return R.exists_with_different_credit_account_id
    if t.amount is not None:
        if t.flags & _BALANCING:
            if t.amount < e.amount:
                return R.exists_with_different_amount
        elif t.amount != e.amount:
            return R.exists_with_different_amount
    if t.reference != e.reference:
        return R.exists_with_different_reference
    if (t.metadata or None) != (e.metadata or None):
        return R.exists_with_different_metadata
    if not (resolving and not t.ledger) and t.ledger != e.ledger:
        return R.exists_with_different_ledger
    if not (resolving and not t.code) and t.code != e.code:
        return R.exists_with_different_code
    return R.exists


def _check_overflow(dr: AccountState, cr: AccountState, pending: int, posted: int) -> None:
    if dr.debits_pending + pending > MAX_FEN:
        raise _Failed(R.overflows_debits_pending)
    if cr.credits_pending + pending > MAX_FEN:
        raise _Failed(R.overflows_credits_pending)
    if dr.debits_posted + posted > MAX_FEN:
        raise _Failed(R.overflows_debits_posted)
    if cr.credits_posted + posted > MAX_FEN:
        raise _Failed(R.overflows_credits_posted)
    if dr.debits_pending + dr.debits_posted + pending + posted > MAX_FEN:
        raise _Failed(R.overflows_debits)
    if cr.credits_pending + cr.credits_posted + pending + posted > MAX_FEN:
        raise _Failed(R.overflows_credits)


class _Batch:
    def __init__(
        self,
        institution_id: uuid.UUID,
        accounts: Mapping[uuid.UUID, AccountState],
        known: Mapping[uuid.UUID, TransferRecord],
        pendings: Mapping[uuid.UUID, PendingState],
        now: datetime,
        foreign_ids: frozenset[uuid.UUID],
    ) -> None:
        self.institution_id = institution_id
        self.foreign_ids = foreign_ids
        self.accounts = accounts
        self.known: dict[uuid.UUID, TransferRecord] = dict(known)
        self.pendings: dict[uuid.UUID, PendingState] = dict(pendings)
        self.now = now
        self.outcome = BatchOutcome()
        self.created: dict[uuid.UUID, TransferRecord] = {}
        self.new_pendings: dict[uuid.UUID, PendingState] = {}
        self.resolved: dict[uuid.UUID, PendingState] = {}
        self.undo: _Undo | None = None
        self.sequence = 0

    def _timestamp(self) -> datetime:
        # Strictly increasing within a batch: statements order by (timestamp, id).
        stamp = self.now + timedelta(microseconds=self.sequence)
        self.sequence += 1
        return stamp

    def _account(self, account_id: uuid.UUID, missing: CreateTransferResult) -> AccountState:
        account = self.accounts.get(account_id)
        if account is None:
            raise _Failed(missing)
        return account

    def _touch(self, *accounts: AccountState) -> None:
        if self.undo is not None:
            for account in accounts:
                self.undo.remember(account)

    def apply(self, t: TransferInput) -> TransferResult:
        _check_shape(t)
        if t.id in self.foreign_ids:
            raise _Failed(R.id_already_used)
        existing = self.known.get(t.id)
        if existing is not None:
            result = _compare_existing(t, existing)
            if result is not R.exists:
                raise _Failed(result)
            return TransferResult(0, t.id, R.exists, existing.timestamp, existing.amount)
        if t.flags & _RESOLVE:
            return self._resolve(t)
        return self._create(t)

    def _create(self, t: TransferInput) -> TransferResult:
        assert t.debit_account_id is not None and t.credit_account_id is not None
        assert t.amount is not None and t.ledger is not None
        dr = self._account(t.debit_account_id, R.debit_account_not_found)
        cr = self._account(t.credit_account_id, R.credit_account_not_found)
        if dr.ledger != cr.ledger:
            raise _Failed(R.accounts_must_have_the_same_ledger)
        if t.ledger != dr.ledger:
            raise _Failed(R.transfer_must_have_the_same_ledger_as_accounts)
        if dr.closed:
            raise _Failed(R.debit_account_already_closed)
        if cr.closed:
            raise _Failed(R.credit_account_already_closed)
        amount = t.amount
        if t.flags & F.balancing_debit:
            amount = min(amount, max(0, dr.credits_posted - dr.debits_posted - dr.debits_pending))
            if amount == 0:
                raise _Failed(R.exceeds_credits)
        if t.flags & F.balancing_credit:
            amount = min(amount, max(0, cr.debits_posted - cr.credits_posted - cr.credits_pending))
            if amount == 0:
                raise _Failed(R.exceeds_debits)
        is_pending = bool(t.flags & F.pending)
        _check_overflow(dr, cr, amount if is_pending else 0, 0 if is_pending else amount)
        if dr.debits_must_not_exceed_credits and (
            dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        ):
            raise _Failed(R.exceeds_credits)
        if cr.credits_must_not_exceed_debits and (
            cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        ):
            raise _Failed(R.exceeds_debits)
        self._touch(dr, cr)
        if is_pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        record = self._record(t, dr.id, cr.id, amount, t.ledger, t.code)
        if is_pending:
            expires = record.timestamp + timedelta(seconds=t.timeout) if t.timeout else None
            state = PendingState(record.id, PendingStatus.pending, expires)
            self.pendings[record.id] = state
            self.new_pendings[record.id] = state
            if self.undo is not None:
                self.undo.new_pending_ids.append(record.id)
        return TransferResult(0, t.id, R.ok, record.timestamp, amount)

    def _resolve(self, t: TransferInput) -> TransferResult:
        assert t.pending_id is not None
        pending = self.known.get(t.pending_id)
        if pending is None:
            raise _Failed(R.pending_transfer_not_found)
        if not pending.flags & F.pending:
            raise _Failed(R.pending_transfer_not_pending)
        dr = self._account(pending.debit_account_id, R.debit_account_not_found)
        cr = self._account(pending.credit_account_id, R.credit_account_not_found)
        if t.debit_account_id is not None and t.debit_account_id != pending.debit_account_id:
            raise _Failed(R.pending_transfer_has_different_debit_account_id)
        if t.credit_account_id is not None and t.credit_account_id != pending.credit_account_id:
            raise _Failed(R.pending_transfer_has_different_credit_account_id)
        if t.ledger and t.ledger != pending.ledger:
            raise _Failed(R.pending_transfer_has_different_ledger)
        if t.code and t.code != pending.code:
            raise _Failed(R.pending_transfer_has_different_code)
        posting = bool(t.flags & F.post_pending)
        amount = pending.amount if t.amount is None else t.amount
        if posting and amount > pending.amount:
            raise _Failed(R.exceeds_pending_transfer_amount)
        if not posting and amount != pending.amount:
            raise _Failed(R.pending_transfer_has_different_amount)
        state = self.pendings[pending.id]
        if state.status is PendingStatus.posted:
            raise _Failed(R.pending_transfer_already_posted)
        if state.status is PendingStatus.voided:
            raise _Failed(R.pending_transfer_already_voided)
        if state.status is PendingStatus.expired:
            raise _Failed(R.pending_transfer_expired)
        if not t.expiry and state.expires_at is not None and self.now >= state.expires_at:
            raise _Failed(R.pending_transfer_expired)
        if posting:
            _check_overflow(dr, cr, 0, amount)
        self._touch(dr, cr)
        dr.debits_pending -= pending.amount
        cr.credits_pending -= pending.amount
        if posting:
            dr.debits_posted += amount
            cr.credits_posted += amount
        record = self._record(t, dr.id, cr.id, amount, pending.ledger, pending.code)
        if self.undo is not None:
            self.undo.pending_states.append(
                (state, state.status, state.resolved_by, state.resolved_at)
            )
        if posting:
            state.status = PendingStatus.posted
        else:
            state.status = PendingStatus.expired if t.expiry else PendingStatus.voided
        state.resolved_by = record.id
        state.resolved_at = record.timestamp
        self.resolved[state.pending_id] = state
        return TransferResult(0, t.id, R.ok, record.timestamp, amount)

    def _record(
        self,
        t: TransferInput,
        debit: uuid.UUID,
        credit: uuid.UUID,
        amount: int,
        ledger: str,
        code: int,
    ) -> TransferRecord:
        record = TransferRecord(
            id=t.id,
            institution_id=self.institution_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger=ledger,
            code=code,
            flags=int(t.flags),
            pending_id=t.pending_id if t.flags & _RESOLVE else None,
            timeout=t.timeout,
            reference=t.reference,
            metadata=t.metadata or None,
            timestamp=self._timestamp(),
        )
        self.known[record.id] = record
        self.created[record.id] = record
        if self.undo is not None:
            self.undo.created_ids.append(record.id)
        return record

    def rollback(self, undo: _Undo) -> None:
        for account, (dp, dpo, cp, cpo) in undo.accounts.values():
            account.debits_pending, account.debits_posted = dp, dpo
            account.credits_pending, account.credits_posted = cp, cpo
        for state, status, resolved_by, resolved_at in reversed(undo.pending_states):
            state.status = status
            state.resolved_by = resolved_by  # type: ignore[assignment]
            state.resolved_at = resolved_at  # type: ignore[assignment]
            if status is PendingStatus.pending:
                self.resolved.pop(state.pending_id, None)
        for transfer_id in undo.created_ids:
            del self.known[transfer_id]
            del self.created[transfer_id]
        for pending_id in undo.new_pending_ids:
            del self.pendings[pending_id]
            del self.new_pendings[pending_id]


def process_batch(
    *,
    institution_id: uuid.UUID,
    batch: Sequence[TransferInput],
    accounts: Mapping[uuid.UUID, AccountState],
    known_transfers: Mapping[uuid.UUID, TransferRecord],
    pending_states: Mapping[uuid.UUID, PendingState],
    now: datetime,
    foreign_ids: frozenset[uuid.UUID] = frozenset(),
) -> BatchOutcome:
    """Apply ``batch`` in order to ``accounts`` (mutated in place) and say what to write.

    ``known_transfers`` holds the stored transfers whose ids the batch uses and the stored
    pending transfers it resolves; ``pending_states`` the states of those pendings.
    ``foreign_ids`` are ids taken by other institutions' transfers: such an item fails with
    ``id_already_used`` and learns nothing about the other transfer.
    """
    state = _Batch(institution_id, accounts, known_transfers, pending_states, now, foreign_ids)
    results: list[TransferResult | None] = [None] * len(batch)
    index = 0
    count = len(batch)
    while index < count:
        # A chain runs from here through the first member without ``linked``.
        end = index
        while end < count and batch[end].flags & F.linked:
            end += 1
        if end == index:  # a lone transfer
            try:
                result = state.apply(batch[index])
            except _Failed as failure:
                result = TransferResult(index, batch[index].id, failure.result)
            results[index] = _at(result, index)
            index += 1
            continue
        chain_open = end == count
        last = count - 1 if chain_open else end
        undo = _Undo()
        state.undo = undo
        failed_at: int | None = None
        failure_result: CreateTransferResult | None = None
        chain_results: dict[int, TransferResult] = {}
        for position in range(index, last + 1):
            if chain_open and position == last:
                failed_at, failure_result = position, R.linked_event_chain_open
                break
            try:
                chain_results[position] = _at(state.apply(batch[position]), position)
            except _Failed as failure:
                failed_at, failure_result = position, failure.result
                break
        state.undo = None
        if failed_at is None:
            for position, result in chain_results.items():
                results[position] = result
        else:
            state.rollback(undo)
            assert failure_result is not None
            for position in range(index, last + 1):
                code = failure_result if position == failed_at else R.linked_event_failed
                results[position] = TransferResult(position, batch[position].id, code)
        index = last + 1
    outcome = state.outcome
    outcome.results = [r for r in results if r is not None]
    outcome.created = list(state.created.values())
    outcome.new_pendings = list(state.new_pendings.values())
    outcome.resolved_pendings = [
        s for pid, s in state.resolved.items() if pid not in state.new_pendings
    ]
    outcome.touched_accounts = {
        account_id
        for record in outcome.created
        for account_id in (record.debit_account_id, record.credit_account_id)
    }
    return outcome


def _at(result: TransferResult, index: int) -> TransferResult:
    return TransferResult(index, result.id, result.result, result.timestamp, result.amount)
