"""Deposit accounts over the API: open, look up by number, close only at zero."""

from __future__ import annotations

import uuid

import pytest

from huinong.ids import luhn_check_digit, luhn_is_valid
from tests.api.conftest import CUSTOMER_DEPOSITS, Bank, assert_problem, new_key, transfer


def bad_luhn(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def test_open_deposit_account(bank: Bank) -> None:
    customer = bank.customer()
    response = bank.post("/deposit-accounts", {"customer_id": customer["id"]})
    assert response.status_code == 201, response.text
    account = response.json()
    number = account["account_number"]
    assert len(number) == 16 and number.isascii() and number.isdigit()
    assert luhn_is_valid(number)
    assert account["customer_id"] == customer["id"]
    assert account["currency"] == "CNY"
    assert (account["balance"], account["available"], account["closed"]) == (0, 0, False)
    assert bank.account(number) == account

    ledger_view = bank.ledger_account(account["id"])
    assert ledger_view["code"] == CUSTOMER_DEPOSITS
    assert ledger_view["type"] == "liability"
    assert ledger_view["owner_id"] == customer["id"]
    assert ledger_view["debits_must_not_exceed_credits"] is True

    second = bank.deposit_account(customer["id"])
    assert second["account_number"] != number
    assert int(second["account_number"][:-1]) == int(number[:-1]) + 1
    owned = bank.ok(bank.get("/ledger/accounts", owner_id=customer["id"]))["items"]
    assert {a["id"] for a in owned} == {account["id"], second["id"]}


def test_account_numbers_are_per_institution(bank: Bank, other_bank: Bank) -> None:
    mine = bank.deposit_account()
    theirs = [other_bank.deposit_account() for _ in range(2)]
    # Each institution counts from 1: the same number names each one's own account.
    assert theirs[0]["account_number"] == mine["account_number"]
    assert other_bank.account(mine["account_number"])["id"] == theirs[0]["id"] != mine["id"]
    assert bank.account(mine["account_number"])["id"] == mine["id"]
    assert_problem(
        bank.get(f"/deposit-accounts/{theirs[1]['account_number']}"),
        404,
        "ledger.account_not_found",
        "account_number",
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"customer_id": str(uuid.uuid4())}, 404, "parties.customer_not_found", "customer_id"),
        ({"customer_id": "not-a-uuid"}, 422, "request.invalid", "customer_id"),
        ({"customer_id": 12}, 422, "request.invalid", "customer_id"),
        ({}, 422, "request.invalid", "customer_id"),
        (None, 422, "request.invalid", None),
    ],
)
def test_open_deposit_account_bad_input(
    bank: Bank, body: dict | None, status: int, code: str, field: str | None
) -> None:
    before = bank.snapshot()
    assert_problem(bank.post("/deposit-accounts", body), status, code, field)
    assert bank.snapshot() == before


def test_open_deposit_account_bad_currency_and_extra_fields(bank: Bank) -> None:
    customer = bank.customer()
    before = bank.snapshot()
    for body, field in (
        ({"customer_id": customer["id"], "currency": "cny"}, "currency"),
        ({"customer_id": customer["id"], "balance": 100}, "balance"),
        ({"customer_id": customer["id"], "institution_id": str(bank.id)}, "institution_id"),
    ):
        assert_problem(bank.post("/deposit-accounts", body), 422, "request.invalid", field)
    assert bank.snapshot() == before


def test_cannot_open_for_another_institutions_customer(bank: Bank, other_bank: Bank) -> None:
    theirs = other_bank.customer()
    before = bank.snapshot(), other_bank.snapshot()
    response = bank.post("/deposit-accounts", {"customer_id": theirs["id"]})
    assert_problem(response, 404, "parties.customer_not_found", "customer_id")
    assert (bank.snapshot(), other_bank.snapshot()) == before


def test_get_deposit_account_bad_numbers(bank: Bank) -> None:
    account = bank.deposit_account()
    number = account["account_number"]
    unknown = "9" * 15 + luhn_check_digit("9" * 15)
    assert_problem(
        bank.get(f"/deposit-accounts/{unknown}"), 404, "ledger.account_not_found", "account_number"
    )
    assert_problem(
        bank.get(f"/deposit-accounts/{bad_luhn(number)}"),
        422,
        "payments.invalid_account_number",
        "account_number",
    )
    for junk in ("abc", "1", "12345678901234567890123456789012345"):
        assert_problem(bank.get(f"/deposit-accounts/{junk}"), field="account_number")


def test_close_at_zero_balance(bank: Bank) -> None:
    account = bank.deposit_account()
    response = bank.post(f"/deposit-accounts/{account['account_number']}/close")
    assert response.status_code == 200, response.text
    closed = response.json()
    assert closed["closed"] is True and closed["balance"] == 0
    assert bank.account(account["account_number"])["closed"] is True
    # Closing is final and idempotent.
    again = bank.post(f"/deposit-accounts/{account['account_number']}/close")
    assert again.status_code == 200 and again.json() == closed


