"""Use cases of personal data: data keys, encryption of C2/C3 values, blind indexes, rotation.

How a domain stores an encrypted field (``huinong.parties`` does it for ID numbers and phones)::

    key = personal_data.active_key(session)
    row.id_number_ciphertext = personal_data.seal(
        key, id_number, table="customers", field="id_number", row_id=row.id
    )
    row.id_number_index = personal_data.blind_index(
        id_number, field="id_number", institution_id=row.institution_id
    )
    row.data_key_version = key.version
    ...
    personal_data.unseal(session, row.id_number_ciphertext, version=row.data_key_version,
                         table="customers", field="id_number", row_id=row.id)

All encrypted fields of a row share its ``data_key_version``: rotation re-encrypts a row
whole, in one statement, so a row is never half under one key and half under another.

**Keys.** The newest data key is the active one. The first is created on the first
encryption (two workers racing to create it collide on the primary key; the loser's
transaction is retried and finds the winner's key). ``huinong keys rotate`` creates the next
and re-encrypts, batch by batch, every row still under an older one (:func:`reencrypt_batch`:
one transaction per batch, so an interruption leaves every row whole under one key or the
other, and running again continues where it stopped).

**Caching.** Unwrapping is cached per process by the wrapped bytes
(:func:`~huinong.security.personal_data.envelope.unwrap_data_key`); within a transaction the
key of each version is read once. The active version is read on every encryption — one
primary-key read — so a rotation started by the CLI is obeyed by every worker at once.

**Failures.** A value that fails authentication (tampered, moved to another row or column, or
the master key is not the one that wrapped its data key) is never shown: the use case stops
with ``security.personal_data_unreadable`` (503: the platform's own setup or data is at
fault, not the request), and the log names the table, field and row — never a value.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, MetaData, Table, bindparam, func, select, update
from sqlalchemy.orm import Session, SessionTransaction

from huinong import clock
from huinong.errors import ServiceUnavailable
from huinong.security import keyring
from huinong.security.crypto import CryptoError, random_key
from huinong.security.personal_data import envelope
from huinong.security.personal_data.models import DATA_KEY_VERSION_MARK, ENCRYPTED_FIELD, DataKey

log = logging.getLogger(__name__)


class PersonalDataUnreadable(ServiceUnavailable):
    def __init__(self, message: str) -> None:
        super().__init__("security.personal_data_unreadable", message)


@dataclass(frozen=True)
class DataKeyMaterial:
    """An unwrapped data key: never logged, never stored."""

    version: int
    key: bytes = field(repr=False)


# --------------------------------------------------------------------------- keys

# Keys read in the current transaction, by version, kept in the session's ``info`` beside the
# transaction they belong to: a new transaction (after a rollback, say) starts afresh, so a
# key that was never committed is never reused.
_TRANSACTION_KEYS = "huinong.personal_data.keys"


def _transaction_keys(session: Session) -> dict[int, bytes] | None:
    transaction = session.get_transaction()
    if transaction is None:
        return None
    held: tuple[SessionTransaction, dict[int, bytes]] | None = session.info.get(_TRANSACTION_KEYS)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_TRANSACTION_KEYS] = held
    return held[1]


def _unwrap(version: int, wrapped: bytes) -> bytes:
    try:
        return envelope.unwrap_data_key(keyring.master_key(), version=version, wrapped=wrapped)
    except CryptoError:
        log.error("data key v%d does not unwrap under the configured master key", version)
        raise PersonalDataUnreadable(
            f"data key version {version} cannot be unwrapped: HUINONG_MASTER_KEY is not the "
            "master key this database's keys were created under"
        ) from None


def _add_key(session: Session, version: int) -> DataKeyMaterial:
    key = random_key()
    wrapped = envelope.wrap_data_key(keyring.master_key(), version=version, data_key=key)
    session.add(DataKey(version=version, wrapped_key=wrapped, created_at=clock.now()))
    session.flush()
    log.info("created data key v%d", version)
    return DataKeyMaterial(version, key)


def create_data_key(session: Session) -> DataKeyMaterial:
    """A new data key, one version above the newest; it is active from now on."""
    return _add_key(session, (session.scalar(select(func.max(DataKey.version))) or 0) + 1)


def active_key(session: Session) -> DataKeyMaterial:
    """The key new values are encrypted under (version 1 is created on first use)."""
    row = session.execute(
        select(DataKey.version, DataKey.wrapped_key).order_by(DataKey.version.desc()).limit(1)
    ).first()
    if row is None:
        # Exactly version 1, not "the next": writers racing here collide on the primary key
        # and the losers' transactions are retried, finding the winner's key. ("Newest + 1"
        # would let a loser that reads after the winner commits add a needless version 2.)
        return _add_key(session, 1)
    return DataKeyMaterial(row.version, _unwrap(row.version, row.wrapped_key))


def active_version(session: Session) -> int | None:
    return session.scalar(select(func.max(DataKey.version)))


def key_of_version(session: Session, version: int) -> DataKeyMaterial:
    cache = _transaction_keys(session)
    if cache is not None and version in cache:
        return DataKeyMaterial(version, cache[version])
    wrapped = session.scalar(select(DataKey.wrapped_key).where(DataKey.version == version))
    if wrapped is None:
        raise PersonalDataUnreadable(f"data key version {version} does not exist")
    key = _unwrap(version, wrapped)
    cache = _transaction_keys(session)  # the read above began the transaction if need be
    if cache is not None:
        cache[version] = key
    return DataKeyMaterial(version, key)


# --------------------------------------------------------------------------- values


def seal(key: DataKeyMaterial, value: str, *, table: str, field: str, row_id: uuid.UUID) -> bytes:
    """``value`` encrypted under ``key``, bound to its table, field and row."""
    return envelope.seal(key.key, value, context=envelope.value_context(table, field, row_id))


def encrypt(
    session: Session, value: str, *, table: str, field: str, row_id: uuid.UUID
) -> tuple[bytes, int]:
    """``value`` encrypted under the active key, and that key's version."""
    key = active_key(session)
    return seal(key, value, table=table, field=field, row_id=row_id), key.version


