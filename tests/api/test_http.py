"""The HTTP envelope: who is calling, problem+json for every error, request ids."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, PROBLEM, Bank, assert_problem


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"]


def test_missing_credentials_are_401(client: TestClient) -> None:
    for path in ("/institution", "/offices", "/customers", "/ledger/accounts", "/ledger/transfers"):
        response = client.get(API + path)
        assert_problem(response, 401, "auth.required", "Authorization")
    response = client.get(API + "/customers", headers={"Authorization": ""})
    assert_problem(response, 401, "auth.required", "Authorization")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer v1.e30.AAAA",
        "Bearer ' OR 1=1 --",
        "Bearer v2.eyJzaWQiOiIwIn0.AAAA",
    ],
)
def test_malformed_or_forged_tokens_are_401(client: TestClient, header: str) -> None:
    response = client.get(API + "/customers", headers={"Authorization": header})
    assert_problem(response, 401, field="Authorization")
    assert response.json()["code"] in {"auth.token_invalid", "auth.required"}


def test_a_token_with_a_tampered_payload_is_401(bank: Bank) -> None:
    prefix, payload, mac = bank.token.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    response = bank.client.get(
        API + "/customers", headers={"Authorization": f"Bearer {prefix}.{tampered}.{mac}"}
    )
    assert_problem(response, 401, "auth.token_invalid", "Authorization")


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get(API + "/no/such/thing", headers={"X-Request-Id": "trace-me-42"})
    body = assert_problem(response, 404, "request.not_found", needs_field=False)
    assert response.headers["x-request-id"] == "trace-me-42"
    assert body["request_id"] == "trace-me-42"
    assert body["type"] == "https://huinong.dev/problems/request.not_found"


def test_wrong_method_is_problem_json(client: TestClient) -> None:
    response = client.delete(API + "/customers")
    assert_problem(response, 405, "request.method_not_allowed", needs_field=False)


def test_every_problem_carries_the_request_id(client: TestClient, bank: Bank) -> None:
    response = client.post(
        API + "/cash-deposits",
        json={"account_number": "1", "amount": 1.5},
        headers={**bank.headers, "Idempotency-Key": "k", "X-Request-Id": "abc-123"},
    )
    body = assert_problem(response, 422)
    assert body["request_id"] == response.headers["x-request-id"] == "abc-123"
    generated = client.get(API + "/customers")
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    assert len(generated.headers["x-request-id"]) == 32


@pytest.fixture
def failing_client(database_url: str) -> Iterator[TestClient]:
    """The real app plus one route that fails as an unexpected bug would."""
    from huinong.api.app import create_app
    from huinong.config import Settings

    app = create_app(Settings(pending_sweep_interval_seconds=0), database_url=database_url)

    @app.get("/api/v1/_test/unexpected")
    def unexpected() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.engine.dispose()


def test_unexpected_error_is_a_bare_500_problem(failing_client: TestClient) -> None:
    response = failing_client.get(API + "/_test/unexpected")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "server.error" and body["status"] == 500
    assert "hunter2" not in response.text and "RuntimeError" not in response.text


def test_unexpected_error_carries_the_request_id(failing_client: TestClient) -> None:
    """Regression: the 500 was answered outside the request-id middleware, with
    ``"request_id": "-"`` and no X-Request-Id header."""
    response = failing_client.get(API + "/_test/unexpected", headers={"X-Request-Id": "r-500"})
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == "r-500"
    assert response.json()["request_id"] == "r-500"


def test_request_id_is_bounded_and_printable(client: TestClient) -> None:
    long = client.get("/health", headers={"X-Request-Id": "r" * 100})
    assert long.headers["x-request-id"] == "r" * 64
    odd = client.get(API + "/customers", headers={"X-Request-Id": "bad\tid"})
    assert odd.headers["x-request-id"] != "bad\tid"
    assert odd.json()["request_id"] == odd.headers["x-request-id"]


def test_the_served_app_is_built_then_frozen_out_of_the_collector(tmp_path) -> None:
    """``huinong.api.asgi`` (what ``huinong serve`` runs) builds the app, then freezes what is
    alive so that full collections stop walking it; the app still answers. In a subprocess:
    freezing the test process would keep every test's garbage cycles for good."""
    import subprocess
    import sys

    script = (
        "import gc\n"
        "before = gc.get_freeze_count()\n"
        "from fastapi.testclient import TestClient\n"
        "from huinong.api.asgi import app\n"
        "frozen = gc.get_freeze_count()\n"
        "assert before == 0 and frozen > 10_000, (before, frozen)\n"
        "assert TestClient(app).get('/health').json()['status'] == 'ok'\n"
    )
    env = {**os.environ, "HUINONG_DATABASE_URL": f"sqlite:///{tmp_path / 'frozen.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
