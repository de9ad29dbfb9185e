"""Customers (parties). Identifiers are masked in every response, names by the caller's role.

Who sees what is the policy in ``huinong.security.personal_data.masking``; this module only
applies it. A lookup by ID number or phone is a POST with the identifier in the body, so it
never lands in an access log or a proxy's URL history. The full ID number or phone is
disclosed only by ``POST /customers/{id}/reveal``, to the roles the policy names, with a
stated purpose.

Account managers see their grids' customers: a caller whose only customer-reading role is
account_manager (``managed_by``) gets from ``GET /customers`` only the customers placed in
villages of the grids it manages (``parties.geography``); a caller who also holds another
customer-reading role (teller, approver, risk officer, auditor, admin) sees all of the
institution's customers, as that role needs. Reading one customer by id is not narrowed: a
manager serves walk-in customers too, and every such read is audited.

Every use case here reads or writes personal data and leaves an audit record in its own
transaction (``customers.created``, ``.read``, ``.listed``, ``.looked_up``,
``.identifiers_revealed``): ids, counts and codes only, never a value. A refused reveal is
recorded too, with outcome ``denied``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.errors import Forbidden, NotFound
from huinong.parties import farmer_codes, service
from huinong.parties.geography.schemas import CustomerVillage
from huinong.parties.models import Customer, FarmerCode
from huinong.parties.schemas import (
    CustomerCreate,
    CustomerLookup,
    CustomerMatches,
    CustomerPage,
    CustomerRead,
    CustomerReveal,
    CustomerRevealed,
    FarmerCodeIssued,
    FarmerCodeRead,
)
from huinong.security.audit import service as audit
from huinong.security.permissions import CUSTOMER_READERS
from huinong.security.personal_data import masking
from huinong.security.principals import Principal, PrincipalKind, Role

router = APIRouter(tags=["customers"])


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    *,
    customer_id: uuid.UUID | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Every read of personal data is audited (JR/T 0171; issue 3 §6): ids and codes only."""
    audit.record(
        session,
        action=action,
        institution_id=principal.institution_id,
        actor=principal,
        object_type="customer",
        object_id=None if customer_id is None else str(customer_id),
        outcome=outcome,
        detail=detail,
    )


def managed_by(principal: Principal) -> uuid.UUID | None:
    """The staff user whose grids bound what ``principal`` may list, or ``None`` for no bound:
    set when account_manager is the principal's only customer-reading role."""
    if principal.kind != PrincipalKind.staff:
        return None
    if principal.roles & CUSTOMER_READERS == {Role.account_manager}:
        return principal.subject_id
    return None


def customer_read(session: Session, customer: Customer, roles: Iterable[Role]) -> CustomerRead:
    roles = frozenset(roles)
    identifiers = service.identifiers(session, customer)
    return CustomerRead(
        id=customer.id,
        kind=customer.kind,  # type: ignore[arg-type]
        name=masking.present("name", customer.name, roles) or "",
        id_number_masked=masking.mask_id_number(identifiers.id_number),
        phone_masked=masking.mask_phone(identifiers.phone),
        village_code=customer.village_code,
        created_at=customer.created_at,
    )


@router.post("/customers", status_code=201, response_model=CustomerRead)
def create_customer(body: CustomerCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> CustomerRead:
        customer = service.create_customer(
            s, institution_id=principal.institution_id, **body.model_dump()
        )
        _audit(s, principal, "customers.created", customer_id=customer.id)
        return customer_read(s, customer, principal.roles)

    return database.run(work)


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)
    manager = managed_by(principal)

    def work(s: Session) -> list[CustomerRead]:
        found = service.list_customers(
            s,
            institution_id=principal.institution_id,
            after=after,
            limit=limit,
            managed_by=manager,
        )
        detail: dict[str, Any] = {"returned": len(found)}
        if manager is not None:
            detail["scope"] = "managed_grids"
        _audit(s, principal, "customers.listed", detail=detail)
        return [customer_read(s, c, principal.roles) for c in found]

    items = database.run(work)
    return CustomerPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.post("/customers/lookup", response_model=CustomerMatches)
