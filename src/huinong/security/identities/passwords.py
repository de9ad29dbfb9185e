"""Passwords: argon2id hashes (RFC 9106) and the rules a new password must meet.

The cost comes from settings (64 MiB and three passes by default, RFC 9106's second
recommended option); a hash made under an older cost is re-made at the next successful
sign-in. Verification of an unknown user still spends one hash's time, so the response time
does not tell which usernames exist.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from huinong.config import get_settings

MIN_LENGTH = 8
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_cost=settings.password_hash_memory_kib,
        parallelism=1,
    )


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher().hash("decoy password, never matched")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; with no hash, spends the same time and says False."""
    try:
        return _hasher().verify(password_hash or _decoy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def password_problems(password: str, *, username: str = "") -> list[str]:
    """What is wrong with a proposed password (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    kinds = [
        any(c.isdigit() for c in password),
        any(c.isalpha() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(kinds) < 2:
        problems.append("mix at least two of letters, digits and symbols")
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    if len(set(password)) < 4:
        problems.append("too few different characters")
    return problems
