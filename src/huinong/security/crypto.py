"""Chinese national cryptography: SM3, HMAC-SM3, SM4 here, SM2 in :mod:`huinong.security.sm2`.

Import everything from this module; it is the one place the rest of Huinong touches:

* **SM3** (GB/T 32905) hashes, **HMAC-SM3** keys a hash (derived keys, blind indexes, request
  signatures). Both come from the ``cryptography`` package (OpenSSL underneath).
* **SM4** (GB/T 32907) with a 128-bit key. **GCM** is the mode for data at rest: the output
  carries its own random 96-bit nonce and 128-bit tag, so a flipped bit anywhere — nonce,
  ciphertext, tag or the associated data — fails decryption instead of yielding garbage.
  ``cryptography`` >= 43 runs SM4 in GCM mode itself, so no second library is needed for it.
  **ECB** and **CBC** exist only for protocols that prescribe them (POS terminals, partner
  message formats); neither authenticates, and CBC with padding must sit under a MAC, or a
  padding oracle reveals the plaintext.
* **SM2** (GB/T 32918 / GM/T 0003) keys, signatures with a signer id and public-key
  encryption: :class:`SM2PrivateKey`, :class:`SM2PublicKey`, :func:`signature_to_der` and
  :func:`signature_from_der`, implemented in :mod:`huinong.security.sm2` and re-exported here.
  They are loaded on first use (PEP 562 ``__getattr__``), so code that only hashes or encrypts
  with SM4 — the keyring, personal data — does not load the C library SM2 runs on.

Every failure a caller can cause — wrong key length, tampered ciphertext, malformed key or
signature encoding — raises :class:`CryptoError`, a ``ValueError``. Messages say what was
wrong with the input and never echo key material.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

if TYPE_CHECKING:
    from huinong.security.sm2 import (
        SM2PrivateKey,
        SM2PublicKey,
        signature_from_der,
        signature_to_der,
    )

__all__ = [
    "DEFAULT_SIGNER_ID",
    "GCM_NONCE_BYTES",
    "GCM_TAG_BYTES",
    "SM4_BLOCK_BYTES",
    "SM4_KEY_BYTES",
    "CryptoError",
    "SM2PrivateKey",
    "SM2PublicKey",
    "hmac_sm3",
    "random_key",
    "signature_from_der",
    "signature_to_der",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]

# GM/T 0009 §10: the signer id both sides use when nobody agreed on another.
DEFAULT_SIGNER_ID: bytes = b"1234567812345678"

SM4_KEY_BYTES = 16
SM4_BLOCK_BYTES = 16
GCM_NONCE_BYTES = 12  # 96 bits: the size GCM handles without an extra GHASH of the nonce
GCM_TAG_BYTES = 16  # the full tag; truncated tags weaken the forgery bound


class CryptoError(ValueError):
    """Bad input to a cryptographic operation: wrong key or block length, a ciphertext that
    fails authentication, a malformed key, signature or ciphertext encoding."""


# --------------------------------------------------------------------------- SM3


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """The 32-byte HMAC-SM3 (RFC 2104 over SM3) of ``data`` under ``key``."""
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


# --------------------------------------------------------------------------- SM4


def random_key() -> bytes:
    """A fresh 128-bit SM4 key from the operating system's CSPRNG."""
    return secrets.token_bytes(SM4_KEY_BYTES)


def _sm4(key: bytes) -> algorithms.SM4:
    if len(key) != SM4_KEY_BYTES:
        raise CryptoError(f"an SM4 key is {SM4_KEY_BYTES} bytes, got {len(key)}")
    return algorithms.SM4(key)


