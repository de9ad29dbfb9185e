"""bills: billers, bills, bill files, bill payments, reconciliations

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("settlement_account_id", sa.Uuid(), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("biller_public_key", sa.String(length=130), nullable=True),
        sa.Column("our_public_key", sa.String(length=130), nullable=True),
        sa.Column("our_private_key_wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(protocol = 'http') = (base_url is not null and biller_public_key is not null and our_private_key_wrapped is not null)",
            name=op.f("ck_billers_http_settings"),
        ),
        sa.CheckConstraint(
            "kind in ('electricity', 'water', 'telecom', 'resident_medical_insurance', 'resident_pension_insurance')",
            name=op.f("ck_billers_kind"),
        ),
        sa.CheckConstraint("protocol in ('file', 'http')", name=op.f("ck_billers_protocol")),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_billers_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_billers_settlement_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billers")),
        sa.UniqueConstraint("institution_id", "code", name="uq_billers_institution_code"),
    )

    op.create_table(
        "bill_files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("new_bills", sa.Integer(), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_bill_files_biller_id_billers")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_bill_files_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_files")),
        sa.UniqueConstraint("institution_id", "biller_id", "digest", name="uq_bill_files_digest"),
    )

    op.create_table(
        "bills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("bill_file_id", sa.Uuid(), nullable=True),
        sa.Column("biller_bill_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("paid_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "(status = 'paid') = (paid_at is not null)", name=op.f("ck_bills_paid_at")
        ),
        sa.CheckConstraint("source in ('file', 'http')", name=op.f("ck_bills_source")),
        sa.CheckConstraint("status in ('open', 'paid', 'cancelled')", name=op.f("ck_bills_status")),
        sa.CheckConstraint("amount_due > 0", name=op.f("ck_bills_amount_due_positive")),
        sa.ForeignKeyConstraint(
            ["bill_file_id"], ["bill_files.id"], name=op.f("fk_bills_bill_file_id_bill_files")
        ),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_bills_biller_id_billers")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_bills_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint(
            "institution_id", "biller_id", "reference", "period", name="uq_bills_reference_period"
        ),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bills_institution_reference", ["institution_id", "reference"], unique=False
        )

    op.create_table(
        "bill_reconciliations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("their_count", sa.Integer(), nullable=False),
        sa.Column("their_amount", sa.BigInteger(), nullable=False),
        sa.Column("our_count", sa.Integer(), nullable=False),
        sa.Column("our_amount", sa.BigInteger(), nullable=False),
        sa.Column("matched_count", sa.Integer(), nullable=False),
        sa.Column("matched_amount", sa.BigInteger(), nullable=False),
        sa.Column("mismatch_count", sa.Integer(), nullable=False),
        sa.Column("settled_amount", sa.BigInteger(), nullable=False),
        sa.Column("settlement_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_bill_reconciliations_biller_id_billers")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_bill_reconciliations_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_reconciliations")),
        sa.UniqueConstraint(
            "institution_id", "biller_id", "digest", name="uq_bill_reconciliations_digest"
        ),
    )
    with op.batch_alter_table("bill_reconciliations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bill_reconciliations_biller_date",
            ["institution_id", "biller_id", "business_date"],
            unique=False,
        )

    op.create_table(
        "bill_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("debit_account_id", sa.Uuid(), nullable=False),
        sa.Column("credit_account_id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("confirmation", sa.String(length=16), nullable=False),
        sa.Column("confirmation_attempts", sa.Integer(), nullable=False),
        sa.Column("last_confirmation_error", sa.String(length=200), nullable=True),
        sa.Column("biller_receipt", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("settled_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(confirmation = 'confirmed') = (confirmed_at is not null)",
            name=op.f("ck_bill_payments_confirmed_at"),
        ),
        sa.CheckConstraint(
            "channel in ('counter', 'service_point', 'web_hall')",
            name=op.f("ck_bill_payments_channel"),
        ),
        sa.CheckConstraint(
            "confirmation in ('not_required', 'pending', 'confirmed')",
            name=op.f("ck_bill_payments_confirmation"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bill_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["bill_id"], ["bills.id"], name=op.f("fk_bill_payments_bill_id_bills")
        ),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_bill_payments_biller_id_billers")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_bill_payments_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_bill_payments_debit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_bill_payments_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["settled_by_id"],
            ["bill_reconciliations.id"],
            name=op.f("fk_bill_payments_settled_by_id_bill_reconciliations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payments")),
        sa.UniqueConstraint("bill_id", name=op.f("uq_bill_payments_bill_id")),
        sa.UniqueConstraint("institution_id", "client_id", name="uq_bill_payments_client_id"),
    )
    with op.batch_alter_table("bill_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bill_payments_biller_date",
            ["institution_id", "biller_id", "business_date"],
            unique=False,
        )
        batch_op.create_index(
            "ix_bill_payments_confirmation", ["institution_id", "confirmation"], unique=False
        )

    op.create_table(
        "bill_reconciliation_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("reconciliation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payment_reference", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("our_amount", sa.BigInteger(), nullable=True),
        sa.Column("their_amount", sa.BigInteger(), nullable=True),
        sa.Column("their_row", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind in ('missing_on_their_side', 'missing_on_our_side', 'amount_differs', 'duplicate')",
            name=op.f("ck_bill_reconciliation_items_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_bill_reconciliation_items_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["bill_reconciliations.id"],
            name=op.f("fk_bill_reconciliation_items_reconciliation_id_bill_reconciliations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_reconciliation_items")),
    )
    with op.batch_alter_table("bill_reconciliation_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bill_reconciliation_items_reconciliation", ["reconciliation_id"], unique=False
        )


def downgrade() -> None:
    for table in (
        "bill_reconciliation_items",
        "bill_payments",
        "bill_reconciliations",
        "bills",
        "bill_files",
        "billers",
    ):
        op.drop_table(table)
