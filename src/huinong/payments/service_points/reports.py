"""The batch side of service points: monthly commission and the end-of-day report.

Commission is paid once per point and month (a unique key) from fee expense into the float,
with a transfer id derived from both, so running the batch again pays nothing twice. The
end-of-day report totals a point's journal for a business date and checks each operation
against the ledger, naming every difference.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput
from huinong.ids import uuid7
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.types import CreateTransferResult, TransferInput
from huinong.payments.bills.models import BillPayment
from huinong.payments.codes import TransferCode
from huinong.payments.models import Payment
from huinong.payments.service_points import points
from huinong.payments.service_points.models import (
    AgentOperation,
    CommissionPayout,
)
from huinong.payments.service_points.rules import OperationKind

COMMISSION_NAMESPACE = uuid.UUID("5b1e8f0e-52a4-4b9c-9a55-0c6f3e3a7d21")

# --------------------------------------------------------------------------- commission


@dataclass(frozen=True)
class PayoutLine:
    service_point_code: str
    operations: int
    amount: int
    already_paid: bool


def _month_bounds(month: str) -> tuple[date, date]:
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise InvalidInput(
            "agents.invalid_month", "give the month as YYYY-MM", field="month"
        ) from None
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, following


def pay_commissions(session: Session, *, institution_id: uuid.UUID, month: str) -> list[PayoutLine]:
    """Pay each service point its commission for a month, from fee expense into its float.
    One payout per point and month (a unique key), with a transfer id derived from both, so
    running the batch again pays nothing twice."""
    first, following = _month_bounds(month)
    lines = []
    expense = ledger.system_account(
        session, institution_id=institution_id, code=AccountCode.fee_expense
    )
    for point in points.list_service_points(session, institution_id=institution_id):
        paid = session.scalar(
            select(CommissionPayout).where(
                CommissionPayout.service_point_id == point.id, CommissionPayout.month == month
            )
        )
        if paid is not None:
            lines.append(PayoutLine(point.code, paid.operations, paid.amount, True))
            continue
        due = session.execute(
            select(AgentOperation.id, AgentOperation.commission).where(
                AgentOperation.service_point_id == point.id,
                AgentOperation.business_date >= first,
                AgentOperation.business_date < following,
                AgentOperation.commission_payout_id.is_(None),
            )
        ).all()
        amount = sum(commission for _, commission in due)
        transfer_id = uuid.uuid5(COMMISSION_NAMESPACE, f"{point.id}:{month}") if amount else None
        if transfer_id is not None:
            result = ledger.create_transfers(
                session,
                institution_id=institution_id,
                batch=[
                    TransferInput(
                        transfer_id,
                        expense.id,
                        point.float_account_id,
                        amount,
                        expense.ledger,
                        code=TransferCode.agent_commission,
                        reference=f"commission {point.code} {month}",
                    )
                ],
            )
            if result[0].result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                raise Conflict(
                    "agents.commission_not_paid",
                    f"the commission of {point.code} was refused: {result[0].result}",
                )
        payout = CommissionPayout(
            id=uuid7(),
            institution_id=institution_id,
            service_point_id=point.id,
            month=month,
            operations=len(due),
            amount=amount,
            transfer_id=transfer_id,
            created_at=clock.now(),
        )
        session.add(payout)
        session.flush()
        if due:
            session.execute(
                update(AgentOperation)
                .where(AgentOperation.id.in_([operation_id for operation_id, _ in due]))
                .values(commission_payout_id=payout.id)
            )
        lines.append(PayoutLine(point.code, len(due), amount, False))
    return lines


# --------------------------------------------------------------------------- end of day


@dataclass(frozen=True)
class KindTotals:
    kind: str
    count: int
    amount: int
    commission: int


@dataclass(frozen=True)
class Difference:
    operation_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    problem: str


@dataclass(frozen=True)
class DayReport:
    service_point_code: str
    business_date: date
    totals: list[KindTotals]
    differences: list[Difference]


def end_of_day(
    session: Session, *, institution_id: uuid.UUID, service_point_id: uuid.UUID, day: date
) -> DayReport:
    """The point's journal for a business date, totalled by kind and checked operation by
    operation against the ledger: each money operation's payment exists, moved the same amount
    between the customer's account and this point's float, in the right direction."""
    point = points.get_service_point(
        session, institution_id=institution_id, service_point_id=service_point_id
    )
    operations = session.scalars(
        select(AgentOperation)
        .where(AgentOperation.service_point_id == point.id, AgentOperation.business_date == day)
        .order_by(AgentOperation.created_at, AgentOperation.id)
    ).all()
    totals = [
        KindTotals(kind, count, amount or 0, commission or 0)
        for kind, count, amount, commission in session.execute(
            select(
                AgentOperation.kind,
                func.count(),
                func.sum(AgentOperation.amount),
                func.sum(AgentOperation.commission),
            )
            .where(AgentOperation.service_point_id == point.id, AgentOperation.business_date == day)
            .group_by(AgentOperation.kind)
            .order_by(AgentOperation.kind)
        ).all()
    ]
    differences = []
    for operation in operations:
        if operation.bill_payment_id is not None:
            paid = session.get(BillPayment, operation.bill_payment_id)
            if paid is None or paid.amount != operation.amount:
                differences.append(
                    Difference(operation.id, operation.bill_payment_id, "bill payment differs")
                )
            continue
        if operation.payment_id is None:
            continue
        payment = session.get(Payment, operation.payment_id)
        expected: tuple[uuid.UUID, uuid.UUID | None] = (
            (operation.account_id, point.float_account_id)
            if operation.kind == OperationKind.assisted_withdrawal
            else (point.float_account_id, operation.account_id)
            if operation.kind == OperationKind.small_deposit
            else (operation.account_id, payment.credit_account_id if payment else None)
        )
        if payment is None:
            differences.append(Difference(operation.id, operation.payment_id, "payment missing"))
        elif payment.amount != operation.amount:
            differences.append(
                Difference(
                    operation.id,
                    payment.id,
                    f"journal says {operation.amount} fen, the ledger {payment.amount} fen",
                )
            )
        elif (payment.debit_account_id, payment.credit_account_id) != expected:
            differences.append(
                Difference(operation.id, payment.id, "the payment moved other accounts")
            )
        elif session.scalar(select(Payment.id).where(Payment.reverses_id == payment.id)):
            differences.append(Difference(operation.id, payment.id, "reversed since"))
    return DayReport(point.code, day, totals, differences)
