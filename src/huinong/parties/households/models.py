"""Tables of households (农户), their members, archive versions and default accounts.

* ``households`` — one per farming household and institution, with a human-facing household
  number (11-digit serial per institution and a Luhn check digit, like account numbers) and
  the 12-digit statistical code of its village (a foreign key to the divisions table).
* ``household_members`` — the people of a household and their relationship to its head. A
  member is a customer (``customer_id``) or only a named person (name, birth year, and, when
  given, an ID number stored like the customers' — SM4 ciphertext bound to the row plus a
  blind index). The unique index on (institution, customer) is the rule "a customer belongs
  to at most one household of an institution"; the head is a member with relationship
  ``head``, and the household's ``head_customer_id`` names the same customer.
* ``household_archive_versions`` — each survey of the household (农户经济档案) is a new,
  immutable row: its JSON content (``archive.ArchiveContent``), the survey date, who surveyed
  and how it came in, and the consent purpose it was collected for — what the consent purge
  needs to delete it when that consent ends.
* ``household_number_sequences`` — the last serial handed out per institution.
* ``customer_default_accounts`` — the deposit account a customer chose to be found by in a
  party lookup (absent: the customer's first open deposit account is the default). The
  account id refers to the ledger's table by name only; the parties layer never reads it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
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
from huinong.security.personal_data.models import DATA_KEY_VERSION, encrypted


class Relationship(StrEnum):
    """A member's relationship to the head of household (与户主关系)."""

    head = "head"  # 户主
    spouse = "spouse"  # 配偶
    child = "child"  # 子女
    parent = "parent"  # 父母
    sibling = "sibling"  # 兄弟姐妹
    grandchild = "grandchild"  # 孙子女
    other = "other"


def _in(values: type[StrEnum], column: str) -> str:
    return f"{column} in ({', '.join(repr(str(v)) for v in values)})"


class Household(Base):
    __tablename__ = "households"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    household_number: Mapped[str] = mapped_column(String(12))
    # 12-digit statistical division code of the village (GB/T 2260 + township + village).
    village_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("divisions.code"))
    head_customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "institution_id", "household_number", name="uq_households_household_number"
        ),
        Index("ix_households_institution_village", "institution_id", "village_code"),
        Index("ix_households_head_customer_id", "head_customer_id"),
    )


class HouseholdMember(Base):
    __tablename__ = "household_members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    relationship: Mapped[str] = mapped_column(String(16))
    is_labour: Mapped[bool] = mapped_column(Boolean)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    # A member who is not a customer: named here; ID number only if the household gave it.
    name: Mapped[str | None] = mapped_column(String(200))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    id_number_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, info=encrypted("id_number")
    )
    id_number_index: Mapped[str | None] = mapped_column(String(64))
    data_key_version: Mapped[int | None] = mapped_column(
        ForeignKey("security_data_keys.version"), info=DATA_KEY_VERSION
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in(Relationship, "relationship"), name="relationship"),
        CheckConstraint("(customer_id is null) <> (name is null)", name="customer_or_named_person"),
        CheckConstraint(
            "(id_number_ciphertext is null) = (id_number_index is null)", name="id_number_indexed"
        ),
        CheckConstraint(
            "(id_number_ciphertext is null) = (data_key_version is null)", name="id_number_key"
        ),
        CheckConstraint(
            "relationship <> 'head' or customer_id is not null", name="head_is_customer"
        ),
        # A customer is a member of at most one household of an institution.
        UniqueConstraint("institution_id", "customer_id", name="uq_household_members_customer"),
        # A household has one head.
        Index(
            "ix_household_members_one_head",
            "household_id",
            unique=True,
            sqlite_where=text("relationship = 'head'"),
            postgresql_where=text("relationship = 'head'"),
        ),
        Index("ix_household_members_household_id", "household_id"),
        Index("ix_household_members_id_number_index", "institution_id", "id_number_index"),
        Index("ix_household_members_data_key_version", "data_key_version"),
    )


class HouseholdArchiveVersion(Base):
    __tablename__ = "household_archive_versions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    # The customer whose consent the data was collected under (the head at survey time).
    consenting_customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"))
    surveyed_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    surveyor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    schema_version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "source in ('field_survey', 'campaign_import', 'customer_update')", name="source"
        ),
        CheckConstraint("schema_version > 0", name="schema_version_positive"),
        Index("ix_household_archive_versions_household", "household_id", "surveyed_on"),
        Index(
            "ix_household_archive_versions_consent",
            "consenting_customer_id",
            "purpose",
        ),
    )


class HouseholdNumberSequence(Base):
    """The last household serial handed out per institution."""

    __tablename__ = "household_number_sequences"

    institution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("institutions.id"), primary_key=True
    )
    last_serial: Mapped[int] = mapped_column(BigInteger, default=0)


class CustomerDefaultAccount(Base):
    __tablename__ = "customer_default_accounts"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_customer_default_accounts_account_id", "account_id"),)
