"""Institutions (法人机构) and their office trees over the API, on both databases."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from huinong.ledger.chart import STANDARD_CHART
from tests.api.conftest import Bank, assert_problem, new_bank, race


def test_each_caller_sees_its_own_institution(bank: Bank, other_bank: Bank) -> None:
    own = bank.ok(bank.get("/institution"))
    assert own["code"] == bank.code and own["id"] == str(bank.id)
    assert own["currency"] == "CNY"
    assert uuid.UUID(own["id"]).version == 7
    theirs = other_bank.ok(other_bank.get("/institution"))
    assert theirs["code"] == other_bank.code


def test_institutions_are_not_created_or_listed_over_the_api(bank: Bank) -> None:
    """Creating an institution is the platform's job (``huinong institution create``)."""
    listed = bank.get("/institutions")
    assert_problem(listed, 404, needs_field=False)
    created = bank.post("/institutions", {"code": "NEWBANK", "name": "新银行"})
    assert_problem(created, 404, needs_field=False)


def test_a_new_institution_has_its_chart_of_accounts(bank: Bank) -> None:
    page = bank.ok(bank.get("/ledger/accounts", limit=100))
    assert page["next_cursor"] is None
    assert sorted(a["code"] for a in page["items"]) == sorted(int(e.code) for e in STANDARD_CHART)
    for account in page["items"]:
        assert account["ledger"] == "CNY"
        assert account["account_number"] is None
        assert account["debits_posted"] == account["credits_posted"] == 0
    vault = bank.system_account(1001)
    assert vault["type"] == "asset"
    assert vault["credits_must_not_exceed_debits"] is True


def office(bank: Bank, code: str, kind: str, parent: str | None = None, name: str = "营业网点"):
    body = {"code": code, "name": name, "kind": kind}
    if parent is not None:
        body["parent_code"] = parent
    return bank.post("/offices", body)


def test_office_tree_head_branch_outlet(bank: Bank) -> None:
    head = bank.ok(office(bank, "HQ", "head", name="总行营业部"), 201)
    assert head["parent_id"] is None and head["kind"] == "head"
    branch = bank.ok(office(bank, "BR01", "branch", "HQ"), 201)
    assert branch["parent_id"] == head["id"]
    outlet = bank.ok(office(bank, "OUT01", "outlet", "BR01"), 201)
    assert outlet["parent_id"] == branch["id"]
    direct = bank.ok(office(bank, "OUT02", "outlet", "HQ"), 201)
    assert direct["parent_id"] == head["id"]

    listed = bank.ok(bank.get("/offices"))
    assert [o["code"] for o in listed] == ["BR01", "HQ", "OUT01", "OUT02"]
    assert {o["id"]: o for o in listed}[outlet["id"]] == outlet


@pytest.mark.parametrize(
    ("code", "kind", "parent", "status", "problem", "field"),
    [
        ("HQ2", "head", None, 422, "institutions.head_office_exists", "kind"),
        ("BR09", "branch", None, 422, "institutions.parent_required", "parent_code"),
        ("OUT09", "outlet", None, 422, "institutions.parent_required", "parent_code"),
        ("BR09", "branch", "BR01", 422, "institutions.invalid_parent", "parent_code"),
        ("BR09", "branch", "OUT01", 422, "institutions.invalid_parent", "parent_code"),
        ("OUT09", "outlet", "OUT01", 422, "institutions.invalid_parent", "parent_code"),
        ("OUT09", "outlet", "NOPE", 404, "institutions.office_not_found", "parent_code"),
        ("BR01", "branch", "HQ", 409, "institutions.office_code_taken", "code"),
        ("OUT01", "outlet", "BR01", 409, "institutions.office_code_taken", "code"),
        ("bad code", "outlet", "HQ", 422, "request.invalid", "code"),
        ("OUT09", "kiosk", "HQ", 422, "request.invalid", "kind"),
    ],
)
def test_office_tree_rules(
    bank: Bank,
    code: str,
    kind: str,
    parent: str | None,
    status: int,
    problem: str,
    field: str,
) -> None:
    bank.ok(office(bank, "HQ", "head"), 201)
    bank.ok(office(bank, "BR01", "branch", "HQ"), 201)
    bank.ok(office(bank, "OUT01", "outlet", "BR01"), 201)
    before = bank.snapshot()
    assert_problem(office(bank, code, kind, parent), status, problem, field)
    assert bank.snapshot() == before
    assert len(bank.ok(bank.get("/offices"))) == 3


def test_first_office_must_be_the_head(bank: Bank) -> None:
    assert_problem(office(bank, "BR01", "branch", "HQ"), 404, "institutions.office_not_found")
    assert_problem(office(bank, "BR01", "branch"), 422, "institutions.parent_required")
    assert bank.ok(bank.get("/offices")) == []


def test_office_trees_are_per_institution(bank: Bank, other_bank: Bank) -> None:
    bank.ok(office(bank, "HQ", "head"), 201)
    bank.ok(office(bank, "BR01", "branch", "HQ"), 201)
    # The same codes are free in another institution, and its parents are not visible here.
    assert_problem(office(other_bank, "BR01", "branch", "HQ"), 404, "institutions.office_not_found")
    other_head = other_bank.ok(office(other_bank, "HQ", "head"), 201)
    other_branch = other_bank.ok(office(other_bank, "BR01", "branch", "HQ"), 201)
    assert other_branch["parent_id"] == other_head["id"]
    assert [o["code"] for o in bank.ok(bank.get("/offices"))] == ["BR01", "HQ"]
    assert {o["id"] for o in other_bank.ok(other_bank.get("/offices"))} == {
        other_head["id"],
        other_branch["id"],
    }


def test_concurrent_duplicate_office_codes_give_one_office(bank: Bank) -> None:
    bank.ok(office(bank, "HQ", "head"), 201)
    statuses = race(8, lambda i: office(bank, "BR01", "branch", "HQ").status_code)
    assert sorted(statuses) == [201] + [409] * 7
    assert [o["code"] for o in bank.ok(bank.get("/offices"))] == ["BR01", "HQ"]


def test_concurrent_head_offices_leave_exactly_one_head(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    """Regression: the "has a head office" check was a plain SELECT; on PostgreSQL concurrent
    POST /offices kind=head all committed."""
    # A race needs a few tries to show; every round must end with a single head office.
    for _ in range(5):
        fresh = new_bank(client, factory, prefix="HEAD")
        statuses = race(8, lambda i, b=fresh: office(b, f"HQ{i}", "head").status_code)
        heads = [o for o in fresh.ok(fresh.get("/offices")) if o["kind"] == "head"]
        assert len(heads) == 1, heads
        assert sorted(statuses) == [201] + [422] * 7
