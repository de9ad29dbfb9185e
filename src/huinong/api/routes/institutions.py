"""The caller's institution and its office tree.

Creating an institution is a platform operation, not an institution's: it is done on the
server with ``huinong institution create`` (which also creates the institution's first
administrator), never over this API.
"""

from __future__ import annotations

from fastapi import APIRouter

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.institutions import service
from huinong.institutions.schemas import (
    InstitutionRead,
    OfficeCreate,
    OfficeRead,
)

router = APIRouter(tags=["institutions"])


@router.get("/institution", response_model=InstitutionRead)
def current_institution(principal: PrincipalDep, database: DatabaseDep) -> InstitutionRead:
    """The caller's own institution."""
    return database.run(
        lambda s: InstitutionRead.model_validate(
            service.get_institution(s, institution_id=principal.institution_id)
        )
    )


@router.post("/offices", status_code=201, response_model=OfficeRead)
def create_office(body: OfficeCreate, principal: PrincipalDep, database: DatabaseDep) -> OfficeRead:
    return database.run(
        lambda s: OfficeRead.model_validate(
            service.create_office(s, institution_id=principal.institution_id, **body.model_dump())
        )
    )


@router.get("/offices", response_model=list[OfficeRead])
def list_offices(principal: PrincipalDep, database: DatabaseDep) -> list[OfficeRead]:
    return database.run(
        lambda s: [
            OfficeRead.model_validate(o)
            for o in service.list_offices(s, institution_id=principal.institution_id)
        ]
    )
