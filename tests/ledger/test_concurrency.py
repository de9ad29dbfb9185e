"""Concurrent transfers over real HTTP on PostgreSQL: no lost update, no broken limit.

A real uvicorn server runs the app on 127.0.0.1 in a background thread; 16 client threads,
each with its own keep-alive ``http.client`` connection, send a few thousand random requests
(single transfers, small batches, linked chains, pending transfers later posted or voided)
over six hot accounts, five of them with a limit flag. Then:

* every response is a 200 (so certainly no 5xx) with one known result code per item;
* a linked chain succeeded or failed as one;
* each account's four balances equal what the ``ok`` results add up to (no lost update);
* the limited accounts' statements, in the order the ledger applied the transfers, never show
  a negative balance (the order the timestamps give is the order of application);
* ``huinong.ledger.verify`` finds nothing wrong.

SQLite takes one writer at a time (``BEGIN IMMEDIATE``), so the test runs on PostgreSQL only.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from huinong.api.app import create_app
from huinong.config import Settings
from huinong.ledger.verify import verify
from tests.conftest import new_institution, staff_token

pytestmark = pytest.mark.slow

THREADS = 16
REQUESTS_PER_THREAD = 200
FUNDING = 60_000
MAX_AMOUNT = 50_000
SEED = int(os.environ.get("HUINONG_CONCURRENCY_SEED", "20240611"))
BALANCES = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
ITEM_RESULTS = {"ok", "exceeds_credits", "exceeds_debits", "linked_event_failed"}


@dataclass
class Server:
    host: str
    port: int
    token: str
    institution_id: uuid.UUID

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)


@pytest.fixture
def server(backend: str, database_url: str, factory: sessionmaker[Session]) -> Iterator[Server]:
    if backend != "postgresql":
        pytest.skip("concurrency over HTTP needs PostgreSQL (SQLite has one writer at a time)")
    institution = new_institution(factory, prefix="CONC")
    app = create_app(Settings(pending_sweep_interval_seconds=0), database_url=database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=300,
        lifespan="on",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Server("127.0.0.1", port, staff_token(factory, institution), institution.id)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        sock.close()
        app.state.engine.dispose()


def call(
    connection: http.client.HTTPConnection,
    server: Server,
    method: str,
    path: str,
    body: Any = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = str(uuid.uuid4())
    connection.request(method, "/api/v1" + path, body=payload, headers=headers)
    response = connection.getresponse()
    raw = response.read()
    try:
        content = json.loads(raw) if raw else None
    except ValueError:
        content = raw.decode("utf-8", "replace")
    return response.status, content


@dataclass
class Pending:
    id: str
    debit: str
    credit: str
    amount: int


@dataclass
class Sent:
    """One request as sent, with what came back."""

    items: list[dict[str, Any]]
    kind: str
    status: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def plain(rng: random.Random, accounts: list[str], **extra: Any) -> dict[str, Any]:
    debit, credit = rng.sample(accounts, 2)
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": rng.randint(1, MAX_AMOUNT),
        "ledger": "CNY",
        "code": 7,
        **extra,
    }


def client_thread(
    server: Server,
    accounts: list[str],
    index: int,
    pendings: dict[str, Pending],
    out: list[Sent],
    start: threading.Barrier,
) -> None:
    rng = random.Random(SEED * 1000 + index)
    connection = server.connect()
    open_pendings: list[Pending] = []
    start.wait()
    for _ in range(REQUESTS_PER_THREAD):
        roll = rng.random()
        if open_pendings and roll < 0.10:
            pending = open_pendings.pop(rng.randrange(len(open_pendings)))
            item: dict[str, Any] = {"id": str(uuid.uuid4()), "pending_id": pending.id}
            if rng.random() < 0.6:
                item["flags"] = ["post_pending"]
                if rng.random() < 0.5:
                    item["amount"] = rng.randint(1, pending.amount)
            else:
                item["flags"] = ["void_pending"]
            sent = Sent([item], "resolve")
        elif roll < 0.22:
            sent = Sent([plain(rng, accounts, flags=["pending"])], "pending")
        elif roll < 0.35:
            size = rng.randint(2, 3)
            chain = [plain(rng, accounts, flags=["linked"]) for _ in range(size - 1)]
            sent = Sent([*chain, plain(rng, accounts)], "chain")
        elif roll < 0.55:
            sent = Sent([plain(rng, accounts) for _ in range(rng.randint(2, 5))], "batch")
        else:
            sent = Sent([plain(rng, accounts)], "single")
        try:
            status, body = call(
                connection, server, "POST", "/ledger/transfers", {"transfers": sent.items}
            )
        except (OSError, http.client.HTTPException) as exc:
            sent.error = repr(exc)
            out.append(sent)
            connection.close()
            connection = server.connect()
            continue
        sent.status = status
        if status == 200 and isinstance(body, dict):
            sent.results = body["results"]
        else:
            sent.error = str(body)[:500]
        out.append(sent)
        if sent.kind == "pending" and sent.results and sent.results[0]["result"] == "ok":
            item = sent.items[0]
            pending = Pending(
                item["id"], item["debit_account_id"], item["credit_account_id"], item["amount"]
            )
            pendings[pending.id] = pending
            open_pendings.append(pending)
    connection.close()


def account_balances(connection: http.client.HTTPConnection, server: Server, account: str):
    status, body = call(connection, server, "GET", f"/ledger/accounts/{account}")
    assert status == 200, body
    return [body[name] for name in BALANCES]


def statement(
    connection: http.client.HTTPConnection, server: Server, account: str
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=500" + (f"&cursor={cursor}" if cursor else "")
        status, body = call(
            connection, server, "GET", f"/ledger/accounts/{account}/statement{query}"
        )
        assert status == 200, body
        lines.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return lines


def test_concurrent_transfers_lose_no_update(
    server: Server, factory: sessionmaker[Session]
) -> None:
    connection = server.connect()

    def open_account(name: str, **fields: Any) -> str:
        body = {"type": "liability", "code": 2011, "name": name, **fields}
        status, created = call(connection, server, "POST", "/ledger/accounts", body)
        assert status == 201, created
        return str(created["id"])

    source = open_account("capital (no limit)", type="equity", code=4001)
    customers = [
        open_account(f"customer {i}", debits_must_not_exceed_credits=True) for i in range(4)
    ]
    vault = open_account("vault", type="asset", code=1001, credits_must_not_exceed_debits=True)
    accounts = [source, *customers, vault]
    limited_debits = set(customers)
    # Fund first: the customers get credits, the vault gets debits (cash it can pay out).
    funding = [
        {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": FUNDING,
            "ledger": "CNY",
            "code": 1,
        }
        for debit, credit in [*((source, c) for c in customers), (vault, source)]
    ]
    status, body = call(connection, server, "POST", "/ledger/transfers", {"transfers": funding})
    assert status == 200 and [r["result"] for r in body["results"]] == ["ok"] * len(funding)
    initial = {a: account_balances(connection, server, a) for a in accounts}

    pendings: dict[str, Pending] = {}
    outputs: list[list[Sent]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS + 1)
    threads = [
        threading.Thread(
            target=client_thread,
            args=(server, accounts, i, pendings, outputs[i], start),
            daemon=True,
        )
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive(), "a client thread hung"
    elapsed = time.perf_counter() - began
    sent = [s for output in outputs for s in output]

    # Every request was answered, and never with a 5xx.
    assert len(sent) == THREADS * REQUESTS_PER_THREAD
    failures = [(s.status, s.error) for s in sent if s.error is not None or s.status != 200]
    assert not [f for f in failures if f[0] == 0 or f[0] >= 500], failures[:10]
    assert failures == [], failures[:10]

    # One known result per item, and linked chains all-or-nothing.
    counts: Counter[str] = Counter()
    for s in sent:
        assert [r["index"] for r in s.results] == list(range(len(s.items)))
        assert [r["id"] for r in s.results] == [item["id"] for item in s.items]
        codes = [r["result"] for r in s.results]
        counts.update(codes)
        if s.kind == "resolve":
            assert codes == ["ok"], (s.items, s.results)
        else:
            assert set(codes) <= ITEM_RESULTS, codes
        if s.kind == "chain":
            assert codes == ["ok"] * len(codes) or "ok" not in codes, codes
            if "ok" not in codes:
                assert sorted(c for c in codes if c != "linked_event_failed") in (
                    ["exceeds_credits"],
                    ["exceeds_debits"],
                ), codes
        elif s.kind != "resolve":
            assert "linked_event_failed" not in codes

    # The model: the funded balances plus every ``ok`` result.
    expected = {a: list(values) for a, values in initial.items()}
    dp, dpo, cp, cpo = range(4)
    for s in sent:
        for item, result in zip(s.items, s.results, strict=True):
            if result["result"] != "ok":
                continue
            flags = item.get("flags", [])
            if "post_pending" in flags or "void_pending" in flags:
                pending = pendings[item["pending_id"]]
                expected[pending.debit][dp] -= pending.amount
                expected[pending.credit][cp] -= pending.amount
                if "post_pending" in flags:
                    posted = result["amount"]
                    assert posted == item.get("amount", pending.amount)
                    expected[pending.debit][dpo] += posted
                    expected[pending.credit][cpo] += posted
                continue
            assert result["amount"] == item["amount"]
            pending_side = "pending" in flags
            expected[item["debit_account_id"]][dp if pending_side else dpo] += item["amount"]
            expected[item["credit_account_id"]][cp if pending_side else cpo] += item["amount"]

    final = {a: account_balances(connection, server, a) for a in accounts}
    assert final == expected

    # Both outcomes happened: the accounts were hot enough to hit their limits.
    items = sum(counts.values())
    limited = counts["exceeds_credits"] + counts["exceeds_debits"]
    assert counts["ok"] > items * 0.5, counts
    assert counts["exceeds_credits"] > items * 0.01, counts
    assert limited + counts["linked_event_failed"] + counts["ok"] == items

    # In the order the ledger applied them, no limited account ever went below zero.
    touching = Counter()
    for s in sent:
        for item, result in zip(s.items, s.results, strict=True):
            if result["result"] == "ok":
                if "pending_id" in item:
                    pending = pendings[item["pending_id"]]
                    touching.update((pending.debit, pending.credit))
                else:
                    touching.update((item["debit_account_id"], item["credit_account_id"]))
    for account in [*customers, vault]:
        lines = statement(connection, server, account)
        assert len(lines) == touching[account] + 1  # + the funding transfer
        assert lines[-1]["balance_after"] == (
            final[account][cpo] - final[account][dpo]
            if account in limited_debits
            else final[account][dpo] - final[account][cpo]
        )
        negative = [line for line in lines if line["balance_after"] < 0]
        assert negative == [], negative[:3]
    connection.close()

    with factory() as session:
        assert verify(session, institution_id=server.institution_id) == []
    print(
        f"\n{len(sent)} requests, {items} transfers in {elapsed:.1f}s "
        f"({len(sent) / elapsed:.0f} requests/s); results {dict(counts)}"
    )


DUPLICATE_TRANSFERS = 160


def duplicate_sender(
    server: Server,
    transfers: list[dict[str, Any]],
    index: int,
    out: list[Sent],
    start: threading.Barrier,
) -> None:
    """Send every transfer once more, in this thread's own order and batching."""
    rng = random.Random(SEED * 7919 + index)
    order = transfers[:]
    rng.shuffle(order)
    connection = server.connect()
    start.wait()
    position = 0
    while position < len(order):
        size = rng.randint(1, 4)
        sent = Sent(order[position : position + size], "duplicate")
        position += size
        try:
            status, body = call(
                connection, server, "POST", "/ledger/transfers", {"transfers": sent.items}
            )
        except (OSError, http.client.HTTPException) as exc:
            sent.error = repr(exc)
            connection.close()
            connection = server.connect()
        else:
            sent.status = status
            if status == 200 and isinstance(body, dict):
                sent.results = body["results"]
            else:
                sent.error = str(body)[:500]
        out.append(sent)
    connection.close()