def unseal(
    session: Session,
    ciphertext: bytes,
    *,
    version: int,
    table: str,
    field: str,
    row_id: uuid.UUID,
) -> str:
    """The value :func:`seal` encrypted; :class:`PersonalDataUnreadable` if it was altered or
    does not belong to this table, field and row."""
    key = key_of_version(session, version)
    try:
        return envelope.open_sealed(
            key.key, ciphertext, context=envelope.value_context(table, field, row_id)
        )
    except (CryptoError, UnicodeDecodeError):
        log.error(
            "%s.%s of row %s fails authentication under key v%d", table, field, row_id, version
        )
        raise PersonalDataUnreadable(
            f"the stored {field} of {table} {row_id} fails authentication: it was altered or "
            "does not belong to this row"
        ) from None


def blind_index(value: str, *, field: str, institution_id: uuid.UUID) -> str:
    """The keyed SM3 index of a normalised ``value`` of ``field`` within an institution."""
    return envelope.blind_index_with(
        keyring.derived_key(envelope.blind_index_key_purpose(field)),
        institution_id=institution_id,
        value=value,
    )


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class EncryptedTable:
    """A table with encrypted columns, as found in the metadata by their markers."""

    table: Table
    id_column: Column[uuid.UUID]
    version_column: Column[int]
    fields: tuple[tuple[str, Column[bytes]], ...]  # (field bound into the context, column)

    @property
    def name(self) -> str:
        return self.table.name


def encrypted_tables(metadata: MetaData) -> list[EncryptedTable]:
    """Every table whose columns carry the ``encrypted(...)`` and ``DATA_KEY_VERSION`` marks."""
    found = []
    for table in metadata.sorted_tables:
        fields = tuple(
            (column.info[ENCRYPTED_FIELD], column)
            for column in table.columns
            if ENCRYPTED_FIELD in column.info
        )
        versions = [c for c in table.columns if c.info.get(DATA_KEY_VERSION_MARK)]
        if not fields:
            continue
        primary = list(table.primary_key.columns)
        if len(versions) != 1 or len(primary) != 1:
            raise ValueError(
                f"{table.name}: encrypted columns need one data_key_version column and a "
                "single-column primary key"
            )
        found.append(EncryptedTable(table, primary[0], versions[0], fields))
    return found


def reencrypt_batch(session: Session, *, table: EncryptedTable, limit: int) -> int:
    """Re-encrypt up to ``limit`` rows of ``table`` still under an older key; how many.

    Rows are taken in id order and locked (PostgreSQL ``FOR UPDATE``; SQLite's writer lock
    covers it), so a concurrent change of a row waits for the batch. Run it in a transaction
    of its own, batch after batch, until it returns 0.
    """
    target = active_key(session)
    rows = session.execute(
        select(table.id_column, table.version_column, *(c for _, c in table.fields))
        .where(table.version_column < target.version)
        .order_by(table.id_column)
        .limit(limit)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    changes = []
    for row in rows:
        row_id, version, *ciphertexts = row
        # Bind names differ from column names: SQLAlchemy reserves those for SET itself.
        change: dict[str, object] = {
            "b_id": row_id,
            "b_" + table.version_column.name: target.version,
        }
        for (field_name, column), ciphertext in zip(table.fields, ciphertexts, strict=True):
            if ciphertext is None:
                continue
            value = unseal(
                session,
                ciphertext,
                version=version,
                table=table.name,
                field=field_name,
                row_id=row_id,
            )
            change["b_" + column.name] = seal(
                target, value, table=table.name, field=field_name, row_id=row_id
            )
        changes.append(change)
    # One executemany UPDATE per shape of row (NULL columns are left out, so shapes differ).
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for change in changes:
        shapes.setdefault(tuple(sorted(change)), []).append(change)
    for shape, group in shapes.items():
        statement = (
            update(table.table)
            .where(table.id_column == bindparam("b_id"))
            .values({name[2:]: bindparam(name) for name in shape if name != "b_id"})
        )
        session.connection().execute(statement, group)
    return len(rows)


def rows_to_rotate(session: Session, *, tables: Sequence[EncryptedTable]) -> int:
    """Rows still under a key older than the active one."""
    current = active_version(session)
    if current is None:
        return 0
    return sum(
        session.scalar(select(func.count()).select_from(t.table).where(t.version_column < current))
        or 0
        for t in tables
    )


@dataclass(frozen=True)
class KeyStatus:
    version: int
    created_at: datetime
    active: bool
    values: int  # encrypted values under this key, all tables and fields together


def key_status(session: Session, *, tables: Iterable[EncryptedTable]) -> list[KeyStatus]:
    values: dict[int, int] = {}
    for t in tables:
        counts = [func.count(column) for _, column in t.fields]
        query = select(t.version_column, *counts).group_by(t.version_column)
        for version, *per_field in session.execute(query):
            values[version] = values.get(version, 0) + sum(per_field)
    keys = session.execute(
        select(DataKey.version, DataKey.created_at).order_by(DataKey.version)
    ).all()
    newest = keys[-1].version if keys else None
    return [
        KeyStatus(k.version, k.created_at, k.version == newest, values.get(k.version, 0))
        for k in keys
    ]
