"""Divisions and grids on both databases: loading, importing (CLI), grid rules, manager scope.

Divisions are national reference data shared by every test of the session, so each test
imports townships of its own under county 370285 (莱西市): codes come from a counter, never
reused within a session's database.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from huinong.cli.geo import app
from huinong.config import get_settings
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution, OfficeKind
from huinong.parties import service as parties
from huinong.parties.geography import service as geography
from huinong.parties.geography.models import Division, GridVillage
from huinong.parties.models import CustomerKind
from huinong.parties.rules import resident_id_check_char
from huinong.security.audit.models import AuditRecord
from huinong.security.identities import staff_users
from tests.conftest import STAFF_PASSWORD, new_institution

runner = CliRunner()
COUNTY = "370285"
_townships = itertools.count(501)
_people = itertools.count(1)
_loaded: set[str] = set()


def said(result: object) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def township() -> str:
    return f"{COUNTY}{next(_townships):03d}"


def villages_file(town: str, n: int = 3, name: str = "测试镇") -> str:
    lines = ["code,name,urban_rural_code", f"{town}000,{name},"]
    lines += [f"{town}{200 + i:03d},第{i}村村民委员会,220" for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def standard(factory: sessionmaker[Session], backend: str) -> None:
    if backend not in _loaded:
        run_in_transaction(factory, geography.load_standard)
        _loaded.add(backend)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def imported(factory: sessionmaker[Session], text: str) -> None:
    def work(s: Session) -> None:
        parsed = geography.parse_file(s, text.encode())
        assert parsed.problems == []
        geography.import_divisions(s, rows=parsed.rows)

    run_in_transaction(factory, work)


def stored(factory: sessionmaker[Session], *codes: str) -> dict[str, str]:
    with factory() as s:
        rows = s.execute(select(Division.code, Division.name).where(Division.code.in_(codes))).all()
    return dict(rows)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- divisions


def test_standard_divisions_load_idempotently(factory: sessionmaker[Session], standard: None):
    again = run_in_transaction(factory, geography.load_standard)
    assert again.inserted == 0 and again.updated == 0
    assert again.unchanged == len(geography.standard_rows()) > 3000
    with factory() as s:
        county = geography.get_division(s, code="370281")
        assert (county.name, county.level, county.parent_code) == (
            "胶州市",
            "county",
            "370200000000",
        )
        assert geography.get_division(s, code="37").name == "山东省"
        provinces = geography.list_divisions(s, limit=100)
        assert len(provinces) == 31 and {p.level for p in provinces} == {"province"}
        counties = geography.list_divisions(s, parent="3702", level="county", limit=100)
        assert "370285000000" in {c.code for c in counties}
        with pytest.raises(NotFound):
            geography.get_division(s, code="990000")
        with pytest.raises(InvalidInput) as raised:
            geography.get_division(s, code="37A")
        assert raised.value.field == "code"


def test_cli_imports_a_file_and_reimport_renames(
    factory: sessionmaker[Session], standard: None, cli_database: str, tmp_path: Path
):
    town = township()
    path = tmp_path / "villages.csv"
    path.write_text(villages_file(town), encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "4 row(s)" in said(result) and "4 added" in said(result)
    assert stored(factory, f"{town}000", f"{town}201") == {
        f"{town}000": "测试镇",
        f"{town}201": "第1村村民委员会",
    }
    with factory() as s:
        village = geography.get_division(s, code=f"{town}201")
        assert (village.level, village.parent_code, village.urban_rural_code) == (
            "village",
            f"{town}000",
            "220",
        )

    path.write_text(villages_file(town, name="改名镇"), encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 updated" in said(result) and "3 unchanged" in said(result)
    assert stored(factory, f"{town}000") == {f"{town}000": "改名镇"}


def test_cli_imports_a_gbk_file(
    factory: sessionmaker[Session], standard: None, cli_database: str, tmp_path: Path
):
    town = township()
    path = tmp_path / "gbk.csv"
    path.write_bytes(villages_file(town, 2, name="李哥庄镇").encode("gbk"))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "(gbk)" in said(result)
    assert stored(factory, f"{town}000", f"{town}200")[f"{town}000"] == "李哥庄镇"


def test_a_file_with_bad_rows_writes_nothing_and_names_each_row_and_column(
    factory: sessionmaker[Session], standard: None, cli_database: str, tmp_path: Path
):
    town = township()
    text = villages_file(town, 2) + f"{town}3X0,坏代码,220\n{town}210,,220\n{town}211,好村,999\n"
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    output = said(result)
    assert "3 problem(s)" in output
    for line, column, code in (
        (5, "code", "geography.invalid_code"),
        (6, "name", "geography.name_required"),
        (7, "urban_rural_code", "geography.invalid_urban_rural_code"),
    ):
        assert f"line {line}, column {column}:" in output, output
        assert f"({code})" in output
    assert "nothing was written" in output
    assert stored(factory, f"{town}000", f"{town}200", f"{town}211") == {}

    result = runner.invoke(app, ["import", "--skip-bad", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 bad row(s) skipped" in said(result)
    assert set(stored(factory, f"{town}000", f"{town}200", f"{town}201", f"{town}211")) == {
        f"{town}000",
        f"{town}200",
        f"{town}201",
    }


def test_a_file_missing_a_column_is_refused(
    factory: sessionmaker[Session], standard: None, cli_database: str, tmp_path: Path
):
    town = township()
    path = tmp_path / "no-name.csv"
    path.write_text(f"code,urban_rural_code\n{town}000,\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "missing_column" in result.output and "name" in result.output
    assert stored(factory, f"{town}000") == {}


def test_a_village_under_an_unknown_township_is_refused(
    factory: sessionmaker[Session], standard: None, cli_database: str, tmp_path: Path
):
    town = township()
    path = tmp_path / "orphan.csv"
    path.write_text(f"{town}200,孤村,220\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "parent_missing" in result.output
    assert stored(factory, f"{town}200") == {}


def test_the_sample_county_loads_and_shows(
    factory: sessionmaker[Session], standard: None, cli_database: str
):
    result = runner.invoke(app, ["load-standard"])
    assert result.exit_code == 0, result.output
    assert "0 added, 0 renamed" in said(result)
    for _ in range(2):
        result = runner.invoke(app, ["load-sample"])
        assert result.exit_code == 0, result.output
    with factory() as s:
        villages = geography.list_divisions(s, parent="370281102", level="village")
        assert len(villages) >= 4 and all(v.code.startswith("370281102") for v in villages)
    result = runner.invoke(app, ["show", "370281102"])
    assert result.exit_code == 0 and "李哥庄镇" in result.output


# -------------------------------------------------------------------------------- grids


@dataclass
class Setting:
    institution: Institution
    outlet_id: uuid.UUID
    branch_id: uuid.UUID
    manager_id: uuid.UUID
    other_manager_id: uuid.UUID
    teller_id: uuid.UUID
    villages: list[str]


def setting(factory: sessionmaker[Session]) -> Setting:
    town = township()
    imported(factory, villages_file(town, 4))
    institution = new_institution(factory, "GEO")
    with transaction(factory) as s:
        iid = institution.id
        institutions.create_office(
            s, institution_id=iid, code="HQ", name="总行", kind=OfficeKind.head
        )
        branch = institutions.create_office(
            s, institution_id=iid, code="B1", name="支行", kind=OfficeKind.branch, parent_code="HQ"
        )
        outlet = institutions.create_office(
            s, institution_id=iid, code="O1", name="网点", kind=OfficeKind.outlet, parent_code="B1"
        )

        def user(roles: list[str]) -> uuid.UUID:
            return staff_users.create_staff_user(
                s,
                institution_id=iid,
                username=f"g{next(_people):05d}",
                display_name="客户经理",
                roles=roles,
                password=STAFF_PASSWORD,
            ).id

        return Setting(
            institution,
            outlet.id,
            branch.id,
            user(["account_manager"]),
            user(["account_manager"]),
            user(["teller"]),
            [f"{town}{200 + i:03d}" for i in range(4)],
        )


def test_grid_chain_and_a_village_in_at_most_one_grid(
    factory: sessionmaker[Session], standard: None
):
    a = setting(factory)
    iid = a.institution.id
    with transaction(factory) as s:
        grid = geography.create_grid(
            s,
            institution_id=iid,
            code="G1",
            name="一号网格",
            outlet_id=a.outlet_id,
            manager_id=a.manager_id,
            village_codes=a.villages[:2],
        )
        chain = geography.office_chain(s, office_id=grid.outlet_id)
        assert [o.kind for o in chain] == ["head", "branch", "outlet"]
        views = geography.grid_villages(s, grid_id=grid.id)
        assert [v.code for v in views] == a.villages[:2]
        assert {v.township_code for v in views} == {a.villages[0][:9] + "000"}
    with pytest.raises(Conflict) as raised, transaction(factory) as s:
        geography.create_grid(
            s,
            institution_id=iid,
            code="G2",
            name="二号网格",
            outlet_id=a.outlet_id,
            manager_id=a.other_manager_id,
            village_codes=[a.villages[1], a.villages[2]],
        )
    assert raised.value.code == "geography.village_in_another_grid"
    assert raised.value.field == "village_codes"
    with transaction(factory) as s:
        second = geography.create_grid(
            s,
            institution_id=iid,
            code="G2",
            name="二号网格",
            outlet_id=a.outlet_id,
            manager_id=a.other_manager_id,
            village_codes=[a.villages[2]],
        )
        second_id = second.id
    with pytest.raises(Conflict), transaction(factory) as s:
        geography.add_villages(
            s, institution_id=iid, grid_id=second_id, village_codes=[a.villages[0]]
        )
    # The database refuses it too, whatever a service might forget.
    with pytest.raises(IntegrityError), transaction(factory) as s:
        s.add(
            GridVillage(
                grid_id=second_id,
                village_code=a.villages[0],
                institution_id=iid,
                added_at=grid.created_at,
            )
        )
        s.flush()
    # Moving a village: out of one grid, into the other.
    with transaction(factory) as s:
        geography.remove_villages(
            s, institution_id=iid, grid_id=grid.id, village_codes=[a.villages[1]]
        )
        geography.add_villages(
            s, institution_id=iid, grid_id=second_id, village_codes=[a.villages[1]]
        )
        assert geography.grid_village_codes(s, grid_id=second_id) == sorted(a.villages[1:3])
    # Another institution may grid the same villages.
    b = setting(factory)
    with transaction(factory) as s:
        geography.create_grid(
            s,
            institution_id=b.institution.id,
            code="G1",
            name="别家网格",
            outlet_id=b.outlet_id,
            manager_id=b.manager_id,
            village_codes=a.villages,
        )
        with pytest.raises(NotFound):
            geography.get_grid(s, institution_id=b.institution.id, grid_id=grid.id)
    with factory() as s:
        actions = s.scalars(
            select(AuditRecord.action)
            .where(AuditRecord.object_type == "grid", AuditRecord.institution_id == iid)
            .order_by(AuditRecord.occurred_at)
        ).all()
    assert sorted(actions) == sorted(
        ["grids.created", "grids.created", "grids.villages_changed", "grids.villages_changed"]
    )


def test_grid_inputs_are_checked(factory: sessionmaker[Session], standard: None):
    a = setting(factory)
    b = setting(factory)
    iid = a.institution.id
    base = {
        "institution_id": iid,
        "code": "G9",
        "name": "网格",
        "outlet_id": a.outlet_id,
        "manager_id": a.manager_id,
        "village_codes": [a.villages[0]],
    }
    cases = [
        ({"outlet_id": a.branch_id}, "geography.not_an_outlet", "outlet_id"),
        ({"outlet_id": b.outlet_id}, "geography.outlet_not_found", "outlet_id"),
        ({"manager_id": a.teller_id}, "geography.not_an_account_manager", "manager_id"),
        ({"manager_id": b.manager_id}, "geography.manager_not_found", "manager_id"),
        ({"village_codes": [a.villages[0][:9]]}, "geography.not_a_village", "village_codes"),
        ({"village_codes": ["370285999999"]}, "geography.village_not_found", "village_codes"),
        ({"village_codes": ["12x"]}, "geography.invalid_code", "village_codes"),
        ({"name": " "}, "geography.name_required", "name"),
    ]
    for change, code, field in cases:
        with pytest.raises(InvalidInput) as raised, transaction(factory) as s:
            geography.create_grid(s, **{**base, **change})  # type: ignore[arg-type]
        assert (raised.value.code, raised.value.field) == (code, field), change
    with factory() as s:
        assert geography.list_grids(s, institution_id=iid) == []


def test_manager_change_and_customers_in_the_managers_grids(
    factory: sessionmaker[Session], standard: None
):
    a = setting(factory)
    iid = a.institution.id
    with transaction(factory) as s:
        grid = geography.create_grid(
            s,
            institution_id=iid,
            code="G1",
            name="网格",
            outlet_id=a.outlet_id,
            manager_id=a.manager_id,
            village_codes=a.villages[:2],
        )

        def customer(village: str | None) -> uuid.UUID:
            n = next(_people)
            body = f"37028519800101{n % 1000:03d}"
            return parties.create_customer(
                s,
                institution_id=iid,
                kind=CustomerKind.individual,
                name="王五",
                id_number=body + resident_id_check_char(body),
                village_code=village,
            ).id

        inside = [customer(a.villages[0]), customer(a.villages[1])]
        elsewhere = customer(a.villages[3])
        nowhere = customer(None)
        moved = customer(None)
        parties.set_customer_village(
            s, institution_id=iid, customer_id=moved, village_code=a.villages[1]
        )
        inside.append(moved)
        with pytest.raises(InvalidInput) as raised:
            parties.set_customer_village(
                s, institution_id=iid, customer_id=nowhere, village_code=a.villages[0][:9]
            )
        assert raised.value.field == "village_code"

    with factory() as s:
        mine = parties.list_customers(s, institution_id=iid, managed_by=a.manager_id)
        assert sorted(c.id for c in mine) == sorted(inside)
        assert parties.list_customers(s, institution_id=iid, managed_by=a.other_manager_id) == []
        everyone = {c.id for c in parties.list_customers(s, institution_id=iid)}
        assert everyone == {*inside, elsewhere, nowhere}
        in_grid = geography.grid_customers(s, institution_id=iid, grid_id=grid.id)
        assert sorted(c.id for c in in_grid) == sorted(inside)

    with transaction(factory) as s:
        geography.set_manager(s, institution_id=iid, grid_id=grid.id, manager_id=a.other_manager_id)
    with factory() as s:
        assert parties.list_customers(s, institution_id=iid, managed_by=a.manager_id) == []
        assert (
            len(parties.list_customers(s, institution_id=iid, managed_by=a.other_manager_id)) == 3
        )
        changed = s.scalar(
            select(func.count()).where(
                AuditRecord.action == "grids.manager_changed", AuditRecord.object_id == str(grid.id)
            )
        )
        assert changed == 1
