"""Tables of institutions and offices.

An institution is a legal entity (a rural commercial bank, a credit cooperative) and the unit
of tenancy: every business row elsewhere carries its ``institution_id``. Its business date
(会计日期) is the accounting date that close of business advances; it is not the calendar date.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from huinong import clock
from huinong.db import Base, UTCDateTime
from huinong.ids import uuid7


class OfficeKind(StrEnum):
    head = "head"
    branch = "branch"
    outlet = "outlet"


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (CheckConstraint("length(currency) = 3", name="currency_code"),)


class Office(Base):
    __tablename__ = "offices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OfficeKind] = mapped_column(String(16))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offices.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_offices_institution_code"),
        CheckConstraint("kind in ('head', 'branch', 'outlet')", name="kind"),
        CheckConstraint("(kind = 'head') = (parent_id is null)", name="only_head_is_root"),
        Index("ix_offices_institution_parent", "institution_id", "parent_id"),
        # One head office per institution, even when two are created at the same moment.
        Index(
            "uq_offices_one_head",
            "institution_id",
            unique=True,
            sqlite_where=text("kind = 'head'"),
            postgresql_where=text("kind = 'head'"),
        ),
    )
