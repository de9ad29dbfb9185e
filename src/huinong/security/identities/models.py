"""Tables of identities: staff users and their roles, customers' web-hall credentials,
one-time codes, and sign-in sessions.

A sign-in session is what a refresh token stands for: the access tokens it issues name it,
so revoking the session (sign-out, a reused refresh token, a disabled user) stops them all.
Secrets are never stored: passwords as argon2id hashes, refresh tokens and one-time codes as
keyed SM3 digests. A customer's sign-in phone is kept only as a keyed blind index: the
customer record holds the phone itself (encrypted).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huinong import clock
from huinong.db import Base, UTCDateTime
from huinong.ids import uuid7
from huinong.security.principals import Role


class UserStatus(StrEnum):
    active = "active"
    disabled = "disabled"


def _role_check() -> str:
    return "role in (" + ", ".join(f"'{r.value}'" for r in Role if r != Role.customer) + ")"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    office_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offices.id"))
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.active)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    roles: Mapped[list[StaffRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="StaffRole.role"
    )

    __table_args__ = (
        UniqueConstraint("institution_id", "username", name="uq_staff_users_username"),
        CheckConstraint("status in ('active', 'disabled')", name="status"),
        CheckConstraint("failed_sign_ins >= 0", name="failed_sign_ins_not_negative"),
    )


class StaffRole(Base):
    __tablename__ = "staff_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (CheckConstraint(_role_check(), name="role"),)


class CustomerCredential(Base):
    __tablename__ = "customer_credentials"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), unique=True)
    phone_index: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.active)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (
        UniqueConstraint("institution_id", "phone_index", name="uq_customer_credentials_phone"),
        CheckConstraint("status in ('active', 'disabled')", name="status"),
        CheckConstraint("failed_sign_ins >= 0", name="failed_sign_ins_not_negative"),
    )


class OneTimeCode(Base):
    __tablename__ = "one_time_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    credential_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer_credentials.id", ondelete="CASCADE")
    )
    code_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (Index("ix_one_time_codes_credential", "credential_id", "created_at"),)


class SessionSubject(StrEnum):
    staff = "staff"
    customer = "customer"


class SignInSession(Base):
    __tablename__ = "sign_in_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    customer_credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer_credentials.id")
    )
    # Digest of the current refresh token; each refresh replaces it (rotation), and a token
    # that no longer matches is a stolen copy: the whole session is revoked.
    refresh_digest: Mapped[str] = mapped_column(String(64), unique=True)
    previous_refresh_digest: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (
        CheckConstraint("subject_kind in ('staff', 'customer')", name="subject_kind"),
        CheckConstraint(
            "(subject_kind = 'staff' and staff_user_id is not null "
            "and customer_credential_id is null) or "
            "(subject_kind = 'customer' and customer_credential_id is not null "
            "and staff_user_id is null)",
            name="one_subject",
        ),
        Index("ix_sign_in_sessions_staff_user", "staff_user_id"),
        Index("ix_sign_in_sessions_previous_refresh", "previous_refresh_digest"),
    )
