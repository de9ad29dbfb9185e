"""Bill payment over the API, on both databases: billers (admin), bill files (raw CSV and
multipart, GBK, a bad file answered by row and column with nothing written), paying with an
Idempotency-Key, HTTP billers against the real fake biller, the settlement file download,
reconciliation, roles and institution isolation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from huinong.payments.bills import files
from huinong.payments.bills.fake_biller import FakeBiller, running
from huinong.payments.bills.models import Bill
from huinong.security.crypto import SM2PublicKey
from huinong.security.principals import Role
from tests.api.conftest import API, Bank, assert_problem, new_key

BILL_FILE = (
    "户号,账期,金额,缴费截止日期\n3301001,2026-10,128.50,2026-11-30\n3301002,2026-10,45.00,2026-11-30\n"
).encode("gbk")


def create_biller(bank: Bank, code: str = "GRID", **fields: Any) -> dict[str, Any]:
    body = {"code": code, "name": "国网某县供电公司", "kind": "electricity", **fields}
    return bank.ok(bank.post("/billers", body), 201)  # type: ignore[no-any-return]


def upload(bank: Bank, biller_id: str, data: bytes, **params: str):
    return bank.client.post(
        f"{API}/billers/{biller_id}/bill-files",
        content=data,
        params=params or None,
        headers={**bank.headers, "Content-Type": "text/csv"},
    )


def bills(bank: Bank, **params: Any) -> list[dict[str, Any]]:
    return bank.ok(bank.get("/bills", **params))["items"]  # type: ignore[no-any-return]


def bill_count(bank: Bank) -> int:
    with bank.factory() as s:
        return int(
            s.scalar(select(func.count()).select_from(Bill).where(Bill.institution_id == bank.id))
            or 0
        )


def pay(bank: Bank, bill: dict[str, Any], account_number: str, amount: int | None = None, key=None):
    body = {
        "bill_id": bill["id"],
        "account_number": account_number,
        "amount": bill["amount_due"] if amount is None else amount,
    }
    return bank.post("/bill-payments", body, key=key or new_key())


def test_billers_are_set_up_by_admins(bank: Bank):
    biller = create_biller(bank)
    assert biller["settlement_account_id"] and biller["our_public_key"] is None
    account = bank.ledger_account(biller["settlement_account_id"])
    assert (account["code"], account["owner_id"]) == (2314, biller["id"])
    teller = bank.as_role(Role.teller)
    assert_problem(
        teller.post("/billers", {"code": "X", "name": "x", "kind": "water"}), 403, needs_field=False
    )
    assert [b["code"] for b in teller.ok(teller.get("/billers"))["items"]] == ["GRID"]
    assert_problem(bank.post("/billers", {"code": "GRID", "name": "x", "kind": "water"}), 409)
    assert_problem(
        bank.post("/billers", {"code": "W", "name": "x", "kind": "gas"}), 422, field="kind"
    )
    changed = bank.client.patch(
        f"{API}/billers/{biller['id']}", json={"active": False}, headers=bank.headers
    )
    assert bank.ok(changed)["active"] is False


def test_a_gbk_bill_file_raw_then_again_then_multipart(bank: Bank):
    biller = create_biller(bank)
    first = bank.ok(upload(bank, biller["id"], BILL_FILE, filename="oct.csv"), 201)
    assert (first["encoding"], first["row_count"], first["new_bills"], first["total_amount"]) == (
        "gbk",
        2,
        2,
        17350,
    )
    again = bank.ok(upload(bank, biller["id"], BILL_FILE), 200)
    assert again["replayed"] is True and again["id"] == first["id"]
    later = b"reference,period,amount,due_date\n3301003,2026-10,1.00,2026-11-30\n"
    form = bank.client.post(
        f"{API}/billers/{biller['id']}/bill-files",
        files={"file": ("nov.csv", later, "text/csv")},
        headers=bank.headers,
    )
    assert bank.ok(form, 201)["filename"] == "nov.csv"
    assert sorted(b["reference"] for b in bills(bank, biller_id=biller["id"])) == [
        "3301001",
        "3301002",
        "3301003",
    ]


def test_a_bad_bill_file_is_answered_row_by_row_and_writes_nothing(bank: Bank):
    biller = create_biller(bank)
    before = (bank.snapshot(), bill_count(bank))
    bad = BILL_FILE + "3301009,2026-13,abc,2026-11-30\n".encode("gbk")
    body = assert_problem(upload(bank, biller["id"], bad), 422, "bills.file_rejected")
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(4, "账期"), (4, "金额")]
    missing = assert_problem(upload(bank, biller["id"], b"reference,amount\n1,2\n"), 422)
    assert {e["column"] for e in missing["errors"]} == {"period", "due_date"}
    wrong = assert_problem(upload(bank, biller["id"], BILL_FILE, encoding="utf-8"), 422)
    assert wrong["errors"][0]["row"] == 1
    assert (bank.snapshot(), bill_count(bank)) == before


def test_paying_a_bill_at_the_counter(bank: Bank):
    biller = create_biller(bank)
    upload(bank, biller["id"], BILL_FILE)
    account = bank.funded_account(20_000)
    bill = next(b for b in bills(bank) if b["reference"] == "3301001")
    key = new_key()
    paid = bank.ok(pay(bank, bill, account["account_number"], key=key), 201)
    assert (paid["amount"], paid["channel"], paid["confirmation"]) == (
        12850,
        "counter",
        "not_required",
    )
    assert bank.balance(account["account_number"]) == 20_000 - 12850
    assert bank.ledger_balance(biller["settlement_account_id"]) == 12850
    replay = pay(bank, bill, account["account_number"], key=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == paid["id"]
    assert bank.balance(account["account_number"]) == 20_000 - 12850
    assert bank.ok(bank.get(f"/bills/{bill['id']}"))["status"] == "paid"
    assert bank.ok(bank.get(f"/bill-payments/{paid['id']}"))["bill_id"] == bill["id"]
    before = bank.snapshot()
    assert_problem(pay(bank, bill, account["account_number"]), 409, "bills.already_paid")
    assert bank.snapshot() == before


def test_refused_payments_write_nothing(bank: Bank):
    biller = create_biller(bank)
    upload(bank, biller["id"], BILL_FILE)
    poor = bank.funded_account(100)
    bill = next(b for b in bills(bank) if b["reference"] == "3301002")
    before = bank.snapshot()
    assert_problem(pay(bank, bill, poor["account_number"]), 409, "ledger.exceeds_credits", "amount")
    assert_problem(pay(bank, bill, poor["account_number"], amount=1), 422, "bills.wrong_amount")
    assert_problem(pay(bank, bill, poor["account_number"], amount=0), 422, field="amount")
    assert_problem(bank.post("/bill-payments", {"bill_id": bill["id"]}), 422)  # no key, no body
    assert bank.snapshot() == before
    assert bank.ok(bank.get(f"/bills/{bill['id']}"))["status"] == "open"


def test_roles(bank: Bank):
    biller = create_biller(bank)
    upload(bank, biller["id"], BILL_FILE)
    account = bank.funded_account(20_000)
    bill = bills(bank)[0]
    auditor = bank.as_role(Role.auditor)
    assert_problem(pay(auditor, bill, account["account_number"]), 403, needs_field=False)
    assert_problem(upload(auditor, biller["id"], BILL_FILE), 403, needs_field=False)
    teller = bank.as_role(Role.teller)
    assert teller.ok(pay(teller, bill, account["account_number"]), 201)["channel"] == "counter"
    customer_only = bank.as_role(Role.gov_viewer)
    assert_problem(customer_only.get("/bills"), 403, needs_field=False)


def test_another_institution_sees_nothing(bank: Bank, other_bank: Bank):
    biller = create_biller(bank)
    upload(bank, biller["id"], BILL_FILE)
    bill = bills(bank)[0]
    theirs = other_bank.funded_account(50_000)
    assert_problem(other_bank.get(f"/billers/{biller['id']}"), 404)
    assert_problem(other_bank.get(f"/bills/{bill['id']}"), 404)
    assert other_bank.ok(other_bank.get("/bills"))["items"] == []
    assert_problem(pay(other_bank, bill, theirs["account_number"]), 404)
    assert_problem(upload(other_bank, biller["id"], BILL_FILE), 404)
    assert bank.ok(bank.get(f"/bills/{bill['id']}"))["status"] == "open"


# --------------------------------------------------------------------------- HTTP billers


@pytest.fixture
def fake():
    biller = FakeBiller()
    with running(biller) as url:
        biller.url = url  # type: ignore[attr-defined]
        yield biller


def http_biller(bank: Bank, fake: FakeBiller) -> dict[str, Any]:
    biller = create_biller(
        bank,
        "TEL",
        kind="telecom",
        protocol="http",
        base_url=fake.url,  # type: ignore[attr-defined]
        biller_public_key=fake.public_key.to_hex(),
    )
    fake.clients[bank.code] = SM2PublicKey.from_hex(biller["our_public_key"])
    return biller


def test_an_http_bill_queried_paid_confirmed_and_reconciled(bank: Bank, fake: FakeBiller):
    biller = http_biller(bank, fake)
    fake.add_bill("13900001111", "2026-11", 5000)
    fake.add_bill("13900002222", "2026-11", 7000)
    account = bank.funded_account(20_000)
    found = bank.ok(
        bank.post(f"/billers/{biller['id']}/bill-queries", {"reference": "13900001111"})
    )["items"]
    assert [(b["amount_due"], b["source"]) for b in found] == [(5000, "http")]
    paid = bank.ok(pay(bank, found[0], account["account_number"]), 201)
    assert paid["confirmation"] == "confirmed" and paid["biller_receipt"]
    # a confirmation that fails is pending, then retried
    [second] = bank.ok(
        bank.post(f"/billers/{biller['id']}/bill-queries", {"reference": "13900002222"})
    )["items"]
    fake.fail_confirmations = 1
    pending = bank.ok(pay(bank, second, account["account_number"]), 201)
    assert (pending["confirmation"], pending["confirmation_attempts"]) == ("pending", 1)
    assert bank.balance(account["account_number"]) == 20_000 - 12_000
    retried = bank.ok(bank.post(f"/bill-payments/{pending['id']}/confirmation"))
    assert retried["confirmation"] == "confirmed"
    # the day's settlement file and the biller's return file
    day = paid["business_date"]
    download = bank.get(f"/billers/{biller['id']}/settlement-file", date=day)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    lines, totals = files.read_settlement_file(download.content)
    assert totals == files.SettlementTotals(2, 12_000)
    assert {line.payment_id for line in lines} == {paid["id"], pending["id"]}
    returned = fake.return_file(_local_day(paid["created_at"]), amounts={pending["id"]: 7001})
    result = bank.client.post(
        f"{API}/billers/{biller['id']}/reconciliations",
        content=returned,
        params={"date": day},
        headers={**bank.headers, "Content-Type": "text/csv"},
    )
    body = bank.ok(result, 201)
    assert (body["matched_count"], body["settled_amount"]) == (1, 5000)
    assert [(m["kind"], m["payment_reference"]) for m in body["mismatches"]] == [
        ("amount_differs", pending["id"])
    ]
    assert bank.ok(bank.get(f"/bill-reconciliations/{body['id']}"))["mismatch_count"] == 1
    assert bank.ledger_balance(biller["settlement_account_id"]) == 7000


def _local_day(stamp: str):
    from datetime import datetime

    from huinong import clock

    return clock.local_date(datetime.fromisoformat(stamp))


def test_a_biller_that_cannot_be_reached_moves_no_money(bank: Bank, fake: FakeBiller):
    biller = http_biller(bank, fake)
    fake.add_bill("13900003333", "2026-11", 5000)
    account = bank.funded_account(20_000)
    [bill] = bank.ok(
        bank.post(f"/billers/{biller['id']}/bill-queries", {"reference": "13900003333"})
    )["items"]
    fake.answer_key = fake.key.generate()  # an impostor answers from now on
    before = bank.snapshot()
    refused = pay(bank, bill, account["account_number"])
    assert refused.status_code == 503  # the biller is unusable: try again later
    assert refused.json()["code"] == "bills.biller_answer_invalid"
    assert bank.snapshot() == before
