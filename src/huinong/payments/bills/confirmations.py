"""The biller confirmation round trip: telling an HTTP biller that its bill was paid.

After our ledger commit a payment to an HTTP biller is confirmed to the biller
(:func:`confirm_payment`). If the confirmation fails or times out, the payment stays recorded
with ``confirmation = pending`` — the customer has paid, the money sits in the biller's
settlement account — and :func:`confirm_pending` (``huinong bills confirm-pending``, and the
daily settlement) retries it; the biller's confirm is idempotent on our payment id, so a retry
after a lost answer cannot pay twice at the biller either. A biller that *refuses* the
confirmation (4xx) leaves the payment pending with the reason recorded for staff to resolve.

:func:`confirm_payment` and :func:`confirm_pending` talk to a biller, so they take the session
factory, not a session, and run their short transactions around the HTTP call, like
``audit.seal_all``: we never hold locks while waiting on someone else's server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import run_in_transaction
from huinong.payments.bills.billers import endpoint
from huinong.payments.bills.client import BillerClient, BillerEndpoint, BillerError
from huinong.payments.bills.models import Bill, Biller, BillPayment, Confirmation
from huinong.payments.bills.paying import get_payment
from huinong.security.audit import service as audit


@dataclass(frozen=True)
class ConfirmationOutcome:
    payment_id: uuid.UUID
    confirmation: str
    error: str | None = None


def confirm_payment(
    factory: sessionmaker[Session], *, institution_id: uuid.UUID, payment_id: uuid.UUID
) -> ConfirmationOutcome:
    """Confirm one payment to its HTTP biller, outside any transaction, then record the
    outcome. Never raises for the biller's failure: the payment stays pending and the reason
    is recorded (the money has moved; only the biller's knowing of it is late)."""

    def load(session: Session) -> tuple[str, BillerEndpoint | None, dict[str, object]]:
        payment = get_payment(session, institution_id=institution_id, payment_id=payment_id)
        if payment.confirmation != Confirmation.pending:
            return payment.confirmation, None, {}
        bill = session.get(Bill, payment.bill_id)
        biller = session.get(Biller, payment.biller_id)
        assert bill is not None and biller is not None and bill.paid_at is not None
        return (
            payment.confirmation,
            endpoint(session, biller),
            {
                "payment_id": str(payment.id),
                "bill_id": bill.biller_bill_id,
                "reference": bill.reference,
                "period": bill.period,
                "amount": payment.amount,
                "paid_at": payment.created_at,
            },
        )

    state, target, request = run_in_transaction(factory, load)
    if target is None:
        return ConfirmationOutcome(payment_id, state)
    try:
        receipt = BillerClient(target).confirm(**request)  # type: ignore[arg-type]
        error = None
    except BillerError as exc:
        receipt, error = None, f"{exc.code}: {exc.message}"[:200]

    def record(session: Session) -> ConfirmationOutcome:
        payment = get_payment(session, institution_id=institution_id, payment_id=payment_id)
        if payment.confirmation != Confirmation.pending:
            return ConfirmationOutcome(payment_id, payment.confirmation)
        payment.confirmation_attempts += 1
        if receipt is not None:
            payment.confirmation = Confirmation.confirmed
            payment.biller_receipt = receipt.receipt
            payment.confirmed_at = clock.now()
            payment.last_confirmation_error = None
        else:
            payment.last_confirmation_error = error
        session.flush()
        audit.record(
            session,
            action="bills.confirmation",
            institution_id=institution_id,
            object_type="bill_payment",
            object_id=str(payment.id),
            outcome="ok" if receipt is not None else "failed",
            detail={"attempt": payment.confirmation_attempts},
        )
        return ConfirmationOutcome(payment_id, payment.confirmation, error)

    return run_in_transaction(factory, record)


@dataclass
class ConfirmSummary:
    confirmed: int = 0
    still_pending: int = 0
    errors: list[str] = field(default_factory=list)


def pending_confirmations(
    session: Session,
    *,
    institution_id: uuid.UUID | None = None,
    biller_id: uuid.UUID | None = None,
    limit: int = 10_000,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(institution id, payment id) of payments whose confirmation is pending, oldest first."""
    statement = select(BillPayment.institution_id, BillPayment.id).where(
        BillPayment.confirmation == Confirmation.pending
    )
    if institution_id is not None:
        statement = statement.where(BillPayment.institution_id == institution_id)
    if biller_id is not None:
        statement = statement.where(BillPayment.biller_id == biller_id)
    rows = session.execute(statement.order_by(BillPayment.id).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def confirm_pending(
    factory: sessionmaker[Session],
    *,
    institution_id: uuid.UUID | None = None,
    biller_id: uuid.UUID | None = None,
    on_each: Callable[[], object] | None = None,
) -> ConfirmSummary:
    """Retry every pending confirmation (of one institution or biller, or all)."""
    todo = run_in_transaction(
        factory,
        lambda s: pending_confirmations(s, institution_id=institution_id, biller_id=biller_id),
    )
    summary = ConfirmSummary()
    for owner, payment_id in todo:
        outcome = confirm_payment(factory, institution_id=owner, payment_id=payment_id)
        if outcome.confirmation == Confirmation.confirmed:
            summary.confirmed += 1
        elif outcome.confirmation == Confirmation.pending:
            summary.still_pending += 1
            if outcome.error:
                summary.errors.append(f"{payment_id}: {outcome.error}")
        if on_each is not None:
            on_each()
    return summary
