"""API models of deposit accounts and payments. Amounts are strict integers of fen."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from huinong.inputs import RequestModel
from huinong.money import MAX_FEN

Fen = Annotated[int, Field(strict=True, gt=0, le=MAX_FEN)]
FeeFen = Annotated[int, Field(strict=True, ge=0, le=MAX_FEN)]
AccountNumber = Annotated[str, Field(pattern=r"^[0-9]{8,32}$")]


class DepositAccountCreate(RequestModel):
    customer_id: uuid.UUID
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class DepositAccountRead(BaseModel):
    id: uuid.UUID
    account_number: str
    customer_id: uuid.UUID
    currency: str
    balance: int
    available: int
    closed: bool
    created_at: datetime


class CashCreate(RequestModel):
    account_number: AccountNumber
    amount: Fen
    memo: str | None = Field(default=None, max_length=140)


class CustomerTransferCreate(RequestModel):
    from_account_number: AccountNumber
    to_account_number: AccountNumber
    amount: Fen
    fee: FeeFen = 0
    memo: str | None = Field(default=None, max_length=140)


class ReversalCreate(RequestModel):
    memo: str | None = Field(default=None, max_length=140)


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    client_id: str
    kind: str
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    fee: int
    currency: str
    memo: str | None
    reverses_id: uuid.UUID | None
    created_at: datetime
