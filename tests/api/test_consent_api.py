"""Consent over HTTP: tellers and account managers record and revoke, auditors read, every
route scoped to the caller's institution, and the check answers at once after a revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from huinong.security.consent.models import Consent, ConsentData
from huinong.security.principals import Role
from tests.api.conftest import Bank, assert_problem, new_bank


def body(**fields: Any) -> dict[str, Any]:
    return {
        "categories": ["contact", "household_archive"],
        "purpose": "village_credit_campaign",
        "evidence": {"kind": "paper_form", "reference": "ZCSX-2026-0042"},
        **fields,
    }


def consents_of(bank: Bank) -> int:
    with bank.factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Consent).where(Consent.institution_id == bank.id)
            )
            or 0
        )


def test_record_list_check_and_revoke(client, bank, factory):
    teller = bank.as_role(Role.teller)
    auditor = bank.as_role(Role.auditor)
    manager = bank.as_role(Role.account_manager)
    customer = bank.customer()["id"]
    expires = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    created = teller.ok(
        teller.post(
            f"/customers/{customer}/consents",
            body(
                expires_at=expires,
                data=[{"category": "household_archive", "name": "land_mu", "value": "8.5"}],
            ),
        ),
        201,
    )
    assert created["customer_id"] == customer
    assert created["categories"] == ["contact", "household_archive"]
    assert created["purpose"] == "village_credit_campaign"
    assert created["grantee_institution_id"] == str(bank.id)
    assert created["state"] == "live"
    assert created["evidence"] == {"kind": "paper_form", "reference": "ZCSX-2026-0042"}
    assert created["revoked_at"] is None
    assert "8.5" not in str(created)  # captured values never come back out

    listed = auditor.ok(auditor.get(f"/customers/{customer}/consents"))["items"]
    assert [c["id"] for c in listed] == [created["id"]]

    question = {
        "customer_id": customer,
        "category": "household_archive",
        "purpose": "village_credit_campaign",
    }
    allowed = manager.ok(manager.post("/consents/check", question))
    assert allowed == {
        "allowed": True,
        "code": None,
        "message": allowed["message"],
        "consent_id": created["id"],
    }
    other_purpose = manager.ok(
        manager.post("/consents/check", {**question, "purpose": "marketing"})
    )
    assert (other_purpose["allowed"], other_purpose["code"]) == (False, "consent.missing")

    revoked = manager.ok(manager.post(f"/consents/{created['id']}/revocation"))
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    refused = manager.ok(manager.post("/consents/check", question))
    assert (refused["allowed"], refused["code"], refused["consent_id"]) == (
        False,
        "consent.revoked",
        None,
    )
    assert_problem(
        manager.post(f"/consents/{created['id']}/revocation"),
        409,
        "consent.already_revoked",
        "consent_id",
    )


def test_roles(client, bank):
    customer = bank.customer()["id"]
    auditor = bank.as_role(Role.auditor)
    admin = bank.as_role(Role.admin)
    for reader in (auditor, admin):
        assert_problem(
            reader.post(f"/customers/{customer}/consents", body()),
            403,
            "auth.forbidden",
            needs_field=False,
        )
    assert_problem(
        admin.get(f"/customers/{customer}/consents"), 403, "auth.forbidden", needs_field=False
    )
    created = bank.as_role(Role.account_manager).ok(
        bank.as_role(Role.account_manager).post(f"/customers/{customer}/consents", body()), 201
    )
    assert_problem(
        auditor.post(f"/consents/{created['id']}/revocation"),
        403,
        "auth.forbidden",
        needs_field=False,
    )


def test_another_institution_sees_and_changes_nothing(client, bank, factory):
    other = new_bank(client, factory, prefix="OTH")
    customer = bank.customer()["id"]
    created = bank.as_role(Role.teller).ok(
        bank.as_role(Role.teller).post(f"/customers/{customer}/consents", body()), 201
    )
    stranger = other.as_role(Role.teller, Role.auditor, Role.account_manager)
    assert_problem(
        stranger.post(f"/customers/{customer}/consents", body()),
        404,
        "consent.customer_not_found",
        "customer_id",
    )
    assert_problem(
        stranger.get(f"/customers/{customer}/consents"), 404, "consent.customer_not_found"
    )
    assert_problem(
        stranger.post(f"/consents/{created['id']}/revocation"),
        404,
        "consent.not_found",
        "consent_id",
    )
    answer = stranger.ok(
        stranger.post(
            "/consents/check",
            {"customer_id": customer, "category": "contact", "purpose": "village_credit_campaign"},
        )
    )
    assert (answer["allowed"], answer["code"], answer["consent_id"]) == (
        False,
        "consent.missing",
        None,
    )
    assert consents_of(other) == 0
    listed = bank.as_role(Role.auditor).ok(
        bank.as_role(Role.auditor).get(f"/customers/{customer}/consents")
    )
    assert [c["state"] for c in listed["items"]] == ["live"]


def test_a_consent_for_another_institution_as_grantee(client, bank, factory):
    partner = new_bank(client, factory, prefix="GNT")
    customer = bank.customer()["id"]
    teller = bank.as_role(Role.teller)
    created = teller.ok(
        teller.post(
            f"/customers/{customer}/consents",
            body(
                categories=["credit"],
                purpose="credit_assessment",
                grantee_institution_code=partner.code,
            ),
        ),
        201,
    )
    assert created["grantee_institution_id"] == str(partner.id)
    question = {"customer_id": customer, "category": "credit", "purpose": "credit_assessment"}
    assert partner.as_role(Role.risk_officer).ok(
        partner.as_role(Role.risk_officer).post("/consents/check", question)
    )["allowed"]
    assert not teller.ok(teller.post("/consents/check", question))["allowed"]
    assert_problem(
        teller.post(
            f"/customers/{customer}/consents", body(grantee_institution_code="NO-SUCH-BANK")
        ),
        404,
        "consent.grantee_not_found",
        "grantee_institution_code",
    )


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(client, bank):
    teller = bank.as_role(Role.teller)
    customer = bank.customer()["id"]
    naive = (datetime.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        (body(categories=[]), "categories"),
        (body(categories=["religion"]), "categories"),
        (body(purpose="resale"), "purpose"),
        (body(evidence={"kind": "shouted", "reference": "x"}), "evidence"),
        (body(evidence={"kind": "paper_form", "reference": ""}), "evidence"),
        (body(expires_at=naive), "expires_at"),
        (body(expires_at=past), "expires_at"),
        (body(data=[{"category": "credit", "name": "score", "value": "700"}]), "data[0].category"),
        (body(data=[{"category": "contact", "name": "Bad Name", "value": "x"}]), "data"),
        (body(unexpected=True), "unexpected"),
    ]
    for sent, field in cases:
        response = teller.post(f"/customers/{customer}/consents", sent)
        problem = assert_problem(response, 422)
        named = {problem.get("field")} | {e.get("field") for e in problem.get("errors", [])}
        assert any(f and f.startswith(field.split("[")[0]) for f in named), (field, problem)
    assert_problem(
        teller.post(f"/customers/{uuid.uuid4()}/consents", body()),
        404,
        "consent.customer_not_found",
    )
    assert_problem(teller.post("/consents/not-a-uuid/revocation"), 422)
    assert consents_of(bank) == 0
    with bank.factory() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(ConsentData)
                .where(ConsentData.institution_id == bank.id)
            )
            == 0
        )
