"""Helpers of the API tests: a bank (an isolated institution) driven over HTTP through the ASGI
app, problem+json assertions, and a database snapshot to prove that a refused request wrote
nothing.

The ``client`` fixture is overridden here only to answer unexpected exceptions the way a real
server does (a 500 response) instead of re-raising them into the test: "never a 500" is then
an assertion on the status, as a client would see it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import transaction
from huinong.idempotency import IdempotencyRecord
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution, Office
from huinong.ledger import service as ledger
from huinong.ledger.models import Account, PendingTransfer, Transfer
from huinong.parties.models import Customer
from huinong.parties.rules import resident_id_check_char
from huinong.payments.models import Payment
from huinong.security.identities.senders import OutboxSender
from huinong.security.principals import STAFF_ROLES, Role
from tests.conftest import staff_token

API = "/api/v1"
PROBLEM = "application/problem+json"
VAULT = 1001
CUSTOMER_DEPOSITS = 2011
PAID_IN_CAPITAL = 4001
FEE_INCOME = 6021

_serial = itertools.count(1)
T = TypeVar("T")


@contextlib.contextmanager
def api_client(database_url: str) -> Iterator[TestClient]:
    from huinong.api.app import create_app
    from huinong.config import Settings

    app = create_app(Settings(pending_sweep_interval_seconds=0), database_url=database_url)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.engine.dispose()


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with api_client(database_url) as test_client:
        yield test_client


def resident_id(serial: int | None = None) -> str:
    """A valid GB 11643 number, unique within the test session."""
    n = next(_serial) if serial is None else serial
    born = date(1950, 1, 1) + timedelta(days=n % 20000)
    body = f"110105{born:%Y%m%d}{n % 1000:03d}"
    return body + resident_id_check_char(body)


def new_key() -> str:
    return str(uuid.uuid4())


def fields_of(body: dict[str, Any]) -> set[str]:
    named = {body.get("field")} | {e.get("field") for e in body.get("errors", [])}
    return {f for f in named if f}


def assert_problem(
    response: Response,
    status: int | None = None,
    code: str | None = None,
    field: str | None = None,
    *,
    needs_field: bool = True,
) -> dict[str, Any]:
    """A 4xx RFC 9457 answer with our stable ``code`` and, when asked, the field named."""
    assert response.status_code < 500, (response.status_code, response.text)
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    else:
        assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body.get("code"), str) and body["code"], body
    assert body["type"].endswith(body["code"])
    if code is not None:
        assert body["code"] == code, body
    if needs_field or field is not None:
        assert fields_of(body), f"no field named: {body}"
    if field is not None:
        assert field in fields_of(body), body
    return body


@dataclass
class Bank:
    """One institution as one of its staff users sees it over the API (by default a user who
    holds every staff role; ``as_role`` gives the view of a user with only the roles named)."""

    client: TestClient
    factory: sessionmaker[Session]
    code: str
    id: uuid.UUID
    token: str = ""
    username: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def as_role(self, *roles: Role | str) -> Bank:
        """The same bank seen by a new staff user holding exactly ``roles``."""
        username = f"u{next(_serial):05d}"
        token = staff_token(self.factory, self._institution(), roles, username=username)
        return replace(self, token=token, username=username)

    def _institution(self) -> Institution:
        with self.factory() as session:
            return institutions.get_institution(session, institution_id=self.id)

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(API + path, headers=self.headers, params=params or None)

    def delete(self, path: str) -> Response:
        return self.client.delete(API + path, headers=self.headers)

    def put(self, path: str, body: Any) -> Response:
        return self.client.put(API + path, headers=self.headers, json=body)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response:
        sent = dict(self.headers)
        if key is not None:
            sent["Idempotency-Key"] = key
        if content is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if content is not None:
            return self.client.post(API + path, headers=sent, content=content)
        return self.client.post(API + path, headers=sent, json=body)

    def ok(self, response: Response, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    # ------------------------------------------------------------------ customers & accounts

    def customer(self, name: str = "张三", **fields: Any) -> dict[str, Any]:
        body = {"kind": "individual", "name": name, "id_number": resident_id(), **fields}
        return self.ok(self.post("/customers", body), 201)  # type: ignore[no-any-return]

    def deposit_account(self, customer_id: str | None = None) -> dict[str, Any]:
        customer_id = customer_id or self.customer()["id"]
        response = self.post("/deposit-accounts", {"customer_id": customer_id})
        return self.ok(response, 201)  # type: ignore[no-any-return]

    def account(self, account_number: str) -> dict[str, Any]:
        return self.ok(self.get(f"/deposit-accounts/{account_number}"))  # type: ignore[no-any-return]

    def balance(self, account_number: str) -> int:
        return int(self.account(account_number)["balance"])

    def deposit(self, account_number: str, amount: int) -> dict[str, Any]:
        body = {"account_number": account_number, "amount": amount}
        return self.ok(self.post("/cash-deposits", body, key=new_key()), 201)  # type: ignore[no-any-return]

    def funded_account(self, amount: int = 10_000) -> dict[str, Any]:
        account = self.deposit_account()
        if amount:
            self.deposit(account["account_number"], amount)
        return self.account(account["account_number"])

    # ------------------------------------------------------------------ ledger

    def system_account(self, code: int) -> dict[str, Any]:
        items = self.ok(self.get("/ledger/accounts", code=code))["items"]
        chart = [a for a in items if a["account_number"] is None and a["owner_id"] is None]
        assert len(chart) == 1, items
        return chart[0]  # type: ignore[no-any-return]

    def ledger_account(self, account_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/ledger/accounts/{account_id}"))  # type: ignore[no-any-return]

    def ledger_balance(self, account_id: str) -> int:
        return int(self.ok(self.get(f"/ledger/accounts/{account_id}/balance"))["balance"])

    def open_ledger_account(self, **fields: Any) -> dict[str, Any]:
        body = {"type": "liability", "code": 2011, "name": "test account", **fields}
        return self.ok(self.post("/ledger/accounts", body), 201)  # type: ignore[no-any-return]

    def transfers(self, *items: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
        response = self.post("/ledger/transfers", {"transfers": list(items)}, key=key or new_key())
        return self.ok(response)["results"]  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.factory, self.id)


def transfer(debit: str, credit: str, amount: int | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "ledger": "CNY",
        "code": 1,
        **fields,
    }
    if amount is not None:
        body["amount"] = amount
    return body


def snapshot(factory: sessionmaker[Session], institution_id: uuid.UUID) -> dict[str, Any]:
    """Everything an institution has written: the proof that a refused request wrote nothing."""

    def count(model: Any) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.institution_id == institution_id)
            )
            or 0
        )

    with factory() as session:
        accounts = session.execute(
            select(
                Account.id,
                Account.debits_pending,
                Account.debits_posted,
                Account.credits_pending,
                Account.credits_posted,
                Account.closed,
            )
            .where(Account.institution_id == institution_id)
            .order_by(Account.id)
        ).all()
        return {
            "accounts": [tuple(row) for row in accounts],
            "transfers": count(Transfer),
            "pendings": count(PendingTransfer),
            "payments": count(Payment),
            "idempotency_keys": count(IdempotencyRecord),
            "customers": count(Customer),
            "offices": count(Office),
        }


def new_bank(client: TestClient, factory: sessionmaker[Session], prefix: str = "API") -> Bank:
    """A fresh institution (created the platform's way, as ``huinong institution create``
    does) seen by a staff user holding every staff role."""
    code = f"{prefix}{next(_serial):04d}{uuid.uuid4().hex[:6].upper()}"
    with transaction(factory) as session:
        institution = institutions.create_institution(session, code=code, name=f"测试农商行 {code}")
        ledger.create_chart_of_accounts(session, institution_id=institution.id, ledger="CNY")
    return Bank(client, factory, code, institution.id).as_role(*sorted(STAFF_ROLES))


@pytest.fixture
def outbox(client: TestClient) -> OutboxSender:
    """One-time codes the app sends, kept for the test to read back."""
    sender = OutboxSender()
    client.app.state.otp_sender = sender  # type: ignore[attr-defined]
    return sender


@pytest.fixture
def bank(client: TestClient, factory: sessionmaker[Session]) -> Bank:
    return new_bank(client, factory)


@pytest.fixture
def other_bank(client: TestClient, factory: sessionmaker[Session]) -> Bank:
    return new_bank(client, factory, prefix="OTH")


def race(n: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(i)`` in ``n`` threads released together; results in thread order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = call(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
