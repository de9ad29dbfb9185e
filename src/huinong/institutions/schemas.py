"""API models of institutions and offices."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from huinong.inputs import RequestModel
from huinong.institutions.models import OfficeKind

Code = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$")


class InstitutionCreate(RequestModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    business_date: date | None = None


class InstitutionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    currency: str
    business_date: date
    created_at: datetime


class OfficeCreate(RequestModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    kind: OfficeKind
    parent_code: str | None = Field(default=None, max_length=32)


class OfficeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    kind: OfficeKind
    parent_id: uuid.UUID | None
