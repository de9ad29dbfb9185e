"""Subsidy disbursement: a 100,000-row batch validated and disbursed on PostgreSQL, next to a
raw-SQL baseline on the same database in the same run.

    .venv/bin/python benchmarks/subsidy.py             # 100,000 rows on PostgreSQL
    .venv/bin/python benchmarks/subsidy.py --quick     # 10,000 rows (a smoke run)
    .venv/bin/python benchmarks/subsidy.py --sqlite    # SQLite as well

Workload: one institution with N individual customers, each with a deposit account, and a
government payer (a county agriculture bureau) whose deposit account holds exactly the batch
total. The batch file is a UTF-8 CSV of N rows (name, ID number, account number, amount in
yuan, subsidy type, year); one row in ten leaves the account blank, so it goes to suspense.

Setup (not timed) writes the customers and accounts set-wise, as the services would write
them — the ID numbers sealed and blind-indexed under the institution's data key, account
numbers from the institution's serial with a Luhn digit, the serial advanced past them —
because opening 100,000 accounts one by one through the services measures nothing this
benchmark is about.

Timed phases, each through the service as the API and CLI run it:

* **validate**: ``subsidies.importing.import_batch`` in one transaction: parse the file, the
  pure row checks, the set-wise lookups (customers by blind index, accounts by number,
  earlier batches by person, type and year), and storing every row with its ID number
  encrypted.
* **disburse**: ``subsidies.disbursement.run_disbursement`` after a maker submits and a
  different checker approves (``subsidies.approval``, not timed): chunks of 2,000 rows, one
  transaction and one ``ledger.create_transfers`` batch each, an audit record per chunk.

Baselines (PostgreSQL only), as in ``benchmarks/ledger.py``: what the database does with no
rules at all, over psycopg on its own connection, run right after the measured phases on the
same database (so a table grown by the measured phases, or its autovacuum, weighs on the
baseline, not on the service: the ratio is not flattered):

* **lookup baseline** (next to validate): the bare customer lookup — one
  ``SELECT … FROM customers WHERE institution_id = … AND id_number_index = ANY(array)`` of the
  N blind indexes, all rows fetched. The blind indexes are computed before the clock starts;
  no parsing, no row checks, no account or earlier-batch lookups, nothing stored.
* **transfer baseline** (next to disburse): the same N payer -> beneficiary transfers (same
  amounts, same codes 301/302, one row in ten to a stand-in for suspense) stored with one
  ``INSERT INTO ledger_transfers … SELECT FROM unnest(…)`` and the balances changed with one
  set-based ``UPDATE ledger_accounts … FROM (… unnest(…) GROUP BY id)``, in one transaction:
  no validation, no chunks, no row statuses, no audit, no locks. (The schema's own foreign
  keys, CHECK constraints and indexes apply to it, as to the service.)

The baseline's transfers go to *fresh* accounts of the same institution (a second deposit
account of the bureau, funded through ``payments.cash_deposit`` before the clock starts, and
one new account per beneficiary plus one standing in for suspense, written set-wise in setup),
so the measured batch's check is undisturbed. They are stored exactly as the ledger stores
transfers (same columns, types, ledger and flags) and they balance, so the final
``ledger verify`` runs over the *whole database*, baseline included, rather than over the
measured institution only: a baseline that wrote an inconsistent ledger would fail the run
too. The baseline's payer must end at zero and every fresh account at its amount.

The run then checks the result (not timed): every row paid or in suspense, the payer's debit
equal to paid + suspense, the beneficiaries' balances, and ``ledger verify`` clean. A fast
wrong answer does not count.

The PostgreSQL database (``huinong_bench`` by default) is dropped and re-created at every
run; its name must contain "bench".
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench_host import machine
from bench_postgres import PG_INSERT, PG_UPDATE, connect_args, prepare_postgres
from huinong import clock
from huinong.db import make_engine, make_session_factory, transaction
from huinong.ids import luhn_check_digit, uuid7
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account, AccountNumberSequence
from huinong.ledger.types import AccountType
from huinong.ledger.verify import verify
from huinong.migrations import upgrade
from huinong.parties import service as parties
from huinong.parties.models import Customer, CustomerKind
from huinong.parties.rules import resident_id_check_char, uscc_check_char
from huinong.payments import service as payments
from huinong.payments.codes import TransferCode
from huinong.payments.service import DEPOSIT_ACCOUNT_NAME
from huinong.payments.subsidies import approval, disbursement, importing, reporting
from huinong.security.personal_data import service as personal_data

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/huinong_bench"
ROWS = 100_000
CHUNK = 2000
TARGET_SECONDS = 60.0  # validate + disburse, PostgreSQL, this machine
SUSPENSE_EVERY = 10
TYPES = ("耕地地力保护补贴", "种粮补贴", "农机购置补贴", "生态补偿")
MAKER = uuid.UUID("00000000-0000-7000-8000-0000000000aa")
CHECKER = uuid.UUID("00000000-0000-7000-8000-0000000000bb")

console = Console(width=max(120, shutil.get_terminal_size().columns))


@dataclass
class Row:
    backend: str
    phase: str
    rows: int
    seconds: float
    baseline: float | None = None  # seconds of the raw-SQL baseline of the same work
    target: str = ""
    passed: bool | None = None


# --------------------------------------------------------------------------- setup


@dataclass
class Baseline:
    """What the raw-SQL baselines need, prepared before the clock starts."""

    indexes: list[str]  # the rows' blind indexes, as the import computes them
    payer_id: uuid.UUID  # a second deposit account of the bureau, funded with the total
    payer_number: str
    credits: list[uuid.UUID]  # per row: a fresh beneficiary account, or the suspense stand-in
    amounts: list[int]
    codes: list[int]
    ids: list[uuid.UUID]  # transfer ids


@dataclass
class Workload:
    url: str
    factory: sessionmaker[Session]
    institution_id: uuid.UUID
    payer_account: str
    file: bytes
    total: int  # fen
    expected: dict[str, int]  # account number -> fen it must receive
    baseline: Baseline


def resident_id(n: int) -> str:
    born = date(1940, 1, 1) + timedelta(days=n // 900)
    body = f"410522{born:%Y%m%d}{n % 900 + 100:03d}"
    return body + resident_id_check_char(body)


def setup(url: str, rows: int, seed: int = 20261122) -> Workload:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = random.Random(seed)
    code = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    with transaction(factory) as session:
        institution = institutions.create_institution(session, code=code, name="基准测试农商行")
        ledger.create_chart_of_accounts(session, institution_id=institution.id, ledger="CNY")
        bureau_code = "11410522" + "MB1234567"
        payer = parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.government,
            name="某县农业农村局",
            id_number=bureau_code + uscc_check_char(bureau_code),
        )
        payer_account = payments.open_deposit_account(
            session, institution_id=institution.id, customer_id=payer.id
        )
        payer_number = payer_account.account_number
        assert payer_number is not None
        iid = institution.id
        key = personal_data.active_key(session)
        serial = int(
            session.scalar(
                select(AccountNumberSequence.last_serial).where(
                    AccountNumberSequence.institution_id == iid
                )
            )
            or 0
        )
        now = clock.now()
        lines = ["姓名,身份证号,账号,金额,补贴类型,年度"]
        expected: dict[str, int] = {}
        total = 0
        customers: list[dict[str, Any]] = []
        accounts: list[dict[str, Any]] = []
        indexes: list[str] = []
        credits: list[uuid.UUID] = []
        amounts: list[int] = []
        codes: list[int] = []
        stand_in = uuid7()  # stands in for suspense (2241) in the baseline
        fresh: list[dict[str, Any]] = [
            _account_row(stand_in, iid, None, None, now, name="基准: 挂账替身")
        ]
        for i in range(rows):
            customer_id = uuid7()
            number = resident_id(i)
            name = f"农户{i:06d}"
            index = personal_data.blind_index(number, field="id_number", institution_id=iid)
            indexes.append(index)
            customers.append(
                {
                    "id": customer_id,
                    "institution_id": iid,
                    "kind": "individual",
                    "name": name,
                    "id_number_ciphertext": personal_data.seal(
                        key, number, table="customers", field="id_number", row_id=customer_id
                    ),
                    "id_number_index": index,
                    "phone_ciphertext": None,
                    "phone_index": None,
                    "data_key_version": key.version,
                    "created_at": now,
                }
            )
            serial += 1
            body = f"{serial:015d}"
            account_number = body + luhn_check_digit(body)
            accounts.append(_account_row(uuid7(), iid, customer_id, account_number, now))
            fen = rng.randint(5_000, 300_000)
            total += fen
            blank = i % SUSPENSE_EVERY == SUSPENSE_EVERY - 1
            if not blank:
                expected[account_number] = fen
                fresh.append(_account_row(uuid7(), iid, customer_id, None, now))
            credits.append(stand_in if blank else fresh[-1]["id"])
            amounts.append(fen)
            codes.append(
                int(
                    TransferCode.subsidy_to_suspense
                    if blank
                    else TransferCode.subsidy_to_beneficiary
                )
            )
            lines.append(
                f"{name},{number},{'' if blank else account_number},"
                f"{fen // 100}.{fen % 100:02d},{rng.choice(TYPES)},2026"
            )
        connection = session.connection()
        for start in range(0, rows, 10_000):
            connection.execute(insert(Customer.__table__), customers[start : start + 10_000])
            connection.execute(insert(Account.__table__), accounts[start : start + 10_000])
        for start in range(0, len(fresh), 10_000):
            connection.execute(insert(Account.__table__), fresh[start : start + 10_000])
        session.execute(
            update(AccountNumberSequence)
            .where(AccountNumberSequence.institution_id == iid)
            .values(last_serial=serial)
        )
        payments.cash_deposit(
            session,
            institution_id=iid,
            client_id="bench-funding",
            account_number=payer_number,
            amount=total,
        )
        # The baseline's payer: a second deposit account of the bureau, funded alike.
        baseline_payer = payments.open_deposit_account(
            session, institution_id=iid, customer_id=payer.id
        )
        assert baseline_payer.account_number is not None
        payments.cash_deposit(
            session,
            institution_id=iid,
            client_id="bench-baseline-funding",
            account_number=baseline_payer.account_number,
            amount=total,
        )
        baseline = Baseline(
            indexes,
            baseline_payer.id,
            baseline_payer.account_number,
            credits,
            amounts,
            codes,
            [uuid7() for _ in range(rows)],
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return Workload(
        url,
        factory,
        iid,
        payer_number,
        ("\r\n".join(lines) + "\r\n").encode(),
        total,
        expected,
        baseline,
    )


def _account_row(
    account_id: uuid.UUID,
    institution_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    account_number: str | None,
    now: datetime,
    name: str = DEPOSIT_ACCOUNT_NAME,
) -> dict[str, Any]:
    """A deposit account as ``ledger.create_account`` stores it (liability, no overdraft)."""
    return {
        "id": account_id,
        "institution_id": institution_id,
        "ledger": "CNY",
        "type": str(AccountType.liability),
        "code": int(AccountCode.customer_deposits),
        "name": name,
        "owner_id": owner_id,
        "account_number": account_number,
        "debits_must_not_exceed_credits": True,
        "credits_must_not_exceed_debits": False,
        "closed": False,
        "debits_pending": 0,
        "debits_posted": 0,
        "credits_pending": 0,
        "credits_posted": 0,
        "created_at": now,
        "closed_at": None,
    }


# --------------------------------------------------------------------------- baselines

_LOOKUP = """
SELECT id, name, id_number_index FROM customers
WHERE institution_id = %(institution_id)s AND id_number_index = ANY(%(indexes)s)
"""

BASELINE_REFERENCE = "subsidy-baseline"


def baseline_lookup(work: Workload) -> float:
    """Seconds for the bare customer lookup of every row's blind index: one ``= ANY``."""
    base = work.baseline
    with psycopg.connect(**connect_args(make_url(work.url))) as connection:
        started = time.perf_counter()
        with connection.transaction():
            found = connection.execute(
                _LOOKUP, {"institution_id": work.institution_id, "indexes": base.indexes}
            ).fetchall()
        elapsed = time.perf_counter() - started
    if len(found) != len(base.indexes):
        sys.exit(f"baseline lookup found {len(found)} of {len(base.indexes)} customers")
    return elapsed


