"""Tables of the terminal registry: terminals, their SM2 keys, the nonces of signed requests,
geofence alerts, and the institutions' platform keys.

* ``terminals``: one row per device, bound to an institution and to a service point or a
  merchant. Service points and merchants are registered by a later issue; until then the
  binding is ``binding_kind`` plus ``binding_reference``, the institution's own number for the
  service point or merchant (a string, not a foreign key, on purpose). The optional geofence is
  a centre in integer micro-degrees and a radius in metres (see ``geofence.py``: no floats
  are stored); the three columns are all set or all empty.
* ``terminal_keys``: a terminal's SM2 public keys, numbered 1, 2, ... by ``serial``. A
  request names the serial it signed with. Rotation retires the active key and adds the next
  one; retired keys are kept, so an old signature can still be attributed. At most one key of
  a terminal is active, and a public key is never enrolled twice in an institution.
* ``terminal_nonces``: nonces of accepted signed requests, remembered until the request's
  timestamp leaves the acceptance window (then the timestamp check alone refuses a replay
  and the row can go). The primary key (terminal, nonce) makes a replay lose the race even
  when both copies arrive at once. Used when no Redis is configured.
* ``terminal_geofence_alerts``: a request refused because the terminal reported a position
  outside its fence. Written in a transaction of its own, so it survives the refusal.
* ``platform_keys``: the institution's SM2 key pair that signs answers to terminals (and
  whatever else the platform signs for it). The private key is stored wrapped with SM4-GCM
  under a key derived from the master key; one key per institution is active.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime
from huinong.ids import uuid7
from huinong.security.terminals.rules import BindingKind, KeyStatus, TerminalKind, TerminalStatus


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[TerminalKind] = mapped_column(String(16))
    binding_kind: Mapped[BindingKind] = mapped_column(String(16))
    binding_reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[TerminalStatus] = mapped_column(String(16))
    geofence_latitude_micro: Mapped[int | None] = mapped_column(Integer)
    geofence_longitude_micro: Mapped[int | None] = mapped_column(Integer)
    geofence_radius_metres: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_terminals_institution_code"),
        CheckConstraint("kind in ('smart_terminal', 'pos', 'mobile')", name="kind"),
        CheckConstraint("binding_kind in ('service_point', 'merchant')", name="binding_kind"),
        CheckConstraint("status in ('pending', 'active', 'suspended', 'revoked')", name="status"),
        CheckConstraint(
            "(geofence_latitude_micro is null) = (geofence_longitude_micro is null) "
            "and (geofence_latitude_micro is null) = (geofence_radius_metres is null)",
            name="geofence_complete",
        ),
        CheckConstraint(
            "geofence_latitude_micro between -90000000 and 90000000 "
            "and geofence_longitude_micro between -180000000 and 180000000 "
            "and geofence_radius_metres > 0",
            name="geofence_bounds",
        ),
    )


class TerminalKey(Base):
    __tablename__ = "terminal_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("terminals.id"))
    serial: Mapped[int] = mapped_column(Integer)
    # Uncompressed point, "04" || x || y in lower-case hex.
    public_key: Mapped[str] = mapped_column(String(130))
    # SM3 of the DER SubjectPublicKeyInfo, hex: what staff compare with the device's screen.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[KeyStatus] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("terminal_id", "serial", name="uq_terminal_keys_terminal_serial"),
        UniqueConstraint(
            "institution_id", "fingerprint", name="uq_terminal_keys_institution_fingerprint"
        ),
        CheckConstraint("serial > 0", name="serial_positive"),
        CheckConstraint("status in ('active', 'retired')", name="status"),
        CheckConstraint("(status = 'retired') = (retired_at is not null)", name="retired_at"),
        Index(
            "uq_terminal_keys_one_active",
            "terminal_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class TerminalNonce(Base):
    __tablename__ = "terminal_nonces"

    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("terminals.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_terminal_nonces_expiry", "expires_at"),)


class GeofenceAlert(Base):
    __tablename__ = "terminal_geofence_alerts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("terminals.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where the terminal said it was, and the fence it was held to at that moment (the fence
    # may be moved later; the alert keeps what was decided on).
    latitude_micro: Mapped[int] = mapped_column(Integer)
    longitude_micro: Mapped[int] = mapped_column(Integer)
    distance_metres: Mapped[int] = mapped_column(Integer)
    fence_latitude_micro: Mapped[int] = mapped_column(Integer)
    fence_longitude_micro: Mapped[int] = mapped_column(Integer)
    fence_radius_metres: Mapped[int] = mapped_column(Integer)
    key_serial: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    nonce: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_terminal_geofence_alerts_institution_time", "institution_id", "occurred_at"),
        Index("ix_terminal_geofence_alerts_terminal", "terminal_id", "occurred_at"),
    )


class PlatformKey(Base):
    __tablename__ = "platform_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    serial: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(String(130))
    # SM4-GCM(nonce || ciphertext || tag) of the 32-byte private scalar; the associated data
    # names the institution and serial, so a wrapped key copied to another row fails to open.
    private_key_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[KeyStatus] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "serial", name="uq_platform_keys_institution_serial"),
        CheckConstraint("serial > 0", name="serial_positive"),
        CheckConstraint("status in ('active', 'retired')", name="status"),
        CheckConstraint("(status = 'retired') = (retired_at is not null)", name="retired_at"),
        Index(
            "uq_platform_keys_one_active",
            "institution_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )
