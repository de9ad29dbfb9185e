"""Where the nonces of accepted signed requests are remembered, so a replay is refused.

A nonce has to be remembered only while its request's timestamp is inside the acceptance
window: after that the timestamp check refuses a replay by itself. So a nonce is kept until
``timestamp + window`` and then forgotten. Claiming a nonce is one atomic step that either
records it or reports that it was already there; two copies of a request arriving at once
cannot both win.

Two stores, chosen by configuration:

* :class:`DatabaseNonceStore` (the default): the ``terminal_nonces`` table, primary key
  (terminal, nonce), ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have
  it); the claim is part of the authentication transaction. Each claim first deletes the
  terminal's expired nonces, so the table holds about one window of traffic per terminal;
  ``purge_expired`` sweeps terminals that went quiet (``huinong terminal purge-nonces``).
* :class:`RedisNonceStore` when ``HUINONG_REDIS_URL`` is set: ``SET key 1 NX EX ttl``, which
  Redis expires by itself. It takes the nonce traffic off the database of a busy deployment
  and serves several API workers alike. A claim is not undone if the database transaction
  around it fails later: the terminal signs a fresh request, as the protocol asks anyway.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from huinong.errors import ServiceUnavailable
from huinong.security.terminals.models import TerminalNonce

REDIS_KEY_PREFIX = "huinong:terminal-nonce:"


class NonceStore(Protocol):
    def claim(
        self,
        session: Session,
        *,
        institution_id: uuid.UUID,
        terminal_id: uuid.UUID,
        nonce: str,
        expires_at: datetime,
        now: datetime,
    ) -> bool:
        """Record ``nonce`` for the terminal until ``expires_at``; ``False`` if it was
        already recorded (a replay)."""
        ...


class DatabaseNonceStore:
    def claim(
        self,
        session: Session,
        *,
        institution_id: uuid.UUID,
        terminal_id: uuid.UUID,
        nonce: str,
        expires_at: datetime,
        now: datetime,
    ) -> bool:
        session.execute(
            delete(TerminalNonce).where(
                TerminalNonce.terminal_id == terminal_id, TerminalNonce.expires_at < now
            )
        )
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(TerminalNonce)
            .values(
                terminal_id=terminal_id,
                nonce=nonce,
                institution_id=institution_id,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing()
            # RETURNING rather than rowcount: SQLAlchemy over psycopg reports -1 as the
            # rowcount of this INSERT; a row that comes back is unambiguous on both databases.
            .returning(TerminalNonce.nonce)
        )
        return session.execute(statement).scalar() is not None


class RedisNonceStore:
    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> RedisNonceStore:
        return cls(_redis_client(url))

    def claim(
        self,
        session: Session,
        *,
        institution_id: uuid.UUID,
        terminal_id: uuid.UUID,
        nonce: str,
        expires_at: datetime,
        now: datetime,
    ) -> bool:
        import redis

        ttl = max(1, math.ceil((expires_at - now).total_seconds()))
        try:
            created = self.client.set(
                f"{REDIS_KEY_PREFIX}{terminal_id}:{nonce}", b"1", nx=True, ex=ttl
            )
        except redis.RedisError as exc:
            raise ServiceUnavailable(
                "terminals.nonce_store_unavailable",
                "the nonce store (Redis) does not answer; try again shortly",
            ) from exc
        return bool(created)


@lru_cache(maxsize=4)
def _redis_client(url: str) -> Any:
    # One connection pool per URL for the process; redis-py's client is thread-safe.
    import redis

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def store_for(redis_url: str | None) -> NonceStore:
    """Redis when a URL is configured, else the database."""
    if redis_url:
        return RedisNonceStore.from_url(redis_url)
    return DatabaseNonceStore()


def purge_expired(session: Session, *, now: datetime) -> int:
    """Delete the database's expired nonces of every terminal; returns how many."""
    result: Any = session.execute(delete(TerminalNonce).where(TerminalNonce.expires_at < now))
    return int(result.rowcount or 0)
