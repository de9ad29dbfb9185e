"""Ledger use cases: the only code that writes the ledger tables.

``create_transfers`` is the heart. For a batch it

1. loads the pending transfers the batch resolves (immutable rows, no lock needed);
2. locks every account involved in ascending id order — ``SELECT … FOR NO KEY UPDATE`` on
   PostgreSQL, the database lock taken by ``BEGIN IMMEDIATE`` on SQLite — so concurrent
   batches queue instead of deadlocking, and no balance update is lost;
3. takes the timestamp *after* the locks, so transfers on one account are stamped in the
   order they were applied;
4. loads the stored transfers whose ids the batch uses (the idempotency check) and the
   states of the pendings it resolves;
5. lets :func:`huinong.ledger.engine.process_batch` decide, in memory;
6. writes set-wise: one multi-row INSERT of the new transfers, one UPDATE of the touched
   balances (a single ``UPDATE … FROM unnest(…)`` on PostgreSQL), and the pending states.

It runs inside the caller's transaction: a batch is one database transaction.

How it is made fast on PostgreSQL (``benchmarks/ledger.py`` measures it against raw SQL), each
step giving the same results and rows as the plain sequence above:

* Driver-level SQL with whole columns as binary arrays: no per-value SQLAlchemy work.
* Batches under ``IN_PIECES_FROM`` skip step 4's round trip: ids are fresh in all but
  retries, so the batch is decided as if none were stored, and the write checks that in the
  same statement (after the locks, as step 4 would). If one is stored, nothing is written and
  the batch is decided again with step 4 done.
* Larger batches make the same guess inside a savepoint, where the primary key refuses a
  stored id and the savepoint takes the guess back; they are decided in pieces, each piece's
  INSERT going down a psycopg pipeline while the next piece is decided, so the rules and the
  database work at once.

The SQL of steps 2, 4 and 6 is in :mod:`huinong.ledger.storage`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from huinong import clock
from huinong.db import is_postgres
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import luhn_check_digit, uuid7
from huinong.ledger import engine
from huinong.ledger.chart import STANDARD_CHART, AccountCode
from huinong.ledger.models import Account, AccountNumberSequence, PendingTransfer, Transfer
from huinong.ledger.storage import (
    IN_PIECES_FROM,
    decide_and_write_in_pieces,
    load_pending_states,
    load_transfers,
    lock_accounts,
    unless_an_id_is_stored,
    write_postgres,
    write_sqlite,
)
from huinong.ledger.types import (
    AccountState,
    AccountType,
    BatchOutcome,
    CreateTransferResult,
    PendingStatus,
    TransferFlags,
    TransferInput,
    TransferRecord,
    TransferResult,
)

MAX_BATCH = 8190
_RESOLVE = TransferFlags.post_pending | TransferFlags.void_pending
_RESOLVE_BITS = int(_RESOLVE)  # plain ints: IntFlag arithmetic costs microseconds
# Transfer ids of the expiry sweep are derived from the pending id, so a sweep is idempotent.
EXPIRY_NAMESPACE = uuid.UUID("0192f5a2-7c3e-7000-8000-6875696e6f6e")

_accounts = Account.__table__
_transfers = Transfer.__table__
_pendings = PendingTransfer.__table__


# --------------------------------------------------------------------------- accounts


def create_account(
    session: Session,
    *,
    institution_id: uuid.UUID,
    ledger: str,
    type: AccountType,
    code: int,
    name: str,
    owner_id: uuid.UUID | None = None,
    debits_must_not_exceed_credits: bool = False,
    credits_must_not_exceed_debits: bool = False,
    with_account_number: bool = False,
    account_id: uuid.UUID | None = None,
) -> Account:
    """Open an account. A client-supplied ``account_id`` makes the call idempotent: the same
    id with the same fields returns the stored account; with other fields, 409."""
    if debits_must_not_exceed_credits and credits_must_not_exceed_debits:
        raise InvalidInput(
            "ledger.flags_are_mutually_exclusive",
            "an account takes at most one of the two limit flags",
            field="flags",
        )
    if code <= 0:
        raise InvalidInput("ledger.code_must_not_be_zero", "code must be positive", field="code")
    if account_id is not None:
        existing = session.get(Account, account_id)
        if existing is not None:
            same = (
                existing.institution_id == institution_id
                and existing.ledger == ledger
                and existing.type == type
                and existing.code == code
                and existing.owner_id == owner_id
                and existing.debits_must_not_exceed_credits == debits_must_not_exceed_credits
                and existing.credits_must_not_exceed_debits == credits_must_not_exceed_debits
            )
            if not same:
                raise Conflict(
                    "ledger.account_exists_with_different_fields",
                    "an account with this id exists with other fields",
                    field="id",
                )
            return existing
    account = Account(
        id=account_id or uuid7(),
        institution_id=institution_id,
        ledger=ledger,
        type=str(type),
        code=code,
        name=name,
        owner_id=owner_id,
        account_number=_next_account_number(session, institution_id)
        if with_account_number
        else None,
        debits_must_not_exceed_credits=debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=credits_must_not_exceed_debits,
        closed=False,
        debits_pending=0,
        debits_posted=0,
        credits_pending=0,
        credits_posted=0,
        created_at=clock.now(),
    )
    session.add(account)
    session.flush()
    return account


def _next_account_number(session: Session, institution_id: uuid.UUID) -> str:
    """A 16-digit number: a 15-digit serial per institution and a Luhn check digit. The
    serial row is updated in place, which serialises concurrent openings per institution."""
    updated = session.execute(
        update(AccountNumberSequence)
        .where(AccountNumberSequence.institution_id == institution_id)
        .values(last_serial=AccountNumberSequence.last_serial + 1)
        .returning(AccountNumberSequence.last_serial)
    ).scalar_one_or_none()
    if updated is None:
        session.add(AccountNumberSequence(institution_id=institution_id, last_serial=1))
        session.flush()
        updated = 1
    body = f"{updated:015d}"
    return body + luhn_check_digit(body)


def create_chart_of_accounts(
    session: Session, *, institution_id: uuid.UUID, ledger: str
) -> list[Account]:
    return [
        create_account(
            session,
            institution_id=institution_id,
            ledger=ledger,
            type=entry.type,
            code=entry.code,
            name=entry.name,
            debits_must_not_exceed_credits=entry.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=entry.credits_must_not_exceed_debits,
        )
        for entry in STANDARD_CHART
    ]


def system_account(
    session: Session, *, institution_id: uuid.UUID, code: AccountCode, ledger: str = "CNY"
) -> Account:
    account = session.scalar(
        select(Account)
        .where(
            Account.institution_id == institution_id,
            Account.code == int(code),
            Account.ledger == ledger,
            Account.owner_id.is_(None),
            Account.account_number.is_(None),
        )
        .order_by(Account.id)
        .limit(1)
    )
    if account is None:
        raise NotFound(
            "ledger.chart_account_missing",
            f"the institution has no {code.name} account; create its chart of accounts",
        )
    return account


def get_account(session: Session, *, institution_id: uuid.UUID, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.institution_id != institution_id:
        raise NotFound("ledger.account_not_found", "no such account", field="account_id")
    return account


def get_account_by_number(
    session: Session, *, institution_id: uuid.UUID, account_number: str
) -> Account:
    account = session.scalar(
        select(Account).where(
            Account.institution_id == institution_id, Account.account_number == account_number
        )
    )
    if account is None:
        raise NotFound(
            "ledger.account_not_found", "no account with this number", field="account_number"
        )
    return account


def list_accounts(
    session: Session,
    *,
    institution_id: uuid.UUID,
    after: uuid.UUID | None = None,
    limit: int = 50,
    owner_id: uuid.UUID | None = None,
    code: int | None = None,
) -> list[Account]:
    query = select(Account).where(Account.institution_id == institution_id)
    if after is not None:
        query = query.where(Account.id > after)
    if owner_id is not None:
        query = query.where(Account.owner_id == owner_id)
    if code is not None:
        query = query.where(Account.code == code)
    return list(session.scalars(query.order_by(Account.id).limit(limit)))


def close_account(session: Session, *, institution_id: uuid.UUID, account_id: uuid.UUID) -> Account:
    """Close an account whose balances are all zero. Closing is final; the row stays."""
    lock_accounts(session, institution_id, [account_id])
    account = get_account(session, institution_id=institution_id, account_id=account_id)
    session.refresh(account)
    if account.closed:
        return account
    if account.debits_pending or account.credits_pending:
        raise Conflict(
            "ledger.account_has_pending_transfers",
            "post or void the account's pending transfers before closing it",
            field="account_id",
        )
    if account.debits_posted != account.credits_posted:
        raise Conflict(
            "ledger.account_balance_not_zero",
            "the balance must be zero: pay it out or transfer it before closing the account",
            field="account_id",
        )
    account.closed = True
    account.closed_at = clock.now()
    session.flush()
    return account


# --------------------------------------------------------------------------- transfers


def create_transfers(
    session: Session, *, institution_id: uuid.UUID, batch: Sequence[TransferInput]
) -> list[TransferResult]:
    """Apply a batch of transfers with TigerBeetle's semantics; one result per item."""
    if not batch:
        return []
    if len(batch) > MAX_BATCH:
        raise InvalidInput(
            "ledger.batch_too_large",
            f"a batch holds at most {MAX_BATCH} transfers",
            field="transfers",
        )
    resolving = {
        t.pending_id for t in batch if t.flags & _RESOLVE_BITS and t.pending_id is not None
    }
    known = load_transfers(session, institution_id, resolving) if resolving else {}
    account_ids = {t.debit_account_id for t in batch if t.debit_account_id is not None}
    account_ids.update(t.credit_account_id for t in batch if t.credit_account_id is not None)
    for record in known.values():
        account_ids.update((record.debit_account_id, record.credit_account_id))
    accounts = lock_accounts(session, institution_id, account_ids)
    now = clock.now()
    batch_ids = [t.id for t in batch]
    postgres = is_postgres(session)
    if postgres:
        # Ids are fresh in all but retries, so decide as if none were stored and let the
        # write find out: a small batch's statement checks its ids first and writes nothing
        # if one is stored; a large batch goes in a savepoint, where the primary key refuses
        # a stored id (looking 8,190 ids up first cost more than a tenth of the batch, and the
        # insert checks the key anyway). Either way the batch is then decided again below,
        # knowing the stored transfers. The checks run after the locks, like the lookup
        # below, so they see what earlier holders wrote.
        if len(batch) < IN_PIECES_FROM:
            outcome = _decide(session, institution_id, batch, accounts, known, resolving, now)
            if write_postgres(session, outcome, accounts, check_ids=batch_ids):
                return outcome.results
        else:
            results = unless_an_id_is_stored(
                session,
                lambda: decide_and_write_in_pieces(
                    session, institution_id, batch, accounts, known, resolving, now, frozenset()
                ),
            )
            if results is not None:
                return results
        accounts = lock_accounts(session, institution_id, account_ids)  # undo the guess
    taken = load_transfers(session, None, batch_ids)
    foreign = frozenset(tid for tid, rec in taken.items() if rec.institution_id != institution_id)
    known = {**known, **{tid: rec for tid, rec in taken.items() if tid not in foreign}}
    if postgres and len(batch) >= IN_PIECES_FROM:
        return decide_and_write_in_pieces(
            session, institution_id, batch, accounts, known, resolving, now, foreign
        )
    outcome = _decide(session, institution_id, batch, accounts, known, resolving, now, foreign)
    if postgres:
        write_postgres(session, outcome, accounts, check_ids=None)
    else:
        write_sqlite(session, outcome, accounts)
    return outcome.results


