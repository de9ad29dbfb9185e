"""The signed-terminal protocol: how a terminal signs a request and how the platform signs its
answer. Pure functions (no database, no HTTP library); the server side is
:func:`huinong.security.terminals.service.verify_signed_request`, the client side is
:class:`huinong.security.terminals.client.TerminalClient`.

Enrolment
=========
A terminal generates an SM2 key pair (GB/T 32918, curve sm2p256v1) and keeps the private key on
the device. An administrator enrols the public key (``POST /api/v1/terminals``, hex ``04||x||y``
or PEM) and later activates the terminal; the enrolment answer gives the terminal's **id** (a
UUID) and the key's **serial** (1, then 2, 3, ... as keys are rotated). The terminal pins the
institution's **platform public key** (``GET /api/v1/platform-key``, or
``huinong terminal platform-key``) to verify answers.

Signing a request
=================
Every request carries these headers (names are case-insensitive, values ASCII):

=================  ===========================================================================
``X-Terminal-Id``  the terminal's id, a UUID (``0192f0c4-5e1a-7b3c-8d4e-0123456789ab``)
``X-Key-Serial``   the serial of the key that signed, a decimal integer >= 1, no leading zero
``X-Timestamp``    the time of signing, whole seconds since 1970-01-01T00:00Z, no leading zero
``X-Nonce``        16 to 64 characters of ``[A-Za-z0-9_-]``, fresh for every request (use a
                   CSPRNG: 24 random bytes in base64url give 32 characters)
``X-Signature``    the SM2 signature, base64 (RFC 4648 §4, standard alphabet, with ``=``
                   padding: 88 characters) of the 64 bytes ``r || s``, each a 32-byte
                   big-endian integer. Not DER: convert a library's DER output to ``r || s``.
``X-Location``     optional: ``<latitude>,<longitude>`` in WGS-84 decimal degrees
                   (``30.274084,120.155070``). Required when the terminal has a geofence.
=================  ===========================================================================

The signature is SM2 with the signer id ``1234567812345678`` (the GM/T 0009 default; ZA is
computed from it and the public key per GM/T 0003.2) over the **canonical request**, these
byte strings joined by a single line feed (``0x0A``), with no line feed at the end::

    METHOD             upper case: GET, POST, ...
    PATH_WITH_QUERY    the request target exactly as sent on the request line: the path with
                       its percent-encoding untouched, then ``?`` and the query string exactly
                       as sent -- the ``?`` only when the query is not empty. No scheme, host or
                       fragment. (Send the path already percent-encoded; the bytes signed must
                       be the bytes sent.)
    TIMESTAMP          the X-Timestamp value
    NONCE              the X-Nonce value
    BODY_SM3           SM3 of the exact body bytes sent, 64 lower-case hex digits (an empty body
                       hashes to 1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b)
    LOCATION           only when X-Location is sent: its value exactly as sent

The location is signed when it is sent because the server decides on it: an unsigned location
could be rewritten on the way. Example, a GET without location (five lines, four line feeds)::

    GET
    /api/v1/deposit-accounts/62210000000017?verbose=1
    1764000000
    Zk3n0x8uQ1d2-b_7QWmD9r4VtYp6LsHe
    1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b

The server accepts a request when, in this order: the headers are well formed (else 401
``terminals.missing_header`` / ``terminals.malformed_header`` naming the header); the timestamp
is within ``HUINONG_SIGNATURE_WINDOW_SECONDS`` (300) of the server's clock either way (401
``terminals.stale_timestamp`` / ``terminals.future_timestamp``); the terminal exists (401
``terminals.unknown_terminal``); the key serial is one of its keys (401
``terminals.unknown_key_serial``) and not retired by a rotation (401 ``terminals.key_retired``);
the signature verifies (401 ``terminals.bad_signature``); the terminal is active (403
``terminals.terminal_pending`` / ``terminals.terminal_suspended`` / ``terminals.terminal_revoked``);
the nonce was not used by this terminal within the window (401 ``terminals.replayed_nonce``);
and, when the terminal has a geofence, the location was sent (403
``terminals.location_required``) and lies inside it (403 ``terminals.outside_geofence``, which
also leaves an alert for the risk officers). A request that was refused is not retried with
the same nonce: sign it again with a new nonce and timestamp.

Verifying the answer
====================
Every answer to a request that passed all of these checks -- the route's result or its
error, including a 403 for a route the terminal's role may not call -- carries:

==========================  ============================================================
``X-Platform-Key-Serial``   the serial of the institution's platform key that signed
``X-Timestamp``             the time of signing, unix seconds
``X-Signature``             base64 of the 64-byte ``r || s`` SM2 signature (signer id as above)
==========================  ============================================================

over the **canonical response**, joined by line feeds in the same way::

    METHOD             the request's method
    PATH_WITH_QUERY    the request's target, as signed in the request
    TIMESTAMP          the answer's X-Timestamp value
    REQUEST_NONCE      the request's X-Nonce: binds the answer to this request, so an old
                       answer cannot be passed off as the answer to a new request
    STATUS             the HTTP status code, three digits
    BODY_SM3           SM3 of the exact answer body bytes, 64 lower-case hex digits (for a
                       HEAD request, which gets no body, SM3 of the empty string)

A terminal verifies it with the pinned platform public key and discards an answer whose
signature is missing or does not verify. The answer's timestamp is informational: freshness
comes from the request's nonce, which the terminal chose. Requests refused by any of the checks
above get an unsigned problem answer (``application/problem+json`` with the ``code``): the
platform signs nothing for a request it has not accepted, so a terminal treats an unsigned
answer as "refused, for the reason given, or not from the platform at all".
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from huinong.errors import Unauthenticated
from huinong.security.crypto import DEFAULT_SIGNER_ID, sm3
from huinong.security.terminals.geofence import Point, parse_location

if TYPE_CHECKING:
    from huinong.security.crypto import SM2PrivateKey, SM2PublicKey

TERMINAL_ID_HEADER = "X-Terminal-Id"
KEY_SERIAL_HEADER = "X-Key-Serial"
TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"
LOCATION_HEADER = "X-Location"
PLATFORM_KEY_SERIAL_HEADER = "X-Platform-Key-Serial"

SIGNATURE_BYTES = 64
SIGNER_ID = DEFAULT_SIGNER_ID
DEFAULT_WINDOW_SECONDS = 300

_SERIAL = re.compile(r"^[1-9][0-9]{0,8}$")
_TIMESTAMP = re.compile(r"^(0|[1-9][0-9]{0,11})$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_BASE64_SIGNATURE = re.compile(r"^[A-Za-z0-9+/]{86}==$")
_LOCATION = re.compile(r"^[0-9+.,\- ]{3,64}$")


@dataclass(frozen=True)
class SignedRequestHeaders:
    """The protocol headers of one request, checked for form (not yet for truth)."""

    terminal_id: uuid.UUID
    key_serial: int
    timestamp: int
    nonce: str
    signature: bytes
    location: str | None  # as sent: it is signed as sent
    position: Point | None  # the location, parsed


def is_signed_request(headers: Mapping[str, str]) -> bool:
    """Whether a request claims to come from a terminal (it names one)."""
    return _get(headers, TERMINAL_ID_HEADER) is not None


def _get(headers: Mapping[str, str], name: str) -> str | None:
    # Starlette's and httpx's header maps are case-insensitive; a plain dict may not be.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _malformed(header: str, message: str) -> Unauthenticated:
    return Unauthenticated("terminals.malformed_header", message, field=header)


def parse_request_headers(headers: Mapping[str, str]) -> SignedRequestHeaders:
    """The protocol headers, or 401 ``terminals.missing_header`` / ``malformed_header`` naming
    the first one at fault."""
    values: dict[str, str] = {}
    for name in (
        TERMINAL_ID_HEADER,
        KEY_SERIAL_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
        SIGNATURE_HEADER,
    ):
        value = _get(headers, name)
        if value is None or not value.strip():
            raise Unauthenticated(
                "terminals.missing_header",
                f"a signed terminal request carries the {name} header",
                field=name,
            )
        values[name] = value.strip()

    try:
        terminal_id = uuid.UUID(values[TERMINAL_ID_HEADER])
    except ValueError:
        raise _malformed(TERMINAL_ID_HEADER, "the terminal id is a UUID") from None
    if not _SERIAL.match(values[KEY_SERIAL_HEADER]):
        raise _malformed(KEY_SERIAL_HEADER, "the key serial is a whole number from 1")
    if not _TIMESTAMP.match(values[TIMESTAMP_HEADER]):
        raise _malformed(TIMESTAMP_HEADER, "the timestamp is whole seconds since 1970-01-01T00:00Z")
    if not _NONCE.match(values[NONCE_HEADER]):
        raise _malformed(NONCE_HEADER, "the nonce is 16 to 64 characters of A-Z a-z 0-9 _ -")
    signature = decode_signature(values[SIGNATURE_HEADER])
    location = _get(headers, LOCATION_HEADER)
    position = None
    if location is not None:
        try:
            if not _LOCATION.match(location):
                raise ValueError("a location is '<latitude>,<longitude>' in decimal degrees")
            position = parse_location(location)
        except ValueError as exc:
            raise _malformed(LOCATION_HEADER, str(exc)) from None
    return SignedRequestHeaders(
        terminal_id=terminal_id,
        key_serial=int(values[KEY_SERIAL_HEADER]),
        timestamp=int(values[TIMESTAMP_HEADER]),
        nonce=values[NONCE_HEADER],
        signature=signature,
        location=location,
        position=position,
    )


def encode_signature(signature: bytes) -> str:
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"an SM2 signature r||s is {SIGNATURE_BYTES} bytes")
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: str, *, header: str = SIGNATURE_HEADER) -> bytes:
    if not _BASE64_SIGNATURE.match(text):
        raise _malformed(
            header, "the signature is the base64 (88 characters) of the 64-byte SM2 r||s"
        )
    return base64.b64decode(text, validate=True)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def target_of(raw_path: str | bytes, query: str | bytes) -> bytes:
    """PATH_WITH_QUERY: the path, then ``?`` and the query only when there is one."""
    path = _bytes(raw_path)
    query_bytes = _bytes(query)
    return path + b"?" + query_bytes if query_bytes else path


def canonical_request(
    *,
    method: str,
    path_with_query: str | bytes,
    timestamp: int,
    nonce: str,
    body: bytes,
    location: str | None = None,
) -> bytes:
    lines = [
        method.upper().encode("ascii"),
        _bytes(path_with_query),
        str(timestamp).encode("ascii"),
        nonce.encode("ascii"),
        sm3(body).hex().encode("ascii"),
    ]
    if location is not None:
        lines.append(location.encode("ascii"))
    return b"\n".join(lines)


def canonical_response(
    *,
    method: str,
    path_with_query: str | bytes,
    timestamp: int,
    request_nonce: str,
    status: int,
    body: bytes,
) -> bytes:
    return b"\n".join(
        [
            method.upper().encode("ascii"),
            _bytes(path_with_query),
            str(timestamp).encode("ascii"),
            request_nonce.encode("ascii"),
            f"{status:03d}".encode("ascii"),
            sm3(body).hex().encode("ascii"),
        ]
    )


def check_timestamp(timestamp: int, *, now: datetime, window_seconds: int) -> None:
    """Refuse a signing time more than ``window_seconds`` away from ``now`` (401)."""
    skew = timestamp - now.timestamp()
    if skew < -window_seconds:
        raise Unauthenticated(
            "terminals.stale_timestamp",
            f"the request was signed more than {window_seconds} s ago; check the terminal's "
            "clock and sign it again",
            field=TIMESTAMP_HEADER,
        )
    if skew > window_seconds:
        raise Unauthenticated(
            "terminals.future_timestamp",
            f"the request is dated more than {window_seconds} s ahead of the server's clock; "
            "check the terminal's clock",
            field=TIMESTAMP_HEADER,
        )


def new_nonce() -> str:
    """32 characters of base64url from 24 CSPRNG bytes."""
    return secrets.token_urlsafe(24)


def sign_request(
    private_key: SM2PrivateKey,
    *,
    terminal_id: uuid.UUID | str,
    key_serial: int,
    method: str,
    path_with_query: str | bytes,
    body: bytes,
    timestamp: int,
    nonce: str | None = None,
    location: str | None = None,
) -> dict[str, str]:
    """The protocol headers of a request, signed with the terminal's key."""
    nonce = nonce or new_nonce()
    message = canonical_request(
        method=method,
        path_with_query=path_with_query,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        location=location,
    )
    headers = {
        TERMINAL_ID_HEADER: str(terminal_id),
        KEY_SERIAL_HEADER: str(key_serial),
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: encode_signature(private_key.sign(message, signer_id=SIGNER_ID)),
    }
    if location is not None:
        headers[LOCATION_HEADER] = location
    return headers


