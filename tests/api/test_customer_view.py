"""The 360° customer view and the party lookup over HTTP: contents, masking by role, the
default account, institution isolation, and audit records without personal data."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select

from huinong.ids import luhn_check_digit
from huinong.security.audit.models import AuditRecord
from huinong.security.principals import Role
from tests.api.conftest import API, Bank, assert_problem, resident_id
from tests.api.test_households import consent_to_archive, household, survey

pytestmark = pytest.mark.usefixtures("sample_villages")


def put(bank: Bank, path: str, body: Any) -> Response:
    return bank.client.put(API + path, headers=bank.headers, json=body)


def audit_of(bank: Bank, action: str) -> list[AuditRecord]:
    with bank.factory() as session:
        return list(
            session.scalars(
                select(AuditRecord)
                .where(AuditRecord.institution_id == bank.id, AuditRecord.action == action)
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )


def test_the_view_holds_identity_household_accounts_archive_and_consents(client, bank):
    teller = bank.as_role(Role.teller)
    id_number = resident_id()
    head = teller.customer(name="张三", id_number=id_number, phone="13912345678")
    home = teller.ok(teller.post("/households", {"head_customer_id": head["id"]}), 201)
    spouse = teller.customer(name="李梅")["id"]
    teller.ok(
        teller.post(
            f"/households/{home['id']}/members",
            {"relationship": "spouse", "is_labour": True, "customer_id": spouse},
        ),
        201,
    )
    first = teller.deposit_account(head["id"])
    teller.deposit(first["account_number"], 12_345)
    second = teller.deposit_account(head["id"])
    consent_to_archive(bank, head["id"])
    manager = bank.as_role(Role.account_manager)
    version = manager.ok(
        manager.post(f"/households/{home['id']}/archive-versions", survey("2026-02-01")), 201
    )

    view = teller.ok(teller.get(f"/customers/{head['id']}/view"))
    assert view["customer"]["name"] == "张三"
    assert view["customer"]["id_number_masked"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert view["customer"]["phone_masked"] == "139****5678"
    assert view["household"]["id"] == home["id"]
    assert view["household"]["relationship"] == "head"
    assert [m["name"] for m in view["household"]["members"]] == ["张三", "李梅"]
    assert [v["id"] for v in view["household"]["archive_versions"]] == [version["id"]]
    assert "archive" not in view["household"]["archive_versions"][0]
    accounts = view["deposit_accounts"]
    assert [a["account_number"] for a in accounts] == [
        first["account_number"],
        second["account_number"],
    ]
    assert [(a["balance"], a["is_default"]) for a in accounts] == [(12_345, True), (0, False)]
    assert [c["purpose"] for c in view["consents"]] == ["village_credit_campaign"]
    assert id_number not in str(view) and "13912345678" not in str(view)

    # The spouse's view shows the same household from the spouse's side.
    theirs = teller.ok(teller.get(f"/customers/{spouse}/view"))
    assert theirs["household"]["relationship"] == "spouse"
    assert theirs["deposit_accounts"] == [] and theirs["consents"] == []

    # Marking the second account as default moves the flag.
    teller.ok(
        put(
            teller,
            f"/customers/{head['id']}/default-account",
            {"account_number": second["account_number"]},
        )
    )
    again = teller.ok(teller.get(f"/customers/{head['id']}/view"))
    assert [a["is_default"] for a in again["deposit_accounts"]] == [False, True]

    records = audit_of(bank, "customers.viewed")
    assert len(records) == 3 and records[0].object_id == head["id"]
    assert id_number not in str(records[0].detail) and "张三" not in str(records[0].detail)


def test_an_unprivileged_role_sees_names_and_account_numbers_masked(client, bank):
    head = bank.customer(name="欧阳娜娜")
    account = bank.deposit_account(head["id"])
    auditor = bank.as_role(Role.auditor)
    view = auditor.ok(auditor.get(f"/customers/{head['id']}/view"))
    assert view["customer"]["name"] == "欧***"
    number = account["account_number"]
    assert (
        view["deposit_accounts"][0]["account_number"]
        == number[:6] + "*" * (len(number) - 10) + number[-4:]
    )
    assert view["household"] is None
    # Roles outside the table are refused outright.
    assert_problem(
        bank.as_role(Role.agent).get(f"/customers/{head['id']}/view"),
        403,
        "auth.forbidden",
        needs_field=False,
    )


def test_the_view_of_another_institution_s_customer_is_not_found(client, bank, other_bank):
    home = household(bank)
    assert_problem(
        other_bank.get(f"/customers/{home['head_customer_id']}/view"),
        404,
        "parties.customer_not_found",
    )
    assert audit_of(other_bank, "customers.viewed") == []


def test_default_account_rules(client, bank, other_bank):
    teller = bank.as_role(Role.teller)
    owner = teller.customer()["id"]
    stranger = teller.deposit_account()
    assert_problem(
        put(
            teller,
            f"/customers/{owner}/default-account",
            {"account_number": stranger["account_number"]},
        ),
        422,
        "parties.account_of_another_customer",
        "account_number",
    )
    own = teller.deposit_account(owner)
    teller.ok(teller.post(f"/deposit-accounts/{own['account_number']}/close"))
    assert_problem(
        put(
            teller, f"/customers/{owner}/default-account", {"account_number": own["account_number"]}
        ),
        422,
        "parties.default_account_closed",
        "account_number",
    )
    # Account numbers are per institution: one that names no account here is not found.
    unknown = "999999999999999" + luhn_check_digit("999999999999999")
    assert_problem(
        put(teller, f"/customers/{owner}/default-account", {"account_number": unknown}),
        404,
        field="account_number",
    )
    # Another institution's customer cannot be given a default here.
    theirs = other_bank.customer()["id"]
    assert_problem(
        put(
            teller,
            f"/customers/{theirs}/default-account",
            {"account_number": own["account_number"]},
        ),
        404,
        "parties.customer_not_found",
    )


# --------------------------------------------------------------------------- party lookup


def test_lookup_by_phone_and_by_id_number(client, bank, other_bank):
    id_number = resident_id()
    phone = "13700001111"
    farmer = bank.customer(name="王五", id_number=id_number, phone=phone)
    first = bank.deposit_account(farmer["id"])
    second = bank.deposit_account(farmer["id"])
    agent_like = bank.as_role(Role.partner)

    by_id = agent_like.ok(agent_like.post("/party-lookup", {"id_number": id_number}))
    assert by_id["items"] == [
        {
            "customer_id": farmer["id"],
            "name_masked": "王*",
            "account_number": first["account_number"],
        }
    ]
    bank.as_role(Role.teller).ok(
        put(
            bank.as_role(Role.teller),
            f"/customers/{farmer['id']}/default-account",
            {"account_number": second["account_number"]},
        )
    )
    by_phone = agent_like.ok(agent_like.post("/party-lookup", {"phone": "137-0000-1111"}))
    assert by_phone["items"][0]["account_number"] == second["account_number"]

    # Two customers sharing a phone are both listed; one without an account has none.
    spouse = bank.customer(name="李梅", phone=phone)
    shared = agent_like.ok(agent_like.post("/party-lookup", {"phone": phone}))["items"]
    assert [(m["customer_id"], m["account_number"]) for m in shared] == [
        (farmer["id"], second["account_number"]),
        (spouse["id"], None),
    ]

    # Not found: an empty answer, not an error.
    assert agent_like.ok(agent_like.post("/party-lookup", {"phone": "13700009999"}))["items"] == []
    assert (
        agent_like.ok(agent_like.post("/party-lookup", {"id_number": resident_id()}))["items"] == []
    )
    # Another institution's customer is never found, by either identifier.
    assert other_bank.ok(other_bank.post("/party-lookup", {"id_number": id_number}))["items"] == []
    assert other_bank.ok(other_bank.post("/party-lookup", {"phone": phone}))["items"] == []

    # Bad input names the field; exactly one identifier.
    assert_problem(agent_like.post("/party-lookup", {"phone": "12345"}), 422, field="phone")
    assert_problem(
        agent_like.post("/party-lookup", {"id_number": "110105194912310021"}),
        422,
        field="id_number",
    )
    assert_problem(agent_like.post("/party-lookup", {}), 422)
    assert_problem(agent_like.post("/party-lookup", {"phone": phone, "id_number": id_number}), 422)

    records = audit_of(bank, "parties.looked_up")
    assert [(r.detail or {}).get("by") for r in records] == [
        "id_number",
        "phone",
        "phone",
        "phone",
        "id_number",
    ]
    assert records[0].object_id == farmer["id"]
    assert all(id_number not in str(r.detail) and phone not in str(r.detail) for r in records)


def test_lookup_roles(client, bank):
    body = {"phone": "13700002222"}
    for role in (Role.teller, Role.account_manager, Role.partner):
        bank.as_role(role).ok(bank.as_role(role).post("/party-lookup", body))
    for role in (Role.auditor, Role.gov_viewer, Role.buyer):
        assert_problem(
            bank.as_role(role).post("/party-lookup", body), 403, "auth.forbidden", needs_field=False
        )
