"""Institutions and their office trees."""

from __future__ import annotations

from fastapi import APIRouter

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.institutions import service
from huinong.institutions.schemas import (
    InstitutionCreate,
    InstitutionRead,
    OfficeCreate,
    OfficeRead,
)
from huinong.ledger import service as ledger

router = APIRouter(tags=["institutions"])


@router.post("/institutions", status_code=201, response_model=InstitutionRead)
def create_institution(body: InstitutionCreate, database: DatabaseDep) -> InstitutionRead:
    """Create an institution (法人机构) with its standard chart of accounts."""

    def unit(session):  # type: ignore[no-untyped-def]
        institution = service.create_institution(session, **body.model_dump())
        ledger.create_chart_of_accounts(
            session, institution_id=institution.id, ledger=institution.currency
        )
        return InstitutionRead.model_validate(institution)

    return database.run(unit)


@router.get("/institutions", response_model=list[InstitutionRead])
def list_institutions(database: DatabaseDep) -> list[InstitutionRead]:
    return database.run(
        lambda s: [InstitutionRead.model_validate(i) for i in service.list_institutions(s)]
    )


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
