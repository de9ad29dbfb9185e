"""API models of billers, bills, bill payments and reconciliations. Amounts are integer fen."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from huinong.inputs import RequestModel
from huinong.money import MAX_FEN
from huinong.payments.bills.models import BillerKind, BillerProtocol

Fen = Annotated[int, Field(strict=True, gt=0, le=MAX_FEN)]
AccountNumber = Annotated[str, Field(pattern=r"^[0-9]{8,32}$")]
Reference = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z\-]{0,63}$")]
PublicKeyHex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{130}$")]


class BillerCreate(RequestModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    name: str = Field(min_length=1, max_length=200)
    kind: BillerKind
    protocol: BillerProtocol = BillerProtocol.file
    base_url: str | None = Field(default=None, max_length=500)
    biller_public_key: PublicKeyHex | None = None


class BillerUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=500)
    biller_public_key: PublicKeyHex | None = None
    active: bool | None = None


class BillerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    kind: str
    protocol: str
    settlement_account_id: uuid.UUID
    base_url: str | None
    biller_public_key: str | None
    our_public_key: str | None  # give it to the biller: it verifies our requests with it
    active: bool
    created_at: datetime
    updated_at: datetime


class BillerPage(BaseModel):
    items: list[BillerRead]


class BillRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    biller_id: uuid.UUID
    reference: str
    period: str
    amount_due: int
    due_date: date | None
    status: str
    source: str
    biller_bill_id: str | None
    created_at: datetime
    paid_at: datetime | None


class BillPage(BaseModel):
    items: list[BillRead]
    next_cursor: str | None


class BillQuery(RequestModel):
    reference: Reference


class BillFileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    biller_id: uuid.UUID
    filename: str | None
    encoding: str
    row_count: int
    new_bills: int
    total_amount: int
    imported_at: datetime
    replayed: bool = False


class BillPaymentCreate(RequestModel):
    bill_id: uuid.UUID
    account_number: AccountNumber
    amount: Fen


class BillPaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    client_id: str
    bill_id: uuid.UUID
    biller_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    transfer_id: uuid.UUID
    amount: int
    currency: str
    channel: str
    business_date: date
    confirmation: str
    confirmation_attempts: int
    last_confirmation_error: str | None
    biller_receipt: str | None
    confirmed_at: datetime | None
    created_at: datetime


class MismatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    payment_reference: str
    reference: str | None
    our_amount: int | None
    their_amount: int | None
    their_row: int | None


class ReconciliationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    biller_id: uuid.UUID
    business_date: date
    their_count: int
    their_amount: int
    our_count: int
    our_amount: int
    matched_count: int
    matched_amount: int
    mismatch_count: int
    settled_amount: int
    settlement_transfer_id: uuid.UUID | None
    created_at: datetime
    mismatches: list[MismatchRead] = []
