"""geography: administrative divisions, grids, customers placed in villages

Creates ``divisions`` (national reference data keyed by the 12-digit statistical code, shared
by every institution), ``grids`` and ``grid_villages`` (a village in at most one grid per
institution), and adds ``customers.village_code``. The divisions themselves are data, not
schema: ``huinong geo load-standard`` loads the bundled provinces, cities and counties and
``huinong geo import`` a county's townships and villages; this migration loads nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import huinong.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "divisions",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column("urban_rural_code", sa.String(length=3), nullable=True),
        sa.Column("updated_at", huinong.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(level = 'province') = (parent_code is null)",
            name=op.f("ck_divisions_parent_present"),
        ),
        sa.CheckConstraint(
            "level in ('province', 'city', 'county', 'township', 'village')",
            name=op.f("ck_divisions_level"),
        ),
        sa.CheckConstraint(
            "urban_rural_code is null or level = 'village'",
            name=op.f("ck_divisions_urban_rural_on_village"),
        ),
        sa.CheckConstraint("length(code) = 12", name=op.f("ck_divisions_code_length")),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["divisions.code"], name=op.f("fk_divisions_parent_code_divisions")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_divisions")),
    )
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_divisions_parent_code"), ["parent_code"], unique=False)

    op.create_table(
        "grids",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("manager_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_grids_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"], ["staff_users.id"], name=op.f("fk_grids_manager_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["offices.id"], name=op.f("fk_grids_outlet_id_offices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
        sa.UniqueConstraint("institution_id", "code", name="uq_grids_institution_code"),
    )
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grids_manager_id"), ["manager_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grids_outlet_id"), ["outlet_id"], unique=False)

    op.create_table(
        "grid_villages",
        sa.Column("grid_id", sa.Uuid(), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("added_at", huinong.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
            name=op.f("fk_grid_villages_grid_id_grids"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_grid_villages_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["divisions.code"],
            name=op.f("fk_grid_villages_village_code_divisions"),
        ),
        sa.PrimaryKeyConstraint("grid_id", "village_code", name=op.f("pk_grid_villages")),
        sa.UniqueConstraint(
            "institution_id", "village_code", name="uq_grid_villages_institution_village"
        ),
    )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("village_code", sa.String(length=12), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_customers_village_code"), ["village_code"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customers_village_code_divisions"),
            "divisions",
            ["village_code"],
            ["code"],
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_customers_village_code_divisions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_customers_village_code"))
        batch_op.drop_column("village_code")
    op.drop_table("grid_villages")
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grids_outlet_id"))
        batch_op.drop_index(batch_op.f("ix_grids_manager_id"))
    op.drop_table("grids")
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_divisions_parent_code"))
    op.drop_table("divisions")
