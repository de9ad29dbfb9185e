"""Batches of thousands (the service decides them in pieces and pipelines the writes on
PostgreSQL) give exactly the results and balances of the reference model."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from huinong import clock
from huinong.db import transaction
from huinong.ids import uuid7
from huinong.ledger import service
from huinong.ledger.models import Account
from huinong.ledger.types import AccountType, TransferFlags, TransferInput
from huinong.ledger.verify import verify
from tests.ledger.reference_model import LedgerModel, ModelAccount

F = TransferFlags


def _transfer(debit: uuid.UUID, credit: uuid.UUID, amount: int, flags: int = 0) -> TransferInput:
    return TransferInput(
        id=uuid7(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        ledger="CNY",
        code=1,
        flags=flags,
    )


def _open_accounts(
    factory, institution, model: LedgerModel, count: int, limited_every: int = 0
) -> list[uuid.UUID]:
    """Asset accounts, every ``limited_every``-th with ``debits_must_not_exceed_credits``,
    opened in the ledger and in the model."""
    ids = []
    with transaction(factory) as session:
        for index in range(count):
            limited = bool(limited_every) and index % limited_every == 0
            account = service.create_account(
                session,
                institution_id=institution.id,
                ledger="CNY",
                type=AccountType.asset,
                code=1,
                name=f"a{index}",
                debits_must_not_exceed_credits=limited,
            )
            ids.append(account.id)
            model.add_account(
                ModelAccount(account.id, "CNY", debits_must_not_exceed_credits=limited)
            )
    return ids


def _assert_balances_match(factory, institution, model: LedgerModel) -> None:
    with factory() as session:
        stored = {
            a.id: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            for a in session.query(Account).filter(Account.institution_id == institution.id)
        }
        assert {k: v for k, v in stored.items() if k in model.balances()} == model.balances()
        assert verify(session, institution_id=institution.id) == []


def test_a_full_batch_matches_the_reference_model(factory, institution):
    rng = random.Random(8190)
    model = LedgerModel()
    ids = _open_accounts(factory, institution, model, 40, limited_every=3)
    batch: list[TransferInput] = []
    pendings: list[TransferInput] = []
    while len(batch) < 8190:
        debit, credit = rng.sample(ids, 2)
        roll = rng.random()
        if roll < 0.1 and pendings:
            pending = pendings.pop(rng.randrange(len(pendings)))
            flag = F.post_pending if rng.random() < 0.6 else F.void_pending
            amount = (
                rng.choice((None, pending.amount // 2 or 1)) if flag == F.post_pending else None
            )
            batch.append(
                TransferInput(id=uuid7(), pending_id=pending.id, flags=flag, amount=amount)
            )
        elif roll < 0.25:
            chain = [
                _transfer(d, c, rng.randrange(1, 5_000), F.linked)
                for d, c in (rng.sample(ids, 2) for _ in range(rng.randrange(2, 5)))
            ]
            chain[-1] = replace(chain[-1], flags=0)  # the last member closes the chain
            batch.extend(chain)
        elif roll < 0.35:
            item = _transfer(debit, credit, rng.randrange(1, 10_000), F.pending)
            pendings.append(item)
            batch.append(item)
        elif roll < 0.37 and batch:
            batch.append(rng.choice(batch))  # a repeat inside the batch
        else:
            batch.append(_transfer(debit, credit, rng.randrange(1, 10_000)))
    batch = batch[:8190]
    if batch[-1].flags & F.linked:  # keep the last chain closed: an open one fails it all
        batch[-1] = replace(batch[-1], flags=0)
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    with clock.frozen(now), transaction(factory) as session:
        results = service.create_transfers(session, institution_id=institution.id, batch=batch)
    expected = model.create_transfers(batch, now)
    assert [r.result.value for r in results] == [e.result for e in expected]
    assert [r.amount for r in results] == [e.amount for e in expected]
    assert {r.result.value for r in results} >= {"ok", "exists", "exceeds_credits"}
    _assert_balances_match(factory, institution, model)


def test_a_repeated_large_batch_finds_what_is_stored(factory, institution):
    """Retries of large batches: items already stored answer ``exists`` (or how they differ),
    the rest are decided as new, and nothing is written twice."""
    rng = random.Random(2048)
    model = LedgerModel()
    ids = _open_accounts(factory, institution, model, 12)

    def fresh(count: int) -> list[TransferInput]:
        return [_transfer(*rng.sample(ids, 2), rng.randrange(1, 10_000)) for _ in range(count)]

    first = fresh(3000)
    changed = replace(first[2999], amount=first[2999].amount + 1)
    again = first[:1500] + fresh(1500) + [changed]
    for number, batch in enumerate((first, again)):
        now = datetime(2026, 6, 1, 3, number, tzinfo=UTC)
        with clock.frozen(now), transaction(factory) as session:
            results = service.create_transfers(session, institution_id=institution.id, batch=batch)
        expected = model.create_transfers(batch, now)
        assert [r.result.value for r in results] == [e.result for e in expected]
    assert [r.result.value for r in results[:1500]] == ["exists"] * 1500
    assert results[-1].result.value == "exists_with_different_amount"
    _assert_balances_match(factory, institution, model)
