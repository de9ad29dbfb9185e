"""The transfer rules as a pure function: no database, just states in and decisions out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from huinong.ledger.engine import process_batch
from huinong.ledger.types import AccountState, PendingStatus, TransferFlags, TransferInput
from huinong.money import MAX_FEN

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


# --- TigerBeetle rules pinned by the state machine (tests/ledger/test_state_machine.py) ---


def test_open_chain_is_chain_open_at_the_end_even_after_a_failure():
    states = accounts(a1={"debits_must_not_exceed_credits": True})
    outcome = run([tr(1, 1, 2, 5, flags=F.linked), tr(2, 3, 4, 5, flags=F.linked)], states)
    assert codes(outcome) == ["exceeds_credits", "linked_event_chain_open"]
    outcome = run(
        [
            tr(1, 1, 2, 5, flags=F.linked),
            tr(2, 3, 4, 5, flags=F.linked),
            tr(3, 3, 4, 5, flags=F.linked),
        ],
        states,
    )
    assert codes(outcome) == ["exceeds_credits", "linked_event_failed", "linked_event_chain_open"]


def _pending_then(*resolutions: TransferInput, amount: int = 100):
    states = accounts()
    created = run([tr(1, 1, 2, amount, flags=F.pending)], states)
    record, pending_state = created.created[0], created.new_pendings[0]
    return run(list(resolutions), states, {record.id: record}, {record.id: pending_state})


def test_void_of_more_than_the_pending_amount_exceeds_it():
    void = TransferInput(
        id=uuid.UUID(int=3000), pending_id=uuid.UUID(int=1001), flags=F.void_pending, amount=101
    )
    assert codes(_pending_then(void)) == ["exceeds_pending_transfer_amount"]


def test_repeat_of_a_partial_post_without_amount_is_a_different_amount():
    post = TransferInput(
        id=uuid.UUID(int=3000), pending_id=uuid.UUID(int=1001), flags=F.post_pending, amount=40
    )
    full = TransferInput(id=post.id, pending_id=post.pending_id, flags=F.post_pending)
    outcome = _pending_then(post, post, full)
    assert codes(outcome) == ["ok", "exists", "exists_with_different_amount"]
    assert outcome.results[1].amount == 40


def test_ids_are_checked_before_the_shape_of_the_request():
    first = tr(1, 1, 2, 10)
    states = accounts()
    outcome = run(
        [
            first,
            TransferInput(**{**_fields(first), "amount": 0}),
            TransferInput(**{**_fields(first), "amount": None}),
            TransferInput(**{**_fields(first), "credit_account_id": A(1)}),
        ],
        states,
    )
    assert codes(outcome) == [
        "ok",
        "exists_with_different_amount",
        "exists_with_different_amount",
        "exists_with_different_credit_account_id",
    ]


def test_post_naming_one_account_twice_is_checked_against_the_pending():
    post = TransferInput(
        id=uuid.UUID(int=3000),
        pending_id=uuid.UUID(int=1001),
        flags=F.post_pending,
        debit_account_id=A(2),
        credit_account_id=A(2),
    )
    assert codes(_pending_then(post)) == ["pending_transfer_has_different_debit_account_id"]


def test_zero_amount_is_refused_before_the_ledger_and_code():
    bad = TransferInput(
        id=uuid.UUID(int=1001), debit_account_id=A(1), credit_account_id=A(2), amount=0
    )
    assert codes(run([bad], accounts())) == ["amount_must_not_be_zero"]


def test_items_are_stamped_by_index_and_expiry_is_judged_at_the_item():
    states = accounts()
    created = run([tr(9, 3, 4, 1), tr(1, 1, 2, 100, flags=F.pending, timeout=10)], states)
    record, pending_state = created.created[1], created.new_pendings[0]
    assert record.timestamp == NOW + timedelta(microseconds=1)
    assert pending_state.expires_at == NOW + timedelta(seconds=10, microseconds=1)
    # One microsecond before the expiry: the first item is in time, the second is not.
    posts = [
        TransferInput(id=uuid.UUID(int=3000 + n), pending_id=record.id, flags=F.post_pending)
        for n in range(2)
    ]
    outcome = run(
        [posts[0]],
        states,
        {record.id: record},
        {record.id: pending_state},
        now=NOW + timedelta(seconds=10),
    )
    assert codes(outcome) == ["ok"]
    states = accounts()
    created = run([tr(9, 3, 4, 1), tr(1, 1, 2, 100, flags=F.pending, timeout=10)], states)
    record, pending_state = created.created[1], created.new_pendings[0]
    outcome = run(
        [tr(8, 3, 4, 1), posts[1]],
        states,
        {record.id: record},
        {record.id: pending_state},
        now=NOW + timedelta(seconds=10),
    )
    assert codes(outcome) == ["ok", "pending_transfer_expired"]


def test_post_on_an_account_near_the_limit_is_no_overflow():
    states = accounts()
    states[A(1)].debits_posted = 5
    created = run([tr(1, 1, 2, MAX_FEN - 5, flags=F.pending)], states)
    assert codes(created) == ["ok"]
    record, pending_state = created.created[0], created.new_pendings[0]
    post = TransferInput(
        id=uuid.UUID(int=3000), pending_id=record.id, flags=F.post_pending, amount=1
    )
    outcome = run([post], states, {record.id: record}, {record.id: pending_state})
    assert codes(outcome) == ["ok"]
    assert states[A(1)].balances() == (0, 6, 0, 0)


def _fields(t: TransferInput) -> dict:
    return {name: getattr(t, name) for name in t.__dataclass_fields__}


def test_a_batch_decided_in_pieces_answers_as_the_whole_batch():
    """``first_index`` numbers a piece's items as the larger batch does: the same indices,
    timestamps and results, a failing chain included, as deciding the batch in one go."""
    batch = [
        tr(1, 1, 2, 5),
        tr(2, 2, 3, 7, flags=F.linked),
        tr(3, 3, 4, 9),  # exceeds_credits: the chain 2-3 fails
        tr(4, 1, 2, 5, flags=F.linked),
        tr(5, 2, 2, 1),  # accounts_must_be_different: the chain 4-5 fails
        tr(6, 4, 1, 3),
    ]
    limited = {"a3": {"debits_must_not_exceed_credits": True}}
    whole = run(batch, accounts(**limited))
    states = accounts(**limited)
    known: dict = {}
    pieces = []
    for start, end in ((0, 3), (3, 6)):
        piece = process_batch(
            institution_id=INSTITUTION,
            batch=batch[start:end],
            accounts=states,
            known_transfers=known,
            pending_states={},
            now=NOW,
            first_index=start,
        )
        known.update({record.id: record for record in piece.created})
        pieces.append(piece)
    assert [r for piece in pieces for r in piece.results] == whole.results
    assert [r for piece in pieces for r in piece.created] == whole.created
    assert codes(whole) == [
        "ok",
        "linked_event_failed",
        "exceeds_credits",
        "linked_event_failed",
        "accounts_must_be_different",
        "ok",
    ]
    assert [r.index for r in whole.results] == list(range(6))
