"""Customers (parties). Identifiers are masked in every response."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.parties import rules, service
from huinong.parties.models import Customer
from huinong.parties.schemas import CustomerCreate, CustomerPage, CustomerRead

router = APIRouter(tags=["customers"])


def customer_read(customer: Customer) -> CustomerRead:
    return CustomerRead(
        id=customer.id,
        kind=customer.kind,  # type: ignore[arg-type]
        name=customer.name,
        id_number_masked=rules.mask_id_number(customer.id_number),
        phone_masked=rules.mask_phone(customer.phone),
        created_at=customer.created_at,
    )


@router.post("/customers", status_code=201, response_model=CustomerRead)
def create_customer(body: CustomerCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: customer_read(
            service.create_customer(s, institution_id=principal.institution_id, **body.model_dump())
        )
    )


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)
    items = database.run(
        lambda s: [
            customer_read(c)
            for c in service.list_customers(
                s, institution_id=principal.institution_id, after=after, limit=limit
            )
        ]
    )
    return CustomerPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/customers/{customer_id}", response_model=CustomerRead)
def get_customer(customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: customer_read(
            service.get_customer(
                s, institution_id=principal.institution_id, customer_id=customer_id
            )
        )
    )