def _decide(
    session: Session,
    institution_id: uuid.UUID,
    batch: Sequence[TransferInput],
    accounts: dict[uuid.UUID, AccountState],
    known: dict[uuid.UUID, TransferRecord],
    resolving: set[uuid.UUID],
    now: datetime,
    foreign: frozenset[uuid.UUID] = frozenset(),
) -> BatchOutcome:
    states = load_pending_states(session, resolving, known)
    return engine.process_batch(
        institution_id=institution_id,
        batch=batch,
        accounts=accounts,
        known_transfers=known,
        pending_states=states,
        now=now,
        foreign_ids=foreign,
    )


def get_transfer(
    session: Session, *, institution_id: uuid.UUID, transfer_id: uuid.UUID
) -> Transfer:
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or transfer.institution_id != institution_id:
        raise NotFound("ledger.transfer_not_found", "no such transfer", field="transfer_id")
    return transfer


def list_transfers(
    session: Session,
    *,
    institution_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
    reference: str | None = None,
) -> list[Transfer]:
    query = select(Transfer).where(Transfer.institution_id == institution_id)
    if reference is not None:
        query = query.where(Transfer.reference == reference)
    if after is not None:
        stamp, last_id = after
        query = query.where(
            or_(Transfer.timestamp > stamp, (Transfer.timestamp == stamp) & (Transfer.id > last_id))
        )
    return list(session.scalars(query.order_by(Transfer.timestamp, Transfer.id).limit(limit)))


