"""Payment use cases through the services, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from huinong.db import transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Transfer
from huinong.parties import rules
from huinong.parties import service as parties
from huinong.parties.models import CustomerKind
from huinong.payments import service as payments
from tests.conftest import new_institution

_serial = iter(range(1, 10**6))


def resident_id() -> str:
    body = f"37028119800101{next(_serial) % 1000:03d}"
    return body + rules.resident_id_check_char(body)


def open_funded(factory, institution, amount: int) -> str:
    with transaction(factory) as session:
        customer = parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.individual,
            name="王建国",
            id_number=resident_id(),
            phone="13800138000",
        )
        account = payments.open_deposit_account(
            session, institution_id=institution.id, customer_id=customer.id
        )
        number = account.account_number
        assert number is not None
        if amount:
            payments.cash_deposit(
                session,
                institution_id=institution.id,
                client_id=f"fund-{number}",
                account_number=number,
                amount=amount,
            )
    return number


def balance(factory, institution, number: str) -> int:
    with factory() as session:
        account = payments.deposit_account(
            session, institution_id=institution.id, account_number=number
        )
        return account.credits_posted - account.debits_posted


def fee_income(factory, institution) -> int:
    with factory() as session:
        account = ledger.system_account(
            session, institution_id=institution.id, code=AccountCode.fee_income
        )
        return account.credits_posted - account.debits_posted


def test_transfer_with_fee_moves_amount_and_fee(factory, institution):
    payer = open_funded(factory, institution, 10_000)
    payee = open_funded(factory, institution, 0)
    with transaction(factory) as session:
        payments.transfer(
            session,
            institution_id=institution.id,
            client_id="t1",
            from_account_number=payer,
            to_account_number=payee,
            amount=7_000,
            fee=200,
        )
    assert balance(factory, institution, payer) == 2_800
    assert balance(factory, institution, payee) == 7_000
    assert fee_income(factory, institution) == 200


def test_fee_that_cannot_be_paid_fails_the_whole_transfer(factory, institution):
    payer = open_funded(factory, institution, 10_000)
    payee = open_funded(factory, institution, 0)
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.transfer(
            session,
            institution_id=institution.id,
            client_id="t2",
            from_account_number=payer,
            to_account_number=payee,
            amount=9_900,
            fee=200,
        )
    assert raised.value.code == "ledger.exceeds_credits"
    assert balance(factory, institution, payer) == 10_000
    assert balance(factory, institution, payee) == 0


def test_same_client_id_is_one_payment_and_a_changed_one_is_refused(factory, institution):
    number = open_funded(factory, institution, 0)
    for _ in range(2):
        with transaction(factory) as session:
            first = payments.cash_deposit(
                session,
                institution_id=institution.id,
                client_id="dep-1",
                account_number=number,
                amount=500,
            )
    assert balance(factory, institution, number) == 500
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.cash_deposit(
            session,
            institution_id=institution.id,
            client_id="dep-1",
            account_number=number,
            amount=501,
        )
    assert raised.value.code == "payments.client_id_reused"
    assert first.amount == 500


def test_reversal_mirrors_amount_and_fee_once(factory, institution):
    payer = open_funded(factory, institution, 10_000)
    payee = open_funded(factory, institution, 0)
    with transaction(factory) as session:
        paid = payments.transfer(
            session,
            institution_id=institution.id,
            client_id="t3",
            from_account_number=payer,
            to_account_number=payee,
            amount=4_000,
            fee=100,
        )
    with transaction(factory) as session:
        reversal = payments.reverse(
            session, institution_id=institution.id, client_id="r3", payment_id=paid.id
        )
    assert reversal.reverses_id == paid.id
    assert balance(factory, institution, payer) == 10_000
    assert balance(factory, institution, payee) == 0
    assert fee_income(factory, institution) == 0
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.reverse(
            session, institution_id=institution.id, client_id="r3-again", payment_id=paid.id
        )
    assert raised.value.code == "payments.already_reversed"
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.reverse(
            session, institution_id=institution.id, client_id="r3-rr", payment_id=reversal.id
        )
    assert raised.value.code == "payments.cannot_reverse_reversal"
    with factory() as session:
        count = session.scalar(
            select(func.count()).where(
                Transfer.institution_id == institution.id, Transfer.code == 105
            )
        )
    assert count == 2  # the principal and the fee, mirrored once


def test_reversal_refused_when_the_payee_has_spent_the_money(factory, institution):
    payer = open_funded(factory, institution, 5_000)
    payee = open_funded(factory, institution, 0)
    with transaction(factory) as session:
        paid = payments.transfer(
            session,
            institution_id=institution.id,
            client_id="t4",
            from_account_number=payer,
            to_account_number=payee,
            amount=5_000,
        )
        payments.cash_withdrawal(
            session,
            institution_id=institution.id,
            client_id="w4",
            account_number=payee,
            amount=3_000,
        )
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.reverse(session, institution_id=institution.id, client_id="r4", payment_id=paid.id)
    assert raised.value.code == "ledger.exceeds_credits"
    assert balance(factory, institution, payer) == 0


def test_close_needs_zero_balance_and_closed_accounts_take_nothing(factory, institution):
    number = open_funded(factory, institution, 300)
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.close_deposit_account(
            session, institution_id=institution.id, account_number=number
        )
    assert raised.value.code == "ledger.account_balance_not_zero"
    with transaction(factory) as session:
        payments.cash_withdrawal(
            session,
            institution_id=institution.id,
            client_id="w5",
            account_number=number,
            amount=300,
        )
        payments.close_deposit_account(
            session, institution_id=institution.id, account_number=number
        )
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.cash_deposit(
            session, institution_id=institution.id, client_id="d5", account_number=number, amount=1
        )
    assert raised.value.code == "ledger.account_closed"


def test_vault_cannot_pay_out_cash_it_does_not_hold(factory, institution):
    number = open_funded(factory, institution, 0)
    with transaction(factory) as session:
        vault = ledger.system_account(
            session, institution_id=institution.id, code=AccountCode.cash_in_vault
        )
        customer = ledger.get_account_by_number(
            session, institution_id=institution.id, account_number=number
        )
        # An overdraft-free deposit cannot fund this; credit the customer from suspense.
        suspense = ledger.system_account(
            session, institution_id=institution.id, code=AccountCode.suspense
        )
        from huinong.ids import uuid7
        from huinong.ledger.types import TransferInput

        ledger.create_transfers(
            session,
            institution_id=institution.id,
            batch=[
                TransferInput(
                    id=uuid7(),
                    debit_account_id=suspense.id,
                    credit_account_id=customer.id,
                    amount=1_000,
                    ledger="CNY",
                    code=1,
                )
            ],
        )
        assert vault.debits_posted == 0
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        payments.cash_withdrawal(
            session,
            institution_id=institution.id,
            client_id="w6",
            account_number=number,
            amount=1_000,
        )
    assert raised.value.code == "ledger.exceeds_debits"


def test_numbers_are_checked_and_tenants_do_not_see_each_other(factory, institution):
    number = open_funded(factory, institution, 100)
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(InvalidInput) as raised, transaction(factory) as session:
        payments.cash_deposit(
            session, institution_id=institution.id, client_id="x", account_number=typo, amount=1
        )
    assert (raised.value.code, raised.value.field) == (
        "payments.invalid_account_number",
        "account_number",
    )
    other = new_institution(factory)
    with pytest.raises(NotFound), transaction(factory) as session:
        payments.cash_deposit(
            session, institution_id=other.id, client_id="x", account_number=number, amount=1
        )
