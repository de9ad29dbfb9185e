"""Tables of credit: the scorecard registry, rule set versions and stored decisions.

* ``credit_scorecards`` — every trained scorecard of an institution, by name and version, with
  its reviewable JSON artefact (``scorecards.model``) and its SM3 digest, the training report's
  figures, and its role: ``candidate`` when trained, then ``champion`` (the one decisions use;
  at most one per name — a partial unique index), ``challenger`` (scored beside the champion
  for comparison) or ``retired``. An artefact never changes: a retrained model is a new version.
* ``credit_rule_sets`` — every version of a rule set (``rules.ruleset``) as the document staff
  wrote, with its digest; at most one version per name is ``active``.
* ``credit_decisions`` — each decision with everything it was made from: the feature values
  (inputs), the scorecard version and rule set version, the score and its reasons, the rules
  that fired, and the result (outcome, grade, limit in fen, annual rate as a decimal string).
  Rows are never updated: replaying a decision recomputes it from these columns and compares.
* ``credit_bureau_reports`` — rows of imported bureau files (征信), keyed by the blind index of
  the ID number (the number itself is not kept), read as of a date by the features.
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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class ScorecardRole(StrEnum):
    candidate = "candidate"
    champion = "champion"
    challenger = "challenger"
    retired = "retired"


class RuleSetStatus(StrEnum):
    draft = "draft"
    active = "active"
    retired = "retired"


class SubjectKind(StrEnum):
    household = "household"
    transport_operator = "transport_operator"


def _in(values: type[StrEnum], column: str) -> str:
    return f"{column} in ({', '.join(repr(str(v)) for v in values)})"


class Scorecard(Base):
    __tablename__ = "credit_scorecards"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    artefact: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    role_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "name", "version", name="uq_credit_scorecards_version"),
        CheckConstraint(_in(ScorecardRole, "role"), name="role"),
        CheckConstraint("version > 0", name="version_positive"),
        Index(
            "ix_credit_scorecards_one_champion",
            "institution_id",
            "name",
            unique=True,
            sqlite_where=text("role = 'champion'"),
            postgresql_where=text("role = 'champion'"),
        ),
    )


class RuleSetVersion(Base):
    __tablename__ = "credit_rule_sets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "name", "version", name="uq_credit_rule_sets_version"),
        CheckConstraint(_in(RuleSetStatus, "status"), name="status"),
        CheckConstraint("version > 0", name="version_positive"),
        Index(
            "ix_credit_rule_sets_one_active",
            "institution_id",
            "name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class CreditDecision(Base):
    __tablename__ = "credit_decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    subject_kind: Mapped[str] = mapped_column(String(24))
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("households.id"))
    # Another subject (a transport operator's licence number, a survey reference).
    subject_reference: Mapped[str | None] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    scorecard_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_scorecards.id"))
    rule_set_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_rule_sets.id"))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    fired: Mapped[list[Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(16))
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    annual_rate: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in(SubjectKind, "subject_kind"), name="subject_kind"),
        CheckConstraint("outcome in ('approve', 'refer', 'decline')", name="outcome"),
        CheckConstraint("limit_fen >= 0", name="limit_not_negative"),
        CheckConstraint("outcome <> 'decline' or limit_fen = 0", name="declined_without_limit"),
        CheckConstraint(
            "(household_id is null) <> (subject_reference is null)", name="one_subject"
        ),
        Index("ix_credit_decisions_household", "institution_id", "household_id", "decided_at"),
    )


class BureauReportRow(Base):
    __tablename__ = "credit_bureau_reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    id_number_index: Mapped[str] = mapped_column(String(64))
    report_date: Mapped[date] = mapped_column(Date)
    overdue_count: Mapped[int] = mapped_column(Integer)
    max_overdue_days: Mapped[int] = mapped_column(Integer)
    overdue_fen: Mapped[int] = mapped_column(BigInteger)
    outstanding_loans: Mapped[int] = mapped_column(Integer)
    outstanding_fen: Mapped[int | None] = mapped_column(BigInteger)
    blacklisted: Mapped[bool] = mapped_column(Boolean)
    file_name: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "institution_id", "id_number_index", "report_date", name="uq_bureau_reports_day"
        ),
        CheckConstraint(
            "overdue_count >= 0 and max_overdue_days >= 0 and overdue_fen >= 0 "
            "and outstanding_loans >= 0",
            name="not_negative",
        ),
    )
