"""Paying a bill from a deposit account (at the counter, a service point or the web hall).

**Money path.** Paying a bill debits the payer's deposit account and credits the biller's
settlement account (code 2314 代理业务负债, one account per biller, owned by the biller row:
money we hold for the biller until we settle with it). The ledger transfer, the bill turning
``paid`` and the ``bill_payments`` row are one transaction; the transfer's id derives from
the client id (the Idempotency-Key), so a retried request finds its transfer and its
payment and moves nothing twice. ``bill_payments.bill_id`` is unique and the bill row is
locked while it is paid, so two payments of one bill cannot both succeed: the second is 409.

A payment to an HTTP biller is recorded with ``confirmation = pending``; telling the biller
is :mod:`huinong.payments.bills.confirmations`, after our commit.

Functions that take a session never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.ledger.types import CreateTransferResult, TransferInput
from huinong.money import MAX_FEN
from huinong.payments import service as payments
from huinong.payments.bills import files
from huinong.payments.bills.billers import get_biller
from huinong.payments.bills.common import check_choice, derived_transfer_id
from huinong.payments.bills.intake import get_bill
from huinong.payments.bills.models import (
    BillerProtocol,
    BillPayment,
    BillStatus,
    Channel,
    Confirmation,
)
from huinong.payments.codes import TransferCode
from huinong.security.audit import service as audit
from huinong.security.principals import Principal

_LEDGER_REFUSALS = {
    CreateTransferResult.exceeds_credits: (
        "ledger.exceeds_credits",
        "insufficient funds: the available balance is lower than the amount",
        "amount",
    ),
    CreateTransferResult.debit_account_already_closed: (
        "ledger.account_closed",
        "the paying account is closed",
        "account_number",
    ),
    CreateTransferResult.accounts_must_have_the_same_ledger: (
        "ledger.ledger_must_match",
        "the account is not in the biller's currency",
        "account_number",
    ),
}


def pay_bill(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    bill_id: uuid.UUID,
    account: Account,
    amount: int,
    channel: str,
    actor: Principal | None = None,
) -> BillPayment:
    """Pay a bill from the payer's deposit ``account`` (counter, service point or web hall).

    Refuses: a paid bill (409 ``bills.already_paid``), a cancelled one (409), an amount other
    than the amount due (422 ``bills.wrong_amount``), insufficient funds (409). The same
    ``client_id`` with the same content returns the first payment; with other content, 409.
    """
    check_choice(channel, Channel, "channel")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_FEN:
        raise InvalidInput(
            "bills.invalid_amount", "the amount is whole fen, above zero", field="amount"
        )
    earlier = session.scalar(
        select(BillPayment).where(
            BillPayment.institution_id == institution_id, BillPayment.client_id == client_id
        )
    )
    if earlier is not None:
        same = (
            earlier.bill_id == bill_id
            and earlier.debit_account_id == account.id
            and earlier.amount == amount
            and earlier.channel == channel
        )
        if not same:
            raise Conflict(
                "bills.client_id_reused",
                "this client id was used for another payment; use a new one",
                field="client_id",
            )
        return earlier
    if account.institution_id != institution_id or account.code != AccountCode.customer_deposits:
        raise NotFound(
            "ledger.account_not_found",
            "no deposit account with this number",
            field="account_number",
        )
    bill = get_bill(session, institution_id=institution_id, bill_id=bill_id, lock=True)
    if bill.status == BillStatus.paid:
        raise Conflict("bills.already_paid", "this bill has been paid already", field="bill_id")
    if bill.status == BillStatus.cancelled:
        raise Conflict("bills.bill_cancelled", "this bill is cancelled", field="bill_id")
    if amount != bill.amount_due:
        raise InvalidInput(
            "bills.wrong_amount",
            f"the amount due is {files.format_yuan(bill.amount_due)} yuan ({bill.amount_due} fen)",
            field="amount",
        )
    biller = get_biller(session, institution_id=institution_id, biller_id=bill.biller_id)
    if not biller.active:
        raise Conflict("bills.biller_inactive", "this biller takes no payments", field="bill_id")
    transfer_id = derived_transfer_id(institution_id, client_id, "bill")
    results = ledger.create_transfers(
        session,
        institution_id=institution_id,
        batch=[
            TransferInput(
                id=transfer_id,
                debit_account_id=account.id,
                credit_account_id=biller.settlement_account_id,
                amount=amount,
                ledger=account.ledger,
                code=TransferCode.bill_payment,
                reference=str(bill.id),
            )
        ],
    )
    for result in results:
        if not result.result.applied:
            code, message, field_name = _LEDGER_REFUSALS.get(
                result.result,
                (f"ledger.{result.result.value}", f"the ledger refused: {result.result}", None),
            )
            raise Conflict(code, message, field=field_name)
    now = clock.now()
    institution = institutions.get_institution(session, institution_id=institution_id)
    bill.status = BillStatus.paid
    bill.paid_at = now
    payment = BillPayment(
        id=uuid7(),
        institution_id=institution_id,
        client_id=client_id,
        bill_id=bill.id,
        biller_id=biller.id,
        debit_account_id=account.id,
        credit_account_id=biller.settlement_account_id,
        transfer_id=transfer_id,
        amount=amount,
        currency=account.ledger,
        channel=channel,
        business_date=institution.business_date,
        confirmation=Confirmation.pending
        if biller.protocol == BillerProtocol.http
        else Confirmation.not_required,
        confirmation_attempts=0,
        last_confirmation_error=None,
        biller_receipt=None,
        confirmed_at=None,
        settled_by_id=None,
        created_at=now,
    )
    session.add(payment)
    # The bill row is locked (PostgreSQL) or the database is (SQLite's BEGIN IMMEDIATE), so a
    # concurrent payment of this bill waits and then sees it paid; the unique bill_id is the
    # last line of defence (its violation makes the entry point retry and answer 409).
    session.flush()
    audit.record(
        session,
        action="bills.paid",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_payment",
        object_id=str(payment.id),
        detail={
            "bill_id": str(bill.id),
            "biller_id": str(biller.id),
            "amount": amount,
            "channel": channel,
            "transfer_id": str(transfer_id),
        },
    )
    return payment


def pay_bill_from_account_number(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    bill_id: uuid.UUID,
    account_number: str,
    amount: int,
    channel: str,
    actor: Principal | None = None,
) -> BillPayment:
    account = payments.deposit_account(
        session, institution_id=institution_id, account_number=account_number
    )
    return pay_bill(
        session,
        institution_id=institution_id,
        client_id=client_id,
        bill_id=bill_id,
        account=account,
        amount=amount,
        channel=channel,
        actor=actor,
    )


def get_payment(
    session: Session, *, institution_id: uuid.UUID, payment_id: uuid.UUID
) -> BillPayment:
    payment = session.get(BillPayment, payment_id)
    if payment is None or payment.institution_id != institution_id:
        raise NotFound("bills.payment_not_found", "no such bill payment", field="payment_id")
    return payment
