"""households: members and versioned household archives

Households with a check-digit household number and a village code (no foreign key to the
divisions table yet), their members (customers or named persons with an encrypted ID number),
the immutable versions of their archive (农户经济档案) with the consent purpose each was
collected for, the household-number sequence, and the default deposit account a customer is
found by in a party lookup.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "household_number_sequences",
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_household_number_sequences_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("institution_id", name=op.f("pk_household_number_sequences")),
    )
    op.create_table(
        "customer_default_accounts",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("set_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_customer_default_accounts_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_default_accounts_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_customer_default_accounts_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_default_accounts")),
    )
    op.create_index(
        "ix_customer_default_accounts_account_id",
        "customer_default_accounts",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "households",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("household_number", sa.String(length=12), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("head_customer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["head_customer_id"],
            ["customers.id"],
            name=op.f("fk_households_head_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_households_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint(
            "institution_id", "household_number", name="uq_households_household_number"
        ),
    )
    op.create_index(
        "ix_households_head_customer_id", "households", ["head_customer_id"], unique=False
    )
    op.create_index(
        "ix_households_institution_village",
        "households",
        ["institution_id", "village_code"],
        unique=False,
    )
    op.create_table(
        "household_archive_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("consenting_customer_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("surveyed_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("surveyor_id", sa.Uuid(), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("recorded_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "source in ('field_survey', 'campaign_import', 'customer_update')",
            name=op.f("ck_household_archive_versions_source"),
        ),
        sa.CheckConstraint(
            "schema_version > 0",
            name=op.f("ck_household_archive_versions_schema_version_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_household_archive_versions_consent_id_consents"),
        ),
        sa.ForeignKeyConstraint(
            ["consenting_customer_id"],
            ["customers.id"],
            name=op.f("fk_household_archive_versions_consenting_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_archive_versions_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_household_archive_versions_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["surveyor_id"],
            ["staff_users.id"],
            name=op.f("fk_household_archive_versions_surveyor_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_archive_versions")),
    )
    op.create_index(
        "ix_household_archive_versions_consent",
        "household_archive_versions",
        ["consenting_customer_id", "purpose"],
        unique=False,
    )
    op.create_index(
        "ix_household_archive_versions_household",
        "household_archive_versions",
        ["household_id", "surveyed_on"],
        unique=False,
    )
    op.create_table(
        "household_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("is_labour", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("id_number_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("id_number_index", sa.String(length=64), nullable=True),
        sa.Column("data_key_version", sa.Integer(), nullable=True),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "relationship <> 'head' or customer_id is not null",
            name=op.f("ck_household_members_head_is_customer"),
        ),
        sa.CheckConstraint(
            "relationship in ('head', 'spouse', 'child', 'parent', 'sibling', 'grandchild', "
            "'other')",
            name=op.f("ck_household_members_relationship"),
        ),
        sa.CheckConstraint(
            "(customer_id is null) <> (name is null)",
            name=op.f("ck_household_members_customer_or_named_person"),
        ),
        sa.CheckConstraint(
            "(id_number_ciphertext is null) = (data_key_version is null)",
            name=op.f("ck_household_members_id_number_key"),
        ),
        sa.CheckConstraint(
            "(id_number_ciphertext is null) = (id_number_index is null)",
            name=op.f("ck_household_members_id_number_indexed"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_household_members_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["data_key_version"],
            ["security_data_keys.version"],
            name=op.f("fk_household_members_data_key_version_security_data_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_members_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_household_members_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_members")),
        sa.UniqueConstraint("institution_id", "customer_id", name="uq_household_members_customer"),
    )
    op.create_index(
        "ix_household_members_data_key_version",
        "household_members",
        ["data_key_version"],
        unique=False,
    )
    op.create_index(
        "ix_household_members_household_id", "household_members", ["household_id"], unique=False
    )
    op.create_index(
        "ix_household_members_id_number_index",
        "household_members",
        ["institution_id", "id_number_index"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_household_members_id_number_index", table_name="household_members")
    op.drop_index("ix_household_members_household_id", table_name="household_members")
    op.drop_index("ix_household_members_data_key_version", table_name="household_members")
    op.drop_table("household_members")
    op.drop_index(
        "ix_household_archive_versions_household", table_name="household_archive_versions"
    )
    op.drop_index("ix_household_archive_versions_consent", table_name="household_archive_versions")
    op.drop_table("household_archive_versions")
    op.drop_index("ix_households_institution_village", table_name="households")
    op.drop_index("ix_households_head_customer_id", table_name="households")
    op.drop_table("households")
    op.drop_index("ix_customer_default_accounts_account_id", table_name="customer_default_accounts")
    op.drop_table("customer_default_accounts")
    op.drop_table("household_number_sequences")