# --------------------------------------------------------------------------- expiry


def sweep_expired_pending(session: Session, *, limit: int = 1000) -> int:
    """Void pending transfers whose timeout has passed, across institutions. Returns how
    many were voided. Each void is a transfer whose id derives from the pending id."""
    now = clock.now()
    c = _pendings.c
    rows = session.execute(
        select(c.pending_id, c.institution_id)
        .where(c.status == PendingStatus.pending.value, c.expires_at <= now)
        .order_by(c.expires_at)
        .limit(limit)
    ).all()
    by_institution: dict[uuid.UUID, list[uuid.UUID]] = {}
    for pending_id, institution_id in rows:
        by_institution.setdefault(institution_id, []).append(pending_id)
    voided = 0
    for institution_id, pending_ids in by_institution.items():
        batch = [
            TransferInput(
                id=uuid.uuid5(EXPIRY_NAMESPACE, str(pid)),
                pending_id=pid,
                flags=TransferFlags.void_pending,
                reference="expired",
                expiry=True,
            )
            for pid in pending_ids
        ]
        results = create_transfers(session, institution_id=institution_id, batch=batch)
        voided += sum(1 for r in results if r.result is CreateTransferResult.ok)
    return voided


# --------------------------------------------------------------------------- balances


@dataclass(frozen=True)
class Balance:
    """Balances of one account. ``balance`` and ``available`` are signed by the account's
    normal side: credits minus debits for liabilities, equity and income; the reverse for
    assets and expenses. ``available`` also deducts what pending transfers hold."""

    account_id: uuid.UUID
    ledger: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balance: int
    available: int
    as_of: datetime


