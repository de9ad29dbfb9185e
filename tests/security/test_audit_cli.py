"""``huinong audit seal|verify`` and ``huinong consent purge``, run in-process with Typer's
CliRunner on both databases. Tampering happens in a private database of this module (see
tests/security/test_audit.py for why)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from huinong.cli.audit import app as audit_app
from huinong.cli.consent import app as consent_app
from huinong.config import get_settings
from huinong.db import make_engine, make_session_factory, run_in_transaction, transaction
from huinong.migrations import upgrade
from huinong.parties import service as parties
from huinong.parties.models import CustomerKind
from huinong.security.audit import service as audit
from huinong.security.audit.models import AuditRecord
from huinong.security.consent import service as consent
from huinong.security.consent.models import ConsentData, DataCategory, EvidenceKind, Purpose
from tests.api.conftest import resident_id
from tests.conftest import POSTGRES_URL, new_institution

runner = CliRunner()
RECORDS = AuditRecord.__table__


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch):
    """Point the CLI (which reads HUINONG_DATABASE_URL once, cached) at a database."""

    def use(url: str) -> None:
        monkeypatch.setenv("HUINONG_DATABASE_URL", url)
        monkeypatch.setenv("COLUMNS", "250")  # Rich tables: keep ids on one line
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def private_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    schema = f"huinong_audit_cli_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit-cli') / 'tamper.db'}"
    else:
        assert POSTGRES_URL
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    if backend == "postgresql":
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def write(factory: sessionmaker[Session], institution_id: uuid.UUID, n: int) -> None:
    with transaction(factory) as session:
        for i in range(n):
            audit.record(
                session,
                action="payments.cash_deposit",
                institution_id=institution_id,
                object_type="payment",
                object_id=f"p{i}",
            )


def test_seal_then_verify_one_institution(factory, database_url, use_database):
    institution = new_institution(factory)
    write(factory, institution.id, 3)
    use_database(database_url)
    sealed = runner.invoke(audit_app, ["seal", "--institution", institution.code])
    assert sealed.exit_code == 0, sealed.output
    assert institution.code in sealed.output
    assert "3 records sealed in 1 chain" in sealed.output
    again = runner.invoke(audit_app, ["seal", "--institution", institution.code])
    assert again.exit_code == 0 and "nothing to seal" in again.output

    write(factory, institution.id, 2)  # verify seals these first
    verified = runner.invoke(audit_app, ["verify", "--institution", institution.code])
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output and "5 records in 1 chain" in verified.output
    assert "fingerprint" in verified.output

    unknown = runner.invoke(audit_app, ["verify", "--institution", "NO-SUCH"])
    assert unknown.exit_code == 1


def test_verify_names_tampered_records_and_fails(private_url, use_database):
    engine = make_engine(private_url)
    factory = make_session_factory(engine)
    try:
        clean, dirty = uuid.uuid4(), uuid.uuid4()
        write(factory, clean, 2)
        write(factory, dirty, 4)
        use_database(private_url)
        assert runner.invoke(audit_app, ["verify"]).exit_code == 0
        with factory() as session:
            rows = session.execute(
                select(RECORDS.c.id, RECORDS.c.sequence)
                .where(RECORDS.c.chain_id == dirty)
                .order_by(RECORDS.c.sequence)
            ).all()
        with transaction(factory) as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            for trigger in ("no_delete", "seal_only"):
                on = " ON audit_records" if postgres else ""
                session.execute(text(f"DROP TRIGGER IF EXISTS audit_records_{trigger}{on}"))
            session.execute(
                update(RECORDS).where(RECORDS.c.id == rows[1].id).values(outcome="denied")
            )
            session.execute(RECORDS.delete().where(RECORDS.c.id == rows[2].id))
        result = runner.invoke(audit_app, ["verify"])
        assert result.exit_code == 1, result.output
        assert "altered" in result.output and str(rows[1].id) in result.output
        assert "removed" in result.output and "sequence 3 missing" in result.output
        assert "finding(s)" in result.output
        # The clean chain alone still verifies.
        records = run_in_transaction(factory, lambda s: audit.verify(s, chain_id=clean))
        assert records == []
    finally:
        engine.dispose()


def test_consent_purge_dry_run_then_for_real(factory, database_url, use_database):
    institution = new_institution(factory)
    with transaction(factory) as session:
        customer = parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.individual,
            name="王五",
            id_number=resident_id(),
        ).id
        given = consent.grant_consent(
            session,
            institution_id=institution.id,
            customer_id=customer,
            categories=[DataCategory.contact],
            purpose=Purpose.marketing,
            evidence_kind=EvidenceKind.terminal,
            evidence_reference="T-0001",
            collected=[consent.CollectedValue(DataCategory.contact, "mobile", "13700000000")],
        )
    run_in_transaction(
        factory,
        lambda s: consent.revoke_consent(s, institution_id=institution.id, consent_id=given.id),
    )

    def held() -> int:
        with factory() as session:
            return len(
                session.scalars(
                    select(ConsentData.id).where(ConsentData.customer_id == customer)
                ).all()
            )

    use_database(database_url)
    dry = runner.invoke(consent_app, ["purge", "--institution", institution.code, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and str(customer) in dry.output
    assert "security.consent_data 1" in dry.output
    assert held() == 1

    real = runner.invoke(consent_app, ["purge", "--institution", institution.code])
    assert real.exit_code == 0, real.output
    assert str(customer) in real.output and "purged" in real.output
    assert "1 customer(s), 1 purpose(s) purged, 1 row(s) removed" in real.output
    assert held() == 0

    again = runner.invoke(consent_app, ["purge", "--institution", institution.code])
    assert again.exit_code == 0 and "nothing to purge" in again.output
