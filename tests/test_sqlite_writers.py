"""SQLite transactions queue for the database (``huinong.db.SqliteWriters``): threads of a
process in turn, other processes by ``BEGIN IMMEDIATE`` tried again until a deadline; the
queue moves on after every commit, rollback and close, and a wait that runs out fails as
"database is locked", which entry points retry."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from huinong import db
from huinong.db import make_engine, make_session_factory, run_in_transaction, transaction


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT n FROM counter")).scalar_one()


def _increment(session) -> None:  # type: ignore[no-untyped-def]
    # Read, think, write: a lost update would show if two transactions overlapped.
    n = session.execute(text("SELECT n FROM counter")).scalar_one()
    time.sleep(0.0005)
    session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})


def test_threads_take_turns_and_lose_no_update(sqlite_engine: Engine) -> None:
    factory = make_session_factory(sqlite_engine)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(40):
                run_in_transaction(factory, _increment)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(sqlite_engine) == 8 * 40


def test_the_queue_moves_on_after_a_rollback_and_a_close(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder that never let go would make the next transaction wait out the deadline and
    fail; here each one begins at once."""
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 1.0)
    factory = make_session_factory(sqlite_engine)
    with pytest.raises(ZeroDivisionError), transaction(factory) as session:
        _increment(session)
        _ = 1 / 0
    connection = sqlite_engine.connect()
    connection.execute(text("UPDATE counter SET n = n + 100"))
    connection.invalidate()  # closed in the middle of its transaction
    for _ in range(3):
        run_in_transaction(factory, _increment)
    assert _count(sqlite_engine) == 3


def test_another_process_is_waited_for(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Another process's transaction (a plain sqlite3 connection here) holds the database;
    ours begins once it commits, and sees its write."""
    other = sqlite3.connect(tmp_path / "queue.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE counter SET n = 41")
    releaser = threading.Timer(0.3, other.execute, args=("COMMIT",))
    releaser.start()
    try:
        run_in_transaction(make_session_factory(sqlite_engine), _increment, attempts=1)
    finally:
        releaser.join()
        other.close()
    assert _count(sqlite_engine) == 42


def test_a_wait_that_runs_out_is_database_is_locked(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind another process or behind another thread of this one, the same error, which
    ``run_in_transaction`` retries."""
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    factory = make_session_factory(sqlite_engine)
    other = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked") as raised:
            run_in_transaction(factory, _increment, attempts=1)
        assert db._is_retryable(raised.value)
    finally:
        other.rollback()
        other.close()

    failures: list[BaseException] = []

    def behind() -> None:
        try:
            run_in_transaction(factory, _increment, attempts=1)
        except OperationalError as exc:
            failures.append(exc)

    with transaction(factory) as holder:
        _increment(holder)
        waiter = threading.Thread(target=behind)
        waiter.start()
        waiter.join()
    assert len(failures) == 1 and "database is locked" in str(failures[0])
    assert db._is_retryable(failures[0])  # type: ignore[arg-type]
    assert _count(sqlite_engine) == 1
