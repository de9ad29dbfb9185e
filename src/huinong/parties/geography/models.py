"""Tables of geography: administrative divisions and grids (网格).

``divisions`` is national reference data, one table for every institution, and so the one
table here without an ``institution_id``: the 12-digit statistical division codes are
published by the National Bureau of Statistics, mean the same place for every bank on the
platform, and a village two banks both serve is one village. Keeping one copy means one
import per county instead of one per tenant, and lets two institutions' reports about the same
village be compared. Nothing in the table is an institution's business data, so sharing it
leaks nothing between tenants. Codes are stored padded to 12 digits at every level.

A grid belongs to one institution: a set of villages attached to an outlet and looked after
by one account manager, which gives the five-level chain head office → branch → outlet
(``offices``) → township → village (``divisions``). ``grid_villages`` repeats the grid's
institution so that the database itself can refuse a village in two grids of one
institution (two institutions may each grid the same village).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime


class Division(Base):
    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code"), index=True
    )
    # 城乡分类代码 (111 … 220) of a village, when the import file gave one.
    urban_rural_code: Mapped[str | None] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("length(code) = 12", name="code_length"),
        CheckConstraint(
            "level in ('province', 'city', 'county', 'township', 'village')", name="level"
        ),
        CheckConstraint("(level = 'province') = (parent_code is null)", name="parent_present"),
        CheckConstraint(
            "urban_rural_code is null or level = 'village'", name="urban_rural_on_village"
        ),
    )


class Grid(Base):
    __tablename__ = "grids"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    outlet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offices.id"), index=True)
    manager_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("institution_id", "code", name="uq_grids_institution_code"),)


class GridVillage(Base):
    __tablename__ = "grid_villages"

    grid_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True
    )
    village_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("divisions.code"), primary_key=True
    )
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A village belongs to at most one grid of an institution.
        UniqueConstraint(
            "institution_id", "village_code", name="uq_grid_villages_institution_village"
        ),
    )
