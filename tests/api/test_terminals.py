"""Terminals over HTTP, through the ASGI app: the registry routes with their roles and tenant
isolation, signed requests made with the package's TerminalClient (over FastAPI's TestClient
and over a real HTTP server), answers signed with the platform key, every refusal's code, the
geofence alert, and a man in the middle caught by the answer's signature."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huinong import clock
from huinong.api.terminal_auth import TerminalResponseSigning
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey
from huinong.security.principals import Role
from huinong.security.terminals import signing
from huinong.security.terminals.client import (
    BadResponseSignature,
    TerminalClient,
    UnsignedResponse,
)
from huinong.security.terminals.models import TerminalNonce
from tests.api.conftest import API, Bank, assert_problem, new_key

CENTRE = {"latitude": "30.274084", "longitude": "120.155070", "radius_metres": 500}
INSIDE = "30.276000,120.156000"
OUTSIDE = "30.290000,120.155070"


def make_app(database_url: str, **settings: Any) -> FastAPI:
    from huinong.api.app import create_app
    from huinong.config import Settings

    configured = Settings(pending_sweep_interval_seconds=0, **settings)
    app = create_app(configured, database_url=database_url)
    app.state.settings = configured  # what terminal_auth reads the nonce store's URL from
    # The app factory installs the response signer; adding it here as well keeps these tests
    # meaningful before it does (two of them are harmless: the outer one stays idle).
    if not any(m.cls is TerminalResponseSigning for m in app.user_middleware):
        app.add_middleware(TerminalResponseSigning)
    return app


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = make_app(database_url)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.engine.dispose()


@dataclass
class Enrolled:
    id: str
    key: SM2PrivateKey
    body: dict[str, Any]


def enrol(
    bank: Bank,
    *,
    binding: str = "service_point",
    activate: bool = True,
    geofence: dict[str, Any] | None = None,
) -> Enrolled:
    key = SM2PrivateKey.generate()
    body: dict[str, Any] = {
        "code": f"SP-{uuid.uuid4().hex[:8]}",
        "label": "张家村助农服务点 POS 1",
        "kind": "pos",
        "binding_kind": binding,
        "binding_reference": "SP-0042",
        "public_key": key.public_key.to_hex(),
    }
    if geofence is not None:
        body["geofence"] = geofence
    created = bank.ok(bank.post("/terminals", body), 201)
    if activate:
        created = bank.ok(bank.post(f"/terminals/{created['id']}/activate"))
    return Enrolled(created["id"], key, created)


def platform_key(bank: Bank) -> SM2PublicKey:
    return SM2PublicKey.from_hex(bank.ok(bank.get("/platform-key"))["public_key"])


def terminal_client(
    bank: Bank,
    terminal: Enrolled,
    *,
    http: httpx.Client | None = None,
    serial: int = 1,
    key: SM2PrivateKey | None = None,
    location: str | None = None,
) -> TerminalClient:
    return TerminalClient(
        http or bank.client,
        terminal_id=terminal.id,
        key_serial=serial,
        private_key=key or terminal.key,
        platform_public_key=platform_key(bank),
        location=location,
    )


def refused(call: Any) -> UnsignedResponse:
    with pytest.raises(UnsignedResponse) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------- registry


def test_enrol_list_get_and_the_life_cycle(bank):
    enrolled = enrol(bank, activate=False)
    body = enrolled.body
    assert body["status"] == "pending"
    assert body["kind"] == "pos" and body["binding_kind"] == "service_point"
    assert body["label"] == "张家村助农服务点 POS 1"
    assert body["active_key_serial"] == 1
    [key] = body["keys"]
    assert key["serial"] == 1 and key["status"] == "active" and key["retired_at"] is None
    assert key["public_key"] == enrolled.key.public_key.to_hex()
    assert key["fingerprint"] == enrolled.key.public_key.fingerprint()
    assert body["geofence"] is None

    assert bank.ok(bank.get(f"/terminals/{enrolled.id}")) == body
    listed = bank.ok(bank.get("/terminals"))
    assert [t["id"] for t in listed["items"]] == [enrolled.id]
    assert bank.ok(bank.get("/terminals", status="active"))["items"] == []

    for action, status in [
        ("activate", "active"),
        ("suspend", "suspended"),
        ("activate", "active"),
    ]:
        assert bank.ok(bank.post(f"/terminals/{enrolled.id}/{action}"))["status"] == status
    assert_problem(
        bank.post(f"/terminals/{enrolled.id}/activate"), 409, "terminals.invalid_transition"
    )
    assert bank.ok(bank.post(f"/terminals/{enrolled.id}/revoke"))["status"] == "revoked"
    assert_problem(
        bank.post(f"/terminals/{enrolled.id}/activate"), 409, "terminals.invalid_transition"
    )


def test_enrolment_takes_a_pem_key_and_a_geofence(bank):
    key = SM2PrivateKey.generate()
    body = {
        "code": "POS.7",
        "kind": "mobile",
        "binding_kind": "merchant",
        "binding_reference": "M-0007",
        "public_key": key.public_key.to_pem(),
        "geofence": {"latitude": "30.2740845", "longitude": "-120.15507", "radius_metres": 800},
    }
    created = bank.ok(bank.post("/terminals", body), 201)
    assert created["keys"][0]["public_key"] == key.public_key.to_hex()
    assert created["geofence"] == {
        "latitude": "30.274085",
        "longitude": "-120.155070",
        "radius_metres": 800,
    }
    assert_problem(bank.post("/terminals", body), 409, "terminals.code_taken", "code")


def test_bad_enrolments_name_the_field_and_write_nothing(bank):
    good = {
        "code": "SP-1",
        "kind": "pos",
        "binding_kind": "service_point",
        "binding_reference": "SP-0042",
        "public_key": SM2PrivateKey.generate().public_key.to_hex(),
    }
    cases = [
        ({"public_key": "04" + "11" * 64}, "terminals.invalid_public_key", "public_key"),
        ({"code": "bad code"}, "terminals.invalid_code", "code"),
        ({"kind": "atm"}, "request.invalid", "kind"),
        ({"binding_kind": "office"}, "request.invalid", "binding_kind"),
        (
            {"geofence": {**CENTRE, "latitude": "95"}},
            "terminals.invalid_latitude",
            "geofence.latitude",
        ),
        ({"geofence": {**CENTRE, "latitude": 30.1}}, "request.invalid", "geofence.latitude"),
        ({"geofence": {**CENTRE, "radius_metres": 5}}, "request.invalid", "geofence.radius_metres"),
        ({"surprise": 1}, "request.invalid", "surprise"),
    ]
    for change, code, field in cases:
        assert_problem(bank.post("/terminals", {**good, **change}), 422, code, field)
    assert bank.ok(bank.get("/terminals"))["items"] == []


def test_writes_are_for_admins_and_reads_for_back_office_readers(bank):
    enrolled = enrol(bank, activate=False)
    teller = bank.as_role(Role.teller)
    auditor = bank.as_role(Role.auditor)
    risk = bank.as_role(Role.risk_officer)
    key = SM2PrivateKey.generate().public_key.to_hex()
    for response in (
        teller.post("/terminals", {**enrolled.body, "public_key": key}),
        auditor.post(f"/terminals/{enrolled.id}/activate"),
        risk.post(f"/terminals/{enrolled.id}/suspend"),
        teller.get("/terminals"),
        teller.get(f"/terminals/{enrolled.id}"),
        teller.get("/terminal-alerts"),
        risk.post(f"/terminals/{enrolled.id}/keys", {"public_key": key}),
    ):
        assert_problem(response, 403, "auth.forbidden", needs_field=False)
    for reader in (auditor, risk, bank.as_role(Role.admin)):
        assert reader.ok(reader.get(f"/terminals/{enrolled.id}"))["id"] == enrolled.id
        assert reader.ok(reader.get("/terminal-alerts"))["items"] == []
    # Every staff role may fetch the public key a terminal pins.
    assert teller.ok(teller.get("/platform-key"))["public_key"] == platform_key(bank).to_hex()


def test_another_institution_sees_none_of_it(bank, other_bank):
    enrolled = enrol(bank)
    for response in (
        other_bank.get(f"/terminals/{enrolled.id}"),
        other_bank.post(f"/terminals/{enrolled.id}/suspend"),
        other_bank.post(
            f"/terminals/{enrolled.id}/keys",
            {"public_key": SM2PrivateKey.generate().public_key.to_hex()},
        ),
        other_bank.client.put(
            f"{API}/terminals/{enrolled.id}/geofence", headers=other_bank.headers, json=CENTRE
        ),
    ):
        assert_problem(response, 404, "terminals.not_found", "terminal_id")
    assert other_bank.ok(other_bank.get("/terminals"))["items"] == []
    assert other_bank.ok(other_bank.get("/terminal-alerts", terminal_id=enrolled.id))["items"] == []
    assert bank.ok(bank.get(f"/terminals/{enrolled.id}"))["status"] == "active"
    # Each institution signs with its own platform key.
    assert platform_key(bank) != platform_key(other_bank)


def test_the_platform_key_is_stable_and_complete(bank):
    first = bank.ok(bank.get("/platform-key"))
    assert bank.ok(bank.get("/platform-key")) == first
    assert first["institution_code"] == bank.code
    assert first["algorithm"] == "SM2" and first["signer_id"] == "1234567812345678"
    assert first["serial"] == 1
    key = SM2PublicKey.from_pem(first["public_key_pem"])
    assert key.to_hex() == first["public_key"]
    assert key.fingerprint() == first["fingerprint"]


# ---------------------------------------------------------------------------- signed requests


def test_a_terminal_signs_and_the_platform_signs_back(bank):
    enrolled = enrol(bank)
    with terminal_client(bank, enrolled) as terminal:
        response = terminal.get("/api/v1/terminals/self", params={"q": "中 文", "x": "1"})
        assert response.status_code == 200
        assert response.json()["id"] == enrolled.id
        assert terminal.platform_key_serial == 1
        assert response.headers[signing.PLATFORM_KEY_SERIAL_HEADER] == "1"
        assert len(response.headers[signing.SIGNATURE_HEADER]) == 88
        # Each request carries a fresh nonce, so the same call works again.
        assert terminal.get("/api/v1/terminals/self").json()["code"] == enrolled.body["code"]
    # A staff user has no terminal of its own.
    assert_problem(bank.as_role(Role.agent).get("/terminals/self"), 404, "terminals.not_a_terminal")


def test_an_agent_terminal_reads_an_account_and_moves_money(bank):
    payer = bank.funded_account(10_000)
    payee = bank.deposit_account()
    enrolled = enrol(bank)
    with terminal_client(bank, enrolled) as terminal:
        account = terminal.get(f"/api/v1/deposit-accounts/{payer['account_number']}")
        assert account.status_code == 200, account.text
        assert account.json()["balance"] == payer["balance"]
        body = {
            "from_account_number": payer["account_number"],
            "to_account_number": payee["account_number"],
            "amount": 2_500,
        }
        moved = terminal.post(
            "/api/v1/transfers", json=body, headers={"Idempotency-Key": new_key()}
        )
        assert moved.status_code == 201, moved.text
        # A business refusal is an answer of the platform too: signed and verified.
        too_much = {**body, "amount": 1_000_000}
        refusal = terminal.post(
            "/api/v1/transfers", json=too_much, headers={"Idempotency-Key": new_key()}
        )
        assert refusal.status_code == 409, refusal.text
    assert bank.balance(payer["account_number"]) == 7_500
    assert bank.balance(payee["account_number"]) == 2_500


def test_a_buyer_terminal_is_held_to_the_buyer_role(bank):
    account = bank.deposit_account()
    enrolled = enrol(bank, binding="merchant")
    with terminal_client(bank, enrolled) as terminal:
        assert terminal.get("/api/v1/terminals/self").status_code == 200
        # Authenticated, then refused by the permission table: a signed 403.
        forbidden = terminal.get(f"/api/v1/deposit-accounts/{account['account_number']}")
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "auth.forbidden"
        assert terminal.get("/api/v1/terminals").status_code == 403


def test_refusals_over_http_are_unsigned_401s_and_403s_with_their_codes(bank):
    enrolled = enrol(bank)
    terminal = terminal_client(bank, enrolled)
    path = "/api/v1/terminals/self"

    # Unknown terminal, unknown serial, wrong key.
    ghost = Enrolled(str(uuid.uuid4()), enrolled.key, {})
    assert (
        refused(lambda: terminal_client(bank, ghost).get(path)).code == "terminals.unknown_terminal"
    )
    unknown_serial = refused(lambda: terminal_client(bank, enrolled, serial=2).get(path))
    assert (unknown_serial.status_code, unknown_serial.code) == (
        401,
        "terminals.unknown_key_serial",
    )
    wrong_key = terminal_client(bank, enrolled, key=SM2PrivateKey.generate())
    assert refused(lambda: wrong_key.get(path)).code == "terminals.bad_signature"

    # A body changed after signing.
    request = terminal.build("POST", "/api/v1/transfers", json={"amount": 1})
    tampered = bank.client.build_request(
        "POST", request.url, headers=request.headers, content=b'{"amount":2}'
    )
    assert refused(lambda: terminal.send(tampered)).code == "terminals.bad_signature"

    # A replay of an accepted request.
    request = terminal.build("GET", path)
    assert terminal.send(request).status_code == 200
    replay = refused(lambda: terminal.send(request))
    assert (replay.status_code, replay.code) == (401, "terminals.replayed_nonce")

    # Stale and future timestamps: signed at another time, sent now.
    for shift, code in ((-301, "terminals.stale_timestamp"), (301, "terminals.future_timestamp")):
        with clock.frozen(clock.now() + timedelta(seconds=shift)):
            request = terminal.build("GET", path)
        assert refused(lambda request=request: terminal.send(request)).code == code

    # Malformed and missing headers are named.
    request = terminal.build("GET", path)
    request.headers[signing.NONCE_HEADER] = "short"
    malformed = refused(lambda: terminal.send(request))
    body = assert_problem(malformed.response, 401, "terminals.malformed_header", "X-Nonce")
    assert body["field"] == "X-Nonce"
    del request.headers[signing.SIGNATURE_HEADER]
    missing = refused(lambda: terminal.send(request))
    assert_problem(missing.response, 401, "terminals.missing_header", "X-Signature")

    # Suspended, then revoked.
    bank.ok(bank.post(f"/terminals/{enrolled.id}/suspend"))
    suspended = refused(lambda: terminal.get(path))
    assert (suspended.status_code, suspended.code) == (403, "terminals.terminal_suspended")
    bank.ok(bank.post(f"/terminals/{enrolled.id}/revoke"))
    assert refused(lambda: terminal.get(path)).code == "terminals.terminal_revoked"
    pending = enrol(bank, activate=False)
    assert (
        refused(lambda: terminal_client(bank, pending).get(path)).code
        == "terminals.terminal_pending"
    )


def test_a_request_out_of_its_geofence_is_refused_and_alerted(bank):
    enrolled = enrol(bank)
    fenced = bank.client.put(
        f"{API}/terminals/{enrolled.id}/geofence", headers=bank.headers, json=CENTRE
    )
    assert fenced.status_code == 200, fenced.text
    assert fenced.json()["geofence"] == CENTRE
    path = "/api/v1/terminals/self"

    with terminal_client(bank, enrolled, location=INSIDE) as terminal:
        assert terminal.get(path).status_code == 200
    # Without a location.
    no_location = terminal_client(bank, enrolled)
    assert refused(lambda: no_location.get(path)).code == "terminals.location_required"

    away = terminal_client(bank, enrolled, location=OUTSIDE)
    outside = refused(lambda: away.get(path))
    body = assert_problem(outside.response, 403, "terminals.outside_geofence", "X-Location")
    request_id = outside.response.headers["x-request-id"]
    assert body["request_id"] == request_id

    risk = bank.as_role(Role.risk_officer)
    [alert] = risk.ok(risk.get("/terminal-alerts"))["items"]
    assert alert["terminal_id"] == enrolled.id
    assert (alert["latitude"], alert["longitude"]) == ("30.290000", "120.155070")
    assert alert["geofence"] == CENTRE
    assert 1_750 < alert["distance_metres"] < 1_800
    assert alert["method"] == "GET" and alert["key_serial"] == 1
    assert alert["request_id"] == request_id
    assert risk.ok(risk.get("/terminal-alerts", terminal_id=enrolled.id))["items"] == [alert]

    # Removing the fence lifts the check.
    removed = bank.client.delete(f"{API}/terminals/{enrolled.id}/geofence", headers=bank.headers)
    assert removed.json()["geofence"] is None
    assert away.get(path).status_code == 200


def test_key_rotation_over_the_api(bank):
    enrolled = enrol(bank)
    new = SM2PrivateKey.generate()
    rotated = bank.ok(
        bank.post(f"/terminals/{enrolled.id}/keys", {"public_key": new.public_key.to_pem()}), 201
    )
    assert rotated["active_key_serial"] == 2
    assert [(k["serial"], k["status"]) for k in rotated["keys"]] == [(1, "retired"), (2, "active")]
    path = "/api/v1/terminals/self"
    old = terminal_client(bank, enrolled)
    assert refused(lambda: old.get(path)).code == "terminals.key_retired"
    assert terminal_client(bank, enrolled, serial=2, key=new).get(path).status_code == 200
    assert_problem(
        bank.post(f"/terminals/{enrolled.id}/keys", {"public_key": new.public_key.to_hex()}),
        409,
        "terminals.public_key_taken",
        "public_key",
    )


# ---------------------------------------------------------------------------- answers


class Tamper(httpx.BaseTransport):
    """A man in the middle: passes requests on and alters the answers' bodies."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read().replace(b"SP-0042", b"SP-0666")
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def test_an_altered_or_foreign_answer_is_caught(bank, other_bank):
    enrolled = enrol(bank)
    path = "/api/v1/terminals/self"
    intercepted = httpx.Client(
        base_url="http://testserver", transport=Tamper(bank.client._transport)
    )
    with pytest.raises(BadResponseSignature, match="does not verify"):
        terminal_client(bank, enrolled, http=intercepted).get(path)

    # A terminal that pinned another institution's key trusts none of this one's answers.
    pinned_wrong = TerminalClient(
        bank.client,
        terminal_id=enrolled.id,
        key_serial=1,
        private_key=enrolled.key,
        platform_public_key=platform_key(other_bank),
    )
    with pytest.raises(BadResponseSignature):
        pinned_wrong.get(path)