def lookup_customers(body: CustomerLookup, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Find customers by exactly one of ID number (at most one match) or mobile number."""

    def work(s: Session) -> list[CustomerRead]:
        found = service.lookup_customers(
            s, institution_id=principal.institution_id, id_number=body.id_number, phone=body.phone
        )
        by = "id_number" if body.id_number is not None else "phone"
        _audit(s, principal, "customers.looked_up", detail={"by": by, "returned": len(found)})
        return [customer_read(s, c, principal.roles) for c in found]

    return CustomerMatches(items=database.run(work))


@router.get("/customers/{customer_id}", response_model=CustomerRead)
def get_customer(customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> CustomerRead:
        customer = service.get_customer(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        _audit(s, principal, "customers.read", customer_id=customer.id)
        return customer_read(s, customer, principal.roles)

    return database.run(work)


@router.put("/customers/{customer_id}/village", response_model=CustomerRead)
def set_customer_village(
    customer_id: uuid.UUID, body: CustomerVillage, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Place the customer in a village (or, with null, in none): what puts it in a grid."""

    def work(s: Session) -> CustomerRead:
        before = service.get_customer(
            s, institution_id=principal.institution_id, customer_id=customer_id
        ).village_code
        customer = service.set_customer_village(
            s,
            institution_id=principal.institution_id,
            customer_id=customer_id,
            village_code=body.village_code,
        )
        _audit(
            s,
            principal,
            "customers.village_set",
            customer_id=customer.id,
            detail={"before": before, "after": customer.village_code},
        )
        return customer_read(s, customer, principal.roles)

    return database.run(work)


@router.post("/customers/{customer_id}/reveal", response_model=CustomerRevealed)
def reveal_customer(
    customer_id: uuid.UUID, body: CustomerReveal, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """The full ID number and/or phone, for a stated purpose (JR/T 0171 minimum necessary use).

    The roles allowed per field are the masking policy's; a field the caller may not see
    refuses the whole request (403), so a caller never gets less than it asked for silently.
    """
    fields = sorted(set(body.fields))
    detail = {"fields": fields, "purpose": str(body.purpose)}
    refused = [f for f in fields if not masking.may_reveal(f, principal.roles)]
    if refused:
        # The attempt is recorded before it is refused: a pattern of them is what an auditor
        # looks for.
        database.run(
            lambda s: _audit(
                s,
                principal,
                "customers.identifiers_revealed",
                customer_id=customer_id,
                outcome="denied",
                detail=detail,
            )
        )
        raise Forbidden(
            "security.reveal_not_allowed",
            f"your roles may not see a customer's full {', '.join(refused)}",
            field="fields",
        )

    def work(s: Session) -> CustomerRevealed:
        customer = service.get_customer(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        _audit(
            s, principal, "customers.identifiers_revealed", customer_id=customer.id, detail=detail
        )
        identifiers = service.identifiers(s, customer)
        return CustomerRevealed(
            id=customer.id,
            id_number=identifiers.id_number if "id_number" in body.fields else None,
            phone=identifiers.phone if "phone" in body.fields else None,
        )

    return database.run(work)


# --------------------------------------------------------------------------- farmer codes


def _farmer_code_read(row: FarmerCode) -> FarmerCodeRead:
    return FarmerCodeRead(
        customer_id=row.customer_id, last_digits=row.last_digits, issued_at=row.issued_at
    )


@router.post(
    "/customers/{customer_id}/farmer-code", status_code=201, response_model=FarmerCodeIssued
)
def issue_farmer_code(
    customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Issue a farmer code (一码通) for the customer's card, revoking the one in force (a lost
    card). The code is in this answer only: print it now."""

    def work(s: Session) -> FarmerCodeIssued:
        row, code = farmer_codes.issue_farmer_code(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        _audit(s, principal, "customers.farmer_code_issued", customer_id=row.customer_id)
        return FarmerCodeIssued(**_farmer_code_read(row).model_dump(), farmer_code=code)

    return database.run(work)


@router.get("/customers/{customer_id}/farmer-code", response_model=FarmerCodeRead)
def get_farmer_code(customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> FarmerCodeRead:
        service.get_customer(s, institution_id=principal.institution_id, customer_id=customer_id)
        row = farmer_codes.farmer_code_in_force(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        if row is None:
            raise NotFound(
                "parties.farmer_code_not_found",
                "the customer has no farmer code in force",
                field="customer_id",
            )
        return _farmer_code_read(row)

    return database.run(work)


@router.delete("/customers/{customer_id}/farmer-code", status_code=204)
def revoke_farmer_code(
    customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    """Revoke the customer's farmer code (a lost card); it identifies nobody from now on."""

    def work(s: Session) -> None:
        row = farmer_codes.revoke_farmer_code(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        _audit(s, principal, "customers.farmer_code_revoked", customer_id=row.customer_id)

    database.run(work)
    return Response(status_code=204)
