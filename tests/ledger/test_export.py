"""The beancount export, on both databases: ``bean-check`` (beancount 3) must accept it, must
reject it once an amount is tampered with, and its balances must be the service's."""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy import text as text_sql
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import transaction
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution
from huinong.ledger import service
from huinong.ledger.chart import AccountCode
from huinong.ledger.export import write_beancount
from huinong.ledger.models import Account, Transfer
from huinong.ledger.types import AccountType, TransferFlags, TransferInput
from huinong.ledger.verify import verify
from tests.conftest import new_institution

F = TransferFlags
BEAN_CHECK = Path(sys.executable).with_name("bean-check")
# 21:00 in Shanghai: the workload crosses several local midnights (16:00 UTC).
START = datetime(2025, 6, 1, 13, 0, tzinfo=UTC)
ODD_REFERENCE = 'ref "引号" \\ back\nslash\ttab'
ODD_METADATA = {"note": 'say "hi"\\', "列表": [1, 2]}


def bean_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BEAN_CHECK), str(path)], capture_output=True, text=True, timeout=300, check=False
    )


def export(
    factory: sessionmaker[Session], path: Path, institution_id: uuid.UUID | None
) -> tuple[int, str]:
    with factory() as session, path.open("w", encoding="utf-8") as handle:
        written = write_beancount(session, out=handle, institution_id=institution_id)
    return written, path.read_text(encoding="utf-8")


def yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


# --------------------------------------------------------------------------- the workload


@dataclass
class Workload:
    institution: Institution
    system: dict[str, uuid.UUID]
    customers: list[uuid.UUID]
    internal: list[uuid.UUID]
    closed: list[uuid.UUID] = field(default_factory=list)
    posted: int = 0  # transfers applied that moved posted balances
    results: Counter[str] = field(default_factory=Counter)
    odd_transfer: uuid.UUID | None = None
    expired: int = 0  # pending transfers voided by the expiry sweep


