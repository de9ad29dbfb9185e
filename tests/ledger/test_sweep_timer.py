"""The server voids expired pending transfers on its own, on a timer."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient

from huinong import clock
from huinong.api.app import create_app
from huinong.config import Settings
from huinong.db import transaction
from huinong.ids import uuid7
from huinong.ledger import service
from huinong.ledger.models import PendingTransfer
from huinong.ledger.types import TransferFlags, TransferInput
from tests.ledger.test_transfers import open_accounts


def test_server_timer_voids_expired_pendings(factory, institution, database_url):
    debit, credit = open_accounts(factory, institution)
    pending_id = uuid7()
    with transaction(factory) as session:
        results = service.create_transfers(
            session,
            institution_id=institution.id,
            batch=[
                TransferInput(
                    id=pending_id,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=900,
                    ledger="CNY",
                    code=1,
                    flags=TransferFlags.pending,
                    timeout=30,
                )
            ],
        )
    assert results[0].result.value == "ok"
    app = create_app(Settings(pending_sweep_interval_seconds=0.05), database_url=database_url)
    with clock.frozen(clock.now() + timedelta(minutes=5)), TestClient(app):
        deadline = time.monotonic() + 10
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
            with factory() as session:
                status = session.get_one(PendingTransfer, pending_id).status
    app.state.engine.dispose()
    assert status == "expired"
    with factory() as session:
        balance = service.balance(session, institution_id=institution.id, account_id=debit)
    assert balance.debits_pending == 0
