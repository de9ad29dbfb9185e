"""Pure rules of identities: passwords, lockout, usernames, one-time codes, access tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from huinong.errors import Unauthenticated
from huinong.security.identities import passwords, rules, tokens

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
KEY = bytes(range(32))


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1!", "at least 8"),
        ("allletters", "mix at least two"),
        ("1234567890", "mix at least two"),
        ("aaaa1111", "too few different"),
        ("x" * 100 + "1" * 29, "at most 128"),
        ("zhangsan-2026", "must not contain the username"),
    ],
)
def test_weak_passwords_are_named(password: str, problem: str) -> None:
    found = passwords.password_problems(password, username="zhangsan")
    assert any(problem in p for p in found), found


def test_a_good_password_has_no_problems() -> None:
    assert passwords.password_problems("Huinong-2026", username="teller01") == []


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    hashed = passwords.hash_password("Huinong-2026")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "Huinong-2026")
    assert not passwords.verify_password(hashed, "Huinong-2027")
    assert not passwords.verify_password(None, "Huinong-2026")
    assert not passwords.verify_password("not a hash", "Huinong-2026")


def test_lockout_after_the_limit_then_counting_starts_again() -> None:
    state = rules.LockoutState(0, None)
    for expected in range(1, 5):
        state = rules.after_failure(state, now=NOW, max_failures=5, lockout=timedelta(minutes=15))
        assert state == rules.LockoutState(expected, None)
    state = rules.after_failure(state, now=NOW, max_failures=5, lockout=timedelta(minutes=15))
    assert state == rules.LockoutState(0, NOW + timedelta(minutes=15))
    assert rules.is_locked(state.locked_until, NOW + timedelta(minutes=14))
    assert not rules.is_locked(state.locked_until, NOW + timedelta(minutes=15))
    assert rules.after_success() == rules.LockoutState(0, None)


@pytest.mark.parametrize("name", ["ab", "Teller", "1teller", "张三", "a b", "x" * 65])
def test_bad_usernames(name: str) -> None:
    assert rules.username_problem(name)


def test_one_time_codes_are_six_digits_and_vary() -> None:
    codes = {rules.new_one_time_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150


def test_access_token_round_trip_and_expiry() -> None:
    sid = uuid.uuid4()
    token = tokens.issue_access_token(KEY, session_id=sid, expires_at=NOW + timedelta(minutes=5))
    claims = tokens.read_access_token(KEY, token, now=NOW)
    assert claims.session_id == sid
    with pytest.raises(Unauthenticated) as expired:
        tokens.read_access_token(KEY, token, now=NOW + timedelta(minutes=5))
    assert expired.value.code == "auth.token_expired"


def test_access_token_under_another_key_or_altered_is_refused() -> None:
    token = tokens.issue_access_token(
        KEY, session_id=uuid.uuid4(), expires_at=NOW + timedelta(minutes=5)
    )
    prefix, payload, mac = token.split(".")
    forged_payload = tokens._b64(b'{"sid":"' + str(uuid.uuid4()).encode() + b'","exp":9999999999}')
    for candidate, key in [
        (token, bytes(32)),
        (f"{prefix}.{forged_payload}.{mac}", KEY),
        (f"v2.{payload}.{mac}", KEY),
        (f"{prefix}.{payload}", KEY),
        (f"{prefix}.{payload}.{mac}x", KEY),
        ("", KEY),
    ]:
        with pytest.raises(Unauthenticated) as refused:
            tokens.read_access_token(key, candidate, now=NOW)
        assert refused.value.code == "auth.token_invalid"


def test_refresh_secrets_are_random_and_digests_keyed() -> None:
    first, second = tokens.new_secret(), tokens.new_secret()
    assert first != second and len(first) >= 43
    assert tokens.secret_digest(KEY, first) != tokens.secret_digest(bytes(32), first)
    assert tokens.secret_digest(KEY, first) == tokens.secret_digest(KEY, first)
