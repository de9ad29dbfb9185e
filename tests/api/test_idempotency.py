"""Idempotency-Key on every call that moves money: a replay answers the first response and
writes nothing; the same key with another request is a 409; no key is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import Bank, assert_problem, new_key, race, transfer
from tests.conftest import statements_sent


def money_calls(bank: Bank) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """Per endpoint: the path, a valid body, and a different valid body."""
    payer = bank.funded_account(50_000)
    payee = bank.funded_account(0)
    deposit = bank.deposit(payee["account_number"], 300)
    source = bank.open_ledger_account(name="source")["id"]
    return {
        "cash-deposit": (
            "/cash-deposits",
            {"account_number": payer["account_number"], "amount": 1_000},
            {"account_number": payer["account_number"], "amount": 1_001},
        ),
        "cash-withdrawal": (
            "/cash-withdrawals",
            {"account_number": payer["account_number"], "amount": 700},
            {"account_number": payer["account_number"], "amount": 700, "memo": "another"},
        ),
        "transfer": (
            "/transfers",
            {
                "from_account_number": payer["account_number"],
                "to_account_number": payee["account_number"],
                "amount": 2_000,
                "fee": 20,
            },
            {
                "from_account_number": payer["account_number"],
                "to_account_number": payee["account_number"],
                "amount": 2_000,
                "fee": 21,
            },
        ),
        "reversal": (f"/payments/{deposit['id']}/reversal", {"memo": "错账"}, {"memo": "另一个"}),
        "ledger": (
            "/ledger/transfers",
            {"transfers": [transfer(source, payee["id"], 55)]},
            {"transfers": [transfer(source, payee["id"], 56)]},
        ),
    }


ENDPOINTS = ["cash-deposit", "cash-withdrawal", "transfer", "reversal", "ledger"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_replay_answers_the_first_response_and_writes_nothing(bank: Bank, endpoint: str) -> None:
    path, body, _ = money_calls(bank)[endpoint]
    key = new_key()
    before = bank.snapshot()
    first = bank.post(path, body, key=key)
    assert first.status_code in (200, 201), first.text
    assert "Idempotent-Replayed" not in first.headers
    after_first = bank.snapshot()
    assert after_first != before
    assert after_first["idempotency_keys"] == before["idempotency_keys"] + 1

    for _ in range(2):
        replay = bank.post(path, body, key=key)
        assert replay.status_code == first.status_code
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.headers["content-type"] == first.headers["content-type"]
        assert replay.json() == first.json()
        assert bank.snapshot() == after_first  # balances, transfers, payments: all unchanged


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_same_key_with_another_body_is_409(bank: Bank, endpoint: str) -> None:
    path, body, other_body = money_calls(bank)[endpoint]
    key = new_key()
    first = bank.post(path, body, key=key)
    assert first.status_code in (200, 201), first.text
    before = bank.snapshot()
    response = bank.post(path, other_body, key=key)
    assert_problem(response, 409, "request.idempotency_key_reused", "Idempotency-Key")
    assert bank.snapshot() == before
    # The first request still replays.
    assert bank.post(path, body, key=key).json() == first.json()


def test_same_key_on_another_endpoint_is_409(bank: Bank) -> None:
    calls = money_calls(bank)
    key = new_key()
    path, body, _ = calls["cash-deposit"]
    bank.ok(bank.post(path, body, key=key), 201)
    before = bank.snapshot()
    for name in ("cash-withdrawal", "transfer", "reversal", "ledger"):
        other_path, other_body, _ = calls[name]
        response = bank.post(other_path, other_body, key=key)
        assert_problem(response, 409, "request.idempotency_key_reused", "Idempotency-Key")
    # Same body, another path: the path is part of the request.
    response = bank.post("/cash-withdrawals", body, key=key)
    assert_problem(response, 409, "request.idempotency_key_reused")
    assert bank.snapshot() == before


def test_keys_are_scoped_by_institution(bank: Bank, other_bank: Bank) -> None:
    key = new_key()
    mine = bank.funded_account(0)
    theirs = other_bank.funded_account(0)
    first = bank.post(
        "/cash-deposits", {"account_number": mine["account_number"], "amount": 10}, key=key
    )
    second = other_bank.post(
        "/cash-deposits", {"account_number": theirs["account_number"], "amount": 20}, key=key
    )
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert bank.balance(mine["account_number"]) == 10
    assert other_bank.balance(theirs["account_number"]) == 20


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "request.idempotency_key_required"),
        ({"Idempotency-Key": ""}, "request.idempotency_key_required"),
        ({"Idempotency-Key": "   "}, "request.idempotency_key_required"),
        ({"Idempotency-Key": "k" * 129}, "request.idempotency_key_invalid"),
    ],
    ids=["missing", "empty", "blank", "too-long"],
)
def test_missing_or_bad_key_is_refused(
    bank: Bank, endpoint: str, headers: dict[str, str], code: str
) -> None:
    path, body, _ = money_calls(bank)[endpoint]
    before = bank.snapshot()
    response = bank.post(path, body, headers=headers)
    assert_problem(response, None, code, "Idempotency-Key")
    assert bank.snapshot() == before


def test_longest_key_is_accepted(bank: Bank) -> None:
    account = bank.funded_account(0)
    key = "k" * 128
    body = {"account_number": account["account_number"], "amount": 10}
    assert bank.post("/cash-deposits", body, key=key).status_code == 201
    replay = bank.post("/cash-deposits", body, key=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert bank.balance(account["account_number"]) == 10


def test_a_refused_request_stores_nothing_and_may_be_retried(bank: Bank) -> None:
    # A response is stored if and only if its effects are (idempotency.py): a 409 for
    # insufficient funds writes nothing, so the same key works once the money is there.
    account = bank.funded_account(100)
    key = new_key()
    body = {"account_number": account["account_number"], "amount": 500}
    before = bank.snapshot()
    assert_problem(
        bank.post("/cash-withdrawals", body, key=key),
        409,
        "ledger.exceeds_credits",
        needs_field=False,
    )
    assert bank.snapshot() == before
    bank.deposit(account["account_number"], 400)
    retried = bank.post("/cash-withdrawals", body, key=key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert bank.balance(account["account_number"]) == 0


def test_concurrent_replays_of_a_ledger_batch_write_once(bank: Bank) -> None:
    source = bank.open_ledger_account(name="source")["id"]
    target = bank.open_ledger_account(name="target")["id"]
    body = {"transfers": [transfer(source, target, 70), transfer(source, target, 30)]}
    key = new_key()
    responses = race(8, lambda i: bank.post("/ledger/transfers", body, key=key))
    assert [r.status_code for r in responses] == [200] * 8
    assert all(r.json() == responses[0].json() for r in responses)
    assert [r["result"] for r in responses[0].json()["results"]] == ["ok", "ok"]
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert bank.ledger_balance(target) == 100


def _deposit_race(bank: Bank) -> Callable[[int], Any]:
    account = bank.funded_account(0)
    body = {"account_number": account["account_number"], "amount": 100}
    key = new_key()

    def call(_: int) -> Any:
        return bank.post("/cash-deposits", body, key=key)

    call.account_number = account["account_number"]  # type: ignore[attr-defined]
    return call


def test_concurrent_replays_of_a_payment_answer_the_first_response(bank: Bank) -> None:
    """Regression: on PostgreSQL a concurrent repeat of an Idempotency-Key waited for the
    account lock, then found the payment's transfers with another reference (the payment id
    was fresh per attempt) and answered 409 ledger.exists_with_different_reference."""
    for _ in range(3):  # a race: give it a few rounds to show
        call = _deposit_race(bank)
        responses = race(8, call)
        assert bank.balance(call.account_number) == 100  # type: ignore[attr-defined]
        assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
        assert all(r.json() == responses[0].json() for r in responses)
        assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1


def test_replay_carries_the_request_fields_not_the_key_alone(bank: Bank) -> None:
    account = bank.funded_account(0)
    key = new_key()
    body = {"account_number": account["account_number"], "amount": 10, "memo": None}
    first = bank.ok(bank.post("/cash-deposits", body, key=key), 201)
    # The same request written differently (memo left out) is the same request.
    same = bank.post(
        "/cash-deposits", {"account_number": account["account_number"], "amount": 10}, key=key
    )
    assert same.status_code == 201 and same.json() == first
    assert same.headers["Idempotent-Replayed"] == "true"
    assert bank.balance(account["account_number"]) == 10
    assert first["client_id"] == key
    assert uuid.UUID(first["id"])


def test_concurrent_same_key_with_another_body_is_409_key_reused(
    request: pytest.FixtureRequest, bank: Bank, backend: str
) -> None:
    """Two requests with one key and different bodies at the same moment: one is done, the
    other gets the same 409 as when they come one after the other."""
    for _ in range(4):  # a race: give it a few rounds to show
        number = bank.funded_account(0)["account_number"]
        key = new_key()
        responses = race(
            2,
            lambda i, n=number, k=key: bank.post(
                "/cash-deposits", {"account_number": n, "amount": 100 + i}, key=k
            ),
        )
        done = [r for r in responses if r.status_code == 201]
        refused = [r for r in responses if r.status_code != 201]
        assert len(done) == 1 and len(refused) == 1, [r.text for r in responses]
        assert bank.balance(number) == done[0].json()["amount"]
        assert_problem(refused[0], 409, "request.idempotency_key_reused", "Idempotency-Key")


def test_replay_of_a_withdrawal_that_emptied_the_account_answers_the_first_response(
    bank: Bank,
) -> None:
    """Run again, the withdrawal would fail for want of money: the repeat is recognised by
    its key after that failure, and answers what the first request got."""
    account = bank.funded_account(700)
    body = {"account_number": account["account_number"], "amount": 700}
    key = new_key()
    first = bank.ok(bank.post("/cash-withdrawals", body, key=key), 201)
    before = bank.snapshot()
    replay = bank.post("/cash-withdrawals", body, key=key)
    assert replay.status_code == 201 and replay.json() == first
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert bank.snapshot() == before
    # A different request under the key is still refused, failing or not.
    bigger = {**body, "amount": 800}
    assert_problem(
        bank.post("/cash-withdrawals", bigger, key=key), 409, "request.idempotency_key_reused"
    )


def test_concurrent_repeats_of_a_withdrawal_of_the_whole_balance_withdraw_once(
    bank: Bank,
) -> None:
    for _ in range(3):  # a race: give it a few rounds to show
        account = bank.funded_account(500)
        body = {"account_number": account["account_number"], "amount": 500}
        key = new_key()
        responses = race(6, lambda i, b=body, k=key: bank.post("/cash-withdrawals", b, key=k))
        assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
        assert all(r.json() == responses[0].json() for r in responses)
        assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
        assert bank.balance(account["account_number"]) == 0


def test_a_first_try_that_loses_the_key_at_commit_is_rolled_back_and_replays(
    bank: Bank,
) -> None:
    """The key is checked by the commit, not before the work: a repeat whose work succeeds
    again (a ledger batch answers ``exists`` for ids already stored) must not commit that
    work, and answers the stored response, not its own."""
    source = bank.open_ledger_account(name="source")["id"]
    target = bank.open_ledger_account(name="target")["id"]
    body = {"transfers": [transfer(source, target, 70)]}
    key = new_key()
    first = bank.ok(bank.post("/ledger/transfers", body, key=key), 200)
    assert [r["result"] for r in first["results"]] == ["ok"]
    before = bank.snapshot()
    replay = bank.post("/ledger/transfers", body, key=key)
    assert replay.json() == first and replay.headers["Idempotent-Replayed"] == "true"
    assert bank.snapshot() == before
    # Without the key the same batch is a new request: its items exist.
    again = bank.ok(bank.post("/ledger/transfers", body, key=new_key()), 200)
    assert [r["result"] for r in again["results"]] == ["exists"]


def test_a_new_key_is_stored_by_the_commit_with_the_audit_record(bank: Bank, backend: str) -> None:
    """No statement of its own for a new key: no lookup or claim before the use case, and on
    PostgreSQL the stored response goes in the same statement as the audit record."""
    source = bank.open_ledger_account(name="source")["id"]
    target = bank.open_ledger_account(name="target")["id"]
    body = {"transfers": [transfer(source, target, 5)]}
    with statements_sent() as sent:  # every engine's: the app under test has its own
        bank.ok(bank.post("/ledger/transfers", body, key=new_key()), 200)
    touching = [statement for statement in sent if "idempotency_keys" in statement]
    assert len(touching) == 1
    assert "INSERT INTO idempotency_keys" in touching[0]
    if backend == "postgresql":
        assert "INSERT INTO audit_records" in touching[0]
