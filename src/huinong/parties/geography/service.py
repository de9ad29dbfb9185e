"""Use cases of geography: loading and importing divisions, looking them up, and grids.

Divisions are national reference data (see ``models``): loading the bundled provinces,
cities and counties (:func:`load_standard`) and importing a county's townships and villages
(:func:`import_divisions`) are upserts keyed by the 12-digit code, so running either twice
changes nothing and a re-import with corrected names renames. The file itself is read and
checked by the pure :func:`rules.parse_division_file`; this module only compares with what is
stored and writes.

A grid is an institution's: a code, a name, the outlet it hangs off, the account manager
responsible for it, and its villages. A village is in at most one grid of an institution;
the service says so with a clear error, and a unique constraint makes sure of it under
concurrent writers. Every change to a grid is audited in the same transaction
(``grids.created``, ``grids.villages_changed``, ``grids.manager_changed``).

Placing a customer in a village is ``parties.service.set_customer_village``; which customers
a manager's grids cover is :func:`customers_in_villages_of` / :func:`grid_customers`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions.models import Office, OfficeKind
from huinong.parties.geography import rules
from huinong.parties.geography.models import Division, Grid, GridVillage
from huinong.parties.geography.rules import DivisionLevel, DivisionRow
from huinong.parties.models import Customer
from huinong.security.audit import service as audit
from huinong.security.identities.models import StaffUser, UserStatus
from huinong.security.principals import Principal, Role

STANDARD_FILE = "standard_divisions.csv"
SAMPLE_FILE = "sample_county_villages.csv"
_CHUNK = 500  # codes per IN (…) list: well under every backend's parameter limit


def data_file(name: str) -> bytes:
    """A file bundled under ``parties/geography/data`` (see its ``SOURCE.md``)."""
    return (resources.files("huinong.parties.geography") / "data" / name).read_bytes()


@dataclass(frozen=True)
class StandardRow:
    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None


@dataclass(frozen=True)
class WriteSummary:
    inserted: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def standard_rows() -> list[StandardRow]:
    """The bundled provinces, cities and counties, parents before children."""
    text = data_file(STANDARD_FILE).decode("utf-8")
    rows = [
        StandardRow(
            code=r["code"],
            name=r["name"],
            level=DivisionLevel(r["level"]),
            parent_code=r["parent_code"] or None,
        )
        for r in csv.DictReader(io.StringIO(text))
    ]
    return sorted(rows, key=lambda r: (rules.level_order(r.level), r.code))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def existing_codes(session: Session, codes: Iterable[str]) -> set[str]:
    """Which of ``codes`` (12-digit) are stored."""
    wanted = sorted(set(codes))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(session.scalars(select(Division.code).where(Division.code.in_(chunk))))
    return found


def _upsert(
    session: Session,
    rows: Sequence[tuple[str, str, DivisionLevel, str | None, str | None]],
    progress: Callable[[int], None] | None,
) -> WriteSummary:
    """Insert the missing rows and update those whose name or urban/rural code changed;
    ``rows`` are (code, name, level, parent_code, urban_rural_code), parents first."""
    stored: dict[str, tuple[str, str | None]] = {}
    codes = [row[0] for row in rows]
    for chunk in _chunks(codes):
        for code, name, urban_rural in session.execute(
            select(Division.code, Division.name, Division.urban_rural_code).where(
                Division.code.in_(chunk)
            )
        ):
            stored[code] = (name, urban_rural)
    now = clock.now()
    inserted = updated = unchanged = 0
    # Level by level, so a child's parent is always written before it (the foreign key is
    # checked at once on SQLite).
    for start in range(0, len(rows), _CHUNK):
        batch = rows[start : start + _CHUNK]
        new = []
        changed = []
        for code, name, level, parent, urban_rural in batch:
            if code not in stored:
                new.append(
                    {
                        "code": code,
                        "name": name,
                        "level": str(level),
                        "parent_code": parent,
                        "urban_rural_code": urban_rural,
                        "updated_at": now,
                    }
                )
            elif stored[code] != (name, urban_rural):
                changed.append(
                    {
                        "b_code": code,
                        "name": name,
                        "urban_rural_code": urban_rural,
                        "updated_at": now,
                    }
                )
            else:
                unchanged += 1
        if new:
            session.execute(insert(Division), new)
            inserted += len(new)
        if changed:
            table = Division.__table__
            # Core, not ORM: an executemany keyed by a bound code, not by the mapped key.
            session.execute(
                update(table)
                .where(table.c.code == bindparam("b_code"))
                .values(
                    name=bindparam("name"),
                    urban_rural_code=bindparam("urban_rural_code"),
                    updated_at=bindparam("updated_at"),
                ),
                changed,
            )
            updated += len(changed)
        if progress is not None:
            progress(len(batch))
    return WriteSummary(inserted, updated, unchanged)


def load_standard(
    session: Session, *, progress: Callable[[int], None] | None = None
) -> WriteSummary:
    """Load the bundled provinces, cities and counties; idempotent (a second run inserts
    nothing, and renames what a newer bundle renamed)."""
    rows = [(r.code, r.name, r.level, r.parent_code, None) for r in standard_rows()]
    # A county's urban/rural code is never set: keep whatever is stored (None) as is.
    return _upsert(session, rows, progress)


def parse_file(session: Session, data: bytes) -> rules.ParsedFile:
    """Read and check a township and village file against the stored divisions."""
    return rules.parse_division_file(data, existing=lambda codes: existing_codes(session, codes))


def import_divisions(
    session: Session,
    *,
    rows: Sequence[DivisionRow],
    progress: Callable[[int], None] | None = None,
) -> WriteSummary:
    """Write checked township and village rows (from :func:`parse_file`); idempotent: a
    division already stored gets the file's name and urban/rural code."""
    ordered = sorted(rows, key=lambda r: (rules.level_order(r.level), r.code))
    return _upsert(
        session,
        [(r.code, r.name, r.level, r.parent_code, r.urban_rural_code) for r in ordered],
        progress,
    )


