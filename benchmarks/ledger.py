"""Ledger throughput: ``create_transfers`` through the service and over HTTP, next to a raw-SQL
baseline on the same database, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ledger.py            # full run (a few minutes)
    .venv/bin/python benchmarks/ledger.py --quick    # a short smoke run

Workload: one institution with a few thousand customer accounts (liabilities, no limit
flags) opened through the service; each transfer moves a random amount between a random pair
of them. Batches of 1, 100 and 8,190 transfers.

* **service**: ``ledger.service.create_transfers`` in one ``huinong.db.transaction`` per
  batch, in this process. Timed from the ready batch to the commit.
* **HTTP**: a real uvicorn server (``uvicorn huinong.api.asgi:app``, what ``huinong serve``
  runs) in a subprocess on 127.0.0.1; client processes keep one HTTP/1.1 connection each (a
  minimal socket client, so that the load generator takes little of the two cores) and POST
  ``/api/v1/ledger/transfers`` with an administrator's bearer token and a fresh
  ``Idempotency-Key`` per request (so authentication, authorisation and the audit record are
  in every request's cost). Latency is per request, measured by the client.
* **baseline**: what the database does with no rules at all, in this process: the same batch
  stored with one INSERT and the balances changed with one set-based UPDATE, no locks, no
  checks, no idempotency record. On PostgreSQL ``INSERT … SELECT FROM unnest(…)`` and
  ``UPDATE … FROM (… unnest(…) GROUP BY id)``; on SQLite, which has no arrays, an
  ``executemany`` INSERT and an ``executemany`` UPDATE of the per-account sums (the closest
  equivalent).

Service and baseline alternate in rounds so that a growing table or a background checkpoint
weighs on both alike. Every item must answer ``ok`` and the ledger must verify clean at the end:
a fast wrong answer does not count.

The PostgreSQL database (``huinong_bench`` by default) is created when absent and dropped and
re-created at every run, so runs start alike; its name must contain "bench".
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench_host import machine
from bench_postgres import PG_INSERT, PG_UPDATE, TRANSFER_COLUMNS, connect_args, prepare_postgres
from huinong.db import make_engine, make_session_factory, transaction
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.ledger.types import AccountType, CreateTransferResult, TransferInput
from huinong.ledger.verify import verify
from huinong.migrations import upgrade
from huinong.security.identities import sessions, staff_users

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/huinong_bench"
BATCHES = (1, 100, 8190)
ACCOUNTS = 4000
APP = "huinong.api.asgi:app"  # what ``huinong serve`` runs
UVICORN_OPTIONS = ["--http", "httptools", "--loop", "uvloop"]
HOT_ACCOUNTS = 10
OK = b'"result":"ok"'

# Targets for this 2-core machine (PostgreSQL and the clients share it).
TARGET_BATCH_RATE = 30_000  # transfers/s, service, batches of 8,190, PostgreSQL
TARGET_BATCH_RATIO = 0.7  # of the raw baseline
TARGET_HTTP_RATE = 500  # single transfers/s over HTTP
TARGET_HTTP_P99_MS = 50.0

console = Console(width=max(150, shutil.get_terminal_size().columns))


@dataclass
class Row:
    backend: str
    batch: int
    path: str
    rate: float
    baseline: float | None = None
    p50: float | None = None
    p99: float | None = None
    target: str = ""
    passed: bool | None = None


# --------------------------------------------------------------------------- databases


@dataclass
class Workload:
    url: str
    backend: str
    factory: sessionmaker[Session]
    institution_id: uuid.UUID
    institution_code: str
    accounts: list[uuid.UUID]


def open_accounts(url: str, backend: str, count: int) -> Workload:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    code = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    with transaction(factory) as session:
        institution = institutions.create_institution(session, code=code, name="基准测试银行")
        ledger.create_chart_of_accounts(session, institution_id=institution.id, ledger="CNY")
        accounts = [
            ledger.create_account(
                session,
                institution_id=institution.id,
                ledger="CNY",
                type=AccountType.liability,
                code=2011,
                name=f"农户存款 {i}",
                with_account_number=True,
            ).id
            for i in range(count)
        ]
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return Workload(url, backend, factory, institution.id, code, accounts)


def access_token(work: Workload) -> str:
    """A fresh administrator of the benchmark institution, signed in (tokens are short-lived,
    so one per measurement)."""
    username = f"bench{uuid.uuid4().hex[:8]}"
    password = staff_users.generate_password()
    with transaction(work.factory) as session:
        staff_users.create_staff_user(
            session,
            institution_id=work.institution_id,
            username=username,
            display_name="基准测试",
            roles=["admin"],
            password=password,
            must_change_password=False,
        )
    with transaction(work.factory) as session:
        signed_in = sessions.sign_in_staff(
            session, institution_code=work.institution_code, username=username, password=password
        )
    assert isinstance(signed_in, sessions.TokenPair)
    return signed_in.access_token


def make_batch(rng: random.Random, accounts: list[uuid.UUID], size: int) -> list[TransferInput]:
    batch = []
    for _ in range(size):
        debit, credit = rng.sample(accounts, 2)
        batch.append(
            TransferInput(
                id=uuid7(),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=rng.randint(1, 500_000),
                ledger="CNY",
                code=1,
            )
        )
    return batch


# --------------------------------------------------------------------------- service


def run_service(work: Workload, batch: list[TransferInput]) -> float:
    started = time.perf_counter()
    with transaction(work.factory) as session:
        results = ledger.create_transfers(session, institution_id=work.institution_id, batch=batch)
    elapsed = time.perf_counter() - started
    bad = [r for r in results if r.result is not CreateTransferResult.ok]
    if len(results) != len(batch) or bad:
        raise SystemExit(f"service answered {bad[0].result if bad else 'too few results'}")
    return elapsed


# --------------------------------------------------------------------------- baselines

_SQLITE_INSERT = f"INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_SQLITE_UPDATE = (
    "UPDATE ledger_accounts SET debits_posted = debits_posted + ?, "
    "credits_posted = credits_posted + ? WHERE id = ?"
)


class PostgresBaseline:
    def __init__(self, work: Workload) -> None:
        self.connection = psycopg.connect(**connect_args(make_url(work.url)))
        self.institution_id = work.institution_id

    def __call__(self, batch: list[TransferInput]) -> float:
        started = time.perf_counter()
        now = datetime.now(UTC)
        n = len(batch)
        amounts = [t.amount for t in batch]
        debits = [t.debit_account_id for t in batch]
        credits = [t.credit_account_id for t in batch]
        with self.connection.transaction():
            self.connection.execute(
                PG_INSERT,
                {
                    "id": [t.id for t in batch],
                    "institution_id": [self.institution_id] * n,
                    "debit": debits,
                    "credit": credits,
                    "amount": amounts,
                    "ledger": [t.ledger for t in batch],
                    "code": [t.code for t in batch],
                    "flags": [t.flags for t in batch],
                    "pending_id": [None] * n,
                    "timeout": [t.timeout for t in batch],
                    "reference": [t.reference for t in batch],
                    "metadata": [None] * n,
                    "timestamp": [now + timedelta(microseconds=i) for i in range(n)],
                },
            )
            self.connection.execute(
                PG_UPDATE,
                {"account": debits + credits, "dr": amounts + [0] * n, "cr": [0] * n + amounts},
            )
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


class SqliteBaseline:
    """The app's own connection settings (WAL, synchronous=NORMAL, foreign keys, BEGIN
    IMMEDIATE) and its storage formats (UUIDs as 32 hex digits, naive UTC text timestamps)."""

    def __init__(self, work: Workload) -> None:
        path = make_url(work.url).database
        assert path
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.connection.execute("PRAGMA busy_timeout=60000")
        self.institution = work.institution_id.hex

    def __call__(self, batch: list[TransferInput]) -> float:
        started = time.perf_counter()
        now = datetime.now(UTC).replace(tzinfo=None)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        rows = []
        for i, t in enumerate(batch):
            assert t.debit_account_id and t.credit_account_id and t.amount
            debit, credit = t.debit_account_id.hex, t.credit_account_id.hex
            sums[debit][0] += t.amount
            sums[credit][1] += t.amount
            stamp = (now + timedelta(microseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            rows.append(
                (t.id.hex, self.institution, debit, credit, t.amount, t.ledger, t.code, t.flags,
                 None, t.timeout, t.reference, None, stamp)
            )  # fmt: skip
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.executemany(_SQLITE_INSERT, rows)
            cursor.executemany(_SQLITE_UPDATE, [(d, c, a) for a, (d, c) in sums.items()])
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def measure_in_process(
    work: Workload, size: int, seconds: float, baseline: Any, rng: random.Random, rounds: int = 2
) -> tuple[float, float]:
    """Transfers/s of the service and of the baseline, alternating in ``rounds`` rounds."""
    totals = {"service": [0, 0.0], "baseline": [0, 0.0]}
    runners = {"service": lambda b: run_service(work, b), "baseline": baseline}
    for runner in runners.values():  # warm up: caches, prepared statements
        runner(make_batch(rng, work.accounts, size))
    for _ in range(rounds):
        for name, runner in runners.items():
            spent, batches = 0.0, 0
            while spent < seconds / rounds or batches < 2:
                batch = make_batch(rng, work.accounts, size)
                spent += runner(batch)
                batches += 1
            totals[name][0] += batches * size
            totals[name][1] += spent
    return (
        totals["service"][0] / totals["service"][1],
        totals["baseline"][0] / totals["baseline"][1],
    )


# --------------------------------------------------------------------------- HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uvicorn(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", APP,
        "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", *UVICORN_OPTIONS,
    ]  # fmt: skip


class Server:
    """The API served by ``workers`` uvicorn processes (``uvicorn huinong.api.asgi:app``),
    each on a port of its own on 127.0.0.1, with the client connections spread evenly over
    them as a balancer would. One uvicorn with ``--workers`` lets the kernel hand each
    kept-alive connection to whichever worker accepts it first, for good: with a handful of
    connections one worker often holds most of them, and the figures then measure that split
    rather than the server."""

    def __init__(self, url: str, workers: int) -> None:
        self.ports = [free_port() for _ in range(workers)]
        env = {**os.environ, "HUINONG_DATABASE_URL": url, "HUINONG_LOG_LEVEL": "WARNING"}
        self.processes = [subprocess.Popen(_uvicorn(port), env=env) for port in self.ports]
        deadline = time.monotonic() + 60
        waiting = list(self.ports)
        while waiting and time.monotonic() < deadline:
            if any(process.poll() is not None for process in self.processes):
                self.stop()
                raise SystemExit("the server exited at start")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", waiting[0], timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    waiting.pop(0)
                connection.close()
            except OSError:
                time.sleep(0.2)
        if waiting:
            self.stop()
            raise SystemExit("the server did not come up in 60 s")

    def port_for(self, client: int) -> int:
        return self.ports[client % len(self.ports)]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class ClientTask:
    port: int
    access_token: str
    accounts: list[str]
    size: int
    start_at: float  # time.time() when measuring starts (requests before it warm up)
    stop_at: float
    seed: int


class KeepAliveClient:
    """HTTP/1.1 over one kept-alive socket, with nothing but what the benchmark needs: a
    load generator sharing two cores with the server must cost as little as it can (the
    standard library's client parses every response header with the email parser)."""

    def __init__(self, port: int, access_token: str) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = (
            f"POST /api/v1/ledger/transfers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {access_token}\r\n"
        ).encode()

    def post(self, body: bytes, idempotency_key: str) -> tuple[int, bytes]:
        self.socket.sendall(
            b"%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (self.head, idempotency_key.encode(), len(body), body)
        )
        received = b""
        while (end := received.find(b"\r\n\r\n")) < 0:
            received += self._recv()
        head, payload = received[:end], received[end + 4 :]
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            raise SystemExit(f"response without Content-Length: {head[:200]!r}")
        while len(payload) < int(length.group(1)):
            payload += self._recv()
        return int(head[9:12]), payload

    def _recv(self) -> bytes:
        chunk = self.socket.recv(262_144)
        if not chunk:
            raise SystemExit("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.socket.close()


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def http_client(task: ClientTask) -> tuple[int, float, list[float], str | None]:
    """One keep-alive connection in a closed loop. Returns (transfers ok, measured seconds,
    latencies in ms of the measured requests, first error)."""
    rng = random.Random(task.seed)
    client = KeepAliveClient(task.port, task.access_token)
    transfers, latencies = 0, []
    first = last = None
    while True:
        items = []
        for _ in range(task.size):
            debit, credit = rng.sample(task.accounts, 2)
            items.append(
                {
                    "id": str(uuid7()),
                    "debit_account_id": debit,
                    "credit_account_id": credit,
                    "amount": rng.randint(1, 500_000),
                    "ledger": "CNY",
                    "code": 1,
                }
            )
        body = orjson.dumps({"transfers": items})
        sent_wall = time.time()
        if sent_wall >= task.stop_at:
            break
        sent = time.perf_counter()
        status, payload = client.post(body, uuid.uuid4().hex)
        done = time.perf_counter()
        if status != 200 or payload.count(OK) != task.size:
            client.close()
            return transfers, 0.0, latencies, f"HTTP {status}: {payload[:300]!r}"
        if sent_wall >= task.start_at:
            first = sent if first is None else first
            last = done
            transfers += task.size
            latencies.append((done - sent) * 1000)
    client.close()
    measured = (last - first) if first is not None and last is not None else 0.0
    return transfers, measured, latencies, None


def measure_http(
    pool: ProcessPoolExecutor,
    server: Server,
    work: Workload,
    size: int,
    clients: int,
    seconds: float,
    accounts: list[uuid.UUID] | None = None,
) -> tuple[float, float, float]:
    """Transfers/s, p50 and p99 latency (ms) with ``clients`` connections in a closed loop."""
    names = [str(a) for a in (accounts or work.accounts)]
    warmup = 1.5 if size < 8190 else 3.0
    start_at = time.time() + warmup
    stop_at = start_at + seconds
    token = access_token(work)
    tasks = [
        ClientTask(server.port_for(seed), token, names, size, start_at, stop_at, seed)
        for seed in range(clients)
    ]
    outcomes = list(pool.map(http_client, tasks))
    errors = [e for *_, e in outcomes if e]
    if errors:
        raise SystemExit(f"HTTP client failed: {errors[0]}")
    transfers = sum(o[0] for o in outcomes)
    window = max(o[1] for o in outcomes)
    latencies = sorted(latency for o in outcomes for latency in o[2])
    if not latencies or window <= 0:
        raise SystemExit("HTTP client measured nothing; raise the duration")
    return transfers / window, _percentile(latencies, 50), _percentile(latencies, 99)


def _percentile(ordered: list[float], p: float) -> float:
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --------------------------------------------------------------------------- report


def render(rows: list[Row], args: argparse.Namespace) -> Table:
    table = Table(
        title="Ledger create_transfers throughput (transfers/s)",
        caption=(
            f"{machine()}, PostgreSQL and clients on the same host; "
            f"{args.accounts:,} accounts, random pairs, no limit flags; "
            f"HTTP: {args.workers} uvicorn processes ({' '.join(UVICORN_OPTIONS)}), "
            f"{args.clients} keep-alive connections "
            "(2 for batches of 8,190), p50/p99 per request. "
            "Baseline = one INSERT + one set-based balance UPDATE, no checks: "
            "unnest arrays on PostgreSQL; on SQLite executemany INSERT + executemany UPDATE "
            "(closest equivalent, no arrays). ratio = path / baseline. "
            f"Load average (1 min) at start {args.load[0]:.2f}, at end {os.getloadavg()[0]:.2f}."
        ),
        caption_justify="left",
    )
    for name, justify in (
        ("backend", "left"),
        ("batch", "right"),
        ("path", "left"),
        ("transfers/s", "right"),
        ("baseline/s", "right"),
        ("ratio", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("target", "left"),
        ("pass", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.backend,
            f"{r.batch:,}",
            r.path,
            f"{r.rate:,.0f}",
            f"{r.baseline:,.0f}" if r.baseline else "",
            f"{r.rate / r.baseline:.2f}" if r.baseline else "",
            f"{r.p50:.1f}" if r.p50 is not None else "",
            f"{r.p99:.1f}" if r.p99 is not None else "",
            r.target,
            "" if r.passed is None else ("pass" if r.passed else "[bold red]MISS[/]"),
        )
    return table


# --------------------------------------------------------------------------- main


def bench_backend(
    backend: str, url: str, args: argparse.Namespace, pool: ProcessPoolExecutor
) -> list[Row]:
    rows: list[Row] = []
    rng = random.Random(7)
    console.log(f"{backend}: opening {args.accounts:,} accounts")
    work = open_accounts(url, backend, args.accounts)
    baseline = PostgresBaseline(work) if backend == "postgresql" else SqliteBaseline(work)
    baselines: dict[int, float] = {}
    try:
        for size in BATCHES:
            console.log(f"{backend}: service and baseline, batches of {size:,}")
            service_rate, base_rate = measure_in_process(work, size, args.seconds, baseline, rng)
            baselines[size] = base_rate
            row = Row(backend, size, "service", service_rate, base_rate)
            if backend == "postgresql" and size == 8190:
                row.target = f">= {TARGET_BATCH_RATE:,}/s and >= {TARGET_BATCH_RATIO} x baseline"
                row.passed = (
                    service_rate >= TARGET_BATCH_RATE
                    and service_rate >= TARGET_BATCH_RATIO * base_rate
                )
            rows.append(row)
            rows.append(Row(backend, size, "baseline (raw SQL)", base_rate))
    finally:
        baseline.close()
    if args.no_http:
        return rows
    console.log(f"{backend}: starting uvicorn with {args.workers} worker(s)")
    server = Server(url, args.workers)
    try:
        for size in BATCHES:
            clients = args.clients if size < 8190 else 2
            console.log(f"{backend}: HTTP, batches of {size:,}, {clients} connections")
            rate, p50, p99 = measure_http(pool, server, work, size, clients, args.http_seconds)
            row = Row(backend, size, "HTTP", rate, baselines[size], p50, p99)
            if size == 1:
                row.target = f">= {TARGET_HTTP_RATE}/s, p99 <= {TARGET_HTTP_P99_MS:.0f} ms"
                row.passed = rate >= TARGET_HTTP_RATE and p99 <= TARGET_HTTP_P99_MS
            rows.insert(rows.index(next(r for r in rows if r.batch == size)) + 1, row)
        if args.hot and backend == "postgresql":
            hot = work.accounts[:HOT_ACCOUNTS]
            console.log(f"{backend}: HTTP, single transfers among {HOT_ACCOUNTS} hot accounts")
            rate, p50, p99 = measure_http(
                pool, server, work, 1, args.clients, args.http_seconds, accounts=hot
            )
            rows.append(Row(backend, 1, f"HTTP, {HOT_ACCOUNTS} hot accounts", rate, None, p50, p99))
    finally:
        server.stop()
    console.log(f"{backend}: verifying the ledger")
    with work.factory() as session:
        problems = verify(session, institution_id=work.institution_id)
    if problems:
        raise SystemExit(f"{backend}: ledger verify failed: {problems[:5]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells (a smoke run)")
    parser.add_argument("--postgres-url", default=os.environ.get("HUINONG_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-hot", dest="hot", action="store_false")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=8, help="HTTP connections")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    args = parser.parse_args()
    args.seconds = 1.0 if args.quick else 6.0  # per cell, service and baseline each
    args.http_seconds = 1.5 if args.quick else 6.0
    started = time.monotonic()
    args.load = os.getloadavg()
    if args.load[0] > 0.5:
        console.log(
            f"[yellow]load average {args.load[0]:.2f}: other processes are busy on this "
            "machine, so the figures will be low[/]"
        )
    rows: list[Row] = []
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=args.clients, mp_context=context) as pool,
        tempfile.TemporaryDirectory(prefix="huinong-bench-") as tmp,
    ):
        list(pool.map(_noop_task, range(args.clients)))  # start the clients before timing
        if not args.no_sqlite:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            rows += bench_backend("sqlite", url, args, pool)
        if not args.no_postgres:
            url = args.postgres_url or DEFAULT_POSTGRES
            prepare_postgres(url)
            rows += bench_backend("postgresql", url, args, pool)
    console.print(render(rows, args))
    console.print(f"ledger verify clean; whole run {time.monotonic() - started:.0f} s")


def _noop_task(_: int) -> None:
    time.sleep(0.2)


if __name__ == "__main__":
    main()
