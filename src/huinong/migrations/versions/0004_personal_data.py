"""personal data: data keys, encrypted customer identifiers, blind indexes

Creates the data-key table, encrypts the foundation's plain ``customers.id_number`` and
``customers.phone`` (SM4-GCM under a new data key version 1, bound to row and column, with
blind indexes for lookup) and drops the plain columns, so no plaintext C2 value survives the
upgrade. The uniqueness of an ID number within an institution moves to its blind index.

The encryption uses the same format functions as the application
(``huinong.security.personal_data.envelope``), so rows migrated here and rows written later
are indistinguishable. It needs the master key (``HUINONG_MASTER_KEY``) when there are
customers to migrate; an empty database gets its first data key on first use instead.

Rows are processed in keyset batches of ``BATCH`` (one UPDATE … executemany per batch) inside
the migration's single transaction: the upgrade is all or nothing.

On SQLite the column changes rebuild the table (batch mode). SQLite cannot switch off foreign
key enforcement inside a transaction, so the rebuild's DROP of the old ``customers`` table
would fail if another table's rows referenced customers; at this revision only
``customer_credentials`` (0002, in the same release) does, and it is empty on every database
that is upgraded across this revision.

What becomes of the plaintext on disk:

* SQLite: the migration turns on ``secure_delete`` for its connection, so the dropped
  columns, the old table and its ID-number index are overwritten with zeros, not left in free
  pages; once the WAL is checkpointed (SQLite does so when the last connection closes) the
  file holds no plain ID number or phone.
* PostgreSQL: the table is rewritten (``CLUSTER``) after the columns are dropped, so no live
  data file holds them. WAL segments and backups taken before the upgrade still do: expire
  them on the institution's retention schedule.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:00:00
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import huinong.db
from huinong import clock

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000

_customers = sa.table(
    "customers",
    sa.column("id", sa.Uuid()),
    sa.column("institution_id", sa.Uuid()),
    sa.column("id_number", sa.String()),
    sa.column("phone", sa.String()),
    sa.column("id_number_ciphertext", sa.LargeBinary()),
    sa.column("id_number_index", sa.String()),
    sa.column("phone_ciphertext", sa.LargeBinary()),
    sa.column("phone_index", sa.String()),
    sa.column("data_key_version", sa.Integer()),
)
_data_keys = sa.table(
    "security_data_keys",
    sa.column("version", sa.Integer()),
    sa.column("wrapped_key", sa.LargeBinary()),
    sa.column("created_at", huinong.db.UTCDateTime()),
)


def _batches(connection: sa.Connection, *columns: Any) -> Iterator[Sequence[sa.Row[Any]]]:
    """Every customer row, ``BATCH`` at a time in id order (keyset: no OFFSET rescans)."""
    last: uuid.UUID | None = None
    while True:
        query = sa.select(_customers.c.id, *columns).order_by(_customers.c.id).limit(BATCH)
        if last is not None:
            query = query.where(_customers.c.id > last)
        batch = connection.execute(query).all()
        if not batch:
            return
        yield batch
        last = batch[-1].id


def _encrypt_plain_columns(connection: sa.Connection) -> None:
    from huinong.security import keyring
    from huinong.security.crypto import random_key
    from huinong.security.personal_data import envelope

    if not connection.scalar(sa.select(sa.func.count()).select_from(_customers)):
        return
    master = keyring.master_key()
    version = 1
    data_key = random_key()
    connection.execute(
        _data_keys.insert().values(
            version=version,
            wrapped_key=envelope.wrap_data_key(master, version=version, data_key=data_key),
            created_at=clock.now(),
        )
    )
    index_keys = {
        field: keyring.derived_key(envelope.blind_index_key_purpose(field))
        for field in ("id_number", "phone")
    }

    def sealed(field: str, row_id: uuid.UUID, value: str) -> bytes:
        context = envelope.value_context("customers", field, row_id)
        return envelope.seal(data_key, value, context=context)

    def index(field: str, institution_id: uuid.UUID, value: str) -> str:
        return envelope.blind_index_with(
            index_keys[field], institution_id=institution_id, value=value
        )

    update = (
        _customers.update()
        .where(_customers.c.id == sa.bindparam("b_id"))
        .values(
            id_number_ciphertext=sa.bindparam("b_id_number_ciphertext"),
            id_number_index=sa.bindparam("b_id_number_index"),
            phone_ciphertext=sa.bindparam("b_phone_ciphertext"),
            phone_index=sa.bindparam("b_phone_index"),
            data_key_version=sa.bindparam("b_data_key_version"),
        )
    )
    for batch in _batches(
        connection, _customers.c.institution_id, _customers.c.id_number, _customers.c.phone
    ):
        changes = []
        for row in batch:
            # Normalised as the application normalises before indexing (parties.rules), so a
            # lookup finds a migrated row; the foundation stored them normalised already.
            number = row.id_number.strip().upper()
            phone = None if row.phone is None else row.phone.strip()
            changes.append(
                {
                    "b_id": row.id,
                    "b_id_number_ciphertext": sealed("id_number", row.id, number),
                    "b_id_number_index": index("id_number", row.institution_id, number),
                    "b_phone_ciphertext": None if phone is None else sealed("phone", row.id, phone),
                    "b_phone_index": None
                    if phone is None
                    else index("phone", row.institution_id, phone),
                    "b_data_key_version": version,
                }
            )
        connection.execute(update, changes)


def _decrypt_to_plain_columns(connection: sa.Connection) -> None:
    from huinong.security import keyring
    from huinong.security.personal_data import envelope

    master = keyring.master_key()
    keys = {
        row.version: envelope.unwrap_data_key(master, version=row.version, wrapped=row.wrapped_key)
        for row in connection.execute(sa.select(_data_keys.c.version, _data_keys.c.wrapped_key))
    }
    update = (
        _customers.update()
        .where(_customers.c.id == sa.bindparam("b_id"))
        .values(id_number=sa.bindparam("b_id_number"), phone=sa.bindparam("b_phone"))
    )
    for batch in _batches(
        connection,
        _customers.c.id_number_ciphertext,
        _customers.c.phone_ciphertext,
        _customers.c.data_key_version,
    ):
        changes = []
        for row in batch:
            key = keys[row.data_key_version]

            def opened(
                field: str, blob: bytes, row_id: uuid.UUID = row.id, key: bytes = key
            ) -> str:
                context = envelope.value_context("customers", field, row_id)
                return envelope.open_sealed(key, blob, context=context)

            changes.append(
                {
                    "b_id": row.id,
                    "b_id_number": opened("id_number", row.id_number_ciphertext),
                    "b_phone": None
                    if row.phone_ciphertext is None
                    else opened("phone", row.phone_ciphertext),
                }
            )
        connection.execute(update, changes)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Freed pages and cells (the dropped columns, the old index) are overwritten with
        # zeros instead of lingering in the file; this connection only, it ends with the run.
        op.execute("PRAGMA secure_delete = ON")
    op.create_table(
        "security_data_keys",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("version > 0", name=op.f("ck_security_data_keys_version_positive")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_security_data_keys")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_number_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("id_number_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("data_key_version", sa.Integer(), nullable=True))

    _encrypt_plain_columns(bind)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_institution_id_number")
        batch_op.drop_column("id_number")
        batch_op.drop_column("phone")
        batch_op.alter_column(
            "id_number_ciphertext", existing_type=sa.LargeBinary(), nullable=False
        )
        batch_op.alter_column("id_number_index", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("data_key_version", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            op.f("fk_customers_data_key_version_security_data_keys"),
            "security_data_keys",
            ["data_key_version"],
            ["version"],
        )
        batch_op.create_check_constraint(
            op.f("ck_customers_phone_indexed"),
            "(phone_ciphertext is null) = (phone_index is null)",
        )
        batch_op.create_index(
            "ix_customers_institution_id_number_index",
            ["institution_id", "id_number_index"],
            unique=True,
        )
        batch_op.create_index(
            "ix_customers_institution_phone_index", ["institution_id", "phone_index"], unique=False
        )
        batch_op.create_index("ix_customers_data_key_version", ["data_key_version"], unique=False)

    if bind.dialect.name == "postgresql":
        # DROP COLUMN only hides a column: its values stay in every stored row version. A
        # rewrite of the table (CLUSTER nulls dropped columns as it copies the rows, and may
        # run in a transaction, unlike VACUUM FULL) leaves no plaintext in the live files.
        op.execute("CLUSTER customers USING pk_customers")
        op.execute("ALTER TABLE customers SET WITHOUT CLUSTER")


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_number", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))

    _decrypt_to_plain_columns(op.get_bind())

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_data_key_version")
        batch_op.drop_index("ix_customers_institution_phone_index")
        batch_op.drop_index("ix_customers_institution_id_number_index")
        batch_op.drop_constraint(op.f("ck_customers_phone_indexed"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_customers_data_key_version_security_data_keys"), type_="foreignkey"
        )
        batch_op.drop_column("data_key_version")
        batch_op.drop_column("phone_index")
        batch_op.drop_column("phone_ciphertext")
        batch_op.drop_column("id_number_index")
        batch_op.drop_column("id_number_ciphertext")
        batch_op.alter_column("id_number", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index(
            "ix_customers_institution_id_number", ["institution_id", "id_number"], unique=True
        )
    op.drop_table("security_data_keys")