def _balance(
    account_id: uuid.UUID,
    ledger: str,
    account_type: str,
    dp: int,
    dpo: int,
    cp: int,
    cpo: int,
    as_of: datetime,
) -> Balance:
    if AccountType(account_type).debit_normal:
        posted = dpo - cpo
        available = posted - cp
    else:
        posted = cpo - dpo
        available = posted - dp
    return Balance(account_id, ledger, dp, dpo, cp, cpo, posted, available, as_of)


def balance(
    session: Session,
    *,
    institution_id: uuid.UUID,
    account_id: uuid.UUID,
    as_of: datetime | None = None,
) -> Balance:
    """Current balances, or, with ``as_of``, the balances the account had at that moment
    (summed from its transfers, pending ones included until they were resolved)."""
    account = get_account(session, institution_id=institution_id, account_id=account_id)
    if as_of is None:
        return _balance(
            account.id,
            account.ledger,
            account.type,
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
            clock.now(),
        )
    sums = transfer_sums(session, account_ids=[account.id], until=as_of).get(account.id)
    dp, dpo, cp, cpo = sums if sums else (0, 0, 0, 0)
    return _balance(account.id, account.ledger, account.type, dp, dpo, cp, cpo, as_of)


def transfer_sums(
    session: Session,
    *,
    account_ids: Sequence[uuid.UUID] | None = None,
    until: datetime | None = None,
) -> dict[uuid.UUID, tuple[int, int, int, int]]:
    """(debits_pending, debits_posted, credits_pending, credits_posted) per account, summed
    from transfers (up to and including ``until``). A pending adds to the pending sums until
    a post or void at or before ``until`` releases it; a post adds to the posted sums."""
    t = aliased(Transfer)
    p = aliased(Transfer)
    pending_flag = t.flags.op("&")(int(TransferFlags.pending)) != 0
    resolve_flag = t.flags.op("&")(int(_RESOLVE)) != 0
    post_flag = t.flags.op("&")(int(TransferFlags.post_pending)) != 0
    pending_delta = case((pending_flag, t.amount), (resolve_flag, -p.amount), else_=0)
    posted_delta = case((pending_flag, 0), (resolve_flag & ~post_flag, 0), else_=t.amount)
    result: dict[uuid.UUID, list[int]] = {}
    for side, column in (("debit", t.debit_account_id), ("credit", t.credit_account_id)):
        query = (
            select(column, func.sum(pending_delta), func.sum(posted_delta))
            .select_from(t)
            .outerjoin(p, t.pending_id == p.id)
            .group_by(column)
        )
        if account_ids is not None:
            query = query.where(column.in_(list(account_ids)))
        if until is not None:
            query = query.where(t.timestamp <= until)
        offset = 0 if side == "debit" else 2
        for account_id, pending_sum, posted_sum in session.execute(query):
            sums = result.setdefault(account_id, [0, 0, 0, 0])
            sums[offset] = int(pending_sum or 0)
            sums[offset + 1] = int(posted_sum or 0)
    return {k: (v[0], v[1], v[2], v[3]) for k, v in result.items()}


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class StatementLine:
    transfer: Transfer
    side: str  # "debit" or "credit": how the transfer touches this account
    posted_change: int  # signed by the account's normal side: + grows the balance
    pending_change: int  # the same sign convention, for what pending transfers hold
    balance_after: int  # posted balance after this line