def test_answers_to_requests_that_are_not_signed_carry_no_signature(bank):
    response = bank.get("/terminals")
    assert response.status_code == 200
    assert signing.PLATFORM_KEY_SERIAL_HEADER.lower() not in response.headers
    assert signing.SIGNATURE_HEADER.lower() not in response.headers


# ---------------------------------------------------------------------------- a real server


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_client_works_over_a_real_http_server(client, bank, database_url):
    enrolled = enrol(bank)
    app = make_app(database_url)
    try:
        with (
            serving(app) as base_url,
            TerminalClient(
                base_url,
                terminal_id=enrolled.id,
                key_serial=1,
                private_key=enrolled.key.to_pem(),
                platform_public_key=platform_key(bank).to_pem(),
            ) as terminal,
        ):
            # Percent-encoded path characters and a query survive the trip as signed.
            response = terminal.get(
                "/api/v1/terminals/self", params={"q": "中 文/?&=", "empty": ""}
            )
            assert response.status_code == 200, response.text
            assert response.json()["id"] == enrolled.id
            encoded = terminal.request("GET", "/api/v1/terminals/self?a=%41&b=%e4%b8%ad")
            assert encoded.status_code == 200
            malformed = refused(lambda: terminal.get("/api/v1/terminals/self", location="91,0"))
            assert malformed.code == "terminals.malformed_header"
    finally:
        app.state.engine.dispose()


# ---------------------------------------------------------------------------- Redis


def test_with_redis_configured_nonces_live_in_redis(bank, database_url, factory):
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1.0).ping()
    except redis.RedisError as exc:
        print(f"\nRedis API test skipped: {url} does not answer ({exc})")
        pytest.skip(f"Redis at {url} does not answer: {exc}")
    enrolled = enrol(bank)
    app = make_app(database_url, redis_url=url)
    try:
        with TestClient(app, raise_server_exceptions=False) as http:
            terminal = terminal_client(bank, enrolled, http=http)
            request = terminal.build("GET", "/api/v1/terminals/self")
            assert terminal.send(request).status_code == 200
            assert refused(lambda: terminal.send(request)).code == "terminals.replayed_nonce"
    finally:
        app.state.engine.dispose()
    with factory() as session:
        rows = session.scalar(
            select(func.count())
            .select_from(TerminalNonce)
            .where(TerminalNonce.terminal_id == uuid.UUID(enrolled.id))
        )
    assert rows == 0
    key = f"huinong:terminal-nonce:{enrolled.id}:{request.headers[signing.NONCE_HEADER]}"
    assert redis.Redis.from_url(url).exists(key) == 1
