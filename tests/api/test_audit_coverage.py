"""The events the issue names leave audit records, end to end over HTTP: every money
movement, sign-in (also a failed one), role change, terminal registry change and read of
personal data — each with its actor, object, outcome and request id."""

from __future__ import annotations

from sqlalchemy import select

from huinong.security.audit.models import AuditRecord
from huinong.security.crypto import SM2PrivateKey
from huinong.security.principals import Role
from tests.api.conftest import API, Bank, new_key


def records(bank: Bank) -> list[AuditRecord]:
    with bank.factory() as session:
        return list(
            session.scalars(
                select(AuditRecord)
                .where(AuditRecord.institution_id == bank.id)
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )


def one(bank: Bank, action: str, outcome: str = "ok") -> AuditRecord:
    found = [r for r in records(bank) if r.action == action and r.outcome == outcome]
    assert len(found) == 1, [(r.action, r.outcome) for r in records(bank)]
    return found[0]


def test_money_movements_leave_audit_records(bank: Bank) -> None:
    teller = bank.as_role(Role.teller)
    account = bank.deposit_account()
    response = teller.post(
        "/cash-deposits",
        {"account_number": account["account_number"], "amount": 5_000},
        key=new_key(),
        headers={"X-Request-Id": "deposit-42"},
    )
    payment = teller.ok(response, 201)
    record = one(bank, "payments.cash_deposit")
    assert record.object_type == "payment" and record.object_id == payment["id"]
    assert record.actor_kind == "staff" and record.actor_display == teller.username
    assert record.request_id == "deposit-42"
    # A replay moves nothing and leaves nothing new.
    replay = teller.post(
        "/cash-deposits",
        {"account_number": account["account_number"], "amount": 5_000},
        key=record.detail["idempotency_key"],  # type: ignore[index]
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len([r for r in records(bank) if r.action == "payments.cash_deposit"]) == 1


def test_sign_ins_role_changes_and_terminal_changes_are_audited(bank: Bank) -> None:
    auditor = bank.as_role(Role.auditor)
    signed_in = [r.actor_display for r in records(bank) if r.action == "auth.sign_in"]
    assert signed_in == [bank.username, auditor.username]
    failed = bank.client.post(
        f"{API}/auth/sign-in",
        json={"institution": bank.code, "username": auditor.username, "password": "Wrong-1234"},
    )
    assert failed.status_code == 401
    refusal = one(bank, "auth.sign_in", "failed")
    assert refusal.detail == {"code": "auth.invalid_credentials"}
    users = bank.ok(bank.get("/staff-users", limit=500))["items"]
    user_id = next(u["id"] for u in users if u["username"] == auditor.username)
    changed = bank.client.put(
        f"{API}/staff-users/{user_id}/roles", headers=bank.headers, json={"roles": ["teller"]}
    )
    assert changed.status_code == 200
    roles = one(bank, "staff.roles_changed")
    assert roles.object_id == user_id
    assert roles.detail == {"before": ["auditor"], "after": ["teller"]}
    terminal = bank.ok(
        bank.post(
            "/terminals",
            {
                "code": "AUDIT-POS",
                "kind": "pos",
                "binding_kind": "merchant",
                "binding_reference": "M-1",
                "public_key": SM2PrivateKey.generate().public_key.to_hex(),
            },
        ),
        201,
    )
    bank.ok(bank.post(f"/terminals/{terminal['id']}/activate"))
    assert one(bank, "terminals.enrolled").object_id == terminal["id"]
    assert one(bank, "terminals.active").object_id == terminal["id"]


def test_reads_of_personal_data_are_audited(bank: Bank) -> None:
    customer = bank.customer()
    teller = bank.as_role(Role.teller)
    teller.ok(teller.get(f"/customers/{customer['id']}"))
    actions = {r.action for r in records(bank) if r.object_id == customer["id"]}
    assert any(action.startswith("customers.") and "read" in action for action in actions), actions
