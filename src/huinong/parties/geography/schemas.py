"""API models of divisions and grids.

Codes go out padded to 12 digits (the key); ``short_code`` is the form people write.
A division code given in a request may be short (``370281``) or padded: both name the same
division.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.parties.geography.rules import DivisionLevel

CodeText = Field(min_length=2, max_length=12, pattern=r"^[0-9]+$")


class DivisionRead(BaseModel):
    code: str = Field(description="12-digit statistical division code")
    short_code: str = Field(description="the code without its trailing zero segments")
    name: str
    level: DivisionLevel
    parent_code: str | None
    urban_rural_code: str | None = Field(description="城乡分类代码 of a village, when known")


class DivisionPage(BaseModel):
    items: list[DivisionRead]
    next_cursor: str | None


class OfficeRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: str


class GridVillageRead(BaseModel):
    code: str
    name: str
    township_code: str
    township_name: str


class GridRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    outlet_id: uuid.UUID
    manager_id: uuid.UUID
    chain: list[OfficeRef] = Field(
        description="head office → branch → outlet the grid hangs off; then its villages' "
        "townships and villages complete the five levels"
    )
    villages: list[GridVillageRead]
    created_at: datetime


class GridSummary(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    outlet_id: uuid.UUID
    manager_id: uuid.UUID
    village_count: int
    created_at: datetime


class GridPage(BaseModel):
    items: list[GridSummary]
    next_cursor: str | None


class GridCreate(RequestModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=100)
    outlet_id: uuid.UUID = Field(description="an office of kind outlet")
    manager_id: uuid.UUID = Field(description="a staff user holding the account_manager role")
    village_codes: list[str] = Field(default_factory=list, max_length=2000)


class GridVillagesChange(RequestModel):
    village_codes: list[str] = Field(min_length=1, max_length=2000)


class GridManagerChange(RequestModel):
    manager_id: uuid.UUID


class CustomerVillage(RequestModel):
    village_code: str | None = Field(
        description="the village's 12-digit code; null takes the customer out of any village"
    )