def verify_request_signature(
    public_key: SM2PublicKey,
    parsed: SignedRequestHeaders,
    *,
    method: str,
    path_with_query: str | bytes,
    body: bytes,
) -> bool:
    message = canonical_request(
        method=method,
        path_with_query=path_with_query,
        timestamp=parsed.timestamp,
        nonce=parsed.nonce,
        body=body,
        location=parsed.location,
    )
    return public_key.verify(parsed.signature, message, signer_id=SIGNER_ID)


def sign_response(
    private_key: SM2PrivateKey,
    *,
    key_serial: int,
    method: str,
    path_with_query: str | bytes,
    request_nonce: str,
    status: int,
    body: bytes,
    timestamp: int,
) -> dict[str, str]:
    """The headers that sign an answer with the institution's platform key."""
    message = canonical_response(
        method=method,
        path_with_query=path_with_query,
        timestamp=timestamp,
        request_nonce=request_nonce,
        status=status,
        body=body,
    )
    return {
        PLATFORM_KEY_SERIAL_HEADER: str(key_serial),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: encode_signature(private_key.sign(message, signer_id=SIGNER_ID)),
    }


class ResponseSignatureMissing(ValueError):
    """The answer carries no (complete) platform signature."""


class ResponseSignatureInvalid(ValueError):
    """The answer's platform signature is malformed or does not verify."""


