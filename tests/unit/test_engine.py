"""The transfer rules as a pure function: no database, just states in and decisions out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from huinong.ledger.engine import process_batch
from huinong.ledger.types import AccountState, PendingStatus, TransferFlags, TransferInput

F = TransferFlags
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
INSTITUTION = uuid.UUID(int=1)


def accounts(**overrides: dict) -> dict[uuid.UUID, AccountState]:
    states = {}
    for number in range(1, 5):
        fields = {
            "debits_must_not_exceed_credits": False,
            "credits_must_not_exceed_debits": False,
            "closed": False,
            **overrides.get(f"a{number}", {}),
        }
        states[uuid.UUID(int=number)] = AccountState(uuid.UUID(int=number), "CNY", **fields)
    return states


def A(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def tr(n: int, debit: int, credit: int, amount: int | None, **kw: object) -> TransferInput:
    return TransferInput(
        id=uuid.UUID(int=1000 + n),
        debit_account_id=A(debit),
        credit_account_id=A(credit),
        amount=amount,
        ledger="CNY",
        code=1,
        **kw,
    )  # type: ignore[arg-type]


def run(batch, states, known=None, pendings=None, now=NOW, foreign=frozenset()):
    return process_batch(
        institution_id=INSTITUTION,
        batch=batch,
        accounts=states,
        known_transfers=known or {},
        pending_states=pendings or {},
        now=now,
        foreign_ids=foreign,
    )


def codes(outcome) -> list[str]:
    return [r.result.value for r in outcome.results]


def test_failed_chain_leaves_balances_as_they_were():
    states = accounts(a2={"debits_must_not_exceed_credits": True})
    outcome = run([tr(1, 1, 2, 100, flags=F.linked), tr(2, 2, 3, 150)], states)
    assert codes(outcome) == ["linked_event_failed", "exceeds_credits"]
    assert all(s.balances() == (0, 0, 0, 0) for s in states.values())
    assert outcome.created == []


def test_successful_chain_then_lone_transfer():
    states = accounts(a2={"debits_must_not_exceed_credits": True})
    outcome = run([tr(1, 1, 2, 100, flags=F.linked), tr(2, 2, 3, 100), tr(3, 2, 4, 1)], states)
    assert codes(outcome) == ["ok", "ok", "exceeds_credits"]
    assert states[A(2)].balances() == (0, 100, 0, 100)
    assert [r.timestamp for r in outcome.created] == sorted(r.timestamp for r in outcome.created)


def test_open_chain_at_end_of_batch_fails_whole():
    outcome = run(
        [tr(1, 1, 2, 5), tr(2, 1, 2, 5, flags=F.linked), tr(3, 1, 2, 5, flags=F.linked)], accounts()
    )
    assert codes(outcome) == ["ok", "linked_event_failed", "linked_event_chain_open"]


def test_balancing_debit_clamps_to_what_the_account_has():
    states = accounts(a1={"debits_must_not_exceed_credits": True})
    states[A(1)].credits_posted = 70
    outcome = run(
        [tr(1, 1, 2, 100, flags=F.balancing_debit), tr(2, 1, 2, 5, flags=F.balancing_debit)], states
    )
    assert codes(outcome) == ["ok", "exceeds_credits"]
    assert outcome.results[0].amount == 70


def test_pending_created_and_posted_in_one_batch():
    states = accounts()
    post = TransferInput(
        id=uuid.UUID(int=2000), pending_id=uuid.UUID(int=1001), flags=F.post_pending, amount=40
    )
    outcome = run([tr(1, 1, 2, 100, flags=F.pending, timeout=30), post], states)
    assert codes(outcome) == ["ok", "ok"]
    assert states[A(1)].balances() == (0, 40, 0, 0)
    assert outcome.new_pendings[0].status is PendingStatus.posted
    assert outcome.resolved_pendings == []
    assert outcome.new_pendings[0].expires_at == outcome.created[0].timestamp + timedelta(
        seconds=30
    )


def test_repeat_inside_one_batch_is_exists_and_changed_repeat_is_named():
    outcome = run([tr(1, 1, 2, 10), tr(1, 1, 2, 10), tr(1, 1, 3, 10)], accounts())
    assert codes(outcome) == ["ok", "exists", "exists_with_different_credit_account_id"]


def test_shape_errors_come_before_account_lookups():
    bad = [
        TransferInput(
            id=uuid.UUID(int=0),
            debit_account_id=A(1),
            credit_account_id=A(2),
            amount=1,
            ledger="CNY",
            code=1,
        ),
        tr(2, 1, 1, 5),
        tr(3, 1, 2, 0),
        tr(4, 1, 9, 5),
        tr(5, 1, 2, 5, flags=F.pending | F.void_pending),
        tr(6, 1, 2, 5, timeout=5),
    ]
    assert codes(run(bad, accounts())) == [
        "id_must_not_be_zero",
        "accounts_must_be_different",
        "amount_must_not_be_zero",
        "credit_account_not_found",
        "flags_are_mutually_exclusive",
        "timeout_reserved_for_pending_transfer",
    ]


def test_foreign_id_fails_without_touching_anything():
    states = accounts()
    outcome = run([tr(1, 1, 2, 10)], states, foreign=frozenset({uuid.UUID(int=1001)}))
    assert codes(outcome) == ["id_already_used"]
    assert states[A(1)].balances() == (0, 0, 0, 0)


def test_expired_pending_cannot_be_posted_but_the_sweep_can_void_it():
    states = accounts()
    created = run([tr(1, 1, 2, 100, flags=F.pending, timeout=10)], states)
    record = created.created[0]
    pending_state = created.new_pendings[0]
    later = NOW + timedelta(seconds=11)
    post = TransferInput(id=uuid.UUID(int=3000), pending_id=record.id, flags=F.post_pending)
    outcome = run([post], states, {record.id: record}, {record.id: pending_state}, now=later)
    assert codes(outcome) == ["pending_transfer_expired"]
    sweep = TransferInput(
        id=uuid.UUID(int=3001), pending_id=record.id, flags=F.void_pending, expiry=True
    )
    outcome = run([sweep], states, {record.id: record}, {record.id: pending_state}, now=later)
    assert codes(outcome) == ["ok"]
    assert pending_state.status is PendingStatus.expired
    assert states[A(1)].balances() == (0, 0, 0, 0)