def baseline_disburse(work: Workload) -> float:
    """Seconds for the same transfers stored with one INSERT and one set-based UPDATE."""
    base = work.baseline
    with psycopg.connect(**connect_args(make_url(work.url))) as connection:
        started = time.perf_counter()
        now = datetime.now(UTC)
        n = len(base.ids)
        debits = [base.payer_id] * n
        with connection.transaction():
            connection.execute(
                PG_INSERT,
                {
                    "id": base.ids,
                    "institution_id": [work.institution_id] * n,
                    "debit": debits,
                    "credit": base.credits,
                    "amount": base.amounts,
                    "ledger": ["CNY"] * n,
                    "code": base.codes,
                    "flags": [0] * n,
                    "pending_id": [None] * n,
                    "timeout": [0] * n,
                    "reference": [BASELINE_REFERENCE] * n,
                    "metadata": [None] * n,
                    "timestamp": [now + timedelta(microseconds=i) for i in range(n)],
                },
            )
            connection.execute(
                PG_UPDATE,
                {
                    "account": debits + base.credits,
                    "dr": base.amounts + [0] * n,
                    "cr": [0] * n + base.amounts,
                },
            )
        return time.perf_counter() - started


# --------------------------------------------------------------------------- timed phases


def bench_backend(backend: str, url: str, rows: int) -> list[Row]:
    console.log(f"{backend}: setting up {rows:,} customers and accounts (not timed)")
    work = setup(url, rows)
    console.log(f"{backend}: validating")
    started = time.perf_counter()
    with transaction(work.factory) as session:
        batch = importing.import_batch(
            session,
            institution_id=work.institution_id,
            maker_id=MAKER,
            payer_account_number=work.payer_account,
            file_name="2026年惠农补贴发放清单.csv",
            content=work.file,
        )
        batch_id, valid = batch.id, batch.valid_count
    validated = time.perf_counter() - started
    if valid != rows:
        sys.exit(f"{backend}: {rows - valid} rows failed validation; the workload is wrong")
    with transaction(work.factory) as session:
        approval.submit_batch(
            session, institution_id=work.institution_id, batch_id=batch_id, actor_id=MAKER
        )
    with transaction(work.factory) as session:
        approval.approve_batch(
            session, institution_id=work.institution_id, batch_id=batch_id, checker_id=CHECKER
        )
    console.log(f"{backend}: disbursing")
    started = time.perf_counter()
    run = disbursement.run_disbursement(
        work.factory, institution_id=work.institution_id, batch_id=batch_id, chunk_size=CHUNK
    )
    disbursed = time.perf_counter() - started
    lookup = transfer = None
    if backend == "postgresql":
        console.log(f"{backend}: baselines (raw SQL, same database)")
        lookup = baseline_lookup(work)
        transfer = baseline_disburse(work)
    check(work, batch_id, run, baseline=backend == "postgresql")
    both = validated + disbursed
    target = backend == "postgresql" and rows >= ROWS
    measured = [
        Row(backend, "validate (import_batch)", rows, validated, lookup),
        Row(backend, f"disburse (chunks of {CHUNK:,})", rows, disbursed, transfer),
        Row(
            backend,
            "validate + disburse",
            rows,
            both,
            None if lookup is None or transfer is None else lookup + transfer,
            f"<= {TARGET_SECONDS:.0f} s" if target else "",
            both <= TARGET_SECONDS if target else None,
        ),
    ]
    if lookup is None or transfer is None:
        return measured
    return [
        measured[0],
        Row(backend, "  baseline: one = ANY lookup", rows, lookup),
        measured[1],
        Row(backend, "  baseline: INSERT + UPDATE", rows, transfer),
        measured[2],
        Row(backend, "  baseline: both", rows, lookup + transfer),
    ]


