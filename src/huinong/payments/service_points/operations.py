"""What a service point's signed terminal does: balance inquiry, assisted withdrawal (助农取款),
small deposit, transfer and bill payment on the customer's behalf.

Every operation that moves money is a payment between deposit accounts (or a bill payment),
with the Idempotency-Key as client id, so replays and reversals work as at the counter: a
withdrawal moves the amount from the customer's account to the agent's float and the agent
hands over cash; a deposit runs the other way. Money leaving a customer's account counts
against one daily limit per customer, and cash paid out against one per point; the daily
totals are raised with a conditional UPDATE, so concurrent operations cannot pass a limit
together. Each operation is journalled with the commission it earns (业务量计酬).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from huinong import clock
from huinong.db import is_postgres
from huinong.errors import Conflict
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.ledger.models import Account
from huinong.payments import service as payments
from huinong.payments.bills import paying as bill_paying
from huinong.payments.bills.models import BillPayment
from huinong.payments.models import Payment
from huinong.payments.service_points import pins, points, rules, withdrawal_codes
from huinong.payments.service_points.models import (
    AgentOperation,
    CustomerAccountDay,
    ServicePoint,
    ServicePointDay,
)
from huinong.payments.service_points.rules import AgentTerms, OperationKind
from huinong.security.audit import service as audit
from huinong.security.principals import Principal

# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class OperationResult:
    operation: AgentOperation
    payment: Payment | None
    account: Account
    bill_payment: BillPayment | None = None


def _raise_day_total(
    session: Session,
    model: type[ServicePointDay] | type[CustomerAccountDay],
    key: dict[str, object],
    amount: int,
    limit: int,
) -> bool:
    """Add ``amount`` to a day's total unless that would pass ``limit``; atomic."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    table = model.__table__
    session.execute(insert(table).values(**key, withdrawn=0).on_conflict_do_nothing())
    raised = session.execute(
        update(table)
        .where(*(table.c[name] == value for name, value in key.items()))
        .where(table.c.withdrawn + amount <= limit)
        .values(withdrawn=table.c.withdrawn + amount)
    )
    return bool(raised.rowcount)


def _journal(
    session: Session,
    *,
    point: ServicePoint,
    principal: Principal,
    kind: OperationKind,
    account: Account,
    payment: Payment | None,
    amount: int,
    terms: AgentTerms,
    bill_payment: BillPayment | None = None,
) -> AgentOperation:
    institution = institutions.get_institution(session, institution_id=point.institution_id)
    operation = AgentOperation(
        id=uuid7(),
        institution_id=point.institution_id,
        service_point_id=point.id,
        terminal_id=principal.subject_id,
        kind=kind,
        account_id=account.id,
        payment_id=payment.id if payment else None,
        bill_payment_id=bill_payment.id if bill_payment else None,
        amount=amount,
        commission=terms.commission(kind),
        business_date=institution.business_date,
        created_at=clock.now(),
    )
    session.add(operation)
    session.flush()
    return operation


def _moved(
    session: Session,
    *,
    point: ServicePoint,
    principal: Principal,
    terms: AgentTerms,
    kind: OperationKind,
    account: Account,
    client_id: str,
    from_account_number: str,
    to_account_number: str,
    amount: int,
    memo: str,
) -> OperationResult:
    """Move the money as a customer transfer and journal the operation for ``account``."""
    payment = payments.transfer(
        session,
        institution_id=point.institution_id,
        client_id=client_id,
        from_account_number=from_account_number,
        to_account_number=to_account_number,
        amount=amount,
        memo=memo,
    )
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=kind,
        account=account,
        payment=payment,
        amount=amount,
        terms=terms,
    )
    return OperationResult(operation, payment, account)


def balance_inquiry(
    session: Session, *, principal: Principal, account_number: str, pin_ciphertext: str
) -> OperationResult:
    point, terms, account = _paying_customer(
        session, principal=principal, account_number=account_number, pin_ciphertext=pin_ciphertext
    )
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=OperationKind.balance_inquiry,
        account=account,
        payment=None,
        amount=0,
        terms=terms,
    )
    audit.record(
        session,
        action="agents.balance_inquiry",
        institution_id=point.institution_id,
        actor=principal,
        object_type="account",
        object_id=str(account.id),
    )
    return OperationResult(operation, None, account)


def assisted_withdrawal(
    session: Session,
    *,
    principal: Principal,
    client_id: str,
    account_number: str,
    pin_ciphertext: str,
    amount: int,
) -> OperationResult:
    """助农取款: the customer's account pays the agent's float; the agent pays out cash."""
    point, terms, account = _paying_customer(
        session, principal=principal, account_number=account_number, pin_ciphertext=pin_ciphertext
    )
    return _withdraw(
        session,
        point=point,
        terms=terms,
        account=account,
        principal=principal,
        client_id=client_id,
        amount=amount,
    )


def assisted_withdrawal_by_farmer_code(
    session: Session,
    *,
    principal: Principal,
    client_id: str,
    farmer_code: str,
    one_time_code: str,
    amount: int,
) -> OperationResult:
    """助农取款 by farmer code (一码通): the card names the customer, the one-time code sent
    to their phone (``withdrawal_codes.request_code``) authorises this amount here."""
    point = points.service_point_of(session, principal=principal)
    terms = points.get_terms(session, institution_id=point.institution_id)
    account, _ = withdrawal_codes.card_holder_account(session, point=point, farmer_code=farmer_code)
    withdrawal_codes.consume_code(
        session, point=point, account=account, code=one_time_code, amount=amount
    )
    return _withdraw(
        session,
        point=point,
        terms=terms,
        account=account,
        principal=principal,
        client_id=client_id,
        amount=amount,
    )


