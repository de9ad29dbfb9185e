"""Tables of consent: what a customer allowed, to whom, for what, and the data collected
under it.

* ``consents``: one consent — a customer lets a grantee institution use some categories of
  their data for one purpose, from ``granted_at`` until ``expires_at`` (or until revoked).
  The row is kept after the consent ends: it is the proof that past use was allowed.
  ``purged_at`` marks that the purge has dealt with its end.
* ``consent_categories``: the data categories a consent covers (one row each, so the guard's
  question "is there a live consent for this category and purpose" is an indexed join).
* ``consent_data``: data captured together with a consent and kept only for its purpose (a
  questionnaire answer of a village credit campaign, a phone given for marketing), encrypted
  under the versioned data keys of ``personal_data`` (so ``huinong keys rotate`` re-encrypts
  it with the rest). It is one of the purpose data holders the purge empties (``service``).

Customers belong to the parties domain, above security; they are referred to by table name.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huinong.db import Base, UTCDateTime
from huinong.security.personal_data.models import DATA_KEY_VERSION, encrypted


class DataCategory(StrEnum):
    identity = "identity"  # name, ID document
    contact = "contact"  # phone, address
    household_archive = "household_archive"  # 农户档案: household, land, income, assets
    credit = "credit"  # credit reports, scores, ratings
    transactions = "transactions"  # account activity


class Purpose(StrEnum):
    account_opening = "account_opening"
    credit_assessment = "credit_assessment"
    village_credit_campaign = "village_credit_campaign"  # 整村授信
    marketing = "marketing"
    government_subsidy = "government_subsidy"


class EvidenceKind(StrEnum):
    paper_form = "paper_form"  # the number of the signed form
    e_signature = "e_signature"  # the e-signature service's id
    terminal = "terminal"  # the terminal it was given on


def _in(values: type[StrEnum], column: str) -> str:
    return f"{column} in ({', '.join(repr(str(v)) for v in values)})"


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The customer's institution, which recorded the consent.
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    # The institution allowed to use the data (often the same one).
    grantee_institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence_kind: Mapped[str] = mapped_column(String(16))
    evidence_reference: Mapped[str] = mapped_column(String(128))
    recorded_by: Mapped[uuid.UUID | None] = mapped_column()
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    categories: Mapped[list[ConsentCategory]] = relationship(
        lazy="selectin", order_by="ConsentCategory.category"
    )

    @property
    def category_names(self) -> list[str]:
        return [c.category for c in self.categories]

    __table_args__ = (
        CheckConstraint(_in(Purpose, "purpose"), name="purpose"),
        CheckConstraint(_in(EvidenceKind, "evidence_kind"), name="evidence_kind"),
        CheckConstraint(
            "expires_at is null or expires_at > granted_at", name="expires_after_grant"
        ),
        CheckConstraint(
            "revoked_at is null or revoked_at >= granted_at", name="revoked_after_grant"
        ),
        # The guard: live consents of a customer for a purpose.
        Index("ix_consents_customer_purpose", "customer_id", "purpose"),
        Index("ix_consents_institution_customer", "institution_id", "customer_id"),
        # The purge: consents whose end it has not dealt with yet.
        Index(
            "ix_consents_unpurged",
            "institution_id",
            "customer_id",
            sqlite_where=text("purged_at is null"),
            postgresql_where=text("purged_at is null"),
        ),
    )


class ConsentCategory(Base):
    __tablename__ = "consent_categories"

    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (CheckConstraint(_in(DataCategory, "category"), name="category"),)


class ConsentData(Base):
    """A value captured under a consent, for its purpose only; ``value_ciphertext`` is sealed
    by ``personal_data`` (SM4-GCM, bound to this table, field and row)."""

    __tablename__ = "consent_data"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consents.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    category: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    value_ciphertext: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("value"))
    data_key_version: Mapped[int] = mapped_column(
        ForeignKey("security_data_keys.version"), info=DATA_KEY_VERSION
    )
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in(DataCategory, "category"), name="category"),
        CheckConstraint(_in(Purpose, "purpose"), name="purpose"),
        Index("ix_consent_data_customer_category_purpose", "customer_id", "category", "purpose"),
        Index("ix_consent_data_consent", "consent_id"),
    )
