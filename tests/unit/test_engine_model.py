"""The engine against the reference model near the 64-bit limits, without a database.

The database state machine (``tests/ledger/test_state_machine.py``) keeps amounts small; this
test drives the pure engine with amounts up to ``MAX_FEN`` so the overflow rules and their
order are compared with :mod:`tests.ledger.reference_model` too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.ledger.engine import process_batch
from huinong.ledger.types import (
    AccountState,
    PendingState,
    TransferFlags,
    TransferInput,
    TransferRecord,
)
from huinong.money import MAX_FEN
from tests.ledger.reference_model import LedgerModel, ModelAccount

F = TransferFlags
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
INSTITUTION = uuid.UUID(int=1)
LIMITS = ((False, False), (False, False), (True, False), (False, True))
AMOUNTS = st.sampled_from((1, 2, MAX_FEN // 2, MAX_FEN // 2 + 1, MAX_FEN - 1, MAX_FEN)) | (
    st.integers(1, MAX_FEN)
)
ITEMS = st.tuples(
    st.sampled_from(("plain", "pending", "post", "void")),
    st.integers(0, 3),  # debit account
    st.integers(1, 3),  # credit account, as an offset from the debit account
    AMOUNTS,
    st.sampled_from((F.none, F.none, F.balancing_debit, F.balancing_credit)),
    st.booleans(),  # amount omitted on a post / void
    st.integers(0, 9),  # which pending a post / void names; linked when 9
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(ITEMS, min_size=1, max_size=6), min_size=1, max_size=6))
def test_engine_agrees_with_the_model_near_the_limits(batches: list[list[tuple]]) -> None:
    ids = [uuid.UUID(int=100 + n) for n in range(4)]
    accounts = {i: AccountState(i, "CNY", *LIMITS[n], False) for n, i in enumerate(ids)}
    model = LedgerModel()
    for n, i in enumerate(ids):
        model.add_account(ModelAccount(i, "CNY", *LIMITS[n]))
    known: dict[uuid.UUID, TransferRecord] = {}
    states: dict[uuid.UUID, PendingState] = {}
    pending_ids: list[uuid.UUID] = []
    serial = 1000
    for number, specs in enumerate(batches):
        batch = []
        for kind, debit, offset, amount, balancing, omitted, target in specs:
            serial += 1
            flags = F.linked if target == 9 else F.none
            if kind in ("post", "void") and pending_ids:
                batch.append(
                    TransferInput(
                        id=uuid.UUID(int=serial),
                        pending_id=pending_ids[target % len(pending_ids)],
                        amount=None if omitted else amount,
                        flags=int(flags | (F.post_pending if kind == "post" else F.void_pending)),
                    )
                )
                continue
            if kind == "pending":
                flags |= F.pending
                pending_ids.append(uuid.UUID(int=serial))
            batch.append(
                TransferInput(
                    id=uuid.UUID(int=serial),
                    debit_account_id=ids[debit],
                    credit_account_id=ids[(debit + offset) % 4],
                    amount=amount,
                    ledger="CNY",
                    code=1,
                    flags=int(flags | balancing),
                )
            )
        now = NOW + timedelta(seconds=number)
        outcome = process_batch(
            institution_id=INSTITUTION,
            batch=batch,
            accounts=accounts,
            known_transfers=known,
            pending_states=states,
            now=now,
        )
        expected = model.create_transfers(batch, now)
        assert [(r.result.value, r.timestamp, r.amount) for r in outcome.results] == [
            (o.result, o.timestamp, o.amount) for o in expected
        ]
        known.update({record.id: record for record in outcome.created})
        states.update({state.pending_id: state for state in outcome.new_pendings})
        assert {i: a.balances() for i, a in accounts.items()} == model.balances()
