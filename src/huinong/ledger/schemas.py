"""API models of the ledger. Amounts are strict JSON integers of fen: a float, a string, a
negative number or one beyond a signed 64-bit integer is refused before anything runs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from huinong.inputs import RequestModel
from huinong.ledger.types import AccountType
from huinong.money import MAX_FEN

Fen = Annotated[int, Field(strict=True, gt=0, le=MAX_FEN)]
LedgerCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
FlagName = Literal[
    "linked", "pending", "post_pending", "void_pending", "balancing_debit", "balancing_credit"
]
MAX_BATCH = 8190
MAX_METADATA_CHARS = 2048
MAX_METADATA_DEPTH = 8


class AccountCreate(RequestModel):
    id: uuid.UUID | None = Field(default=None, description="client-supplied id (idempotent)")
    ledger: LedgerCode = "CNY"
    type: AccountType
    code: int = Field(strict=True, ge=1, le=65535)
    name: str = Field(min_length=1, max_length=200)
    owner_id: uuid.UUID | None = None
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    ledger: str
    type: AccountType
    code: int
    name: str
    owner_id: uuid.UUID | None
    account_number: str | None
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    created_at: datetime


class AccountPage(BaseModel):
    items: list[AccountRead]
    next_cursor: str | None


class BalanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    account_id: uuid.UUID
    ledger: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balance: int
    available: int
    as_of: datetime


class TransferCreate(RequestModel):
    id: uuid.UUID = Field(description="client-supplied id: the transfer's idempotency key")
    debit_account_id: uuid.UUID | None = None
    credit_account_id: uuid.UUID | None = None
    amount: Fen | None = Field(default=None, description="fen; a post without it posts all")
    ledger: LedgerCode | None = None
    code: int = Field(default=0, strict=True, ge=0, le=65535)
    flags: list[FlagName] = Field(default_factory=list, max_length=6)
    pending_id: uuid.UUID | None = None
    timeout: int = Field(default=0, strict=True, ge=0, le=2**31 - 1, description="seconds")
    reference: str | None = Field(default=None, max_length=64)
    metadata: dict[str, Any] | None = Field(default=None, max_length=32)

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if _depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata nests at most {MAX_METADATA_DEPTH} levels deep")
        if len(json.dumps(value, ensure_ascii=False)) > MAX_METADATA_CHARS:
            raise ValueError(f"metadata is at most {MAX_METADATA_CHARS} characters of JSON")
        return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class TransferBatch(RequestModel):
    transfers: list[TransferCreate] = Field(min_length=1, max_length=MAX_BATCH)


class TransferResultRead(BaseModel):
    index: int
    id: uuid.UUID
    result: str
    timestamp: datetime | None
    amount: int | None


class TransferBatchResult(BaseModel):
    results: list[TransferResultRead]


class TransferRead(BaseModel):
    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    ledger: str
    code: int
    flags: list[str]
    pending_id: uuid.UUID | None
    timeout: int
    reference: str | None
    metadata: dict[str, Any] | None
    timestamp: datetime


class TransferPage(BaseModel):
    items: list[TransferRead]
    next_cursor: str | None


class StatementLineRead(BaseModel):
    transfer: TransferRead
    side: Literal["debit", "credit"]
    posted_change: int
    pending_change: int
    balance_after: int


class StatementPage(BaseModel):
    account_id: uuid.UUID
    items: list[StatementLineRead]
    next_cursor: str | None
