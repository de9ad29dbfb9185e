"""Service points (助农服务点) and the institution's terms for their agents.

A service point belongs to an outlet and a village and is run by a merchant customer, the
agent, whose float (备付金) is a deposit account of theirs that can never go below zero. Its
terminals are enrolled with binding ``service_point`` and the point's code as binding
reference; a signed request's principal is the terminal, and ``service_point_of`` finds the
point from it. A terminal of a suspended or closed point does nothing.

The terms are the institution's limits and its agents' pay (``rules.AgentTerms``), with the
defaults a county rural bank starts from until it sets its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions.models import Office, OfficeKind
from huinong.ledger import service as ledger
from huinong.ledger.models import Account
from huinong.parties import service as parties
from huinong.payments import service as payments
from huinong.payments.service_points import rules
from huinong.payments.service_points.models import (
    AgentTermsRecord,
    ServicePoint,
)
from huinong.payments.service_points.rules import AgentTerms
from huinong.security.audit import service as audit
from huinong.security.principals import Principal, PrincipalKind
from huinong.security.terminals import service as terminals

# --------------------------------------------------------------------------- terms


def get_terms(session: Session, *, institution_id: uuid.UUID) -> AgentTerms:
    record = session.get(AgentTermsRecord, institution_id)
    if record is None:
        return AgentTerms()
    return AgentTerms(**{name: getattr(record, name) for name in asdict(AgentTerms())})


def set_terms(
    session: Session, *, institution_id: uuid.UUID, terms: AgentTerms, actor: Principal
) -> AgentTerms:
    for field, problem in rules.check_terms(terms):
        raise InvalidInput("agents.invalid_terms", f"{field}: {problem}", field=field)
    record = session.get(AgentTermsRecord, institution_id, with_for_update=True)
    if record is None:
        record = AgentTermsRecord(institution_id=institution_id)
        session.add(record)
    for name, value in asdict(terms).items():
        setattr(record, name, value)
    record.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="agents.terms_changed",
        institution_id=institution_id,
        actor=actor,
        object_type="agent_terms",
        object_id=str(institution_id),
        detail=asdict(terms),
    )
    return terms


# --------------------------------------------------------------------------- service points


def create_service_point(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    outlet_id: uuid.UUID,
    agent_customer_id: uuid.UUID,
    village_code: str | None,
    actor: Principal | None = None,
) -> ServicePoint:
    """Open a service point run by a merchant customer, with a new float account of theirs."""
    if not name.strip():
        raise InvalidInput("agents.name_required", "the name must not be empty", field="name")
    if village_code is not None and not (len(village_code) == 12 and village_code.isdigit()):
        raise InvalidInput(
            "agents.invalid_village_code",
            "a village is named by its 12-digit statistical division code",
            field="village_code",
        )
    outlet = session.get(Office, outlet_id)
    if outlet is None or outlet.institution_id != institution_id:
        raise NotFound("institutions.office_not_found", "no such office", field="outlet_id")
    if outlet.kind != OfficeKind.outlet:
        raise InvalidInput(
            "agents.not_an_outlet", "a service point belongs to an outlet", field="outlet_id"
        )
    agent = parties.get_customer(
        session, institution_id=institution_id, customer_id=agent_customer_id
    )
    if agent.kind != "merchant":
        raise InvalidInput(
            "agents.agent_not_merchant",
            "a service point is run by a merchant customer (the shop that hosts it)",
            field="agent_customer_id",
        )
    taken = session.scalar(
        select(ServicePoint.id).where(
            ServicePoint.institution_id == institution_id, ServicePoint.code == code
        )
    )
    if taken is not None:
        raise Conflict("agents.code_taken", f"service point {code} exists", field="code")
    float_account = payments.open_deposit_account(
        session, institution_id=institution_id, customer_id=agent_customer_id
    )
    point = ServicePoint(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        outlet_id=outlet_id,
        village_code=village_code,
        agent_customer_id=agent_customer_id,
        float_account_id=float_account.id,
        status="active",
        created_at=clock.now(),
    )
    session.add(point)
    session.flush()
    audit.record(
        session,
        action="agents.service_point_created",
        institution_id=institution_id,
        actor=actor,
        object_type="service_point",
        object_id=str(point.id),
    )
    return point


def get_service_point(
    session: Session, *, institution_id: uuid.UUID, service_point_id: uuid.UUID
) -> ServicePoint:
    point = session.get(ServicePoint, service_point_id)
    if point is None or point.institution_id != institution_id:
        raise NotFound("agents.service_point_not_found", "no such service point", field="id")
    return point


def list_service_points(session: Session, *, institution_id: uuid.UUID) -> Sequence[ServicePoint]:
    return session.scalars(
        select(ServicePoint)
        .where(ServicePoint.institution_id == institution_id)
        .order_by(ServicePoint.code)
    ).all()


def float_account(session: Session, *, point: ServicePoint) -> Account:
    return ledger.get_account(
        session, institution_id=point.institution_id, account_id=point.float_account_id
    )


def service_point_of(session: Session, *, principal: Principal) -> ServicePoint:
    """The active service point behind a signed terminal request."""
    if principal.kind != PrincipalKind.terminal:
        raise Forbidden(
            "agents.terminal_only", "service point operations come from a signed terminal"
        )
    terminal = terminals.get_terminal(
        session, institution_id=principal.institution_id, terminal_id=principal.subject_id
    )
    point = session.scalar(
        select(ServicePoint)
        .where(
            ServicePoint.institution_id == principal.institution_id,
            ServicePoint.code == terminal.binding_reference,
        )
        .with_for_update()
    )
    if terminal.binding_kind != "service_point" or point is None:
        raise Forbidden(
            "agents.no_service_point",
            "this terminal is not bound to a service point of the institution",
        )
    if point.status != "active":
        raise Forbidden("agents.service_point_inactive", f"the service point is {point.status}")
    return point
