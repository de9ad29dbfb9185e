"""Use cases of institutions and offices. Keyword-only functions taking the session; they
flush and never commit (the entry point owns the transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import rules
from huinong.institutions.models import Institution, Office, OfficeKind


def create_institution(
    session: Session,
    *,
    code: str,
    name: str,
    currency: str = "CNY",
    business_date: date | None = None,
) -> Institution:
    rules.check_code(code)
    if not name.strip():
        raise InvalidInput("institutions.name_required", "the name must not be empty", field="name")
    if session.scalar(select(Institution.id).where(Institution.code == code)) is not None:
        raise Conflict(
            "institutions.code_taken", f"an institution with code {code} exists", field="code"
        )
    institution = Institution(
        id=uuid7(),
        code=code,
        name=name.strip(),
        currency=currency,
        business_date=business_date or clock.local_date(clock.now()),
        created_at=clock.now(),
    )
    session.add(institution)
    session.flush()
    return institution


def list_institutions(session: Session) -> Sequence[Institution]:
    return session.scalars(select(Institution).order_by(Institution.code)).all()


def get_institution(session: Session, *, institution_id: uuid.UUID) -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound("institutions.not_found", "no such institution", field="institution_id")
    return institution


def get_institution_by_code(session: Session, *, code: str) -> Institution:
    institution = session.scalar(select(Institution).where(Institution.code == code))
    if institution is None:
        raise NotFound("institutions.not_found", f"no institution with code {code}", field="code")
    return institution


def create_office(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    kind: OfficeKind,
    parent_code: str | None = None,
) -> Office:
    rules.check_code(code)
    parent = None
    if parent_code is not None:
        parent = session.scalar(
            select(Office).where(
                Office.institution_id == institution_id, Office.code == parent_code
            )
        )
        if parent is None:
            raise NotFound(
                "institutions.office_not_found",
                f"no office with code {parent_code}",
                field="parent_code",
            )
    has_head = (
        session.scalar(
            select(Office.id).where(
                Office.institution_id == institution_id, Office.kind == OfficeKind.head
            )
        )
        is not None
    )
    rules.check_office_parent(kind, parent.kind if parent else None, has_head=has_head)
    if session.scalar(
        select(Office.id).where(Office.institution_id == institution_id, Office.code == code)
    ):
        raise Conflict("institutions.office_code_taken", f"office {code} exists", field="code")
    office = Office(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        kind=kind,
        parent_id=parent.id if parent else None,
        created_at=clock.now(),
    )
    session.add(office)
    session.flush()
    return office


def list_offices(session: Session, *, institution_id: uuid.UUID) -> Sequence[Office]:
    return session.scalars(
        select(Office).where(Office.institution_id == institution_id).order_by(Office.code)
    ).all()
