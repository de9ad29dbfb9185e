"""What every credential shares, staff user's or customer's: the password it may be given,
the lockout after repeated failed sign-ins, and the words a refused sign-in is answered with.

A refusal never says which part was wrong beyond the field to look at, so it does not tell
which usernames or phones exist; the lockout itself is the pure rule of ``rules`` with the
limits from settings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from huinong import clock
from huinong.config import get_settings
from huinong.errors import InvalidInput, Unauthenticated
from huinong.security.identities import passwords, rules
from huinong.security.identities.models import CustomerCredential, StaffUser


def check_password(password: str, *, username: str, field: str = "password") -> None:
    problems = passwords.password_problems(password, username=username)
    if problems:
        raise InvalidInput("auth.weak_password", "password: " + "; ".join(problems), field=field)


def record_failure(target: StaffUser | CustomerCredential, now: datetime) -> None:
    settings = get_settings()
    state = rules.after_failure(
        rules.LockoutState(target.failed_sign_ins, target.locked_until),
        now=now,
        max_failures=settings.sign_in_max_failures,
        lockout=timedelta(minutes=settings.sign_in_lockout_minutes),
    )
    target.failed_sign_ins = state.failures
    target.locked_until = state.locked_until


def invalid_credentials(field: str) -> Unauthenticated:
    return Unauthenticated(
        "auth.invalid_credentials",
        "the sign-in details are not right; check them and try again",
        field=field,
    )


def account_locked(until: datetime) -> Unauthenticated:
    local = until.astimezone(clock.DISPLAY_TIMEZONE)
    return Unauthenticated(
        "auth.account_locked",
        f"too many failed sign-ins: locked until {local:%H:%M} (Beijing time); "
        "ask an administrator to unlock it sooner",
        field="username",
    )
