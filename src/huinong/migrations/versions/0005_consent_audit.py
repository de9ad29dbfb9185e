"""consent records and the audit chain

Creates the consent tables (consents, their categories, data captured under them) and the
audit trail (records, chain heads, anchors, the platform audit key), and installs triggers
that keep audit records and anchors append-only: no DELETE (or TRUNCATE), and the only UPDATE
of a record is the sealer's, filling in sequence and hashes of a record not yet sealed.
SQLite's batch mode rebuilds a table without its triggers: a later migration that alters
``audit_records`` or ``audit_anchors`` must call :func:`install_append_only_guards` again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# What a sealed record's hash covers; none of it may change once written.
_CONTENT_COLUMNS = (
    "id",
    "chain_id",
    "institution_id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_display",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "request_id",
    "detail",
    "content_hash",
)


def install_append_only_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # json has no equality operator: compare its text.
        old = ", ".join(f"OLD.{c}::text" if c == "detail" else f"OLD.{c}" for c in _CONTENT_COLUMNS)
        new = ", ".join(f"NEW.{c}::text" if c == "detail" else f"NEW.{c}" for c in _CONTENT_COLUMNS)
        op.execute(
            """
            CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit trail is append-only: % on % refused',
                    TG_OP, TG_TABLE_NAME;
            END
            $$
            """
        )
        for table in ("audit_records", "audit_anchors"):
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
        op.execute(
            "CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_records_seal_only BEFORE UPDATE ON audit_records FOR EACH ROW "
            f"WHEN (OLD.sequence IS NOT NULL OR NEW.sequence IS NULL OR ({new}) IS DISTINCT FROM ({old})) "
            "EXECUTE FUNCTION audit_append_only()"
        )
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _CONTENT_COLUMNS)
    refuse = "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    for table in ("audit_records", "audit_anchors"):
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {refuse}")
    op.execute(f"CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors {refuse}")
    op.execute(
        "CREATE TRIGGER audit_records_seal_only BEFORE UPDATE ON audit_records "
        f"WHEN OLD.sequence IS NOT NULL OR NEW.sequence IS NULL OR {changed} {refuse}"
    )


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=True),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("sealed_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "last_sequence >= 0", name=op.f("ck_audit_chains_last_sequence_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "audit_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=130), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_audit_keys_name")),
    )
    op.create_table(
        "audit_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chain_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_display", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=True),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("chain_hash", sa.LargeBinary(length=32), nullable=True),
        sa.CheckConstraint(
            "outcome in ('ok', 'denied', 'failed')", name=op.f("ck_audit_records_outcome")
        ),
        sa.CheckConstraint(
            "(sequence is null) = (chain_hash is null) and (sequence is null) = (prev_hash is null)",
            name=op.f("ck_audit_records_sealed_together"),
        ),
        sa.CheckConstraint(
            "sequence is null or sequence > 0", name=op.f("ck_audit_records_sequence_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("chain_id", "sequence", name="uq_audit_records_chain_sequence"),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_records_institution_actor",
            ["institution_id", "actor_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_records_institution_object",
            ["institution_id", "object_type", "object_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_records_institution_time",
            ["institution_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_records_unsealed",
            ["chain_id", "occurred_at", "id"],
            unique=False,
            sqlite_where=sa.text("sequence is null"),
            postgresql_where=sa.text("sequence is null"),
        )

    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chain_id", sa.Uuid(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.CheckConstraint(
            "first_sequence >= 1 and last_sequence >= first_sequence",
            name=op.f("ck_audit_anchors_sequences"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["audit_keys.id"], name=op.f("fk_audit_anchors_key_id_audit_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
        sa.UniqueConstraint("chain_id", "last_sequence", name="uq_audit_anchors_chain_last"),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("grantee_institution_id", sa.Uuid(), nullable=False),
        sa.Column("granted_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", huinong.db.UTCDateTime(), nullable=True),
        sa.Column("evidence_kind", sa.String(length=16), nullable=False),
        sa.Column("evidence_reference", sa.String(length=128), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("purged_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "evidence_kind in ('paper_form', 'e_signature', 'terminal')",
            name=op.f("ck_consents_evidence_kind"),
        ),
        sa.CheckConstraint(
            "purpose in ('account_opening', 'credit_assessment', 'village_credit_campaign', 'marketing', 'government_subsidy')",
            name=op.f("ck_consents_purpose"),
        ),
        sa.CheckConstraint(
            "expires_at is null or expires_at > granted_at",
            name=op.f("ck_consents_expires_after_grant"),
        ),
        sa.CheckConstraint(
            "revoked_at is null or revoked_at >= granted_at",
            name=op.f("ck_consents_revoked_after_grant"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_consents_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["grantee_institution_id"],
            ["institutions.id"],
            name=op.f("fk_consents_grantee_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_consents_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_customer_purpose", ["customer_id", "purpose"], unique=False
        )
        batch_op.create_index(
            "ix_consents_institution_customer", ["institution_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_consents_unpurged",
            ["institution_id", "customer_id"],
            unique=False,
            sqlite_where=sa.text("purged_at is null"),
            postgresql_where=sa.text("purged_at is null"),
        )

    op.create_table(
        "consent_categories",
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "category in ('identity', 'contact', 'household_archive', 'credit', 'transactions')",
            name=op.f("ck_consent_categories_category"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_consent_categories_consent_id_consents")
        ),
        sa.PrimaryKeyConstraint("consent_id", "category", name=op.f("pk_consent_categories")),
    )
    op.create_table(
        "consent_data",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_version", sa.Integer(), nullable=False),
        sa.Column("collected_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "category in ('identity', 'contact', 'household_archive', 'credit', 'transactions')",
            name=op.f("ck_consent_data_category"),
        ),
        sa.CheckConstraint(
            "purpose in ('account_opening', 'credit_assessment', 'village_credit_campaign', 'marketing', 'government_subsidy')",
            name=op.f("ck_consent_data_purpose"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_consent_data_consent_id_consents")
        ),
        sa.ForeignKeyConstraint(
            ["data_key_version"],
            ["security_data_keys.version"],
            name=op.f("fk_consent_data_data_key_version_security_data_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_consent_data_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_consent_data_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_data")),
    )
    with op.batch_alter_table("consent_data", schema=None) as batch_op:
        batch_op.create_index("ix_consent_data_consent", ["consent_id"], unique=False)
        batch_op.create_index(
            "ix_consent_data_customer_category_purpose",
            ["customer_id", "category", "purpose"],
            unique=False,
        )

    install_append_only_guards()


def downgrade() -> None:
    with op.batch_alter_table("consent_data", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_data_customer_category_purpose")
        batch_op.drop_index("ix_consent_data_consent")
    op.drop_table("consent_data")
    op.drop_table("consent_categories")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_unpurged")
        batch_op.drop_index("ix_consents_institution_customer")
        batch_op.drop_index("ix_consents_customer_purpose")
    op.drop_table("consents")
    op.drop_table("audit_anchors")  # its triggers go with it
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_unsealed")
        batch_op.drop_index("ix_audit_records_institution_time")
        batch_op.drop_index("ix_audit_records_institution_object")
        batch_op.drop_index("ix_audit_records_institution_actor")
    op.drop_table("audit_records")
    op.drop_table("audit_keys")
    op.drop_table("audit_chains")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
