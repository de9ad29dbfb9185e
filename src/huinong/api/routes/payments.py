"""Deposit accounts and the teller and customer payments. Every money move requires an
``Idempotency-Key``; its value is also the payment's client id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from huinong.api.deps import (
    Database,
    DatabaseDep,
    IdempotencyKeyDep,
    Principal,
    PrincipalDep,
    run_idempotent,
)
from huinong.ledger import service as ledger
from huinong.ledger.models import Account
from huinong.payments import service
from huinong.payments.models import Payment
from huinong.payments.schemas import (
    CashCreate,
    CustomerTransferCreate,
    DepositAccountCreate,
    DepositAccountRead,
    PaymentRead,
    ReversalCreate,
)

router = APIRouter(tags=["payments"])


def deposit_account_read(account: Account) -> DepositAccountRead:
    posted = account.credits_posted - account.debits_posted
    assert account.account_number is not None and account.owner_id is not None
    return DepositAccountRead(
        id=account.id,
        account_number=account.account_number,
        customer_id=account.owner_id,
        currency=account.ledger,
        balance=posted,
        available=posted - account.debits_pending,
        closed=account.closed,
        created_at=account.created_at,
    )


@router.post("/deposit-accounts", status_code=201, response_model=DepositAccountRead)
def open_deposit_account(
    body: DepositAccountCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: deposit_account_read(
            service.open_deposit_account(
                s,
                institution_id=principal.institution_id,
                customer_id=body.customer_id,
                currency=body.currency,
            )
        )
    )


@router.get("/deposit-accounts/{account_number}", response_model=DepositAccountRead)
def get_deposit_account(account_number: str, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: deposit_account_read(
            service.deposit_account(
                s, institution_id=principal.institution_id, account_number=account_number
            )
        )
    )


@router.post("/deposit-accounts/{account_number}/close", response_model=DepositAccountRead)
def close_deposit_account(
    account_number: str, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def unit(session):  # type: ignore[no-untyped-def]
        account = service.close_deposit_account(
            session, institution_id=principal.institution_id, account_number=account_number
        )
        return deposit_account_read(
            ledger.get_account(
                session, institution_id=principal.institution_id, account_id=account.id
            )
        )

    return database.run(unit)


@dataclass(frozen=True)
class MoneyMove:
    """What every money-moving route needs: it runs a payment use case once per
    Idempotency-Key (whose value is also the payment's client id) and answers 201."""

    request: Request
    database: Database
    principal: Principal
    key: str

    def run(self, body: BaseModel, use_case: Callable[..., Payment], **arguments: Any) -> Any:
        def work(session: Session) -> tuple[int, Any]:
            payment = use_case(
                session,
                institution_id=self.principal.institution_id,
                client_id=self.key,
                **arguments,
            )
            return 201, PaymentRead.model_validate(payment).model_dump(mode="json")

        return run_idempotent(
            request=self.request,
            database=self.database,
            principal=self.principal,
            key=self.key,
            body=body,
            work=work,
            action=f"payments.{use_case.__name__}",
            object_type="payment",
        )


def money_move(
    request: Request, principal: PrincipalDep, database: DatabaseDep, key: IdempotencyKeyDep
) -> MoneyMove:
    return MoneyMove(request, database, principal, key)


MoneyMoveDep = Annotated[MoneyMove, Depends(money_move)]


@router.post("/cash-deposits", status_code=201, response_model=PaymentRead)
def cash_deposit(body: CashCreate, move: MoneyMoveDep) -> Any:
    """A teller takes cash over the counter into a deposit account."""
    return move.run(body, service.cash_deposit, **body.model_dump())


@router.post("/cash-withdrawals", status_code=201, response_model=PaymentRead)
def cash_withdrawal(body: CashCreate, move: MoneyMoveDep) -> Any:
    """A teller pays cash out of a deposit account."""
    return move.run(body, service.cash_withdrawal, **body.model_dump())


@router.post("/transfers", status_code=201, response_model=PaymentRead)
def customer_transfer(body: CustomerTransferCreate, move: MoneyMoveDep) -> Any:
    """转账汇款: from one customer's deposit account to another's, with an optional fee."""
    return move.run(body, service.transfer, **body.model_dump())


@router.post("/payments/{payment_id}/reversal", status_code=201, response_model=PaymentRead)
def reverse_payment(payment_id: uuid.UUID, body: ReversalCreate, move: MoneyMoveDep) -> Any:
    """Reverse a payment with new, mirroring transfers (the original stays as it was)."""
    return move.run(body, service.reverse, payment_id=payment_id, memo=body.memo)


@router.get("/payments/{payment_id}", response_model=PaymentRead)
def get_payment(payment_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: PaymentRead.model_validate(
            service.get_payment(s, institution_id=principal.institution_id, payment_id=payment_id)
        )
    )
