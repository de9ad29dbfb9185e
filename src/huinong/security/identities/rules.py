"""Pure rules of sign-in: lockout after repeated failures, usernames, one-time codes."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MOBILE_PHONE = re.compile(r"1[3-9][0-9]{9}")
ONE_TIME_CODE_DIGITS = 6
ONE_TIME_CODE_MINUTES = 5
ONE_TIME_CODE_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class LockoutState:
    failures: int
    locked_until: datetime | None


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def after_failure(
    state: LockoutState, *, now: datetime, max_failures: int, lockout: timedelta
) -> LockoutState:
    """One more failed attempt: at ``max_failures`` in a row the account locks for
    ``lockout`` and the count starts again, so the next lock needs as many new failures."""
    failures = state.failures + 1
    if failures >= max_failures:
        return LockoutState(0, now + lockout)
    return LockoutState(failures, state.locked_until)


def after_success() -> LockoutState:
    return LockoutState(0, None)


def username_problem(username: str) -> str | None:
    if USERNAME.match(username):
        return None
    return "3-64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter"


def new_one_time_code() -> str:
    return f"{secrets.randbelow(10**ONE_TIME_CODE_DIGITS):0{ONE_TIME_CODE_DIGITS}d}"
