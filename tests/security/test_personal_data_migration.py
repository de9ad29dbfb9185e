"""Migration 0004 encrypts the foundation's plain ID numbers and phones, on both databases.

A database is built at revision 0003 (the last with plain columns), filled with customers the
foundation's way (raw SQL, plain values), upgraded to head, and then: every ciphertext
decrypts to its original, the blind indexes find the customers, the plain columns are gone,
and — reading the database's own files — no plain value is left on disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect, select, text

from huinong.db import UTCDateTime, transaction
from huinong.migrations.metadata import metadata
from huinong.parties import rules
from huinong.parties import service as parties
from huinong.parties.models import Customer
from huinong.security.personal_data import service as personal_data
from tests.security.fresh_database import FreshDatabase, fresh_database


def resident_id(serial: int) -> str:
    body = f"520102{1960 + serial % 40}0{1 + serial % 9}1{serial % 9}{serial % 1000:03d}"
    return body + rules.resident_id_check_char(body)


_TYPES = {"id": sa.Uuid(), "institution_id": sa.Uuid(), "created_at": UTCDateTime()}


def _typed(statement: str) -> sa.TextClause:
    """Raw SQL whose ids and timestamps bind as each backend stores them."""
    clause = text(statement)
    named = [sa.bindparam(n, type_=t) for n, t in _TYPES.items() if f":{n}" in statement]
    return clause.bindparams(*named) if named else clause


def insert_plain(
    database: FreshDatabase, count: int
) -> tuple[list[uuid.UUID], dict[uuid.UUID, tuple[str, str | None]]]:
    institutions = [uuid.uuid4(), uuid.uuid4()]
    now = datetime(2026, 11, 1, tzinfo=UTC)
    plain: dict[uuid.UUID, tuple[str, str | None]] = {}
    with database.engine.begin() as connection:
        for n, institution_id in enumerate(institutions):
            connection.execute(
                _typed(
                    "insert into institutions (id, code, name, currency, business_date, "
                    "created_at) values (:institution_id, :code, :name, 'CNY', :day, :created_at)"
                ),
                {
                    "institution_id": institution_id,
                    "code": f"MIG{n}{uuid.uuid4().hex[:6]}",
                    "name": f"迁移测试 {n}",
                    "day": date(2026, 11, 1),
                    "created_at": now,
                },
            )
        for serial in range(count):
            customer_id = uuid.uuid4()
            number = resident_id(serial)
            phone = None if serial % 4 == 0 else f"1860{serial:07d}"
            connection.execute(
                _typed(
                    "insert into customers (id, institution_id, kind, name, id_number, phone, "
                    "created_at) values (:id, :institution_id, 'individual', :name, "
                    ":id_number, :phone, :created_at)"
                ),
                {
                    "id": customer_id,
                    "institution_id": institutions[serial % 2],
                    "name": f"迁移客户{serial}",
                    "id_number": number,
                    "phone": phone,
                    "created_at": now,
                },
            )
            plain[customer_id] = (number, phone)
    return institutions, plain


def sqlite_files(database: FreshDatabase) -> bytes:
    assert database.path is not None
    with contextlib.closing(sqlite3.connect(database.path, isolation_level=None)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [database.path, database.path.with_name(database.path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def postgres_files(database: FreshDatabase) -> bytes | None:
    """The on-disk files of every table and index of the schema, after a checkpoint; None when
    the test's role may not read server files (not a superuser)."""
    with database.engine.connect() as connection:
        if not connection.scalar(
            text("select rolsuper from pg_roles where rolname = current_user")
        ):
            return None
        connection.execute(text("CHECKPOINT"))
        paths = connection.scalars(
            text(
                "select pg_relation_filepath(c.oid) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = :schema and c.relkind in ('r', 'i', 't')"
            ),
            {"schema": database.schema},
        ).all()
        return b"".join(
            connection.scalar(text("select pg_read_binary_file(:path)"), {"path": path})
            for path in paths
            if path
        )


@pytest.mark.parametrize("count", [0, 2503])
def test_upgrade_encrypts_the_plain_customer_fields(backend: str, tmp_path: Path, count: int):
    with fresh_database(backend, tmp_path, revision="0003") as database:
        institutions, plain = insert_plain(database, count)
        database.engine.dispose()  # the upgrade runs alone, as in production
        database.upgrade("head")

        columns = {c["name"] for c in inspect(database.engine).get_columns("customers")}
        assert "id_number" not in columns and "phone" not in columns
        assert {"id_number_ciphertext", "id_number_index", "phone_ciphertext"} <= columns
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("customers")}
        assert "ix_customers_institution_id_number" not in indexes
        assert "ix_customers_institution_id_number_index" in indexes

        with transaction(database.factory) as session:
            keys = personal_data.key_status(
                session, tables=personal_data.encrypted_tables(metadata)
            )
            if not count:
                assert keys == []  # nothing to encrypt: the first key comes with first use
                return
            values = count + sum(1 for _, phone in plain.values() if phone)
            assert [(k.version, k.active, k.values) for k in keys] == [(1, True, values)]
            customers = session.scalars(select(Customer)).all()
            assert len(customers) == count
            for customer in customers:
                identifiers = parties.identifiers(session, customer)
                assert (identifiers.id_number, identifiers.phone) == plain[customer.id]
                assert customer.data_key_version == 1
                assert (customer.phone_index is None) == (identifiers.phone is None)

            # The blind indexes the migration computed are the application's.
            sample = list(plain.items())[:25]
            for customer_id, (number, phone) in sample:
                found = [
                    parties.find_customer_by_id_number(
                        session, institution_id=institution, id_number=number.lower()
                    )
                    for institution in institutions
                ]
                assert [c.id for c in found if c is not None] == [customer_id]
                if phone is not None:
                    matches = [
                        c.id
                        for institution in institutions
                        for c in parties.find_customers_by_phone(
                            session, institution_id=institution, phone=phone
                        )
                    ]
                    assert matches == [customer_id]

        # Nothing plain is left in the database's files.
        database.engine.dispose()
        stored = sqlite_files(database) if backend == "sqlite" else postgres_files(database)
        if stored is None:
            pytest.skip("reading PostgreSQL's files needs a superuser")
        assert "迁移客户1".encode() in stored  # names stay plain: the search finds what is there
        for number, phone in list(plain.values())[:200]:
            assert number.encode() not in stored, number
            if phone is not None:
                assert phone.encode() not in stored, phone


def test_downgrade_restores_the_plain_fields(backend: str, tmp_path: Path):
    from alembic import command

    from huinong.migrations import alembic_config

    with fresh_database(backend, tmp_path, revision="0003") as database:
        _, plain = insert_plain(database, 9)
        database.engine.dispose()
        database.upgrade("head")
        command.downgrade(alembic_config(database.url), "0003")
        with database.engine.connect() as connection:
            rows = connection.execute(
                text("select id, id_number, phone from customers").columns(
                    sa.column("id", sa.Uuid()), sa.column("id_number"), sa.column("phone")
                )
            ).all()
        assert {r.id: (r.id_number, r.phone) for r in rows} == plain
        columns = {c["name"] for c in inspect(database.engine).get_columns("customers")}
        assert "id_number_ciphertext" not in columns
        assert "security_data_keys" not in inspect(database.engine).get_table_names()
