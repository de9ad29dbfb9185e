"""API models of credit: scorecards, rule sets, decisions and the feature catalogue."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from huinong.credit.models import ScorecardRole
from huinong.inputs import RequestModel


class ScorecardRead(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    role: str
    digest: str = Field(description="SM3 of the JSON artefact")
    metrics: dict[str, Any]
    created_at: dt.datetime
    role_changed_at: dt.datetime


class ScorecardDetail(ScorecardRead):
    artefact: dict[str, Any] = Field(description="the reviewable JSON model")


class ScorecardRoleSet(RequestModel):
    role: ScorecardRole


class RuleSetCreate(RequestModel):
    """A rule set document (the same schema as the YAML files staff write)."""

    document: dict[str, Any]


class RuleSetRead(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    status: str
    digest: str
    document: dict[str, Any]
    created_at: dt.datetime
    status_changed_at: dt.datetime


class DecisionRead(BaseModel):
    id: uuid.UUID
    subject_kind: str
    household_id: uuid.UUID | None
    subject_reference: str | None
    as_of: dt.date
    scorecard_id: uuid.UUID
    rule_set_id: uuid.UUID
    inputs: dict[str, Any]
    score: int | None
    reasons: list[tuple[str, int]] = Field(description="top-3: feature and points lost")
    fired: list[tuple[str, str]] = Field(description="rules that fired: id and kind, in order")
    outcome: str
    grade: str | None
    limit_fen: int
    annual_rate: str | None = Field(description="a decimal string, e.g. 0.0435")
    decided_at: dt.datetime


class ReplayRead(BaseModel):
    decision_id: uuid.UUID
    same: bool
    differences: list[str]
    replayed: dict[str, Any]


class FeatureRead(BaseModel):
    name: str
    source: str
    meaning: str
    meaning_zh: str
    unit: str
    dtype: str
    missing: str