def _check_blocks(data: bytes, what: str) -> None:
    if len(data) % SM4_BLOCK_BYTES:
        raise CryptoError(
            f"{what} must be a whole number of {SM4_BLOCK_BYTES}-byte blocks, got {len(data)} bytes"
        )


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, *, aad: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext``; ``aad`` is authenticated but not stored.

    Returns ``nonce (12) || ciphertext || tag (16)``. The nonce is random: with 96 bits the
    chance of a repeat stays negligible up to about 2**32 encryptions under one key, far beyond
    what one data key sees before it is rotated.
    """
    nonce = secrets.token_bytes(GCM_NONCE_BYTES)
    encryptor = Cipher(_sm4(key), modes.GCM(nonce)).encryptor()
    if aad:
        encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return nonce + ciphertext + encryptor.tag


def sm4_gcm_decrypt(key: bytes, blob: bytes, *, aad: bytes = b"") -> bytes:
    """Decrypt what :func:`sm4_gcm_encrypt` returned; ``aad`` must be the same bytes.

    Raises :class:`CryptoError` when the blob is too short, or when the key, nonce, ciphertext,
    tag or ``aad`` differ from the encryption's: GCM cannot tell these apart, and neither do we.
    """
    cipher = _sm4(key)
    if len(blob) < GCM_NONCE_BYTES + GCM_TAG_BYTES:
        raise CryptoError(
            f"an SM4-GCM blob has at least {GCM_NONCE_BYTES + GCM_TAG_BYTES} bytes "
            f"(nonce and tag), got {len(blob)}"
        )
    nonce = blob[:GCM_NONCE_BYTES]
    ciphertext = blob[GCM_NONCE_BYTES:-GCM_TAG_BYTES]
    tag = blob[-GCM_TAG_BYTES:]
    decryptor = Cipher(cipher, modes.GCM(nonce, tag)).decryptor()
    if aad:
        decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise CryptoError(
            "SM4-GCM authentication failed: wrong key or associated data, or the data was altered"
        ) from None


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4 in ECB mode, no padding: ``len(data)`` must be a multiple of 16.

    ECB leaks which blocks are equal; use it only where a protocol prescribes it (key
    wrapping, MAC calculations of terminal protocols), never for records.
    """
    _check_blocks(data, "SM4-ECB input")
    encryptor = Cipher(_sm4(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`sm4_ecb_encrypt`."""
    _check_blocks(data, "SM4-ECB ciphertext")
    decryptor = Cipher(_sm4(key), modes.ECB()).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    if len(iv) != SM4_BLOCK_BYTES:
        raise CryptoError(f"an SM4-CBC IV is {SM4_BLOCK_BYTES} bytes, got {len(iv)}")
    return Cipher(_sm4(key), modes.CBC(iv))


def sm4_cbc_encrypt(key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
    """SM4 in CBC mode with PKCS#7 padding (``pad=False``: none, whole blocks only).

    The IV must be unpredictable for every message; the caller sends it along, since the
    protocols that want CBC each put it somewhere else.
    """
    cipher = _cbc(key, iv)
    if pad:
        padder = padding.PKCS7(SM4_BLOCK_BYTES * 8).padder()
        data = padder.update(data) + padder.finalize()
    else:
        _check_blocks(data, "SM4-CBC input without padding")
    encryptor = cipher.encryptor()
    return encryptor.update(data) + encryptor.finalize()


def sm4_cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
    """Inverse of :func:`sm4_cbc_encrypt`; :class:`CryptoError` on bad length or padding.

    A wrong key or IV usually shows as bad padding, but not always: CBC cannot detect
    tampering, which is why it needs a MAC around it.
    """
    cipher = _cbc(key, iv)
    _check_blocks(data, "SM4-CBC ciphertext")
    decryptor = cipher.decryptor()
    plaintext = decryptor.update(data) + decryptor.finalize()
    if not pad:
        return plaintext
    if not plaintext:
        raise CryptoError("an SM4-CBC ciphertext with PKCS#7 padding has at least one block")
    unpadder = padding.PKCS7(SM4_BLOCK_BYTES * 8).unpadder()
    try:
        return unpadder.update(plaintext) + unpadder.finalize()
    except ValueError:
        raise CryptoError("SM4-CBC: invalid PKCS#7 padding (wrong key or IV?)") from None


# --------------------------------------------------------------------------- SM2 (re-exported)

_SM2_NAMES = frozenset({"SM2PrivateKey", "SM2PublicKey", "signature_from_der", "signature_to_der"})


def __getattr__(name: str) -> Any:
    # Loads huinong.security.sm2 on first use of an SM2 name; see the module docstring.
    if name in _SM2_NAMES:
        from huinong.security import sm2

        value = getattr(sm2, name)
        globals()[name] = value  # later look-ups are ordinary module attributes
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SM2_NAMES)
