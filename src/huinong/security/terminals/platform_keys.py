"""The institution's platform key: the SM2 key pair with which Huinong signs, on behalf of an
institution, its answers to terminals (and anything else that needs the platform's word, such
as audit anchors).

One key per institution is active. It is created on first use: the first signed request or
the first ``GET /api/v1/platform-key``. The private scalar is stored wrapped with SM4-GCM
under ``keyring.derived_key("platform-key-wrap", length=16)``; the associated data names the
institution and the key serial, so a wrapped key copied into another institution's row does
not open. The public key is public: terminals pin it at enrolment.

Creation is race-safe: two first uses at once both try to insert serial 1, one insert is
ignored (``ON CONFLICT DO NOTHING``) and both read back the same row.

Rotating the platform key (serial 2, ...) is not offered yet: terminals would have to pin the
new key first. The ``serial`` column and the response header that names it are there so that
it can be added without changing the protocol.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from huinong import clock
from huinong.ids import uuid7
from huinong.security import keyring
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey, sm4_gcm_decrypt, sm4_gcm_encrypt
from huinong.security.terminals.models import PlatformKey
from huinong.security.terminals.rules import KeyStatus

WRAP_PURPOSE = "platform-key-wrap"


@dataclass(frozen=True)
class PlatformSigner:
    """What signing on an institution's behalf needs: the key and its serial."""

    institution_id: uuid.UUID
    serial: int
    private_key: SM2PrivateKey

    @property
    def public_key(self) -> SM2PublicKey:
        return self.private_key.public_key


def _aad(institution_id: uuid.UUID, serial: int) -> bytes:
    return b"huinong/platform-key/" + institution_id.bytes + serial.to_bytes(4, "big")


def _wrap_key() -> bytes:
    return keyring.derived_key(WRAP_PURPOSE, length=16)


def active_key(session: Session, *, institution_id: uuid.UUID) -> PlatformKey:
    """The institution's active platform key, created if it has none."""
    key = _find_active(session, institution_id)
    if key is not None:
        return key
    private_key = SM2PrivateKey.generate()
    serial = 1
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(PlatformKey)
        .values(
            id=uuid7(),
            institution_id=institution_id,
            serial=serial,
            public_key=private_key.public_key.to_hex(),
            private_key_wrapped=sm4_gcm_encrypt(
                _wrap_key(),
                bytes.fromhex(private_key.to_hex()),
                aad=_aad(institution_id, serial),
            ),
            status=KeyStatus.active.value,
            created_at=clock.now(),
            retired_at=None,
        )
        .on_conflict_do_nothing()
    )
    key = _find_active(session, institution_id)
    if key is None:  # pragma: no cover - the insert or a concurrent one made it
        raise RuntimeError("the platform key was not created")
    return key


def _find_active(session: Session, institution_id: uuid.UUID) -> PlatformKey | None:
    return session.scalar(
        select(PlatformKey).where(
            PlatformKey.institution_id == institution_id,
            PlatformKey.status == KeyStatus.active.value,
        )
    )


def signer(session: Session, *, institution_id: uuid.UUID) -> PlatformSigner:
    """The institution's active platform key, unwrapped, ready to sign."""
    key = active_key(session, institution_id=institution_id)
    scalar = sm4_gcm_decrypt(
        _wrap_key(), key.private_key_wrapped, aad=_aad(institution_id, key.serial)
    )
    return PlatformSigner(institution_id, key.serial, SM2PrivateKey.from_hex(scalar.hex()))


def public_key(session: Session, *, institution_id: uuid.UUID) -> tuple[int, SM2PublicKey]:
    """The serial and public key terminals pin."""
    key = active_key(session, institution_id=institution_id)
    return key.serial, SM2PublicKey.from_hex(key.public_key)
