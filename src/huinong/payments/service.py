"""Deposit accounts and the use cases that move customers' money.

Each use case is one business event: it writes one ``payments`` row and its ledger transfers
through ``ledger.service.create_transfers`` in the caller's transaction. The transfers of a
payment form one linked chain (a transfer and its fee succeed or fail together), and their ids
derive from the client id, so a repeated request finds its transfers already there.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, HuinongError, InvalidInput, NotFound
from huinong.ids import luhn_is_valid, uuid7
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.ledger.types import (
    AccountType,
    CreateTransferResult,
    TransferFlags,
    TransferInput,
    TransferResult,
)
from huinong.money import MAX_FEN
from huinong.parties import service as parties
from huinong.parties.households import service as households
from huinong.payments.codes import TransferCode
from huinong.payments.models import Payment, PaymentKind

TRANSFER_ID_NAMESPACE = uuid.UUID("0192f5a2-7c3e-7000-8000-7061796d656e")
DEPOSIT_ACCOUNT_NAME = "活期存款 Demand deposit"

R = CreateTransferResult
_LEDGER_FAILURES: dict[CreateTransferResult, tuple[type[HuinongError], str, str]] = {
    R.exceeds_credits: (
        Conflict,
        "ledger.exceeds_credits",
        "insufficient funds: the available balance is lower than the amount",
    ),
    R.exceeds_debits: (
        Conflict,
        "ledger.exceeds_debits",
        "the receiving account cannot take this amount (for the cash vault: not enough cash)",
    ),
    R.debit_account_already_closed: (
        Conflict,
        "ledger.account_closed",
        "the paying account is closed",
    ),
    R.credit_account_already_closed: (
        Conflict,
        "ledger.account_closed",
        "the receiving account is closed",
    ),
    R.accounts_must_be_different: (
        InvalidInput,
        "ledger.accounts_must_be_different",
        "the paying and receiving accounts must differ",
    ),
    R.accounts_must_have_the_same_ledger: (
        InvalidInput,
        "ledger.ledger_must_match",
        "the accounts are in different currencies",
    ),
}


def _raise_for_failure(results: Sequence[TransferResult], *, reversing: bool) -> None:
    """Turn the first failed leg into an error. Amount-related failures name the request
    field that set the leg's amount: ``amount`` for the principal, ``fee`` for the fee (a
    reversal's amounts come from the original, so they name nothing)."""
    leg_fields = () if reversing else ("amount", "fee")
    for result in results:
        if result.result.applied or result.result is R.linked_event_failed:
            continue
        error_class, code, message = _LEDGER_FAILURES.get(
            result.result,
            (Conflict, f"ledger.{result.result.value}", f"the ledger refused: {result.result}"),
        )
        about_amount = result.result.name.startswith(("overflows", "exceeds"))
        field = (
            leg_fields[result.index] if about_amount and result.index < len(leg_fields) else None
        )
        raise error_class(code, message, field=field)


def _check_amount(amount: int, *, field: str = "amount", allow_zero: bool = False) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("payments.invalid_amount", "amounts are whole fen", field=field)
    if amount < 0 or (amount == 0 and not allow_zero) or amount > MAX_FEN:
        raise InvalidInput(
            "payments.invalid_amount",
            f"the amount must be between 1 fen and {MAX_FEN} fen",
            field=field,
        )
    return amount


# A customer with more deposit accounts than this is a data error, not a farmer.
MAX_DEPOSIT_ACCOUNTS_PER_CUSTOMER = 200