def load_sample(session: Session) -> WriteSummary:
    """Import the bundled SAMPLE county file (for the demo; after :func:`load_standard`)."""
    parsed = parse_file(session, data_file(SAMPLE_FILE))
    if parsed.problems:
        first = parsed.problems[0]
        raise InvalidInput(
            first.code, f"sample file line {first.line}: {first.message}", field="file"
        )
    return import_divisions(session, rows=parsed.rows)


# ---------------------------------------------------------------------------- lookups


def _code(text: str, *, field: str = "code") -> str:
    try:
        return rules.normalise_code(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.code, exc.message, field=field) from exc


def get_division(session: Session, *, code: str, field: str = "code") -> Division:
    division = session.get(Division, _code(code, field=field))
    if division is None:
        raise NotFound("geography.division_not_found", "no such division", field=field)
    return division


def check_cursor(cursor: str) -> str:
    """A page cursor of divisions: the last 12-digit code of the previous page."""
    if len(cursor) != rules.CODE_LENGTH or not cursor.isascii() or not cursor.isdigit():
        raise InvalidInput(
            "request.invalid_cursor", "the cursor is not one this API gave out", field="cursor"
        )
    return cursor


def list_divisions(
    session: Session,
    *,
    parent: str | None = None,
    level: DivisionLevel | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Division]:
    """Divisions by code, optionally the children of ``parent`` and/or of one level.

    Without either filter, the provinces (the top of the tree) — never all 660,000 rows.
    """
    query = select(Division)
    if parent is not None:
        query = query.where(Division.parent_code == _code(parent, field="parent"))
    if level is not None:
        query = query.where(Division.level == str(level))
    if parent is None and level is None:
        query = query.where(Division.level == str(DivisionLevel.province))
    if after is not None:
        query = query.where(Division.code > after)
    return list(session.scalars(query.order_by(Division.code).limit(limit)))


def check_village(session: Session, code: str, *, field: str = "village_code") -> str:
    """The 12-digit code of a stored village, or an error naming ``field``."""
    division = session.get(Division, _code(code, field=field))
    if division is None:
        raise InvalidInput(
            "geography.village_not_found",
            "no such village (import the county's villages with `huinong geo import`)",
            field=field,
        )
    if division.level != DivisionLevel.village:
        raise InvalidInput(
            "geography.not_a_village", f"{code} is a {division.level}, not a village", field=field
        )
    return division.code


# ---------------------------------------------------------------------------- grids


def _audit(
    session: Session, action: str, actor: Principal | None, grid: Grid, **detail: object
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=grid.institution_id,
        actor=actor,
        object_type="grid",
        object_id=str(grid.id),
        detail=dict(detail) or None,
    )


def _check_outlet(session: Session, institution_id: uuid.UUID, outlet_id: uuid.UUID) -> Office:
    office = session.get(Office, outlet_id)
    if office is None or office.institution_id != institution_id:
        raise InvalidInput("geography.outlet_not_found", "no such outlet", field="outlet_id")
    if office.kind != OfficeKind.outlet:
        raise InvalidInput(
            "geography.not_an_outlet",
            f"office {office.code} is a {office.kind} office; a grid hangs off an outlet",
            field="outlet_id",
        )
    return office