def test_close_with_balance_is_409_until_paid_out(bank: Bank) -> None:
    account = bank.funded_account(2_500)
    number = account["account_number"]
    before = bank.snapshot()
    response = bank.post(f"/deposit-accounts/{number}/close")
    assert_problem(response, 409, "ledger.account_balance_not_zero", "account_id")
    assert bank.snapshot() == before
    assert bank.account(number)["closed"] is False

    paid = bank.post(
        "/cash-withdrawals", {"account_number": number, "amount": 2_500}, key=new_key()
    )
    assert paid.status_code == 201, paid.text
    closed = bank.ok(bank.post(f"/deposit-accounts/{number}/close"))
    assert closed["closed"] is True and closed["balance"] == 0


def test_close_with_pending_transfer_is_409(bank: Bank) -> None:
    account = bank.funded_account(1_000)
    capital = bank.system_account(4001)
    pending = transfer(account["id"], capital["id"], 1_000, flags=["pending"])
    assert [r["result"] for r in bank.transfers(pending)] == ["ok"]
    paid_out = transfer(account["id"], capital["id"], 1_000)
    assert [r["result"] for r in bank.transfers(paid_out)] == ["exceeds_credits"]
    void = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["void_pending"]}
    before = bank.snapshot()
    response = bank.post(f"/deposit-accounts/{account['account_number']}/close")
    assert_problem(response, 409, "ledger.account_has_pending_transfers", "account_id")
    assert bank.snapshot() == before
    assert [r["result"] for r in bank.transfers(void)] == ["ok"]
    assert [r["result"] for r in bank.transfers(paid_out)] == ["ok"]
    # Balance zero now; a new pending credit blocks the close on its own.
    credit = transfer(capital["id"], account["id"], 10, flags=["pending"])
    assert [r["result"] for r in bank.transfers(credit)] == ["ok"]
    before = bank.snapshot()
    response = bank.post(f"/deposit-accounts/{account['account_number']}/close")
    assert_problem(response, 409, "ledger.account_has_pending_transfers", "account_id")
    assert bank.snapshot() == before


def test_closed_account_takes_no_money(bank: Bank) -> None:
    account = bank.deposit_account()
    payer = bank.funded_account(1_000)
    bank.ok(bank.post(f"/deposit-accounts/{account['account_number']}/close"))
    before = bank.snapshot()
    deposit = bank.post(
        "/cash-deposits", {"account_number": account["account_number"], "amount": 1}, key=new_key()
    )
    assert_problem(deposit, 409, "ledger.account_closed", needs_field=False)
    moved = bank.post(
        "/transfers",
        {
            "from_account_number": payer["account_number"],
            "to_account_number": account["account_number"],
            "amount": 10,
        },
        key=new_key(),
    )
    assert_problem(moved, 409, "ledger.account_closed", needs_field=False)
    assert bank.snapshot() == before


def test_close_unknown_or_foreign_account(bank: Bank, other_bank: Bank) -> None:
    ours = bank.deposit_account()
    theirs = [other_bank.deposit_account() for _ in range(2)][-1]
    before = bank.snapshot(), other_bank.snapshot()
    response = bank.post(f"/deposit-accounts/{theirs['account_number']}/close")
    assert_problem(response, 404, "ledger.account_not_found", "account_number")
    response = bank.post(f"/deposit-accounts/{bad_luhn(ours['account_number'])}/close")
    assert_problem(response, 422, "payments.invalid_account_number", "account_number")
    unknown = "8" * 15 + luhn_check_digit("8" * 15)
    response = bank.post(f"/deposit-accounts/{unknown}/close")
    assert_problem(response, 404, "ledger.account_not_found", "account_number")
    assert (bank.snapshot(), other_bank.snapshot()) == before
    assert other_bank.account(theirs["account_number"])["closed"] is False


@pytest.mark.parametrize("method", ["get", "close"])
def test_non_decimal_digits_in_account_number_path_are_422(bank: Bank, method: str) -> None:
    """Regression: the Luhn check called int() on '²' (str.isdigit is true for it): a 500."""
    number = "²" * 16
    if method == "get":
        response = bank.get(f"/deposit-accounts/{number}")
    else:
        response = bank.post(f"/deposit-accounts/{number}/close")
    assert_problem(response, 422, field="account_number")


def test_deposit_account_in_a_currency_the_institution_does_not_keep_is_refused(
    bank: Bank,
) -> None:
    """Regression: a USD account opened in a CNY bank (201), and every payment on it was a
    404 ledger.chart_account_missing without a field."""
    customer = bank.customer()
    before = bank.snapshot()
    response = bank.post("/deposit-accounts", {"customer_id": customer["id"], "currency": "USD"})
    assert_problem(response, 422, field="currency")
    assert bank.snapshot() == before
