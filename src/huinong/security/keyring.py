"""The master key and the keys derived from it.

One secret comes from configuration: ``HUINONG_MASTER_KEY``, 32 hex digits (128 bits, an SM4
key). Everything else is either wrapped by it (the versioned data keys that encrypt personal
data, the institutions' SM2 platform keys) or derived from it with HMAC-SM3 under a named
purpose (the access-token signing key, the blind-index key), so one purpose's key reveals
nothing about another's.

In development, when the variable is unset, a random key is created once in
``HUINONG_MASTER_KEY_FILE`` (``var/master.key``, mode 0600) so ``make run`` works out of the
box. Production refuses to start without the variable.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from huinong.config import Settings, get_settings
from huinong.errors import ServiceUnavailable
from huinong.security.crypto import hmac_sm3

MASTER_KEY_BYTES = 16


class MasterKeyMissing(ServiceUnavailable):
    def __init__(self, message: str) -> None:
        super().__init__("security.master_key_missing", message)


def parse_master_key(text: str) -> bytes:
    cleaned = text.strip()
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise MasterKeyMissing(
            "HUINONG_MASTER_KEY must be 32 hex digits; generate one with "
            "`python -c 'import secrets; print(secrets.token_hex(16))'`"
        )
    return key


def load_master_key(settings: Settings) -> bytes:
    if settings.master_key is not None:
        return parse_master_key(settings.master_key.get_secret_value())
    if settings.environment == "production":
        raise MasterKeyMissing("set HUINONG_MASTER_KEY (32 hex digits) before starting")
    path = Path(settings.master_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(MASTER_KEY_BYTES) + "\n")
    return parse_master_key(path.read_text())


@lru_cache(maxsize=1)
def master_key() -> bytes:
    return load_master_key(get_settings())


def derived_key(purpose: str, *, length: int = 32) -> bytes:
    """A key for one purpose (``"access-token"``, ``"blind-index"``), derived from the master
    key; ``length`` at most 32 (one SM3 output). Called on hot paths (every request's token,
    every blind index), so derivations are remembered — per master key, so a changed master
    key is never served a key derived from the old one."""
    return _derive(master_key(), purpose, length)


@lru_cache(maxsize=128)
def _derive(master: bytes, purpose: str, length: int) -> bytes:
    return hmac_sm3(master, b"huinong/" + purpose.encode())[:length]
