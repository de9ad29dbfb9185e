"""Bad input on every endpoint that moves money: a 4xx problem+json naming the field, never a
500, and nothing written — not in this institution, not in any other.

The money-moving endpoints are the cash deposit and withdrawal, the customer transfer, the
reversal and the ledger's transfer batch. The batch answers per-item failures (an account it
cannot see, a zero amount) with TigerBeetle result codes in a 200, as its module documents;
those items must write nothing either.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from huinong.db import make_session_factory
from huinong.ids import luhn_check_digit
from tests.api.conftest import (
    API,
    Bank,
    api_client,
    assert_problem,
    new_bank,
    new_key,
    resident_id,
    transfer,
)

MONEY_ENDPOINTS = ["cash-deposit", "cash-withdrawal", "transfer", "reversal", "ledger"]
AMOUNT_ENDPOINTS = ["cash-deposit", "cash-withdrawal", "transfer", "ledger"]


@dataclass
class World:
    bank: Bank
    other: Bank
    payer: dict[str, Any]
    payee: dict[str, Any]
    foreign: dict[str, Any]
    payment: dict[str, Any]
    source: str
    target: str

    def request(self, endpoint: str) -> tuple[str, dict[str, Any]]:
        """A valid request to ``endpoint``; the tests break one thing in it."""
        number = self.payer["account_number"]
        if endpoint == "cash-deposit":
            return "/cash-deposits", {"account_number": number, "amount": 100}
        if endpoint == "cash-withdrawal":
            return "/cash-withdrawals", {"account_number": number, "amount": 100}
        if endpoint == "transfer":
            return "/transfers", {
                "from_account_number": number,
                "to_account_number": self.payee["account_number"],
                "amount": 100,
                "fee": 1,
            }
        if endpoint == "reversal":
            return f"/payments/{self.payment['id']}/reversal", {"memo": "冲正"}
        assert endpoint == "ledger"
        return "/ledger/transfers", {"transfers": [transfer(self.source, self.target, 100)]}

    def snapshots(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.bank.snapshot(), self.other.snapshot()


@pytest.fixture(scope="module")
def world(database_url: str, engine: Engine) -> Iterator[World]:
    """One pair of institutions for the whole module: every case here must write nothing, and
    each proves it with its own before/after snapshot."""
    with api_client(database_url) as client:
        factory = make_session_factory(engine)
        yield _world(new_bank(client, factory), new_bank(client, factory, prefix="OTH"))


@pytest.fixture
def client(world: World) -> TestClient:
    return world.bank.client


def _world(bank: Bank, other_bank: Bank) -> World:
    payer = bank.funded_account(100_000)
    payee = bank.funded_account(0)
    payment = bank.deposit(payee["account_number"], 500)
    # The other institution has more accounts, so its last number is not one of ours.
    foreign = [other_bank.funded_account(1_000) for _ in range(3)][-1]
    assert_problem(bank.get(f"/deposit-accounts/{foreign['account_number']}"), 404)
    source = bank.open_ledger_account(name="source")["id"]
    target = bank.open_ledger_account(name="target", debits_must_not_exceed_credits=True)["id"]
    return World(bank, other_bank, payer, payee, foreign, payment, source, target)


def send(world: World, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
    return world.bank.post(path, body, key=new_key(), content=raw)


def check_refused(
    world: World,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    status: int | None = None,
    code: str | None = None,
    field: str | None = None,
    needs_field: bool = True,
) -> dict[str, Any]:
    before = world.snapshots()
    response = send(world, path, body, raw=raw)
    problem = assert_problem(response, status, code, field, needs_field=needs_field)
    assert world.snapshots() == before
    return problem


def valid_works(world: World, endpoint: str) -> None:
    """The request the cases break is itself accepted (so each case fails for its one fault)."""
    path, body = world.request(endpoint)
    response = send(world, path, body)
    assert response.status_code in (200, 201), response.text
    if endpoint == "ledger":
        assert [r["result"] for r in response.json()["results"]] == ["ok"]


# ------------------------------------------------------------------------------ amounts

BAD_AMOUNTS = [
    pytest.param(10.5, id="float"),
    pytest.param(10.0, id="float-integral"),
    pytest.param("100", id="string"),
    pytest.param("10.5", id="decimal-string"),
    pytest.param(-100, id="negative"),
    pytest.param(-(2**63), id="min-int64"),
    pytest.param(0, id="zero"),
    pytest.param(2**63, id="2^63"),
    pytest.param(2**64 + 1, id="beyond-uint64"),
    pytest.param(10**40, id="huge"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(None, id="null"),
    pytest.param([100], id="list"),
    pytest.param({"fen": 100}, id="object"),
]


def amount_field(endpoint: str) -> str:
    return "transfers.0.amount" if endpoint == "ledger" else "amount"


def set_amount(endpoint: str, body: dict[str, Any], value: Any) -> dict[str, Any]:
    if endpoint == "ledger":
        body["transfers"][0]["amount"] = value
    else:
        body["amount"] = value
    return body


# A ledger item may leave the amount out (null): a post then posts the whole pending amount,
# and a plain transfer answers amount_must_not_be_zero (test_ledger_items_breaking_rules...).
AMOUNT_CASES = [
    pytest.param(endpoint, *case.values, id=f"{case.id}-{endpoint}")
    for endpoint in AMOUNT_ENDPOINTS
    for case in BAD_AMOUNTS
    if not (endpoint == "ledger" and case.id == "null")
]


@pytest.mark.parametrize(("endpoint", "value"), AMOUNT_CASES)
def test_bad_amount_is_422_and_writes_nothing(world: World, endpoint: str, value: Any) -> None:
    path, body = world.request(endpoint)
    check_refused(
        world,
        path,
        set_amount(endpoint, body, value),
        status=422,
        code="request.invalid",
        field=amount_field(endpoint),
    )


@pytest.mark.parametrize("endpoint", AMOUNT_ENDPOINTS)
@pytest.mark.parametrize("literal", ["1e2", "100.0", "1E+2", "100.00000000000000001", "-0"])
def test_amount_written_as_a_json_float_literal_is_422(
    world: World, endpoint: str, literal: str
) -> None:
    path, body = world.request(endpoint)
    text = json.dumps(set_amount(endpoint, body, "@AMOUNT@")).replace('"@AMOUNT@"', literal)
    check_refused(
        world,
        path,
        raw=text.encode(),
        status=422,
        code="request.invalid",
        field=amount_field(endpoint),
    )


@pytest.mark.parametrize("endpoint", ["cash-deposit", "cash-withdrawal", "transfer"])
def test_missing_amount_is_422(world: World, endpoint: str) -> None:
    path, body = world.request(endpoint)
    del body["amount"]
    check_refused(world, path, body, status=422, code="request.invalid", field="amount")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.5, id="float"),
        pytest.param(1.0, id="float-integral"),
        pytest.param("1", id="string"),
        pytest.param(-1, id="negative"),
        pytest.param(2**63, id="2^63"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
    ],
)
def test_bad_fee_is_422(world: World, value: Any) -> None:
    path, body = world.request("transfer")
    body["fee"] = value
    check_refused(world, path, body, status=422, code="request.invalid", field="fee")


def test_largest_amounts_pass_the_schema_and_fail_on_funds(world: World) -> None:
    # 2**63 - 1 is a valid amount; the payer just does not have it.
    # TigerBeetle's order: the overflow checks come before the limit checks.
    for endpoint in ("cash-withdrawal", "transfer"):
        path, body = world.request(endpoint)
        body["amount"] = 2**63 - 1
        problem = check_refused(world, path, body, status=409, needs_field=False)
        assert problem["code"] == "ledger.exceeds_credits" or problem["code"].startswith(
            "ledger.overflows_"
        )
    path, body = world.request("transfer")
    body["fee"] = 2**63 - 1
    problem = check_refused(world, path, body, status=409, needs_field=False)
    assert problem["code"] in ("ledger.exceeds_credits", "ledger.overflows_debits_posted")
    # A deposit that would take the vault's debits past 2**63 - 1 overflows: a 409, no write.
    path, body = world.request("cash-deposit")
    body["amount"] = 2**63 - 1
    problem = check_refused(world, path, body, status=409, field="amount")
    assert problem["code"].startswith("ledger.overflows_")


# ------------------------------------------------------------------------ account numbers


def unknown_number() -> str:
    return "7" * 15 + luhn_check_digit("7" * 15)


def bad_luhn(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 3) % 10)


ACCOUNT_NUMBER_CASES = [
    # (case, status, code) — the field is the account number's own field
    ("unknown", 404, "ledger.account_not_found"),
    ("bad-luhn", 422, "payments.invalid_account_number"),
    ("foreign", 404, "ledger.account_not_found"),
    ("letters", 422, "request.invalid"),
    ("too-short", 422, "request.invalid"),
    ("too-long", 422, "request.invalid"),
    ("integer", 422, "request.invalid"),
    ("empty", 422, "request.invalid"),
    ("null", 422, "request.invalid"),
    ("spaces", 422, "request.invalid"),
    ("full-width", None, None),
]


def account_number_value(world: World, case: str) -> Any:
    mine = world.payer["account_number"]
    return {
        "unknown": unknown_number(),
        "bad-luhn": bad_luhn(mine),
        "foreign": world.foreign["account_number"],
        "letters": "ABCDEFGHIJKLMNOP",
        "too-short": "1234567",
        "too-long": "1" * 33,
        "integer": int(mine),
        "empty": "",
        "null": None,
        "spaces": f" {mine} ",
        "full-width": mine.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    }[case]


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("cash-deposit", "account_number"),
        ("cash-withdrawal", "account_number"),
        ("transfer", "from_account_number"),
        ("transfer", "to_account_number"),
    ],
)
@pytest.mark.parametrize(("case", "status", "code"), ACCOUNT_NUMBER_CASES)
def test_bad_account_number_is_refused_and_writes_nothing(
    world: World, endpoint: str, field: str, case: str, status: int | None, code: str | None
) -> None:
    path, body = world.request(endpoint)
    body[field] = account_number_value(world, case)
    check_refused(world, path, body, status=status, code=code, field=field)


def test_the_valid_requests_are_accepted(world: World) -> None:
    for endpoint in MONEY_ENDPOINTS:
        valid_works(world, endpoint)


# -------------------------------------------------------------------- unknown fields, bodies


@pytest.mark.parametrize("endpoint", MONEY_ENDPOINTS)
@pytest.mark.parametrize(
    ("extra", "value"),
    [("colour", "red"), ("institution_id", "OTHER"), ("currency", "USD"), ("fee_account", "x")],
)
def test_unknown_field_is_422(world: World, endpoint: str, extra: str, value: Any) -> None:
    path, body = world.request(endpoint)
    if endpoint == "transfer" and extra == "fee_account":
        extra = "fee_account_number"
    if value == "OTHER":
        value = str(world.other.id)
    body[extra] = value
    check_refused(world, path, body, status=422, code="request.invalid", field=extra)


def test_unknown_field_in_a_ledger_item_is_422(world: World) -> None:
    path, body = world.request("ledger")
    body["transfers"][0]["institution_id"] = str(world.other.id)
    check_refused(world, path, body, status=422, field="transfers.0.institution_id")


@pytest.mark.parametrize("endpoint", MONEY_ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b'"text"', b"null", b"", b"42", b'{"amount": 100,}', b"\xff\xfe"],
    ids=["truncated", "list", "string", "null", "empty", "number", "trailing-comma", "not-utf8"],
)
def test_malformed_body_is_422(world: World, endpoint: str, raw: bytes) -> None:
    path, _ = world.request(endpoint)
    check_refused(world, path, raw=raw, status=422, code="request.invalid")


# ------------------------------------------------------------------------------ reversal


@pytest.mark.parametrize("payment_id", ["not-a-uuid", "123", "0" * 33, "%20"])
def test_malformed_payment_id_in_path_is_422(world: World, payment_id: str) -> None:
    check_refused(
        world,
        f"/payments/{payment_id}/reversal",
        {},
        status=422,
        code="request.invalid",
        field="payment_id",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [({"memo": "x" * 141}, "memo"), ({"memo": 5}, "memo"), ({"amount": 1}, "amount")],
)
def test_bad_reversal_body_is_422(world: World, body: dict[str, Any], field: str) -> None:
    path, _ = world.request("reversal")
    check_refused(world, path, body, status=422, code="request.invalid", field=field)


def test_memo_too_long_on_payments_is_422(world: World) -> None:
    for endpoint in ("cash-deposit", "cash-withdrawal", "transfer"):
        path, body = world.request(endpoint)
        body["memo"] = "备" * 141
        check_refused(world, path, body, status=422, code="request.invalid", field="memo")


# -------------------------------------------------------------------------- ledger batch


LEDGER_SCHEMA_CASES = [
    ("id", "not-a-uuid", "transfers.0.id"),
    ("id", 12345, "transfers.0.id"),
    ("id", None, "transfers.0.id"),
    ("debit_account_id", "not-a-uuid", "transfers.0.debit_account_id"),
    ("credit_account_id", "1234", "transfers.0.credit_account_id"),
    ("pending_id", "zzz", "transfers.0.pending_id"),
    ("flags", ["bogus"], "transfers.0.flags.0"),
    ("flags", "pending", "transfers.0.flags"),
    ("flags", ["linked"] * 7, "transfers.0.flags"),
    ("ledger", "cny", "transfers.0.ledger"),
    ("ledger", "CNYX", "transfers.0.ledger"),
    ("code", -1, "transfers.0.code"),
    ("code", 65536, "transfers.0.code"),
    ("code", "1", "transfers.0.code"),
    ("code", 1.0, "transfers.0.code"),
    ("timeout", -1, "transfers.0.timeout"),
    ("timeout", 2**31, "transfers.0.timeout"),
    ("timeout", 1.5, "transfers.0.timeout"),
    ("reference", "r" * 65, "transfers.0.reference"),
    ("reference", 7, "transfers.0.reference"),
    ("metadata", [1, 2], "transfers.0.metadata"),
    ("metadata", {f"k{i}": i for i in range(33)}, "transfers.0.metadata"),
]


@pytest.mark.parametrize(("name", "value", "field"), LEDGER_SCHEMA_CASES)
def test_ledger_item_schema_errors_are_422(world: World, name: str, value: Any, field: str) -> None:
    path, body = world.request("ledger")
    body["transfers"][0][name] = value
    check_refused(world, path, body, status=422, code="request.invalid", field=field)


def test_one_bad_item_refuses_the_whole_batch(world: World) -> None:
    path, body = world.request("ledger")
    good = transfer(world.source, world.target, 5)
    bad = transfer(world.source, world.target, 5.5)
    body["transfers"] = [good, good | {"id": str(uuid.uuid4())}, bad]
    check_refused(world, path, body, status=422, field="transfers.2.amount")


@pytest.mark.parametrize(
    ("transfers", "field"),
    [([], "transfers"), ({"id": "x"}, "transfers"), (None, "transfers")],
)
def test_ledger_batch_shape_errors_are_422(world: World, transfers: Any, field: str) -> None:
    check_refused(world, "/ledger/transfers", {"transfers": transfers}, status=422, field=field)


def test_ledger_batch_too_large_is_422(world: World) -> None:
    items = [transfer(world.source, world.target, 1) for _ in range(8191)]
    check_refused(world, "/ledger/transfers", {"transfers": items}, status=422, field="transfers")


def ledger_item_results(world: World, *items: dict[str, Any]) -> list[str]:
    before = world.snapshots()
    response = send(world, "/ledger/transfers", {"transfers": list(items)})
    assert response.status_code == 200, response.text
    after = world.snapshots()
    # Only the idempotency record of the request is new: no transfer, no balance moved.
    assert after[1] == before[1]
    assert {k: v for k, v in after[0].items() if k != "idempotency_keys"} == {
        k: v for k, v in before[0].items() if k != "idempotency_keys"
    }
    return [r["result"] for r in response.json()["results"]]


def test_ledger_items_naming_accounts_it_cannot_see_write_nothing(world: World) -> None:
    theirs = world.foreign["id"]
    unknown = str(uuid.uuid4())
    assert ledger_item_results(
        world,
        transfer(world.source, theirs, 10),
        transfer(theirs, world.target, 10),
        transfer(unknown, world.target, 10),
        transfer(world.source, unknown, 10),
    ) == [
        "credit_account_not_found",
        "debit_account_not_found",
        "debit_account_not_found",
        "credit_account_not_found",
    ]
    # The other institution's account was not touched, and neither was ours.
    assert world.other.account(world.foreign["account_number"])["balance"] == 1_000


def test_ledger_items_breaking_rules_write_nothing(world: World) -> None:
    nil = str(uuid.UUID(int=0))
    empty = world.bank.open_ledger_account(name="empty", debits_must_not_exceed_credits=True)
    assert ledger_item_results(
        world,
        transfer(world.source, world.target, None),
        transfer(world.source, world.source, 10),
        transfer(world.source, world.target, 10, code=0),
        transfer(world.source, world.target, 10, id=nil),
        transfer(world.source, world.target, 10, id=str(uuid.UUID(int=2**128 - 1))),
        transfer(world.source, world.target, 10, flags=["pending", "post_pending"]),
        transfer(world.source, world.target, 10, timeout=5),
        transfer(world.source, world.target, 10, ledger="USD"),
        transfer(empty["id"], world.source, 10),
        transfer(world.source, world.target, 10, pending_id=str(uuid.uuid4())),
        {"id": str(uuid.uuid4()), "flags": ["post_pending"]},
        transfer(nil, world.target, 10),
    ) == [
        "amount_must_not_be_zero",
        "accounts_must_be_different",
        "code_must_not_be_zero",
        "id_must_not_be_zero",
        "id_must_not_be_int_max",
        "flags_are_mutually_exclusive",
        "timeout_reserved_for_pending_transfer",
        "transfer_must_have_the_same_ledger_as_accounts",
        "exceeds_credits",
        "pending_id_must_be_zero",
        "pending_id_must_not_be_zero",
        "debit_account_id_must_not_be_zero",
    ]


# ----------------------------------------------------------------------- who is asking


@pytest.mark.parametrize("endpoint", MONEY_ENDPOINTS)
def test_unknown_or_missing_institution_writes_nothing(
    client: TestClient, world: World, endpoint: str
) -> None:
    path, body = world.request(endpoint)
    before = world.snapshots()
    forged = client.post(
        API + path,
        json=body,
        headers={"Authorization": "Bearer v1.e30.AAAA", "Idempotency-Key": new_key()},
    )
    assert_problem(forged, 401, "auth.token_invalid", "Authorization")
    missing = client.post(API + path, json=body, headers={"Idempotency-Key": new_key()})
    assert_problem(missing, 401, "auth.required", "Authorization")
    if endpoint == "reversal":  # payment ids are global: another institution cannot reach ours
        as_other = world.other.post(path, body, key=new_key())
        assert_problem(as_other, 404, "payments.payment_not_found", "payment_id")
    assert world.snapshots() == before


# ------------------------------------------------------------- text the database refuses


NUL_CASES = ["cash-deposit-memo", "transfer-memo", "reversal-memo", "ledger-reference"]


@pytest.mark.parametrize("case", NUL_CASES)
def test_nul_character_in_text_is_422(world: World, case: str) -> None:
    """Regression: U+0000 was a 500 on PostgreSQL (psycopg DataError) and stored by SQLite;
    the same request must be the same 422 on both."""
    endpoint, name = case.rsplit("-", 1)
    path, body = world.request(endpoint)
    target = body["transfers"][0] if endpoint == "ledger" else body
    target[name] = "冲\x00正"
    field = f"transfers.0.{name}" if endpoint == "ledger" else name
    check_refused(world, path, body, status=422, field=field)


@pytest.mark.parametrize("case", ["customer-name", "office-name"])
def test_nul_character_elsewhere_is_422(world: World, client: TestClient, case: str) -> None:
    """Regression: as above, for names (a 500 on PostgreSQL, stored by SQLite)."""
    bank = world.bank
    before = world.snapshots()
    if case == "customer-name":
        body = {"kind": "individual", "name": "张\x00三", "id_number": resident_id()}
        response, field = bank.post("/customers", body), "name"
    else:
        body = {"code": "HQ", "name": "总\x00行", "kind": "head"}
        response, field = bank.post("/offices", body), "name"
    assert_problem(response, 422, field=field)
    assert world.snapshots() == before


def test_nul_character_in_a_query_filter_is_422(world: World) -> None:
    """Regression: on PostgreSQL ``?reference=a%00b`` reached psycopg and was a 500."""
    response = world.bank.get("/ledger/transfers", reference="a\x00b")
    assert_problem(response, 422, field="reference")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_in_metadata_is_422(world: World, literal: str) -> None:
    """Regression: Python's JSON reader takes NaN and Infinity; PostgreSQL's json type refused
    them (a 500) and SQLite stored them (then a retry of the transfer answered
    exists_with_different_metadata, since NaN != NaN)."""
    path, body = world.request("ledger")
    body["transfers"][0]["metadata"] = {"price": "@X@"}
    raw = json.dumps(body).replace('"@X@"', literal).encode()
    check_refused(world, path, raw=raw, status=422, field="transfers.0.metadata")


def nested_metadata_request(bank: Bank, depth: int) -> tuple[str, str, str, bytes]:
    debit = bank.open_ledger_account(name="nested debit")["id"]
    credit = bank.open_ledger_account(name="nested credit")["id"]
    item = transfer(debit, credit, 1, metadata={"x": "@NESTED@"})
    raw = json.dumps({"transfers": [item]}).replace('"@NESTED@"', "[" * depth + "]" * depth)
    return item["id"], debit, credit, raw.encode()


@pytest.mark.parametrize("depth", [250, 254, 300])
def test_deeply_nested_metadata_is_refused_or_stays_readable(world: World, depth: int) -> None:
    bank = new_bank(world.bank.client, world.bank.factory, prefix="NEST")
    transfer_id, debit, credit, raw = nested_metadata_request(bank, depth)
    before = bank.snapshot()
    response = bank.post("/ledger/transfers", key=new_key(), content=raw)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert_problem(response, 422, field="transfers.0.metadata")
        assert bank.snapshot() == before
        return
    assert [r["result"] for r in response.json()["results"]] == ["ok"]
    for path in (
        f"/ledger/transfers/{transfer_id}",
        "/ledger/transfers",
        f"/ledger/accounts/{debit}/statement",
        f"/ledger/accounts/{credit}/statement",
    ):
        read = bank.get(path)
        assert read.status_code == 200, (path, read.status_code, read.text[:200])


def test_body_too_deep_to_parse_is_a_4xx_naming_the_body(world: World) -> None:
    path, _ = world.request("ledger")
    raw = b'{"transfers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    check_refused(world, path, raw=raw, status=422, code="request.invalid")
