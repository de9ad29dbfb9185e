"""SM2/SM3/SM4 against the published vectors and against implementations that are not ours.

Sources of the fixed values:

* SM3: GB/T 32905-2016, Appendix A (``"abc"`` and ``"abcd" × 16``).
* SM4: GB/T 32907-2016, Appendix A, example 1 (one ECB block); CBC: the example of
  draft-ribose-cfrg-sm4 (SM4-CBC, key ``0123…3210``, IV ``0001…0e0f``); GCM: RFC 8998,
  Appendix A.1.
* SM2: GM/T 0003.5-2012 = GB/T 32918.5-2017, Appendix A, which works on the recommended curve:
  private key ``3945208f…``, signer id ``1234567812345678``, message ``"message digest"``,
  nonce ``k = 59276e27…``, signature (r, s); and the encryption of ``"encryption standard"``
  with the same key and nonce.

Independent implementations: ``gmssl`` (pure Python, a dev dependency) for SM3, HMAC-SM3
(RFC 2104 written out over its SM3), SM2 signatures and encryption; the ``openssl`` command
(OpenSSL 3, when installed) for key files and signatures with a signer id; and Tongsuo's own
SM2 signature code through ``tongsuopy``'s high-level API.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import secrets
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from gmssl import sm2 as gmssl_sm2
from gmssl import sm3 as gmssl_sm3
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.security import crypto
from huinong.security.crypto import (
    DEFAULT_SIGNER_ID,
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    hmac_sm3,
    random_key,
    signature_from_der,
    signature_to_der,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from huinong.security.sm2 import GX, GY, N

# --------------------------------------------------------------------------- fixed vectors

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")

# GM/T 0003.5-2012 / GB/T 32918.5-2017, Appendix A
GMT_D = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
GMT_PUBLIC = (
    "04"
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
GMT_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
GMT_ZA = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
GMT_E = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640"
GMT_SIGNATURE = bytes.fromhex(
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)
GMT_CIPHERTEXT = bytes.fromhex(
    "04"
    "04ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73"  # C1: x1
    "e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0"  # C1: y1
    "59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766"  # C3
    "21886ca989ca9c7d58087307ca93092d651efa"  # C2
)


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def gmt_key() -> SM2PrivateKey:
    return SM2PrivateKey.from_hex(GMT_D)


# --------------------------------------------------------------------------- SM3 and HMAC


def test_sm3_standard_vectors() -> None:
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert (
        sm3(b"abcd" * 16).hex()
        == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def _gmssl_sm3(data: bytes) -> bytes:
    return bytes.fromhex(gmssl_sm3.sm3_hash(list(data)))


def _reference_hmac_sm3(key: bytes, data: bytes) -> bytes:
    # RFC 2104 written out over gmssl's SM3 (block size 64 bytes).
    if len(key) > 64:
        key = _gmssl_sm3(key)
    key = key.ljust(64, b"\x00")
    inner = _gmssl_sm3(bytes(b ^ 0x36 for b in key) + data)
    return _gmssl_sm3(bytes(b ^ 0x5C for b in key) + inner)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300))
def test_sm3_agrees_with_gmssl(data: bytes) -> None:
    assert sm3(data) == _gmssl_sm3(data)


@settings(max_examples=40, deadline=None)
@given(key=st.binary(max_size=100), data=st.binary(max_size=200))
def test_hmac_sm3_agrees_with_rfc2104_over_gmssl(key: bytes, data: bytes) -> None:
    assert hmac_sm3(key, data) == _reference_hmac_sm3(key, data)


def test_hmac_sm3_depends_on_key_and_data() -> None:
    mac = hmac_sm3(b"k", b"data")
    assert len(mac) == 32
    assert mac != hmac_sm3(b"K", b"data")
    assert mac != hmac_sm3(b"k", b"datA")


# --------------------------------------------------------------------------- SM4


def test_random_key_is_16_fresh_bytes() -> None:
    keys = {random_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 16 for k in keys)


def test_sm4_ecb_standard_vector() -> None:
    ciphertext = sm4_ecb_encrypt(SM4_KEY, SM4_KEY)
    assert ciphertext.hex() == "681edf34d206965e86b3e94f536e4246"
    assert sm4_ecb_decrypt(SM4_KEY, ciphertext) == SM4_KEY


def test_sm4_cbc_published_vector_without_padding() -> None:
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plaintext = bytes.fromhex("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")
    expected = "78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d"
    assert sm4_cbc_encrypt(SM4_KEY, iv, plaintext, pad=False).hex() == expected
    assert sm4_cbc_decrypt(SM4_KEY, iv, bytes.fromhex(expected), pad=False) == plaintext


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 100])
def test_sm4_cbc_pkcs7_round_trip(length: int) -> None:
    iv = secrets.token_bytes(16)
    plaintext = secrets.token_bytes(length)
    ciphertext = sm4_cbc_encrypt(SM4_KEY, iv, plaintext)
    # PKCS#7 always adds 1 to 16 bytes, so a whole block of padding after full blocks.
    assert len(ciphertext) == (length // 16 + 1) * 16
    assert sm4_cbc_decrypt(SM4_KEY, iv, ciphertext) == plaintext
    padding = sm4_cbc_decrypt(SM4_KEY, iv, ciphertext, pad=False)[length:]
    assert padding == bytes([16 - length % 16]) * (16 - length % 16)


def test_sm4_cbc_rejects_bad_padding() -> None:
    iv = bytes(16)
    # A last plaintext byte of 0x00 is never valid PKCS#7.
    ciphertext = sm4_cbc_encrypt(SM4_KEY, iv, b"A" * 15 + b"\x00", pad=False)
    with pytest.raises(CryptoError, match="padding"):
        sm4_cbc_decrypt(SM4_KEY, iv, ciphertext)
    with pytest.raises(CryptoError, match="at least one block"):
        sm4_cbc_decrypt(SM4_KEY, iv, b"")


def test_sm4_gcm_rfc8998_vector_decrypts() -> None:
    nonce = bytes.fromhex("00001234567800000000abcd")
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    plaintext = bytes.fromhex(
        "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
        "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
    )
    ciphertext = bytes.fromhex(
        "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
        "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
    )
    tag = bytes.fromhex("83de3541e4c2b58177e065a9bf7b62ec")
    assert sm4_gcm_decrypt(SM4_KEY, nonce + ciphertext + tag, aad=aad) == plaintext


def test_sm4_gcm_layout_and_fresh_nonces() -> None:
    first = sm4_gcm_encrypt(SM4_KEY, b"same")
    second = sm4_gcm_encrypt(SM4_KEY, b"same")
    assert len(first) == 12 + 4 + 16
    assert first[:12] != second[:12]
    assert first != second


@settings(max_examples=30, deadline=None)
@given(plaintext=st.binary(max_size=200), aad=st.binary(max_size=40))
def test_sm4_gcm_round_trip(plaintext: bytes, aad: bytes) -> None:
    key = random_key()
    assert sm4_gcm_decrypt(key, sm4_gcm_encrypt(key, plaintext, aad=aad), aad=aad) == plaintext


@pytest.mark.parametrize(
    "position",
    [0, 11, 12, 20, -17, -1],
    ids=["nonce-first", "nonce-last", "ciphertext-first", "ciphertext", "ciphertext-last", "tag"],
)
def test_sm4_gcm_detects_a_flipped_byte(position: int) -> None:
    blob = bytearray(sm4_gcm_encrypt(SM4_KEY, b"id number 110101199003074512", aad=b"row 7"))
    blob[position] ^= 0x01
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(SM4_KEY, bytes(blob), aad=b"row 7")


def test_sm4_gcm_detects_wrong_aad_wrong_key_and_truncation() -> None:
    blob = sm4_gcm_encrypt(SM4_KEY, b"secret", aad=b"row 7")
    assert sm4_gcm_decrypt(SM4_KEY, blob, aad=b"row 7") == b"secret"
    for aad in (b"row 8", b""):
        with pytest.raises(CryptoError):
            sm4_gcm_decrypt(SM4_KEY, blob, aad=aad)
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(random_key(), blob, aad=b"row 7")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(SM4_KEY, blob[:-1], aad=b"row 7")
    with pytest.raises(CryptoError, match="at least 28 bytes"):
        sm4_gcm_decrypt(SM4_KEY, blob[:27])


@pytest.mark.parametrize(
    "call",
    [
        lambda: sm4_gcm_encrypt(b"short", b"x"),
        lambda: sm4_gcm_decrypt(bytes(32), bytes(40)),
        lambda: sm4_ecb_encrypt(bytes(15), bytes(16)),
        lambda: sm4_ecb_encrypt(SM4_KEY, bytes(17)),
        lambda: sm4_ecb_decrypt(SM4_KEY, bytes(15)),
        lambda: sm4_cbc_encrypt(SM4_KEY, bytes(8), b"x"),
        lambda: sm4_cbc_encrypt(SM4_KEY, bytes(16), bytes(17), pad=False),
        lambda: sm4_cbc_decrypt(SM4_KEY, bytes(16), bytes(17)),
        lambda: sm4_cbc_decrypt(bytes(24), bytes(16), bytes(16)),
    ],
    ids=[
        "gcm-key",
        "gcm-key-decrypt",
        "ecb-key",
        "ecb-length",
        "ecb-decrypt-length",
        "cbc-iv",
        "cbc-unpadded-length",
        "cbc-ciphertext-length",
        "cbc-key",
    ],
)
def test_sm4_bad_lengths_raise_crypto_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CryptoError) as raised:
        call()
    assert isinstance(raised.value, ValueError)


def test_sm4_ecb_agrees_with_gmssl() -> None:
    from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

    data = secrets.token_bytes(64)
    theirs = CryptSM4()
    theirs.set_key(SM4_KEY, SM4_ENCRYPT)
    # gmssl always pads with PKCS#7; its first 64 bytes are the unpadded ECB blocks.
    assert theirs.crypt_ecb(data)[:64] == sm4_ecb_encrypt(SM4_KEY, data)


# --------------------------------------------------------------------------- SM2: the standard


def test_gmt_0003_5_key_pair(gmt_key: SM2PrivateKey) -> None:
    assert gmt_key.public_key.to_hex() == GMT_PUBLIC
    assert gmt_key.to_hex() == GMT_D


def test_gmt_0003_5_za_and_message_digest(gmt_key: SM2PrivateKey) -> None:
    public = gmt_key.public_key
    assert public._default_za.hex() == GMT_ZA
    assert public._digest_to_sign(b"message digest", DEFAULT_SIGNER_ID) == int(GMT_E, 16)


def test_gmt_0003_5_signature_with_its_nonce(gmt_key: SM2PrivateKey) -> None:
    signature = gmt_key._sign_with_nonce(b"message digest", GMT_K)
    assert signature == GMT_SIGNATURE
    signature = gmt_key._sign_with_nonce(b"message digest", GMT_K, signer_id=b"1234567812345678")
    assert signature == GMT_SIGNATURE


def test_gmt_0003_5_signature_verifies(gmt_key: SM2PrivateKey) -> None:
    public = SM2PublicKey.from_hex(GMT_PUBLIC)
    assert public.verify(GMT_SIGNATURE, b"message digest")
    assert not public.verify(GMT_SIGNATURE, b"message digesT")
    assert not public.verify(GMT_SIGNATURE, b"message digest", signer_id=b"ALICE123@YAHOO.COM")


def test_gmt_0003_5_encryption_with_its_nonce(gmt_key: SM2PrivateKey) -> None:
    ciphertext = gmt_key.public_key._encrypt_with_nonce(b"encryption standard", GMT_K)
    assert ciphertext == GMT_CIPHERTEXT
    assert gmt_key.decrypt(GMT_CIPHERTEXT) == b"encryption standard"


def test_curve_generator_is_the_standard_one() -> None:
    generator = SM2PrivateKey(1).public_key
    assert generator.to_hex() == "04" + f"{GX:064x}{GY:064x}"


# --------------------------------------------------------------------------- SM2: signatures


def test_sign_verify_round_trip(key: SM2PrivateKey) -> None:
    message = "给王家村 3 组的补贴".encode()
    signature = key.sign(message)
    assert len(signature) == 64
    assert key.public_key.verify(signature, message)
    # A fresh CSPRNG nonce each time: the same message never signs the same way twice.
    assert key.sign(message) != signature


def test_signature_binds_message_key_and_signer_id(key: SM2PrivateKey) -> None:
    signature = key.sign(b"pay 100.00", signer_id=b"teller-0042")
    assert key.public_key.verify(signature, b"pay 100.00", signer_id=b"teller-0042")
    assert not key.public_key.verify(signature, b"pay 100.00")
    assert not key.public_key.verify(signature, b"pay 100.00", signer_id=b"teller-0043")
    assert not key.public_key.verify(signature, b"pay 900.00", signer_id=b"teller-0042")
    other = SM2PrivateKey.generate().public_key
    assert not other.verify(signature, b"pay 100.00", signer_id=b"teller-0042")


def test_empty_message_and_empty_signer_id(key: SM2PrivateKey) -> None:
    signature = key.sign(b"", signer_id=b"")
    assert key.public_key.verify(signature, b"", signer_id=b"")
    assert not key.public_key.verify(signature, b"")


def test_signer_id_longer_than_entl_allows_is_refused(key: SM2PrivateKey) -> None:
    key.sign(b"m", signer_id=b"i" * 8191)  # 65,528 bits still fits ENTL's 16 bits
    with pytest.raises(CryptoError, match="signer id"):
        key.sign(b"m", signer_id=b"i" * 8192)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        bytes(63),
        bytes(65),
        bytes(128),
        bytes(64),  # r = s = 0
        bytes(32) + (1).to_bytes(32, "big"),  # r = 0
        (1).to_bytes(32, "big") + bytes(32),  # s = 0
        N.to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = n
        (1).to_bytes(32, "big") + N.to_bytes(32, "big"),  # s = n
        b"\xff" * 64,
        (1).to_bytes(32, "big") + (N - 1).to_bytes(32, "big"),  # r + s = n
    ],
)
def test_bad_signatures_are_false_not_errors(key: SM2PrivateKey, signature: bytes) -> None:
    assert key.public_key.verify(signature, b"message") is False


def test_flipping_any_signature_bit_fails(key: SM2PrivateKey) -> None:
    signature = key.sign(b"message")
    for position in (0, 31, 32, 63):
        damaged = bytearray(signature)
        damaged[position] ^= 0x80
        assert not key.public_key.verify(bytes(damaged), b"message")


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300), signer_id=st.binary(max_size=40))
def test_sign_verify_property(key: SM2PrivateKey, message: bytes, signer_id: bytes) -> None:
    signature = key.sign(message, signer_id=signer_id)
    assert key.public_key.verify(signature, message, signer_id=signer_id)
    assert not key.public_key.verify(signature, message + b"!", signer_id=signer_id)


def test_signature_der_round_trip(key: SM2PrivateKey) -> None:
    raw = key.sign(b"m")
    der = signature_to_der(raw)
    assert der[0] == 0x30
    assert signature_from_der(der) == raw
    # Small r and s: minimal INTEGERs, and the raw form pads them back to 32 bytes.
    small = (1).to_bytes(32, "big") + (0x80).to_bytes(32, "big")
    assert signature_to_der(small).hex() == "300702010102020080"
    assert signature_from_der(signature_to_der(small)) == small


@settings(max_examples=50, deadline=None)
@given(r=st.integers(1, 2**256 - 1), s=st.integers(1, 2**256 - 1))
def test_signature_der_property(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert signature_from_der(signature_to_der(raw)) == raw


@pytest.mark.parametrize(
    "der",
    [
        "",
        "30",
        "3006020101020101ff",  # trailing byte after the sequence
        "300602010102010100",
        "3009020101020101020101",  # three integers
        "3003020101",  # one integer
        "30060201ff020101",  # negative r
        "300702020001020101",  # r not minimal
        "3006020100020101",  # r = 0
        "3026020101022100" + "01" * 33,  # s of 264 bits
        "3106020101020101",  # SET, not SEQUENCE
        "308106020101020101",  # length not minimal
        "3006040101020101",  # OCTET STRING, not INTEGER
    ],
)
def test_malformed_der_signatures_raise_crypto_error(der: str) -> None:
    with pytest.raises(CryptoError):
        signature_from_der(bytes.fromhex(der))


def test_signature_to_der_needs_64_bytes() -> None:
    with pytest.raises(CryptoError, match="64 bytes"):
        signature_to_der(bytes(63))


def test_concurrent_signing_from_threads(key: SM2PrivateKey) -> None:
    messages = [f"transfer {i}".encode() for i in range(80)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        signatures = list(pool.map(key.sign, messages))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(key.public_key.verify, signatures, messages))
    assert all(results)
    assert len(set(signatures)) == len(signatures)


# --------------------------------------------------------------------------- SM2: encryption


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=300))
def test_encrypt_decrypt_property(key: SM2PrivateKey, plaintext: bytes) -> None:
    ciphertext = key.public_key.encrypt(plaintext)
    assert len(ciphertext) == 97 + len(plaintext)
    assert ciphertext[0] == 0x04
    assert key.decrypt(ciphertext) == plaintext


def test_encryption_is_randomised(key: SM2PrivateKey) -> None:
    assert key.public_key.encrypt(b"k" * 16) != key.public_key.encrypt(b"k" * 16)


def test_empty_plaintext_is_refused(key: SM2PrivateKey) -> None:
    with pytest.raises(CryptoError, match="empty"):
        key.public_key.encrypt(b"")


def test_decrypt_refuses_tampering_and_other_keys(key: SM2PrivateKey) -> None:
    ciphertext = key.public_key.encrypt(b"an SM4 data key!")
    for position in (70, 96, 97, len(ciphertext) - 1):  # C3 first/last, C2 first/last
        damaged = bytearray(ciphertext)
        damaged[position] ^= 0x01
        with pytest.raises(CryptoError, match="decryption failed"):
            key.decrypt(bytes(damaged))
    with pytest.raises(CryptoError, match="decryption failed"):
        SM2PrivateKey.generate().decrypt(ciphertext)


@pytest.mark.parametrize(
    "ciphertext",
    [
        b"",
        bytes(97),
        b"\x04" + bytes(96),  # no C2
        b"\x02" + bytes(100),  # compressed C1 is not C1C3C2 as specified
        b"\x04" + b"\x01" * 64 + bytes(33),  # C1 not on the curve
    ],
    ids=["empty", "zeros", "no-c2", "compressed", "off-curve"],
)
def test_malformed_ciphertexts_raise_crypto_error(key: SM2PrivateKey, ciphertext: bytes) -> None:
    with pytest.raises(CryptoError):
        key.decrypt(ciphertext)


def test_flipped_c1_byte_is_refused(key: SM2PrivateKey) -> None:
    ciphertext = bytearray(key.public_key.encrypt(b"secret"))
    ciphertext[10] ^= 0x01  # x1 changes: off the curve, or a different point
    with pytest.raises(CryptoError):
        key.decrypt(bytes(ciphertext))


# --------------------------------------------------------------------------- SM2: key encodings


def test_private_key_encodings_round_trip(key: SM2PrivateKey) -> None:
    assert SM2PrivateKey.from_hex(key.to_hex()) == key
    assert SM2PrivateKey.from_hex(key.to_hex().upper()) == key
    assert SM2PrivateKey.from_der(key.to_der()) == key
    assert SM2PrivateKey.from_pem(key.to_pem()) == key
    assert SM2PrivateKey.from_pem(key.to_pem().encode()) == key
    assert len(key.to_hex()) == 64
    assert key.to_pem().startswith("-----BEGIN PRIVATE KEY-----\n")


def test_public_key_encodings_round_trip(key: SM2PrivateKey) -> None:
    public = key.public_key
    assert public.to_hex().startswith("04")
    assert public.to_hex() == public.to_hex().lower()
    assert len(public.to_hex()) == 130
    assert SM2PublicKey.from_hex(public.to_hex()) == public
    assert SM2PublicKey.from_hex(public.to_hex()[2:]) == public
    assert SM2PublicKey.from_hex(public.to_hex().upper()) == public
    assert SM2PublicKey.from_der(public.to_der()) == public
    assert SM2PublicKey.from_pem(public.to_pem()) == public
    assert SM2PublicKey.from_pem(public.to_pem().encode()) == public
    assert public.to_pem().startswith("-----BEGIN PUBLIC KEY-----\n")


def test_der_layout_names_id_ec_public_key_on_the_sm2_curve(key: SM2PrivateKey) -> None:
    # 1.2.840.10045.2.1 (id-ecPublicKey) and 1.2.156.10197.1.301 (sm2), as OpenSSL writes them.
    algorithm = "301306072a8648ce3d020106082a811ccf5501822d"
    assert key.public_key.to_der().hex().startswith("3059" + algorithm + "034200")
    assert key.to_der().hex().startswith("308187020100" + algorithm + "046d306b020101")


def test_fingerprint_is_sm3_of_the_der(key: SM2PrivateKey) -> None:
    fingerprint = key.public_key.fingerprint()
    assert fingerprint == sm3(key.public_key.to_der()).hex()
    assert len(fingerprint) == 64
    assert fingerprint != SM2PrivateKey.generate().public_key.fingerprint()


def test_private_key_does_not_show_its_scalar(key: SM2PrivateKey) -> None:
    shown = repr(key) + str(key)
    scalar = key.to_hex()
    assert scalar not in shown.lower()
    assert str(int(scalar, 16)) not in shown
    assert key.public_key.fingerprint()[:16] in shown
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(key)


def test_keys_are_immutable_values(key: SM2PrivateKey) -> None:
    public = key.public_key
    with pytest.raises(AttributeError):
        public._xy = bytes(64)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        key._d = 1  # type: ignore[misc]
    assert copy.deepcopy(public) == public
    assert hash(SM2PublicKey.from_hex(public.to_hex())) == hash(public)
    assert {public, SM2PublicKey.from_hex(public.to_hex())} == {public}
    assert key != SM2PrivateKey.generate()
    assert eval(repr(public), {"SM2PublicKey": SM2PublicKey}) == public


def test_generated_keys_are_distinct_and_in_range() -> None:
    scalars = {int(SM2PrivateKey.generate().to_hex(), 16) for _ in range(10)}
    assert len(scalars) == 10
    assert all(1 <= d <= N - 2 for d in scalars)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00" * 32,  # zero
        f"{N - 1:064x}",  # n - 1: 1 + d has no inverse
        f"{N:064x}",
        "ff" * 32,
        "zz" * 32,
        "01" * 31,
        "01" * 33,
    ],
    ids=["empty", "zero", "n-1", "n", "too-big", "not-hex", "short", "long"],
)
def test_bad_private_hex_raises_crypto_error(text: str) -> None:
    with pytest.raises(CryptoError):
        SM2PrivateKey.from_hex(text)


def test_largest_private_scalar_works() -> None:
    key = SM2PrivateKey.from_hex(f"{N - 2:064x}")
    assert key.public_key.verify(key.sign(b"m"), b"m")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "04",
        "05" + GMT_PUBLIC[2:],  # 130 digits not starting with 04
        GMT_PUBLIC[:-2] + "00",  # y changed: off the curve
        GMT_PUBLIC[2:-2] + "00",
        "04" + "00" * 64,
        "zz" * 65,
        GMT_PUBLIC + "00",
    ],
    ids=[
        "empty",
        "prefix-only",
        "bad-prefix",
        "off-curve",
        "off-curve-bare",
        "zero",
        "not-hex",
        "long",
    ],
)
def test_bad_public_hex_raises_crypto_error(text: str) -> None:
    with pytest.raises(CryptoError):
        SM2PublicKey.from_hex(text)


def test_other_curves_are_not_sm2_keys() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    der = p256.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CryptoError, match="not an SM2 key"):
        SM2PrivateKey.from_der(der)
    public = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CryptoError, match="not an SM2 key"):
        SM2PublicKey.from_pem(public)
    encrypted = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CryptoError, match="encrypted"):
        SM2PrivateKey.from_pem(encrypted)


def test_malformed_key_files_raise_crypto_error(key: SM2PrivateKey) -> None:
    der = key.to_der()
    cases = [
        lambda: SM2PrivateKey.from_der(b""),
        lambda: SM2PrivateKey.from_der(der[:-1]),
        lambda: SM2PrivateKey.from_der(der + b"\x00"),
        lambda: SM2PrivateKey.from_der(key.public_key.to_der()),
        lambda: SM2PublicKey.from_der(der),
        lambda: SM2PublicKey.from_der(key.public_key.to_der()[:-1]),
        lambda: SM2PrivateKey.from_pem(key.public_key.to_pem()),  # wrong label
        lambda: SM2PublicKey.from_pem(key.to_pem()),
        lambda: SM2PrivateKey.from_pem("not a key"),
        lambda: SM2PrivateKey.from_pem(key.to_pem().replace("M", "!", 1)),  # bad base64
        lambda: SM2PrivateKey.from_pem(b"\xff\xfe"),
    ]
    for case in cases:
        with pytest.raises(CryptoError):
            case()


def test_embedded_public_key_must_match_the_scalar(key: SM2PrivateKey) -> None:
    other = SM2PrivateKey.generate()
    der = key.to_der()
    forged = der.replace(key.public_key.to_octets(), other.public_key.to_octets())
    with pytest.raises(CryptoError, match="does not match"):
        SM2PrivateKey.from_der(forged)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_garbage_never_crashes_the_parsers(key: SM2PrivateKey, data: bytes) -> None:
    for parse in (
        SM2PrivateKey.from_der,
        SM2PublicKey.from_der,
        signature_from_der,
        key.decrypt,
        SM2PrivateKey.from_pem,
    ):
        with contextlib.suppress(CryptoError):
            parse(data)
    assert key.public_key.verify(data, b"m") is False


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, 137), value=st.integers(0, 255))
def test_corrupted_key_der_is_refused_or_still_consistent(
    key: SM2PrivateKey, position: int, value: int
) -> None:
    der = bytearray(key.to_der())
    der[position] = value
    try:
        parsed = SM2PrivateKey.from_der(bytes(der))
    except CryptoError:
        return
    assert parsed == key  # only changes DER ignores (none expected) may pass


# --------------------------------------------------------------------------- cross-checks


def _gmssl(key: SM2PrivateKey | None, public: SM2PublicKey) -> gmssl_sm2.CryptSM2:
    crypt = gmssl_sm2.CryptSM2(
        private_key=key.to_hex() if key else "", public_key=public.to_hex()[2:], mode=1
    )
    # gmssl strips a "04" prefix with str.lstrip("04"), eating leading 0s and 4s of x: set the
    # 128 hex digits x || y directly instead.
    crypt.public_key = public.to_hex()[2:]
    return crypt


def test_gmssl_verifies_our_signatures(key: SM2PrivateKey) -> None:
    theirs = _gmssl(None, key.public_key)
    for message in (b"", b"abc", secrets.token_bytes(1000)):
        assert theirs.verify_with_sm3(key.sign(message).hex(), message)
    assert not theirs.verify_with_sm3(key.sign(b"abc").hex(), b"abd")


def test_we_verify_gmssl_signatures(key: SM2PrivateKey) -> None:
    theirs = _gmssl(key, key.public_key)
    for message in (b"", b"abc", secrets.token_bytes(1000)):
        nonce = f"{secrets.randbelow(N - 1) + 1:064x}"  # gmssl's own nonce is not a CSPRNG's
        signature = bytes.fromhex(theirs.sign_with_sm3(message, nonce))
        assert key.public_key.verify(signature, message)


def _gmssl_digest(public: SM2PublicKey, message: bytes, signer_id: bytes) -> bytes:
    # e = SM3(ZA || M) composed from the standard, on gmssl's SM3: independent of our ZA code.
    a = "fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc"
    b = "28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93"
    prefix = (8 * len(signer_id)).to_bytes(2, "big") + signer_id
    za = _gmssl_sm3(prefix + bytes.fromhex(a + b + f"{GX:064x}{GY:064x}" + public.to_hex()[2:]))
    return _gmssl_sm3(za + message)


def test_signer_id_agrees_with_gmssl_arithmetic(key: SM2PrivateKey) -> None:
    theirs = _gmssl(key, key.public_key)
    signer_id = "王家村信用社".encode()
    ours = key.sign(b"loan 3", signer_id=signer_id)
    digest = _gmssl_digest(key.public_key, b"loan 3", signer_id)
    assert theirs.verify(ours.hex(), digest)
    nonce = f"{secrets.randbelow(N - 1) + 1:064x}"
    their_signature = bytes.fromhex(theirs.sign(digest, nonce))
    assert key.public_key.verify(their_signature, b"loan 3", signer_id=signer_id)
    assert not key.public_key.verify(their_signature, b"loan 3")


def _gmssl_encrypt(theirs: Any, plaintext: bytes) -> bytes:
    """gmssl's encryption, retried as GB/T 32918.4 says: when the KDF output t is all zeros
    (1 in 256 for a one-byte message) another k must be drawn; gmssl returns None instead."""
    for _ in range(64):
        sealed = theirs.encrypt(plaintext)
        if sealed is not None:
            return bytes(sealed)
    raise AssertionError("gmssl drew an all-zero key stream 64 times in a row")


def test_gmssl_decrypts_ours_and_we_decrypt_gmssl(key: SM2PrivateKey) -> None:
    theirs = _gmssl(key, key.public_key)
    for plaintext in (b"x", b"sixteen byte key", secrets.token_bytes(500)):
        # gmssl writes and reads C1 as 64 bytes x || y, without the 04 of GB/T 32918.4.
        assert theirs.decrypt(key.public_key.encrypt(plaintext)[1:]) == plaintext
        assert key.decrypt(b"\x04" + theirs.encrypt(plaintext)) == plaintext


def test_tongsuo_high_level_sm2_agrees(key: SM2PrivateKey) -> None:
    # Tongsuo's own SM2 code (C, ZA with the default id), reached through tongsuopy's API.
    from tongsuopy.crypto import hashes as tongsuo_hashes
    from tongsuopy.crypto import serialization as tongsuo_serialization
    from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

    theirs = tongsuo_serialization.load_der_private_key(key.to_der(), None)
    algorithm = tongsuo_ec.ECDSA(tongsuo_hashes.SM3())
    signature = signature_from_der(theirs.sign(b"message", algorithm))
    assert key.public_key.verify(signature, b"message")
    theirs.public_key().verify(signature_to_der(key.sign(b"message")), b"message", algorithm)
    generated = tongsuo_ec.generate_private_key(tongsuo_ec.SM2())
    pem = generated.private_bytes(
        tongsuo_serialization.Encoding.PEM,
        tongsuo_serialization.PrivateFormat.PKCS8,
        tongsuo_serialization.NoEncryption(),
    )
    ours = SM2PrivateKey.from_pem(pem)
    assert ours.to_der() == generated.private_bytes(
        tongsuo_serialization.Encoding.DER,
        tongsuo_serialization.PrivateFormat.PKCS8,
        tongsuo_serialization.NoEncryption(),
    )


OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def _openssl(*arguments: str, cwd: Path) -> bytes:
    assert OPENSSL is not None
    done = subprocess.run(
        [OPENSSL, *arguments], cwd=cwd, capture_output=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@needs_openssl
def test_openssl_reads_our_keys_and_verifies_our_signatures(
    key: SM2PrivateKey, tmp_path: Path
) -> None:
    (tmp_path / "key.pem").write_text(key.to_pem())
    (tmp_path / "public.pem").write_text(key.public_key.to_pem())
    derived = _openssl("pkey", "-in", "key.pem", "-pubout", cwd=tmp_path).decode()
    assert derived == key.public_key.to_pem()
    (tmp_path / "message").write_bytes(b"village credit file 17")
    signature = key.sign(b"village credit file 17", signer_id=b"ALICE123@YAHOO.COM")
    (tmp_path / "signature").write_bytes(signature_to_der(signature))
    verified = _openssl(
        *("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", "public.pem"),
        *("-in", "message", "-sigfile", "signature", "-pkeyopt", "distid:ALICE123@YAHOO.COM"),
        cwd=tmp_path,
    )
    assert b"Verified Successfully" in verified


@needs_openssl
def test_we_read_openssl_keys_and_verify_its_signatures(tmp_path: Path) -> None:
    _openssl("genpkey", "-algorithm", "SM2", "-out", "key.pem", cwd=tmp_path)
    _openssl("ec", "-in", "key.pem", "-out", "sec1.pem", cwd=tmp_path)
    public_pem = _openssl("pkey", "-in", "key.pem", "-pubout", cwd=tmp_path)
    key = SM2PrivateKey.from_pem((tmp_path / "key.pem").read_bytes())
    assert SM2PrivateKey.from_pem((tmp_path / "sec1.pem").read_bytes()) == key
    assert SM2PublicKey.from_pem(public_pem) == key.public_key
    (tmp_path / "message").write_bytes(b"produce purchase 88")
    _openssl(
        *("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", "key.pem"),
        *("-in", "message", "-out", "signature", "-pkeyopt", "distid:pos-terminal-9"),
        cwd=tmp_path,
    )
    signature = signature_from_der((tmp_path / "signature").read_bytes())
    assert key.public_key.verify(signature, b"produce purchase 88", signer_id=b"pos-terminal-9")
    assert not key.public_key.verify(signature, b"produce purchase 88")


# --------------------------------------------------------------------------- the module


def test_crypto_reexports_the_sm2_names() -> None:
    from huinong.security import sm2

    assert crypto.SM2PrivateKey is sm2.SM2PrivateKey
    assert crypto.signature_to_der is sm2.signature_to_der
    assert set(crypto.__all__) <= set(dir(crypto))
    with pytest.raises(AttributeError):
        crypto.no_such_name  # noqa: B018


def test_sm3_and_sm4_do_not_load_sm2() -> None:
    code = (
        "import sys; from huinong.security.crypto import sm3, sm4_gcm_encrypt; "
        "assert 'huinong.security.sm2' not in sys.modules; "
        "assert not any(m.startswith('tongsuopy') for m in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def test_sm2_module_imports_on_its_own() -> None:
    code = "from huinong.security.sm2 import SM2PrivateKey; SM2PrivateKey.generate()"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_no_memory_leak_in_the_c_calls(key: SM2PrivateKey) -> None:
    # Every product allocates an EC_POINT and BIGNUMs in C; forgetting one free costs about
    # 300 bytes a call, which 1,000 sign + verify + parse rounds turn into 600 KB or more.
    public_hex = key.public_key.to_hex()

    def rounds(count: int) -> None:
        for _ in range(count):
            signature = key.sign(b"m")
            assert key.public_key.verify(signature, b"m")
            SM2PublicKey.from_hex(public_hex)
        for _ in range(count // 5):
            assert key.decrypt(key.public_key.encrypt(b"k")) == b"k"

    rounds(300)
    before = _resident_bytes()
    rounds(1000)
    assert _resident_bytes() - before < 256 * 1024
