"""create_transfers through the service, on both databases: the TigerBeetle semantics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import transaction
from huinong.ids import uuid7
from huinong.institutions.models import Institution
from huinong.ledger import service
from huinong.ledger.models import Account
from huinong.ledger.types import AccountType, TransferFlags, TransferInput
from huinong.ledger.verify import verify

F = TransferFlags


def open_accounts(
    factory: sessionmaker[Session],
    institution: Institution,
    n: int = 2,
    ledger: str = "CNY",
    **flags: bool,
) -> list[uuid.UUID]:
    with transaction(factory) as session:
        return [
            service.create_account(
                session,
                institution_id=institution.id,
                ledger=ledger,
                type=AccountType.liability,
                code=2011,
                name=f"acct {i}",
                **flags,
            ).id
            for i in range(n)
        ]


def run(
    factory: sessionmaker[Session], institution: Institution, *batch: TransferInput
) -> list[str]:
    with transaction(factory) as session:
        return [
            r.result.value
            for r in service.create_transfers(
                session, institution_id=institution.id, batch=list(batch)
            )
        ]


def account(factory: sessionmaker[Session], account_id: uuid.UUID) -> Account:
    with factory() as session:
        return session.get_one(Account, account_id)


def t(debit: uuid.UUID, credit: uuid.UUID, amount: int, **kw: object) -> TransferInput:
    return TransferInput(
        id=kw.pop("id", None) or uuid7(),
        debit_account_id=debit,  # type: ignore[arg-type]
        credit_account_id=credit,
        amount=amount,
        ledger="CNY",
        code=1,
        **kw,
    )  # type: ignore[arg-type]


def test_simple_transfer_moves_both_sides(factory, institution):
    a, b = open_accounts(factory, institution)
    assert run(factory, institution, t(a, b, 150)) == ["ok"]
    assert account(factory, a).debits_posted == 150
    assert account(factory, b).credits_posted == 150
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_same_id_is_exists_and_different_amount_is_refused(factory, institution):
    a, b = open_accounts(factory, institution)
    first = t(a, b, 100)
    assert run(factory, institution, first) == ["ok"]
    assert run(factory, institution, first) == ["exists"]
    changed = TransferInput(
        **{**{k: getattr(first, k) for k in first.__dataclass_fields__}, "amount": 101}
    )
    assert run(factory, institution, changed) == ["exists_with_different_amount"]
    assert account(factory, b).credits_posted == 100


def test_limit_flag_refuses_overdraft(factory, institution):
    a, b = open_accounts(factory, institution, debits_must_not_exceed_credits=True)
    c = open_accounts(factory, institution)[0]
    assert run(factory, institution, t(c, a, 500)) == ["ok"]
    assert run(factory, institution, t(a, b, 501)) == ["exceeds_credits"]
    assert run(factory, institution, t(a, b, 500)) == ["ok"]


def test_linked_chain_fails_as_one(factory, institution):
    a, b = open_accounts(factory, institution, debits_must_not_exceed_credits=True)
    c = open_accounts(factory, institution)[0]
    results = run(
        factory, institution, t(c, a, 100, flags=F.linked), t(a, b, 100, flags=F.linked), t(a, b, 1)
    )
    assert results == ["linked_event_failed", "linked_event_failed", "exceeds_credits"]
    assert account(factory, a).credits_posted == 0
    assert run(factory, institution, t(c, a, 1, flags=F.linked)) == ["linked_event_chain_open"]


def test_two_phase_post_partial_and_void(factory, institution):
    a, b = open_accounts(factory, institution)
    p1, p2 = uuid7(), uuid7()
    assert run(
        factory,
        institution,
        t(a, b, 300, id=p1, flags=F.pending),
        t(a, b, 200, id=p2, flags=F.pending),
    ) == ["ok", "ok"]
    assert account(factory, a).debits_pending == 500
    post = TransferInput(id=uuid7(), pending_id=p1, amount=250, flags=F.post_pending)
    void = TransferInput(id=uuid7(), pending_id=p2, flags=F.void_pending)
    assert run(factory, institution, post, void) == ["ok", "ok"]
    acct = account(factory, a)
    assert (acct.debits_pending, acct.debits_posted) == (0, 250)
    again = TransferInput(id=uuid7(), pending_id=p1, flags=F.void_pending)
    assert run(factory, institution, again) == ["pending_transfer_already_posted"]


def test_pending_expires_and_sweep_voids_it(factory, institution):
    a, b = open_accounts(factory, institution)
    pending = uuid7()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    with clock.frozen(start):
        assert run(factory, institution, t(a, b, 70, id=pending, flags=F.pending, timeout=60)) == [
            "ok"
        ]
    with clock.frozen(start + timedelta(seconds=61)):
        post = TransferInput(id=uuid7(), pending_id=pending, flags=F.post_pending)
        assert run(factory, institution, post) == ["pending_transfer_expired"]
        with transaction(factory) as session:
            assert service.sweep_expired_pending(session) >= 1
    assert account(factory, a).debits_pending == 0
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_other_institutions_accounts_are_not_found(factory, institution):
    from tests.conftest import new_institution

    other = new_institution(factory)
    a = open_accounts(factory, institution, 1)[0]
    foreign = open_accounts(factory, other, 1)[0]
    assert run(factory, institution, t(a, foreign, 5)) == ["credit_account_not_found"]


def test_verify_adds_ledger_totals_beyond_64_bits(factory, institution):
    """Each account stays within BIGINT while the ledger's total passes 2^63 - 1."""
    accounts = open_accounts(factory, institution, 6)
    big = 6 * 10**18
    batch = [t(accounts[i], accounts[i + 1], big) for i in range(0, 6, 2)]
    assert run(factory, institution, *batch) == ["ok", "ok", "ok"]
    with factory() as session:
        assert verify(session, institution_id=institution.id) == []


def test_a_database_error_reaches_the_caller_as_sqlalchemy_raises_it(factory, institution, backend):
    """On PostgreSQL the ledger's statements go straight to psycopg; their errors still arrive
    as SQLAlchemy's, with the SQLSTATE, which is what entry points decide retries on. Here
    the lock waits for an account another transaction holds, and gives up."""
    if backend != "postgresql":
        pytest.skip("SQLite takes the database lock at BEGIN IMMEDIATE, not the accounts")
    a, b = open_accounts(factory, institution)
    with transaction(factory) as holder:
        service.create_transfers(holder, institution_id=institution.id, batch=[t(a, b, 5)])
        with pytest.raises(OperationalError) as raised, transaction(factory) as waiter:
            waiter.execute(text("SET LOCAL lock_timeout = '50ms'"))
            service.create_transfers(waiter, institution_id=institution.id, batch=[t(b, a, 7)])
    assert raised.value.orig.sqlstate == "55P03"  # lock_not_available
    assert account(factory, a).debits_posted == 5 and account(factory, a).credits_posted == 0
