"""API models of village credit campaigns, review panels and bureau files."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from huinong.credit.campaigns.models import ReviewerKind
from huinong.inputs import RequestModel

Base64 = Annotated[str, Field(min_length=1, max_length=90_000_000)]


class CampaignCreate(RequestModel):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
    name: str = Field(min_length=1, max_length=200)
    village_codes: list[str] = Field(min_length=1, max_length=50)
    scorecard_name: str = Field(min_length=1, max_length=64)
    rule_set_name: str = Field(min_length=1, max_length=64)
    quorum_min_count: int = Field(default=3, ge=3, le=50)
    quorum_min_share: str = Field(default="0.5", pattern=r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$")


class CampaignRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    village_codes: list[str]
    scorecard_name: str
    rule_set_name: str
    quorum_min_count: int
    quorum_min_share: str
    status: str
    created_at: dt.datetime
    decided_as_of: dt.date | None
    decided_at: dt.datetime | None
    signed_off_at: dt.datetime | None


class FileUpload(RequestModel):
    file_name: str = Field(min_length=1, max_length=200)
    content_base64: Base64
    encoding: str | None = Field(default=None, pattern=r"^(utf-8|gbk)$")


class SurveyUpload(FileUpload):
    surveyed_on: dt.date = Field(description="the survey date of rows that give none")


class SurveyImportRead(BaseModel):
    id: uuid.UUID
    file_name: str
    household_rows: int
    imported: int
    rejected: int
    problems: int = Field(description="download them from …/errors")
    imported_at: dt.datetime


class CampaignHouseholdRead(BaseModel):
    id: uuid.UUID
    survey_ref: str
    household_id: uuid.UUID
    household_number: str
    decision_id: uuid.UUID | None
    outcome: str | None
    grade: str | None
    limit_fen: int | None


class CrossCheckCreate(RequestModel):
    """Optionally the village land register (确权登记) to check declared land against."""

    land_register: FileUpload | None = None


class FlagRead(BaseModel):
    campaign_household_id: uuid.UUID
    survey_ref: str
    code: str
    severity: str
    reason: str


class ReviewerCreate(RequestModel):
    staff_user_id: uuid.UUID
    kind: ReviewerKind


class ReviewerRead(BaseModel):
    id: uuid.UUID
    staff_user_id: uuid.UUID
    kind: str


class RatingSet(RequestModel):
    integrity: int = Field(ge=1, le=4, description="1 poor … 4 excellent")
    suggested_limit_fen: int = Field(ge=0, le=10**11)
    recommend: bool
    comment: str | None = Field(default=None, max_length=500)


class RatingRead(BaseModel):
    campaign_household_id: uuid.UUID
    reviewer_id: uuid.UUID
    integrity: int
    suggested_limit_fen: int
    recommend: bool
    comment: str | None
    rated_at: dt.datetime


class SheetLine(BaseModel):
    """One household as a reviewer sees it: whom to rate, and their own rating if given."""

    campaign_household_id: uuid.UUID
    survey_ref: str
    household_number: str
    head_name: str
    my_rating: RatingRead | None


class AggregateRead(BaseModel):
    campaign_household_id: uuid.UUID
    status: str = Field(description="scored, or pending below the quorum")
    reviewer_count: int
    integrity: str | None
    suggested_limit_fen: int | None
    recommend: bool | None
    recommend_share: str | None
    disagreement: bool | None


class DecisionRun(RequestModel):
    as_of: dt.date


class DecisionRunRead(BaseModel):
    campaign_id: uuid.UUID
    decided: int
    outcomes: dict[str, int]
    grades: dict[str, int]
    approved_limit_fen: int


class BureauImportRead(BaseModel):
    stored: int
    problems: list[dict[str, object]]
