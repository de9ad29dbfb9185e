"""Village service points (助农服务点): the registry and terms (staff), PINs (tellers), and the
operations their signed terminals perform (agents)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from huinong.api.deps import (
    Database,
    DatabaseDep,
    IdempotencyKeyDep,
    Principal,
    PrincipalDep,
    run_idempotent,
)
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.payments.schemas import PaymentRead
from huinong.payments.service_points import operations, pins, points, reports, withdrawal_codes
from huinong.payments.service_points.models import ServicePoint
from huinong.payments.service_points.rules import AgentTerms
from huinong.payments.service_points.schemas import (
    AgentBillPayment,
    AgentTermsRead,
    AgentTermsUpdate,
    AgentTransfer,
    AssistedWithdrawal,
    BalanceInquiry,
    BalanceRead,
    CommissionRun,
    DayReportRead,
    FarmerCodeWithdrawal,
    OperationRead,
    PayoutLineRead,
    PinSet,
    ServicePointCreate,
    ServicePointRead,
    SmallDeposit,
    WithdrawalCodeRequest,
    WithdrawalCodeSent,
)
from huinong.security.personal_data.masking import mask_phone

router = APIRouter(tags=["service points"])


def point_read(session: Session, point: ServicePoint) -> ServicePointRead:
    account = points.float_account(session, point=point)
    assert account.account_number is not None
    return ServicePointRead(
        id=point.id,
        code=point.code,
        name=point.name,
        outlet_id=point.outlet_id,
        village_code=point.village_code,
        agent_customer_id=point.agent_customer_id,
        float_account_number=account.account_number,
        float_balance=account.credits_posted - account.debits_posted,
        status=point.status,
        created_at=point.created_at,
    )


def operation_read(session: Session, result: operations.OperationResult) -> dict[str, Any]:
    point = session.get(ServicePoint, result.operation.service_point_id)
    assert point is not None and result.account.account_number is not None
    return OperationRead(
        id=result.operation.id,
        kind=result.operation.kind,
        service_point_code=point.code,
        account_number=result.account.account_number,
        amount=result.operation.amount,
        commission=result.operation.commission,
        business_date=result.operation.business_date,
        payment=PaymentRead.model_validate(result.payment) if result.payment else None,
        bill_payment_id=result.bill_payment.id if result.bill_payment else None,
    ).model_dump(mode="json")


def with_failures_recorded(database: Database, call: Any) -> Any:
    """Run an operation that checks a PIN or one-time code; a wrong one rolls the operation
    back, so its failure is counted in a transaction of its own before the refusal is
    answered."""
    try:
        return call()
    except pins.CheckRefused as refused:
        database.run(refused.record_failure)
        raise refused.error from None


@router.get("/agent-terms", response_model=AgentTermsRead)
def get_terms(principal: PrincipalDep, database: DatabaseDep) -> Any:
    terms = database.run(lambda s: points.get_terms(s, institution_id=principal.institution_id))
    return AgentTermsRead(**asdict(terms))


@router.put("/agent-terms", response_model=AgentTermsRead)
def set_terms(body: AgentTermsUpdate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    terms = database.run(
        lambda s: points.set_terms(
            s,
            institution_id=principal.institution_id,
            terms=AgentTerms(**body.model_dump()),
            actor=principal,
        )
    )
    return AgentTermsRead(**asdict(terms))


@router.post("/service-points", status_code=201, response_model=ServicePointRead)
def create_service_point(
    body: ServicePointCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: point_read(
            s,
            points.create_service_point(
                s, institution_id=principal.institution_id, actor=principal, **body.model_dump()
            ),
        )
    )


@router.get("/service-points", response_model=list[ServicePointRead])
def list_service_points(principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: [
            point_read(s, p)
            for p in points.list_service_points(s, institution_id=principal.institution_id)
        ]
    )


@router.get("/service-points/{service_point_id}", response_model=ServicePointRead)
def get_service_point(
    service_point_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: point_read(
            s,
            points.get_service_point(
                s, institution_id=principal.institution_id, service_point_id=service_point_id
            ),
        )
    )


@router.get("/service-points/{service_point_id}/day-report", response_model=DayReportRead)
def day_report(
    service_point_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    business_date: date | None = None,
) -> Any:
    def unit(session: Session) -> DayReportRead:
        day = (
            business_date
            or institutions.get_institution(
                session, institution_id=principal.institution_id
            ).business_date
        )
        report = reports.end_of_day(
            session,
            institution_id=principal.institution_id,
            service_point_id=service_point_id,
            day=day,
        )
        return DayReportRead.model_validate(asdict(report))

    return database.run(unit)


@router.post("/agent-commissions", response_model=list[PayoutLineRead])
def pay_commissions(body: CommissionRun, principal: PrincipalDep, database: DatabaseDep) -> Any:
    lines = database.run(
        lambda s: reports.pay_commissions(
            s, institution_id=principal.institution_id, month=body.month
        )
    )
    return [PayoutLineRead(**asdict(line)) for line in lines]


@router.post("/deposit-accounts/{account_number}/pin", status_code=204)
def set_pin(
    account_number: str, body: PinSet, principal: PrincipalDep, database: DatabaseDep
) -> None:
    database.run(
        lambda s: pins.set_pin(
            s,
            institution_id=principal.institution_id,
            account_number=account_number,
            pin=body.pin,
            actor=principal,
        )
    )


@router.post("/agent/balance-inquiries", response_model=BalanceRead)
def balance_inquiry(body: BalanceInquiry, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def unit(session: Session) -> BalanceRead:
        result = operations.balance_inquiry(
            session,
            principal=principal,
            account_number=body.account_number,
            pin_ciphertext=body.pin_ciphertext,
        )
        balance = ledger.balance(
            session, institution_id=principal.institution_id, account_id=result.account.id
        )
        return BalanceRead(
            account_number=body.account_number,
            balance=balance.balance,
            available=balance.available,
        )

    return with_failures_recorded(database, lambda: database.run(unit))


def _agent_money_move(
    *,
    request: Request,
    principal: Principal,
    database: Database,
    key: str,
    body: Any,
    action: str,
    use_case: Callable[[Session], operations.OperationResult],
) -> Any:
    """A PIN-checked money operation of a terminal, run once per Idempotency-Key."""

    def work(session: Session) -> tuple[int, Any]:
        return 201, operation_read(session, use_case(session))

    return with_failures_recorded(
        database,
        lambda: run_idempotent(
            request=request,
            database=database,
            principal=principal,
            key=key,
            body=body,
            work=work,
            action=action,
            object_type="agent_operation",
        ),
    )


@router.post("/agent/withdrawals", status_code=201, response_model=OperationRead)
def assisted_withdrawal(
    body: AssistedWithdrawal,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """助农取款 at a service point: PIN-checked, within the institution's limits."""
    return _agent_money_move(
        request=request,
        principal=principal,
        database=database,
        key=key,
        body=body,
        action="agents.assisted_withdrawal",
        use_case=lambda s: operations.assisted_withdrawal(
            s,
            principal=principal,
            client_id=key,
            account_number=body.account_number,
            pin_ciphertext=body.pin_ciphertext,
            amount=body.amount,
        ),
    )


