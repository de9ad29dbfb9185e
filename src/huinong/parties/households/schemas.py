"""API models of households, their archives, the 360° customer view and the party lookup.

Names follow the masking policy (in full for roles serving the customer, else masked), ID
numbers and phones are always masked, and identifiers a caller looks up travel in the body.
Archive quantities are decimal strings and money is integer fen (``archive``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.parties.households.archive import ArchiveContent, Source
from huinong.parties.households.models import Relationship
from huinong.parties.schemas import CustomerRead
from huinong.security.consent.models import Purpose
from huinong.security.consent.schemas import ConsentRead

VillageCode = Field(
    default=None,
    min_length=12,
    max_length=12,
    pattern=r"^[0-9]{12}$",
    description="12-digit statistical division code of the village",
)


class HouseholdCreate(RequestModel):
    head_customer_id: uuid.UUID
    village_code: str | None = VillageCode
    head_is_labour: bool = True


class MemberCreate(RequestModel):
    """A customer (``customer_id``) or a named person who is not a customer."""

    relationship: Relationship
    is_labour: bool
    customer_id: uuid.UUID | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    birth_year: int | None = Field(default=None, ge=1900, le=2200)
    id_number: str | None = Field(default=None, min_length=1, max_length=32)


class RelationshipChange(RequestModel):
    member_id: uuid.UUID
    relationship: Relationship


class HeadChange(RequestModel):
    """户主变更: ``member_id`` (a customer member) becomes the head."""

    member_id: uuid.UUID
    previous_head_relationship: Relationship
    relationships: list[RelationshipChange] = Field(
        default_factory=list,
        max_length=50,
        description="the other members' new relationships to the new head, where they change",
    )


class MemberRead(BaseModel):
    id: uuid.UUID
    relationship: Relationship
    is_labour: bool
    customer_id: uuid.UUID | None
    name: str = Field(description="in full for roles serving the customer, else masked")
    birth_year: int | None
    id_number_masked: str | None


class HouseholdRead(BaseModel):
    id: uuid.UUID
    household_number: str = Field(description="11-digit serial and a Luhn check digit")
    village_code: str | None
    head_customer_id: uuid.UUID
    members: list[MemberRead]
    member_count: int
    labour_count: int
    created_at: dt.datetime


class HouseholdPage(BaseModel):
    items: list[HouseholdRead]
    next_cursor: str | None


class ArchiveVersionCreate(RequestModel):
    surveyed_on: dt.date
    source: Source = Source.field_survey
    purpose: Purpose = Field(description="the purpose the head of household consented to")
    archive: ArchiveContent


class ArchiveVersionSummary(BaseModel):
    """A version's metadata, without its content."""

    id: uuid.UUID
    household_id: uuid.UUID
    surveyed_on: dt.date
    source: Source
    purpose: Purpose
    surveyor_id: uuid.UUID | None
    schema_version: int
    recorded_at: dt.datetime


class ArchiveFigures(BaseModel):
    """Derived from the content when read (never stored)."""

    total_income_fen: int
    bank_debt_fen: int
    informal_debt_fen: int
    total_debt_fen: int
    total_assets_fen: int
    net_worth_fen: int
    debt_to_income: Decimal | None
    land_per_labourer_mu: Decimal | None
    livestock_heads: int
    subsidies_fen: int
    vetoed: bool


class ArchiveVersionRead(ArchiveVersionSummary):
    consent_id: uuid.UUID = Field(description="the consent this read went through")
    archive: dict[str, Any]
    figures: ArchiveFigures


class ArchiveVersionList(BaseModel):
    items: list[ArchiveVersionSummary]


class DefaultAccountSet(RequestModel):
    account_number: str = Field(min_length=2, max_length=32)


class DefaultAccountRead(BaseModel):
    customer_id: uuid.UUID
    account_number: str
    set_at: dt.datetime


class AccountInView(BaseModel):
    account_number: str = Field(description="in full for roles serving the customer")
    currency: str
    balance: int
    available: int
    closed: bool
    is_default: bool
    opened_at: dt.datetime


class HouseholdInView(BaseModel):
    id: uuid.UUID
    household_number: str
    village_code: str | None
    head_customer_id: uuid.UUID
    relationship: Relationship = Field(description="the customer's relationship to the head")
    members: list[MemberRead]
    archive_versions: list[ArchiveVersionSummary]


class CustomerView(BaseModel):
    customer: CustomerRead
    household: HouseholdInView | None
    deposit_accounts: list[AccountInView]
    consents: list[ConsentRead]


class PartyLookup(RequestModel):
    """Exactly one identifier, as the payer gives it."""

    phone: str | None = Field(default=None, min_length=1, max_length=20)
    id_number: str | None = Field(default=None, min_length=1, max_length=32)


class PartyMatch(BaseModel):
    customer_id: uuid.UUID
    name_masked: str = Field(description="张* — enough for the payer to confirm")
    account_number: str | None = Field(description="the default deposit account; null if none")


class PartyLookupResult(BaseModel):
    items: list[PartyMatch]
