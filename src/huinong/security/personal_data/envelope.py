"""The stored format of encrypted personal data: envelope encryption, as pure functions.

Three layers of keys:

* the **master key** (``HUINONG_MASTER_KEY``, ``huinong.security.keyring``) never touches a
  record: it only wraps data keys and derives the blind-index keys;
* **data keys** — random 128-bit SM4 keys, one per version, stored wrapped (SM4-GCM under the
  master key, the version bound in as associated data so a wrapped key cannot be relabelled);
* each **value** is SM4-GCM under a data key, ``nonce || ciphertext || tag`` in one column.

The associated data of a value names where it lives — table, field and the row's id — so a
ciphertext copied into another row or another column fails authentication instead of
showing one customer's ID number as another's.

A **blind index** finds a value by exact match without decrypting anything: HMAC-SM3 under a
key derived from the master key for that field, over the institution's id and the
normalised value. Scoping it by institution means the same person at two institutions has two
unrelated index values: whoever reads the database cannot link customers across tenants.

Everything here is part of what is stored, and the migration that encrypted the foundation's
plain columns (0004) calls these same functions; changing any byte of these formats needs a
new format and a migration, never an edit.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from huinong.security.crypto import hmac_sm3, sm4_gcm_decrypt, sm4_gcm_encrypt

DATA_KEY_BYTES = 16


def _data_key_context(version: int) -> bytes:
    return b"huinong:data-key:v%d" % version


def wrap_data_key(master_key: bytes, *, version: int, data_key: bytes) -> bytes:
    return sm4_gcm_encrypt(master_key, data_key, aad=_data_key_context(version))


@lru_cache(maxsize=256)
def unwrap_data_key(master_key: bytes, *, version: int, wrapped: bytes) -> bytes:
    """The data key; :class:`~huinong.security.crypto.CryptoError` under the wrong master key.

    Cached per process: a wrapped key is immutable (its random nonce makes the bytes unique),
    so the same bytes under the same master key always give the same key.
    """
    return sm4_gcm_decrypt(master_key, wrapped, aad=_data_key_context(version))


def value_context(table: str, field: str, row_id: uuid.UUID) -> bytes:
    """Associated data binding a value to its table, field and row."""
    return f"huinong:{table}.{field}:{row_id}".encode()


def seal(data_key: bytes, value: str, *, context: bytes) -> bytes:
    return sm4_gcm_encrypt(data_key, value.encode("utf-8"), aad=context)


def open_sealed(data_key: bytes, blob: bytes, *, context: bytes) -> str:
    return sm4_gcm_decrypt(data_key, blob, aad=context).decode("utf-8")


def blind_index_key_purpose(field: str) -> str:
    """The ``keyring.derived_key`` purpose of a field's blind-index key."""
    return f"blind-index/{field}"


def blind_index_with(index_key: bytes, *, institution_id: uuid.UUID, value: str) -> str:
    """64 hex digits: HMAC-SM3 over the institution id and the normalised value."""
    return hmac_sm3(index_key, institution_id.bytes + value.encode("utf-8")).hex()
