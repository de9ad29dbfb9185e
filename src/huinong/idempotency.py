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

from sqlalchemy import JSON, Integer, String, select
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


def lookup(
    session: Session, *, institution_id: uuid.UUID, key: str, request_fingerprint: str
) -> StoredResponse | None:
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.institution_id == institution_id, IdempotencyRecord.key == key
        )
    )
    if record is None:
        return None
    if record.fingerprint != request_fingerprint:
        raise Conflict(
            "request.idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    return StoredResponse(record.status_code, record.response)


def claim(
    session: Session, *, institution_id: uuid.UUID, key: str, request_fingerprint: str
) -> IdempotencyRecord:
    """Take the key for this request before its use case runs.

    On PostgreSQL a concurrent request inserting the same key waits on the primary key until
    this transaction ends, then fails with a unique violation; its entry point retries and
    finds this request's stored response (or, had this one failed, the key free again).
    """
    record = IdempotencyRecord(
        institution_id=institution_id,
        key=key,
        fingerprint=request_fingerprint,
        status_code=0,
        response={},
        created_at=clock.now(),
    )
    session.add(record)
    session.flush()
    return record


def complete(session: Session, *, record: IdempotencyRecord, status_code: int, body: Any) -> None:
    """Store the response of the request that claimed the key."""
    record.status_code = status_code
    record.response = body
    session.flush()
