"""Tables of village credit campaigns (整村授信).

* ``credit_campaigns`` — one campaign of an institution: its code and name, the scorecard and
  rule set (by name; their champion/active versions decide) and the review panel's quorum, and
  its status: ``open`` (surveys are imported, reviewers rate) → ``decided`` (the batch decision
  ran; it may run again while the campaign is not signed off) → ``signed_off`` (an approver who
  did not run the decision signed it; the publication list (公示) can be produced).
* ``credit_campaign_villages`` — the villages it covers.
* ``credit_campaign_households`` — each surveyed household: its survey reference, the archive
  version the survey recorded, and the decision the campaign made for it.
* ``credit_survey_imports`` — each survey file imported, with its per-row problems (row,
  column, code, message — never a value from the file), for the downloadable error report.
* ``credit_campaign_flags`` — what the cross-check found, each with its reason.
* ``credit_reviewers`` / ``credit_peer_ratings`` — the blind review panel (联合评议组): named
  reviewers, each a staff user with the ``reviewer`` role, and one rating per reviewer and
  household (integrity 1–4, suggested limit, recommend, comment). A reviewer reads only their
  own ratings; the API refuses anything else.
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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class CampaignStatus(StrEnum):
    open = "open"
    decided = "decided"
    signed_off = "signed_off"


class ReviewerKind(StrEnum):
    village_cadre = "village_cadre"  # 村干部
    key_person = "key_person"  # 外部关键人: trusted locals, retired teachers, party members
    account_manager = "account_manager"  # 客户经理


class Campaign(Base):
    __tablename__ = "credit_campaigns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    scorecard_name: Mapped[str] = mapped_column(String(64))
    rule_set_name: Mapped[str] = mapped_column(String(64))
    quorum_min_count: Mapped[int] = mapped_column(Integer)
    quorum_min_share: Mapped[str] = mapped_column(String(8))  # a decimal string, e.g. "0.5"
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_as_of: Mapped[date | None] = mapped_column(Date)
    decided_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_off_by: Mapped[uuid.UUID | None] = mapped_column()
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_credit_campaigns_code"),
        CheckConstraint("status in ('open', 'decided', 'signed_off')", name="status"),
        CheckConstraint("quorum_min_count >= 3", name="quorum_at_least_three"),
        CheckConstraint(
            "(status = 'signed_off') = (signed_off_at is not null)", name="signed_off_when"
        ),
        CheckConstraint("status = 'open' or decided_at is not null", name="decided_when"),
    )


class CampaignVillage(Base):
    __tablename__ = "credit_campaign_villages"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("credit_campaigns.id"), primary_key=True
    )
    village_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("divisions.code"), primary_key=True
    )


class CampaignHousehold(Base):
    __tablename__ = "credit_campaign_households"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_campaigns.id"))
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    survey_ref: Mapped[str] = mapped_column(String(32))
    archive_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("household_archive_versions.id")
    )
    decision_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("credit_decisions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "household_id", name="uq_campaign_households_household"),
        UniqueConstraint("campaign_id", "survey_ref", name="uq_campaign_households_survey_ref"),
    )


class SurveyImport(Base):
    __tablename__ = "credit_survey_imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_campaigns.id"))
    file_name: Mapped[str] = mapped_column(String(200))
    household_rows: Mapped[int] = mapped_column(Integer)
    imported: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    problems: Mapped[list[Any]] = mapped_column(JSON)
    imported_by: Mapped[uuid.UUID | None] = mapped_column()
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("imported >= 0 and rejected >= 0", name="counts_not_negative"),
        Index("ix_credit_survey_imports_campaign", "campaign_id"),
    )


class CampaignFlag(Base):
    __tablename__ = "credit_campaign_flags"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    campaign_household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("credit_campaign_households.id")
    )
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_campaigns.id"))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("severity in ('low', 'medium', 'high')", name="severity"),
        Index("ix_credit_campaign_flags_campaign", "campaign_id"),
    )


class Reviewer(Base):
    __tablename__ = "credit_reviewers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_campaigns.id"))
    staff_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "staff_user_id", name="uq_credit_reviewers_user"),
        CheckConstraint("kind in ('village_cadre', 'key_person', 'account_manager')", name="kind"),
    )


class PeerRating(Base):
    __tablename__ = "credit_peer_ratings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_campaigns.id"))
    reviewer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_reviewers.id"))
    campaign_household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("credit_campaign_households.id")
    )
    integrity: Mapped[int] = mapped_column(Integer)
    suggested_limit_fen: Mapped[int] = mapped_column(BigInteger)
    recommend: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(String(500))
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("reviewer_id", "campaign_household_id", name="uq_peer_ratings_once"),
        CheckConstraint("integrity between 1 and 4", name="integrity_range"),
        CheckConstraint("suggested_limit_fen >= 0", name="limit_not_negative"),
        Index("ix_credit_peer_ratings_campaign", "campaign_id"),
    )
