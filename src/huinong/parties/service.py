"""Customer use cases."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.parties import rules
from huinong.parties.models import Customer, CustomerKind


def create_customer(
    session: Session,
    *,
    institution_id: uuid.UUID,
    kind: CustomerKind,
    name: str,
    id_number: str,
    phone: str | None = None,
) -> Customer:
    name = name.strip()
    if not name:
        raise InvalidInput("parties.name_required", "the name must not be empty", field="name")
    id_number = rules.check_id_number(kind, id_number)
    phone = rules.check_phone(phone)
    taken = session.scalar(
        select(Customer.id).where(
            Customer.institution_id == institution_id, Customer.id_number == id_number
        )
    )
    if taken is not None:
        raise Conflict(
            "parties.id_number_taken",
            "a customer with this ID number exists; look it up instead of creating another",
            field="id_number",
        )
    customer = Customer(
        id=uuid7(),
        institution_id=institution_id,
        kind=str(kind),
        name=name,
        id_number=id_number,
        phone=phone,
        created_at=clock.now(),
    )
    session.add(customer)
    session.flush()
    return customer


def get_customer(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.institution_id != institution_id:
        raise NotFound("parties.customer_not_found", "no such customer", field="customer_id")
    return customer


def list_customers(
    session: Session, *, institution_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 50
) -> list[Customer]:
    query = select(Customer).where(Customer.institution_id == institution_id)
    if after is not None:
        query = query.where(Customer.id > after)
    return list(session.scalars(query.order_by(Customer.id).limit(limit)))
