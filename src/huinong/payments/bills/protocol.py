"""The HTTP biller protocol (HNB1): canonical forms and SM2 signatures, as pure functions.

Two calls, both ``POST`` with a JSON body and a JSON answer:

* ``/bills/query``  ``{"reference": "…"}`` -> ``{"bills": [{"bill_id", "reference",
  "period", "amount_fen", "due_date", "status"}]}``: the open (and paid) bills of a 户号;
* ``/payments/confirm`` ``{"payment_id", "bill_id", "reference", "period", "amount_fen",
  "paid_at"}`` -> ``{"payment_id", "status": "confirmed", "receipt", "confirmed_at"}``.
  Idempotent on ``payment_id``: a repeat answers the first receipt; the same id with other
  content is refused (409).
* ``GET /return-file?date=YYYY-MM-DD`` -> the biller's return file (CSV) for the day.

**Signatures: SM2** (GB/T 32918, signer id ``1234567812345678``), chosen over HMAC-SM3
because it fits the 国密 certificate system the seeds describe: each side holds only its own
private key and the other's public key, so a leaked biller configuration cannot forge our
requests (a shared HMAC key could). Every request carries ``X-HNB-Caller`` (who we are),
``X-HNB-Timestamp`` (Unix seconds), ``X-HNB-Nonce`` (128 random bits, hex) and
``X-HNB-Signature`` (hex of the raw 64-byte ``r || s``) over::

    HNB1-REQUEST\\n<METHOD>\\n<path?query>\\n<caller>\\n<timestamp>\\n<nonce>\\n<hex SM3 of body>

Every answer (errors included) carries its own timestamp, nonce and signature over::

    HNB1-RESPONSE\\n<status>\\n<request nonce>\\n<timestamp>\\n<nonce>\\n<hex SM3 of body>

Binding the answer to the request's nonce means an old answer replayed by a man in the middle
does not verify. A receiver refuses a timestamp more than ``MAX_SKEW_SECONDS`` away from its
clock and (the biller) a nonce it has seen within that window.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from huinong.security.crypto import SM2PrivateKey, SM2PublicKey, sm3

VERSION = "HNB1"
CALLER = "X-HNB-Caller"
TIMESTAMP = "X-HNB-Timestamp"
NONCE = "X-HNB-Nonce"
SIGNATURE = "X-HNB-Signature"
MAX_SKEW_SECONDS = 300

QUERY_PATH = "/bills/query"
CONFIRM_PATH = "/payments/confirm"
RETURN_FILE_PATH = "/return-file"

_NONCE = re.compile(r"[0-9a-f]{32}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_CALLER = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class SignatureRefused(ValueError):
    """A request or answer whose signature, timestamp or nonce does not hold. ``reason`` is
    a stable word for logs and answers: missing, malformed, stale, replayed, bad_signature."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Signed:
    headers: dict[str, str]
    nonce: str


def new_nonce() -> str:
    return secrets.token_hex(16)


def request_to_sign(
    method: str, target: str, caller: str, timestamp: int, nonce: str, body: bytes
) -> bytes:
    return "\n".join(
        (
            f"{VERSION}-REQUEST",
            method.upper(),
            target,
            caller,
            str(timestamp),
            nonce,
            sm3(body).hex(),
        )
    ).encode()


def response_to_sign(
    status: int, request_nonce: str, timestamp: int, nonce: str, body: bytes
) -> bytes:
    return "\n".join(
        (f"{VERSION}-RESPONSE", str(status), request_nonce, str(timestamp), nonce, sm3(body).hex())
    ).encode()


def sign_request(
    key: SM2PrivateKey,
    *,
    method: str,
    target: str,
    caller: str,
    body: bytes,
    now: int,
    nonce: str | None = None,
) -> Signed:
    nonce = nonce or new_nonce()
    message = request_to_sign(method, target, caller, now, nonce, body)
    return Signed(
        {
            CALLER: caller,
            TIMESTAMP: str(now),
            NONCE: nonce,
            SIGNATURE: key.sign(message).hex(),
        },
        nonce,
    )


def sign_response(
    key: SM2PrivateKey, *, status: int, request_nonce: str, body: bytes, now: int
) -> dict[str, str]:
    nonce = new_nonce()
    message = response_to_sign(status, request_nonce, now, nonce, body)
    return {TIMESTAMP: str(now), NONCE: nonce, SIGNATURE: key.sign(message).hex()}


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower())
    if not value:
        raise SignatureRefused("missing", f"the {name} header is missing")
    return value


def _checked(headers: Mapping[str, str], now: int) -> tuple[int, str, bytes]:
    stamp_text = _header(headers, TIMESTAMP)
    nonce = _header(headers, NONCE)
    signature_hex = _header(headers, SIGNATURE)
    if not stamp_text.isdigit() or len(stamp_text) > 12:
        raise SignatureRefused("malformed", f"{TIMESTAMP} is Unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureRefused("malformed", f"{NONCE} is 32 lower-case hex digits")
    if not _SIGNATURE.fullmatch(signature_hex):
        raise SignatureRefused("malformed", f"{SIGNATURE} is 128 lower-case hex digits")
    timestamp = int(stamp_text)
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        raise SignatureRefused("stale", "the timestamp is too far from the receiver's clock")
    return timestamp, nonce, bytes.fromhex(signature_hex)


def verify_request(
    public_key_of: Callable[[str], SM2PublicKey | None],
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    nonce_is_new: Callable[[str, str], bool],
) -> str:
    """The caller of a correctly signed, fresh request. ``public_key_of(caller)`` gives the
    caller's key (None: unknown caller); ``nonce_is_new(caller, nonce)`` records the nonce
    and says whether it was unseen."""
    caller = _header(headers, CALLER)
    if not _CALLER.fullmatch(caller):
        raise SignatureRefused("malformed", f"{CALLER} is 1 to 64 letters, digits, - or _")
    timestamp, nonce, signature = _checked(headers, now)
    key = public_key_of(caller)
    if key is None:
        raise SignatureRefused("bad_signature", "unknown caller")
    if not key.verify(signature, request_to_sign(method, target, caller, timestamp, nonce, body)):
        raise SignatureRefused("bad_signature", "the request signature does not verify")
    if not nonce_is_new(caller, nonce):
        raise SignatureRefused("replayed", "this nonce was used already")
    return caller


def verify_response(
    public_key: SM2PublicKey,
    *,
    status: int,
    request_nonce: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int,
) -> None:
    timestamp, nonce, signature = _checked(headers, now)
    message = response_to_sign(status, request_nonce, timestamp, nonce, body)
    if not public_key.verify(signature, message):
        raise SignatureRefused("bad_signature", "the biller's answer is not signed by its key")
