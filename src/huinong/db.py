"""Database plumbing shared by every domain: the declarative base, engines, transactions.

Two backends, one code path. SQLite (a file under ``var/``) is the embedded default;
PostgreSQL (psycopg 3) is production. What differs is handled here:

* SQLite runs in WAL mode with foreign keys on, and every transaction starts with
  ``BEGIN IMMEDIATE`` so writers queue for the database lock at the start instead of failing
  with "database is locked" half-way through a use case.
* On PostgreSQL, writers lock the rows they change with ``SELECT … FOR NO KEY UPDATE`` in a
  fixed order (the ledger sorts account ids), which rules out deadlocks between use cases.

A use case is one transaction owned by its entry point (:func:`transaction`), never by a
service: services ``flush``, entry points commit. :func:`transaction` retries the whole unit
when the database reports a transient conflict (deadlock, serialization failure, or a unique
key raced by a concurrent writer — on retry the winner's row is visible and the use case
answers as for a repeat).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

from huinong import pgarrays

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL; on SQLite, which has no zones, stored as UTC and read
    back timezone-aware. Naive datetimes are refused: they are a bug waiting to happen."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# How long a transaction waits for others to release an SQLite database, and how often the
# first in line looks while it waits for another process.
SQLITE_BUSY_SECONDS = 60.0
SQLITE_BUSY_POLL_SECONDS = (0.0001, 0.002)  # first, then doubling up to the last


def _busy_timeout_pragma() -> str:
    return f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}"


class SqliteWriters:
    """One transaction at a time on an SQLite database, queued instead of slept on.

    Every transaction takes the database with ``BEGIN IMMEDIATE``, so writers queue at the
    start instead of failing half-way. Left to SQLite, a waiter sleeps ever longer between
    tries (1, 2, 5 … 100 ms): under a steady stream of requests one could wait 100 ms after
    the database was free, and single transfers over HTTP had a p99 of 180–330 ms. Here the
    threads of a process queue on a lock that passes on the moment its holder's connection
    commits, rolls back or closes; only the thread at the head waits for other processes,
    looking again within 2 ms. The whole wait is bounded by ``SQLITE_BUSY_SECONDS``, after
    which the transaction fails with "database is locked", which entry points retry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None  # id() of the DBAPI connection in a transaction

    def begin(self, dbapi_connection: sqlite3.Connection) -> None:
        deadline = time.monotonic() + SQLITE_BUSY_SECONDS
        if not self._lock.acquire(timeout=SQLITE_BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        self._holder = id(dbapi_connection)
        try:
            _begin_immediate(dbapi_connection, deadline)
        except BaseException:
            self.release(dbapi_connection)
            raise

    def release(self, dbapi_connection: sqlite3.Connection) -> None:
        """After the connection's commit, rollback or close: the next in line may begin."""
        if self._holder == id(dbapi_connection):
            self._holder = None
            self._lock.release()


def _begin_immediate(dbapi_connection: sqlite3.Connection, deadline: float) -> None:
    """``BEGIN IMMEDIATE`` against other processes, trying again every 2 ms at most until
    ``deadline``; the connection's busy timeout stays in force for every other statement."""
    delay, longest = SQLITE_BUSY_POLL_SECONDS
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, longest)
    finally:
        dbapi_connection.execute(_busy_timeout_pragma())


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(_busy_timeout_pragma())
        cursor.close()

    # The dialect's own hooks rather than engine events: BEGIN runs where SQLAlchemy turns a
    # driver error into its own (so "database is locked" is retried), and the queue moves on
    # only once COMMIT or ROLLBACK has run, which no event follows.
    writers = SqliteWriters()
    dialect = engine.dialect
    close = dialect.do_close

    def driver(connection: Any) -> sqlite3.Connection:
        return getattr(connection, "dbapi_connection", connection)  # a pool's proxy or itself

    def then_next_in_line(finish: Callable[[Any], None]) -> Callable[[Any], None]:
        def end(connection: Any) -> None:  # COMMIT or ROLLBACK
            try:
                finish(connection)
            finally:
                if not driver(connection).in_transaction:
                    writers.release(driver(connection))

        return end

    def do_close(connection: Any) -> None:
        writers.release(driver(connection))
        close(connection)

    dialect.do_begin = lambda connection: writers.begin(driver(connection))  # type: ignore[method-assign]
    dialect.do_commit = then_next_in_line(dialect.do_commit)  # type: ignore[method-assign]
    dialect.do_rollback = then_next_in_line(dialect.do_rollback)  # type: ignore[method-assign]
    dialect.do_close = do_close  # type: ignore[method-assign]


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _prepare_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", lambda connection, _record: pgarrays.register(connection))
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


# A pooled connection unused for longer than this is pinged before it is handed out. A busy
# server reuses its connections within milliseconds, and pinging those (``pool_pre_ping``)
# would add a round trip to every transaction for nothing; an idle one may have been closed
# by a restarted or failed-over server, or a proxy's idle timeout, while it sat in the pool.
IDLE_PING_SECONDS = 2.0


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards the connection and hands out a fresh one.
            raise DisconnectionError("a pooled connection failed its ping") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}


def _is_retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    if isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


T = TypeVar("T")