def _posted_change(t: Transfer, account_id: uuid.UUID, debit_normal: bool) -> int:
    if t.flags & TransferFlags.pending or t.flags & TransferFlags.void_pending:
        return 0
    is_debit = t.debit_account_id == account_id
    return t.amount if is_debit == debit_normal else -t.amount


@dataclass(frozen=True)
class AccountActivity:
    """Posted balance changes of some accounts over a window, signed by each account's
    normal side (+ grows its balance), and the posted balance each had when it opened."""

    opening: dict[uuid.UUID, int]
    changes: list[tuple[uuid.UUID, datetime, int]]  # (account, timestamp, change), in order


def account_activity(
    session: Session,
    *,
    institution_id: uuid.UUID,
    account_ids: Sequence[uuid.UUID],
    since: datetime,
    until: datetime,
) -> AccountActivity:
    """What credit features read of accounts: one query for the opening balances and one for
    the changes in ``[since, until)``, for any number of accounts."""
    accounts = list(
        session.scalars(
            select(Account).where(
                Account.institution_id == institution_id, Account.id.in_(list(account_ids))
            )
        )
    )
    if not accounts:
        return AccountActivity({}, [])
    credit_normal = [a.id for a in accounts if not AccountType(a.type).debit_normal]
    ids = [a.id for a in accounts]
    held = Transfer.flags.op("&")(int(TransferFlags.pending | TransferFlags.void_pending)) != 0
    rows = []
    for side, credit_side in (
        (Transfer.debit_account_id, False),
        (Transfer.credit_account_id, True),
    ):
        # A debit grows a debit-normal account, a credit a credit-normal one.
        grows = side.in_(credit_normal) if credit_side else side.not_in(credit_normal)
        signed = case((held, 0), (grows, Transfer.amount), else_=-Transfer.amount)
        rows.append(
            select(side.label("account_id"), Transfer.timestamp, signed.label("change")).where(
                side.in_(ids), Transfer.timestamp < until
            )
        )
    union = rows[0].union_all(rows[1]).subquery()
    opening = {
        account_id: int(total)
        for account_id, total in session.execute(
            select(union.c.account_id, func.sum(union.c.change))
            .where(union.c.timestamp < since)
            .group_by(union.c.account_id)
        )
    }
    changes = [
        (account_id, stamp, int(change))
        for account_id, stamp, change in session.execute(
            select(union.c.account_id, union.c.timestamp, union.c.change)
            .where(union.c.timestamp >= since, union.c.change != 0)
            .order_by(union.c.timestamp)
        )
    ]
    return AccountActivity({a: opening.get(a, 0) for a in ids}, changes)


