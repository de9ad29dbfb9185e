"""Institutions (法人机构) and their office trees over the API, on both databases."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from huinong.ledger.chart import STANDARD_CHART
from tests.api.conftest import API, Bank, assert_problem, new_bank, race


def test_create_institution_answers_it_and_lists_it(client: TestClient) -> None:
    code = f"INST{uuid.uuid4().hex[:8].upper()}"
    response = client.post(
        f"{API}/institutions",
        json={"code": code, "name": " 惠农测试农商银行 ", "business_date": "2026-03-31"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["code"] == code
    assert created["name"] == "惠农测试农商银行"
    assert created["currency"] == "CNY"
    assert created["business_date"] == "2026-03-31"
    assert uuid.UUID(created["id"]).version == 7

    listed = client.get(f"{API}/institutions").json()
    assert [i for i in listed if i["code"] == code] == [created]
    codes = [i["code"] for i in listed]
    assert codes == sorted(codes)

    own = client.get(f"{API}/institution", headers={"X-Institution": code})
    assert own.status_code == 200
    assert own.json() == created


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


def test_duplicate_institution_code_is_409(client: TestClient, bank: Bank) -> None:
    before = len(client.get(f"{API}/institutions").json())
    response = client.post(f"{API}/institutions", json={"code": bank.code, "name": "另一家"})
    assert_problem(response, 409, "institutions.code_taken", "code")
    assert len(client.get(f"{API}/institutions").json()) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "lower", "name": "x"}, "code"),
        ({"code": "A", "name": "x"}, "code"),
        ({"code": "A" * 33, "name": "x"}, "code"),
        ({"code": "ÄB", "name": "x"}, "code"),
        ({"code": "OKCODE", "name": ""}, "name"),
        ({"code": "OKCODE", "name": "x", "currency": "cny"}, "currency"),
        ({"code": "OKCODE", "name": "x", "business_date": "2026-02-30"}, "business_date"),
        ({"code": "OKCODE", "name": "x", "colour": "red"}, "colour"),
        ({"name": "x"}, "code"),
    ],
)
def test_invalid_institution_is_422(client: TestClient, body: dict, field: str) -> None:
    before = len(client.get(f"{API}/institutions").json())
    assert_problem(client.post(f"{API}/institutions", json=body), 422, field=field)
    assert len(client.get(f"{API}/institutions").json()) == before


def test_blank_institution_name_is_refused(client: TestClient) -> None:
    code = f"BL{uuid.uuid4().hex[:8].upper()}"
    response = client.post(f"{API}/institutions", json={"code": code, "name": "   "})
    assert_problem(response, 422, "institutions.name_required", "name")
    assert code not in [i["code"] for i in client.get(f"{API}/institutions").json()]


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
