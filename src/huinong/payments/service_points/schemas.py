"""API models of service points, agents' terms, PINs and terminal operations."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from huinong.inputs import RequestModel
from huinong.payments.schemas import AccountNumber, FeeFen, Fen, PaymentRead

Limit = Field(strict=True, gt=0, le=10**12)
Commission = Field(strict=True, ge=0, le=10**9)


class AgentTermsUpdate(RequestModel):
    withdrawal_per_transaction: int = Limit
    withdrawal_per_customer_day: int = Limit
    withdrawal_per_service_point_day: int = Limit
    deposits_enabled: bool
    deposit_per_transaction: int = Limit
    commission_withdrawal: int = Commission
    commission_deposit: int = Commission
    commission_transfer: int = Commission
    commission_balance_inquiry: int = Commission
    commission_bill_payment: int = Commission


class AgentTermsRead(BaseModel):
    withdrawal_per_transaction: int
    withdrawal_per_customer_day: int
    withdrawal_per_service_point_day: int
    deposits_enabled: bool
    deposit_per_transaction: int
    commission_withdrawal: int
    commission_deposit: int
    commission_transfer: int
    commission_balance_inquiry: int
    commission_bill_payment: int


class ServicePointCreate(RequestModel):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
    name: str = Field(min_length=1, max_length=200)
    outlet_id: uuid.UUID
    agent_customer_id: uuid.UUID
    village_code: str | None = Field(default=None, min_length=12, max_length=12)


class ServicePointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    code: str
    name: str
    outlet_id: uuid.UUID
    village_code: str | None
    agent_customer_id: uuid.UUID
    float_account_number: str
    float_balance: int
    status: str
    created_at: datetime


class PinSet(RequestModel):
    pin: str = Field(min_length=6, max_length=6)


class BalanceInquiry(RequestModel):
    account_number: AccountNumber
    pin_ciphertext: str = Field(min_length=2, max_length=1024, pattern=r"^[0-9a-fA-F]+$")


class AssistedWithdrawal(BalanceInquiry):
    amount: Fen


FarmerCodeText = Annotated[str, Field(min_length=19, max_length=40, pattern=r"^[0-9 ]+$")]


class WithdrawalCodeRequest(RequestModel):
    """Ask for a one-time code to the card holder's phone before a withdrawal by farmer code."""

    farmer_code: FarmerCodeText
    amount: Fen


class WithdrawalCodeSent(BaseModel):
    challenge_id: uuid.UUID
    phone: str  # masked: the agent reads the last four digits to the customer
    amount: int
    expires_at: datetime


class FarmerCodeWithdrawal(RequestModel):
    farmer_code: FarmerCodeText
    one_time_code: str = Field(pattern=r"^[0-9]{6}$")
    amount: Fen


class AgentTransfer(BalanceInquiry):
    to_account_number: AccountNumber
    amount: Fen


class AgentBillPayment(BalanceInquiry):
    bill_id: uuid.UUID
    amount: Fen


class SmallDeposit(RequestModel):
    account_number: AccountNumber
    amount: Fen


class BalanceRead(BaseModel):
    account_number: str
    balance: int
    available: int


class OperationRead(BaseModel):
    id: uuid.UUID
    kind: str
    service_point_code: str
    account_number: str
    amount: int
    commission: FeeFen
    business_date: date
    payment: PaymentRead | None
    bill_payment_id: uuid.UUID | None = None


class CommissionRun(RequestModel):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$")


class PayoutLineRead(BaseModel):
    service_point_code: str
    operations: int
    amount: int
    already_paid: bool


class KindTotalsRead(BaseModel):
    kind: str
    count: int
    amount: int
    commission: int


class DifferenceRead(BaseModel):
    operation_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    problem: str


class DayReportRead(BaseModel):
    service_point_code: str
    business_date: date
    totals: list[KindTotalsRead]
    differences: list[DifferenceRead]
