"""subsidies: disbursement batches, their rows and the rows' validation errors

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subsidy_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("payer_customer_id", sa.Uuid(), nullable=False),
        sa.Column("payer_account_id", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("valid_count", sa.Integer(), nullable=False),
        sa.Column("valid_amount", sa.BigInteger(), nullable=False),
        sa.Column("maker_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("submitted_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("checker_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.Column("disbursed_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "file_format in ('csv', 'xlsx')", name=op.f("ck_subsidy_batches_file_format")
        ),
        sa.CheckConstraint(
            "status in ('imported', 'submitted', 'approved', 'rejected', 'disbursing', 'disbursed')",
            name=op.f("ck_subsidy_batches_status"),
        ),
        sa.CheckConstraint(
            "checker_id is null or checker_id <> maker_id",
            name=op.f("ck_subsidy_batches_maker_checker"),
        ),
        sa.CheckConstraint(
            "valid_amount >= 0", name=op.f("ck_subsidy_batches_valid_amount_not_negative")
        ),
        sa.CheckConstraint(
            "valid_count >= 0 and valid_count <= row_count", name=op.f("ck_subsidy_batches_counts")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_subsidy_batches_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_subsidy_batches_payer_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_customer_id"],
            ["customers.id"],
            name=op.f("fk_subsidy_batches_payer_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_batches")),
    )
    op.create_index(
        "ix_subsidy_batches_institution_created",
        "subsidy_batches",
        ["institution_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "subsidy_rows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("id_number_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("id_number_index", sa.String(length=64), nullable=True),
        sa.Column("data_key_version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("subsidy_type", sa.String(length=40), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("paid_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("released_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status = 'invalid' or (customer_id is not null and amount is not null and id_number_index is not null and subsidy_type is not null and year is not null)",
            name=op.f("ck_subsidy_rows_valid_complete"),
        ),
        sa.CheckConstraint(
            "status in ('invalid', 'pending', 'paid', 'suspense', 'failed')",
            name=op.f("ck_subsidy_rows_status"),
        ),
        sa.CheckConstraint(
            "(id_number_ciphertext is null) = (id_number_index is null)",
            name=op.f("ck_subsidy_rows_id_number_indexed"),
        ),
        sa.CheckConstraint(
            "amount is null or amount > 0", name=op.f("ck_subsidy_rows_amount_positive")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_subsidy_rows_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["subsidy_batches.id"],
            name=op.f("fk_subsidy_rows_batch_id_subsidy_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subsidy_rows_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["data_key_version"],
            ["security_data_keys.version"],
            name=op.f("fk_subsidy_rows_data_key_version_security_data_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_subsidy_rows_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_rows")),
        sa.UniqueConstraint("batch_id", "row_number", name="uq_subsidy_rows_batch_row"),
    )
    op.create_index(
        "ix_subsidy_rows_batch_status",
        "subsidy_rows",
        ["batch_id", "status", "row_number"],
        unique=False,
    )
    op.create_index(
        "ix_subsidy_rows_customer_status", "subsidy_rows", ["customer_id", "status"], unique=False
    )
    op.create_index(
        "ix_subsidy_rows_data_key_version", "subsidy_rows", ["data_key_version"], unique=False
    )
    op.create_index(
        "ix_subsidy_rows_institution_person_type_year",
        "subsidy_rows",
        ["institution_id", "id_number_index", "subsidy_type", "year"],
        unique=False,
    )
    op.create_table(
        "subsidy_row_errors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["subsidy_batches.id"],
            name=op.f("fk_subsidy_row_errors_batch_id_subsidy_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_row_errors")),
    )
    op.create_index(
        "ix_subsidy_row_errors_batch_row",
        "subsidy_row_errors",
        ["batch_id", "row_number"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("subsidy_row_errors")
    op.drop_table("subsidy_rows")
    op.drop_table("subsidy_batches")
