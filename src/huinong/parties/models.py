"""The customer table. ID-document numbers and phones are stored plainly for now; the
security issue encrypts them (SM4-GCM) and adds a keyed blind index. Responses mask them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class CustomerKind(StrEnum):
    individual = "individual"
    household = "household"
    merchant = "merchant"
    enterprise = "enterprise"
    government = "government"
    collective = "collective"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "kind in ('individual', 'household', 'merchant', 'enterprise', 'government', "
            "'collective')",
            name="kind",
        ),
        Index("ix_customers_institution_id_number", "institution_id", "id_number", unique=True),
    )
