"""Farmer codes (一码通) on both databases: issued once in plain, stored as a blind index,
one in force per customer, found by exact code only within the institution."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import run_in_transaction, transaction
from huinong.errors import InvalidInput, NotFound
from huinong.ids import luhn_is_valid
from huinong.institutions.models import Institution
from huinong.parties import farmer_codes
from huinong.parties.models import FarmerCode
from tests.conftest import new_institution
from tests.parties.test_households import new_customer


@pytest.fixture
def bank(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory, prefix="FC")


def issue(factory: sessionmaker[Session], bank: Institution, customer_id) -> str:
    _, code = run_in_transaction(
        factory,
        lambda s: farmer_codes.issue_farmer_code(
            s, institution_id=bank.id, customer_id=customer_id
        ),
    )
    return code


def holder(factory: sessionmaker[Session], bank: Institution, code: str):
    with factory() as session:
        return farmer_codes.customer_by_farmer_code(session, institution_id=bank.id, code=code).id


def test_a_code_is_shown_once_and_stored_only_as_an_index(factory, bank):
    customer = new_customer(factory, bank)
    code = issue(factory, bank, customer)
    assert len(code) == 19 and code.isdigit() and luhn_is_valid(code)
    assert holder(factory, bank, code) == customer
    spaced = " ".join(code[i : i + 4] for i in range(0, 19, 4))
    assert holder(factory, bank, spaced) == customer
    with factory() as session:
        row = session.scalars(select(FarmerCode).where(FarmerCode.customer_id == customer)).one()
        stored = " ".join(str(v) for v in vars(row).values())
    assert code not in stored and row.last_digits == code[-4:]


def test_a_new_code_revokes_the_old_and_one_is_in_force(factory, bank):
    customer = new_customer(factory, bank)
    old = issue(factory, bank, customer)
    new = issue(factory, bank, customer)
    assert holder(factory, bank, new) == customer
    with pytest.raises(NotFound) as caught:
        holder(factory, bank, old)
    assert caught.value.code == "parties.farmer_code_not_found"
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(
            FarmerCode.__table__.update()
            .where(FarmerCode.customer_id == customer)
            .values(revoked_at=None)
        )
    run_in_transaction(
        factory,
        lambda s: farmer_codes.revoke_farmer_code(s, institution_id=bank.id, customer_id=customer),
    )
    with pytest.raises(NotFound):
        holder(factory, bank, new)


def test_typos_and_other_institutions_find_nobody(factory, bank):
    customer = new_customer(factory, bank)
    code = issue(factory, bank, customer)
    typo = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    for bad in (typo, code[:-1], "x" * 19):
        with pytest.raises(InvalidInput) as caught:
            holder(factory, bank, bad)
        assert caught.value.field == "farmer_code"
    other = new_institution(factory, prefix="FC")
    with pytest.raises(NotFound):
        holder(factory, other, code)
