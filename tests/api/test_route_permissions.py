"""Every route of the OpenAPI document, walked: anonymous callers get 401, callers without a
granted role get 403, callers with one get past the guard. The permission table and the
application's routes agree row for row, so a new route cannot ship unguarded or ungranted."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huinong.api.app import create_app
from huinong.db import transaction
from huinong.security import permissions
from huinong.security.identities import customers, sessions
from huinong.security.principals import Role
from tests.api.conftest import API, Bank

PARAMETER = re.compile(r"\{([a-z_]+)\}")


def _routes() -> list[tuple[str, str]]:
    document = create_app(database_url="sqlite://").openapi()
    found = []
    for path, operations in document["paths"].items():
        for method in operations:
            found.append((method.upper(), path))
    return sorted(found)


ROUTES = _routes()
GUARDED = [route for route in ROUTES if not permissions.is_public(*route)]


def test_the_table_and_the_routes_agree() -> None:
    served = set(ROUTES)
    ungranted = sorted(r for r in GUARDED if r not in permissions.PERMISSIONS)
    assert ungranted == [], "routes with no row in huinong.security.permissions"
    stale = sorted(r for r in permissions.PERMISSIONS if r not in served)
    assert stale == [], "rows for routes the application does not serve"
    assert all(permissions.PERMISSIONS[r] for r in GUARDED), "a row that grants nobody"
    public_api = {r for r in permissions.PUBLIC if r[1].startswith(API)}
    assert public_api <= served


def fill(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(uuid.uuid4()) if name.endswith("_id") else "6228480000000000006"

    return PARAMETER.sub(value, path)


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    sent = {"Idempotency-Key": str(uuid.uuid4()), **headers}
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return client.request(method, fill(path), headers=sent, json=body)


def customer_headers(bank: Bank) -> dict[str, str]:
    customer = bank.customer(name="钱大妈")
    phone = f"135{uuid.uuid4().int % 10**8:08d}"
    password = "Nongshang-2026!"
    with transaction(bank.factory) as session:
        customers.register_customer_credential(
            session,
            institution_id=bank.id,
            customer_id=uuid.UUID(customer["id"]),
            phone=phone,
            password=password,
        )
    with transaction(bank.factory) as session:
        issued = customers.issue_one_time_code(session, institution_code=bank.code, phone=phone)
    assert issued is not None
    with transaction(bank.factory) as session:
        pair = customers.sign_in_customer(
            session, institution_code=bank.code, phone=phone, password=password, code=issued[1]
        )
    assert isinstance(pair, sessions.TokenPair)
    return {"Authorization": f"Bearer {pair.access_token}"}


def headers_for(bank: Bank, role: Role) -> dict[str, str]:
    if role == Role.customer:
        return customer_headers(bank)
    return bank.as_role(role).headers


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
def test_route_is_guarded_by_the_table(
    client: TestClient, bank: Bank, method: str, path: str
) -> None:
    anonymous = call(client, method, path, {})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["code"] == "auth.required"

    allowed = permissions.allowed_roles(method, path)
    refused_roles = sorted(set(Role) - allowed)
    if refused_roles:
        wrong = call(client, method, path, headers_for(bank, refused_roles[0]))
        assert wrong.status_code == 403, wrong.text
        assert wrong.json()["code"] == "auth.forbidden"

    right = call(client, method, path, headers_for(bank, sorted(allowed)[0]))
    assert right.status_code < 500, right.text
    if right.status_code in (401, 403):
        assert not right.json()["code"].startswith("auth."), right.text


@pytest.mark.parametrize(("method", "path"), sorted(permissions.PUBLIC))
def test_public_routes_need_no_credentials(client: TestClient, method: str, path: str) -> None:
    response = call(client, method, path, {})
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500, response.text
