"""The customer table.

Identity-document numbers and phones (JR/T 0171 class C2) are never stored in plain: each is
an SM4-GCM ciphertext bound to its row and column (``huinong.security.personal_data``), with a
keyed SM3 blind index beside it for exact lookup. The index carries the uniqueness of the ID
number within an institution; phones are indexed but not unique (a household may share one).
``data_key_version`` names the data key both ciphertexts of the row are under.

A farmer code (一码通, ``farmer_codes``) is a bearer identifier printed as a QR code on the
farmer's card: whoever shows it is looked up as that customer, so it is kept like a password's
cousin — only its keyed SM3 blind index and its last four digits are stored, and a customer has
at most one code that is not revoked (a partial unique index).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime
from huinong.security.personal_data.models import DATA_KEY_VERSION, encrypted


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
    id_number_ciphertext: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("id_number"))
    id_number_index: Mapped[str] = mapped_column(String(64))
    phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted("phone"))
    phone_index: Mapped[str | None] = mapped_column(String(64))
    data_key_version: Mapped[int] = mapped_column(
        ForeignKey("security_data_keys.version"), info=DATA_KEY_VERSION
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The village the customer lives in (a 12-digit division code, ``parties.geography``);
    # it is what puts the customer in an account manager's grid.
    village_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code"), index=True
    )

    __table_args__ = (
        CheckConstraint(
            "kind in ('individual', 'household', 'merchant', 'enterprise', 'government', "
            "'collective')",
            name="kind",
        ),
        CheckConstraint("(phone_ciphertext is null) = (phone_index is null)", name="phone_indexed"),
        Index(
            "ix_customers_institution_id_number_index",
            "institution_id",
            "id_number_index",
            unique=True,
        ),
        Index("ix_customers_institution_phone_index", "institution_id", "phone_index"),
        Index("ix_customers_data_key_version", "data_key_version"),
    )


class FarmerCode(Base):
    __tablename__ = "farmer_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    code_index: Mapped[str] = mapped_column(String(64))
    last_digits: Mapped[str] = mapped_column(String(4))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(
            "ix_farmer_codes_institution_code_index", "institution_id", "code_index", unique=True
        ),
        Index(
            "ix_farmer_codes_customer_active",
            "customer_id",
            unique=True,
            sqlite_where=text("revoked_at is null"),
            postgresql_where=text("revoked_at is null"),
        ),
    )
