"""API models of customers. Identifiers come back masked."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.parties.models import CustomerKind


class CustomerCreate(RequestModel):
    kind: CustomerKind
    name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=32)
    phone: str | None = Field(default=None, max_length=20)


class CustomerRead(BaseModel):
    id: uuid.UUID
    kind: CustomerKind
    name: str
    id_number_masked: str
    phone_masked: str | None
    created_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None
