"""Idempotency keys for calls that move money.

A client sends an ``Idempotency-Key`` with every money-moving request. The first request
with a key stores a fingerprint of the request (method, path, body) and the response it got,
in the same transaction as the business writes — so a response is stored if and only if its
effects are. A repeat with the same fingerprint gets the stored response back; a repeat with
another fingerprint is refused (409). Keys are scoped by institution.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from huinong import clock
from huinong.db import Base, UTCDateTime
from huinong.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 128


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    institution_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidInput(
            "request.idempotency_key_required",
            "send an Idempotency-Key header (a UUID is best) with every call that moves money",
            field="Idempotency-Key",
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            "request.idempotency_key_invalid",
            f"an Idempotency-Key is at most {MAX_KEY_LENGTH} printable characters",
            field="Idempotency-Key",
        )
    return key


def _conflict() -> Conflict:
    return Conflict(
        "request.idempotency_key_reused",
        "this Idempotency-Key was used for a different request; use a new key",
        field="Idempotency-Key",
    )


@dataclass(frozen=True)
class Claim:
    """The key is this request's: run the use case, then ``complete`` the claim."""

    institution_id: uuid.UUID
    key: str


def claim_or_replay(
    session: Session, *, institution_id: uuid.UUID, key: str, request_fingerprint: str
) -> Claim | StoredResponse:
    """Take the key for this request before its use case runs, or find the response of the
    request that took it — in one statement when the key is new.

    The claim is ``INSERT … ON CONFLICT DO NOTHING``. A concurrent request inserting the same
    key waits on the primary key until the holder's transaction ends: if the holder committed,
    the insert does nothing and the stored response is read and replayed (a different request
    under the same key is a 409); if it rolled back, the key is free and the insert takes it.
    """
    table = IdempotencyRecord.__table__
    values = {
        "institution_id": institution_id,
        "key": key,
        "fingerprint": request_fingerprint,
        "status_code": 0,
        "response": {},
        "created_at": clock.now(),
    }
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = session.execute(
        dialect_insert(table).values(**values).on_conflict_do_nothing().returning(table.c.key)
    ).first()
    if claimed is not None:
        return Claim(institution_id, key)
    stored = session.execute(
        select(table.c.fingerprint, table.c.status_code, table.c.response).where(
            table.c.institution_id == institution_id, table.c.key == key
        )
    ).one()
    if stored.fingerprint != request_fingerprint:
        raise _conflict()
    return StoredResponse(stored.status_code, stored.response)


def complete(session: Session, *, claim: Claim, status_code: int, body: Any) -> None:
    """Store the response of the request that claimed the key."""
    table = IdempotencyRecord.__table__
    session.execute(
        update(table)
        .where(table.c.institution_id == claim.institution_id, table.c.key == claim.key)
        .values(status_code=status_code, response=body)
    )