@router.post("/agent/withdrawal-codes", status_code=202, response_model=WithdrawalCodeSent)
def send_withdrawal_code(
    body: WithdrawalCodeRequest, request: Request, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Send a one-time code to the phone of the farmer card's holder, for a withdrawal of this
    amount here by farmer code (一码通); the code is sent once the request has committed."""
    sent = database.run(
        lambda s: withdrawal_codes.request_code(
            s, principal=principal, farmer_code=body.farmer_code, amount=body.amount
        )
    )
    request.app.state.otp_sender.send(
        institution_code=principal.institution_code, phone=sent.phone, code=sent.code
    )
    return WithdrawalCodeSent(
        challenge_id=sent.challenge.id,
        phone=mask_phone(sent.phone) or "",
        amount=sent.challenge.amount,
        expires_at=sent.challenge.expires_at,
    )


@router.post("/agent/withdrawals/by-farmer-code", status_code=201, response_model=OperationRead)
def assisted_withdrawal_by_farmer_code(
    body: FarmerCodeWithdrawal,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """助农取款 by farmer code and the one-time code sent to the card holder's phone."""
    return _agent_money_move(
        request=request,
        principal=principal,
        database=database,
        key=key,
        body=body,
        action="agents.assisted_withdrawal",
        use_case=lambda s: operations.assisted_withdrawal_by_farmer_code(
            s,
            principal=principal,
            client_id=key,
            farmer_code=body.farmer_code,
            one_time_code=body.one_time_code,
            amount=body.amount,
        ),
    )


@router.post("/agent/transfers", status_code=201, response_model=OperationRead)
def agent_transfer(
    body: AgentTransfer,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """转账 at a service point, from the customer's account (PIN-checked) to another."""
    return _agent_money_move(
        request=request,
        principal=principal,
        database=database,
        key=key,
        body=body,
        action="agents.transfer",
        use_case=lambda s: operations.agent_transfer(
            s,
            principal=principal,
            client_id=key,
            account_number=body.account_number,
            pin_ciphertext=body.pin_ciphertext,
            to_account_number=body.to_account_number,
            amount=body.amount,
        ),
    )


@router.post("/agent/bill-payments", status_code=201, response_model=OperationRead)
def agent_bill_payment(
    body: AgentBillPayment,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """缴费 at a service point: a bill paid from the customer's account (PIN-checked)."""
    return _agent_money_move(
        request=request,
        principal=principal,
        database=database,
        key=key,
        body=body,
        action="agents.bill_payment",
        use_case=lambda s: operations.agent_bill_payment(
            s,
            principal=principal,
            client_id=key,
            account_number=body.account_number,
            pin_ciphertext=body.pin_ciphertext,
            bill_id=body.bill_id,
            amount=body.amount,
        ),
    )


@router.post("/agent/deposits", status_code=201, response_model=OperationRead)
def small_deposit(
    body: SmallDeposit,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """A small deposit at a service point, where the institution allows them."""

    def work(session: Session) -> tuple[int, Any]:
        result = operations.small_deposit(
            session,
            principal=principal,
            client_id=key,
            account_number=body.account_number,
            amount=body.amount,
        )
        return 201, operation_read(session, result)

    return run_idempotent(
        request=request,
        database=database,
        principal=principal,
        key=key,
        body=body,
        work=work,
        action="agents.small_deposit",
        object_type="agent_operation",
    )
