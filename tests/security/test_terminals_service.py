"""The terminal registry and the server side of signed requests, on both databases: enrolment,
the life cycle, key rotation, every refusal with its code, nonces in the database and in a
real Redis, geofence alerts that outlive the refused request, and the platform keys."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, Forbidden, HuinongError, InvalidInput, NotFound
from huinong.institutions.models import Institution
from huinong.security.crypto import CryptoError, SM2PrivateKey
from huinong.security.principals import PrincipalKind, Role
from huinong.security.terminals import geofence, nonces, platform_keys, service, signing
from huinong.security.terminals.models import (
    GeofenceAlert,
    PlatformKey,
    TerminalKey,
    TerminalNonce,
)
from huinong.security.terminals.rules import BindingKind, TerminalKind, TerminalStatus
from tests.conftest import new_institution

NOW = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/15"
CENTRE = "30.274084,120.155070"
T = TypeVar("T")


@dataclass
class Device:
    """An enrolled terminal and the private key it keeps."""

    id: uuid.UUID
    code: str
    key: SM2PrivateKey
    serial: int
    institution_id: uuid.UUID

    def sign(
        self,
        *,
        method: str = "GET",
        target: str = "/api/v1/terminals/self",
        body: bytes = b"",
        at: datetime = NOW,
        nonce: str | None = None,
        location: str | None = None,
        key: SM2PrivateKey | None = None,
        serial: int | None = None,
    ) -> dict[str, Any]:
        headers = signing.sign_request(
            key or self.key,
            terminal_id=self.id,
            key_serial=serial or self.serial,
            method=method,
            path_with_query=target,
            body=body,
            timestamp=int(at.timestamp()),
            nonce=nonce,
            location=location,
        )
        return {"method": method, "path_with_query": target, "headers": headers, "body": body}


def run(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    return run_in_transaction(factory, work)


def enrol(
    factory: sessionmaker[Session],
    institution: Institution,
    *,
    binding: BindingKind = BindingKind.service_point,
    activate: bool = True,
    fence: geofence.Fence | None = None,
    code: str | None = None,
) -> Device:
    key = SM2PrivateKey.generate()
    code = code or f"SP-{uuid.uuid4().hex[:10]}"

    def unit(session: Session) -> uuid.UUID:
        terminal = service.enrol_terminal(
            session,
            institution_id=institution.id,
            code=code,
            kind=TerminalKind.pos,
            binding_kind=binding,
            binding_reference="SP-0042",
            public_key=key.public_key.to_hex(),
            fence=fence,
        )
        if activate:
            service.change_status(
                session,
                institution_id=institution.id,
                terminal_id=terminal.id,
                target=TerminalStatus.active,
            )
        return terminal.id

    return Device(run(factory, unit), code, key, 1, institution.id)


def verify(
    factory: sessionmaker[Session],
    request: dict[str, Any],
    *,
    now: datetime = NOW,
    store: nonces.NonceStore | None = None,
) -> uuid.UUID:
    return run(
        factory,
        lambda s: service.verify_signed_request(s, now=now, nonces=store, **request).id,
    )


def refusal(factory: sessionmaker[Session], request: dict[str, Any], **kwargs: Any) -> HuinongError:
    with pytest.raises(HuinongError) as caught:
        verify(factory, request, **kwargs)
    return caught.value


def nonce_rows(factory: sessionmaker[Session], terminal_id: uuid.UUID) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(TerminalNonce)
                .where(TerminalNonce.terminal_id == terminal_id)
            )
            or 0
        )


# ---------------------------------------------------------------------------- registry


def test_enrolment_makes_a_pending_terminal_with_key_serial_1(factory, institution):
    device = enrol(factory, institution, activate=False)
    with factory() as session:
        terminal = service.get_terminal(
            session, institution_id=institution.id, terminal_id=device.id
        )
        keys = service.keys_of(session, terminal_ids=[device.id])[device.id]
    assert terminal.status == TerminalStatus.pending
    assert terminal.binding_kind == BindingKind.service_point
    assert terminal.binding_reference == "SP-0042"
    assert [(k.serial, k.status, k.retired_at) for k in keys] == [(1, "active", None)]
    assert keys[0].public_key == device.key.public_key.to_hex()
    assert keys[0].fingerprint == device.key.public_key.fingerprint()


def test_enrolment_takes_pem_and_refuses_bad_keys_reused_keys_and_taken_codes(factory, institution):
    key = SM2PrivateKey.generate()

    def enrol_with(public_key: str, code: str) -> Any:
        return run(
            factory,
            lambda s: service.enrol_terminal(
                s,
                institution_id=institution.id,
                code=code,
                kind=TerminalKind.smart_terminal,
                binding_kind=BindingKind.merchant,
                binding_reference="M-7",
                public_key=public_key,
            ),
        )

    code = f"M-{uuid.uuid4().hex[:8]}"
    terminal = enrol_with(key.public_key.to_pem(), code)
    assert terminal.kind == TerminalKind.smart_terminal
    with pytest.raises(Conflict) as taken:
        enrol_with(SM2PrivateKey.generate().public_key.to_hex(), code)
    assert (taken.value.code, taken.value.field) == ("terminals.code_taken", "code")
    with pytest.raises(Conflict) as reused:
        enrol_with(key.public_key.to_hex(), code + "b")
    assert (reused.value.code, reused.value.field) == ("terminals.public_key_taken", "public_key")
    not_on_curve = "04" + "11" * 64
    for bad in (not_on_curve, "04abc", "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"):
        with pytest.raises(InvalidInput) as invalid:
            enrol_with(bad, code + "c")
        assert (invalid.value.code, invalid.value.field) == (
            "terminals.invalid_public_key",
            "public_key",
        )
    with pytest.raises(InvalidInput) as bad_code:
        enrol_with(SM2PrivateKey.generate().public_key.to_hex(), "bad code")
    assert bad_code.value.code == "terminals.invalid_code"
    # The same key may be enrolled by another institution (tenants do not see each other).
    other = new_institution(factory)
    run(
        factory,
        lambda s: service.enrol_terminal(
            s,
            institution_id=other.id,
            code=code,
            kind=TerminalKind.mobile,
            binding_kind=BindingKind.merchant,
            binding_reference="M-7",
            public_key=key.public_key.to_hex(),
        ),
    )


def test_the_life_cycle_through_the_service(factory, institution):
    device = enrol(factory, institution, activate=False)

    def to(target: TerminalStatus) -> str:
        return run(
            factory,
            lambda s: (
                service.change_status(
                    s, institution_id=institution.id, terminal_id=device.id, target=target
                ).status
            ),
        )

    assert to(TerminalStatus.active) == "active"
    with pytest.raises(Conflict):
        to(TerminalStatus.active)
    assert to(TerminalStatus.suspended) == "suspended"
    assert to(TerminalStatus.active) == "active"
    assert to(TerminalStatus.revoked) == "revoked"
    for target in TerminalStatus:
        with pytest.raises(Conflict) as refused:
            to(target)
        assert refused.value.code == "terminals.invalid_transition"


def test_another_institution_cannot_see_or_touch_a_terminal(factory, institution):
    device = enrol(factory, institution)
    other = new_institution(factory)
    key = SM2PrivateKey.generate().public_key.to_hex()
    fence = geofence.Fence(geofence.Point(0, 0), 100)
    attempts: list[Callable[[Session], Any]] = [
        lambda s: service.get_terminal(s, institution_id=other.id, terminal_id=device.id),
        lambda s: service.change_status(
            s, institution_id=other.id, terminal_id=device.id, target=TerminalStatus.suspended
        ),
        lambda s: service.rotate_key(
            s, institution_id=other.id, terminal_id=device.id, public_key=key
        ),
        lambda s: service.set_geofence(
            s, institution_id=other.id, terminal_id=device.id, fence=fence
        ),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as hidden:
            run(factory, attempt)
        assert hidden.value.code == "terminals.not_found"
    with factory() as session:
        assert service.list_terminals(session, institution_id=other.id) == []
        mine = service.list_terminals(session, institution_id=institution.id)
        assert [t.id for t in mine] == [device.id]
        assert (
            service.get_terminal(
                session, institution_id=institution.id, terminal_id=device.id
            ).status
            == TerminalStatus.active
        )


def test_listing_pages_and_filters_by_status(factory):
    institution = new_institution(factory)
    devices = [enrol(factory, institution, activate=i % 2 == 0) for i in range(5)]
    with factory() as session:
        first = service.list_terminals(session, institution_id=institution.id, limit=2)
        rest = service.list_terminals(
            session, institution_id=institution.id, after=first[-1].id, limit=10
        )
        pending = service.list_terminals(
            session, institution_id=institution.id, status=TerminalStatus.pending
        )
    assert [t.id for t in first + rest] == [d.id for d in devices]
    assert [t.id for t in pending] == [devices[1].id, devices[3].id]


def test_rotation_retires_the_old_key_and_numbers_the_new_one(factory, institution):
    device = enrol(factory, institution)
    new_keys = [SM2PrivateKey.generate(), SM2PrivateKey.generate()]
    for key in new_keys:
        run(
            factory,
            lambda s, key=key: service.rotate_key(
                s,
                institution_id=institution.id,
                terminal_id=device.id,
                public_key=key.public_key.to_hex(),
            ),
        )
    with factory() as session:
        keys = service.keys_of(session, terminal_ids=[device.id])[device.id]
    assert [(k.serial, k.status) for k in keys] == [(1, "retired"), (2, "retired"), (3, "active")]
    assert all(k.retired_at is not None for k in keys[:2])
    assert keys[2].public_key == new_keys[1].public_key.to_hex()

    # The newest key signs; the retired ones are refused with their own code.
    assert verify(factory, device.sign(key=new_keys[1], serial=3)) == device.id
    retired = refusal(factory, device.sign(key=new_keys[0], serial=2))
    assert (retired.code, retired.status, retired.field) == (
        "terminals.key_retired",
        401,
        "X-Key-Serial",
    )
    # A key once used cannot come back in a later rotation.
    with pytest.raises(Conflict) as reused:
        run(
            factory,
            lambda s: service.rotate_key(
                s,
                institution_id=institution.id,
                terminal_id=device.id,
                public_key=device.key.public_key.to_hex(),
            ),
        )
    assert reused.value.code == "terminals.public_key_taken"


def test_a_revoked_terminal_gets_no_new_key_nor_geofence(factory, institution):
    device = enrol(factory, institution)
    run(
        factory,
        lambda s: service.change_status(
            s, institution_id=institution.id, terminal_id=device.id, target=TerminalStatus.revoked
        ),
    )
    with pytest.raises(Conflict) as refused:
        run(
            factory,
            lambda s: service.rotate_key(
                s,
                institution_id=institution.id,
                terminal_id=device.id,
                public_key=SM2PrivateKey.generate().public_key.to_hex(),
            ),
        )
    assert refused.value.code == "terminals.terminal_revoked"
    with pytest.raises(Conflict):
        run(
            factory,
            lambda s: service.set_geofence(
                s, institution_id=institution.id, terminal_id=device.id, fence=None
            ),
        )


def test_fences_are_made_from_decimal_strings_naming_the_bad_field():
    fence = service.make_fence(latitude="30.274084", longitude="120.155070", radius_metres=500)
    assert fence.centre == geofence.Point(30_274_084, 120_155_070)
    for kwargs, field in [
        ({"latitude": "95"}, "latitude"),
        ({"latitude": "x"}, "latitude"),
        ({"longitude": "-181"}, "longitude"),
        ({"radius_metres": 5}, "radius_metres"),
    ]:
        arguments = {"latitude": "30", "longitude": "120", "radius_metres": 500, **kwargs}
        with pytest.raises(InvalidInput) as bad:
            service.make_fence(**arguments, prefix="geofence.")  # type: ignore[arg-type]
        assert bad.value.field == "geofence." + field


# ---------------------------------------------------------------------------- signed requests


def test_a_signed_request_names_its_terminal_and_principal(factory, institution):
    agent_device = enrol(factory, institution)
    buyer_device = enrol(factory, institution, binding=BindingKind.merchant)
    assert verify(factory, agent_device.sign()) == agent_device.id
    with factory() as session:
        for device, role in ((agent_device, Role.agent), (buyer_device, Role.buyer)):
            terminal = service.get_terminal(
                session, institution_id=institution.id, terminal_id=device.id
            )
            principal = service.principal_for(session, terminal=terminal)
            assert principal.kind == PrincipalKind.terminal
            assert principal.subject_id == device.id
            assert principal.institution_id == institution.id
            assert principal.institution_code == institution.code
            assert principal.currency == "CNY"
            assert principal.roles == {role}
            assert principal.display == device.code
    # A POST with a body, a query string and the window's edges.
    body = b'{"amount":100,"memo":"\xe5\x8a\xa9\xe5\x86\x9c"}'
    request = agent_device.sign(method="POST", target="/api/v1/transfers?x=1", body=body)
    assert verify(factory, request, now=NOW + timedelta(seconds=300)) == agent_device.id
    early = agent_device.sign(at=NOW + timedelta(seconds=300))
    assert verify(factory, early) == agent_device.id


def test_each_refusal_has_its_own_code(factory, institution):
    device = enrol(factory, institution)
    cases: list[tuple[dict[str, Any], str, int, str]] = []

    unknown = Device(uuid.uuid4(), "ghost", device.key, 1, institution.id)
    cases.append((unknown.sign(), "terminals.unknown_terminal", 401, "X-Terminal-Id"))
    cases.append((device.sign(serial=7), "terminals.unknown_key_serial", 401, "X-Key-Serial"))
    cases.append(
        (device.sign(key=SM2PrivateKey.generate()), "terminals.bad_signature", 401, "X-Signature")
    )
    tampered = device.sign(method="POST", body=b'{"amount":1}')
    tampered["body"] = b'{"amount":9}'
    cases.append((tampered, "terminals.bad_signature", 401, "X-Signature"))
    moved = device.sign(target="/api/v1/terminals/self")
    moved["path_with_query"] = "/api/v1/terminals/self?all=1"
    cases.append((moved, "terminals.bad_signature", 401, "X-Signature"))
    cases.append(
        (
            device.sign(at=NOW - timedelta(seconds=301)),
            "terminals.stale_timestamp",
            401,
            "X-Timestamp",
        )
    )
    cases.append(
        (
            device.sign(at=NOW + timedelta(seconds=301)),
            "terminals.future_timestamp",
            401,
            "X-Timestamp",
        )
    )
    broken = device.sign()
    broken["headers"] = {**broken["headers"], "X-Nonce": "short"}
    cases.append((broken, "terminals.malformed_header", 401, "X-Nonce"))

    for request, code, status, field in cases:
        error = refusal(factory, request)
        assert (error.code, error.status, error.field) == (code, status, field), code
    # None of the refused requests left a nonce behind.
    assert nonce_rows(factory, device.id) == 0


@pytest.mark.parametrize("status", ["pending", "suspended", "revoked"])
def test_a_terminal_not_active_is_forbidden(factory, institution, status):
    device = enrol(factory, institution, activate=status != "pending")
    if status != "pending":
        run(
            factory,
            lambda s: service.change_status(
                s,
                institution_id=institution.id,
                terminal_id=device.id,
                target=TerminalStatus(status),
            ),
        )
    error = refusal(factory, device.sign())
    assert isinstance(error, Forbidden)
    assert (error.code, error.status) == (f"terminals.terminal_{status}", 403)


def test_a_replayed_nonce_is_refused_and_forgotten_after_the_window(factory, institution):
    device = enrol(factory, institution)
    request = device.sign(nonce="replay-me-0123456789")
    assert verify(factory, request) == device.id
    again = refusal(factory, request)
    assert (again.code, again.status, again.field) == ("terminals.replayed_nonce", 401, "X-Nonce")
    # Same nonce, new signature and time: still a replay within the window.
    later = device.sign(nonce="replay-me-0123456789", at=NOW + timedelta(seconds=200))
    assert (
        refusal(factory, later, now=NOW + timedelta(seconds=200)).code == "terminals.replayed_nonce"
    )
    # Another terminal may happen to use the same nonce.
    other = enrol(factory, institution)
    assert verify(factory, other.sign(nonce="replay-me-0123456789")) == other.id

    # Once the window has passed, the row is swept by the terminal's next claim, and the old
    # request is refused by its timestamp alone.
    assert nonce_rows(factory, device.id) == 1
    much_later = NOW + timedelta(seconds=400)
    assert verify(factory, device.sign(at=much_later), now=much_later) == device.id
    assert nonce_rows(factory, device.id) == 1
    assert refusal(factory, request, now=much_later).code == "terminals.stale_timestamp"


def test_purge_deletes_only_expired_nonces(factory, institution):
    device = enrol(factory, institution)
    verify(factory, device.sign())
    with transaction(factory) as session:
        assert nonces.purge_expired(session, now=NOW) == 0
    assert nonce_rows(factory, device.id) == 1
    with transaction(factory) as session:
        assert nonces.purge_expired(session, now=NOW + timedelta(seconds=302)) >= 1
    assert nonce_rows(factory, device.id) == 0


def race(n: int, call: Callable[[int], T]) -> list[T | BaseException]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_copies_of_a_request_arriving_together_are_accepted_once(factory, institution):
    device = enrol(factory, institution)
    request = device.sign(method="POST", body=b"{}")
    results = race(6, lambda _: verify(factory, request))
    accepted = [r for r in results if r == device.id]
    refused = [r for r in results if isinstance(r, HuinongError)]
    assert len(accepted) == 1, results
    assert len(refused) == 5 and {r.code for r in refused} == {"terminals.replayed_nonce"}


# ---------------------------------------------------------------------------- geofence


def fenced(factory: sessionmaker[Session], institution: Institution) -> Device:
    fence = geofence.Fence(geofence.parse_location(CENTRE), 500)
    return enrol(factory, institution, fence=fence)


def alerts(factory: sessionmaker[Session], institution_id: uuid.UUID) -> list[GeofenceAlert]:
    with factory() as session:
        return service.list_alerts(session, institution_id=institution_id)


def test_inside_the_fence_is_accepted_and_a_missing_location_refused(factory, institution):
    device = fenced(factory, institution)
    assert verify(factory, device.sign(location="30.276,120.156")) == device.id  # ~230 m
    missing = refusal(factory, device.sign())
    assert (missing.code, missing.status, missing.field) == (
        "terminals.location_required",
        403,
        "X-Location",
    )
    assert alerts(factory, institution.id) == []


def test_outside_the_fence_is_refused_and_the_alert_outlives_the_refusal(factory, institution):
    device = fenced(factory, institution)
    request = device.sign(method="POST", body=b"{}", location="30.290000,120.155070")  # ~1.77 km

    # The way the API does it: verification in one transaction (rolled back by the refusal),
    # the alert in another.
    with pytest.raises(service.OutsideGeofence) as caught:
        verify(factory, request)
    refused = caught.value
    assert (refused.code, refused.status, refused.field) == (
        "terminals.outside_geofence",
        403,
        "X-Location",
    )
    assert 1_750 < refused.distance_metres < 1_800
    assert nonce_rows(factory, device.id) == 0  # rolled back with the refused request
    run(factory, lambda s: service.record_geofence_alert(s, refusal=refused, request_id="req-1"))

    [alert] = alerts(factory, institution.id)
    assert alert.terminal_id == device.id
    assert (alert.latitude_micro, alert.longitude_micro) == (30_290_000, 120_155_070)
    assert (alert.fence_latitude_micro, alert.fence_longitude_micro) == (30_274_084, 120_155_070)
    assert alert.fence_radius_metres == 500
    assert 1_750 < alert.distance_metres < 1_800
    assert (alert.key_serial, alert.method, alert.request_id) == (1, "POST", "req-1")
    assert alert.occurred_at == NOW

    # Its nonce was remembered with the alert: a replay is a replay, not a second alert.
    assert refusal(factory, request).code == "terminals.replayed_nonce"
    assert len(alerts(factory, institution.id)) == 1
    with factory() as session:
        assert service.list_alerts(session, institution_id=new_institution(factory).id) == []
        assert (
            service.list_alerts(session, institution_id=institution.id, terminal_id=uuid.uuid4())
            == []
        )


def test_moving_or_removing_the_fence_takes_effect_at_once(factory, institution):
    device = fenced(factory, institution)
    far = "31.230416,121.473701"  # Shanghai, ~165 km away
    with pytest.raises(service.OutsideGeofence):
        verify(factory, device.sign(location=far))
    moved = geofence.Fence(geofence.parse_location(far), 100)
    run(
        factory,
        lambda s: service.set_geofence(
            s, institution_id=institution.id, terminal_id=device.id, fence=moved
        ),
    )
    assert verify(factory, device.sign(location=far)) == device.id
    run(
        factory,
        lambda s: service.set_geofence(
            s, institution_id=institution.id, terminal_id=device.id, fence=None
        ),
    )
    assert verify(factory, device.sign()) == device.id


# ---------------------------------------------------------------------------- Redis nonces


@pytest.fixture
def redis_store() -> Iterator[nonces.RedisNonceStore]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"\nRedis nonce-store tests skipped: {REDIS_URL} does not answer ({exc})")
        pytest.skip(f"Redis at {REDIS_URL} does not answer: {exc}")
    yield nonces.RedisNonceStore(client)
    client.close()


def test_redis_claims_a_nonce_once_with_an_expiry(factory, institution, redis_store):
    device = enrol(factory, institution)
    nonce = f"redis-{uuid.uuid4().hex}"
    claim = {
        "institution_id": institution.id,
        "terminal_id": device.id,
        "nonce": nonce,
        "expires_at": NOW + timedelta(seconds=301),
        "now": NOW,
    }
    with factory() as session:
        assert redis_store.claim(session, **claim) is True
        assert redis_store.claim(session, **claim) is False
        other = {**claim, "terminal_id": uuid.uuid4()}
        assert redis_store.claim(session, **other) is True
    ttl = redis_store.client.ttl(f"{nonces.REDIS_KEY_PREFIX}{device.id}:{nonce}")
    assert 290 <= ttl <= 301


def test_verification_with_redis_refuses_replays_and_writes_no_nonce_rows(
    factory, institution, redis_store
):
    device = enrol(factory, institution)
    request = device.sign()
    assert verify(factory, request, store=redis_store) == device.id
    assert refusal(factory, request, store=redis_store).code == "terminals.replayed_nonce"
    assert nonce_rows(factory, device.id) == 0
    results = race(4, lambda _: verify(factory, device.sign(nonce="x" * 20), store=redis_store))
    assert [r for r in results if r == device.id] == [device.id]


def test_an_unreachable_redis_is_a_503_not_a_500(factory, institution):
    device = enrol(factory, institution)
    import redis

    dead = nonces.RedisNonceStore(
        redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)
    )
    error = refusal(factory, device.sign(), store=dead)
    assert (error.code, error.status) == ("terminals.nonce_store_unavailable", 503)


def test_the_store_follows_the_configuration():
    assert isinstance(nonces.store_for(None), nonces.DatabaseNonceStore)
    assert isinstance(nonces.store_for(REDIS_URL), nonces.RedisNonceStore)


# ---------------------------------------------------------------------------- platform keys


def test_the_platform_key_is_made_once_and_stored_wrapped(factory, institution):
    first = run(factory, lambda s: platform_keys.signer(s, institution_id=institution.id))
    again = run(factory, lambda s: platform_keys.signer(s, institution_id=institution.id))
    assert first.serial == again.serial == 1
    assert first.private_key == again.private_key
    serial, public_key = run(
        factory, lambda s: platform_keys.public_key(s, institution_id=institution.id)
    )
    assert (serial, public_key) == (1, first.public_key)
    signature = first.private_key.sign(b"answer")
    assert public_key.verify(signature, b"answer")

    with factory() as session:
        row = session.scalars(
            select(PlatformKey).where(PlatformKey.institution_id == institution.id)
        ).one()
    scalar = bytes.fromhex(first.private_key.to_hex())
    assert scalar not in row.private_key_wrapped
    assert len(row.private_key_wrapped) == 12 + 32 + 16
    # Each institution has its own.
    other = new_institution(factory)
    theirs = run(factory, lambda s: platform_keys.signer(s, institution_id=other.id))
    assert theirs.private_key != first.private_key


def test_a_wrapped_platform_key_does_not_open_in_another_row(factory):
    mine, theirs = new_institution(factory), new_institution(factory)
    for institution in (mine, theirs):
        run(factory, lambda s, i=institution: platform_keys.active_key(s, institution_id=i.id))
    with transaction(factory) as session:
        blob = session.scalar(
            select(PlatformKey.private_key_wrapped).where(PlatformKey.institution_id == mine.id)
        )
        session.execute(
            update(PlatformKey)
            .where(PlatformKey.institution_id == theirs.id)
            .values(private_key_wrapped=blob)
        )
    with pytest.raises(CryptoError), factory() as session:
        platform_keys.signer(session, institution_id=theirs.id)


def test_first_uses_at_once_make_one_platform_key(factory):
    institution = new_institution(factory)
    results = race(
        5,
        lambda _: run(
            factory, lambda s: platform_keys.signer(s, institution_id=institution.id).public_key
        ),
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    assert len(set(results)) == 1
    with factory() as session:
        count = session.scalar(
            select(func.count())
            .select_from(PlatformKey)
            .where(PlatformKey.institution_id == institution.id)
        )
    assert count == 1


def test_key_rows_are_tenant_scoped(factory, institution):
    device = enrol(factory, institution)
    with factory() as session:
        key = session.scalars(select(TerminalKey).where(TerminalKey.terminal_id == device.id)).one()
    assert key.institution_id == institution.id


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from huinong.config import get_settings

    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_the_terminal_commands(factory, cli_database, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from huinong.cli.common import console
    from huinong.cli.terminals import app

    # Wide enough that Rich neither wraps the messages nor folds the table's cells.
    monkeypatch.setattr(console, "_width", 240)
    runner = CliRunner()
    institution = new_institution(factory)

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    key_file = tmp_path / "terminal.pem"
    public_hex = ok("keygen", "--out", str(key_file)).strip()
    private_key = SM2PrivateKey.from_pem(key_file.read_text())
    assert public_hex == private_key.public_key.to_hex()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert runner.invoke(app, ["keygen", "--out", str(key_file)]).exit_code == 1

    public_file = tmp_path / "terminal.pub"
    public_file.write_text(private_key.public_key.to_pem())
    where = ["--institution", institution.code]
    enrolled = ok(
        "enroll", *where, "--code", "SP9-POS1", "--public-key", str(public_file),
        "--reference", "SP-0009", "--kind", "smart_terminal",
    )  # fmt: skip
    assert "SP9-POS1 enrolled (pending)" in enrolled
    duplicate = runner.invoke(
        app,
        ["enroll", *where, "--code", "SP9-POS1", "--public-key", public_hex, "--reference", "x"],
    )
    assert duplicate.exit_code == 1 and "code is enrolled" in duplicate.output

    with factory() as session:
        terminal = service.get_terminal_by_code(
            session, institution_id=institution.id, code="SP9-POS1"
        )
    assert "pending" in ok("list", *where)
    assert "is now active" in ok("activate", "SP9-POS1", *where)
    geofenced = ok(
        "geofence", str(terminal.id), *where, "--latitude", "30.274084",
        "--longitude", "120.155070", "--radius", "500",
    )  # fmt: skip
    assert "30.274084,120.155070, radius 500 m" in geofenced
    listed = ok("list", *where, "--status", "active")
    assert "SP9-POS1" in listed and "r=500 m" in listed
    device = Device(terminal.id, "SP9-POS1", private_key, 1, institution.id)
    assert verify(factory, device.sign(location="30.2741,120.1551")) == terminal.id
    assert "geofence removed" in ok("geofence", "SP9-POS1", *where, "--clear")
    assert runner.invoke(app, ["geofence", "SP9-POS1", *where]).exit_code == 1

    new_key = SM2PrivateKey.generate()
    assert "key serial 2 active" in ok(
        "rotate-key", "SP9-POS1", *where, "--public-key", new_key.public_key.to_hex()
    )
    platform_hex = ok("platform-key", *where).splitlines()[0]
    with factory() as session:
        assert (
            platform_hex
            == platform_keys.public_key(session, institution_id=institution.id)[1].to_hex()
        )
    assert "BEGIN PUBLIC KEY" in ok("platform-key", *where, "--pem")
    assert "is now suspended" in ok("suspend", "SP9-POS1", *where)
    assert "is now revoked" in ok("revoke", "SP9-POS1", *where)
    refused = runner.invoke(app, ["activate", "SP9-POS1", *where])
    assert refused.exit_code == 1 and "final" in refused.output
    missing = runner.invoke(app, ["activate", "NOPE", *where])
    assert missing.exit_code == 1 and "no terminal has this code" in missing.output
    assert "expired nonces deleted" in ok("purge-nonces")
    assert "terminal" in ok("alerts", *where)
