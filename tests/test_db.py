"""Database plumbing: a pooled connection is pinged only after sitting idle, and one that the
server closed meanwhile is replaced, never handed to a use case."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from huinong import db
from huinong.db import make_engine, make_session_factory, run_in_transaction


@pytest.fixture
def private_engine(engine: Engine, backend: str) -> Iterator[Engine]:
    if backend != "postgresql":
        pytest.skip("a server that closes pooled connections is PostgreSQL's case")
    own = make_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    yield own
    own.dispose()


@pytest.fixture
def pings(private_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    real = private_engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(private_engine.dialect, "do_ping", counting)
    return seen


def _backend_pid(engine: Engine) -> int:
    return run_in_transaction(
        make_session_factory(engine), lambda s: s.execute(text("SELECT pg_backend_pid()")).scalar()
    )


def test_a_connection_closed_while_idle_is_replaced(
    private_engine: Engine, engine: Engine, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(private_engine)
    with engine.connect() as admin:
        killed = admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        assert killed.scalar()
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    second = _backend_pid(private_engine)  # the dead connection would fail here
    assert second != first
    assert len(pings) == 1


def test_a_connection_in_steady_use_is_not_pinged(
    private_engine: Engine, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    pid = _backend_pid(private_engine)
    assert [_backend_pid(private_engine) for _ in range(3)] == [pid] * 3
    assert pings == []
