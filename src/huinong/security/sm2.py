"""SM2 (GB/T 32918, GM/T 0003): keys, signatures with a signer id, public-key encryption.

Import the names from :mod:`huinong.security.crypto`; this module holds their implementation.

**How it is built.** The protocol arithmetic is written out here in Python, step by step as
the standard numbers it, and only the two elliptic-curve products run in C, in Tongsuo (the
OpenSSL fork that carries SM2, through the ``tongsuopy`` wheel's cffi binding):

* signing: ``e = SM3(ZA || M)`` with ``ZA = SM3(ENTL || ID || a || b || xG || yG || xA ||
  yA)``; ``(x1, y1) = k·G`` in C; ``r = (e + x1) mod n``;
  ``s = (1 + d)^-1 · (k - r·d) mod n`` (the inverse computed once per key);
* verifying: ``t = (r + s) mod n`` and ``(x1, y1) = s·G + t·P`` as one C call (interleaved
  wNAF), then ``(e + x1) mod n == r``;
* encryption: ``C1 = k·G``, ``(x2, y2) = k·P``, ``t = KDF(x2 || y2)`` (SM3 counter mode),
  ``C2 = M xor t``, ``C3 = SM3(x2 || M || y2)``, output ``04 || x1 || y1 || C3 || C2``
  (the C1C3C2 order of GB/T 32918.4-2016); decryption recomputes ``d·C1`` and refuses any
  ciphertext whose ``C3`` does not match.

Why not a complete library: measured on the 2-core development machine, sign + verify of a
100-byte message per second, one thread — this module 1,100-1,500 (depending on what else
runs); ``tongsuopy``'s own ``ECDSA`` on its ``SM2`` curve 680-860, and it cannot take a
signer id other than ``1234567812345678`` (its binding has no ``EVP_PKEY_CTX_set1_id``) nor
encrypt; ``gmssl-fast`` (GmSSL behind Rust) 200-265, no signer id, plaintexts of at most
255 bytes; ``gmssl`` (pure Python) 27, and its signer draws the nonce from ``random``, not a
CSPRNG. ``cryptography`` has no SM2 curve. Nine tenths of the time is the two point
products in C (the constant-time ladder for ``k·G``, then ``s·G + t·P``), so a wholly native
implementation would gain little more. ``benchmarks/crypto.py`` prints the current figures.

**Secrets.** Nonces ``k`` come from :mod:`secrets` (the operating system's CSPRNG) and are
never reused: a repeated or predictable ``k`` gives away the private key. Products with a
secret scalar alone (``k·G``, ``k·P``, ``d·G``, ``d·C1``) take OpenSSL's constant-time
Montgomery ladder; only verification, which involves nothing secret, takes the faster
variable-time path. The modular arithmetic on ``d`` and ``k`` is Python integer arithmetic,
which is not constant-time; Tongsuo's own SM2 code (``BN_mod_mul``) is not either.

**Encodings.** Signatures are 64 raw bytes ``r || s`` (what partners' SDKs exchange);
:func:`signature_to_der` and :func:`signature_from_der` convert to and from the ASN.1
``SEQUENCE { r INTEGER, s INTEGER }`` of GM/T 0009. Keys are written as OpenSSL, Tongsuo and
GmSSL write them: ``id-ecPublicKey`` with the named curve ``sm2`` (1.2.156.10197.1.301) in a
SubjectPublicKeyInfo (public) or an unencrypted PKCS#8 ``PrivateKeyInfo`` around a SEC 1
``ECPrivateKey`` (private); reading also accepts the bare SEC 1 form (PEM ``EC PRIVATE KEY``,
or ``SM2 PRIVATE KEY`` as OpenSSL 3 labels it) and the algorithm identifier ``sm2`` alone,
which some older toolkits emit. The small DER reader below is strict (definite, minimal
lengths, no trailing bytes): anything else is a :class:`~huinong.security.crypto.CryptoError`,
never a crash.

Tongsuopy ships wheels for Linux x86-64 only (CPython abi3); the binding it exposes is
private, hence the narrow version pin in ``pyproject.toml``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from tongsuopy.backends._tongsuo import ffi, lib

from huinong.security.crypto import DEFAULT_SIGNER_ID, CryptoError, sm3

__all__ = ["SM2PrivateKey", "SM2PublicKey", "signature_from_der", "signature_to_der"]

# The recommended curve of GB/T 32918.5 (GM/T 0003.5): y² = x³ + ax + b over F_p, order n.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

COORDINATE_BYTES = 32
SIGNATURE_BYTES = 2 * COORDINATE_BYTES
# ZA's prefix up to the public key: ENTL and ID come first, then these four constants.
_CURVE_BYTES = b"".join(v.to_bytes(COORDINATE_BYTES, "big") for v in (A, B, GX, GY))
_MAX_SIGNER_ID_BYTES = 0xFFFF // 8  # ENTL, the id's length in bits, is a 16-bit field
_UNCOMPRESSED = b"\x04"
_C1_BYTES = 1 + 2 * COORDINATE_BYTES
_C3_BYTES = 32

# ------------------------------------------------------------------------ the curve in C

_group = lib.EC_GROUP_new_by_curve_name(lib.OBJ_sn2nid(b"SM2"))
if _group == ffi.NULL:  # pragma: no cover - a Tongsuo build without SM2
    raise ImportError("this Tongsuo build has no SM2 curve")
_group = ffi.gc(_group, lib.EC_GROUP_free)


def _openssl_failed(what: str) -> NoReturn:
    # The error queue is per thread and would otherwise pile up stale entries.
    lib.ERR_clear_error()
    raise RuntimeError(f"Tongsuo failed to {what}")


def _scalar(value: int) -> Any:
    bignum = lib.BN_bin2bn(value.to_bytes(COORDINATE_BYTES, "big"), COORDINATE_BYTES, ffi.NULL)
    if bignum == ffi.NULL:
        _openssl_failed("allocate a number")
    return bignum


def _product(g_scalar: int | None, point: Any = None, p_scalar: int = 0) -> bytes | None:
    """``g_scalar·G + p_scalar·point`` as 64 bytes ``x || y``; ``None`` at infinity.

    With only one of the two terms OpenSSL (1.1.1 onwards) takes its constant-time ladder;
    with both, interleaved wNAF, which is only for public scalars (verification).
    """
    result = g_bignum = p_bignum = ffi.NULL
    try:
        result = lib.EC_POINT_new(_group)
        if result == ffi.NULL:
            _openssl_failed("allocate a point")
        if g_scalar is not None:
            g_bignum = _scalar(g_scalar)
        if point is not None:
            p_bignum = _scalar(p_scalar)
        else:
            point = ffi.NULL
        if lib.EC_POINT_mul(_group, result, g_bignum, point, p_bignum, ffi.NULL) != 1:
            _openssl_failed("multiply a point")
        if lib.EC_POINT_is_at_infinity(_group, result):
            return None
        buffer = ffi.new("unsigned char[]", _C1_BYTES)
        written = lib.EC_POINT_point2oct(
            _group, result, lib.POINT_CONVERSION_UNCOMPRESSED, buffer, _C1_BYTES, ffi.NULL
        )
        if written != _C1_BYTES:
            _openssl_failed("encode a point")
        return ffi.buffer(buffer, _C1_BYTES)[1:]
    finally:
        # Freed here, not by ffi.gc: these live for one call, and k·P is a shared secret.
        for bignum in (g_bignum, p_bignum):
            if bignum != ffi.NULL:
                lib.BN_clear_free(bignum)
        if result != ffi.NULL:
            lib.EC_POINT_clear_free(result)


def _base_product(scalar: int) -> bytes:
    xy = _product(scalar)
    assert xy is not None, "0 < scalar < n, so scalar·G is a finite point"
    return xy


def _decode_point(xy: bytes) -> Any:
    """The curve point ``x || y`` as a Tongsuo ``EC_POINT``; :class:`CryptoError` if it is not
    on the curve (which also rules out invalid-curve attacks on decryption)."""
    if len(xy) != 2 * COORDINATE_BYTES:
        raise CryptoError(f"an SM2 point is {2 * COORDINATE_BYTES} bytes x || y, got {len(xy)}")
    point = lib.EC_POINT_new(_group)
    if point == ffi.NULL:
        _openssl_failed("allocate a point")
    point = ffi.gc(point, lib.EC_POINT_free)
    octets = _UNCOMPRESSED + xy
    if lib.EC_POINT_oct2point(_group, point, octets, len(octets), ffi.NULL) != 1:
        lib.ERR_clear_error()
        raise CryptoError("not a point on the SM2 curve")
    return point


def _check_group() -> None:
    # A guard against a Tongsuo whose "SM2" is some other curve: the generator must be G.
    if _base_product(1) != GX.to_bytes(32, "big") + GY.to_bytes(32, "big") or _product(N):
        raise ImportError("Tongsuo's SM2 group is not the curve of GB/T 32918.5")


_check_group()

# ------------------------------------------------------------------------ hashing


def _digest(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def _za(xy: bytes, signer_id: bytes) -> bytes:
    if len(signer_id) > _MAX_SIGNER_ID_BYTES:
        raise CryptoError(f"an SM2 signer id has at most {_MAX_SIGNER_ID_BYTES} bytes")
    entl = (8 * len(signer_id)).to_bytes(2, "big")
    return sm3(entl + signer_id + _CURVE_BYTES + xy)


def _kdf(shared: bytes, length: int) -> bytes:
    """GB/T 32918.4 §5.4.3: SM3(Z || counter) for counter = 1, 2, … (32-bit big-endian)."""
    prefix = hashes.Hash(hashes.SM3())
    prefix.update(shared)
    blocks = []
    for counter in range(1, (length + 31) // 32 + 1):
        block = prefix.copy()
        block.update(counter.to_bytes(4, "big"))
        blocks.append(block.finalize())
    return b"".join(blocks)[:length]


def _xor(data: bytes, mask: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(len(data), "big")


# ------------------------------------------------------------------------ keys


class SM2PublicKey:
    """A point on the SM2 curve, checked when built. Immutable and hashable."""

    __slots__ = ("_default_za", "_point", "_xy")
    _xy: bytes
    _point: Any
    _default_za: bytes

    def __init__(self, xy: bytes) -> None:
        """From the 64 bytes ``x || y``; the ``from_*`` constructors are the usual way in."""
        xy = bytes(xy)
        object.__setattr__(self, "_point", _decode_point(xy))
        object.__setattr__(self, "_xy", xy)
        # ZA depends only on the key and the signer id: compute the common case once.
        object.__setattr__(self, "_default_za", _za(xy, DEFAULT_SIGNER_ID))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # -- encodings

    @classmethod
    def from_hex(cls, text: str) -> SM2PublicKey:
        """From ``"04" + x + y`` (130 hex digits) or ``x + y`` (128)."""
        text = text.strip()
        if len(text) == 2 * _C1_BYTES and text[:2] == "04":
            text = text[2:]
        elif len(text) != 4 * COORDINATE_BYTES:
            raise CryptoError(
                "an SM2 public key in hex is '04' + x + y (130 digits) or x + y (128), "
                f"got {len(text)} characters"
            )
        return cls(_from_hex(text, "SM2 public key"))

    def to_hex(self) -> str:
        """``"04" + x + y`` in lowercase hex, 130 digits."""
        return (_UNCOMPRESSED + self._xy).hex()

    @classmethod
    def from_der(cls, der: bytes) -> SM2PublicKey:
        """From a DER SubjectPublicKeyInfo."""
        outer = _only(der, _SEQUENCE, "SubjectPublicKeyInfo")
        items = _items(outer, "SubjectPublicKeyInfo")
        if len(items) != 2 or items[1][0] != _BIT_STRING:
            raise CryptoError("malformed SubjectPublicKeyInfo")
        _check_algorithm(items[0])
        return cls(_public_point_bits(items[1][1]))

    def to_der(self) -> bytes:
        """DER SubjectPublicKeyInfo: ``id-ecPublicKey`` with the named curve ``sm2``."""
        return _tlv(_SEQUENCE, _ALGORITHM + _tlv(_BIT_STRING, b"\x00" + self.to_octets()))

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SM2PublicKey:
        """From a ``PUBLIC KEY`` PEM block."""
        _, der = _pem_decode(pem, ("PUBLIC KEY",))
        return cls.from_der(der)

    def to_pem(self) -> str:
        return _pem_encode("PUBLIC KEY", self.to_der())

    def to_octets(self) -> bytes:
        """The 65 bytes ``04 || x || y``."""
        return _UNCOMPRESSED + self._xy

    def fingerprint(self) -> str:
        """SM3 of the DER SubjectPublicKeyInfo, 64 lowercase hex digits: a stable key id."""
        return sm3(self.to_der()).hex()

    # -- operations

    def verify(
        self, signature: bytes, message: bytes, *, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> bool:
        """Whether ``signature`` (64 raw bytes ``r || s``) signs ``message`` under this key and
        ``signer_id``. Any bad signature, of whatever length, is ``False``, never an error."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        r = int.from_bytes(signature[:COORDINATE_BYTES], "big")
        s = int.from_bytes(signature[COORDINATE_BYTES:], "big")
        if not (0 < r < N and 0 < s < N):
            return False
        t = (r + s) % N
        if t == 0:
            return False
        e = self._digest_to_sign(message, signer_id)
        xy = _product(s, self._point, t)
        return xy is not None and (e + int.from_bytes(xy[:COORDINATE_BYTES], "big")) % N == r

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` (at least one byte) to ``04 || x1 || y1 || C3 || C2``, which is
        97 bytes longer. Meant for short secrets such as SM4 keys; encrypt data with SM4."""
        if not plaintext:
            raise CryptoError("SM2 cannot encrypt an empty message (its key stream would be empty)")
        while True:
            ciphertext = self._encrypt_with_nonce(plaintext, secrets.randbelow(N - 1) + 1)
            if ciphertext is not None:
                return ciphertext

    def _encrypt_with_nonce(self, plaintext: bytes, k: int) -> bytes | None:
        """One attempt with the nonce ``k``; ``None`` when the key stream is all zero (then
        the standard says: choose another ``k``). Public only to tests, for the vectors."""
        c1 = _base_product(k)
        shared = _product(None, self._point, k)
        assert shared is not None, "the key is a point of prime order n and 0 < k < n"
        mask = _kdf(shared, len(plaintext))
        if not any(mask):
            return None
        c3 = _digest(shared[:COORDINATE_BYTES], plaintext, shared[COORDINATE_BYTES:])
        return _UNCOMPRESSED + c1 + c3 + _xor(plaintext, mask)

    def _digest_to_sign(self, message: bytes, signer_id: bytes) -> int:
        za = self._default_za if signer_id == DEFAULT_SIGNER_ID else _za(self._xy, signer_id)
        return int.from_bytes(_digest(za, message), "big")

    # -- object protocol

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and self._xy == other._xy

    def __hash__(self) -> int:
        return hash(self._xy)

    def __repr__(self) -> str:
        return f"SM2PublicKey.from_hex({self.to_hex()!r})"

    def __copy__(self) -> SM2PublicKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SM2PublicKey:
        return self


class SM2PrivateKey:
    """A private scalar ``d`` with ``1 <= d <= n - 2`` and its public key ``d·G``.

    Its ``repr`` shows only the public key's fingerprint; the scalar leaves the object only
    through the explicit ``to_hex``, ``to_der`` and ``to_pem``.
    """

    __slots__ = ("_d", "_inverse_one_plus_d", "_public_key")
    _d: int
    _inverse_one_plus_d: int
    _public_key: SM2PublicKey

    def __init__(self, d: int) -> None:
        """From the scalar; :meth:`generate` and the ``from_*`` constructors are the usual way."""
        # n - 1 is excluded too: signing needs the inverse of 1 + d modulo n.
        if not 1 <= d <= N - 2:
            raise CryptoError("an SM2 private key is a number from 1 to n - 2")
        object.__setattr__(self, "_d", d)
        object.__setattr__(self, "_inverse_one_plus_d", pow(1 + d, -1, N))
        object.__setattr__(self, "_public_key", SM2PublicKey(_base_product(d)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """A new key, ``d`` uniform in ``[1, n - 2]`` from the operating system's CSPRNG."""
        return cls(secrets.randbelow(N - 2) + 1)

    @property
    def public_key(self) -> SM2PublicKey:
        return self._public_key

    # -- encodings

    @classmethod
    def from_hex(cls, text: str) -> SM2PrivateKey:
        """From the scalar as 64 hex digits."""
        text = text.strip()
        if len(text) != 2 * COORDINATE_BYTES:
            raise CryptoError(
                f"an SM2 private key in hex is {2 * COORDINATE_BYTES} digits, got {len(text)}"
            )
        return cls(int.from_bytes(_from_hex(text, "SM2 private key"), "big"))

    def to_hex(self) -> str:
        """The scalar as 64 lowercase hex digits."""
        return self._scalar_bytes().hex()

    @classmethod
    def from_der(cls, der: bytes) -> SM2PrivateKey:
        """From DER: an unencrypted PKCS#8 ``PrivateKeyInfo`` or a SEC 1 ``ECPrivateKey``."""
        outer = _only(der, _SEQUENCE, "private key")
        items = _items(outer, "private key")
        # SEC 1 puts the scalar (an OCTET STRING) second; PKCS#8 the algorithm (a SEQUENCE).
        if len(items) >= 2 and items[1][0] == _OCTET_STRING:
            return cls._from_ec_private_key(items, curve_required=True)
        if (
            len(items) < 3
            or items[0] not in ((_INTEGER, b"\x00"), (_INTEGER, b"\x01"))  # RFC 5958 v1, v2
            or items[2][0] != _OCTET_STRING
        ):
            raise CryptoError("not an unencrypted PKCS#8 or SEC 1 private key")
        _check_algorithm(items[1])
        inner = _items(_only(items[2][1], _SEQUENCE, "ECPrivateKey"), "ECPrivateKey")
        return cls._from_ec_private_key(inner, curve_required=False)

    @classmethod
    def _from_ec_private_key(
        cls, items: list[tuple[int, bytes]], *, curve_required: bool
    ) -> SM2PrivateKey:
        # ECPrivateKey ::= SEQUENCE { 1, privateKey OCTET STRING, [0] parameters OPTIONAL,
        #                             [1] publicKey BIT STRING OPTIONAL }  (RFC 5915)
        if len(items) < 2 or items[0] != (_INTEGER, b"\x01") or items[1][0] != _OCTET_STRING:
            raise CryptoError("malformed ECPrivateKey")
        scalar = items[1][1]
        if len(scalar) != COORDINATE_BYTES:
            raise CryptoError(f"an SM2 private scalar is {COORDINATE_BYTES} bytes")
        optional = dict(items[2:])
        if len(optional) != len(items) - 2 or not set(optional) <= {_PARAMETERS, _PUBLIC_KEY}:
            raise CryptoError("malformed ECPrivateKey")
        if _PARAMETERS in optional:
            if optional[_PARAMETERS] != _SM2_CURVE:
                raise CryptoError("not an SM2 key: the ECPrivateKey names another curve")
        elif curve_required:
            raise CryptoError("a SEC 1 private key must name its curve")
        key = cls(int.from_bytes(scalar, "big"))
        if _PUBLIC_KEY in optional:
            bits = _only(optional[_PUBLIC_KEY], _BIT_STRING, "ECPrivateKey public key")
            if _public_point_bits(bits) != key._public_key._xy:
                raise CryptoError("the private key's embedded public key does not match it")
        return key

    def to_der(self) -> bytes:
        """DER PKCS#8 ``PrivateKeyInfo``, unencrypted, with the public key embedded."""
        ec_private_key = _tlv(
            _SEQUENCE,
            _tlv(_INTEGER, b"\x01")
            + _tlv(_OCTET_STRING, self._scalar_bytes())
            + _tlv(
                _PUBLIC_KEY,
                _tlv(_BIT_STRING, b"\x00" + self._public_key.to_octets()),
            ),
        )
        return _tlv(
            _SEQUENCE,
            _tlv(_INTEGER, b"\x00") + _ALGORITHM + _tlv(_OCTET_STRING, ec_private_key),
        )

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SM2PrivateKey:
        """From a ``PRIVATE KEY`` (PKCS#8) or ``EC PRIVATE KEY`` / ``SM2 PRIVATE KEY`` (SEC 1)
        PEM block."""
        _, der = _pem_decode(pem, ("PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY"))
        return cls.from_der(der)

    def to_pem(self) -> str:
        """Unencrypted PKCS#8 PEM: keep it where only its owner can read it."""
        return _pem_encode("PRIVATE KEY", self.to_der())

    # -- operations

    def sign(self, message: bytes, *, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """The SM2 signature of ``message`` (hashed here with ZA, not a digest) as 64 raw bytes
        ``r || s``, with a fresh nonce from the CSPRNG."""
        e = self._public_key._digest_to_sign(message, signer_id)
        while True:
            signature = self._sign_digest(e, secrets.randbelow(N - 1) + 1)
            if signature is not None:
                return signature

    def _sign_with_nonce(
        self, message: bytes, k: int, *, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> bytes | None:
        """One signing attempt with the nonce ``k``: for the published test vectors only.
        A fixed or guessable ``k`` reveals the private key."""
        return self._sign_digest(self._public_key._digest_to_sign(message, signer_id), k)

    def _sign_digest(self, e: int, k: int) -> bytes | None:
        # GB/T 32918.2 §6.1, steps A4 to A6; None means "back to A3 with another k".
        x1 = int.from_bytes(_base_product(k)[:COORDINATE_BYTES], "big")
        r = (e + x1) % N
        if r == 0 or r + k == N:
            return None
        s = self._inverse_one_plus_d * (k - r * self._d) % N
        if s == 0:
            return None
        return r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt ``04 || x1 || y1 || C3 || C2``; :class:`CryptoError` if it is malformed, was
        made for another key, or was altered."""
        if len(ciphertext) <= _C1_BYTES + _C3_BYTES or ciphertext[:1] != _UNCOMPRESSED:
            raise CryptoError(
                "an SM2 ciphertext is 04 || x1 || y1 || C3 || C2 with a non-empty C2, "
                f"at least {_C1_BYTES + _C3_BYTES + 1} bytes"
            )
        c1 = _decode_point(ciphertext[1:_C1_BYTES])
        c3 = ciphertext[_C1_BYTES : _C1_BYTES + _C3_BYTES]
        c2 = ciphertext[_C1_BYTES + _C3_BYTES :]
        shared = _product(None, c1, self._d)
        assert shared is not None, "C1 is on a curve of prime order n and 0 < d < n"
        mask = _kdf(shared, len(c2))
        plaintext = _xor(c2, mask)
        check = _digest(shared[:COORDINATE_BYTES], plaintext, shared[COORDINATE_BYTES:])
        if not any(mask) or not hmac.compare_digest(check, c3):
            raise CryptoError("SM2 decryption failed: not made for this key, or altered")
        return plaintext

    def _scalar_bytes(self) -> bytes:
        return self._d.to_bytes(COORDINATE_BYTES, "big")

    # -- object protocol

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PrivateKey) and hmac.compare_digest(
            self._scalar_bytes(), other._scalar_bytes()
        )

    def __hash__(self) -> int:
        return hash(self._public_key)

    def __repr__(self) -> str:
        return f"<SM2PrivateKey of public key {self._public_key.fingerprint()[:16]}…>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an SM2PrivateKey is not pickled; store to_pem() where it belongs")


# ------------------------------------------------------------------------ signatures in DER


def signature_to_der(raw: bytes) -> bytes:
    """64 raw bytes ``r || s`` as DER ``SEQUENCE { r INTEGER, s INTEGER }`` (GM/T 0009)."""
    if len(raw) != SIGNATURE_BYTES:
        raise CryptoError(f"a raw SM2 signature is {SIGNATURE_BYTES} bytes, got {len(raw)}")
    r = int.from_bytes(raw[:COORDINATE_BYTES], "big")
    s = int.from_bytes(raw[COORDINATE_BYTES:], "big")
    return _tlv(_SEQUENCE, _tlv(_INTEGER, _integer_bytes(r)) + _tlv(_INTEGER, _integer_bytes(s)))


def signature_from_der(der: bytes) -> bytes:
    """The DER ``SEQUENCE { r INTEGER, s INTEGER }`` as 64 raw bytes ``r || s``."""
    items = _items(_only(der, _SEQUENCE, "SM2 signature"), "SM2 signature")
    if len(items) != 2 or any(tag != _INTEGER for tag, _ in items):
        raise CryptoError("an SM2 signature in DER is a SEQUENCE of two INTEGERs")
    values = [_parse_integer(value) for _, value in items]
    if any(not 0 < value < 2 ** (8 * COORDINATE_BYTES) for value in values):
        raise CryptoError("an SM2 signature's r and s are positive 256-bit numbers")
    return b"".join(value.to_bytes(COORDINATE_BYTES, "big") for value in values)


# ------------------------------------------------------------------------ DER and PEM

_INTEGER, _BIT_STRING, _OCTET_STRING, _NULL, _OID, _SEQUENCE = 0x02, 0x03, 0x04, 0x05, 0x06, 0x30
_PARAMETERS, _PUBLIC_KEY = 0xA0, 0xA1  # ECPrivateKey's [0] and [1], explicit
_ID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_SM2_CURVE_OID = bytes.fromhex("2a811ccf5501822d")  # 1.2.156.10197.1.301
_SM2_CURVE = b"\x06\x08" + _SM2_CURVE_OID  # the OID as a whole TLV
_ALGORITHM = b"\x30\x13\x06\x07" + _ID_EC_PUBLIC_KEY + _SM2_CURVE  # AlgorithmIdentifier TLV


def _tlv(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        return bytes((tag, length)) + value
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + value


def _integer_bytes(value: int) -> bytes:
    # Two's complement, minimal: a leading 0x00 only when the top bit would read as a sign.
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _parse_integer(value: bytes) -> int:
    if not value or (len(value) > 1 and value[0] == 0 and value[1] < 0x80):
        raise CryptoError("an INTEGER is not in minimal DER form")
    if value[0] & 0x80:
        raise CryptoError("a negative INTEGER where a positive one belongs")
    return int.from_bytes(value, "big")


def _read(data: bytes, offset: int, what: str) -> tuple[int, bytes, int]:
    """The DER element at ``offset``: (tag, contents, offset after it)."""
    if offset + 2 > len(data):
        raise CryptoError(f"{what}: DER data ends early")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if tag & 0x1F == 0x1F:
        raise CryptoError(f"{what}: unexpected multi-byte DER tag")
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4 or offset + size > len(data):
            raise CryptoError(f"{what}: bad DER length")
        length = int.from_bytes(data[offset : offset + size], "big")
        if length < 0x80 or data[offset] == 0:
            raise CryptoError(f"{what}: DER length not in minimal form")
        offset += size
    if offset + length > len(data):
        raise CryptoError(f"{what}: DER data ends early")
    return tag, bytes(data[offset : offset + length]), offset + length


def _only(data: bytes, tag: int, what: str) -> bytes:
    """The contents of the single element ``data`` holds, which must have ``tag``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CryptoError(f"{what}: expected bytes, got {type(data).__name__}")
    found, contents, end = _read(data, 0, what)
    if found != tag:
        raise CryptoError(f"{what}: unexpected DER tag 0x{found:02x}")
    if end != len(data):
        raise CryptoError(f"{what}: trailing bytes after the DER data")
    return contents


def _items(contents: bytes, what: str) -> list[tuple[int, bytes]]:
    items, offset = [], 0
    while offset < len(contents):
        tag, value, offset = _read(contents, offset, what)
        items.append((tag, value))
    return items


def _check_algorithm(item: tuple[int, bytes]) -> None:
    tag, contents = item
    algorithm = _items(contents, "AlgorithmIdentifier") if tag == _SEQUENCE else []
    if not algorithm or algorithm[0][0] != _OID:
        raise CryptoError("malformed AlgorithmIdentifier")
    oid, parameters = algorithm[0][1], algorithm[1:]
    if oid == _ID_EC_PUBLIC_KEY and parameters == [(_OID, _SM2_CURVE_OID)]:
        return
    # Some older toolkits put the curve's OID in the algorithm field itself.
    if oid == _SM2_CURVE_OID and parameters in ([], [(_NULL, b"")], [(_OID, _SM2_CURVE_OID)]):
        return
    raise CryptoError("not an SM2 key: the algorithm is not id-ecPublicKey on the sm2 curve")


def _public_point_bits(bits: bytes) -> bytes:
    """The 64 bytes x || y of a BIT STRING holding an uncompressed point."""
    if len(bits) != 1 + _C1_BYTES or bits[0] != 0 or bits[1:2] != _UNCOMPRESSED:
        raise CryptoError("an SM2 public key is an uncompressed point 04 || x || y")
    return bits[2:]


def _from_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CryptoError(f"{what}: not hexadecimal") from None


_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def _pem_decode(pem: str | bytes, labels: tuple[str, ...]) -> tuple[str, bytes]:
    if isinstance(pem, bytes | bytearray):
        try:
            pem = bytes(pem).decode("ascii")
        except UnicodeDecodeError:
            raise CryptoError("PEM is ASCII text") from None
    match = _PEM.search(pem)
    if match is None:
        raise CryptoError(f"no PEM block ({' or '.join(labels)}) found")
    label, body = match[1], match[2]
    if "ENCRYPTED" in label or "Proc-Type:" in body:
        raise CryptoError("encrypted private keys are not supported; decrypt it first")
    if label not in labels:
        raise CryptoError(f"expected a PEM {' or '.join(labels)}, found {label}")
    try:
        return label, base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error:
        raise CryptoError("PEM body is not valid base64") from None


def _pem_encode(label: str, der: bytes) -> str:
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