def build_workload(factory: sessionmaker[Session], seed: int, transfers: int) -> Workload:
    """A seeded random day-to-day of a small bank through ``ledger.service``: deposits,
    withdrawals, fees and interest, pending transfers posted (in full or in part), voided or
    expired, linked chains (some failing as one), refused transfers, idempotent repeats,
    and customer accounts emptied and closed. Each batch is one transaction at its own
    frozen time, a few minutes after the previous one."""
    rng = random.Random(seed)
    moment = START

    def tick() -> datetime:
        nonlocal moment
        moment += timedelta(minutes=rng.randint(1, 45))
        return moment

    with clock.frozen(moment):
        institution = new_institution(factory, prefix="X")
    iid = institution.id
    with clock.frozen(tick()), transaction(factory) as s:
        system = {
            code.name: service.system_account(s, institution_id=iid, code=code).id
            for code in AccountCode
            if code is not AccountCode.customer_deposits
        }
        customers = [
            service.create_account(
                s,
                institution_id=iid,
                ledger="CNY",
                type=AccountType.liability,
                code=AccountCode.customer_deposits,
                name=f"客户 {i}",
                owner_id=uuid7(),
                with_account_number=True,
                debits_must_not_exceed_credits=i % 4 != 0,
            ).id
            for i in range(12)
        ]
        # Accounts without a number sharing a code with a chart account.
        internal = [
            service.create_account(
                s,
                institution_id=iid,
                ledger="CNY",
                type=AccountType.liability,
                code=AccountCode.suspense,
                name=f"暂收 {i}",
            ).id
            for i in range(2)
        ]
    work = Workload(institution, system, customers, internal)
    cash, clearing = system["cash_in_vault"], system["clearing"]
    outstanding: dict[uuid.UUID, int] = {}  # pending id -> amount
    sent: list[TransferInput] = []

    def t(debit: uuid.UUID, credit: uuid.UUID, amount: int, **kw: object) -> TransferInput:
        return TransferInput(
            id=uuid7(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger="CNY",
            code=rng.randint(1, 30),
            **kw,  # type: ignore[arg-type]
        )

    def amount() -> int:
        return rng.choice([1, rng.randint(1, 99), rng.randint(100, 500_000), 1_234_567_891])

    def submit(*batch: TransferInput) -> list[str]:
        with clock.frozen(tick()), transaction(factory) as s:
            results = service.create_transfers(s, institution_id=iid, batch=list(batch))
        names = []
        for item, result in zip(batch, results, strict=True):
            names.append(result.result.value)
            work.results[result.result.value] += 1
            if result.result.value != "ok":
                continue
            sent.append(item)
            if item.flags & F.pending:
                outstanding[item.id] = result.amount or 0
            elif item.flags & (F.post_pending | F.void_pending):
                outstanding.pop(item.pending_id, None)  # type: ignore[arg-type]
            if not item.flags & (F.pending | F.void_pending):
                work.posted += 1
        return names

    submit(t(cash, system["paid_in_capital"], 50_000_000_000))
    odd = t(cash, customers[1], 8_888, reference=ODD_REFERENCE, metadata=ODD_METADATA)
    submit(odd)
    work.odd_transfer = odd.id
    count = 2
    kinds = ["deposit", "withdraw", "move", "fee", "interest", "pending", "resolve", "chain"]
    kinds += ["balancing", "refused", "repeat"]
    weights = [20, 12, 14, 5, 5, 10, 10, 6, 3, 4, 3]
    while count < transfers:
        batch: list[TransferInput] = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choices(kinds, weights)[0]
            a, b = rng.sample(customers, 2)
            if kind == "deposit":
                batch.append(t(cash, a, amount()))
            elif kind == "withdraw":
                batch.append(t(a, cash, amount()))
            elif kind == "move":
                batch.append(t(a, b, amount()))
            elif kind == "fee":
                batch.append(t(a, system["fee_income"], rng.randint(1, 500)))
            elif kind == "interest":
                batch.append(t(system["interest_expense"], a, rng.randint(1, 900)))
            elif kind == "pending":
                timeout = rng.choice([0, 0, 3600])
                batch.append(t(a, clearing, amount(), flags=F.pending, timeout=timeout))
            elif kind == "resolve" and outstanding:
                pending_id = rng.choice(sorted(outstanding))
                if rng.random() < 0.6:
                    part = rng.choice([None, max(1, outstanding[pending_id] // 2)])
                    batch.append(
                        TransferInput(
                            id=uuid7(), pending_id=pending_id, amount=part, flags=F.post_pending
                        )
                    )
                else:
                    batch.append(
                        TransferInput(id=uuid7(), pending_id=pending_id, flags=F.void_pending)
                    )
            elif kind == "chain":
                links = [t(cash, a, amount(), flags=F.linked), t(a, b, amount(), flags=F.linked)]
                links.append(t(b, rng.choice(internal), amount()))
                batch.extend(links)
            elif kind == "balancing":
                batch.append(t(a, cash, 10**12, flags=F.balancing_debit))
            elif kind == "refused":
                batch.append(rng.choice([t(a, a, 5), t(a, uuid7(), 5), t(a, b, 0)]))
            elif kind == "repeat" and sent:
                batch.append(rng.choice(sent))
        if batch:
            submit(*batch)
            count += len(batch)

    # Expiry: whatever timed out is voided by the sweep.
    with clock.frozen(tick() + timedelta(hours=2)), transaction(factory) as s:
        work.expired = service.sweep_expired_pending(s)
    outstanding.clear()
    # Empty three customer accounts without holds, close them, then refuse a deposit to one.
    with factory() as s:
        free = [
            acct.id
            for acct in (s.get_one(Account, c) for c in customers)
            if acct.debits_pending == 0 and acct.credits_pending == 0
        ]
    for account_id in rng.sample(free, 3):
        with factory() as s:
            acct = s.get_one(Account, account_id)
            left = acct.credits_posted - acct.debits_posted
        if left > 0:
            assert submit(t(account_id, cash, left)) == ["ok"]
        elif left < 0:
            assert submit(t(cash, account_id, -left)) == ["ok"]
        with clock.frozen(tick()), transaction(factory) as s:
            service.close_account(s, institution_id=iid, account_id=account_id)
        work.closed.append(account_id)
    assert submit(t(cash, work.closed[0], 100)) == ["credit_account_already_closed"]
    open_customers = [c for c in customers if c not in work.closed]
    submit(t(cash, open_customers[0], 100), t(open_customers[0], system["fee_income"], 1))
    with factory() as s:
        assert verify(s, institution_id=iid) == []
    return work


# --------------------------------------------------------------------------- tests


def test_export_of_a_random_workload_passes_bean_check(factory, tmp_path):
    work = build_workload(factory, seed=20250601, transfers=360)
    for outcome in ("ok", "exists", "exceeds_credits", "linked_event_failed"):
        assert work.results[outcome] > 0, outcome
    assert work.expired + work.results["pending_transfer_expired"] > 0
    path = tmp_path / "ledger.beancount"
    written, text = export(factory, path, work.institution.id)
    assert written == work.posted > 200
    checked = bean_check(path)
    assert (checked.returncode, checked.stderr, checked.stdout) == (0, "", "")
    with factory() as s:
        accounts = service.list_accounts(s, institution_id=work.institution.id, limit=1000)
    assert len(re.findall(r"^\d{4}-\d\d-\d\d open ", text, re.M)) == len(accounts)
    assert len(re.findall(r"^\d{4}-\d\d-\d\d balance ", text, re.M)) == len(accounts)
    assert len(re.findall(r"^\d{4}-\d\d-\d\d close ", text, re.M)) == len(work.closed) == 3
    assert len(re.findall(r"^\d{4}-\d\d-\d\d \* ", text, re.M)) == written


def _tamper(text: str, rng: random.Random) -> tuple[str, str]:
    """Add 0.01 to both legs of one transaction: it still balances, the assertions don't."""
    lines = text.split("\n")
    posting = re.compile(r"^  (\S+)  (-?\d+\.\d\d) CNY$")
    debits = [  # the first leg of a transaction is its debit
        i
        for i in range(1, len(lines) - 1)
        if posting.match(lines[i]) and not posting.match(lines[i - 1])
    ]
    i = rng.choice(debits)
    account, number = posting.match(lines[i]).groups()  # type: ignore[union-attr]
    changed = Decimal(number) + Decimal("0.01")
    lines[i] = f"  {account}  {changed} CNY"
    credit = posting.match(lines[i + 1]).group(1)  # type: ignore[union-attr]
    lines[i + 1] = f"  {credit}  {-changed} CNY"
    return "\n".join(lines), account


def test_bean_check_fails_when_an_amount_is_tampered_with(factory, tmp_path):
    work = build_workload(factory, seed=7, transfers=80)
    path = tmp_path / "ledger.beancount"
    _, text = export(factory, path, work.institution.id)
    assert bean_check(path).returncode == 0
    tampered, account = _tamper(text, random.Random(7))
    assert tampered != text
    path.write_text(tampered, encoding="utf-8")
    checked = bean_check(path)
    assert checked.returncode != 0
    report = checked.stdout + checked.stderr
    assert f"Balance failed for '{account}'" in report
    assert "does not balance" not in report


def test_exported_balances_and_transactions_equal_the_service(factory, tmp_path):
    work = build_workload(factory, seed=99, transfers=150)
    iid = work.institution.id
    path = tmp_path / "ledger.beancount"
    written, _ = export(factory, path, iid)
    entries, errors, options = loader.load_file(str(path))
    assert errors == []
    assert options["operating_currency"] == ["CNY"]
    assert work.institution.code in options["title"]

    opens = {e.meta["huinong-id"]: e for e in entries if isinstance(e, data.Open)}
    name_of = {key: e.account for key, e in opens.items()}
    assert len(set(name_of.values())) == len(name_of)
    closes = {e.account for e in entries if isinstance(e, data.Close)}
    assert closes == {name_of[str(c)] for c in work.closed}
    transactions = [e for e in entries if isinstance(e, data.Transaction)]
    assert len(transactions) == written == work.posted
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for entry in transactions:
        for posting in entry.postings:
            assert posting.units.currency == "CNY"
            sums[posting.account] += posting.units.number
    asserted = {e.account: e.amount.number for e in entries if isinstance(e, data.Balance)}
    assert len(asserted) == len(opens)

    with factory() as s:
        few = [
            work.system["cash_in_vault"],
            work.system["fee_income"],
            work.system["clearing"],
            work.system["interest_expense"],
            *work.customers[:4],
            work.closed[0],
            work.internal[0],
        ]
        for account_id in few:
            balance = service.balance(s, institution_id=iid, account_id=account_id)
            account = s.get_one(Account, account_id)
            signed = balance.balance if AccountType(account.type).debit_normal else -balance.balance
            name = name_of[str(account_id)]
            assert sums[name] == asserted[name] == yuan(signed), name
            assert opens[str(account_id)].currencies == ["CNY"]
            assert opens[str(account_id)].date == clock.local_date(account.created_at)
        assert sums[name_of[str(work.closed[0])]] == 0
        for account in s.scalars(select(Account).where(Account.institution_id == iid)):
            name = name_of[str(account.id)]
            assert asserted[name] == yuan(account.debits_posted - account.credits_posted), name

        # Every posted transfer once, on its Shanghai date, debit +, credit -; nothing else.
        by_id = {e.meta["huinong-id"]: e for e in transactions}
        assert len(by_id) == len(transactions)
        stored = s.scalars(select(Transfer).where(Transfer.institution_id == iid)).all()
        posted = [t for t in stored if not t.flags & (F.pending | F.void_pending)]
        assert {str(t.id) for t in posted} == set(by_id)
        assert any(t.flags & F.void_pending for t in stored)
        assert any(t.flags & F.post_pending for t in posted)
        days = set()
        for transfer in posted:
            entry = by_id[str(transfer.id)]
            assert entry.date == clock.local_date(transfer.timestamp)
            days.add(entry.date)
            debit, credit = entry.postings
            assert debit.account == name_of[str(transfer.debit_account_id)]
            assert credit.account == name_of[str(transfer.credit_account_id)]
            assert debit.units.number == -credit.units.number == yuan(transfer.amount)
            assert entry.meta["code"] == transfer.code
        assert len(days) >= 2  # the workload crosses Shanghai midnights
    odd = by_id[str(work.odd_transfer)]
    assert odd.meta["reference"] == odd.narration == ODD_REFERENCE
    assert json.loads(odd.meta["metadata"]) == ODD_METADATA


def test_clock_skew_exact_amounts_and_every_institution(factory, tmp_path):
    """Transfers stamped before their accounts were opened and after they were closed keep
    the journal valid; amounts beyond a float's 53 bits stay exact; an export of all
    institutions (whatever the suite left in the database) passes bean-check; codes that
    differ only by '_' and '-' get distinct account names."""
    suffix = uuid.uuid4().hex[:6].upper()
    made = []
    with transaction(factory) as s:
        for code in (f"U_{suffix}", f"U-{suffix}"):
            inst = institutions.create_institution(s, code=code, name=f"下划线 {code}")
            service.create_chart_of_accounts(s, institution_id=inst.id, ledger="CNY")
            made.append(inst)
    underscore, dash = made
    iid = underscore.id
    with transaction(factory) as s:  # opened now, at the real time
        a, b = (
            service.create_account(
                s,
                institution_id=iid,
                ledger="CNY",
                type=AccountType.liability,
                code=AccountCode.customer_deposits,
                name=name,
                with_account_number=True,
            ).id
            for name in ("早", "晚")
        )
    huge = 2**53 + 1  # 9007199254740993 fen: a float would print ...740992
    early = datetime(2024, 12, 31, 17, 30, tzinfo=UTC)  # 2025-01-01 in Shanghai
    late = clock.now() + timedelta(days=40)

    def run(at: datetime, *batch: TransferInput) -> list[str]:
        with clock.frozen(at), transaction(factory) as s:
            results = service.create_transfers(s, institution_id=iid, batch=list(batch))
        return [r.result.value for r in results]

    def t(debit: uuid.UUID, credit: uuid.UUID, amount: int) -> TransferInput:
        return TransferInput(uuid7(), debit, credit, amount, "CNY", code=1)

    assert run(early, t(a, b, huge)) == ["ok"]
    assert run(late, t(b, a, huge)) == ["ok"]
    with transaction(factory) as s:  # closed now: before its last transfer's timestamp
        service.close_account(s, institution_id=iid, account_id=a)

    path = tmp_path / "skew.beancount"
    written, text = export(factory, path, iid)
    assert written == 2
    checked = bean_check(path)
    assert (checked.returncode, checked.stderr) == (0, "")
    assert "  90071992547409.93 CNY" in text
    assert "  -90071992547409.93 CNY" in text
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    opens = {e.meta["huinong-id"]: e for e in entries if isinstance(e, data.Open)}
    assert opens[str(a)].date == opens[str(b)].date == date(2025, 1, 1)
    (close,) = [e for e in entries if isinstance(e, data.Close)]
    assert close.account == opens[str(a)].account
    assert close.date == clock.local_date(late)
    assert all(
        name.startswith(f"Liabilities:U-{suffix}-{iid.hex[-8:].upper()}:2011-")
        for name in (opens[str(a)].account, opens[str(b)].account)
    )

    dash_text = io.StringIO()
    with factory() as s:
        write_beancount(s, out=dash_text, institution_id=dash.id)
    assert f" open Assets:U-{suffix}:1001-CashInVault:" in dash_text.getvalue()

    everything = tmp_path / "all.beancount"
    written_all, text_all = export(factory, everything, None)
    assert written_all >= written
    assert 'option "title" "Huinong ledger: all institutions"' in text_all
    checked = bean_check(everything)
    assert (checked.returncode, checked.stderr) == (0, "")


class _Probe(io.StringIO):
    """Collects the journal and, at the first write, asks the session what kind of
    transaction the export runs in."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.seen: tuple[str, str] | None = None

    def write(self, text: str) -> int:
        if self.seen is None:
            self.seen = (
                self.session.execute(text_sql("SHOW transaction_isolation")).scalar_one(),
                self.session.execute(text_sql("SHOW transaction_read_only")).scalar_one(),
            )
        return super().write(text)


def test_export_reads_one_read_only_snapshot_on_postgresql(factory, backend):
    if backend != "postgresql":
        pytest.skip("SQLite transactions are serializable and take no read-only mode")
    institution = new_institution(factory)
    with factory() as session:
        probe = _Probe(session)
        write_beancount(session, out=probe, institution_id=institution.id)
        assert probe.seen == ("repeatable read", "on")
        assert not session.in_transaction()  # the export ended the snapshot it began
        with session.begin():  # inside a caller's transaction it reads in that one
            probe = _Probe(session)
            write_beancount(session, out=probe, institution_id=institution.id)
            assert probe.seen == ("read committed", "off")
            assert session.in_transaction()
    assert " open Assets:" in probe.getvalue()
