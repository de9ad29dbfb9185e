"""Administrative divisions and grids (网格).

Divisions are national reference data, the same for every institution: any staff role may
look them up (``GET /divisions?parent=&level=``, ``GET /divisions/{code}``); they are loaded
and imported from the command line (``huinong geo load-standard`` / ``import``), not here.

Grids are the institution's: an outlet, an account manager and a set of villages. Changes are
audited by the service (``grids.created``, ``grids.villages_changed``,
``grids.manager_changed``). ``GET /grids/{grid_id}/customers`` lists the customers placed in
the grid's villages; it reads personal data, so it is audited like ``GET /customers``
(``customers.listed`` with the grid's id), and a caller whose only customer-reading role is
account_manager may read only the grids it manages (the same rule as ``GET /customers``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.api.routes.customers import customer_read, managed_by
from huinong.errors import Forbidden
from huinong.parties.geography import rules
from huinong.parties.geography import service as geography
from huinong.parties.geography.models import Division, Grid
from huinong.parties.geography.rules import DivisionLevel
from huinong.parties.geography.schemas import (
    DivisionPage,
    DivisionRead,
    GridCreate,
    GridManagerChange,
    GridPage,
    GridRead,
    GridSummary,
    GridVillageRead,
    GridVillagesChange,
    OfficeRef,
)
from huinong.parties.schemas import CustomerPage, CustomerRead
from huinong.security.audit import service as audit

router = APIRouter(tags=["geography"])


def division_read(division: Division) -> DivisionRead:
    return DivisionRead(
        code=division.code,
        short_code=rules.short_code(division.code),
        name=division.name,
        level=DivisionLevel(division.level),
        parent_code=division.parent_code,
        urban_rural_code=division.urban_rural_code,
    )


def grid_read(session: Session, grid: Grid) -> GridRead:
    return GridRead(
        id=grid.id,
        code=grid.code,
        name=grid.name,
        outlet_id=grid.outlet_id,
        manager_id=grid.manager_id,
        chain=[
            OfficeRef(id=o.id, code=o.code, name=o.name, kind=str(o.kind))
            for o in geography.office_chain(session, office_id=grid.outlet_id)
        ],
        villages=[
            GridVillageRead(
                code=v.code,
                name=v.name,
                township_code=v.township_code,
                township_name=v.township_name,
            )
            for v in geography.grid_villages(session, grid_id=grid.id)
        ],
        created_at=grid.created_at,
    )


# ---------------------------------------------------------------------------- divisions


@router.get("/divisions", response_model=DivisionPage)
def list_divisions(
    database: DatabaseDep,
    parent: Annotated[
        str | None, Query(min_length=2, max_length=12, description="the parent's code")
    ] = None,
    level: DivisionLevel | None = None,
    cursor: Annotated[str | None, Query(max_length=12)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Divisions by code: the children of ``parent`` and/or those of one ``level``; with
    neither, the provinces. ``cursor`` is the last code of the previous page."""
    if cursor is not None:
        cursor = geography.check_cursor(cursor)
    found = database.run(
        lambda s: [
            division_read(d)
            for d in geography.list_divisions(
                s, parent=parent, level=level, after=cursor, limit=limit
            )
        ]
    )
    return DivisionPage(items=found, next_cursor=found[-1].code if len(found) == limit else None)


@router.get("/divisions/{division_code}", response_model=DivisionRead)
def get_division(division_code: str, database: DatabaseDep) -> Any:
    """One division by its code, 12 digits or short (``370281``)."""
    return database.run(
        lambda s: division_read(
            geography.get_division(s, code=division_code, field="division_code")
        )
    )


# ---------------------------------------------------------------------------- grids


@router.post("/grids", status_code=201, response_model=GridRead)
def create_grid(body: GridCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> GridRead:
        grid = geography.create_grid(
            s, institution_id=principal.institution_id, actor=principal, **body.model_dump()
        )
        return grid_read(s, grid)

    return database.run(work)


@router.get("/grids", response_model=GridPage)
def list_grids(
    principal: PrincipalDep,
    database: DatabaseDep,
    manager_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)
    found = database.run(
        lambda s: geography.list_grids(
            s,
            institution_id=principal.institution_id,
            manager_id=manager_id,
            after=after,
            limit=limit,
        )
    )
    items = [
        GridSummary(
            id=g.id,
            code=g.code,
            name=g.name,
            outlet_id=g.outlet_id,
            manager_id=g.manager_id,
            village_count=n,
            created_at=g.created_at,
        )
        for g, n in found
    ]
    return GridPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/grids/{grid_id}", response_model=GridRead)
def get_grid(grid_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: grid_read(
            s, geography.get_grid(s, institution_id=principal.institution_id, grid_id=grid_id)
        )
    )


@router.post("/grids/{grid_id}/villages", response_model=GridRead)
def add_grid_villages(
    grid_id: uuid.UUID, body: GridVillagesChange, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Add villages to the grid (those already in it are left as they are)."""

    def work(s: Session) -> GridRead:
        grid = geography.add_villages(
            s,
            institution_id=principal.institution_id,
            grid_id=grid_id,
            village_codes=body.village_codes,
            actor=principal,
        )
        return grid_read(s, grid)

    return database.run(work)


@router.post("/grids/{grid_id}/villages/removal", response_model=GridRead)
def remove_grid_villages(
    grid_id: uuid.UUID, body: GridVillagesChange, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Take villages out of the grid (each must be in it)."""

    def work(s: Session) -> GridRead:
        grid = geography.remove_villages(
            s,
            institution_id=principal.institution_id,
            grid_id=grid_id,
            village_codes=body.village_codes,
            actor=principal,
        )
        return grid_read(s, grid)

    return database.run(work)


@router.put("/grids/{grid_id}/manager", response_model=GridRead)
def set_grid_manager(
    grid_id: uuid.UUID, body: GridManagerChange, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def work(s: Session) -> GridRead:
        grid = geography.set_manager(
            s,
            institution_id=principal.institution_id,
            grid_id=grid_id,
            manager_id=body.manager_id,
            actor=principal,
        )
        return grid_read(s, grid)

    return database.run(work)


@router.get("/grids/{grid_id}/customers", response_model=CustomerPage)
def list_grid_customers(
    grid_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)
    manager = managed_by(principal)

    def work(s: Session) -> list[CustomerRead]:
        grid = geography.get_grid(s, institution_id=principal.institution_id, grid_id=grid_id)
        if manager is not None and grid.manager_id != manager:
            raise Forbidden(
                "geography.not_your_grid",
                "an account manager reads the customers of the grids it manages",
                field="grid_id",
            )
        found = geography.grid_customers(
            s, institution_id=principal.institution_id, grid_id=grid.id, after=after, limit=limit
        )
        audit.record(
            s,
            action="customers.listed",
            institution_id=principal.institution_id,
            actor=principal,
            object_type="grid",
            object_id=str(grid.id),
            detail={"returned": len(found)},
        )
        return [customer_read(s, c, principal.roles) for c in found]

    items = database.run(work)
    return CustomerPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )
