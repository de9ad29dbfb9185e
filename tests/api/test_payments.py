"""Cash deposits and withdrawals, customer transfers with a fee, reversals — over the API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.conftest import (
    FEE_INCOME,
    PAID_IN_CAPITAL,
    VAULT,
    Bank,
    assert_problem,
    new_key,
    race,
    transfer,
)


def all_transfers(bank: Bank, **filters: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 500, **filters} | ({"cursor": cursor} if cursor else {})
        page = bank.ok(bank.get("/ledger/transfers", **params))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def legs_of(bank: Bank, payment: dict) -> list[dict]:
    """The ledger transfers of a payment: its principal leg, then every transfer sharing the
    principal's ``reference`` (a payment's legs share one), in the order they were applied."""
    principal = [
        t
        for t in all_transfers(bank)
        if t["debit_account_id"] == payment["debit_account_id"]
        and t["credit_account_id"] == payment["credit_account_id"]
        and t["amount"] == payment["amount"]
    ][-1]
    assert principal["reference"], principal
    legs = all_transfers(bank, reference=principal["reference"])
    assert legs[0] == principal
    return legs


def test_cash_deposit_credits_the_account_and_debits_the_vault(bank: Bank) -> None:
    account = bank.deposit_account()
    vault = bank.system_account(VAULT)
    key = new_key()
    response = bank.post(
        "/cash-deposits",
        {"account_number": account["account_number"], "amount": 12_345, "memo": "卖玉米"},
        key=key,
    )
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    payment = response.json()
    assert payment["kind"] == "cash_deposit"
    assert payment["client_id"] == key
    assert (payment["amount"], payment["fee"], payment["currency"]) == (12_345, 0, "CNY")
    assert payment["memo"] == "卖玉米"
    assert payment["reverses_id"] is None
    assert payment["debit_account_id"] == vault["id"]
    assert payment["credit_account_id"] == account["id"]

    assert bank.balance(account["account_number"]) == 12_345
    assert bank.account(account["account_number"])["available"] == 12_345
    assert bank.ledger_balance(vault["id"]) == 12_345  # an asset: debits grow it
    assert bank.ok(bank.get(f"/payments/{payment['id']}")) == payment

    lines = legs_of(bank, payment)
    assert len(lines) == 1
    assert lines[0]["amount"] == 12_345 and lines[0]["code"] == 101 and lines[0]["flags"] == []
    assert lines[0]["debit_account_id"] == vault["id"]
    assert lines[0]["credit_account_id"] == account["id"]


def test_cash_withdrawal_and_insufficient_funds(bank: Bank) -> None:
    account = bank.funded_account(5_000)
    number = account["account_number"]
    vault = bank.system_account(VAULT)
    response = bank.post(
        "/cash-withdrawals", {"account_number": number, "amount": 1_200}, key=new_key()
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["kind"] == "cash_withdrawal"
    assert payment["debit_account_id"] == account["id"]
    assert payment["credit_account_id"] == vault["id"]
    assert bank.balance(number) == 3_800
    assert bank.ledger_balance(vault["id"]) == 3_800

    before = bank.snapshot()
    too_much = bank.post(
        "/cash-withdrawals", {"account_number": number, "amount": 3_801}, key=new_key()
    )
    assert_problem(too_much, 409, "ledger.exceeds_credits", needs_field=False)
    assert bank.snapshot() == before
    assert bank.balance(number) == 3_800

    everything = bank.post(
        "/cash-withdrawals", {"account_number": number, "amount": 3_800}, key=new_key()
    )
    assert everything.status_code == 201
    assert bank.balance(number) == 0


def test_withdrawal_beyond_the_cash_in_the_vault_is_refused(bank: Bank) -> None:
    # Money that came in without cash (from capital, through the ledger) cannot leave as cash
    # the vault does not hold: the vault's credits must not exceed its debits.
    account = bank.deposit_account()
    capital = bank.system_account(PAID_IN_CAPITAL)
    assert [r["result"] for r in bank.transfers(transfer(capital["id"], account["id"], 900))] == [
        "ok"
    ]
    before = bank.snapshot()
    response = bank.post(
        "/cash-withdrawals",
        {"account_number": account["account_number"], "amount": 100},
        key=new_key(),
    )
    assert_problem(response, 409, "ledger.exceeds_debits", needs_field=False)
    assert bank.snapshot() == before


def test_customer_transfer_with_fee(bank: Bank) -> None:
    payer = bank.funded_account(10_000)
    payee = bank.funded_account(500)
    fee_income = bank.system_account(FEE_INCOME)
    fees_before = bank.ledger_balance(fee_income["id"])
    key = new_key()
    response = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": payee["account_number"],
            "amount": 3_000,
            "fee": 150,
            "memo": "化肥款",
        },
        key=key,
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["kind"] == "transfer"
    assert (payment["amount"], payment["fee"], payment["client_id"]) == (3_000, 150, key)
    assert payment["debit_account_id"] == payer["id"]
    assert payment["credit_account_id"] == payee["id"]

    assert bank.balance(payer["account_number"]) == 10_000 - 3_000 - 150
    assert bank.balance(payee["account_number"]) == 500 + 3_000
    assert bank.ledger_balance(fee_income["id"]) == fees_before + 150

    lines = legs_of(bank, payment)
    assert [(t["code"], t["amount"], t["flags"]) for t in lines] == [
        (103, 3_000, ["linked"]),
        (104, 150, []),
    ]
    assert lines[1]["debit_account_id"] == payer["id"]
    assert lines[1]["credit_account_id"] == fee_income["id"]


def test_transfer_without_fee_writes_one_leg(bank: Bank) -> None:
    payer = bank.funded_account(1_000)
    payee = bank.deposit_account()
    response = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": payee["account_number"],
            "amount": 1_000,
        },
        key=new_key(),
    )
    payment = bank.ok(response, 201)
    assert payment["fee"] == 0
    assert [t["code"] for t in legs_of(bank, payment)] == [103]
    assert bank.balance(payer["account_number"]) == 0
    assert bank.balance(payee["account_number"]) == 1_000


def test_transfer_that_cannot_pay_its_fee_writes_nothing(bank: Bank) -> None:
    payer = bank.funded_account(3_000)
    payee = bank.deposit_account()
    before = bank.snapshot()
    response = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": payee["account_number"],
            "amount": 3_000,
            "fee": 1,
        },
        key=new_key(),
    )
    assert_problem(response, 409, "ledger.exceeds_credits", needs_field=False)
    assert bank.snapshot() == before
    assert bank.balance(payer["account_number"]) == 3_000
    assert bank.balance(payee["account_number"]) == 0


def test_transfer_rules(bank: Bank, other_bank: Bank) -> None:
    payer = bank.funded_account(1_000)
    theirs = [other_bank.funded_account(1_000) for _ in range(2)][-1]  # not a number of ours
    before = bank.snapshot(), other_bank.snapshot()
    to_self = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": payer["account_number"],
            "amount": 1,
        },
        key=new_key(),
    )
    assert_problem(to_self, 422, "ledger.accounts_must_be_different", "to_account_number")
    abroad = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": theirs["account_number"],
            "amount": 1,
        },
        key=new_key(),
    )
    assert_problem(abroad, 404, "ledger.account_not_found", "to_account_number")
    assert (bank.snapshot(), other_bank.snapshot()) == before


def test_reversal_of_a_transfer_with_fee_mirrors_it(bank: Bank) -> None:
    payer = bank.funded_account(10_000)
    payee = bank.funded_account(0)
    fee_income = bank.system_account(FEE_INCOME)
    fees_before = bank.ledger_balance(fee_income["id"])
    original = bank.ok(
        bank.post(
            "/transfers",
            {
                "from_account_number": payer["account_number"],
                "to_account_number": payee["account_number"],
                "amount": 4_000,
                "fee": 200,
            },
            key=new_key(),
        ),
        201,
    )
    key = new_key()
    response = bank.post(f"/payments/{original['id']}/reversal", {"memo": "客户撤销"}, key=key)
    assert response.status_code == 201, response.text
    reversal = response.json()
    assert reversal["kind"] == "reversal"
    assert reversal["reverses_id"] == original["id"]
    assert reversal["client_id"] == key
    assert reversal["debit_account_id"] == original["credit_account_id"]
    assert reversal["credit_account_id"] == original["debit_account_id"]
    assert (reversal["amount"], reversal["fee"], reversal["memo"]) == (4_000, 200, "客户撤销")

    assert bank.balance(payer["account_number"]) == 10_000
    assert bank.balance(payee["account_number"]) == 0
    assert bank.ledger_balance(fee_income["id"]) == fees_before

    originals = legs_of(bank, original)
    mirrors = legs_of(bank, reversal)
    assert len(mirrors) == len(originals) == 2
    for before, mirror in zip(originals, mirrors, strict=True):
        assert mirror["code"] == 105
        assert mirror["amount"] == before["amount"]
        assert mirror["debit_account_id"] == before["credit_account_id"]
        assert mirror["credit_account_id"] == before["debit_account_id"]
        assert mirror["metadata"] == {"reverses_transfer": before["id"]}
    assert [m["flags"] for m in mirrors] == [["linked"], []]
    # The original stays as it was.
    assert bank.ok(bank.get(f"/payments/{original['id']}")) == original


def test_double_reversal_and_reversal_of_reversal_are_409(bank: Bank) -> None:
    account = bank.funded_account(0)
    deposit = bank.deposit(account["account_number"], 700)
    reversal = bank.ok(bank.post(f"/payments/{deposit['id']}/reversal", {}, key=new_key()), 201)
    assert bank.balance(account["account_number"]) == 0
    before = bank.snapshot()
    again = bank.post(f"/payments/{deposit['id']}/reversal", {}, key=new_key())
    assert_problem(again, 409, "payments.already_reversed", "payment_id")
    undo_undo = bank.post(f"/payments/{reversal['id']}/reversal", {}, key=new_key())
    assert_problem(undo_undo, 409, "payments.cannot_reverse_reversal", "payment_id")
    assert bank.snapshot() == before


def test_reversal_of_spent_deposit_is_refused(bank: Bank) -> None:
    account = bank.funded_account(0)
    deposit = bank.deposit(account["account_number"], 700)
    bank.ok(
        bank.post(
            "/cash-withdrawals",
            {"account_number": account["account_number"], "amount": 500},
            key=new_key(),
        ),
        201,
    )
    before = bank.snapshot()
    response = bank.post(f"/payments/{deposit['id']}/reversal", {}, key=new_key())
    assert_problem(response, 409, "ledger.exceeds_credits", needs_field=False)
    assert bank.snapshot() == before


def test_reversal_of_unknown_or_foreign_payment_is_404(bank: Bank, other_bank: Bank) -> None:
    theirs = other_bank.deposit(other_bank.deposit_account()["account_number"], 100)
    before = bank.snapshot(), other_bank.snapshot()
    for payment_id in (theirs["id"], str(uuid.uuid4())):
        response = bank.post(f"/payments/{payment_id}/reversal", {}, key=new_key())
        assert_problem(response, 404, "payments.payment_not_found", "payment_id")
        assert_problem(bank.get(f"/payments/{payment_id}"), 404, "payments.payment_not_found")
    assert (bank.snapshot(), other_bank.snapshot()) == before


def test_concurrent_reversals_reverse_once(bank: Bank) -> None:
    account = bank.funded_account(10_000)
    deposit = bank.deposit(account["account_number"], 1_000)
    responses = race(
        6, lambda i: bank.post(f"/payments/{deposit['id']}/reversal", {}, key=new_key())
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, needs_field=False)
    assert bank.balance(account["account_number"]) == 10_000
    reversals = [t for t in all_transfers(bank) if t["code"] == 105]
    assert len(reversals) == 1


def test_concurrent_payments_both_ways_conserve_money(bank: Bank) -> None:
    """Transfers with fees in both directions between the same accounts, from 8 threads: no
    deadlock, no 5xx, no overdraft, and the balances are what the 201s add up to."""
    accounts = [bank.funded_account(3_000) for _ in range(3)]
    numbers = [a["account_number"] for a in accounts]
    fee_income = bank.system_account(FEE_INCOME)
    fees_before = bank.ledger_balance(fee_income["id"])

    def pay(i: int) -> list[tuple[int, int, int, int, Any]]:
        done = []
        for j in range(12):
            payer, payee = (i + j) % 3, (i + 2 * j + 1) % 3
            if payer == payee:
                payee = (payee + 1) % 3
            amount, fee = 100 + 37 * ((i * 12 + j) % 20), (i + j) % 3
            body = {
                "from_account_number": numbers[payer],
                "to_account_number": numbers[payee],
                "amount": amount,
                "fee": fee,
            }
            response = bank.post("/transfers", body, key=new_key())
            done.append((payer, payee, amount, fee, response))
        return done

    outcomes = [o for batch in race(8, pay) for o in batch]
    expected = [3_000] * 3
    fees = 0
    for payer, payee, amount, fee, response in outcomes:
        if response.status_code == 201:
            expected[payer] -= amount + fee
            expected[payee] += amount
            fees += fee
        else:
            assert_problem(response, 409, "ledger.exceeds_credits", needs_field=False)
    assert any(r.status_code == 201 for *_, r in outcomes)
    assert [bank.balance(n) for n in numbers] == expected
    assert min(expected) >= 0
    assert bank.ledger_balance(fee_income["id"]) == fees_before + fees
    assert sum(expected) + fees == 9_000


def test_close_racing_a_deposit_never_closes_money_in(bank: Bank) -> None:
    """A close and a deposit at the same moment: either the deposit lands and the close is
    refused, or the account closes empty and the deposit is refused."""
    for _ in range(4):
        number = bank.deposit_account()["account_number"]

        def act(i: int, number: str = number) -> Any:
            if i == 0:
                return bank.post(f"/deposit-accounts/{number}/close")
            body = {"account_number": number, "amount": 100}
            return bank.post("/cash-deposits", body, key=new_key())

        closed, deposit = race(2, act)
        account = bank.account(number)
        if account["closed"]:
            assert closed.status_code == 200 and account["balance"] == 0
            assert_problem(deposit, 409, "ledger.account_closed", needs_field=False)
        else:
            assert deposit.status_code == 201 and account["balance"] == 100
            assert_problem(closed, 409, "ledger.account_balance_not_zero")
