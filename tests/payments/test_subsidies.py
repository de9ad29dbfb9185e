"""Subsidy disbursement through the services, on both databases: validation against the
customers and accounts, duplicates, maker-checker, disbursement in chunks with a crash in the
middle, suspense paid on account opening, and the reconciliation of the payer's debit."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import transaction
from huinong.errors import Conflict, Forbidden, InvalidInput
from huinong.institutions.models import Institution
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Transfer
from huinong.parties import rules as party_rules
from huinong.parties import service as parties
from huinong.parties.models import CustomerKind
from huinong.payments import service as payments
from huinong.payments.subsidies import approval, common, disbursement, importing, reporting
from huinong.payments.subsidies.models import (
    BatchStatus,
    RowStatus,
    SubsidyBatch,
    SubsidyRow,
)
from huinong.security.audit.models import AuditRecord
from tests.conftest import new_institution
from tests.test_cli import cli_database  # noqa: F401  (fixture)

_serial = itertools.count(1)
HEADER = "姓名,身份证号,账号,金额,补贴类型,年度"
MAKER = uuid.UUID("00000000-0000-7000-8000-00000000000a")
CHECKER = uuid.UUID("00000000-0000-7000-8000-00000000000b")


def resident_id() -> str:
    n = next(_serial)
    born = date(1950, 1, 1) + timedelta(days=n // 1000)
    body = f"410522{born:%Y%m%d}{n % 1000:03d}"
    return body + party_rules.resident_id_check_char(body)


def credit_code() -> str:
    body = f"11{next(_serial):015d}"
    return body + party_rules.uscc_check_char(body)


@dataclass
class Farmer:
    customer_id: uuid.UUID
    name: str
    id_number: str
    account_number: str | None


@dataclass
class World:
    factory: sessionmaker[Session]
    institution: Institution
    payer_account: str
    farmers: list[Farmer]

    @property
    def id(self) -> uuid.UUID:
        return self.institution.id

    def balance(self, number: str) -> int:
        with self.factory() as session:
            account = payments.deposit_account(
                session, institution_id=self.id, account_number=number
            )
            return account.credits_posted - account.debits_posted

    def suspense_balance(self) -> int:
        with self.factory() as session:
            account = ledger.system_account(
                session, institution_id=self.id, code=AccountCode.suspense
            )
            return account.credits_posted - account.debits_posted

    def fund(self, amount: int) -> None:
        with transaction(self.factory) as session:
            payments.cash_deposit(
                session,
                institution_id=self.id,
                client_id=str(uuid.uuid4()),
                account_number=self.payer_account,
                amount=amount,
            )

    def csv(self, rows: list[str]) -> bytes:
        return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()

    def line(self, farmer: Farmer, amount: str = "100.00", **changes: str) -> str:
        values = {
            "name": farmer.name,
            "id_number": farmer.id_number,
            "account": farmer.account_number or "",
            "amount": amount,
            "type": "耕地地力保护补贴",
            "year": "2026",
            **changes,
        }
        return ",".join(values.values())

    def import_(self, content: bytes, **kwargs: object) -> uuid.UUID:
        with transaction(self.factory) as session:
            batch = importing.import_batch(
                session,
                institution_id=self.id,
                maker_id=MAKER,
                payer_account_number=self.payer_account,
                file_name="list.csv",
                content=content,
                **kwargs,  # type: ignore[arg-type]
            )
            return batch.id

    def approve(self, batch_id: uuid.UUID) -> None:
        with transaction(self.factory) as session:
            approval.submit_batch(
                session, institution_id=self.id, batch_id=batch_id, actor_id=MAKER
            )
        with transaction(self.factory) as session:
            approval.approve_batch(
                session, institution_id=self.id, batch_id=batch_id, checker_id=CHECKER
            )

    def disburse(self, batch_id: uuid.UUID, **kwargs: object) -> disbursement.DisbursementRun:
        return disbursement.run_disbursement(
            self.factory,
            institution_id=self.id,
            batch_id=batch_id,
            **kwargs,  # type: ignore[arg-type]
        )

    def rows(self, batch_id: uuid.UUID) -> dict[int, SubsidyRow]:
        with self.factory() as session:
            found = session.scalars(select(SubsidyRow).where(SubsidyRow.batch_id == batch_id))
            return {r.row_number: r for r in found}

    def errors(self, batch_id: uuid.UUID) -> list[tuple[int, str, str]]:
        with self.factory() as session:
            return [
                (e.row, e.column, e.code)
                for e in reporting.row_errors(session, institution_id=self.id, batch_id=batch_id)
            ]

    def summary(self, batch_id: uuid.UUID) -> reporting.BatchSummary:
        with self.factory() as session:
            return reporting.summary(session, institution_id=self.id, batch_id=batch_id)


def make_world(
    factory: sessionmaker[Session], farmers: int = 3, *, funds: int = 10_000_000
) -> World:
    institution = new_institution(factory, "S")
    with transaction(factory) as session:
        payer = parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.government,
            name="某县农业农村局",
            id_number=credit_code(),
        )
        payer_account = payments.open_deposit_account(
            session, institution_id=institution.id, customer_id=payer.id
        )
        people = []
        for index in range(farmers):
            name = f"农户{index}号"
            number = resident_id()
            customer = parties.create_customer(
                session,
                institution_id=institution.id,
                kind=CustomerKind.individual,
                name=name,
                id_number=number,
            )
            account = payments.open_deposit_account(
                session, institution_id=institution.id, customer_id=customer.id
            )
            people.append(Farmer(customer.id, name, number, account.account_number))
    assert payer_account.account_number is not None
    world = World(factory, institution, payer_account.account_number, people)
    if funds:
        world.fund(funds)
    return world


def test_rows_are_checked_against_customers_and_accounts(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, 4)
    a, b, c, d = world.farmers
    stranger = resident_id()
    content = world.csv(
        [
            world.line(a, "12.34"),  # row 2: valid
            world.line(b, name="王五"),  # row 3: name differs
            world.line(c, account=a.account_number or ""),  # row 4: someone else's account
            world.line(Farmer(uuid.uuid4(), "赵六", stranger, None)),  # row 5: unknown person
            world.line(d, account=""),  # row 6: valid, to suspense
            world.line(a, "1.005"),  # row 7: bad amount and a duplicate of row 2
            world.line(d, type="农机购置补贴", id_number=d.id_number[:-1] + "Y"),  # row 8
        ]
    )
    batch_id = world.import_(content)
    assert world.errors(batch_id) == [
        (3, "name", "subsidies.name_mismatch"),
        (4, "account_number", "subsidies.account_of_another_customer"),
        (5, "id_number", "subsidies.customer_not_found"),
        (7, "amount", "subsidies.invalid_amount"),
        (7, "id_number", "subsidies.duplicate_in_file"),
        (8, "id_number", "subsidies.invalid_id_number"),
    ]
    rows = world.rows(batch_id)
    assert {n: r.status for n, r in rows.items()} == {
        2: "pending",
        3: "invalid",
        4: "invalid",
        5: "invalid",
        6: "pending",
        7: "invalid",
        8: "invalid",
    }
    assert rows[2].amount == 1234 and rows[2].customer_id == a.customer_id
    assert rows[6].account_id is None
    with factory() as session:
        batch = session.get(SubsidyBatch, batch_id)
        assert batch is not None
        assert (batch.row_count, batch.valid_count, batch.valid_amount) == (7, 2, 1234 + 10000)
        report = reporting.error_report(session, institution_id=world.id, batch_id=batch_id)
        assert report.lstrip("\ufeff").splitlines()[0] == "row,column,code,message"
        assert "3,name,subsidies.name_mismatch," in report
        # ID numbers are stored encrypted, found again by their blind index
        raw = session.execute(
            select(SubsidyRow.id_number_ciphertext).where(SubsidyRow.batch_id == batch_id)
        ).all()
        assert all(a.id_number.encode() not in bytes(r[0]) for r in raw if r[0] is not None)
        assert reporting.row_id_number(session, rows[2]) == a.id_number


def test_a_closed_account_and_a_non_government_payer(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 2)
    empty = world.farmers[1]
    with transaction(factory) as session:
        payments.close_deposit_account(
            session, institution_id=world.id, account_number=empty.account_number or ""
        )
    batch_id = world.import_(world.csv([world.line(empty)]))
    assert world.errors(batch_id) == [(2, "account_number", "subsidies.account_closed")]
    farmer = world.farmers[0]
    with transaction(factory) as session, pytest.raises(InvalidInput) as caught:
        importing.import_batch(
            session,
            institution_id=world.id,
            maker_id=MAKER,
            payer_account_number=farmer.account_number or "",
            file_name="x.csv",
            content=world.csv([world.line(farmer)]),
        )
    assert caught.value.code == "subsidies.payer_not_government"
    assert caught.value.field == "payer_account_number"


def count_batches(world: World) -> tuple[int, int]:
    with world.factory() as session:
        batches = session.scalar(
            select(func.count())
            .select_from(SubsidyBatch)
            .where(SubsidyBatch.institution_id == world.id)
        )
        rows = session.scalar(
            select(func.count())
            .select_from(SubsidyRow)
            .where(SubsidyRow.institution_id == world.id)
        )
        return int(batches or 0), int(rows or 0)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (
            "姓名,身份证号,金额,补贴类型,年度\r\n张三,x,1,种粮补贴,2026\r\n".encode(),
            "missing_columns",
        ),
        (f"{HEADER}\r\n张三,x,,1,种粮补贴,2026\r\n".encode("utf-16"), "wrong_encoding"),
        (f"{HEADER}\r\n".encode(), "no_rows"),
    ],
)
def test_a_rejected_file_writes_nothing(
    factory: sessionmaker[Session], content: bytes, code: str
) -> None:
    world = make_world(factory, 1)
    with pytest.raises(InvalidInput) as caught:
        world.import_(content)
    assert caught.value.code == f"subsidies.{code}" and caught.value.field == "file"
    assert count_batches(world) == (0, 0)


def test_gbk_files_are_read(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 1)
    content = "\r\n".join([HEADER, world.line(world.farmers[0])]).encode("gbk")
    batch_id = world.import_(content)
    assert world.errors(batch_id) == []
    with pytest.raises(InvalidInput):
        world.import_(content, encoding="utf-8")


def test_duplicates_against_earlier_batches(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 2)
    a, b = world.farmers
    first = world.import_(world.csv([world.line(a), world.line(b)]))
    second = world.import_(
        world.csv([world.line(a), world.line(b, type="农机购置补贴"), world.line(b, year="2025")])
    )
    assert world.errors(second) == [(2, "id_number", "subsidies.duplicate_in_earlier_batch")]
    with transaction(factory) as session:
        approval.submit_batch(session, institution_id=world.id, batch_id=first, actor_id=MAKER)
    for _ in range(2):  # the same rejection sent twice (a retry) is one decision
        with transaction(factory) as session:
            decided = approval.reject_batch(
                session,
                institution_id=world.id,
                batch_id=first,
                checker_id=CHECKER,
                reason="金额有误",
            )
            assert decided.status == "rejected" and decided.rejection_reason == "金额有误"
    with transaction(factory) as session, pytest.raises(Conflict):
        approval.reject_batch(
            session, institution_id=world.id, batch_id=first, checker_id=CHECKER, reason="另一理由"
        )
    # A rejected batch no longer counts.
    third = world.import_(world.csv([world.line(a)]))
    assert world.errors(third) == []


def test_maker_checker(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 1)
    batch_id = world.import_(world.csv([world.line(world.farmers[0])]))
    with transaction(factory) as session, pytest.raises(Conflict):
        approval.approve_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=CHECKER
        )
    with transaction(factory) as session:
        approval.submit_batch(session, institution_id=world.id, batch_id=batch_id, actor_id=MAKER)
    with transaction(factory) as session, pytest.raises(Forbidden) as caught:
        approval.approve_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=MAKER
        )
    assert caught.value.code == "subsidies.self_approval"
    with transaction(factory) as session, pytest.raises(Forbidden):
        approval.reject_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=MAKER, reason="x"
        )
    with transaction(factory) as session, pytest.raises(InvalidInput) as reason:
        approval.reject_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=CHECKER, reason=" "
        )
    assert reason.value.field == "reason"
    with transaction(factory) as session, pytest.raises(Conflict):
        # not approved yet: nothing is paid
        disbursement.disburse_chunk(session, institution_id=world.id, batch_id=batch_id)
    with transaction(factory) as session:
        approval.approve_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=CHECKER
        )
    with factory() as session:
        batch = session.get(SubsidyBatch, batch_id)
        assert batch is not None
        assert (batch.status, batch.maker_id, batch.checker_id) == ("approved", MAKER, CHECKER)
        actions = session.scalars(
            select(AuditRecord.action).where(
                AuditRecord.object_id == str(batch_id), AuditRecord.institution_id == world.id
            )
        ).all()
    assert sorted(actions) == [
        "subsidies.batch_approved",
        "subsidies.batch_imported",
        "subsidies.batch_submitted",
    ]


def test_disbursement_pays_and_reconciles(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 5, funds=100_000)
    a, b, c, d, e = world.farmers
    content = world.csv(
        [
            world.line(a, "100.00"),
            world.line(b, "200.50"),
            world.line(c, "0.01", account=""),  # to suspense
            world.line(d, "300", name="冒名"),  # invalid: never paid
            world.line(e, "50"),
        ]
    )
    batch_id = world.import_(content)
    world.approve(batch_id)
    run = world.disburse(batch_id, chunk_size=2)
    assert (run.chunks, run.paid, run.suspense, run.failed) == (2, 3, 1, 0)
    assert run.amount == 10000 + 20050 + 1 + 5000
    assert world.balance(a.account_number or "") == 10000
    assert world.balance(b.account_number or "") == 20050
    assert world.balance(c.account_number or "") == 0
    assert world.balance(d.account_number or "") == 0
    assert world.balance(e.account_number or "") == 5000
    assert world.balance(world.payer_account) == 100_000 - run.amount
    assert world.suspense_balance() == 1
    report = world.summary(batch_id)
    assert report.batch.status == BatchStatus.disbursed
    assert report.by_status["paid"] == reporting.StatusTotal(3, 35050)
    assert report.by_status["suspense"] == reporting.StatusTotal(1, 1)
    assert report.by_status["invalid"] == reporting.StatusTotal(1, 30000)
    assert report.payer_debit == 35051 and report.reconciled
    with factory() as session:
        chunks = session.scalar(
            select(func.count()).where(
                AuditRecord.object_id == str(batch_id),
                AuditRecord.action == "subsidies.chunk_disbursed",
            )
        )
    assert chunks == 2
    # Running it again pays nothing more.
    again = world.disburse(batch_id)
    assert again.rows == 0
    assert world.balance(world.payer_account) == 100_000 - run.amount


class Crash(Exception):
    pass


def test_a_crash_mid_batch_resumes_without_paying_twice(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 7, funds=1_000_000)
    batch_id = world.import_(
        world.csv([world.line(f, f"{i + 1}.00") for i, f in enumerate(world.farmers)])
    )
    world.approve(batch_id)
    seen: list[int] = []

    def crash_after_second(chunk: disbursement.ChunkOutcome) -> None:
        seen.append(chunk.rows)
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash):
        world.disburse(batch_id, chunk_size=2, on_chunk=crash_after_second)
    statuses = [r.status for _, r in sorted(world.rows(batch_id).items())]
    assert statuses == ["paid"] * 4 + ["pending"] * 3
    with factory() as session:
        assert session.get(SubsidyBatch, batch_id).status == "disbursing"  # type: ignore[union-attr]
    run = world.disburse(batch_id, chunk_size=2)
    assert (run.paid, run.rows) == (3, 3)
    for i, farmer in enumerate(world.farmers):
        assert world.balance(farmer.account_number or "") == (i + 1) * 100
    assert world.balance(world.payer_account) == 1_000_000 - 2800
    with factory() as session:
        transfers = session.scalars(
            select(Transfer.id).where(Transfer.reference == common.batch_reference(batch_id))
        ).all()
    assert sorted(transfers) == sorted(
        disbursement.row_transfer_id(batch_id, n) for n in range(2, 9)
    )
    assert world.summary(batch_id).reconciled


def test_a_chunk_that_raced_a_finished_one_pays_nothing_twice(
    factory: sessionmaker[Session],
) -> None:
    """A chunk whose rows are still pending but whose transfers are stored (as when a worker
    read the rows before another committed them) records them as paid, moving nothing."""
    world = make_world(factory, 2, funds=100_000)
    batch_id = world.import_(world.csv([world.line(f) for f in world.farmers]))
    world.approve(batch_id)
    world.disburse(batch_id)
    with transaction(factory) as session:
        session.execute(
            update(SubsidyRow).where(SubsidyRow.batch_id == batch_id).values(status="pending")
        )
        session.execute(
            update(SubsidyBatch).where(SubsidyBatch.id == batch_id).values(status="disbursing")
        )
    run = world.disburse(batch_id)
    assert (run.rows, run.paid) == (2, 2)
    assert world.balance(world.payer_account) == 100_000 - 20_000
    assert world.summary(batch_id).reconciled


def test_insufficient_funds_stop_and_a_top_up_resumes(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 4, funds=25_000)
    batch_id = world.import_(world.csv([world.line(f) for f in world.farmers]))
    world.approve(batch_id)
    with pytest.raises(Conflict) as caught:
        world.disburse(batch_id, chunk_size=2)
    assert caught.value.code == "subsidies.payer_insufficient_funds"
    assert world.balance(world.payer_account) == 5_000  # the first chunk was paid
    world.fund(20_000)
    world.disburse(batch_id, chunk_size=2)
    assert world.balance(world.payer_account) == 5_000
    assert world.summary(batch_id).reconciled


def test_a_row_whose_account_closed_fails_and_is_not_debited(
    factory: sessionmaker[Session],
) -> None:
    world = make_world(factory, 2, funds=100_000)
    a, b = world.farmers
    batch_id = world.import_(world.csv([world.line(a), world.line(b)]))
    world.approve(batch_id)
    with transaction(factory) as session:
        payments.close_deposit_account(
            session, institution_id=world.id, account_number=b.account_number or ""
        )
    run = world.disburse(batch_id)
    assert (run.paid, run.failed) == (1, 1)
    rows = world.rows(batch_id)
    assert rows[3].status == RowStatus.failed
    assert rows[3].failure_code == "credit_account_already_closed"
    assert world.balance(world.payer_account) == 90_000
    report = world.summary(batch_id)
    assert report.by_status["failed"] == reporting.StatusTotal(1, 10_000)
    assert report.reconciled


def test_suspense_is_paid_when_the_account_opens(factory: sessionmaker[Session]) -> None:
    world = make_world(factory, 0, funds=100_000)
    with transaction(factory) as session:
        number = resident_id()
        customer = parties.create_customer(
            session,
            institution_id=world.id,
            kind=CustomerKind.individual,
            name="孙七",
            id_number=number,
        )
    farmer = Farmer(customer.id, "孙七", number, None)
    batch_id = world.import_(
        world.csv([world.line(farmer, "30"), world.line(farmer, "20", type="种粮补贴")])
    )
    world.approve(batch_id)
    world.disburse(batch_id)
    assert world.suspense_balance() == 5000
    assert world.summary(batch_id).by_status["suspense"] == reporting.StatusTotal(2, 5000)
    with transaction(factory) as session:
        account = payments.open_deposit_account(
            session, institution_id=world.id, customer_id=customer.id
        )
        opened = account.account_number
    assert world.balance(opened or "") == 5000
    assert world.suspense_balance() == 0
    report = world.summary(batch_id)
    assert report.by_status["paid"] == reporting.StatusTotal(2, 5000)
    assert report.released_from_suspense == reporting.StatusTotal(2, 5000)
    assert report.payer_debit == 5000 and report.reconciled
    # A second account pays nothing more.
    with transaction(factory) as session:
        second = payments.open_deposit_account(
            session, institution_id=world.id, customer_id=customer.id
        )
        second_number = second.account_number
    assert world.balance(second_number or "") == 0


def test_xlsx_import(factory: sessionmaker[Session]) -> None:
    import io

    from openpyxl import Workbook

    world = make_world(factory, 2)
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    for farmer in world.farmers:
        sheet.append([farmer.name, farmer.id_number, farmer.account_number, 88.8, "生态补偿", 2026])
    out = io.BytesIO()
    book.save(out)
    with transaction(factory) as session:
        batch = importing.import_batch(
            session,
            institution_id=world.id,
            maker_id=MAKER,
            payer_account_number=world.payer_account,
            file_name="清单.xlsx",
            content=out.getvalue(),
        )
        assert (batch.file_format, batch.valid_count, batch.valid_amount) == ("xlsx", 2, 17760)


@pytest.mark.usefixtures("cli_database")
def test_the_command_line(factory: sessionmaker[Session], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from huinong.cli.subsidies import app
    from huinong.security.identities import staff_users

    world = make_world(factory, 2, funds=100_000)
    a, b = world.farmers
    with transaction(factory) as session:
        maker = staff_users.create_staff_user(
            session,
            institution_id=world.id,
            username=f"maker{next(_serial)}",
            display_name="柜员",
            roles=["teller"],
            password="Huinong-test-2026",
            must_change_password=False,
        )
        username, maker_id = maker.username, maker.id
    listing = tmp_path / "清单.csv"
    listing.write_bytes(
        "\r\n".join([HEADER, world.line(a, "10"), world.line(b, "5", name="错名")]).encode("gbk")
    )
    runner = CliRunner()
    code = world.institution.code
    arguments = ["import", str(listing), "--institution", code]
    arguments += ["--payer", world.payer_account, "--maker", username]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    with factory() as session:
        batch = session.scalars(
            select(SubsidyBatch).where(SubsidyBatch.institution_id == world.id)
        ).one()
        assert (batch.maker_id, batch.valid_count, batch.row_count) == (maker_id, 1, 2)
        batch_id = batch.id
    report = runner.invoke(app, ["errors", str(batch_id), "--institution", code])
    assert report.exit_code == 0, report.output
    assert "3,name,subsidies.name_mismatch," in report.stdout
    with transaction(factory) as session:
        approval.submit_batch(
            session, institution_id=world.id, batch_id=batch_id, actor_id=maker_id
        )
    with transaction(factory) as session:
        approval.approve_batch(
            session, institution_id=world.id, batch_id=batch_id, checker_id=CHECKER
        )
    paid = runner.invoke(app, ["disburse", str(batch_id), "--institution", code])
    assert paid.exit_code == 0, paid.output
    assert "1 paid" in paid.stdout and "reconciled" in paid.stdout
    assert world.balance(a.account_number or "") == 1000
    shown = runner.invoke(app, ["show", str(batch_id), "--institution", code])
    assert shown.exit_code == 0 and "NOT" not in shown.stdout


def test_imports_racing_each_other_are_caught_at_approval(
    factory: sessionmaker[Session], backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time: imports cannot overlap")
    world = make_world(factory, 1)
    content = world.csv([world.line(world.farmers[0])])
    first, second = factory(), factory()
    try:
        batches = []
        for session in (first, second):  # the second does not see the first's rows
            batches.append(
                importing.import_batch(
                    session,
                    institution_id=world.id,
                    maker_id=MAKER,
                    payer_account_number=world.payer_account,
                    file_name="same.csv",
                    content=content,
                ).id
            )
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    assert [world.errors(b) for b in batches] == [[], []]
    world.approve(batches[0])
    with pytest.raises(Conflict) as caught:
        world.approve(batches[1])
    assert caught.value.code == "subsidies.duplicate_of_approved_batch"
