"""Idempotency keys for calls that move money.

A client sends an ``Idempotency-Key`` with every money-moving request. The first request
with a key stores a fingerprint of the request (method, path, body) and the response it got,
in the same transaction as the business writes — so a response is stored if and only if its
effects are. A repeat with the same fingerprint gets the stored response back; a repeat with
another fingerprint is refused (409). Keys are scoped by institution.

The protocol is optimistic, because nearly every key is new: the use case runs without
looking the key up, and its response is stored at commit (:func:`remember`). The primary key
decides the rare repeat: if a request with the key committed first, this one's commit fails
and the entry point retries it, now finding the stored response (:func:`find`) before
running anything; if it is still running, the commit waits for its end. A use case that a
repeat cannot run again (the money has gone, the bill is paid) fails with a domain error,
and the entry point looks the key up before passing that error on. So a new key costs no
statement of its own on PostgreSQL — the row goes with the transaction's other commit-time
rows — and a repeat costs the work it rolls back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, bindparam, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from huinong import clock
from huinong.db import Base, CommitWrite, UTCDateTime, write_at_commit
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


_table = IdempotencyRecord.__table__
_STORED = select(_table.c.fingerprint, _table.c.status_code, _table.c.response).where(
    _table.c.institution_id == bindparam("institution_id"), _table.c.key == bindparam("key")
)


def find(
    session: Session, *, institution_id: uuid.UUID, key: str, request_fingerprint: str
) -> StoredResponse | None:
    """The response stored under the key, if a request with it has committed; a different
    request under the same key is a 409."""
    stored = session.execute(_STORED, {"institution_id": institution_id, "key": key}).first()
    if stored is None:
        return None
    if stored.fingerprint != request_fingerprint:
        raise _conflict()
    return StoredResponse(stored.status_code, stored.response)


_RECORDS = CommitWrite(
    name="idempotency",
    postgres="""
INSERT INTO idempotency_keys (institution_id, key, fingerprint, status_code, response, created_at)
SELECT institution_id, key, fingerprint, status_code, response, created_at
FROM json_to_recordset(%(idempotency)s::json) AS v(institution_id uuid, key varchar,
    fingerprint varchar, status_code int, response json, created_at timestamptz)
""",
    portable=insert(_table),
)


def remember(
    session: Session,
    *,
    institution_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    status_code: int,
    body: Any,
) -> None:
    """Store the response under the key when the transaction commits (with its other
    commit-time rows: ``db.write_at_commit``). If a request with the same key committed
    first, the commit fails on the primary key and nothing of this transaction is kept; a
    concurrent one still running makes this commit wait for its end."""
    write_at_commit(
        session,
        _RECORDS,
        {
            "institution_id": institution_id,
            "key": key,
            "fingerprint": request_fingerprint,
            "status_code": status_code,
            "response": body,
            "created_at": clock.now(),
        },
    )
