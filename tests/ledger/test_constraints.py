"""The database itself refuses a broken ledger, whatever the Python code does."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from huinong import clock
from huinong.db import is_postgres, transaction
from huinong.ids import uuid7
from huinong.ledger.models import Account, PendingTransfer, Transfer
from huinong.ledger.types import TransferFlags
from huinong.ledger.verify import verify
from tests.conftest import new_institution
from tests.ledger.test_transfers import open_accounts, run, t

PENDING, VOID = int(TransferFlags.pending), int(TransferFlags.void_pending)


def _refused(factory, statement) -> None:
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(statement)


def _row(institution, debit, credit) -> dict:
    """A well-formed plain transfer of 0.01 yuan, less its id."""
    return {
        "institution_id": institution.id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": 1,
        "ledger": "CNY",
        "code": 1,
        "flags": 0,
        "timeout": 0,
        "timestamp": clock.now(),
    }


def test_limit_flags_and_balances_are_check_constraints(factory, institution):
    guarded, plain = open_accounts(factory, institution, debits_must_not_exceed_credits=True)
    _refused(factory, update(Account).where(Account.id == guarded).values(debits_posted=1))
    _refused(factory, update(Account).where(Account.id == plain).values(credits_posted=-1))
    _refused(
        factory,
        update(Account)
        .where(Account.id == plain)
        .values(debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True),
    )
    opposite = open_accounts(factory, institution, 1, credits_must_not_exceed_debits=True)[0]
    _refused(factory, update(Account).where(Account.id == opposite).values(credits_pending=5))


def test_transfer_shape_is_checked_by_the_database(factory, institution):
    a, b = open_accounts(factory, institution)
    row = _row(institution, a, b)
    for broken in (
        {"amount": 0},
        {"credit_account_id": a},
        {"code": 0},
        {"flags": 64},
        {"timeout": 5},
        {"flags": 4},
        {"pending_id": uuid7()},
    ):
        _refused(factory, insert(Transfer).values(**{**row, "id": uuid7(), **broken}))
    with transaction(factory) as session:
        session.execute(insert(Transfer).values(**row, id=uuid7()))
    # The row is now there but no balance moved: verify must name both accounts.
    with factory() as session:
        problems = verify(session, institution_id=institution.id)
    assert {p.check for p in problems} == {"balance_mismatch"}
    assert {p.ids[0] for p in problems} == {str(a), str(b)}
    with transaction(factory) as session:
        session.execute(update(Account).where(Account.id == a).values(debits_posted=1))
        session.execute(update(Account).where(Account.id == b).values(credits_posted=1))
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_a_pending_transfer_resolves_once(factory, institution):
    a, b = open_accounts(factory, institution)
    pending = uuid7()
    base = _row(institution, a, b)
    del base["flags"]  # each insert below sets its own
    with transaction(factory) as session:
        session.execute(insert(Transfer).values(**base, id=pending, flags=2))
        session.execute(insert(Transfer).values(**base, id=uuid7(), flags=4, pending_id=pending))
    _refused(factory, insert(Transfer).values(**base, id=uuid7(), flags=8, pending_id=pending))
    # Undo: make the stored rows consistent again (1 posted), so the suite's verify stays clean.

    with transaction(factory) as session:
        resolver = session.scalar(select(Transfer.id).where(Transfer.pending_id == pending))
        session.execute(
            insert(PendingTransfer).values(
                pending_id=pending,
                institution_id=institution.id,
                status="posted",
                resolved_by=resolver,
                resolved_at=clock.now(),
            )
        )
        session.execute(update(Account).where(Account.id == a).values(debits_posted=1))
        session.execute(update(Account).where(Account.id == b).values(credits_posted=1))
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_a_post_or_void_names_a_pending_transfer_of_its_institution_and_ledger(
    factory, institution
):
    a, b = open_accounts(factory, institution)
    other = new_institution(factory)
    plain, their_pending, dollar_pending = uuid7(), uuid7(), uuid7()
    assert run(factory, institution, t(a, b, 5, id=plain)) == ["ok"]
    assert run(
        factory, other, t(*open_accounts(factory, other), 5, id=their_pending, flags=PENDING)
    ) == ["ok"]
    dollars = open_accounts(factory, institution, ledger="USD")
    usd = replace(t(*dollars, 5, id=dollar_pending, flags=PENDING), ledger="USD")
    assert run(factory, institution, usd) == ["ok"]
    void = {**_row(institution, a, b), "flags": VOID}
    for named in (uuid7(), plain, their_pending, dollar_pending):
        _refused(factory, insert(Transfer).values(**void, id=uuid7(), pending_id=named))
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_a_transfers_accounts_belong_to_its_institution_and_ledger(factory, institution):
    a, b = open_accounts(factory, institution)
    theirs = open_accounts(factory, new_institution(factory), 1)[0]
    row = _row(institution, a, b)
    for broken in (
        {"debit_account_id": uuid7()},
        {"credit_account_id": uuid7()},
        {"credit_account_id": theirs},
        {"debit_account_id": theirs},
        {"ledger": "USD"},
    ):
        _refused(factory, insert(Transfer).values(**{**row, "id": uuid7(), **broken}))
    # One stray row refuses the whole statement: nothing of it is written.
    batch = [{**row, "id": uuid7()} for _ in range(3)] + [
        {**row, "id": uuid7(), "credit_account_id": theirs}
    ]
    _refused(factory, insert(Transfer).values(batch))
    with factory() as session:
        stored = session.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.debit_account_id == a)
        )
    assert stored == 0


def test_accounts_are_never_deleted_and_transfers_never_change(factory, institution):
    a, b = open_accounts(factory, institution)
    other = new_institution(factory)
    moved = uuid7()
    assert run(factory, institution, t(a, b, 5, id=moved)) == ["ok"]
    _refused(factory, delete(Account).where(Account.id == a))
    _refused(factory, update(Account).where(Account.id == a).values(institution_id=other.id))
    _refused(factory, update(Account).where(Account.id == a).values(ledger="USD"))
    _refused(factory, update(Account).where(Account.id == a).values(id=uuid7()))
    _refused(factory, update(Transfer).where(Transfer.id == moved).values(amount=6))
    _refused(factory, update(Transfer).where(Transfer.id == moved).values(reference="edited"))
    _refused(factory, delete(Transfer).where(Transfer.id == moved))
    with factory() as session:
        postgres = is_postgres(session)
    if postgres:  # SQLite has no TRUNCATE
        for table in ("ledger_transfers", "ledger_accounts"):
            _refused(factory, text(f"TRUNCATE {table} CASCADE"))
    with transaction(factory) as session:  # what changes an account stays allowed
        session.execute(update(Account).where(Account.id == a).values(name="renamed"))
    with factory() as session:
        assert session.get(Transfer, moved).amount == 5
        assert verify(session, institution_id=institution.id) == []
