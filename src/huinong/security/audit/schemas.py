"""API models of the audit trail (read-only: records are written by the use cases)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditActor(BaseModel):
    kind: str
    id: uuid.UUID | None
    display: str | None


class AuditObject(BaseModel):
    type: str
    id: str | None


class AuditRecordRead(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: AuditActor | None
    action: str
    object: AuditObject | None
    outcome: str
    request_id: str | None
    detail: dict[str, Any] | None
    sequence: int | None = Field(
        description="position in the institution's chain; null until sealed"
    )
    chain_hash: str | None = Field(description="SM3 chain hash (hex) once sealed")


class AuditRecordPage(BaseModel):
    items: list[AuditRecordRead]
    next_cursor: str | None


class FindingRead(BaseModel):
    kind: str
    message: str
    sequences: list[int]
    record_ids: list[uuid.UUID]


class VerificationRead(BaseModel):
    chain_id: uuid.UUID
    intact: bool
    records: int = Field(description="sealed records checked")
    last_sequence: int
    anchors: int
    unsealed: int = Field(description="records written but not sealed yet: not covered")
    audit_key_fingerprint: str | None = Field(description="SM3 of the audit public key (DER)")
    findings: list[FindingRead]
