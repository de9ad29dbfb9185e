"""API models of consent. Captured values go in and never come back out through these
models: a response says how many were captured, not what they are."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.security.consent.models import DataCategory, EvidenceKind, Purpose
from huinong.security.consent.rules import ConsentState


class Evidence(RequestModel):
    kind: EvidenceKind
    reference: str = Field(
        min_length=1, max_length=128, description="form number, e-signature id or terminal id"
    )


class CollectedValueCreate(RequestModel):
    category: DataCategory
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    value: str = Field(min_length=1, max_length=1000)


class ConsentCreate(RequestModel):
    categories: list[DataCategory] = Field(min_length=1, max_length=len(DataCategory))
    purpose: Purpose
    grantee_institution_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="the institution allowed to use the data; the caller's when absent",
    )
    expires_at: datetime | None = Field(default=None, description="until revoked when absent")
    evidence: Evidence
    data: list[CollectedValueCreate] = Field(
        default_factory=list,
        max_length=50,
        description="values captured with the consent, kept for its purpose only",
    )


class EvidenceRead(BaseModel):
    kind: EvidenceKind
    reference: str


class ConsentRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    categories: list[DataCategory]
    purpose: Purpose
    grantee_institution_id: uuid.UUID
    granted_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: ConsentState
    evidence: EvidenceRead
    purged_at: datetime | None


class ConsentList(BaseModel):
    items: list[ConsentRead]


class ConsentCheck(RequestModel):
    customer_id: uuid.UUID
    category: DataCategory
    purpose: Purpose


class ConsentCheckRead(BaseModel):
    allowed: bool
    code: str | None = Field(description="consent.missing, consent.expired or consent.revoked")
    message: str
    consent_id: uuid.UUID | None
