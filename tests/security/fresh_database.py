"""A database of a test's own, migrated to a chosen revision, on either backend.

Key rotation touches every encrypted row of a database and the raw-file checks read a whole
database file, so those tests cannot share the session's database with everyone else: each
gets a fresh SQLite file or a fresh PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import make_engine, make_session_factory
from huinong.migrations import upgrade
from tests.conftest import POSTGRES_URL


@dataclass
class FreshDatabase:
    backend: str
    url: str
    engine: Engine
    factory: sessionmaker[Session]
    path: Path | None  # the SQLite file
    schema: str | None  # the PostgreSQL schema

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self.url, revision)


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path: Path, revision: str = "head") -> Iterator[FreshDatabase]:
    """``backend`` comes from the suite's ``backend`` fixture, which skips PostgreSQL when it
    is not configured."""
    if backend == "sqlite":
        path = tmp_path / f"fresh-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url, revision)
        engine = make_engine(url)
        try:
            yield FreshDatabase(backend, url, engine, make_session_factory(engine), path, None)
        finally:
            engine.dispose()
        return
    assert POSTGRES_URL
    schema = f"huinong_fresh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    engine = make_engine(url, pool_size=2, max_overflow=2)
    try:
        upgrade(url, revision)
        yield FreshDatabase(backend, url, engine, make_session_factory(engine), None, schema)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
