"""Bill payment through the services, on both databases: billers and their settlement
accounts, bill files (all rows or none, idempotent), paying (balances, idempotency, refusals
that write nothing), HTTP billers against the real fake biller (query, confirmation, failure
then retry, bad signatures both ways), settlement files and reconciliation."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from huinong import clock
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Transfer
from huinong.payments import service as payments
from huinong.payments.bills import billers, confirmations, files, intake, paying, settlement
from huinong.payments.bills.client import BillerError
from huinong.payments.bills.common import FileRejected
from huinong.payments.bills.fake_biller import FakeBiller, running
from huinong.payments.bills.models import (
    Bill,
    BillFile,
    BillPayment,
    BillReconciliation,
    Confirmation,
    MismatchKind,
)
from huinong.security.audit.models import AuditRecord
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey
from tests.conftest import new_institution
from tests.payments.test_payments_service import balance, open_funded

BILL_FILE = (
    "户号,账期,金额,缴费截止日期\n"
    "3301001,2026-10,128.50,2026-11-30\n"
    "3301002,2026-10,45.00,2026-11-30\n"
    "3301003,2026-10,300.00,2026-11-30\n"
).encode("gbk")


def make_biller(factory, institution, code="GRID", **kw):
    with transaction(factory) as s:
        biller = billers.create_biller(
            s,
            institution_id=institution.id,
            code=code,
            name="国网某县供电公司",
            kind=kw.pop("kind", "electricity"),
            **kw,
        )
        return biller.id


def import_file(factory, institution, biller_id, data=BILL_FILE):
    with transaction(factory) as s:
        result = intake.import_bill_file(
            s, institution_id=institution.id, biller_id=biller_id, data=data, filename="b.csv"
        )
        return result.replayed, result.bill_file.new_bills


def bill_of(factory, institution, reference):
    with factory() as s:
        bill = s.scalar(
            select(Bill).where(Bill.institution_id == institution.id, Bill.reference == reference)
        )
        assert bill is not None
        return bill.id, bill.amount_due


def pay(factory, institution, bill_id, number, amount, key="k1", channel="counter"):
    def unit(s):
        account = payments.deposit_account(s, institution_id=institution.id, account_number=number)
        payment = paying.pay_bill(
            s,
            institution_id=institution.id,
            client_id=key,
            bill_id=bill_id,
            account=account,
            amount=amount,
            channel=channel,
        )
        return payment.id

    return run_in_transaction(factory, unit)


def settlement_balance(factory, institution, biller_id):
    with factory() as s:
        biller = billers.get_biller(s, institution_id=institution.id, biller_id=biller_id)
        return billers.settlement_balance(s, biller)


def counts(factory, institution):
    with factory() as s:

        def n(model):
            return s.scalar(
                select(func.count())
                .select_from(model)
                .where(model.institution_id == institution.id)
            )

        return {m.__name__: n(m) for m in (Bill, BillFile, BillPayment, Transfer, AuditRecord)}


# --------------------------------------------------------------------------- billers and files


def test_a_biller_gets_its_own_settlement_account(factory, institution):
    biller_id = make_biller(factory, institution)
    with factory() as s:
        biller = billers.get_biller(s, institution_id=institution.id, biller_id=biller_id)
        account = ledger.get_account(
            s, institution_id=institution.id, account_id=biller.settlement_account_id
        )
        assert (account.code, account.owner_id, account.type) == (
            billers.AGENCY_PAYABLES,
            biller.id,
            "liability",
        )
        assert account.debits_must_not_exceed_credits
        assert biller.our_private_key_wrapped is None  # a file biller has no keys
    with pytest.raises(Conflict) as taken, transaction(factory) as s:
        billers.create_biller(
            s, institution_id=institution.id, code="GRID", name="x", kind="electricity"
        )
    assert taken.value.field == "code"
    with pytest.raises(InvalidInput) as kind, transaction(factory) as s:
        billers.create_biller(s, institution_id=institution.id, code="W", name="x", kind="gas")
    assert kind.value.field == "kind"
    with pytest.raises(InvalidInput) as http, transaction(factory) as s:
        billers.create_biller(
            s, institution_id=institution.id, code="T", name="x", kind="telecom", protocol="http"
        )
    assert http.value.field == "base_url"


def test_importing_a_gbk_bill_file_then_the_same_file_again(factory, institution):
    biller_id = make_biller(factory, institution)
    assert import_file(factory, institution, biller_id) == (False, 3)
    before = counts(factory, institution)
    assert import_file(factory, institution, biller_id) == (True, 3)
    assert counts(factory, institution) == before
    # an overlapping later file: known rows skipped, the new one added
    later = BILL_FILE.decode("gbk") + "3301004,2026-10,9.99,2026-11-30\n"
    assert import_file(factory, institution, biller_id, later.encode()) == (False, 1)
    assert bill_of(factory, institution, "3301004")[1] == 999


def test_a_file_with_a_bad_row_writes_nothing(factory, institution):
    biller_id = make_biller(factory, institution)
    before = counts(factory, institution)
    bad = BILL_FILE + "3301009,2026-10,abc,2026-11-30\n".encode("gbk")
    with pytest.raises(FileRejected) as rejected, transaction(factory) as s:
        intake.import_bill_file(s, institution_id=institution.id, biller_id=biller_id, data=bad)
    assert [(e.row, e.column) for e in rejected.value.errors] == [(5, "金额")]
    assert rejected.value.status == 422
    assert counts(factory, institution) == before


def test_a_row_contradicting_a_bill_on_record_rejects_the_file(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    before = counts(factory, institution)
    changed = (
        b"reference,period,amount,due_date\n"
        b"3309999,2026-10,1.00,2026-11-30\n"
        b"3301001,2026-10,1.00,2026-11-30\n"
    )
    with pytest.raises(FileRejected) as rejected, transaction(factory) as s:
        intake.import_bill_file(s, institution_id=institution.id, biller_id=biller_id, data=changed)
    assert [(e.row, e.column) for e in rejected.value.errors] == [(3, "amount")]
    assert counts(factory, institution) == before


def test_missing_columns_write_nothing(factory, institution):
    biller_id = make_biller(factory, institution)
    before = counts(factory, institution)
    with pytest.raises(FileRejected) as rejected, transaction(factory) as s:
        intake.import_bill_file(
            s, institution_id=institution.id, biller_id=biller_id, data=b"reference,amount\n1,2\n"
        )
    assert {e.column for e in rejected.value.errors} == {"period", "due_date"}
    assert counts(factory, institution) == before


# --------------------------------------------------------------------------- paying


def test_paying_a_bill_moves_the_money_and_marks_it_paid(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    number = open_funded(factory, institution, 20_000)
    bill_id, due = bill_of(factory, institution, "3301001")
    payment_id = pay(factory, institution, bill_id, number, due)
    assert balance(factory, institution, number) == 20_000 - 12850
    assert settlement_balance(factory, institution, biller_id) == 12850
    with factory() as s:
        bill = s.get(Bill, bill_id)
        payment = s.get(BillPayment, payment_id)
        assert bill.status == "paid" and bill.paid_at is not None
        assert payment.confirmation == Confirmation.not_required
        assert payment.channel == "counter"
        assert s.get(Transfer, payment.transfer_id).amount == 12850
        audited = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "bills.paid", AuditRecord.object_id == str(payment_id))
        )
        assert audited == 1
    # the same client id again: the same payment, no second movement
    assert pay(factory, institution, bill_id, number, due) == payment_id
    assert balance(factory, institution, number) == 20_000 - 12850


def test_a_paid_bill_cannot_be_paid_again(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    number = open_funded(factory, institution, 20_000)
    bill_id, due = bill_of(factory, institution, "3301002")
    pay(factory, institution, bill_id, number, due, key="first")
    before = counts(factory, institution)
    with pytest.raises(Conflict) as again:
        pay(factory, institution, bill_id, number, due, key="second")
    assert (again.value.code, again.value.field) == ("bills.already_paid", "bill_id")
    assert counts(factory, institution) == before
    assert balance(factory, institution, number) == 20_000 - 4500


def test_refusals_write_nothing(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    poor = open_funded(factory, institution, 100)
    rich = open_funded(factory, institution, 100_000)
    bill_id, due = bill_of(factory, institution, "3301003")
    before = counts(factory, institution)
    with pytest.raises(Conflict) as broke:
        pay(factory, institution, bill_id, poor, due, key="a")
    assert (broke.value.code, broke.value.field) == ("ledger.exceeds_credits", "amount")
    with pytest.raises(InvalidInput) as wrong:
        pay(factory, institution, bill_id, rich, due - 1, key="b")
    assert (wrong.value.code, wrong.value.field) == ("bills.wrong_amount", "amount")
    with pytest.raises(InvalidInput):
        pay(factory, institution, bill_id, rich, due, key="c", channel="atm")
    assert counts(factory, institution) == before
    assert balance(factory, institution, poor) == 100
    with factory() as s:
        assert s.get(Bill, bill_id).status == "open"
    # a reused client id for another bill
    pay(factory, institution, bill_id, rich, due, key="d")
    other_id, other_due = bill_of(factory, institution, "3301001")
    with pytest.raises(Conflict) as reused:
        pay(factory, institution, other_id, rich, other_due, key="d")
    assert reused.value.code == "bills.client_id_reused"


def test_another_institutions_bill_is_not_found(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    bill_id, due = bill_of(factory, institution, "3301001")
    other = new_institution(factory)
    number = open_funded(factory, other, 100_000)
    with pytest.raises(NotFound):
        pay(factory, other, bill_id, number, due)
    with pytest.raises(NotFound), factory() as s:
        billers.get_biller(s, institution_id=other.id, biller_id=biller_id)


# --------------------------------------------------------------------------- HTTP billers


@pytest.fixture
def fake():
    biller = FakeBiller()
    with running(biller) as url:
        biller.url = url  # type: ignore[attr-defined]
        yield biller


def http_biller(factory, institution, fake, code="TEL"):
    biller_id = make_biller(
        factory,
        institution,
        code=code,
        kind="telecom",
        protocol="http",
        base_url=fake.url,
        biller_public_key=fake.public_key.to_hex(),
    )
    with factory() as s:
        biller = billers.get_biller(s, institution_id=institution.id, biller_id=biller_id)
        fake.clients[institution.code] = SM2PublicKey.from_hex(biller.our_public_key)
    return biller_id


def test_an_http_bill_is_queried_paid_and_confirmed(factory, institution, fake):
    biller_id = http_biller(factory, institution, fake)
    fake.add_bill("13900001111", "2026-11", 5000, date(2026, 12, 10))
    [bill_id] = intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900001111"
    )
    number = open_funded(factory, institution, 8000)
    payment_id = pay(factory, institution, bill_id, number, 5000)
    outcome = confirmations.confirm_payment(
        factory, institution_id=institution.id, payment_id=payment_id
    )
    assert outcome.confirmation == Confirmation.confirmed
    [(confirmed_id, confirmation)] = fake.confirmations.items()
    assert confirmed_id == str(payment_id) and confirmation["amount_fen"] == 5000
    with factory() as s:
        payment = s.get(BillPayment, payment_id)
        assert payment.biller_receipt == confirmation["receipt"]
        assert payment.confirmation_attempts == 1
    # the biller now says paid; asking again does not reopen our bill
    intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900001111"
    )
    with factory() as s:
        assert s.get(Bill, bill_id).status == "paid"


def test_the_biller_is_authoritative_for_an_unpaid_amount(factory, institution, fake):
    biller_id = http_biller(factory, institution, fake)
    remote = fake.add_bill("13900002222", "2026-11", 5000)
    [bill_id] = intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900002222"
    )
    fake.bills[remote]["amount_fen"] = 6000
    intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900002222"
    )
    number = open_funded(factory, institution, 10_000)
    with pytest.raises(InvalidInput):
        pay(factory, institution, bill_id, number, 5000)
    fake.bills[remote]["status"] = "paid"  # paid elsewhere meanwhile
    intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900002222"
    )
    with pytest.raises(Conflict) as cancelled:
        pay(factory, institution, bill_id, number, 6000)
    assert cancelled.value.code == "bills.bill_cancelled"


def test_a_failed_confirmation_stays_pending_and_is_retried(factory, institution, fake):
    biller_id = http_biller(factory, institution, fake)
    fake.add_bill("13900003333", "2026-11", 2500)
    [bill_id] = intake.refresh_bills(
        factory, institution_id=institution.id, biller_id=biller_id, reference="13900003333"
    )
    number = open_funded(factory, institution, 2500)
    payment_id = pay(factory, institution, bill_id, number, 2500)
    fake.fail_confirmations = 2
    first = confirmations.confirm_payment(
        factory, institution_id=institution.id, payment_id=payment_id
    )
    assert first.confirmation == Confirmation.pending
    assert "bills.biller_unavailable" in (first.error or "")
    # the money has moved whatever the biller says
    assert balance(factory, institution, number) == 0
    assert settlement_balance(factory, institution, biller_id) == 2500
    summary = confirmations.confirm_pending(factory, institution_id=institution.id)
    assert (summary.confirmed, summary.still_pending) == (0, 1)
    summary = confirmations.confirm_pending(factory, institution_id=institution.id)
    assert (summary.confirmed, summary.still_pending) == (1, 0)
    with factory() as s:
        payment = s.get(BillPayment, payment_id)
        assert (payment.confirmation, payment.confirmation_attempts) == ("confirmed", 3)
        assert payment.last_confirmation_error is None
    assert list(fake.confirmations) == [str(payment_id)]
    assert confirmations.confirm_pending(factory, institution_id=institution.id).confirmed == 0


def test_bad_signatures_both_ways(factory, institution, fake):
    biller_id = http_biller(factory, institution, fake)
    fake.add_bill("13900004444", "2026-11", 100)
    fake.clients[institution.code] = SM2PrivateKey.generate().public_key  # they lost our key
    with pytest.raises(BillerError) as refused:
        intake.refresh_bills(
            factory, institution_id=institution.id, biller_id=biller_id, reference="13900004444"
        )
    assert refused.value.code == "bills.biller_refused"
    with factory() as s:
        biller = billers.get_biller(s, institution_id=institution.id, biller_id=biller_id)
        fake.clients[institution.code] = SM2PublicKey.from_hex(biller.our_public_key)
    fake.answer_key = SM2PrivateKey.generate()  # an impostor answers
    with pytest.raises(BillerError) as forged:
        intake.refresh_bills(
            factory, institution_id=institution.id, biller_id=biller_id, reference="13900004444"
        )
    assert forged.value.code == "bills.biller_answer_invalid"
    assert counts(factory, institution)["Bill"] == 0


# --------------------------------------------------------------------------- settlement


def _paid_day(factory, institution, payment_id):
    with factory() as s:
        return s.get(BillPayment, uuid.UUID(str(payment_id))).business_date


def test_the_settlement_file_lists_the_days_payments_with_totals(factory, institution):
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    number = open_funded(factory, institution, 100_000)
    ids = []
    for i, reference in enumerate(("3301001", "3301002")):
        bill_id, due = bill_of(factory, institution, reference)
        ids.append(pay(factory, institution, bill_id, number, due, key=f"s{i}"))
    day = _paid_day(factory, institution, ids[0])
    with transaction(factory) as s:
        data, totals = settlement.settlement_file(
            s, institution_id=institution.id, biller_id=biller_id, business_date=day
        )
    lines, read_totals = files.read_settlement_file(data)
    assert totals == read_totals == files.SettlementTotals(2, 12850 + 4500)
    assert [line.payment_id for line in lines] == [str(i) for i in ids]
    assert [line.reference for line in lines] == ["3301001", "3301002"]
    with transaction(factory) as s:
        _, none = settlement.settlement_file(
            s, institution_id=institution.id, biller_id=biller_id, business_date=date(2000, 1, 1)
        )
    assert none == files.SettlementTotals(0, 0)


def test_reconciliation_lists_each_mismatch_and_settles_only_matches(factory, institution, fake):
    biller_id = http_biller(factory, institution, fake)
    number = open_funded(factory, institution, 100_000)
    ids = []
    for i, amount in enumerate((1000, 2000, 3000, 4000)):
        fake.add_bill(f"1390000{i:04d}", "2026-11", amount)
        [bill_id] = intake.refresh_bills(
            factory, institution_id=institution.id, biller_id=biller_id, reference=f"1390000{i:04d}"
        )
        payment_id = pay(factory, institution, bill_id, number, amount, key=f"r{i}")
        confirmations.confirm_payment(factory, institution_id=institution.id, payment_id=payment_id)
        ids.append(str(payment_id))
    day = _paid_day(factory, institution, ids[0])
    with factory() as s:
        paid_at = {
            str(p.id): p.created_at
            for p in s.scalars(
                select(BillPayment).where(BillPayment.institution_id == institution.id)
            )
        }
    confirmed_days = {clock.local_date(at) for at in paid_at.values()}
    returned = fake.return_file(
        confirmed_days.pop(),
        drop=[ids[1]],
        amounts={ids[2]: 3100},
        duplicate=[ids[3]],
        extra=[("NOT-OURS-1", "13900009999", 500)],
    )
    before_clearing = _clearing(factory, institution)
    with transaction(factory) as s:
        result = settlement.reconcile(
            s, institution_id=institution.id, biller_id=biller_id, data=returned
        )
        found = {
            (i.kind, i.payment_reference): (i.our_amount, i.their_amount)
            for i in settlement.reconciliation_items(s, reconciliation=result)
        }
        result_id, settled = result.id, result.settled_amount
        assert result.business_date == day
    assert found == {
        (MismatchKind.missing_on_their_side, ids[1]): (2000, None),
        (MismatchKind.amount_differs, ids[2]): (3000, 3100),
        (MismatchKind.duplicate, ids[3]): (4000, 4000),
        (MismatchKind.missing_on_our_side, "NOT-OURS-1"): (None, 500),
    }
    assert settled == 1000  # only the matched payment
    assert settlement_balance(factory, institution, biller_id) == 9000
    assert _clearing(factory, institution) == before_clearing - 1000
    # the same file again: the stored result, nothing settled twice
    with transaction(factory) as s:
        again = settlement.reconcile(
            s, institution_id=institution.id, biller_id=biller_id, data=returned
        )
        assert again.id == result_id
    assert settlement_balance(factory, institution, biller_id) == 9000
    # a corrected file settles the rest, and not the first payment again
    corrected = fake.return_file(day)
    with transaction(factory) as s:
        fixed = settlement.reconcile(
            s, institution_id=institution.id, biller_id=biller_id, data=corrected, business_date=day
        )
        assert (fixed.mismatch_count, fixed.matched_count, fixed.settled_amount) == (0, 4, 9000)
    assert settlement_balance(factory, institution, biller_id) == 0
    with factory() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(BillReconciliation)
                .where(BillReconciliation.institution_id == institution.id)
            )
            == 2
        )


def _clearing(factory, institution):
    with factory() as s:
        account = ledger.system_account(s, institution_id=institution.id, code=AccountCode.clearing)
        return account.debits_posted - account.credits_posted


def test_a_bad_return_file_is_rejected_whole(factory, institution):
    biller_id = make_biller(factory, institution)
    with pytest.raises(FileRejected) as rejected, transaction(factory) as s:
        settlement.reconcile(
            s,
            institution_id=institution.id,
            biller_id=biller_id,
            data=b"payment_id,amount\nx,1.00\ny,oops\n",
            business_date=date(2026, 11, 22),
        )
    assert [(e.row, e.column) for e in rejected.value.errors] == [(3, "amount")]
    with pytest.raises(InvalidInput) as undated, transaction(factory) as s:
        settlement.reconcile(
            s, institution_id=institution.id, biller_id=biller_id, data=b"payment_id,amount\nx,1\n"
        )
    assert undated.value.field == "business_date"


def test_paid_at_is_stable_across_a_round_trip(factory, institution):
    """The confirmation's content (paid_at included) must be identical on every retry, or
    the biller's idempotency on our payment id would refuse the retry."""
    moment = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC)
    biller_id = make_biller(factory, institution)
    import_file(factory, institution, biller_id)
    number = open_funded(factory, institution, 100_000)
    bill_id, due = bill_of(factory, institution, "3301001")
    with clock.frozen(moment):
        payment_id = pay(factory, institution, bill_id, number, due)
    with factory() as s:
        assert s.get(BillPayment, payment_id).created_at == moment


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_database(database_url, monkeypatch):
    from huinong.config import get_settings

    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_the_cli_imports_settles_and_reconciles(factory, institution, cli_database, tmp_path):
    from typer.testing import CliRunner

    from huinong.cli.bills import app

    runner = CliRunner()
    where = ["--institution", institution.code]
    made = runner.invoke(
        app,
        ["create-biller", *where, "--code", "WATER", "--name", "县自来水公司", "--kind", "water"],
    )
    assert made.exit_code == 0, made.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(BILL_FILE + "3301009,2026-10,1.5x,2026-11-30\n".encode("gbk"))
    refused = runner.invoke(app, ["import", *where, "--biller", "WATER", str(bad)])
    assert refused.exit_code == 1
    assert "金额" in refused.stderr and "5" in refused.stderr
    assert counts(factory, institution)["Bill"] == 0
    good = tmp_path / "bills.csv"
    good.write_bytes(BILL_FILE)
    imported = runner.invoke(app, ["import", *where, "--biller", "WATER", str(good)])
    assert imported.exit_code == 0, imported.output
    assert "3 new bills" in imported.stdout and "(gbk)" in imported.stdout
    again = runner.invoke(app, ["import", *where, "--biller", "WATER", str(good)])
    assert "imported before" in again.stdout
    number = open_funded(factory, institution, 100_000)
    bill_id, due = bill_of(factory, institution, "3301001")
    payment_id = pay(factory, institution, bill_id, number, due)
    day = _paid_day(factory, institution, payment_id)
    out = tmp_path / "settle.csv"
    settled = runner.invoke(
        app, ["settlement", *where, "--biller", "WATER", "--date", day.isoformat(), "-o", str(out)]
    )
    assert settled.exit_code == 0, settled.output
    assert "1 payments, 128.50 yuan" in settled.stdout
    _, totals = files.read_settlement_file(out.read_bytes())
    assert totals == files.SettlementTotals(1, 12850)
    returned = tmp_path / "return.csv"
    returned.write_text(f"payment_id,reference,amount\n{payment_id},3301001,128.50\nX1,1,2.00\n")
    reconciled = runner.invoke(app, ["reconcile", *where, "--biller", "WATER", str(returned)])
    assert reconciled.exit_code == 2  # mismatches found
    assert "missing_on_our_side" in reconciled.stdout and "1 matched" in reconciled.stdout
    assert (
        settlement_balance(factory, institution, biller_id_of(factory, institution, "WATER")) == 0
    )
    pending = runner.invoke(app, ["confirm-pending", *where])
    assert pending.exit_code == 0 and "confirmed 0, still pending 0" in pending.stdout
    unknown = runner.invoke(app, ["import", *where, "--biller", "NOPE", str(good)])
    assert unknown.exit_code == 1 and "NOPE" in unknown.stderr


def biller_id_of(factory, institution, code):
    with factory() as s:
        return billers.get_biller_by_code(s, institution_id=institution.id, code=code).id
