"""Divisions and grids over the API: lookups for every staff role, grid life cycle and
audit, a village in two grids refused, account managers scoped to their grids, customers
placed in villages, and another institution's grid out of reach.

Divisions are shared reference data: each test imports townships of its own under county
370214 (城阳区), numbered from a counter so no two tests of a session share one.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import run_in_transaction
from huinong.parties.geography import service as geography
from huinong.security.audit.models import AuditRecord
from huinong.security.principals import Role
from tests.api.conftest import Bank, assert_problem, resident_id

COUNTY = "370214"
_townships = itertools.count(601)
_names = itertools.count(1)
_loaded: set[str] = set()


@pytest.fixture
def villages(factory: sessionmaker[Session], backend: str) -> list[str]:
    """Five fresh villages of one fresh township (the standard divisions loaded once)."""
    if backend not in _loaded:
        run_in_transaction(factory, geography.load_standard)
        _loaded.add(backend)
    town = f"{COUNTY}{next(_townships):03d}"
    text = f"{town},测试街道\n" + "".join(f"{town}{200 + i:03d},第{i}村,220\n" for i in range(5))

    def work(s: Session) -> list[str]:
        parsed = geography.parse_file(s, text.encode())
        assert parsed.problems == []
        geography.import_divisions(s, rows=parsed.rows)
        return [r.code for r in parsed.rows if r.level == "village"]

    return run_in_transaction(factory, work)


def offices(bank: Bank) -> dict[str, str]:
    ids = {}
    for code, kind, parent in (
        ("HQ", "head", None),
        ("B1", "branch", "HQ"),
        ("O1", "outlet", "B1"),
    ):
        body = {"code": code, "name": f"{code} office", "kind": kind, "parent_code": parent}
        ids[code] = bank.ok(bank.post("/offices", body), 201)["id"]
    return ids


def manager(bank: Bank, *roles: Role) -> tuple[Bank, str]:
    """A staff user holding account_manager (and ``roles``): its view and its id."""
    view = bank.as_role(Role.account_manager, *roles)
    return view, view.ok(view.get("/auth/me"))["subject_id"]


def new_grid(bank: Bank, outlet: str, manager_id: str, codes: list[str], code: str = "G1") -> Any:
    body = {
        "code": code,
        "name": f"网格 {code}",
        "outlet_id": outlet,
        "manager_id": manager_id,
        "village_codes": codes,
    }
    return bank.ok(bank.post("/grids", body), 201)


def put(bank: Bank, path: str, body: Any) -> Any:
    return bank.client.put("/api/v1" + path, headers=bank.headers, json=body)


def test_every_staff_role_looks_divisions_up(bank: Bank, villages: list[str]):
    for role in (Role.agent, Role.gov_viewer, Role.teller):
        view = bank.as_role(role)
        county = view.ok(view.get("/divisions/370281"))
        assert county == {
            "code": "370281000000",
            "short_code": "370281",
            "name": "胶州市",
            "level": "county",
            "parent_code": "370200000000",
            "urban_rural_code": None,
        }
    provinces = bank.ok(bank.get("/divisions", limit=1000))["items"]
    assert len(provinces) == 31
    town = villages[0][:9]
    children = bank.ok(bank.get("/divisions", parent=town, level="village"))
    assert [d["code"] for d in children["items"]] == villages
    assert children["items"][0]["urban_rural_code"] == "220"
    page = bank.ok(bank.get("/divisions", parent=town, limit=2))
    assert len(page["items"]) == 2 and page["next_cursor"] == villages[1]
    rest = bank.ok(bank.get("/divisions", parent=town, cursor=page["next_cursor"]))
    assert [d["code"] for d in rest["items"]] == villages[2:]
    assert_problem(bank.get("/divisions/990000"), 404, "geography.division_not_found")
    assert_problem(bank.get("/divisions/37A"), 422, field="division_code")
    assert_problem(bank.get("/divisions", parent="3X"), 422)
    assert_problem(bank.get("/divisions", cursor="x"), 422, field="cursor")


def test_grid_life_cycle_is_audited(bank: Bank, villages: list[str]):
    ids = offices(bank)
    _, first = manager(bank)
    _, second = manager(bank)
    grid = new_grid(bank, ids["O1"], first, villages[:2])
    assert [o["kind"] for o in grid["chain"]] == ["head", "branch", "outlet"]
    assert [v["code"] for v in grid["villages"]] == villages[:2]
    assert grid["villages"][0]["township_name"] == "测试街道"
    gid = grid["id"]

    added = bank.ok(bank.post(f"/grids/{gid}/villages", {"village_codes": [villages[2]]}))
    assert [v["code"] for v in added["villages"]] == villages[:3]
    removed = bank.ok(bank.post(f"/grids/{gid}/villages/removal", {"village_codes": [villages[0]]}))
    assert [v["code"] for v in removed["villages"]] == villages[1:3]
    assert_problem(
        bank.post(f"/grids/{gid}/villages/removal", {"village_codes": [villages[4]]}),
        422,
        "geography.village_not_in_grid",
        "village_codes",
    )
    changed = bank.ok(put(bank, f"/grids/{gid}/manager", {"manager_id": second}))
    assert changed["manager_id"] == second
    listed = bank.ok(bank.get("/grids"))["items"]
    assert [(g["id"], g["village_count"]) for g in listed] == [(gid, 2)]
    assert bank.ok(bank.get("/grids", manager_id=first))["items"] == []
    assert bank.ok(bank.get(f"/grids/{gid}"))["manager_id"] == second

    with bank.factory() as s:
        actions = s.scalars(
            select(AuditRecord.action).where(
                AuditRecord.object_type == "grid", AuditRecord.object_id == gid
            )
        ).all()
    assert sorted(actions) == [
        "grids.created",
        "grids.manager_changed",
        "grids.villages_changed",
        "grids.villages_changed",
    ]


def test_a_village_in_two_grids_is_refused_and_nothing_written(bank: Bank, villages: list[str]):
    ids = offices(bank)
    _, manager_id = manager(bank)
    grid = new_grid(bank, ids["O1"], manager_id, villages[:2])
    before = bank.snapshot()
    body = {
        "code": "G2",
        "name": "二号",
        "outlet_id": ids["O1"],
        "manager_id": manager_id,
        "village_codes": [villages[2], villages[1]],
    }
    assert_problem(
        bank.post("/grids", body), 409, "geography.village_in_another_grid", "village_codes"
    )
    second = new_grid(bank, ids["O1"], manager_id, [villages[2]], code="G2")
    assert_problem(
        bank.post(f"/grids/{second['id']}/villages", {"village_codes": [villages[0]]}),
        409,
        "geography.village_in_another_grid",
        "village_codes",
    )
    assert bank.snapshot() == before
    assert [v["code"] for v in bank.ok(bank.get(f"/grids/{grid['id']}"))["villages"]] == (
        villages[:2]
    )


def test_grid_inputs_name_the_field(bank: Bank, villages: list[str]):
    ids = offices(bank)
    _, manager_id = manager(bank)
    teller = bank.as_role(Role.teller)
    teller_id = teller.ok(teller.get("/auth/me"))["subject_id"]
    base = {"code": "G1", "name": "网格", "outlet_id": ids["O1"], "manager_id": manager_id}
    for change, field in (
        ({"outlet_id": ids["B1"]}, "outlet_id"),
        ({"manager_id": teller_id}, "manager_id"),
        ({"village_codes": [villages[0][:9]]}, "village_codes"),
        ({"village_codes": ["3702149990001"]}, "village_codes"),
        ({"code": "G 1"}, "code"),
        ({"unknown": 1}, "unknown"),
    ):
        assert_problem(bank.post("/grids", {**base, **change}), 422, field=field)
    new_grid(bank, ids["O1"], manager_id, [])
    assert_problem(bank.post("/grids", base), 409, "geography.grid_code_taken", "code")


def test_customers_in_villages_and_managers_see_their_grids(bank: Bank, villages: list[str]):
    ids = offices(bank)
    mine, mine_id = manager(bank)
    theirs, theirs_id = manager(bank)
    senior, _ = manager(bank, Role.approver)
    grid = new_grid(bank, ids["O1"], mine_id, villages[:2])
    other_grid = new_grid(bank, ids["O1"], theirs_id, [villages[2]], code="G2")

    in_grid = bank.customer(village_code=villages[0])
    assert in_grid["village_code"] == villages[0]
    moved = bank.customer()
    placed = bank.ok(put(bank, f"/customers/{moved['id']}/village", {"village_code": villages[1]}))
    assert placed["village_code"] == villages[1]
    elsewhere = bank.customer(village_code=villages[2])
    nowhere = bank.customer()

    def ids_of(view: Bank, path: str) -> set[str]:
        return {c["id"] for c in view.ok(view.get(path, limit=500))["items"]}

    assert ids_of(mine, "/customers") == {in_grid["id"], moved["id"]}
    assert ids_of(theirs, "/customers") == {elsewhere["id"]}
    everyone = {in_grid["id"], moved["id"], elsewhere["id"], nowhere["id"]}
    assert ids_of(senior, "/customers") == everyone
    assert ids_of(bank, "/customers") == everyone
    assert ids_of(mine, f"/grids/{grid['id']}/customers") == {in_grid["id"], moved["id"]}
    assert ids_of(bank.as_role(Role.auditor), f"/grids/{other_grid['id']}/customers") == {
        elsewhere["id"]
    }
    assert_problem(mine.get(f"/grids/{other_grid['id']}/customers"), 403, "geography.not_your_grid")

    # Out of the village, out of the manager's list.
    bank.ok(put(bank, f"/customers/{moved['id']}/village", {"village_code": None}))
    assert ids_of(mine, "/customers") == {in_grid["id"]}

    before = bank.snapshot()
    body = {"kind": "individual", "name": "赵六", "id_number": resident_id()}
    assert_problem(
        bank.post("/customers", {**body, "village_code": villages[0][:9]}),
        422,
        "geography.not_a_village",
        "village_code",
    )
    assert_problem(
        put(bank, f"/customers/{nowhere['id']}/village", {"village_code": "370214999999"}),
        422,
        "geography.village_not_found",
        "village_code",
    )
    assert bank.snapshot() == before


def test_another_institutions_grids_are_out_of_reach(
    bank: Bank, other_bank: Bank, villages: list[str]
):
    ids = offices(bank)
    _, manager_id = manager(bank)
    grid = new_grid(bank, ids["O1"], manager_id, villages[:2])
    gid = grid["id"]
    their_ids = offices(other_bank)
    _, their_manager = manager(other_bank)

    for path in (f"/grids/{gid}", f"/grids/{gid}/customers"):
        assert_problem(other_bank.get(path), 404, "geography.grid_not_found", "grid_id")
    assert other_bank.ok(other_bank.get("/grids"))["items"] == []
    before = bank.snapshot()
    assert_problem(other_bank.post(f"/grids/{gid}/villages", {"village_codes": [villages[3]]}), 404)
    assert_problem(
        other_bank.post(f"/grids/{gid}/villages/removal", {"village_codes": [villages[0]]}), 404
    )
    assert_problem(put(other_bank, f"/grids/{gid}/manager", {"manager_id": their_manager}), 404)
    # Their outlet or manager in our grid, ours in theirs: unknown here.
    assert_problem(
        bank.post(
            "/grids",
            {"code": "X", "name": "x", "outlet_id": their_ids["O1"], "manager_id": manager_id},
        ),
        422,
        field="outlet_id",
    )
    assert_problem(put(bank, f"/grids/{gid}/manager", {"manager_id": their_manager}), 422)
    assert bank.snapshot() == before
    # The same villages may be another institution's grid as well.
    theirs = new_grid(other_bank, their_ids["O1"], their_manager, villages[:2])
    assert [v["code"] for v in theirs["villages"]] == villages[:2]