def test_concurrent_retries_apply_each_transfer_once(
    server: Server, factory: sessionmaker[Session]
) -> None:
    """16 threads send the same transfers (same ids, fresh Idempotency-Keys) in different
    orders and batches: each id is applied at most once (``ok`` once, ``exists`` after), a
    failed one may succeed on a later try, and the balances count each applied id once."""
    connection = server.connect()

    def open_account(name: str, **fields: Any) -> str:
        body = {"type": "liability", "code": 2011, "name": name, **fields}
        status, created = call(connection, server, "POST", "/ledger/accounts", body)
        assert status == 201, created
        return str(created["id"])

    source = open_account("source")
    hot = [open_account(f"hot {i}", debits_must_not_exceed_credits=True) for i in range(4)]
    funding = [
        {
            "id": str(uuid.uuid4()),
            "debit_account_id": source,
            "credit_account_id": account,
            "amount": 30_000,
            "ledger": "CNY",
            "code": 1,
        }
        for account in hot
    ]
    status, body = call(connection, server, "POST", "/ledger/transfers", {"transfers": funding})
    assert status == 200 and {r["result"] for r in body["results"]} == {"ok"}
    rng = random.Random(SEED)
    transfers = [plain(rng, [source, *hot]) for _ in range(DUPLICATE_TRANSFERS)]
    for t in transfers:
        t["amount"] = rng.randint(1, 20_000)

    outputs: list[list[Sent]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(
            target=duplicate_sender,
            args=(server, transfers, i, outputs[i], start),
            daemon=True,
        )
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive(), "a client thread hung"
    sent = [s for output in outputs for s in output]
    failures = [(s.status, s.error) for s in sent if s.error is not None or s.status != 200]
    assert failures == [], failures[:10]

    by_id: dict[str, Counter[str]] = {t["id"]: Counter() for t in transfers}
    for s in sent:
        assert [r["id"] for r in s.results] == [item["id"] for item in s.items]
        for item, result in zip(s.items, s.results, strict=True):
            by_id[item["id"]][result["result"]] += 1
            if result["result"] in ("ok", "exists"):
                assert result["amount"] == item["amount"]
    applied = set()
    for transfer_id, seen in by_id.items():
        assert sum(seen.values()) == THREADS
        assert set(seen) <= {"ok", "exists", "exceeds_credits"}, seen
        assert seen["ok"] <= 1, (transfer_id, seen)
        if seen["ok"]:
            applied.add(transfer_id)
        else:
            assert seen["exists"] == 0, (transfer_id, seen)
    assert applied, "nothing was applied"

    expected = {a: [0, 0, 0, 0] for a in [source, *hot]}
    for t in funding + [t for t in transfers if t["id"] in applied]:
        expected[t["debit_account_id"]][1] += t["amount"]
        expected[t["credit_account_id"]][3] += t["amount"]
    assert {a: account_balances(connection, server, a) for a in expected} == expected
    for t in transfers:
        status, stored = call(connection, server, "GET", f"/ledger/transfers/{t['id']}")
        assert status == (200 if t["id"] in applied else 404), stored
    connection.close()
    with factory() as session:
        assert verify(session, institution_id=server.institution_id) == []