def _check_manager(session: Session, institution_id: uuid.UUID, manager_id: uuid.UUID) -> StaffUser:
    user = session.get(StaffUser, manager_id)
    if user is None or user.institution_id != institution_id:
        raise InvalidInput("geography.manager_not_found", "no such staff user", field="manager_id")
    if user.status != UserStatus.active:
        raise InvalidInput(
            "geography.manager_disabled", "the staff user is disabled", field="manager_id"
        )
    if Role.account_manager not in {r.role for r in user.roles}:
        raise InvalidInput(
            "geography.not_an_account_manager",
            "a grid's manager must hold the account_manager role",
            field="manager_id",
        )
    return user


def _check_villages(
    session: Session, institution_id: uuid.UUID, codes: Iterable[str], *, grid_id: uuid.UUID | None
) -> list[str]:
    """Stored villages, none of them in another grid of the institution."""
    checked = sorted({check_village(session, code, field="village_codes") for code in codes})
    if not checked:
        return []
    taken = session.execute(
        select(GridVillage.village_code, Grid.code)
        .join(Grid, Grid.id == GridVillage.grid_id)
        .where(
            GridVillage.institution_id == institution_id,
            GridVillage.village_code.in_(checked),
            *([] if grid_id is None else [GridVillage.grid_id != grid_id]),
        )
        .order_by(GridVillage.village_code)
    ).first()
    if taken is not None:
        raise Conflict(
            "geography.village_in_another_grid",
            f"village {taken[0]} is already in grid {taken[1]}; remove it there first",
            field="village_codes",
        )
    return checked


def _add(session: Session, grid: Grid, codes: Sequence[str]) -> list[str]:
    present = set(grid_village_codes(session, grid_id=grid.id))
    added = [code for code in codes if code not in present]
    now = clock.now()
    for code in added:
        session.add(
            GridVillage(
                grid_id=grid.id, village_code=code, institution_id=grid.institution_id, added_at=now
            )
        )
    session.flush()
    return added


def create_grid(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    outlet_id: uuid.UUID,
    manager_id: uuid.UUID,
    village_codes: Sequence[str] = (),
    actor: Principal | None = None,
) -> Grid:
    code = code.strip()
    if not code or len(code) > 32:
        raise InvalidInput(
            "geography.invalid_grid_code", "give a grid code of 1-32 characters", field="code"
        )
    name = rules.check_name(name)
    if session.scalar(
        select(Grid.id).where(Grid.institution_id == institution_id, Grid.code == code)
    ):
        raise Conflict("geography.grid_code_taken", f"grid {code} exists", field="code")
    _check_outlet(session, institution_id, outlet_id)
    _check_manager(session, institution_id, manager_id)
    villages = _check_villages(session, institution_id, village_codes, grid_id=None)
    grid = Grid(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        name=name,
        outlet_id=outlet_id,
        manager_id=manager_id,
        created_at=clock.now(),
    )
    session.add(grid)
    session.flush()
    _add(session, grid, villages)
    _audit(
        session,
        "grids.created",
        actor,
        grid,
        code=code,
        outlet_id=str(outlet_id),
        manager_id=str(manager_id),
        villages=villages,
    )
    return grid


def get_grid(session: Session, *, institution_id: uuid.UUID, grid_id: uuid.UUID) -> Grid:
    grid = session.get(Grid, grid_id)
    if grid is None or grid.institution_id != institution_id:
        raise NotFound("geography.grid_not_found", "no such grid", field="grid_id")
    return grid