def verify_response(
    public_key: SM2PublicKey,
    *,
    method: str,
    path_with_query: str | bytes,
    request_nonce: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
) -> int:
    """Check an answer's platform signature; returns the platform key serial that signed.

    Raises :class:`ResponseSignatureMissing` or :class:`ResponseSignatureInvalid`."""
    serial_text = _get(headers, PLATFORM_KEY_SERIAL_HEADER)
    timestamp_text = _get(headers, TIMESTAMP_HEADER)
    signature_text = _get(headers, SIGNATURE_HEADER)
    if serial_text is None or timestamp_text is None or signature_text is None:
        missing = [
            name
            for name, value in (
                (PLATFORM_KEY_SERIAL_HEADER, serial_text),
                (TIMESTAMP_HEADER, timestamp_text),
                (SIGNATURE_HEADER, signature_text),
            )
            if value is None
        ]
        raise ResponseSignatureMissing(f"the answer is not signed (missing {', '.join(missing)})")
    if not _SERIAL.match(serial_text) or not _TIMESTAMP.match(timestamp_text):
        raise ResponseSignatureInvalid("the answer's signature headers are malformed")
    try:
        signature = decode_signature(signature_text)
    except Unauthenticated:
        raise ResponseSignatureInvalid(
            "the answer's signature is not 88 base64 characters"
        ) from None
    message = canonical_response(
        method=method,
        path_with_query=path_with_query,
        timestamp=int(timestamp_text),
        request_nonce=request_nonce,
        status=status,
        body=body,
    )
    if not public_key.verify(signature, message, signer_id=SIGNER_ID):
        raise ResponseSignatureInvalid(
            "the answer's signature does not verify with the pinned platform key"
        )
    return int(serial_text)