def check(
    work: Workload, batch_id: uuid.UUID, run: disbursement.DisbursementRun, *, baseline: bool
) -> None:
    """The result must be right, or the timing does not count (the baseline's too)."""
    with work.factory() as session:
        summary = reporting.summary(session, institution_id=work.institution_id, batch_id=batch_id)
        problems = []
        if not summary.reconciled or summary.payer_debit != work.total:
            problems.append(f"payer debit {summary.payer_debit} vs batch total {work.total}")
        if run.failed or summary.by_status["pending"].rows:
            problems.append("rows left pending or failed")
        balances = dict(
            session.execute(
                select(
                    Account.account_number, Account.credits_posted - Account.debits_posted
                ).where(
                    Account.institution_id == work.institution_id,
                    Account.code == int(AccountCode.customer_deposits),
                )
            ).all()
        )
        wrong = sum(1 for n, fen in work.expected.items() if balances.get(n) != fen)
        if wrong:
            problems.append(f"{wrong} beneficiaries with a wrong balance")
        if balances.get(work.payer_account) != 0:
            problems.append("the payer's account is not empty")
        base = work.baseline
        if baseline:
            if balances.get(base.payer_number) != 0:
                problems.append("the baseline payer's account is not empty")
            every = dict(
                session.execute(
                    select(Account.id, Account.credits_posted - Account.debits_posted).where(
                        Account.institution_id == work.institution_id
                    )
                ).all()
            )
            want: dict[uuid.UUID, int] = {}
            for account_id, fen in zip(base.credits, base.amounts, strict=True):
                want[account_id] = want.get(account_id, 0) + fen
            if any(every.get(account_id) != fen for account_id, fen in want.items()):
                problems.append("baseline accounts with a wrong balance")
        found = verify(session)  # the whole database: measured batch and baseline alike
        if found:
            problems.append("ledger verify: " + "; ".join(str(p) for p in found[:5]))
    if problems:
        sys.exit("wrong result: " + "; ".join(problems))


