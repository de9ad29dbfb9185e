"""Village service points over HTTP, on both databases: a signed terminal's assisted
withdrawals, deposits and balance inquiries with SM2-encrypted PINs, the institution's
limits, the agent's float, commission and the end-of-day report."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import transaction
from huinong.payments.service_points.models import WithdrawalCode
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey
from huinong.security.identities.senders import OutboxSender
from huinong.security.principals import Role
from huinong.security.terminals.client import TerminalClient, UnsignedResponse
from tests.api.conftest import Bank, assert_problem, race

PIN = "135790"


@dataclass
class Point:
    bank: Bank
    id: str
    code: str
    float_account_number: str
    terminal: TerminalClient
    platform_key: SM2PublicKey

    def pin(self, pin: str = PIN) -> str:
        return self.platform_key.encrypt(pin.encode()).hex()

    def post(self, path: str, body: dict[str, Any], *, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        try:
            return self.terminal.post(f"/api/v1{path}", json=body, headers=headers)
        except UnsignedResponse as refused:
            return refused.response

    def withdraw(self, account_number: str, amount: int, pin: str = PIN, **kw: Any) -> Any:
        body = {"account_number": account_number, "pin_ciphertext": self.pin(pin), "amount": amount}
        return self.post("/agent/withdrawals", body, **kw)

    def deposit(self, account_number: str, amount: int) -> Any:
        return self.post("/agent/deposits", {"account_number": account_number, "amount": amount})


def open_point(bank: Bank, *, float_fen: int = 0) -> Point:
    bank.ok(bank.post("/offices", {"code": "HQ", "name": "总行", "kind": "head"}), 201)
    branch = {"code": "BR", "name": "东镇支行", "kind": "branch", "parent_code": "HQ"}
    bank.ok(bank.post("/offices", branch), 201)
    outlet = bank.ok(
        bank.post(
            "/offices",
            {"code": "OUT", "name": "李家庄网点", "kind": "outlet", "parent_code": "BR"},
        ),
        201,
    )
    agent = bank.customer(name="李家庄便民超市", kind="merchant", id_number=credit_code())
    code = f"SP{uuid.uuid4().hex[:6].upper()}"
    point = bank.ok(
        bank.post(
            "/service-points",
            {
                "code": code,
                "name": "李家庄助农服务点",
                "outlet_id": outlet["id"],
                "agent_customer_id": agent["id"],
                "village_code": "370281104201",
            },
        ),
        201,
    )
    if float_fen:
        bank.deposit(point["float_account_number"], float_fen)
    key = SM2PrivateKey.generate()
    terminal = bank.ok(
        bank.post(
            "/terminals",
            {
                "code": f"POS-{code}",
                "kind": "pos",
                "binding_kind": "service_point",
                "binding_reference": code,
                "public_key": key.public_key.to_hex(),
            },
        ),
        201,
    )
    bank.ok(bank.post(f"/terminals/{terminal['id']}/activate"))
    platform = SM2PublicKey.from_hex(bank.ok(bank.get("/platform-key"))["public_key"])
    client = TerminalClient(
        bank.client,
        terminal_id=terminal["id"],
        key_serial=1,
        private_key=key,
        platform_public_key=platform,
    )
    return Point(bank, point["id"], code, point["float_account_number"], client, platform)


def credit_code() -> str:
    from huinong.parties.rules import uscc_check_char

    body = f"92370281MA{uuid.uuid4().int % 10**7:07d}"
    return body + uscc_check_char(body)


def customer_with_pin(bank: Bank, balance: int = 500_000) -> str:
    account = bank.funded_account(balance)["account_number"]
    teller = bank.as_role(Role.teller)
    assert teller.post(f"/deposit-accounts/{account}/pin", {"pin": PIN}).status_code == 204
    return account  # type: ignore[no-any-return]


def test_assisted_withdrawal_moves_money_to_the_float_and_earns_commission(bank: Bank) -> None:
    point = open_point(bank)
    account = customer_with_pin(bank)
    response = point.withdraw(account, 30_000)
    assert response.status_code == 201, response.text
    operation = response.json()
    assert operation["kind"] == "assisted_withdrawal" and operation["commission"] == 100
    assert operation["payment"]["amount"] == 30_000
    assert bank.balance(account) == 470_000
    assert bank.balance(point.float_account_number) == 30_000
    # The same request again is a replay, not a second withdrawal.
    replay = point.terminal.post(
        "/api/v1/agent/withdrawals",
        content=response.request.content,
        headers={
            "Idempotency-Key": response.request.headers["Idempotency-Key"],
            "Content-Type": "application/json",
        },
    )
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert bank.balance(account) == 470_000


def test_wrong_pins_lock_the_pin_until_a_teller_resets_it(bank: Bank) -> None:
    point = open_point(bank)
    account = customer_with_pin(bank)
    before = bank.snapshot()
    for _ in range(3):
        assert_problem(point.withdraw(account, 1_000, pin="246801"), 403, "agents.wrong_pin")
    assert_problem(point.withdraw(account, 1_000), 403, "agents.pin_locked")
    after = bank.snapshot()
    assert after["transfers"] == before["transfers"] and after["payments"] == before["payments"]
    teller = bank.as_role(Role.teller)
    assert teller.post(f"/deposit-accounts/{account}/pin", {"pin": PIN}).status_code == 204
    assert point.withdraw(account, 1_000).status_code == 201


@pytest.mark.parametrize("pin", ["12345", "123456", "111111", "12a456"])
def test_weak_or_malformed_pins_are_refused_at_the_counter(bank: Bank, pin: str) -> None:
    account = bank.deposit_account()["account_number"]
    teller = bank.as_role(Role.teller)
    response = teller.post(f"/deposit-accounts/{account}/pin", {"pin": pin})
    assert_problem(response, 422, field="pin")


def test_limits_per_transaction_and_per_customer_day(bank: Bank) -> None:
    point = open_point(bank)
    account = customer_with_pin(bank, 1_000_000)
    assert_problem(point.withdraw(account, 100_001), 409, "agents.over_transaction_limit", "amount")
    assert point.withdraw(account, 100_000).status_code == 201
    assert point.withdraw(account, 100_000).status_code == 201
    before = bank.snapshot()
    assert_problem(point.withdraw(account, 1), 409, "agents.over_customer_day_limit", "amount")
    assert bank.snapshot() == before
    assert bank.balance(account) == 800_000


def test_limits_are_the_institutions_own(bank: Bank) -> None:
    admin = bank.as_role(Role.admin)
    terms = admin.ok(admin.get("/agent-terms"))
    terms.update(withdrawal_per_transaction=5_000, withdrawal_per_customer_day=8_000)
    changed = bank.client.put("/api/v1/agent-terms", headers=admin.headers, json=terms)
    assert changed.status_code == 200, changed.text
    point = open_point(bank)
    account = customer_with_pin(bank)
    assert_problem(point.withdraw(account, 5_001), 409, "agents.over_transaction_limit")
    assert point.withdraw(account, 5_000).status_code == 201
    assert_problem(point.withdraw(account, 3_001), 409, "agents.over_customer_day_limit")
    bad = dict(terms, withdrawal_per_transaction=9_000)
    refused = bank.client.put("/api/v1/agent-terms", headers=admin.headers, json=bad)
    assert_problem(refused, 422, "agents.invalid_terms", "withdrawal_per_transaction")


def test_deposits_need_the_institution_to_allow_them(bank: Bank) -> None:
    point = open_point(bank, float_fen=50_000)
    account = bank.deposit_account()["account_number"]
    assert_problem(point.deposit(account, 1_000), 403, "agents.deposits_disabled")
    admin = bank.as_role(Role.admin)
    terms = dict(admin.ok(admin.get("/agent-terms")), deposits_enabled=True)
    assert bank.client.put("/api/v1/agent-terms", headers=admin.headers, json=terms).is_success
    response = point.deposit(account, 1_000)
    assert response.status_code == 201, response.text
    assert bank.balance(account) == 1_000
    assert bank.balance(point.float_account_number) == 49_000


def test_concurrent_deposits_never_overdraw_the_float(bank: Bank) -> None:
    admin = bank.as_role(Role.admin)
    terms = dict(admin.ok(admin.get("/agent-terms")), deposits_enabled=True)
    assert bank.client.put("/api/v1/agent-terms", headers=admin.headers, json=terms).is_success
    point = open_point(bank, float_fen=10_000)
    accounts = [bank.deposit_account()["account_number"] for _ in range(5)]
    answers = race(5, lambda i: point.deposit(accounts[i], 4_000))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 2, [a.text for a in answers]
    assert bank.balance(point.float_account_number) == 2_000
    assert sum(bank.balance(a) for a in accounts) == 8_000


def test_balance_inquiry_needs_the_pin(bank: Bank) -> None:
    point = open_point(bank)
    account = customer_with_pin(bank, 12_345)
    body = {"account_number": account, "pin_ciphertext": point.pin()}
    answer = point.post("/agent/balance-inquiries", body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"account_number": account, "balance": 12_345, "available": 12_345}
    wrong = point.post("/agent/balance-inquiries", dict(body, pin_ciphertext=point.pin("975310")))
    assert_problem(wrong, 403, "agents.wrong_pin")
    garbled = point.post("/agent/balance-inquiries", dict(body, pin_ciphertext="00ff"))
    assert_problem(garbled, 422, "agents.pin_unreadable", "pin_ciphertext")


def test_transfer_and_bill_payment_count_against_the_customers_day(bank: Bank) -> None:
    admin = bank.as_role(Role.admin)
    terms = dict(
        admin.ok(admin.get("/agent-terms")),
        withdrawal_per_transaction=10_000,
        withdrawal_per_customer_day=10_000,
    )
    assert bank.client.put("/api/v1/agent-terms", headers=admin.headers, json=terms).is_success
    point = open_point(bank)
    account = customer_with_pin(bank, 50_000)
    payee = bank.deposit_account()["account_number"]
    sent = point.post(
        "/agent/transfers",
        {
            "account_number": account,
            "pin_ciphertext": point.pin(),
            "to_account_number": payee,
            "amount": 6_000,
        },
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["kind"] == "transfer" and sent.json()["commission"] == 50
    assert bank.balance(payee) == 6_000
    biller = bank.ok(
        bank.post("/billers", {"code": "SP-POWER", "name": "供电", "kind": "electricity"}), 201
    )
    imported = bank.client.post(
        f"/api/v1/billers/{biller['id']}/bill-files",
        content=b"reference,period,amount,due_date\n3302001,2026-10,40.00,2026-11-30\n"
        b"3302002,2026-10,50.00,2026-11-30\n",
        headers={**bank.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code < 300, imported.text
    due = bank.ok(bank.get("/bills", biller_id=biller["id"]))["items"]
    first, second = sorted(due, key=lambda b: b["reference"])

    def pay(bill: dict[str, Any]) -> Any:
        body = {
            "account_number": account,
            "pin_ciphertext": point.pin(),
            "bill_id": bill["id"],
            "amount": bill["amount_due"],
        }
        return point.post("/agent/bill-payments", body)

    paid = pay(first)
    assert paid.status_code == 201, paid.text
    assert paid.json()["kind"] == "bill_payment" and paid.json()["bill_payment_id"]
    assert bank.ok(bank.get(f"/bills/{first['id']}"))["status"] == "paid"
    # 6,000 + 4,000 paid out today: the 5,000 bill would pass the 10,000 daily limit.
    assert_problem(pay(second), 409, "agents.over_customer_day_limit", "amount")
    assert bank.balance(account) == 40_000
    report = bank.ok(bank.get(f"/service-points/{point.id}/day-report"))
    assert {t["kind"]: t["count"] for t in report["totals"]} == {
        "bill_payment": 1,
        "transfer": 1,
    }
    assert report["differences"] == []


def test_only_a_signed_service_point_terminal_operates(bank: Bank) -> None:
    account = customer_with_pin(bank)
    staff_agent = bank.as_role(Role.agent)
    response = staff_agent.post(
        "/agent/withdrawals",
        {"account_number": account, "pin_ciphertext": "00", "amount": 100},
        key=str(uuid.uuid4()),
    )
    assert_problem(response, 403, "agents.terminal_only", needs_field=False)


def test_commission_is_paid_once_a_month_and_the_day_report_reconciles(bank: Bank) -> None:
    point = open_point(bank)
    account = customer_with_pin(bank)
    first = point.withdraw(account, 10_000).json()
    point.withdraw(account, 20_000)
    business_date = date.fromisoformat(first["business_date"])
    report = bank.ok(bank.get(f"/service-points/{point.id}/day-report"))
    assert report["totals"] == [
        {"kind": "assisted_withdrawal", "count": 2, "amount": 30_000, "commission": 200}
    ]
    assert report["differences"] == []
    # A reversal at the outlet shows in the report as a difference to explain.
    bank.ok(
        bank.post(f"/payments/{first['payment']['id']}/reversal", {}, key=str(uuid.uuid4())), 201
    )
    report = bank.ok(bank.get(f"/service-points/{point.id}/day-report"))
    assert [d["problem"] for d in report["differences"]] == ["reversed since"]

    month = f"{business_date:%Y-%m}"
    admin = bank.as_role(Role.admin)
    float_before = bank.balance(point.float_account_number)
    lines = admin.ok(admin.post("/agent-commissions", {"month": month}))
    mine = next(line for line in lines if line["service_point_code"] == point.code)
    assert mine == {
        "service_point_code": point.code,
        "operations": 2,
        "amount": 200,
        "already_paid": False,
    }
    assert bank.balance(point.float_account_number) == float_before + 200
    again = admin.ok(admin.post("/agent-commissions", {"month": month}))
    assert next(line for line in again if line["service_point_code"] == point.code)["already_paid"]
    assert bank.balance(point.float_account_number) == float_before + 200
    assert_problem(admin.post("/agent-commissions", {"month": "2026-13"}), 422, field="month")


def test_a_service_point_needs_an_outlet_and_a_merchant(bank: Bank) -> None:
    point = open_point(bank)
    listed = bank.ok(bank.get("/service-points"))
    assert [p["code"] for p in listed] == [point.code]
    offices = bank.ok(bank.get("/offices"))
    head = next(o for o in offices if o["kind"] == "head")
    farmer = bank.customer()
    body = {
        "code": "SP-BAD",
        "name": "x",
        "outlet_id": head["id"],
        "agent_customer_id": farmer["id"],
    }
    assert_problem(bank.post("/service-points", body), 422, "agents.not_an_outlet", "outlet_id")
    outlet = next(o for o in offices if o["kind"] == "outlet")
    body["outlet_id"] = outlet["id"]
    assert_problem(
        bank.post("/service-points", body), 422, "agents.agent_not_merchant", "agent_customer_id"
    )


def test_the_batch_commands(bank: Bank, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from huinong.cli import app
    from huinong.config import get_settings

    point = open_point(bank)
    account = customer_with_pin(bank)
    operation = point.withdraw(account, 7_000).json()
    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        report = runner.invoke(
            app,
            ["agents", "day-report", "--institution", bank.code, "--service-point", point.code],
        )
        assert report.exit_code == 0, report.output
        assert "assisted_withdrawal" in report.output and "7000" in report.output
        month = operation["business_date"][:7]
        paid = runner.invoke(
            app, ["agents", "pay-commissions", "--institution", bank.code, "--month", month]
        )
        assert paid.exit_code == 0, paid.output
        assert point.code in paid.output and "paid now" in paid.output
        again = runner.invoke(
            app, ["agents", "pay-commissions", "--institution", bank.code, "--month", month]
        )
        assert "paid before" in again.output
        missing = runner.invoke(
            app, ["agents", "day-report", "--institution", bank.code, "--service-point", "NOPE"]
        )
        assert missing.exit_code == 1 and "no service point NOPE" in missing.output
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------- farmer code


@dataclass
class Farmer:
    customer_id: str
    account_number: str
    farmer_code: str
    phone: str


def farmer_with_card(bank: Bank, balance: int = 500_000, *, phone: bool = True) -> Farmer:
    number = f"139{uuid.uuid4().int % 10**8:08d}"
    fields = {"phone": number} if phone else {}
    customer = bank.customer(name="王大爷", **fields)
    account = bank.deposit_account(customer["id"])["account_number"]
    if balance:
        bank.deposit(account, balance)
    teller = bank.as_role(Role.teller)
    issued = teller.ok(teller.post(f"/customers/{customer['id']}/farmer-code", {}), 201)
    return Farmer(customer["id"], account, issued["farmer_code"], number)


def ask_code(point: Point, outbox: OutboxSender, farmer: Farmer, amount: int) -> str:
    response = point.post(
        "/agent/withdrawal-codes", {"farmer_code": farmer.farmer_code, "amount": amount}
    )
    assert response.status_code == 202, response.text
    institution, phone, code = outbox.sent[-1]
    assert phone == farmer.phone and institution == point.bank.code
    return code


def withdraw_by_card(point: Point, farmer: Farmer, code: str, amount: int, **kw: Any) -> Any:
    body = {"farmer_code": farmer.farmer_code, "one_time_code": code, "amount": amount}
    return point.post("/agent/withdrawals/by-farmer-code", body, **kw)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_withdrawal_by_farmer_code_and_a_one_time_code(bank: Bank, outbox: OutboxSender) -> None:
    point = open_point(bank)
    farmer = farmer_with_card(bank)
    sent = point.post(
        "/agent/withdrawal-codes", {"farmer_code": farmer.farmer_code, "amount": 20_000}
    ).json()
    assert sent["phone"] == farmer.phone[:3] + "****" + farmer.phone[-4:]
    assert sent["amount"] == 20_000
    code = outbox.sent[-1][2]
    before = bank.snapshot()
    refused = withdraw_by_card(point, farmer, other_code(code), 20_000)
    assert_problem(refused, 403, "agents.wrong_one_time_code", field="one_time_code")
    mismatch = withdraw_by_card(point, farmer, code, 30_000)
    assert_problem(mismatch, 409, "agents.one_time_code_amount_mismatch", field="amount")
    assert bank.snapshot() == before
    done = withdraw_by_card(point, farmer, code, 20_000)
    assert done.status_code == 201, done.text
    assert done.json()["kind"] == "assisted_withdrawal"
    assert done.json()["account_number"] == farmer.account_number
    assert bank.balance(farmer.account_number) == 480_000
    assert bank.balance(point.float_account_number) == 20_000
    # The code is spent: a second withdrawal with it (a new request) is refused.
    again = withdraw_by_card(point, farmer, code, 20_000)
    assert_problem(again, 403, "agents.one_time_code_expired")
    assert bank.balance(farmer.account_number) == 480_000


def test_five_wrong_codes_spend_it_and_a_new_code_replaces_the_old(
    bank: Bank, outbox: OutboxSender
) -> None:
    point = open_point(bank)
    farmer = farmer_with_card(bank)
    code = ask_code(point, outbox, farmer, 10_000)
    for _ in range(5):
        assert_problem(
            withdraw_by_card(point, farmer, other_code(code), 10_000),
            403,
            "agents.wrong_one_time_code",
        )
    assert_problem(
        withdraw_by_card(point, farmer, code, 10_000), 403, "agents.one_time_code_expired"
    )
    first = ask_code(point, outbox, farmer, 10_000)
    second = ask_code(point, outbox, farmer, 10_000)
    if first != second:
        assert_problem(
            withdraw_by_card(point, farmer, first, 10_000), 403, "agents.wrong_one_time_code"
        )
    assert withdraw_by_card(point, farmer, second, 10_000).status_code == 201


def test_an_expired_code_is_refused(
    bank: Bank, outbox: OutboxSender, factory: sessionmaker[Session]
) -> None:
    point = open_point(bank)
    farmer = farmer_with_card(bank)
    code = ask_code(point, outbox, farmer, 10_000)
    with transaction(factory) as session:
        session.execute(
            update(WithdrawalCode)
            .where(WithdrawalCode.service_point_id == uuid.UUID(point.id))
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
    assert_problem(
        withdraw_by_card(point, farmer, code, 10_000), 403, "agents.one_time_code_expired"
    )


def test_farmer_cards_are_issued_revoked_and_checked(bank: Bank, outbox: OutboxSender) -> None:
    point = open_point(bank)
    farmer = farmer_with_card(bank)
    teller = bank.as_role(Role.teller)
    shown = teller.ok(teller.get(f"/customers/{farmer.customer_id}/farmer-code"))
    assert shown["last_digits"] == farmer.farmer_code[-4:] and "farmer_code" not in shown
    # One digit mistyped: the check digit catches it before any lookup.
    typo = farmer.farmer_code[:-1] + str((int(farmer.farmer_code[-1]) + 1) % 10)
    response = point.post("/agent/withdrawal-codes", {"farmer_code": typo, "amount": 1_000})
    assert_problem(response, 422, "parties.invalid_farmer_code", field="farmer_code")
    # A lost card: a new one revokes the old one.
    new = teller.ok(teller.post(f"/customers/{farmer.customer_id}/farmer-code", {}), 201)
    old = point.post("/agent/withdrawal-codes", {"farmer_code": farmer.farmer_code, "amount": 1})
    assert_problem(old, 404, "parties.farmer_code_not_found")
    farmer.farmer_code = new["farmer_code"]
    assert ask_code(point, outbox, farmer, 1_000)
    revoked = teller.delete(f"/customers/{farmer.customer_id}/farmer-code")
    assert revoked.status_code == 204
    gone = point.post("/agent/withdrawal-codes", {"farmer_code": farmer.farmer_code, "amount": 1})
    assert_problem(gone, 404, "parties.farmer_code_not_found")
    assert_problem(teller.get(f"/customers/{farmer.customer_id}/farmer-code"), 404)


def test_a_card_holder_needs_a_phone_and_an_account(bank: Bank, outbox: OutboxSender) -> None:
    point = open_point(bank)
    no_phone = farmer_with_card(bank, phone=False)
    response = point.post(
        "/agent/withdrawal-codes", {"farmer_code": no_phone.farmer_code, "amount": 1_000}
    )
    assert_problem(response, 409, "agents.no_phone_on_record", field="farmer_code")
    customer = bank.customer(name="赵大娘", phone=f"137{uuid.uuid4().int % 10**8:08d}")
    teller = bank.as_role(Role.teller)
    card = teller.ok(teller.post(f"/customers/{customer['id']}/farmer-code", {}), 201)
    response = point.post(
        "/agent/withdrawal-codes", {"farmer_code": card["farmer_code"], "amount": 1_000}
    )
    assert_problem(response, 409, "agents.no_deposit_account", field="farmer_code")
    over = point.post(
        "/agent/withdrawal-codes", {"farmer_code": card["farmer_code"], "amount": 10**9}
    )
    assert over.status_code in (409, 422)
    assert outbox.sent == []