def list_grids(
    session: Session,
    *,
    institution_id: uuid.UUID,
    manager_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[tuple[Grid, int]]:
    """The institution's grids by id, each with its number of villages."""
    counts = (
        select(GridVillage.grid_id, func.count().label("villages"))
        .group_by(GridVillage.grid_id)
        .subquery()
    )
    query = (
        select(Grid, func.coalesce(counts.c.villages, 0))
        .outerjoin(counts, counts.c.grid_id == Grid.id)
        .where(Grid.institution_id == institution_id)
    )
    if manager_id is not None:
        query = query.where(Grid.manager_id == manager_id)
    if after is not None:
        query = query.where(Grid.id > after)
    return [(grid, int(n)) for grid, n in session.execute(query.order_by(Grid.id).limit(limit))]


def grid_village_codes(session: Session, *, grid_id: uuid.UUID) -> list[str]:
    return list(
        session.scalars(
            select(GridVillage.village_code)
            .where(GridVillage.grid_id == grid_id)
            .order_by(GridVillage.village_code)
        )
    )


@dataclass(frozen=True)
class GridVillageView:
    code: str
    name: str
    township_code: str
    township_name: str


def grid_villages(session: Session, *, grid_id: uuid.UUID) -> list[GridVillageView]:
    """The grid's villages with their townships, by code."""
    village = Division.__table__.alias("village")
    township = Division.__table__.alias("township")
    rows = session.execute(
        select(village.c.code, village.c.name, township.c.code, township.c.name)
        .select_from(GridVillage)
        .join(village, village.c.code == GridVillage.village_code)
        .join(township, township.c.code == village.c.parent_code)
        .where(GridVillage.grid_id == grid_id)
        .order_by(village.c.code)
    ).all()
    return [GridVillageView(*row) for row in rows]


def office_chain(session: Session, *, office_id: uuid.UUID) -> list[Office]:
    """The office and its parents, head office first."""
    chain: list[Office] = []
    office = session.get(Office, office_id)
    while office is not None and len(chain) < 10:
        chain.append(office)
        office = None if office.parent_id is None else session.get(Office, office.parent_id)
    return list(reversed(chain))


def add_villages(
    session: Session,
    *,
    institution_id: uuid.UUID,
    grid_id: uuid.UUID,
    village_codes: Sequence[str],
    actor: Principal | None = None,
) -> Grid:
    grid = get_grid(session, institution_id=institution_id, grid_id=grid_id)
    villages = _check_villages(session, institution_id, village_codes, grid_id=grid.id)
    added = _add(session, grid, villages)
    if added:
        _audit(session, "grids.villages_changed", actor, grid, added=added, removed=[])
    return grid


def remove_villages(
    session: Session,
    *,
    institution_id: uuid.UUID,
    grid_id: uuid.UUID,
    village_codes: Sequence[str],
    actor: Principal | None = None,
) -> Grid:
    grid = get_grid(session, institution_id=institution_id, grid_id=grid_id)
    codes = {_code(code, field="village_codes") for code in village_codes}
    present = set(grid_village_codes(session, grid_id=grid.id))
    missing = sorted(codes - present)
    if missing:
        raise InvalidInput(
            "geography.village_not_in_grid",
            f"village {missing[0]} is not in grid {grid.code}",
            field="village_codes",
        )
    for link in session.scalars(
        select(GridVillage).where(
            GridVillage.grid_id == grid.id, GridVillage.village_code.in_(sorted(codes))
        )
    ):
        session.delete(link)
    session.flush()
    _audit(session, "grids.villages_changed", actor, grid, added=[], removed=sorted(codes))
    return grid


def set_manager(
    session: Session,
    *,
    institution_id: uuid.UUID,
    grid_id: uuid.UUID,
    manager_id: uuid.UUID,
    actor: Principal | None = None,
) -> Grid:
    grid = get_grid(session, institution_id=institution_id, grid_id=grid_id)
    _check_manager(session, institution_id, manager_id)
    before = grid.manager_id
    if before != manager_id:
        grid.manager_id = manager_id
        session.flush()
        _audit(
            session,
            "grids.manager_changed",
            actor,
            grid,
            before=str(before),
            after=str(manager_id),
        )
    return grid


# ---------------------------------------------------------------------------- customers in grids


def villages_managed_by(institution_id: uuid.UUID, manager_id: uuid.UUID) -> Select[tuple[str]]:
    """The codes of the villages in the grids ``manager_id`` is responsible for (a subquery)."""
    return (
        select(GridVillage.village_code)
        .join(Grid, Grid.id == GridVillage.grid_id)
        .where(Grid.institution_id == institution_id, Grid.manager_id == manager_id)
    )


def grid_customers(
    session: Session,
    *,
    institution_id: uuid.UUID,
    grid_id: uuid.UUID,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Customer]:
    """The institution's customers placed in the grid's villages, by id."""
    grid = get_grid(session, institution_id=institution_id, grid_id=grid_id)
    query = select(Customer).where(
        Customer.institution_id == institution_id,
        Customer.village_code.in_(
            select(GridVillage.village_code).where(GridVillage.grid_id == grid.id)
        ),
    )
    if after is not None:
        query = query.where(Customer.id > after)
    return list(session.scalars(query.order_by(Customer.id).limit(limit)))