def statement(
    session: Session,
    *,
    institution_id: uuid.UUID,
    account_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[StatementLine]:
    """Transfers of one account in the order they were applied, with the running posted
    balance. ``after`` is the (timestamp, id) of the last line of the previous page."""
    account = get_account(session, institution_id=institution_id, account_id=account_id)
    debit_normal = AccountType(account.type).debit_normal
    touches = or_(Transfer.debit_account_id == account.id, Transfer.credit_account_id == account.id)
    query = select(Transfer).where(touches)
    opening = 0
    if after is not None:
        stamp, last_id = after
        later = or_(
            Transfer.timestamp > stamp, and_(Transfer.timestamp == stamp, Transfer.id > last_id)
        )
        query = query.where(later)
        signed = case(
            (
                Transfer.flags.op("&")(int(TransferFlags.pending | TransferFlags.void_pending))
                != 0,
                0,
            ),
            ((Transfer.debit_account_id == account.id) == debit_normal, Transfer.amount),
            else_=-Transfer.amount,
        )
        opening = int(
            session.scalar(select(func.coalesce(func.sum(signed), 0)).where(touches, ~later)) or 0
        )
    transfers = list(session.scalars(query.order_by(Transfer.timestamp, Transfer.id).limit(limit)))
    pending_amounts = _pending_amounts(session, [t.pending_id for t in transfers])
    lines: list[StatementLine] = []
    running = opening
    for t in transfers:
        is_debit = t.debit_account_id == account.id
        sign = 1 if is_debit == debit_normal else -1
        change = _posted_change(t, account.id, debit_normal)
        running += change
        if t.flags & TransferFlags.pending:
            pending_change = sign * t.amount
        elif t.pending_id is not None:
            pending_change = -sign * pending_amounts.get(t.pending_id, 0)
        else:
            pending_change = 0
        lines.append(
            StatementLine(t, "debit" if is_debit else "credit", change, pending_change, running)
        )
    return lines


def _pending_amounts(
    session: Session, pending_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, int]:
    wanted = [p for p in pending_ids if p is not None]
    if not wanted:
        return {}
    rows = session.execute(select(Transfer.id, Transfer.amount).where(Transfer.id.in_(wanted)))
    return {tid: amount for tid, amount in rows}
