"""Institutions and offices through the services, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from huinong.db import transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.institutions import service
from huinong.institutions.models import Institution, OfficeKind


def test_office_tree(factory, institution):
    with transaction(factory) as session:
        service.create_office(
            session, institution_id=institution.id, code="HQ", name="总行", kind=OfficeKind.head
        )
        service.create_office(
            session,
            institution_id=institution.id,
            code="B1",
            name="支行",
            kind=OfficeKind.branch,
            parent_code="HQ",
        )
        outlet = service.create_office(
            session,
            institution_id=institution.id,
            code="B1-01",
            name="网点",
            kind=OfficeKind.outlet,
            parent_code="B1",
        )
    with factory() as session:
        offices = service.list_offices(session, institution_id=institution.id)
    assert [o.code for o in offices] == ["B1", "B1-01", "HQ"]
    assert outlet.parent_id == offices[0].id
    with pytest.raises(InvalidInput) as raised, transaction(factory) as session:
        service.create_office(
            session, institution_id=institution.id, code="HQ2", name="x", kind=OfficeKind.head
        )
    assert raised.value.code == "institutions.head_office_exists"
    with pytest.raises(NotFound), transaction(factory) as session:
        service.create_office(
            session,
            institution_id=institution.id,
            code="B2",
            name="x",
            kind=OfficeKind.branch,
            parent_code="NOPE",
        )
    with pytest.raises(Conflict), transaction(factory) as session:
        service.create_office(
            session,
            institution_id=institution.id,
            code="B1",
            name="x",
            kind=OfficeKind.branch,
            parent_code="HQ",
        )


def test_institution_codes_are_unique(factory, institution):
    with pytest.raises(Conflict) as raised, transaction(factory) as session:
        service.create_institution(session, code=institution.code, name="again")
    assert raised.value.code == "institutions.code_taken"
    with factory() as session:
        found = service.get_institution_by_code(session, code=institution.code)
    assert found.id == institution.id
    assert found.business_date is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"code": "lower", "name": "x"}, "code"),
        ({"code": "A", "name": "x"}, "code"),
        ({"code": "A" * 33, "name": "x"}, "code"),
        ({"code": "ÄB", "name": "x"}, "code"),
        ({"code": "OKCODE", "name": "   "}, "name"),
    ],
)
def test_invalid_institution_is_refused(factory, fields, field):
    with pytest.raises(InvalidInput) as raised, transaction(factory) as session:
        service.create_institution(session, **fields)
    assert raised.value.field == field
    with factory() as session:
        assert session.scalar(select(Institution).where(Institution.code == fields["code"])) is None
