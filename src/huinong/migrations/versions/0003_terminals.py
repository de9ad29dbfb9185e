"""terminals: registry, keys, request nonces, geofence alerts, platform keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=130), nullable=False),
        sa.Column("private_key_wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("retired_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "(status = 'retired') = (retired_at is not null)",
            name=op.f("ck_platform_keys_retired_at"),
        ),
        sa.CheckConstraint("status in ('active', 'retired')", name=op.f("ck_platform_keys_status")),
        sa.CheckConstraint("serial > 0", name=op.f("ck_platform_keys_serial_positive")),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_platform_keys_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_keys")),
        sa.UniqueConstraint("institution_id", "serial", name="uq_platform_keys_institution_serial"),
    )
    with op.batch_alter_table("platform_keys", schema=None) as batch_op:
        batch_op.create_index(
            "uq_platform_keys_one_active",
            ["institution_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "terminals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("binding_kind", sa.String(length=16), nullable=False),
        sa.Column("binding_reference", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("geofence_latitude_micro", sa.Integer(), nullable=True),
        sa.Column("geofence_longitude_micro", sa.Integer(), nullable=True),
        sa.Column("geofence_radius_metres", sa.Integer(), nullable=True),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "binding_kind in ('service_point', 'merchant')",
            name=op.f("ck_terminals_binding_kind"),
        ),
        sa.CheckConstraint(
            "kind in ('smart_terminal', 'pos', 'mobile')", name=op.f("ck_terminals_kind")
        ),
        sa.CheckConstraint(
            "status in ('pending', 'active', 'suspended', 'revoked')",
            name=op.f("ck_terminals_status"),
        ),
        sa.CheckConstraint(
            "(geofence_latitude_micro is null) = (geofence_longitude_micro is null) "
            "and (geofence_latitude_micro is null) = (geofence_radius_metres is null)",
            name=op.f("ck_terminals_geofence_complete"),
        ),
        sa.CheckConstraint(
            "geofence_latitude_micro between -90000000 and 90000000 "
            "and geofence_longitude_micro between -180000000 and 180000000 "
            "and geofence_radius_metres > 0",
            name=op.f("ck_terminals_geofence_bounds"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_terminals_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("institution_id", "code", name="uq_terminals_institution_code"),
    )

    op.create_table(
        "terminal_geofence_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("terminal_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("latitude_micro", sa.Integer(), nullable=False),
        sa.Column("longitude_micro", sa.Integer(), nullable=False),
        sa.Column("distance_metres", sa.Integer(), nullable=False),
        sa.Column("fence_latitude_micro", sa.Integer(), nullable=False),
        sa.Column("fence_longitude_micro", sa.Integer(), nullable=False),
        sa.Column("fence_radius_metres", sa.Integer(), nullable=False),
        sa.Column("key_serial", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_terminal_geofence_alerts_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_geofence_alerts_terminal_id_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_geofence_alerts")),
    )
    with op.batch_alter_table("terminal_geofence_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_terminal_geofence_alerts_institution_time",
            ["institution_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_terminal_geofence_alerts_terminal", ["terminal_id", "occurred_at"], unique=False
        )

    op.create_table(
        "terminal_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("terminal_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=130), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.Column("retired_at", huinong.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "(status = 'retired') = (retired_at is not null)",
            name=op.f("ck_terminal_keys_retired_at"),
        ),
        sa.CheckConstraint("status in ('active', 'retired')", name=op.f("ck_terminal_keys_status")),
        sa.CheckConstraint("serial > 0", name=op.f("ck_terminal_keys_serial_positive")),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_terminal_keys_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_keys_terminal_id_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_keys")),
        sa.UniqueConstraint(
            "institution_id", "fingerprint", name="uq_terminal_keys_institution_fingerprint"
        ),
        sa.UniqueConstraint("terminal_id", "serial", name="uq_terminal_keys_terminal_serial"),
    )
    with op.batch_alter_table("terminal_keys", schema=None) as batch_op:
        batch_op.create_index(
            "uq_terminal_keys_one_active",
            ["terminal_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "terminal_nonces",
        sa.Column("terminal_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_terminal_nonces_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_nonces_terminal_id_terminals"),
        ),
        sa.PrimaryKeyConstraint("terminal_id", "nonce", name=op.f("pk_terminal_nonces")),
    )
    with op.batch_alter_table("terminal_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_terminal_nonces_expiry", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("terminal_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_terminal_nonces_expiry")
    op.drop_table("terminal_nonces")
    with op.batch_alter_table("terminal_keys", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_terminal_keys_one_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
    op.drop_table("terminal_keys")
    with op.batch_alter_table("terminal_geofence_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_terminal_geofence_alerts_terminal")
        batch_op.drop_index("ix_terminal_geofence_alerts_institution_time")
    op.drop_table("terminal_geofence_alerts")
    op.drop_table("terminals")
    with op.batch_alter_table("platform_keys", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_platform_keys_one_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
    op.drop_table("platform_keys")
