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
5. A transfer's ``id`` is the client's idempotency key: the id is checked before any other
   rule (TigerBeetle's precedence: right after ``id_must_not_be_zero`` / ``_int_max``), and a
   repeat with the same fields answers ``exists`` (which counts as success). Fields a post or
   void may omit are compared only when given; an omitted amount means the full pending amount.
6. A linked chain (``linked`` on every member but the last) succeeds or fails as one; the
   member at fault gets its own code and the others ``linked_event_failed`` — except that the
   last item of a batch, when it carries ``linked``, always gets ``linked_event_chain_open``.
7. Every item of a batch has its own timestamp, ``now`` plus its index in microseconds (as
   TigerBeetle stamps each event of a batch), and a pending transfer has expired for an item
   whose timestamp is at or after ``pending timestamp + timeout``.

Deviations from TigerBeetle:

* amounts are never zero (the storage type is a signed 64-bit ``BIGINT``, and a zero-amount
  transfer records nothing): a post or void leaves the amount out (``None``) to mean the
  pending amount, and a balancing transfer that would be clamped to zero fails with
  ``exceeds_credits`` / ``exceeds_debits``;
* ``exists`` counts as success inside a linked chain (TigerBeetle breaks the chain on any
  result but ``ok``), so resubmitting a whole chain that was applied answers ``exists`` for
  every member;
* a failed transfer does not reserve its id (no ``id_already_failed``): it may be retried.

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


class F:
    """The flag bits as plain ints: ``int & IntFlag`` takes the slow enum path, and this
    module tests flags several times for every transfer of a batch."""

    linked = int(TransferFlags.linked)
    pending = int(TransferFlags.pending)
    post_pending = int(TransferFlags.post_pending)
    void_pending = int(TransferFlags.void_pending)
    balancing_debit = int(TransferFlags.balancing_debit)
    balancing_credit = int(TransferFlags.balancing_credit)


_MAX_INT = (1 << 128) - 1  # the id TigerBeetle reserves, as ``UUID.int``
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


def _given(value: uuid.UUID | None) -> uuid.UUID | None:
    """An account or pending id as TigerBeetle reads it: the nil UUID means "not given"."""
    # ``.int`` rather than ``== UUID(int=0)``: UUID's ``__eq__`` is Python code, run three
    # times for every transfer of a batch.
    return None if value is None or not value.int else value


def _check_shape(t: TransferInput) -> None:
    """Rules that need nothing but the request itself, in TigerBeetle's order."""
    if t.flags & _RESOLVE:
        two_phase = t.flags & _TWO_PHASE
        if two_phase & (two_phase - 1) or t.flags & _BALANCING:
            raise _Failed(R.flags_are_mutually_exclusive)
        if _given(t.pending_id) is None:
            raise _Failed(R.pending_id_must_not_be_zero)
        if t.pending_id == t.id:
            raise _Failed(R.pending_id_must_be_different)
        if t.timeout:
            raise _Failed(R.timeout_reserved_for_pending_transfer)
        if t.amount is not None and t.amount <= 0:
            raise _Failed(R.amount_must_not_be_zero)
        # The accounts, ledger and code of a post/void are only checked against the pending
        # transfer (TigerBeetle has no ``accounts_must_be_different`` for them).
        return
    if _given(t.debit_account_id) is None:
        raise _Failed(R.debit_account_id_must_not_be_zero)
    if _given(t.credit_account_id) is None:
        raise _Failed(R.credit_account_id_must_not_be_zero)
    if t.debit_account_id == t.credit_account_id:
        raise _Failed(R.accounts_must_be_different)
    if _given(t.pending_id) is not None:
        raise _Failed(R.pending_id_must_be_zero)
    if t.timeout and not t.flags & F.pending:
        raise _Failed(R.timeout_reserved_for_pending_transfer)
    if t.amount is None or t.amount <= 0:
        raise _Failed(R.amount_must_not_be_zero)
    if not t.ledger:
        raise _Failed(R.ledger_must_not_be_zero)
    if t.code <= 0:
        raise _Failed(R.code_must_not_be_zero)


def _compare_existing(
    t: TransferInput, e: TransferRecord, known: Mapping[uuid.UUID, TransferRecord]
) -> CreateTransferResult:
    """TigerBeetle's ``exists_with_different_*`` order. ``t`` may be malformed: this runs
    before the shape checks. For a post/void, fields it may omit are compared only when
    given, and an omitted amount stands for the full amount of the pending transfer, which
    is in ``known`` (the caller loads the pending of every post/void of the batch)."""
    resolving = bool(t.flags & _RESOLVE)
    if t.flags != e.flags:
        return R.exists_with_different_flags
    if _given(t.pending_id) != e.pending_id:
        return R.exists_with_different_pending_id
    if t.timeout != e.timeout:
        return R.exists_with_different_timeout
    if not (resolving and _given(t.debit_account_id) is None) and (
        _given(t.debit_account_id) != e.debit_account_id
    ):
        return R.exists_with_different_debit_account_id
    if not (resolving and _given(t.credit_account_id) is None) and (
        _given(t.credit_account_id) != e.credit_account_id
    ):
        return R.exists_with_different_credit_account_id
    if resolving:
        assert e.pending_id is not None  # same flags and pending id as ``t``
        wanted = known[e.pending_id].amount if t.amount is None else t.amount
        if wanted != e.amount:
            return R.exists_with_different_amount
    elif t.flags & _BALANCING:
        # The amount of a balancing transfer is a ceiling: a repeat may ask for more.
        if (t.amount or 0) < e.amount:
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


def _check_overflow(dr: AccountState, cr: AccountState, amount: int, pending: bool) -> None:
    """TigerBeetle's overflow checks, in its order (a pending transfer is also checked
    against the posted sums, as there)."""
    if pending and dr.debits_pending + amount > MAX_FEN:
        raise _Failed(R.overflows_debits_pending)
    if pending and cr.credits_pending + amount > MAX_FEN:
        raise _Failed(R.overflows_credits_pending)
    if dr.debits_posted + amount > MAX_FEN:
        raise _Failed(R.overflows_debits_posted)
    if cr.credits_posted + amount > MAX_FEN:
        raise _Failed(R.overflows_credits_posted)
    if dr.debits_pending + dr.debits_posted + amount > MAX_FEN:
        raise _Failed(R.overflows_debits)
    if cr.credits_pending + cr.credits_posted + amount > MAX_FEN:
        raise _Failed(R.overflows_credits)


class _Batch:
    def __init__(
        self,
        institution_id: uuid.UUID,
        accounts: Mapping[uuid.UUID, AccountState],
        known: Mapping[uuid.UUID, TransferRecord],
        pendings: Mapping[uuid.UUID, PendingState],
        foreign_ids: frozenset[uuid.UUID],
    ) -> None:
        self.institution_id = institution_id
        self.foreign_ids = foreign_ids
        self.accounts = accounts
        self.known: dict[uuid.UUID, TransferRecord] = dict(known)
        self.pendings: dict[uuid.UUID, PendingState] = dict(pendings)
        self.outcome = BatchOutcome()
        self.created: dict[uuid.UUID, TransferRecord] = {}
        self.new_pendings: dict[uuid.UUID, PendingState] = {}
        self.resolved: dict[uuid.UUID, PendingState] = {}
        self.undo: _Undo | None = None

    def _account(self, account_id: uuid.UUID, missing: CreateTransferResult) -> AccountState:
        account = self.accounts.get(account_id)
        if account is None:
            raise _Failed(missing)
        return account

    def _touch(self, *accounts: AccountState) -> None:
        if self.undo is not None:
            for account in accounts:
                self.undo.remember(account)

    def apply(self, t: TransferInput, index: int, stamp: datetime) -> TransferResult:
        """Item ``index``, stamped ``stamp`` if it is created."""
        if not t.id.int:
            raise _Failed(R.id_must_not_be_zero)
        if t.id.int == _MAX_INT:
            raise _Failed(R.id_must_not_be_int_max)
        if self.foreign_ids and t.id in self.foreign_ids:
            raise _Failed(R.id_already_used)
        existing = self.known.get(t.id)
        if existing is not None:
            result = _compare_existing(t, existing, self.known)
            if result is not R.exists:
                raise _Failed(result)
            return TransferResult(index, t.id, R.exists, existing.timestamp, existing.amount)
        _check_shape(t)
        if t.flags & _RESOLVE:
            return self._resolve(t, index, stamp)
        return self._create(t, index, stamp)

    def _create(self, t: TransferInput, index: int, stamp: datetime) -> TransferResult:
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
        _check_overflow(dr, cr, amount, is_pending)
        if not 0 <= t.timeout <= MAX_TIMEOUT_SECONDS:  # the column is a signed 32-bit integer
            raise _Failed(R.overflows_timeout)
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
        record = self._record(t, dr.id, cr.id, amount, t.ledger, t.code, stamp)
        if is_pending:
            expires = stamp + timedelta(seconds=t.timeout) if t.timeout else None
            state = PendingState(record.id, PendingStatus.pending, expires)
            self.pendings[record.id] = state
            self.new_pendings[record.id] = state
            if self.undo is not None:
                self.undo.new_pending_ids.append(record.id)
        return TransferResult(index, t.id, R.ok, record.timestamp, amount)

    def _resolve(self, t: TransferInput, index: int, stamp: datetime) -> TransferResult:
        assert t.pending_id is not None
        pending = self.known.get(t.pending_id)
        if pending is None:
            raise _Failed(R.pending_transfer_not_found)
        if not pending.flags & F.pending:
            raise _Failed(R.pending_transfer_not_pending)
        dr = self._account(pending.debit_account_id, R.debit_account_not_found)
        cr = self._account(pending.credit_account_id, R.credit_account_not_found)
        debit, credit = _given(t.debit_account_id), _given(t.credit_account_id)
        if debit is not None and debit != pending.debit_account_id:
            raise _Failed(R.pending_transfer_has_different_debit_account_id)
        if credit is not None and credit != pending.credit_account_id:
            raise _Failed(R.pending_transfer_has_different_credit_account_id)
        if t.ledger and t.ledger != pending.ledger:
            raise _Failed(R.pending_transfer_has_different_ledger)
        if t.code and t.code != pending.code:
            raise _Failed(R.pending_transfer_has_different_code)
        posting = bool(t.flags & F.post_pending)
        amount = pending.amount if t.amount is None else t.amount
        if amount > pending.amount:  # for a void too, as in TigerBeetle
            raise _Failed(R.exceeds_pending_transfer_amount)
        if not posting and amount < pending.amount:
            raise _Failed(R.pending_transfer_has_different_amount)
        state = self.pendings[pending.id]
        if state.status is PendingStatus.posted:
            raise _Failed(R.pending_transfer_already_posted)
        if state.status is PendingStatus.voided:
            raise _Failed(R.pending_transfer_already_voided)
        if state.status is PendingStatus.expired:
            raise _Failed(R.pending_transfer_expired)
        # Judged at this item's own timestamp, so no post is stamped after the expiry.
        if not t.expiry and state.expires_at is not None and stamp >= state.expires_at:
            raise _Failed(R.pending_transfer_expired)
        # No overflow check, as in TigerBeetle: a post moves at most the pending amount from
        # ``*_pending`` to ``*_posted``, so no sum grows (checking before the move would
        # refuse posts on accounts whose pending + posted sum is near the limit).
        self._touch(dr, cr)
        dr.debits_pending -= pending.amount
        cr.credits_pending -= pending.amount
        if posting:
            dr.debits_posted += amount
            cr.credits_posted += amount
        record = self._record(t, dr.id, cr.id, amount, pending.ledger, pending.code, stamp)
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
        return TransferResult(index, t.id, R.ok, record.timestamp, amount)

    def _record(
        self,
        t: TransferInput,
        debit: uuid.UUID,
        credit: uuid.UUID,
        amount: int,
        ledger: str,
        code: int,
        stamp: datetime,
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
            timestamp=stamp,
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
    first_index: int = 0,
) -> BatchOutcome:
    """Apply ``batch`` in order to ``accounts`` (mutated in place) and say what to write.

    ``known_transfers`` holds the stored transfers whose ids the batch uses and the stored
    pending transfers it resolves; ``pending_states`` the states of those pendings.
    ``foreign_ids`` are ids taken by other institutions' transfers: such an item fails with
    ``id_already_used`` and learns nothing about the other transfer. ``first_index`` numbers
    the items when ``batch`` is a piece of a larger batch that starts at that index: results
    carry the larger batch's indices and items its timestamps (``now`` plus the index).

    The loop is TigerBeetle's: a chain opens at the first ``linked`` item and closes after
    the first item without it; the first failure in a chain undoes the chain so far and fails
    the rest of it; a ``linked`` last item is ``linked_event_chain_open`` whatever came before.
    """
    state = _Batch(institution_id, accounts, known_transfers, pending_states, foreign_ids)
    results: list[TransferResult] = []
    last = first_index + len(batch) - 1
    chain_start: int | None = None
    chain_broken = False
    for index, t in enumerate(batch, start=first_index):
        linked = bool(t.flags & F.linked)
        if linked and chain_start is None:
            chain_start = index
            state.undo = _Undo()
        if linked and index == last:
            result = TransferResult(index, t.id, R.linked_event_chain_open)
        elif chain_broken:
            result = TransferResult(index, t.id, R.linked_event_failed)
        else:
            try:
                result = state.apply(t, index, now + timedelta(microseconds=index))
            except _Failed as failure:
                result = TransferResult(index, t.id, failure.result)
        if chain_start is not None and not chain_broken and not result.result.applied:
            chain_broken = True
            assert state.undo is not None
            state.rollback(state.undo)
            state.undo = None
            for position in range(chain_start, index):
                results[position - first_index] = TransferResult(
                    position, batch[position - first_index].id, R.linked_event_failed
                )
        results.append(result)
        if chain_start is not None and (not linked or index == last):
            chain_start, chain_broken, state.undo = None, False, None
    outcome = state.outcome
    outcome.results = results
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
