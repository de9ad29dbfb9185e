"""Access tokens and refresh tokens.

An access token is short-lived (``HUINONG_ACCESS_TOKEN_MINUTES``, 15 by default) and
self-contained: ``v1.<payload>.<mac>``, the payload base64url JSON ``{"sid", "exp"}`` and the
MAC HMAC-SM3 under a key derived from the master key for this purpose alone. It names the
sign-in session it came from; the server checks that session on use, so signing out or
disabling a user stops every token of the session at once. Roles are read from the session's
user, not carried in the token, so a role change also takes effect at once.

A refresh token is 32 random bytes (base64url), opaque; the server keeps only its keyed
digest. Each refresh hands out a new refresh token and retires the old one.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from huinong.errors import Unauthenticated
from huinong.security.crypto import hmac_sm3

PREFIX = "v1"


@dataclass(frozen=True)
class AccessClaims:
    session_id: uuid.UUID
    expires_at: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_access_token(key: bytes, *, session_id: uuid.UUID, expires_at: datetime) -> str:
    payload = _b64(orjson.dumps({"sid": str(session_id), "exp": int(expires_at.timestamp())}))
    signed = f"{PREFIX}.{payload}"
    return f"{signed}.{_b64(hmac_sm3(key, signed.encode()))}"


def _invalid() -> Unauthenticated:
    return Unauthenticated(
        "auth.token_invalid",
        "the access token is not valid; sign in again",
        field="Authorization",
    )


def read_access_token(key: bytes, token: str, *, now: datetime) -> AccessClaims:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise _invalid()
    signed = f"{parts[0]}.{parts[1]}"
    try:
        mac = _unb64(parts[2])
        claims = orjson.loads(_unb64(parts[1]))
        session_id = uuid.UUID(claims["sid"])
        expires_at = int(claims["exp"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise _invalid() from None
    if not hmac.compare_digest(mac, hmac_sm3(key, signed.encode())):
        raise _invalid()
    if expires_at <= now.timestamp():
        raise Unauthenticated(
            "auth.token_expired",
            "the access token has expired; refresh it or sign in again",
            field="Authorization",
        )
    return AccessClaims(session_id, expires_at)


def new_secret() -> str:
    """A fresh refresh token (or any bearer secret): 256 random bits."""
    return _b64(secrets.token_bytes(32))


def secret_digest(key: bytes, secret: str) -> str:
    return hmac_sm3(key, secret.encode()).hex()
