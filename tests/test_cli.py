"""The ``huinong`` command, run in-process with Typer's CliRunner against both databases."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from huinong.cli import app
from huinong.config import get_settings
from huinong.db import transaction
from huinong.ids import uuid7
from huinong.institutions.models import Institution
from huinong.ledger import service
from huinong.ledger.chart import AccountCode
from huinong.ledger.types import AccountType, TransferFlags, TransferInput
from huinong.security.identities import sessions
from huinong.security.principals import Role
from tests.conftest import new_institution, staff_token

BEAN_CHECK = Path(sys.executable).with_name("bean-check")
runner = CliRunner()


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI (which reads HUINONG_DATABASE_URL once, cached) at the test database."""
    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _activity(factory: sessionmaker[Session], institution: Institution) -> int:
    """A deposit, a withdrawal held then posted, and a pending voided: 3 posted movements."""
    iid = institution.id
    with transaction(factory) as s:
        cash = service.system_account(s, institution_id=iid, code=AccountCode.cash_in_vault).id
        customer = service.create_account(
            s,
            institution_id=iid,
            ledger="CNY",
            type=AccountType.liability,
            code=AccountCode.customer_deposits,
            name="张三",
            with_account_number=True,
            debits_must_not_exceed_credits=True,
        ).id

    def t(debit: uuid.UUID, credit: uuid.UUID, amount: int, **kw: Any) -> TransferInput:
        return TransferInput(uuid7(), debit, credit, amount, "CNY", code=1, **kw)

    held = t(customer, cash, 2_000, flags=TransferFlags.pending)
    voided = t(customer, cash, 300, flags=TransferFlags.pending)
    batches = [
        [t(cash, customer, 10_000)],
        [held, voided],
        [
            TransferInput(uuid7(), pending_id=held.id, flags=TransferFlags.post_pending),
            TransferInput(uuid7(), pending_id=voided.id, flags=TransferFlags.void_pending),
        ],
        [t(customer, cash, 5_000)],
    ]
    for batch in batches:
        with transaction(factory) as s:
            results = service.create_transfers(s, institution_id=iid, batch=batch)
        assert [r.result.value for r in results] == ["ok"] * len(batch)
    return 3


def test_ledger_export_beancount_to_a_file(factory, cli_database, tmp_path):
    institution = new_institution(factory)
    posted = _activity(factory, institution)
    out = tmp_path / ("exports-" + "x" * 90) / "ledger.beancount"  # a path past 80 columns
    out.parent.mkdir()
    args = ["ledger", "export", "--format", "beancount", "--institution", institution.code]
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    # One line however long the path: a script reading the message finds it whole.
    assert f"wrote {posted} transactions to {out}\n" in result.stderr
    checked = subprocess.run(
        [str(BEAN_CHECK), str(out)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (checked.returncode, checked.stderr) == (0, "")
    entries, errors, _ = loader.load_file(str(out))
    assert errors == []
    balances = {e.account: e.amount.number for e in entries if isinstance(e, data.Balance)}
    customer = next(name for name in balances if ":2011-CustomerDeposits:" in name)
    assert str(balances[customer]) == "-30.00"  # 100.00 in, 20.00 and 50.00 out, 3.00 voided


def test_ledger_export_to_stdout_and_bad_arguments(factory, cli_database):
    institution = new_institution(factory)
    result = runner.invoke(app, ["ledger", "export", "--institution", institution.code])
    assert result.exit_code == 0, result.output
    assert f'option "title" "测试银行 {institution.code} ({institution.code})' in result.stdout
    assert " open Assets:" in result.stdout

    unknown_format = runner.invoke(app, ["ledger", "export", "--format", "csv"])
    assert unknown_format.exit_code == 1
    assert "unknown format" in unknown_format.stderr
    unknown_institution = runner.invoke(app, ["ledger", "export", "--institution", "NO-SUCH"])
    assert unknown_institution.exit_code == 1
    assert "NO-SUCH" in unknown_institution.stderr


def test_ledger_verify_exit_code(factory, cli_database):
    institution = new_institution(factory)
    _activity(factory, institution)
    result = runner.invoke(app, ["ledger", "verify", "--institution", institution.code])
    assert result.exit_code == 0, result.output
    assert "ledger verify: clean" in result.stdout
    everything = runner.invoke(app, ["ledger", "verify"])
    assert everything.exit_code == 0, everything.output


def test_institution_create_makes_its_first_administrator(factory, cli_database):
    code = f"CLI{uuid.uuid4().hex[:6].upper()}"
    result = runner.invoke(app, ["institution", "create", code, "县农商银行", "--admin", "chief"])
    assert result.exit_code == 0, result.output
    password = result.output.split("one-time password")[1].split()[0]
    with transaction(factory) as session:
        signed_in = sessions.sign_in_staff(
            session, institution_code=code, username="chief", password=password
        )
    assert isinstance(signed_in, sessions.TokenPair)
    assert signed_in.must_change_password
    assert signed_in.principal.roles == {Role.admin}
    again = runner.invoke(app, ["institution", "create", code, "重复"])
    assert again.exit_code == 1
    assert "exists" in again.output


def test_staff_reset_password_unlocks_and_forces_a_change(factory, cli_database):
    institution = new_institution(factory)
    staff_token(factory, institution, ["teller"], username="locked.out")
    for _ in range(5):
        with transaction(factory) as session:
            sessions.sign_in_staff(
                session, institution_code=institution.code, username="locked.out", password="x"
            )
    listed = runner.invoke(app, ["staff", "list", "--institution", institution.code])
    assert listed.exit_code == 0, listed.output
    assert "locked.out" in listed.output and "(locked)" in listed.output
    result = runner.invoke(
        app, ["staff", "reset-password", "locked.out", "--institution", institution.code]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("one-time password")[1].split()[0]
    with transaction(factory) as session:
        signed_in = sessions.sign_in_staff(
            session, institution_code=institution.code, username="locked.out", password=password
        )
    assert isinstance(signed_in, sessions.TokenPair) and signed_in.must_change_password
    missing = runner.invoke(
        app, ["staff", "reset-password", "nobody", "--institution", institution.code]
    )
    assert missing.exit_code == 1 and "no staff user nobody" in missing.output