def deposit_accounts_of(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> list[Account]:
    """The customer's deposit accounts in opening order (ids are time-ordered)."""
    return ledger.list_accounts(
        session,
        institution_id=institution_id,
        owner_id=customer_id,
        code=AccountCode.customer_deposits,
        limit=MAX_DEPOSIT_ACCOUNTS_PER_CUSTOMER,
    )


def default_deposit_account(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> Account | None:
    """The account a party lookup answers with: the one the customer marked, while it is
    open, else their first open deposit account."""
    marked = households.default_account_id(
        session, institution_id=institution_id, customer_id=customer_id
    )
    accounts = deposit_accounts_of(session, institution_id=institution_id, customer_id=customer_id)
    return households.pick_default_account(accounts, marked)


def deposit_account(
    session: Session,
    *,
    institution_id: uuid.UUID,
    account_number: str,
    field: str = "account_number",
) -> Account:
    if not luhn_is_valid(account_number):
        raise InvalidInput(
            "payments.invalid_account_number",
            "the account number's check digit does not match; check the number for a typo",
            field=field,
        )
    try:
        account = ledger.get_account_by_number(
            session, institution_id=institution_id, account_number=account_number
        )
    except NotFound as exc:
        raise NotFound(
            "ledger.account_not_found", "no account with this number", field=field
        ) from exc
    if account.code != AccountCode.customer_deposits:
        raise NotFound(
            "ledger.account_not_found", "no deposit account with this number", field=field
        )
    return account


def open_deposit_account(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID, currency: str = "CNY"
) -> Account:
    customer = parties.get_customer(session, institution_id=institution_id, customer_id=customer_id)
    try:
        ledger.system_account(
            session,
            institution_id=institution_id,
            code=AccountCode.cash_in_vault,
            ledger=currency,
        )
    except NotFound as exc:
        raise InvalidInput(
            "payments.currency_not_offered",
            f"the institution keeps no {currency} accounts; open the account in its currency",
            field="currency",
        ) from exc
    account = ledger.create_account(
        session,
        institution_id=institution_id,
        ledger=currency,
        type=AccountType.liability,
        code=AccountCode.customer_deposits,
        name=DEPOSIT_ACCOUNT_NAME,
        owner_id=customer.id,
        debits_must_not_exceed_credits=True,
        with_account_number=True,
    )
    # Subsidies that waited in suspense for this customer's account are paid into it now,
    # in this transaction (imported here, not at the top: subsidies builds on this module).
    from huinong.payments.subsidies import suspense

    suspense.release_suspense(
        session, institution_id=institution_id, customer_id=customer.id, account=account
    )
    return account


def close_deposit_account(
    session: Session, *, institution_id: uuid.UUID, account_number: str
) -> Account:
    account = deposit_account(session, institution_id=institution_id, account_number=account_number)
    return ledger.close_account(session, institution_id=institution_id, account_id=account.id)


def _transfer_id(institution_id: uuid.UUID, client_id: str, leg: str) -> uuid.UUID:
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{institution_id}/{client_id}/{leg}")


def _reference(institution_id: uuid.UUID, client_id: str) -> str:
    """The ledger reference of a payment's transfers. It derives from the client id, like
    the transfer ids, so a concurrent repeat of a request finds its transfers identical
    (``exists``) and then the payment row the first request wrote."""
    return str(_transfer_id(institution_id, client_id, "payment"))


def _existing_payment(
    session: Session, institution_id: uuid.UUID, client_id: str, **expected: object
) -> Payment | None:
    payment = session.scalar(
        select(Payment).where(
            Payment.institution_id == institution_id, Payment.client_id == client_id
        )
    )
    if payment is None:
        return None
    if any(getattr(payment, name) != value for name, value in expected.items()):
        raise Conflict(
            "payments.client_id_reused",
            "this client id was used for a different payment; use a new one",
            field="client_id",
        )
    return payment


def _book(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    kind: PaymentKind,
    debit: Account,
    credit: Account,
    amount: int,
    code: TransferCode,
    fee: int = 0,
    fee_account: Account | None = None,
    memo: str | None = None,
    reverses: Payment | None = None,
) -> Payment:
    expected = {
        "kind": str(kind),
        "debit_account_id": debit.id,
        "credit_account_id": credit.id,
        "amount": amount,
        "fee": fee,
        "memo": memo,
    }
    existing = _existing_payment(session, institution_id, client_id, **expected)
    if existing is not None:
        return existing
    payment_id = uuid7()
    reference = _reference(institution_id, client_id)
    legs = [
        TransferInput(
            id=_transfer_id(institution_id, client_id, "principal"),
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=amount,
            ledger=debit.ledger,
            code=code,
            reference=reference,
        )
    ]
    if fee:
        assert fee_account is not None
        legs[0] = dataclasses.replace(legs[0], flags=TransferFlags.linked)
        legs.append(
            TransferInput(
                id=_transfer_id(institution_id, client_id, "fee"),
                debit_account_id=debit.id,
                credit_account_id=fee_account.id,
                amount=fee,
                ledger=debit.ledger,
                code=TransferCode.transfer_fee,
                reference=reference,
            )
        )
    return _record(
        session,
        institution_id=institution_id,
        client_id=client_id,
        payment_id=payment_id,
        legs=legs,
        reverses=reverses,
        **expected,
    )


def _record(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    payment_id: uuid.UUID,
    legs: list[TransferInput],
    reverses: Payment | None,
    **fields: object,
) -> Payment:
    _raise_for_failure(
        ledger.create_transfers(session, institution_id=institution_id, batch=legs),
        reversing=reverses is not None,
    )
    debit = next(iter(legs))
    payment = Payment(
        id=payment_id,
        institution_id=institution_id,
        client_id=client_id,
        currency=debit.ledger,
        reverses_id=reverses.id if reverses else None,
        created_at=clock.now(),
        **fields,
    )
    session.add(payment)
    session.flush()
    return payment


def cash_deposit(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    account_number: str,
    amount: int,
    memo: str | None = None,
) -> Payment:
    """A teller takes cash into a deposit account: the vault is debited, the customer
    credited."""
    return _teller_cash(
        session,
        kind=PaymentKind.cash_deposit,
        institution_id=institution_id,
        client_id=client_id,
        account_number=account_number,
        amount=amount,
        memo=memo,
    )


def cash_withdrawal(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    account_number: str,
    amount: int,
    memo: str | None = None,
) -> Payment:
    """A teller pays cash out: the customer is debited, the vault credited (and the vault
    cannot pay out more cash than it holds)."""
    return _teller_cash(
        session,
        kind=PaymentKind.cash_withdrawal,
        institution_id=institution_id,
        client_id=client_id,
        account_number=account_number,
        amount=amount,
        memo=memo,
    )


def _teller_cash(
    session: Session,
    *,
    kind: PaymentKind,
    institution_id: uuid.UUID,
    client_id: str,
    account_number: str,
    amount: int,
    memo: str | None,
) -> Payment:
    _check_amount(amount)
    account = deposit_account(session, institution_id=institution_id, account_number=account_number)
    vault = ledger.system_account(
        session,
        institution_id=institution_id,
        code=AccountCode.cash_in_vault,
        ledger=account.ledger,
    )
    depositing = kind is PaymentKind.cash_deposit
    return _book(
        session,
        institution_id=institution_id,
        client_id=client_id,
        kind=kind,
        debit=vault if depositing else account,
        credit=account if depositing else vault,
        amount=amount,
        code=TransferCode.cash_deposit if depositing else TransferCode.cash_withdrawal,
        memo=memo,
    )


def transfer(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    from_account_number: str,
    to_account_number: str,
    amount: int,
    fee: int = 0,
    memo: str | None = None,
) -> Payment:
    """Customer-to-customer transfer; the fee, if any, is paid by the sender to fee income."""
    _check_amount(amount)
    _check_amount(fee, field="fee", allow_zero=True)
    payer = deposit_account(
        session,
        institution_id=institution_id,
        account_number=from_account_number,
        field="from_account_number",
    )
    payee = deposit_account(
        session,
        institution_id=institution_id,
        account_number=to_account_number,
        field="to_account_number",
    )
    if payer.id == payee.id:
        raise InvalidInput(
            "ledger.accounts_must_be_different",
            "the paying and receiving accounts must differ",
            field="to_account_number",
        )
    fee_account = (
        ledger.system_account(
            session, institution_id=institution_id, code=AccountCode.fee_income, ledger=payer.ledger
        )
        if fee
        else None
    )
    return _book(
        session,
        institution_id=institution_id,
        client_id=client_id,
        kind=PaymentKind.transfer,
        debit=payer,
        credit=payee,
        amount=amount,
        code=TransferCode.customer_transfer,
        fee=fee,
        fee_account=fee_account,
        memo=memo,
    )


def get_payment(session: Session, *, institution_id: uuid.UUID, payment_id: uuid.UUID) -> Payment:
    payment = session.get(Payment, payment_id)
    if payment is None or payment.institution_id != institution_id:
        raise NotFound("payments.payment_not_found", "no such payment", field="payment_id")
    return payment


def reverse(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    payment_id: uuid.UUID,
    memo: str | None = None,
) -> Payment:
    """Undo a payment with new transfers that mirror its own (fee included)."""
    original = get_payment(session, institution_id=institution_id, payment_id=payment_id)
    expected = {
        "kind": str(PaymentKind.reversal),
        "debit_account_id": original.credit_account_id,
        "credit_account_id": original.debit_account_id,
        "amount": original.amount,
        "fee": original.fee,
        "memo": memo,
        "reverses_id": original.id,
    }
    existing = _existing_payment(session, institution_id, client_id, **expected)
    if existing is not None:
        return existing
    if original.kind == PaymentKind.reversal:
        raise Conflict(
            "payments.cannot_reverse_reversal",
            "a reversal cannot itself be reversed; make a new payment instead",
            field="payment_id",
        )
    already = session.scalar(select(Payment.id).where(Payment.reverses_id == original.id))
    if already is not None:
        raise Conflict(
            "payments.already_reversed",
            "this payment has been reversed already",
            field="payment_id",
        )
    originals = ledger.list_transfers(
        session,
        institution_id=institution_id,
        reference=_reference(institution_id, original.client_id),
        limit=100,
    )
    reversal_id = uuid7()
    legs = [
        TransferInput(
            id=_transfer_id(institution_id, client_id, f"reversal/{index}"),
            debit_account_id=t.credit_account_id,
            credit_account_id=t.debit_account_id,
            amount=t.amount,
            ledger=t.ledger,
            code=TransferCode.reversal,
            flags=TransferFlags.linked if index < len(originals) - 1 else TransferFlags.none,
            reference=_reference(institution_id, client_id),
            metadata={"reverses_transfer": str(t.id)},
        )
        for index, t in enumerate(originals)
    ]
    expected.pop("reverses_id")
    return _record(
        session,
        institution_id=institution_id,
        client_id=client_id,
        payment_id=reversal_id,
        legs=legs,
        reverses=original,
        **expected,
    )
