"""Tables of the audit trail.

* ``audit_records``: one row per audited event, inserted by ``service.record`` in the
  transaction of the event itself, unsealed (no sequence yet); the sealer fills in
  ``sequence``, ``prev_hash`` and ``chain_hash`` later (see ``service``).
* ``audit_chains``: the head of each chain (one per institution, one for the platform), the
  row the sealer locks.
* ``audit_anchors``: the signed checkpoints of each chain.
* ``audit_keys``: the platform's SM2 audit key pair, the private half wrapped.

Append-only is also enforced by the database: migration 0005 installs triggers that refuse
DELETE on records and anchors, and UPDATE of a record other than sealing an unsealed one. The
hash chain does not rely on them (an owner of the database can drop triggers; verification
catches what they then do); they stop accidents and casual edits. Note for later migrations:
SQLite's batch mode rebuilds a table and drops its triggers — re-create them after altering
``audit_records`` or ``audit_anchors``.

There is no foreign key from records to institutions: a record is written on the path of every
money movement, and the key check (a shared row lock on PostgreSQL) buys nothing there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chain_id: Mapped[uuid.UUID] = mapped_column()
    institution_id: Mapped[uuid.UUID | None] = mapped_column()
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_display: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(8))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Set by the sealer, all three together.
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    chain_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    __table_args__ = (
        CheckConstraint("outcome in ('ok', 'denied', 'failed')", name="outcome"),
        CheckConstraint(
            "(sequence is null) = (chain_hash is null) "
            "and (sequence is null) = (prev_hash is null)",
            name="sealed_together",
        ),
        CheckConstraint("sequence is null or sequence > 0", name="sequence_positive"),
        UniqueConstraint("chain_id", "sequence", name="uq_audit_records_chain_sequence"),
        # What the sealer reads: the unsealed records of a chain, in (time, id) order.
        Index(
            "ix_audit_records_unsealed",
            "chain_id",
            "occurred_at",
            "id",
            sqlite_where=text("sequence is null"),
            postgresql_where=text("sequence is null"),
        ),
        # What auditors filter on.
        Index("ix_audit_records_institution_time", "institution_id", "occurred_at", "id"),
        Index("ix_audit_records_institution_object", "institution_id", "object_type", "object_id"),
        Index("ix_audit_records_institution_actor", "institution_id", "actor_id", "occurred_at"),
    )


class AuditChain(Base):
    """The head of a chain: the last sealed sequence and its chain hash."""

    __tablename__ = "audit_chains"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID | None] = mapped_column()
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("last_sequence >= 0", name="last_sequence_not_negative"),)


class AuditKey(Base):
    """The platform audit key: an SM2 key pair, the private key SM4-GCM-wrapped under a key
    derived from the master key. ``name`` is unique, so two sealers racing to create the
    first key cannot both succeed."""

    __tablename__ = "audit_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    public_key: Mapped[str] = mapped_column(String(130))
    wrapped_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditAnchor(Base):
    """A signed checkpoint: sequences ``first_sequence..last_sequence`` of a chain, ending at
    ``chain_hash``."""

    __tablename__ = "audit_anchors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chain_id: Mapped[uuid.UUID] = mapped_column()
    first_sequence: Mapped[int] = mapped_column(BigInteger)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("audit_keys.id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))

    __table_args__ = (
        CheckConstraint(
            "first_sequence >= 1 and last_sequence >= first_sequence", name="sequences"
        ),
        UniqueConstraint("chain_id", "last_sequence", name="uq_audit_anchors_chain_last"),
    )