# --------------------------------------------------------------------------- report


def render(rows: list[Row], load: tuple[float, float, float]) -> Table:
    table = Table(
        title="Subsidy batch: validation and disbursement",
        caption=(
            f"{machine()}, PostgreSQL on the same host. UTF-8 CSV, one row in "
            f"{SUSPENSE_EVERY} without an account (paid to suspense 2241); every row valid, so "
            "every lookup and transfer is done. Setup (customers, accounts, funding) not timed. "
            "Baseline (PostgreSQL, same database, same run, after the measured phases) = what "
            "the database does with no rules: for validate, one = ANY(array) lookup of the "
            "blind indexes in customers; for disburse, the same transfers with one INSERT … "
            "SELECT FROM unnest(…) + one set-based balance UPDATE on fresh accounts, no checks, "
            "no chunks, no audit. ratio = rows/s ÷ baseline rows/s. "
            f"Load average (1 min) at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}."
        ),
        caption_justify="left",
    )
    for name, justify in (
        ("backend", "left"),
        ("phase", "left"),
        ("rows", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
        ("baseline s", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("pass", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.backend,
            r.phase,
            f"{r.rows:,}",
            f"{r.seconds:.1f}",
            f"{r.rows / r.seconds:,.0f}",
            "" if r.baseline is None else f"{r.baseline:.2f}",
            "" if r.baseline is None else f"{r.baseline / r.seconds:.3f}",
            r.target,
            "" if r.passed is None else ("pass" if r.passed else "[bold red]MISS[/]"),
        )
    return table


def main() -> None:
    os.environ.setdefault("HUINONG_MASTER_KEY", "000102030405060708090a0b0c0d0e0f")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows (a smoke run)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--postgres-url", default=os.environ.get("HUINONG_BENCH_POSTGRES_URL"))
    parser.add_argument("--sqlite", action="store_true", help="run on SQLite as well")
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else ROWS)
    load = os.getloadavg()
    if load[0] > 0.5:
        console.log(
            f"[yellow]load average {load[0]:.2f}: other processes are busy on this machine, "
            "so the figures will be low[/]"
        )
    started = time.monotonic()
    results: list[Row] = []
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="huinong-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            results += bench_backend("sqlite", url, rows)
    url = args.postgres_url or DEFAULT_POSTGRES
    prepare_postgres(url)
    results += bench_backend("postgresql", url, rows)
    console.print(render(results, load))
    console.print(
        "results checked (baseline's too), ledger verify clean over the whole database; "
        f"whole run {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
