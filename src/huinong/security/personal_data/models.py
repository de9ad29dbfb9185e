"""The data-key table, and the markers that tell key rotation which columns it re-encrypts.

``security_data_keys`` holds one row per data-key version: the 128-bit SM4 key wrapped by the
master key. The newest version is the active one — new values are encrypted under it — and
older versions stay until no value references them (each encrypted row names its version in
a ``data_key_version`` column with a foreign key here, so a key still in use cannot be
deleted). A key row is never updated: the per-process cache of unwrapped keys relies on it.

Keys are platform-wide rather than per institution: they are wrapped by the one platform
master key anyway, and the row binding of every ciphertext (table, field, row id as
associated data) already keeps one institution's values from being passed off as another's.

A table with encrypted columns marks them, so rotation finds them in the metadata without the
security layer importing the domains that own them (it must not: they are above it)::

    id_number_ciphertext: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("id_number"))
    data_key_version: Mapped[int] = mapped_column(
        ForeignKey("security_data_keys.version"), info=DATA_KEY_VERSION
    )
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from huinong.db import Base, UTCDateTime

ENCRYPTED_FIELD = "huinong.encrypted_field"
DATA_KEY_VERSION_MARK = "huinong.data_key_version"
DATA_KEY_VERSION: dict[str, Any] = {DATA_KEY_VERSION_MARK: True}


def encrypted(field: str) -> dict[str, Any]:
    """``info`` of a ciphertext column holding ``field`` (the name bound into its context)."""
    return {ENCRYPTED_FIELD: field}


class DataKey(Base):
    __tablename__ = "security_data_keys"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)