def run_in_transaction(
    factory: sessionmaker[Session], work: Callable[[Session], T], *, attempts: int = 5
) -> T:
    """Run ``work`` as one transaction; retry it whole on transient conflicts."""
    for attempt in range(1, attempts + 1):
        try:
            with factory() as session, session.begin():
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts or not _is_retryable(exc):
                raise
            log.info("transient database conflict, retrying (attempt %d)", attempt)
            time.sleep(0.002 * attempt)
    raise AssertionError("unreachable")


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction without retry, for scripts and tests."""
    with factory() as session, session.begin():
        yield session


# --------------------------------------------------------------------------- driver-level SQL


def psycopg_connection(session: Session) -> psycopg.Connection[Any]:
    """The session's PostgreSQL connection as psycopg's, in the session's transaction."""
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


@contextmanager
def driver_errors(session: Session, what: str) -> Iterator[None]:
    """psycopg's errors raised as SQLAlchemy raises driver errors (``IntegrityError``,
    ``OperationalError``… with the SQLSTATE on ``orig``), so that entry points retry what is
    transient whichever way a statement went."""
    try:
        yield
    except psycopg.Error as exc:
        dialect = session.get_bind().dialect
        raise DBAPIError.instance(what, None, exc, psycopg.Error, dialect=dialect) from exc


def pg_execute(session: Session, statement: str, params: dict[str, Any]) -> psycopg.Cursor[Any]:
    """Driver-level SQL on PostgreSQL, straight on psycopg's connection in the session's
    transaction, for the statements on the path of every money movement. SQLAlchemy's
    ``exec_driver_sql`` would build a result's metadata from the cursor's description each
    time: about 80 µs of a worker's CPU per statement on the project's machine."""
    with driver_errors(session, statement):
        return psycopg_connection(session).execute(statement, params)


# --------------------------------------------------------------------------- writes at commit


@dataclass(frozen=True)
class CommitWrite:
    """A kind of row that a use case appends and nothing reads back before commit: an audit
    record, the stored response of an idempotent request.

    :func:`write_at_commit` keeps the rows on the session; when the transaction commits they
    are written together, so they exist exactly when the use case's effects do. On PostgreSQL
    every kind the transaction queued goes in **one** statement — each kind a data-modifying
    ``WITH`` part — which saves a round trip per kind on the path of every money movement.
    Each kind takes its rows as one JSON text (``json_to_recordset``), which costs the driver
    far less than an array per column. SQLite, in-process, has no round trips to save and
    runs each kind's portable statement with the rows.

    * ``name``: unique; the name of the JSON parameter of ``postgres``.
    * ``postgres``: the INSERT reading ``json_to_recordset(%(<name>)s::json)``. Insert only:
      the planner expects 100 rows of a function and would join them to a table by scanning
      it whole.
    * ``portable``: a Core statement executed with the rows (executemany) elsewhere, and
      inside a savepoint, where a row is written at once so that rolling the savepoint back
      takes it along.
    * ``postgres_row``: what a row becomes in the JSON, where it holds what JSON cannot.
    """

    name: str
    postgres: str
    portable: Executable
    postgres_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None


# session.info key: (the outermost transaction, {write name: (write, rows)}).
_COMMIT_WRITES = "huinong.db.commit_writes"
_combined: dict[tuple[str, ...], str] = {}


def write_at_commit(session: Session, write: CommitWrite, row: dict[str, Any]) -> None:
    """Queue ``row`` to be written when the session's transaction commits (see
    :class:`CommitWrite`); nothing is written if it rolls back."""
    transaction = session.get_transaction()
    if transaction is None or session.in_nested_transaction():
        session.execute(write.portable, [row])
        return
    queued = session.info.get(_COMMIT_WRITES)
    if queued is None or queued[0] is not transaction:
        queued = session.info[_COMMIT_WRITES] = (transaction, {})
    entry = queued[1].get(write.name)
    if entry is None:
        queued[1][write.name] = (write, [row])
    else:
        entry[1].append(row)


def flush_commit_writes(session: Session) -> int:
    """Write the queued rows now; how many. Called at commit, and by anything that reads
    such rows in the transaction that queued them."""
    queued = session.info.pop(_COMMIT_WRITES, None)
    if queued is None or queued[0] is not session.get_transaction() or not queued[1]:
        return 0  # nothing, or left over from a transaction that ended without commit
    kinds = list(queued[1].values())
    if is_postgres(session):
        names = tuple(write.name for write, _ in kinds)
        statement = _combined.get(names)
        if statement is None:
            parts = [f"{write.name} AS ({write.postgres})" for write, _ in kinds]
            statement = _combined[names] = f"WITH {', '.join(parts)} SELECT 1"
        params = {
            write.name: orjson.dumps(
                rows if write.postgres_row is None else [write.postgres_row(r) for r in rows],
                option=orjson.OPT_NON_STR_KEYS,
            ).decode()
            for write, rows in kinds
        }
        pg_execute(session, statement, params)
    else:
        for write, rows in kinds:
            session.execute(write.portable, rows)
    return sum(len(rows) for _, rows in kinds)


@event.listens_for(Session, "before_commit")
def _write_on_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # releasing a savepoint is not the commit
        flush_commit_writes(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction: committed or rolled back
        session.info.pop(_COMMIT_WRITES, None)
