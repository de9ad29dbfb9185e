"""API models of subsidy batches. Amounts are integers of fen; files travel base64-encoded in
JSON (the API takes no multipart bodies), at most ``files.MAX_BYTES`` once decoded."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel
from huinong.payments.subsidies import disbursement, files

# base64 grows a file by 4/3
_MAX_BASE64 = files.MAX_BYTES * 4 // 3 + 4


class SubsidyBatchCreate(RequestModel):
    payer_account_number: str = Field(pattern=r"^[0-9]{8,32}$")
    file_name: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1, max_length=_MAX_BASE64)
    encoding: str | None = Field(default=None, max_length=16)


class RejectionCreate(RequestModel):
    reason: str = Field(min_length=1, max_length=500)


class DisbursementCreate(RequestModel):
    chunk_size: int = Field(
        default=disbursement.DEFAULT_CHUNK, ge=1, le=disbursement.MAX_CHUNK, strict=True
    )


class SubsidyBatchRead(BaseModel):
    id: uuid.UUID
    status: str
    payer_customer_id: uuid.UUID
    payer_account_id: uuid.UUID
    file_name: str
    file_format: str
    row_count: int
    valid_count: int
    invalid_count: int
    valid_amount: int
    maker_id: uuid.UUID
    checker_id: uuid.UUID | None
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    rejection_reason: str | None
    disbursed_at: datetime | None


class StatusTotalRead(BaseModel):
    rows: int
    amount: int


class ReconciliationRead(BaseModel):
    payer_debit: int
    paid_plus_suspense: int
    reconciled: bool


class SubsidyBatchSummaryRead(SubsidyBatchRead):
    totals: dict[str, StatusTotalRead]
    released_from_suspense: StatusTotalRead
    reconciliation: ReconciliationRead


class DisbursementRunRead(BaseModel):
    chunks: int
    rows: int
    paid: int
    suspense: int
    failed: int
    amount: int


class DisbursementRead(BaseModel):
    run: DisbursementRunRead
    batch: SubsidyBatchSummaryRead


class SubsidyRowRead(BaseModel):
    row_number: int
    status: str
    name: str | None  # masked unless the caller's role shows names
    id_number_masked: str | None
    customer_id: uuid.UUID | None
    account_number: str | None  # masked unless the caller's role shows account numbers
    amount: int | None
    subsidy_type: str | None
    year: int | None
    failure_code: str | None
    paid_at: datetime | None
    released_at: datetime | None


class SubsidyRowPage(BaseModel):
    items: list[SubsidyRowRead]
    next_after_row: int | None
