"""Farmer codes (一码通): the number on a farmer's QR card that identifies them for payment.

A farmer code is 19 digits — 18 drawn from ``secrets`` and a Luhn check digit, so a code typed
by hand with one digit wrong is refused before any lookup. It is a bearer identifier: whoever
holds the card is looked up as its customer, which is why a withdrawal by farmer code also needs
a one-time code sent to the customer's phone (``payments.service_points``). The code itself is
shown once, when it is issued; the database keeps only its keyed SM3 blind index (found again
by exact lookup, like ID numbers) and its last four digits for display. A customer has at most
one code in force: issuing a new one (a lost card) revokes the old one in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import InvalidInput, NotFound
from huinong.ids import luhn_check_digit, luhn_is_valid, uuid7
from huinong.parties.models import Customer, FarmerCode
from huinong.parties.service import get_customer
from huinong.security.personal_data import service as personal_data

CODE_LENGTH = 19
_INDEX_FIELD = "farmer_code"


def normalise_farmer_code(code: str, *, field: str = "farmer_code") -> str:
    """The code's digits (spaces, as printed under the QR code, are dropped), or an error."""
    digits = "".join(code.split())
    if not (len(digits) == CODE_LENGTH and digits.isascii() and digits.isdigit()):
        raise InvalidInput(
            "parties.invalid_farmer_code",
            f"a farmer code is {CODE_LENGTH} digits; scan the card again or type it as printed",
            field=field,
        )
    if not luhn_is_valid(digits):
        raise InvalidInput(
            "parties.invalid_farmer_code",
            "the farmer code's check digit does not match: a digit was mistyped",
            field=field,
        )
    return digits


def _index(institution_id: uuid.UUID, code: str) -> str:
    return personal_data.blind_index(code, field=_INDEX_FIELD, institution_id=institution_id)


def issue_farmer_code(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> tuple[FarmerCode, str]:
    """A new code for the customer (revoking the one in force); the plain code is returned
    once, for printing on the card, and never stored."""
    customer = get_customer(session, institution_id=institution_id, customer_id=customer_id)
    now = clock.now()
    session.execute(
        update(FarmerCode)
        .where(FarmerCode.customer_id == customer.id, FarmerCode.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    body = "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH - 1))
    code = body + luhn_check_digit(body)
    row = FarmerCode(
        id=uuid7(),
        institution_id=institution_id,
        customer_id=customer.id,
        code_index=_index(institution_id, code),
        last_digits=code[-4:],
        issued_at=now,
    )
    session.add(row)
    session.flush()
    return row, code


def farmer_code_in_force(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> FarmerCode | None:
    return session.scalars(
        select(FarmerCode).where(
            FarmerCode.institution_id == institution_id,
            FarmerCode.customer_id == customer_id,
            FarmerCode.revoked_at.is_(None),
        )
    ).one_or_none()


def revoke_farmer_code(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> FarmerCode:
    """Revoke the customer's code in force (a lost card, a customer who leaves)."""
    get_customer(session, institution_id=institution_id, customer_id=customer_id)
    row = farmer_code_in_force(session, institution_id=institution_id, customer_id=customer_id)
    if row is None:
        raise NotFound(
            "parties.farmer_code_not_found",
            "the customer has no farmer code in force",
            field="customer_id",
        )
    row.revoked_at = clock.now()
    session.flush()
    return row


def customer_by_farmer_code(
    session: Session, *, institution_id: uuid.UUID, code: str, field: str = "farmer_code"
) -> Customer:
    """The customer whose code in force this is; a revoked or unknown code is not found."""
    digits = normalise_farmer_code(code, field=field)
    customer = session.scalars(
        select(Customer)
        .join(FarmerCode, FarmerCode.customer_id == Customer.id)
        .where(
            FarmerCode.institution_id == institution_id,
            FarmerCode.code_index == _index(institution_id, digits),
            FarmerCode.revoked_at.is_(None),
        )
    ).one_or_none()
    if customer is None:
        raise NotFound(
            "parties.farmer_code_not_found",
            "no farmer card with this code is in force: ask the customer for their current card",
            field=field,
        )
    return customer
