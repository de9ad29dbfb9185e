"""How ``create_transfers`` reads and writes the ledger: the hot path's SQL, per database.

``service.create_transfers`` decides a batch with the pure rules of ``engine`` between two
trips to the database, and this module makes those trips cheap:

* **read**: lock the batch's accounts and read their state in one statement, in ascending id
  order (``lock_accounts``); the stored transfers a batch names (``load_transfers``) and the
  states of the pendings it resolves (``load_pending_states``);
* **write**: the created transfers, the new balances and the pending states. On PostgreSQL a
  small batch goes in one statement that can first check that none of its ids is stored
  (``write_postgres``); a large one is decided and written in pieces down a psycopg pipeline,
  so that the rules (Python) and the inserts (PostgreSQL) use both cores at once
  (``decide_and_write_in_pieces``), inside a savepoint when its ids are only assumed fresh
  (``unless_an_id_is_stored``). SQLite gets ``executemany`` in its own storage formats
  (``write_sqlite``).

Driver-level SQL throughout: SQLAlchemy Core costs microseconds per bound value, and a batch
binds tens of thousands; on PostgreSQL the statements go straight to psycopg's connection (in
the session's transaction), which spares the result object SQLAlchemy builds per statement.
PostgreSQL gets whole columns as binary arrays (``%b``) or one JSON text; SQLite gets id lists
as one JSON text (``json_each``), so neither has a parameter limit.
Statements that bypass the ORM expire what the session had loaded of the rows they changed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huinong.db import driver_errors, pg_execute, psycopg_connection
from huinong.ledger import engine
from huinong.ledger.models import Account, PendingTransfer
from huinong.ledger.types import (
    AccountState,
    BatchOutcome,
    PendingState,
    PendingStatus,
    TransferFlags,
    TransferInput,
    TransferRecord,
    TransferResult,
)
from huinong.pgarrays import int4_array, int8_array, unnest, uuid_array

T = TypeVar("T")

_CHUNK = 4000
_LINKED_BIT = int(TransferFlags.linked)  # plain ints: IntFlag arithmetic costs microseconds
# PostgreSQL batches at least this long are decided and written in pieces of about _PIECE.
IN_PIECES_FROM = 2048
_PIECE = 1024

_pendings = PendingTransfer.__table__


def _chunks(values: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# Driver-level SQL on the hot path: SQLAlchemy Core costs microseconds per bound value, and a
# batch binds tens of thousands. PostgreSQL gets whole columns as binary arrays (``%b``);
# SQLite gets id lists as one JSON text (``json_each``), so neither has a parameter limit.
_ACCOUNT_STATE = (  # the fields of AccountState, in order
    "id",
    "ledger",
    "debits_must_not_exceed_credits",
    "credits_must_not_exceed_debits",
    "closed",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
)
_TRANSFER_COLUMNS = (
    "id",
    "institution_id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "ledger",
    "code",
    "flags",
    "pending_id",
    "timeout",
    "reference",
    "metadata",
    "timestamp",
)
_TRANSFER_LIST = ", ".join(_TRANSFER_COLUMNS)

# Rows come locked in ascending id order (LockRows sits above the ORDER BY), so concurrent
# batches queue instead of deadlocking. Id arrays are joined, never filtered with
# ``= ANY(…)``: psycopg prepares a statement run five times, and a generic plan that scans a
# table testing each row against an 8,190-element array takes seconds; a join probes the
# primary key whatever the plan. The arrays are hidden from the planner (``pgarrays.unnest``),
# so that it keeps that generic plan instead of planning each execution anew.
_PG_LOCK_ACCOUNTS = f"""
SELECT {", ".join("a." + c for c in _ACCOUNT_STATE)}
FROM {unnest(("ids", "uuid"))} AS wanted(id) JOIN ledger_accounts AS a ON a.id = wanted.id
WHERE a.institution_id = %(institution_id)b::uuid
ORDER BY a.id FOR NO KEY UPDATE OF a
"""
_SQLITE_LOCK_ACCOUNTS = f"""
SELECT {", ".join(_ACCOUNT_STATE)} FROM ledger_accounts
WHERE id IN (SELECT value FROM json_each(?)) AND institution_id = ?
ORDER BY id
"""
_PG_LOAD_TRANSFERS = f"""
SELECT {", ".join("t." + c for c in _TRANSFER_COLUMNS)}
FROM {unnest(("ids", "uuid"))} AS wanted(id) JOIN ledger_transfers AS t ON t.id = wanted.id
"""
_SQLITE_LOAD_TRANSFERS = (
    f"SELECT {_TRANSFER_LIST} FROM ledger_transfers WHERE id IN (SELECT value FROM json_each(?))"
)


def lock_accounts(
    session: Session, institution_id: uuid.UUID, account_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, AccountState]:
    """Lock the accounts (PostgreSQL: ``FOR NO KEY UPDATE`` in ascending id order; SQLite:
    the transaction's ``BEGIN IMMEDIATE`` already holds the database) and read their state."""
    ids = list(account_ids)
    if not ids:
        return {}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        locked = pg_execute(
            session, _PG_LOCK_ACCOUNTS, {"ids": uuid_array(ids), "institution_id": institution_id}
        )
        return {row[0]: AccountState(*row) for row in locked}
    rows = connection.exec_driver_sql(_SQLITE_LOCK_ACCOUNTS, (_json_ids(ids), institution_id.hex))
    return {
        account.id: account
        for account in (
            AccountState(uuid.UUID(r[0]), r[1], bool(r[2]), bool(r[3]), bool(r[4]), *r[5:])
            for r in rows
        )
    }


def load_transfers(
    session: Session, institution_id: uuid.UUID | None, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TransferRecord]:
    """The stored transfers with these ids (of one institution, or of any)."""
    wanted = list(ids)
    if not wanted:
        return {}
    connection = session.connection()
    found: dict[uuid.UUID, TransferRecord] = {}
    if connection.dialect.name == "postgresql":
        query, params = _PG_LOAD_TRANSFERS, {"ids": uuid_array(wanted)}
        if institution_id is not None:
            query += " WHERE t.institution_id = %(institution_id)b::uuid"
            params["institution_id"] = institution_id  # type: ignore[assignment]
        for row in pg_execute(session, query, params):
            found[row[0]] = TransferRecord(*row[:12], row[12].astimezone(UTC))
        return found
    query = _SQLITE_LOAD_TRANSFERS
    args: tuple[str, ...] = (_json_ids(wanted),)
    if institution_id is not None:
        query += " AND institution_id = ?"
        args += (institution_id.hex,)
    for r in connection.exec_driver_sql(query, args):
        transfer_id = uuid.UUID(r[0])
        found[transfer_id] = TransferRecord(
            transfer_id,
            uuid.UUID(r[1]),
            uuid.UUID(r[2]),
            uuid.UUID(r[3]),
            r[4],
            r[5],
            r[6],
            r[7],
            None if r[8] is None else uuid.UUID(r[8]),
            r[9],
            r[10],
            None if r[11] is None else json.loads(r[11]),
            datetime.fromisoformat(r[12]).replace(tzinfo=UTC),
        )
    return found


def _json_ids(ids: Iterable[uuid.UUID]) -> str:
    """Ids as SQLite stores them (32 hex digits), as a JSON array for ``json_each``."""
    return json.dumps([i.hex for i in ids])


def load_pending_states(
    session: Session, resolving: Iterable[uuid.UUID], known: Mapping[uuid.UUID, TransferRecord]
) -> dict[uuid.UUID, PendingState]:
    """The states of the pendings a batch resolves that are stored (in ``known``)."""
    c = _pendings.c
    found: dict[uuid.UUID, PendingState] = {}
    for chunk in _chunks(sorted(p for p in resolving if p in known)):
        rows = session.execute(
            select(c.pending_id, c.status, c.expires_at, c.resolved_by, c.resolved_at).where(
                c.pending_id.in_(chunk)
            )
        )
        for pid, status, expires_at, resolved_by, resolved_at in rows:
            found[pid] = PendingState(
                pid, PendingStatus(status), expires_at, resolved_by, resolved_at
            )
    return found


def _touched(outcome: BatchOutcome, accounts: dict[uuid.UUID, AccountState]) -> list[AccountState]:
    touched = outcome.touched_accounts
    return [a for a in accounts.values() if a.id in touched]  # ascending, as locked


# One statement, one round trip: the check that no id of the batch is stored (when asked),
# the new transfers and the new balances. Each write happens only if the check finds nothing.
# Batches this small send the new transfers as one JSON text (``json_to_recordset``) instead of
# thirteen arrays, each of which costs the driver more to encode than the row costs the
# database; large batches go in pieces as binary arrays (``decide_and_write_in_pieces``),
# which PostgreSQL reads faster than JSON. The balances stay arrays: the planner expects 100
# rows of ``json_to_recordset`` and would join them to the accounts by scanning the whole
# table, where it expects a handful of a hidden array's (``pgarrays.unnest``) and probes.
_PG_TAKEN = f"""
SELECT 1 FROM {unnest(("check_ids", "uuid"))} AS given(id)
JOIN ledger_transfers AS t ON t.id = given.id LIMIT 1
"""
_PG_INSERT_TRANSFERS_JSON = f"""
INSERT INTO ledger_transfers ({_TRANSFER_LIST})
SELECT {_TRANSFER_LIST} FROM json_to_recordset(%(transfers)s::json)
    AS v(id uuid, institution_id uuid, debit_account_id uuid, credit_account_id uuid,
         amount bigint, ledger varchar, code int, flags int, pending_id uuid, timeout int,
         reference varchar, metadata json, timestamp timestamptz)
"""
_PG_UPDATE_BALANCES = f"""
UPDATE ledger_accounts AS a
SET debits_pending = v.dp, debits_posted = v.dpo, credits_pending = v.cp, credits_posted = v.cpo
FROM {
    unnest(
        ("account", "uuid"),
        ("dp", "bigint"),
        ("dpo", "bigint"),
        ("cp", "bigint"),
        ("cpo", "bigint"),
    )
} AS v(id, dp, dpo, cp, cpo)
WHERE a.id = v.id
"""
_PG_CHECK_AND_WRITE = f"""
WITH taken AS MATERIALIZED ({_PG_TAKEN}),
inserted AS ({_PG_INSERT_TRANSFERS_JSON} WHERE NOT EXISTS (SELECT 1 FROM taken)),
balanced AS ({_PG_UPDATE_BALANCES} AND NOT EXISTS (SELECT 1 FROM taken))
SELECT EXISTS (SELECT 1 FROM taken)
"""
_PG_WRITE = f"""
WITH inserted AS ({_PG_INSERT_TRANSFERS_JSON}),
balanced AS ({_PG_UPDATE_BALANCES})
SELECT false
"""
_PG_CHECK = f"SELECT EXISTS ({_PG_TAKEN})"
# The binary-array form of the insert, for the pieces of a large batch.
_PG_INSERT_TRANSFERS = f"""
INSERT INTO ledger_transfers ({_TRANSFER_LIST})
SELECT v.id, %(institution_id)b::uuid, v.debit, v.credit, v.amount, v.ledger, v.code, v.flags,
    v.pending_id, v.timeout, v.reference, v.metadata, v.stamp
FROM unnest(%(id)b::uuid[], %(debit)b::uuid[], %(credit)b::uuid[], %(amount)b::bigint[],
    %(ledger)b::varchar[], %(code)b::int[], %(flags)b::int[], %(pending_id)b::uuid[],
    %(timeout)b::int[], %(reference)b::varchar[], %(metadata)b::json[],
    %(timestamp)b::timestamptz[])
    AS v(id, debit, credit, amount, ledger, code, flags, pending_id, timeout, reference,
         metadata, stamp)
"""


def write_postgres(
    session: Session,
    outcome: BatchOutcome,
    accounts: dict[uuid.UUID, AccountState],
    *,
    check_ids: list[uuid.UUID] | None,
) -> bool:
    """Write the outcome; with ``check_ids``, only if none of them is stored. True if written."""
    created = outcome.created
    params: dict[str, Any] = {}
    if check_ids is not None:
        params["check_ids"] = uuid_array(check_ids)
    if created:
        params["transfers"] = orjson.dumps(created).decode()
        params.update(_balance_params(_touched(outcome, accounts)))
        query = _PG_WRITE if check_ids is None else _PG_CHECK_AND_WRITE
    elif check_ids is not None:
        query = _PG_CHECK
    else:
        return True
    (taken,) = pg_execute(session, query, params).fetchone() or (False,)
    if taken:
        return False
    _write_pendings(session, outcome)
    _expire(session, outcome)
    return True


def _transfer_params(
    institution_id: uuid.UUID, created: Sequence[TransferRecord]
) -> dict[str, Any]:
    return {
        "institution_id": institution_id,
        "id": uuid_array([r.id for r in created]),
        "debit": uuid_array([r.debit_account_id for r in created]),
        "credit": uuid_array([r.credit_account_id for r in created]),
        "amount": int8_array([r.amount for r in created]),
        "ledger": [r.ledger for r in created],
        "code": int4_array([r.code for r in created]),
        "flags": int4_array([r.flags for r in created]),
        "pending_id": [r.pending_id for r in created],
        "timeout": int4_array([r.timeout for r in created]),
        "reference": [r.reference for r in created],
        "metadata": [
            None if r.metadata is None else json.dumps(r.metadata, ensure_ascii=False)
            for r in created
        ],
        "timestamp": [r.timestamp for r in created],
    }


def _balance_params(touched: Sequence[AccountState]) -> dict[str, Any]:
    return {
        "account": uuid_array([a.id for a in touched]),
        "dp": int8_array([a.debits_pending for a in touched]),
        "dpo": int8_array([a.debits_posted for a in touched]),
        "cp": int8_array([a.credits_pending for a in touched]),
        "cpo": int8_array([a.credits_posted for a in touched]),
    }


def decide_and_write_in_pieces(
    session: Session,
    institution_id: uuid.UUID,
    batch: Sequence[TransferInput],
    accounts: dict[uuid.UUID, AccountState],
    known: dict[uuid.UUID, TransferRecord],
    resolving: set[uuid.UUID],
    now: datetime,
    foreign: frozenset[uuid.UUID],
) -> list[TransferResult]:
    """A large batch on PostgreSQL, decided piece by piece while the database stores the
    pieces already decided: the rules (Python) and the inserts (PostgreSQL) then run on two
    cores at once instead of one after the other.

    Pieces end only where a linked chain ends, and each piece is decided with everything the
    earlier pieces did (account states, created transfers, pending states) and its offset in
    the batch (``first_index``), so each item gets the index, the timestamp and the result the
    whole batch would give it (``engine``: every item is stamped ``now`` plus its index). The
    inserts go down a psycopg pipeline without waiting; the balances and the pending states
    are written once at the end.
    """
    states = load_pending_states(session, resolving, known)
    known = dict(known)
    results: list[TransferResult] = []
    created: list[TransferRecord] = []
    new_pendings: dict[uuid.UUID, PendingState] = {}
    resolved: dict[uuid.UUID, PendingState] = {}
    touched: set[uuid.UUID] = set()
    driver = psycopg_connection(session)
    with driver_errors(session, "pipelined ledger writes"), driver.pipeline():
        for start, end in _pieces(batch):
            outcome = engine.process_batch(
                institution_id=institution_id,
                batch=batch[start:end],
                accounts=accounts,
                known_transfers=known,
                pending_states=states,
                now=now,
                foreign_ids=foreign,
                first_index=start,
            )
            if outcome.created:
                driver.execute(
                    _PG_INSERT_TRANSFERS, _transfer_params(institution_id, outcome.created)
                )
            for record in outcome.created:
                known[record.id] = record
            created += outcome.created
            touched |= outcome.touched_accounts
            for state in outcome.new_pendings:
                states[state.pending_id] = new_pendings[state.pending_id] = state
            for state in outcome.resolved_pendings:
                resolved[state.pending_id] = state
            results += outcome.results
        if touched:
            driver.execute(
                _PG_UPDATE_BALANCES,
                _balance_params([a for a in accounts.values() if a.id in touched]),
            )
    outcome = BatchOutcome(
        results=results,
        created=created,
        new_pendings=list(new_pendings.values()),
        # A pending created by this batch is inserted with its final state.
        resolved_pendings=[s for pid, s in resolved.items() if pid not in new_pendings],
        touched_accounts=touched,
    )
    _write_pendings(session, outcome)
    _expire(session, outcome)
    return results


_TRANSFERS_KEY = "pk_ledger_transfers"


def unless_an_id_is_stored(session: Session, write: Callable[[], T]) -> T | None:
    """``write()`` in a savepoint; None, with nothing of it kept, if the primary key of the
    transfers refused one of its ids (any other error is raised)."""
    try:
        with session.begin_nested():
            return write()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != _TRANSFERS_KEY:
            raise
        return None


def _pieces(batch: Sequence[TransferInput]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of pieces of about ``_PIECE`` items, never splitting a linked chain."""
    start, count = 0, len(batch)
    while start < count:
        end = min(start + _PIECE, count)
        while end < count and batch[end - 1].flags & _LINKED_BIT:
            end += 1
        yield start, end
        start = end


_SQLITE_INSERT_TRANSFERS = (
    f"INSERT INTO ledger_transfers ({_TRANSFER_LIST}) VALUES ({', '.join('?' * 13)})"
)
_SQLITE_UPDATE_BALANCES = (
    "UPDATE ledger_accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, "
    "credits_posted = ? WHERE id = ?"
)


def write_sqlite(
    session: Session, outcome: BatchOutcome, accounts: dict[uuid.UUID, AccountState]
) -> None:
    """The same rows in SQLAlchemy's SQLite storage formats: UUIDs as 32 hex digits, times as
    naive UTC text, JSON as text (``None`` as JSON ``null``, as the JSON type stores it)."""
    if not outcome.created:
        return
    connection = session.connection()
    connection.exec_driver_sql(
        _SQLITE_INSERT_TRANSFERS,
        [
            (
                r.id.hex,
                r.institution_id.hex,
                r.debit_account_id.hex,
                r.credit_account_id.hex,
                r.amount,
                r.ledger,
                r.code,
                r.flags,
                None if r.pending_id is None else r.pending_id.hex,
                r.timeout,
                r.reference,
                json.dumps(r.metadata),
                r.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            )
            for r in outcome.created
        ],
    )
    _write_pendings(session, outcome)
    connection.exec_driver_sql(
        _SQLITE_UPDATE_BALANCES,
        [
            (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.id.hex)
            for a in _touched(outcome, accounts)
        ],
    )
    _expire(session, outcome)


def _write_pendings(session: Session, outcome: BatchOutcome) -> None:
    """Pending-transfer states (two-phase batches only; rare enough for Core)."""
    new_pendings, resolved = outcome.new_pendings, outcome.resolved_pendings
    if new_pendings:
        institution_of = {r.id: r.institution_id for r in outcome.created}
        session.execute(
            insert(_pendings),
            [
                {
                    "pending_id": s.pending_id,
                    "institution_id": institution_of[s.pending_id],
                    "status": str(s.status),
                    "expires_at": s.expires_at,
                    "resolved_by": s.resolved_by,
                    "resolved_at": s.resolved_at,
                }
                for s in new_pendings
            ],
        )
    if resolved:
        c = _pendings.c
        session.execute(
            update(_pendings)
            .where(c.pending_id == bindparam("b_pending_id"))
            .values(
                status=bindparam("b_status"),
                resolved_by=bindparam("b_resolved_by"),
                resolved_at=bindparam("b_resolved_at"),
            ),
            [
                {
                    "b_pending_id": s.pending_id,
                    "b_status": str(s.status),
                    "b_resolved_by": s.resolved_by,
                    "b_resolved_at": s.resolved_at,
                }
                for s in resolved
            ],
        )


def _expire(session: Session, outcome: BatchOutcome) -> None:
    """Driver statements bypass the ORM: loaded accounts and pending states must re-read what
    was written. Only those are expired, so the caller's other objects stay intact."""
    if not session.identity_map:
        return
    touched = outcome.touched_accounts
    resolved = {s.pending_id for s in outcome.resolved_pendings}
    for key in list(session.identity_map.keys()):
        model, (primary_key, *_) = key[0], key[1]
        if (model is Account and primary_key in touched) or (
            model is PendingTransfer and primary_key in resolved
        ):
            loaded = session.identity_map.get(key)
            if loaded is not None:
                session.expire(loaded)