def _withdraw(
    session: Session,
    *,
    point: ServicePoint,
    terms: AgentTerms,
    account: Account,
    principal: Principal,
    client_id: str,
    amount: int,
) -> OperationResult:
    rules.check_withdrawal(terms, amount)
    day = _count_against_customer_day(
        session, point=point, account=account, amount=amount, terms=terms
    )
    if not _raise_day_total(
        session,
        ServicePointDay,
        {"service_point_id": point.id, "business_date": day},
        amount,
        terms.withdrawal_per_service_point_day,
    ):
        raise Conflict(
            "agents.over_service_point_day_limit",
            "the service point has reached its withdrawals for the day",
            field="amount",
        )
    payout = points.float_account(session, point=point)
    assert payout.account_number is not None and account.account_number is not None
    return _moved(
        session,
        point=point,
        principal=principal,
        terms=terms,
        kind=OperationKind.assisted_withdrawal,
        account=account,
        client_id=client_id,
        from_account_number=account.account_number,
        to_account_number=payout.account_number,
        amount=amount,
        memo=f"助农取款 {point.code}",
    )


def _count_against_customer_day(
    session: Session, *, point: ServicePoint, account: Account, amount: int, terms: AgentTerms
) -> date:
    """Money leaving a customer's account at service points counts against one daily limit,
    whether it leaves as cash, a transfer or a bill; returns the business date."""
    day = institutions.get_institution(session, institution_id=point.institution_id).business_date
    if not _raise_day_total(
        session,
        CustomerAccountDay,
        {"account_id": account.id, "business_date": day},
        amount,
        terms.withdrawal_per_customer_day,
    ):
        raise Conflict(
            "agents.over_customer_day_limit",
            f"this account may pay out at most {terms.withdrawal_per_customer_day} fen a day "
            "at service points",
            field="amount",
        )
    return day


def _paying_customer(
    session: Session, *, principal: Principal, account_number: str, pin_ciphertext: str
) -> tuple[ServicePoint, AgentTerms, Account]:
    point = points.service_point_of(session, principal=principal)
    account = payments.deposit_account(
        session, institution_id=point.institution_id, account_number=account_number
    )
    pin = pins.decrypt_pin(
        session, institution_id=point.institution_id, pin_ciphertext=pin_ciphertext
    )
    pins.check_pin(session, account=account, pin=pin)
    return point, points.get_terms(session, institution_id=point.institution_id), account


def agent_transfer(
    session: Session,
    *,
    principal: Principal,
    client_id: str,
    account_number: str,
    pin_ciphertext: str,
    to_account_number: str,
    amount: int,
) -> OperationResult:
    """转账 at a service point: the customer, PIN-checked, sends money to another account."""
    point, terms, account = _paying_customer(
        session, principal=principal, account_number=account_number, pin_ciphertext=pin_ciphertext
    )
    rules.check_withdrawal(terms, amount)
    _count_against_customer_day(session, point=point, account=account, amount=amount, terms=terms)
    assert account.account_number is not None
    return _moved(
        session,
        point=point,
        principal=principal,
        terms=terms,
        kind=OperationKind.transfer,
        account=account,
        client_id=client_id,
        from_account_number=account.account_number,
        to_account_number=to_account_number,
        amount=amount,
        memo=f"助农转账 {point.code}",
    )


def agent_bill_payment(
    session: Session,
    *,
    principal: Principal,
    client_id: str,
    account_number: str,
    pin_ciphertext: str,
    bill_id: uuid.UUID,
    amount: int,
) -> OperationResult:
    """缴费 at a service point: the agent pays a bill from the customer's account, PIN-checked.
    An HTTP biller's confirmation follows as for every bill payment (``bills confirm-pending``)."""
    point, terms, account = _paying_customer(
        session, principal=principal, account_number=account_number, pin_ciphertext=pin_ciphertext
    )
    rules.check_withdrawal(terms, amount)
    _count_against_customer_day(session, point=point, account=account, amount=amount, terms=terms)
    paid = bill_paying.pay_bill(
        session,
        institution_id=point.institution_id,
        client_id=client_id,
        bill_id=bill_id,
        account=account,
        amount=amount,
        channel="service_point",
        actor=principal,
    )
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=OperationKind.bill_payment,
        account=account,
        payment=None,
        amount=amount,
        terms=terms,
        bill_payment=paid,
    )
    return OperationResult(operation, None, account, paid)


def small_deposit(
    session: Session, *, principal: Principal, client_id: str, account_number: str, amount: int
) -> OperationResult:
    """The customer hands cash to the agent; the agent's float pays the customer's account."""
    point = points.service_point_of(session, principal=principal)
    terms = points.get_terms(session, institution_id=point.institution_id)
    rules.check_deposit(terms, amount)
    account = payments.deposit_account(
        session, institution_id=point.institution_id, account_number=account_number
    )
    payer = points.float_account(session, point=point)
    assert payer.account_number is not None and account.account_number is not None
    return _moved(
        session,
        point=point,
        principal=principal,
        terms=terms,
        kind=OperationKind.small_deposit,
        account=account,
        client_id=client_id,
        from_account_number=payer.account_number,
        to_account_number=account.account_number,
        amount=amount,
        memo=f"助农存款 {point.code}",
    )
