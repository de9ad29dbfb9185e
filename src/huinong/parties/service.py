"""Customer use cases.

A customer's ID number and phone are encrypted before they reach the session and found again
through their blind indexes (``huinong.security.personal_data``): the uniqueness check, the
lookups and the unique index all compare index values, never plaintext. Values are normalised
(``rules``) before they are indexed, or the same number written two ways would be two people.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.parties import rules
from huinong.parties.geography import service as geography
from huinong.parties.models import Customer, CustomerKind
from huinong.security.personal_data import service as personal_data

TABLE = Customer.__tablename__


@dataclass(frozen=True)
class Identifiers:
    """A customer's decrypted C2 identifiers: hand them to masking, never to a log."""

    id_number: str
    phone: str | None

    def __repr__(self) -> str:  # a stray debug print or traceback shows no personal data
        return "Identifiers(…)"


def _id_number_index(institution_id: uuid.UUID, id_number: str) -> str:
    return personal_data.blind_index(id_number, field="id_number", institution_id=institution_id)


def _phone_index(institution_id: uuid.UUID, phone: str) -> str:
    return personal_data.blind_index(phone, field="phone", institution_id=institution_id)


def create_customer(
    session: Session,
    *,
    institution_id: uuid.UUID,
    kind: CustomerKind,
    name: str,
    id_number: str,
    phone: str | None = None,
    village_code: str | None = None,
) -> Customer:
    name = name.strip()
    if not name:
        raise InvalidInput("parties.name_required", "the name must not be empty", field="name")
    id_number = rules.check_id_number(kind, id_number)
    phone = rules.check_phone(phone)
    village = None if village_code is None else geography.check_village(session, village_code)
    id_number_index = _id_number_index(institution_id, id_number)
    taken = session.scalar(
        select(Customer.id).where(
            Customer.institution_id == institution_id,
            Customer.id_number_index == id_number_index,
        )
    )
    if taken is not None:
        raise Conflict(
            "parties.id_number_taken",
            "a customer with this ID number exists; look it up instead of creating another",
            field="id_number",
        )
    customer_id = uuid7()
    key = personal_data.active_key(session)
    customer = Customer(
        id=customer_id,
        institution_id=institution_id,
        kind=str(kind),
        name=name,
        id_number_ciphertext=personal_data.seal(
            key, id_number, table=TABLE, field="id_number", row_id=customer_id
        ),
        id_number_index=id_number_index,
        phone_ciphertext=None
        if phone is None
        else personal_data.seal(key, phone, table=TABLE, field="phone", row_id=customer_id),
        phone_index=None if phone is None else _phone_index(institution_id, phone),
        data_key_version=key.version,
        created_at=clock.now(),
        village_code=village,
    )
    session.add(customer)
    session.flush()
    return customer


def identifiers(session: Session, customer: Customer) -> Identifiers:
    """Decrypt the customer's ID number and phone (for masking or an audited reveal)."""

    def open_(field: str, ciphertext: bytes) -> str:
        return personal_data.unseal(
            session,
            ciphertext,
            version=customer.data_key_version,
            table=TABLE,
            field=field,
            row_id=customer.id,
        )

    phone = customer.phone_ciphertext
    return Identifiers(
        id_number=open_("id_number", customer.id_number_ciphertext),
        phone=None if phone is None else open_("phone", phone),
    )


def get_customer(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.institution_id != institution_id:
        raise NotFound("parties.customer_not_found", "no such customer", field="customer_id")
    return customer


def set_customer_village(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID, village_code: str | None
) -> Customer:
    """Place the customer in a village (a stored 12-digit village code), or in none."""
    customer = get_customer(session, institution_id=institution_id, customer_id=customer_id)
    customer.village_code = (
        None if village_code is None else geography.check_village(session, village_code)
    )
    session.flush()
    return customer


def list_customers(
    session: Session,
    *,
    institution_id: uuid.UUID,
    after: uuid.UUID | None = None,
    limit: int = 50,
    managed_by: uuid.UUID | None = None,
) -> list[Customer]:
    """The institution's customers by id; with ``managed_by``, only those placed in villages
    of the grids that staff user manages."""
    query = select(Customer).where(Customer.institution_id == institution_id)
    if managed_by is not None:
        query = query.where(
            Customer.village_code.in_(geography.villages_managed_by(institution_id, managed_by))
        )
    if after is not None:
        query = query.where(Customer.id > after)
    return list(session.scalars(query.order_by(Customer.id).limit(limit)))


def find_customer_by_id_number(
    session: Session, *, institution_id: uuid.UUID, id_number: str
) -> Customer | None:
    """The institution's customer with this resident ID number or credit code, if any."""
    number = rules.normalise_id_number(id_number)
    return session.scalar(
        select(Customer).where(
            Customer.institution_id == institution_id,
            Customer.id_number_index == _id_number_index(institution_id, number),
        )
    )


def find_customers_by_phone(
    session: Session, *, institution_id: uuid.UUID, phone: str
) -> list[Customer]:
    """The institution's customers with this mobile number, oldest first (members of one
    household may share a phone, so there can be several)."""
    normalised = rules.check_phone(phone)
    assert normalised is not None
    return list(
        session.scalars(
            select(Customer)
            .where(
                Customer.institution_id == institution_id,
                Customer.phone_index == _phone_index(institution_id, normalised),
            )
            .order_by(Customer.id)
        )
    )


def lookup_customers(
    session: Session,
    *,
    institution_id: uuid.UUID,
    id_number: str | None = None,
    phone: str | None = None,
) -> list[Customer]:
    """Find customers by exactly one identifier: an ID number (at most one match) or a phone."""
    if (id_number is None) == (phone is None):
        raise InvalidInput(
            "parties.lookup_needs_one_identifier",
            "give exactly one of id_number and phone",
            field="id_number",
        )
    if id_number is not None:
        found = find_customer_by_id_number(
            session, institution_id=institution_id, id_number=id_number
        )
        return [] if found is None else [found]
    assert phone is not None
    return find_customers_by_phone(session, institution_id=institution_id, phone=phone)
