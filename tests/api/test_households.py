"""Households and their archives over HTTP: members and their rules, archive versions as of a
date, the consent guard (refusals audited), bad archives named by field path, isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import func, select

from huinong.parties.households.models import HouseholdArchiveVersion, HouseholdMember
from huinong.security.audit.models import AuditRecord
from huinong.security.principals import Role
from tests.api.conftest import API, Bank, assert_problem, resident_id
from tests.conftest import SAMPLE_VILLAGE

VILLAGE = SAMPLE_VILLAGE
pytestmark = pytest.mark.usefixtures("sample_villages")


def request(bank: Bank, method: str, path: str, body: Any = None) -> Response:
    return bank.client.request(method, API + path, headers=bank.headers, json=body)


def household(bank: Bank, head_name: str = "张三", **fields: Any) -> dict[str, Any]:
    head = bank.customer(name=head_name)["id"]
    body = {"head_customer_id": head, "village_code": VILLAGE, **fields}
    return bank.ok(bank.post("/households", body), 201)  # type: ignore[no-any-return]


def consent_to_archive(bank: Bank, customer_id: str, purpose: str = "village_credit_campaign"):
    body = {
        "categories": ["household_archive"],
        "purpose": purpose,
        "evidence": {"kind": "paper_form", "reference": "ZCSX-2026-0042"},
    }
    return bank.as_role(Role.teller).ok(bank.post(f"/customers/{customer_id}/consents", body), 201)


def survey(surveyed_on: str, purpose: str = "village_credit_campaign", **archive: Any):
    return {
        "surveyed_on": surveyed_on,
        "source": "field_survey",
        "purpose": purpose,
        "archive": {
            "member_count": 3,
            "labour_count": 2,
            "cultivated_land_mu": "10.5",
            "crops": [{"crop": "苹果", "area_mu": "10.5", "expected_yield_kg": "30000"}],
            "income": {"year": 2025, "planting": 6_000_000, "wages": 2_000_000},
            "debts": [{"lender_kind": "bank", "lender": "某农商银行", "amount_fen": 2_000_000}],
            **archive,
        },
    }


def actions(bank: Bank) -> list[tuple[str, str]]:
    with bank.factory() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.outcome)
            .where(AuditRecord.institution_id == bank.id)
            .order_by(AuditRecord.occurred_at, AuditRecord.id)
        ).all()
    return [(a, o) for a, o in rows]


def versions_of(bank: Bank) -> int:
    with bank.factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(HouseholdArchiveVersion)
                .where(HouseholdArchiveVersion.institution_id == bank.id)
            )
            or 0
        )


def test_households_and_members(client, bank):
    teller = bank.as_role(Role.teller)
    created = household(teller)
    assert created["village_code"] == VILLAGE
    assert len(created["household_number"]) == 12
    assert [m["relationship"] for m in created["members"]] == ["head"]
    assert created["members"][0]["name"] == "张三"  # a teller serves the customer: in full
    spouse = teller.customer(name="李梅")["id"]
    path = f"/households/{created['id']}/members"
    with_spouse = teller.ok(
        teller.post(path, {"relationship": "spouse", "is_labour": True, "customer_id": spouse}),
        201,
    )
    id_number = resident_id()
    full = teller.ok(
        teller.post(
            path,
            {
                "relationship": "parent",
                "is_labour": False,
                "name": "张老汉",
                "birth_year": 1948,
                "id_number": id_number,
            },
        ),
        201,
    )
    assert with_spouse["member_count"] == 2
    assert (full["member_count"], full["labour_count"]) == (3, 2)
    parent = full["members"][2]
    assert parent["id_number_masked"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert id_number not in str(full)

    # An auditor sees the household with names masked.
    seen = bank.as_role(Role.auditor).ok(
        bank.as_role(Role.auditor).get(f"/households/{created['id']}")
    )
    assert [m["name"] for m in seen["members"]] == ["张*", "李*", "张**"]

    listed = teller.ok(teller.get("/households", village_code=VILLAGE))
    assert created["id"] in [h["id"] for h in listed["items"]]
    assert teller.ok(teller.get("/households", village_code="610423105299"))["items"] == []

    # One household per customer; one head.
    other = household(teller, "赵六")
    assert_problem(
        teller.post(
            f"/households/{other['id']}/members",
            {"relationship": "sibling", "is_labour": True, "customer_id": spouse},
        ),
        409,
        "households.customer_in_household",
        "customer_id",
    )
    assert_problem(
        teller.post(
            f"/households/{other['id']}/members",
            {"relationship": "head", "is_labour": True, "name": "某人"},
        ),
        409,
        "households.one_head",
        "relationship",
    )
    assert_problem(
        teller.post("/households", {"head_customer_id": spouse}),
        409,
        "households.customer_in_household",
        "head_customer_id",
    )
    assert_problem(
        teller.post(
            f"/households/{other['id']}/members",
            {"relationship": "cousin", "is_labour": True, "name": "某人"},
        ),
        422,
        field="relationship",
    )

    # Removing: a member may leave, the head may not.
    head_member = full["members"][0]["id"]
    assert_problem(
        request(teller, "DELETE", f"/households/{created['id']}/members/{head_member}"),
        409,
        "households.head_not_removable",
    )
    after = teller.ok(
        request(teller, "DELETE", f"/households/{created['id']}/members/{parent['id']}")
    )
    assert after["member_count"] == 2
    # The member id of one household does not reach into another.
    assert_problem(
        request(teller, "DELETE", f"/households/{other['id']}/members/{head_member}"), 404
    )
    recorded = [a for a, _ in actions(bank) if a.startswith("households.")]
    assert "households.member_added" in recorded and "households.member_removed" in recorded


def test_archive_versions_as_of_a_date(client, bank):
    manager = bank.as_role(Role.account_manager)
    home = household(manager)
    consent_to_archive(bank, home["head_customer_id"])
    path = f"/households/{home['id']}"
    first = manager.ok(manager.post(path + "/archive-versions", survey("2025-04-01")), 201)
    second = manager.ok(
        manager.post(path + "/archive-versions", survey("2026-04-01", member_count=4)), 201
    )
    assert first["figures"]["total_income_fen"] == 8_000_000
    assert first["figures"]["debt_to_income"] == "0.2500"
    assert first["figures"]["land_per_labourer_mu"] == "5.25"
    assert first["archive"]["cultivated_land_mu"] == "10.5"
    assert first["surveyor_id"] is not None

    def read(as_of: str) -> Response:
        return client.get(
            API + path + "/archive",
            headers=manager.headers,
            params={"as_of": as_of, "purpose": "village_credit_campaign"},
        )

    assert_problem(read("2025-03-31"), 404, "households.archive_not_surveyed", "as_of")
    assert manager.ok(read("2025-04-01"))["id"] == first["id"]
    between = manager.ok(read("2026-03-31"))
    assert between["id"] == first["id"] and between["archive"]["member_count"] == 3
    assert manager.ok(read("2026-06-30"))["id"] == second["id"]

    versions = manager.ok(manager.get(path + "/archive-versions"))["items"]
    assert [v["id"] for v in versions] == [second["id"], first["id"]]
    assert "archive" not in versions[0]  # the list carries no content
    read_actions = [a for a in actions(bank) if a[0] == "households.archive_read"]
    assert read_actions == [("households.archive_read", "ok")] * 3


def test_a_bad_archive_is_named_by_field_path_and_writes_nothing(client, bank):
    manager = bank.as_role(Role.account_manager)
    home = household(manager)
    consent_to_archive(bank, home["head_customer_id"])
    path = f"/households/{home['id']}/archive-versions"
    before = versions_of(bank)
    assert_problem(
        manager.post(path, survey("2026-01-01", crops=[{"crop": "玉米", "area_mu": 2.5}])),
        422,
        field="archive.crops.0.area_mu",
    )
    assert_problem(
        manager.post(path, survey("2026-01-01", labour_count=7)),
        422,
        "households.invalid_archive",
        "archive.labour_count",
    )
    assert_problem(
        manager.post(
            path,
            survey(
                "2026-01-01",
                livestock=[{"species": "cattle", "head_count": 1, "ear_tags": ["A", "B"]}],
            ),
        ),
        422,
        "households.invalid_archive",
        "archive.livestock.0.ear_tags",
    )
    assert_problem(manager.post(path, survey("2026-01-01", purpose="gossip")), 422, field="purpose")
    assert versions_of(bank) == before


def test_consent_guards_collection_and_reading_and_refusals_are_audited(client, bank):
    manager = bank.as_role(Role.account_manager)
    home = household(manager)
    path = f"/households/{home['id']}"
    assert_problem(
        manager.post(path + "/archive-versions", survey("2026-01-01")),
        403,
        "consent.missing",
        "purpose",
    )
    assert versions_of(bank) == 0
    consent_to_archive(bank, home["head_customer_id"])
    manager.ok(manager.post(path + "/archive-versions", survey("2026-01-01")), 201)
    refused = client.get(
        API + path + "/archive",
        headers=manager.headers,
        params={"as_of": "2026-06-30", "purpose": "marketing"},
    )
    assert_problem(refused, 403, "consent.missing", "purpose")
    denied = [a for a in actions(bank) if a[1] == "denied"]
    assert denied == [
        ("households.archive_recorded", "denied"),
        ("households.archive_read", "denied"),
    ]
    # A teller may not read archives at all.
    teller = bank.as_role(Role.teller)
    assert_problem(
        client.get(
            API + path + "/archive",
            headers=teller.headers,
            params={"purpose": "village_credit_campaign"},
        ),
        403,
        "auth.forbidden",
        needs_field=False,
    )


def test_another_institution_sees_nothing(client, bank, other_bank):
    home = household(bank)
    consent_to_archive(bank, home["head_customer_id"])
    bank.ok(bank.post(f"/households/{home['id']}/archive-versions", survey("2026-01-01")), 201)
    path = f"/households/{home['id']}"
    assert_problem(other_bank.get(path), 404, "households.not_found")
    assert_problem(other_bank.get(path + "/archive-versions"), 404, "households.not_found")
    assert_problem(
        other_bank.get(path + "/archive", purpose="village_credit_campaign"),
        404,
        "households.not_found",
    )
    their = other_bank.customer(name="外行")["id"]
    assert_problem(
        other_bank.post(
            path + "/members", {"relationship": "child", "is_labour": False, "customer_id": their}
        ),
        404,
    )
    # B's customer cannot be pulled into A's household, nor head one.
    mine = household(other_bank)
    foreign = home["head_customer_id"]
    assert_problem(
        other_bank.post(
            f"/households/{mine['id']}/members",
            {"relationship": "child", "is_labour": False, "customer_id": foreign},
        ),
        404,
    )
    assert_problem(other_bank.post("/households", {"head_customer_id": foreign}), 404)
    assert other_bank.ok(other_bank.get("/households"))["items"] == [
        other_bank.ok(other_bank.get(f"/households/{mine['id']}"))
    ]
    with bank.factory() as session:
        members = session.scalar(
            select(func.count())
            .select_from(HouseholdMember)
            .where(HouseholdMember.household_id == uuid.UUID(home["id"]))
        )
    assert members == 1


def test_the_head_changes_over_the_api_and_is_audited(client, bank):
    teller = bank.as_role(Role.teller)
    home = household(teller, head_name="王父")
    son = teller.customer(name="王子")["id"]
    path = f"/households/{home['id']}/members"
    teller.ok(
        teller.post(path, {"relationship": "child", "is_labour": True, "customer_id": son}), 201
    )
    daughter = teller.ok(
        teller.post(path, {"relationship": "child", "is_labour": False, "name": "王女"}), 201
    )["members"][-1]["id"]
    son_member = next(
        m["id"]
        for m in teller.ok(teller.get(f"/households/{home['id']}"))["members"]
        if m["customer_id"] == son
    )
    body = {
        "member_id": son_member,
        "previous_head_relationship": "parent",
        "relationships": [{"member_id": daughter, "relationship": "sibling"}],
    }
    changed = teller.ok(teller.post(f"/households/{home['id']}/head", body))
    assert changed["head_customer_id"] == son
    relationships = {m["id"]: m["relationship"] for m in changed["members"]}
    assert relationships[son_member] == "head" and relationships[daughter] == "sibling"
    assert sorted(relationships.values()) == ["head", "parent", "sibling"]
    named = {**body, "member_id": daughter, "relationships": []}
    assert_problem(
        teller.post(f"/households/{home['id']}/head", named),
        422,
        "households.head_not_a_customer",
        field="member_id",
    )
    with bank.factory() as session:
        actions = session.scalars(
            select(AuditRecord.action).where(AuditRecord.object_id == home["id"])
        ).all()
    assert "households.head_changed" in actions
