"""API models of customers.

Identity-document numbers and phones come back masked in every ordinary response; the name is
in full or masked by the caller's role (``huinong.security.personal_data.masking``). The full
values are disclosed only by the reveal use case, which states a purpose.

A lookup takes the identifier in the request body, not the URL: URLs end up in access logs,
proxies and browser history, which must never hold a C2 value.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.parties.models import CustomerKind


class CustomerCreate(RequestModel):
    kind: CustomerKind
    name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=32)
    phone: str | None = Field(default=None, max_length=20)
    village_code: str | None = Field(
        default=None, min_length=2, max_length=12, description="12-digit code of the village"
    )


class CustomerRead(BaseModel):
    id: uuid.UUID
    kind: CustomerKind
    name: str = Field(description="in full for roles serving the customer, else masked (张*)")
    id_number_masked: str = Field(description="first 6 and last 4 characters kept")
    phone_masked: str | None = Field(description="first 3 and last 4 digits kept")
    village_code: str | None = Field(default=None, description="the village the customer lives in")
    created_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


class CustomerLookup(RequestModel):
    """Exactly one of the two identifiers, as the customer gives it."""

    id_number: str | None = Field(default=None, min_length=1, max_length=32)
    phone: str | None = Field(default=None, min_length=1, max_length=20)


class CustomerMatches(BaseModel):
    items: list[CustomerRead]


RevealableField = Literal["id_number", "phone"]


class RevealPurpose(StrEnum):
    """Why a full identifier is needed; a code, not free text, so the audit trail can be
    reviewed by purpose and never receives personal data typed into a note."""

    contract_signing = "contract_signing"  # a form or contract the customer signs carries it
    customer_contact = "customer_contact"  # calling the customer back
    regulatory_report = "regulatory_report"  # AML and large-transaction reports to the PBC


class CustomerReveal(RequestModel):
    fields: list[RevealableField] = Field(min_length=1, max_length=2)
    purpose: RevealPurpose = Field(description="why the full value is needed; audited")


class CustomerRevealed(BaseModel):
    id: uuid.UUID
    id_number: str | None = None
    phone: str | None = None


class FarmerCodeRead(BaseModel):
    """A farmer code in force: only its last digits (the code is shown once, when issued)."""

    customer_id: uuid.UUID
    last_digits: str
    issued_at: datetime


class FarmerCodeIssued(FarmerCodeRead):
    """The new code, printed on the farmer's card now; it cannot be shown again."""

    farmer_code: str
