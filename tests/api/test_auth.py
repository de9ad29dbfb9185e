"""Signing in and out over HTTP, on both databases: staff and customers, lockout, throttling,
refresh rotation, revocation, role changes, forced password change, staff administration."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from huinong import clock
from huinong.db import transaction
from huinong.security.identities import staff_users
from huinong.security.identities.senders import OutboxSender
from huinong.security.principals import Role
from tests.api.conftest import API, Bank, assert_problem
from tests.conftest import STAFF_PASSWORD

GOOD_PASSWORD = "Nongshang-2026!"


def make_user(bank: Bank, *roles: Role, must_change: bool = False) -> str:
    username = f"user{uuid.uuid4().hex[:8]}"
    with transaction(bank.factory) as session:
        staff_users.create_staff_user(
            session,
            institution_id=bank.id,
            username=username,
            display_name="王会计",
            roles=[r.value for r in roles] or ["teller"],
            password=STAFF_PASSWORD,
            must_change_password=must_change,
        )
    return username


def sign_in(client: TestClient, institution: str, username: str, password: str):
    return client.post(
        f"{API}/auth/sign-in",
        json={"institution": institution, "username": username, "password": password},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sign_in_gives_tokens_that_identify_the_user(client: TestClient, bank: Bank) -> None:
    username = make_user(bank, Role.teller, Role.account_manager)
    response = sign_in(client, bank.code, username, STAFF_PASSWORD)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    assert 0 < tokens["expires_in"] <= 15 * 60
    assert tokens["must_change_password"] is False
    me = client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "staff"
    assert me.json()["institution"] == bank.code
    assert me.json()["roles"] == ["account_manager", "teller"]
    assert me.json()["display"] == username


@pytest.mark.parametrize("wrong", ["institution", "username", "password"])
def test_wrong_details_are_one_answer(client: TestClient, bank: Bank, wrong: str) -> None:
    """An unknown institution, an unknown user and a wrong password look alike."""
    username = make_user(bank)
    details = {"institution": bank.code, "username": username, "password": STAFF_PASSWORD}
    details[wrong] = {"institution": "NOSUCHBANK", "username": "nobody", "password": "Nope-1234"}[
        wrong
    ]
    response = client.post(f"{API}/auth/sign-in", json=details)
    assert_problem(response, 401, "auth.invalid_credentials", "password")


def test_lockout_after_five_failures_until_an_admin_unlocks(client: TestClient, bank: Bank) -> None:
    username = make_user(bank)
    for _ in range(5):
        failed = sign_in(client, bank.code, username, "Wrong-pass-1")
        assert_problem(failed, 401, "auth.invalid_credentials")
    locked = sign_in(client, bank.code, username, STAFF_PASSWORD)
    assert_problem(locked, 401, "auth.account_locked", "username")
    user_id = next(
        u["id"]
        for u in bank.ok(bank.get("/staff-users", limit=500))["items"]
        if u["username"] == username
    )
    assert bank.ok(bank.get(f"/staff-users/{user_id}"))["locked"] is True
    bank.ok(bank.post(f"/staff-users/{user_id}/unlock"))
    assert sign_in(client, bank.code, username, STAFF_PASSWORD).status_code == 200


def test_the_lock_lifts_by_itself(client: TestClient, bank: Bank) -> None:
    username = make_user(bank)
    for _ in range(5):
        sign_in(client, bank.code, username, "Wrong-pass-1")
    later = clock.now() + timedelta(minutes=16)
    with clock.frozen(later):
        assert sign_in(client, bank.code, username, STAFF_PASSWORD).status_code == 200


def test_one_address_guessing_across_accounts_is_throttled(client: TestClient, bank: Bank) -> None:
    for attempt in range(20):
        response = sign_in(client, bank.code, f"guess{attempt}", "Wrong-pass-1")
        assert_problem(response, 401, "auth.invalid_credentials")
    throttled = sign_in(client, bank.code, make_user(bank), STAFF_PASSWORD)
    assert_problem(throttled, 429, "auth.too_many_attempts", needs_field=False)


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    client: TestClient, bank: Bank
) -> None:
    first = sign_in(client, bank.code, make_user(bank), STAFF_PASSWORD).json()
    second = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    renewed = second.json()
    assert renewed["refresh_token"] != first["refresh_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(renewed["access_token"])).status_code == 200
    # The old refresh token again: someone holds a copy. The session ends for everyone.
    reused = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reused, 401, "auth.refresh_invalid", "refresh_token")
    after = client.get(f"{API}/auth/me", headers=bearer(renewed["access_token"]))
    assert_problem(after, 401, "auth.session_ended", "Authorization")
    again = client.post(f"{API}/auth/refresh", json={"refresh_token": renewed["refresh_token"]})
    assert_problem(again, 401, "auth.session_ended", "refresh_token")


def test_sign_out_revokes_the_tokens(client: TestClient, bank: Bank) -> None:
    tokens = sign_in(client, bank.code, make_user(bank), STAFF_PASSWORD).json()
    headers = bearer(tokens["access_token"])
    assert client.get(f"{API}/offices", headers=headers).status_code == 200
    assert client.post(f"{API}/auth/sign-out", headers=headers).status_code == 204
    assert_problem(client.get(f"{API}/offices", headers=headers), 401, "auth.session_ended")
    refused = client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(refused, 401, "auth.session_ended")


def test_an_expired_access_token_is_401(client: TestClient, bank: Bank) -> None:
    tokens = sign_in(client, bank.code, make_user(bank), STAFF_PASSWORD).json()
    with clock.frozen(clock.now() + timedelta(minutes=16)):
        response = client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
    assert_problem(response, 401, "auth.token_expired", "Authorization")


def test_disabling_a_user_stops_its_tokens_at_once(client: TestClient, bank: Bank) -> None:
    teller = bank.as_role(Role.teller)
    assert teller.get("/offices").status_code == 200
    user_id = next(
        u["id"]
        for u in bank.ok(bank.get("/staff-users", limit=500))["items"]
        if u["username"] == teller.username
    )
    assert bank.ok(bank.post(f"/staff-users/{user_id}/disable"))["status"] == "disabled"
    assert_problem(teller.get("/offices"), 401, "auth.session_ended")
    assert_problem(
        sign_in(client, bank.code, teller.username, STAFF_PASSWORD), 401, "auth.account_disabled"
    )


def test_a_role_change_takes_effect_at_once(bank: Bank) -> None:
    auditor = bank.as_role(Role.auditor)
    refused = auditor.post("/offices", {"code": "HQ", "name": "总行", "kind": "head"})
    assert_problem(refused, 403, "auth.forbidden", needs_field=False)
    user_id = next(
        u["id"]
        for u in bank.ok(bank.get("/staff-users", limit=500))["items"]
        if u["username"] == auditor.username
    )
    changed = bank.client.put(
        f"{API}/staff-users/{user_id}/roles", headers=bank.headers, json={"roles": ["admin"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["admin"]
    created = auditor.post("/offices", {"code": "HQ", "name": "总行", "kind": "head"})
    assert created.status_code == 201, created.text


def test_a_password_set_by_an_admin_must_be_changed_first(client: TestClient, bank: Bank) -> None:
    username = make_user(bank, Role.teller, must_change=True)
    tokens = sign_in(client, bank.code, username, STAFF_PASSWORD).json()
    assert tokens["must_change_password"] is True
    headers = bearer(tokens["access_token"])
    assert_problem(
        client.get(f"{API}/offices", headers=headers),
        403,
        "auth.password_change_required",
        needs_field=False,
    )
    assert client.get(f"{API}/auth/me", headers=headers).json()["must_change_password"]
    weak = client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": STAFF_PASSWORD, "new_password": "12345678"},
    )
    assert_problem(weak, 422, "auth.weak_password", "new_password")
    wrong = client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": "Not-the-one-1", "new_password": GOOD_PASSWORD},
    )
    assert_problem(wrong, 422, "auth.wrong_password", "current_password")
    changed = client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": STAFF_PASSWORD, "new_password": GOOD_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    assert client.get(f"{API}/offices", headers=headers).status_code == 200
    assert sign_in(client, bank.code, username, GOOD_PASSWORD).status_code == 200
    assert_problem(sign_in(client, bank.code, username, STAFF_PASSWORD), 401)


# ----------------------------------------------------------------------- staff administration


def test_admin_creates_staff_users_who_must_change_their_password(
    client: TestClient, bank: Bank
) -> None:
    admin = bank.as_role(Role.admin)
    body = {
        "username": "li.teller",
        "display_name": "李柜员",
        "roles": ["teller"],
        "password": GOOD_PASSWORD,
    }
    created = admin.ok(admin.post("/staff-users", body), 201)
    assert created["roles"] == ["teller"]
    assert created["must_change_password"] is True
    assert "password" not in created and "password_hash" not in created
    assert_problem(admin.post("/staff-users", body), 409, "staff.username_taken", "username")
    tokens = sign_in(client, bank.code, "li.teller", GOOD_PASSWORD).json()
    assert tokens["must_change_password"] is True


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"roles": ["superuser"]}, "staff.unknown_role", "roles"),
        ({"roles": ["customer"]}, "staff.unknown_role", "roles"),
        ({"roles": []}, None, "roles"),
        ({"username": "Bad Name"}, "staff.invalid_username", "username"),
        ({"password": "password"}, "auth.weak_password", "password"),
        ({"office_id": str(uuid.uuid4())}, "institutions.office_not_found", "office"),
        ({"is_superuser": True}, None, "is_superuser"),
    ],
)
def test_invalid_staff_users_are_422_and_write_nothing(
    bank: Bank, change: dict, code: str | None, field: str
) -> None:
    admin = bank.as_role(Role.admin)
    before = len(admin.ok(admin.get("/staff-users", limit=500))["items"])
    body = {
        "username": f"ok{uuid.uuid4().hex[:6]}",
        "display_name": "张三",
        "roles": ["teller"],
        "password": GOOD_PASSWORD,
        **change,
    }
    response = admin.post("/staff-users", body)
    assert_problem(response, 404 if code and "not_found" in code else 422, code, field)
    assert len(admin.ok(admin.get("/staff-users", limit=500))["items"]) == before


def test_only_admins_manage_staff_and_auditors_read_the_permission_table(bank: Bank) -> None:
    teller = bank.as_role(Role.teller)
    refused = teller.post(
        "/staff-users",
        {"username": "x.y", "display_name": "x", "roles": ["admin"], "password": GOOD_PASSWORD},
    )
    assert_problem(refused, 403, "auth.forbidden", needs_field=False)
    assert_problem(teller.get("/security/permissions"), 403, "auth.forbidden", needs_field=False)
    table = bank.as_role(Role.auditor).ok(bank.as_role(Role.auditor).get("/security/permissions"))
    rows = {(r["method"], r["path"]): r["roles"] for r in table["routes"]}
    assert rows[("POST", "/api/v1/cash-deposits")] == ["teller"]
    assert ("POST", "/api/v1/auth/sign-in") in {(r["method"], r["path"]) for r in table["public"]}


# ----------------------------------------------------------------------- customers


def customer_with_credential(bank: Bank, phone: str) -> str:
    customer = bank.customer(name="赵大爷")
    response = bank.as_role(Role.teller).post(
        "/customer-credentials",
        {"customer_id": customer["id"], "phone": phone, "password": GOOD_PASSWORD},
    )
    assert response.status_code == 201, response.text
    return customer["id"]  # type: ignore[no-any-return]


def test_customer_signs_in_with_phone_password_and_one_time_code(
    client: TestClient, bank: Bank, outbox: OutboxSender
) -> None:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    customer_id = customer_with_credential(bank, phone)
    sent = client.post(
        f"{API}/auth/customer/one-time-code", json={"institution": bank.code, "phone": phone}
    )
    assert sent.status_code == 202
    code = outbox.last_code(phone)
    body = {"institution": bank.code, "phone": phone, "password": GOOD_PASSWORD, "code": code}
    signed_in = client.post(f"{API}/auth/customer/sign-in", json=body)
    assert signed_in.status_code == 200, signed_in.text
    me = client.get(f"{API}/auth/me", headers=bearer(signed_in.json()["access_token"]))
    assert me.json()["kind"] == "customer"
    assert me.json()["subject_id"] == customer_id
    assert me.json()["roles"] == ["customer"]
    # A customer is not staff.
    staff_only = client.get(f"{API}/customers", headers=bearer(signed_in.json()["access_token"]))
    assert_problem(staff_only, 403, "auth.forbidden", needs_field=False)
    # The code was used up.
    again = client.post(f"{API}/auth/customer/sign-in", json=body)
    assert_problem(again, 401, "auth.invalid_credentials", "code")


def test_customer_with_a_wrong_code_or_password_is_refused(
    client: TestClient, bank: Bank, outbox: OutboxSender
) -> None:
    phone = f"138{uuid.uuid4().int % 10**8:08d}"
    customer_with_credential(bank, phone)
    client.post(
        f"{API}/auth/customer/one-time-code", json={"institution": bank.code, "phone": phone}
    )
    code = outbox.last_code(phone)
    wrong_code = "000000" if code != "000000" else "111111"
    body = {"institution": bank.code, "phone": phone, "password": GOOD_PASSWORD}
    refused = client.post(f"{API}/auth/customer/sign-in", json={**body, "code": wrong_code})
    assert_problem(refused, 401, "auth.invalid_credentials", "code")
    refused = client.post(
        f"{API}/auth/customer/sign-in", json={**body, "password": "Wrong-pass-1", "code": code}
    )
    assert_problem(refused, 401, "auth.invalid_credentials", "password")


def test_a_code_request_for_an_unknown_phone_looks_the_same(
    client: TestClient, bank: Bank, outbox: OutboxSender
) -> None:
    response = client.post(
        f"{API}/auth/customer/one-time-code",
        json={"institution": bank.code, "phone": "13700000000"},
    )
    assert response.status_code == 202
    assert outbox.sent == []
    bad = client.post(
        f"{API}/auth/customer/one-time-code", json={"institution": bank.code, "phone": "12345"}
    )
    assert_problem(bad, 422, field="phone")


def test_a_credential_needs_a_customer_of_the_same_institution(
    bank: Bank, other_bank: Bank
) -> None:
    theirs = other_bank.customer()
    response = bank.as_role(Role.teller).post(
        "/customer-credentials",
        {"customer_id": theirs["id"], "phone": "13600000001", "password": GOOD_PASSWORD},
    )
    assert_problem(response, 404, "parties.customer_not_found", "customer_id")
