"""The signed-terminal protocol as pure functions: canonical strings, header parsing, the time
window, response signatures, geofence distances and the status life cycle. No database."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.errors import Conflict, Unauthenticated
from huinong.security.crypto import SM2PrivateKey
from huinong.security.principals import Role
from huinong.security.terminals import geofence, rules, signing
from huinong.security.terminals.client import request_target
from huinong.security.terminals.rules import BindingKind, TerminalStatus

KEY = SM2PrivateKey.generate()
OTHER_KEY = SM2PrivateKey.generate()
TERMINAL = uuid.UUID("0192f0c4-5e1a-7b3c-8d4e-0123456789ab")
NOW = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
EMPTY_SM3 = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
NONCE = "Zk3n0x8uQ1d2-b_7QWmD9r4VtYp6LsHe"


def signed(**overrides: object) -> dict[str, str]:
    arguments: dict[str, object] = {
        "terminal_id": TERMINAL,
        "key_serial": 1,
        "method": "POST",
        "path_with_query": "/api/v1/transfers?x=1",
        "body": b'{"amount":100}',
        "timestamp": T,
        "nonce": NONCE,
    }
    arguments.update(overrides)
    return signing.sign_request(KEY, **arguments)  # type: ignore[arg-type]


def verifies(headers: dict[str, str], **request: object) -> bool:
    parts: dict[str, object] = {
        "method": "POST",
        "path_with_query": "/api/v1/transfers?x=1",
        "body": b'{"amount":100}',
    }
    parts.update(request)
    parsed = signing.parse_request_headers(headers)
    return signing.verify_request_signature(KEY.public_key, parsed, **parts)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- canonical strings


def test_canonical_request_is_the_five_lines_of_the_documented_example():
    message = signing.canonical_request(
        method="get",
        path_with_query="/api/v1/deposit-accounts/62210000000017?verbose=1",
        timestamp=1764000000,
        nonce=NONCE,
        body=b"",
    )
    assert message == (
        b"GET\n/api/v1/deposit-accounts/62210000000017?verbose=1\n1764000000\n"
        + NONCE.encode()
        + b"\n"
        + EMPTY_SM3.encode()
    )
    # The module docstring (the protocol's specification) shows exactly these lines.
    documented = "\n".join("    " + line for line in message.decode().split("\n"))
    assert documented in (signing.__doc__ or "")


def test_a_sent_location_is_a_sixth_line():
    without = signing.canonical_request(
        method="GET", path_with_query="/p", timestamp=1, nonce=NONCE, body=b""
    )
    with_location = signing.canonical_request(
        method="GET", path_with_query="/p", timestamp=1, nonce=NONCE, body=b"", location="1.5,2.5"
    )
    assert with_location == without + b"\n1.5,2.5"
    assert without.count(b"\n") == 4


def test_canonical_response_binds_status_nonce_and_body():
    message = signing.canonical_response(
        method="post",
        path_with_query=b"/api/v1/transfers",
        timestamp=T,
        request_nonce=NONCE,
        status=201,
        body=b"",
    )
    assert message.split(b"\n") == [
        b"POST",
        b"/api/v1/transfers",
        str(T).encode(),
        NONCE.encode(),
        b"201",
        EMPTY_SM3.encode(),
    ]


def test_the_target_has_a_question_mark_only_with_a_query():
    assert signing.target_of(b"/a/b%20c", b"") == b"/a/b%20c"
    assert signing.target_of("/a", "x=1&y=%E4%B8%AD") == b"/a?x=1&y=%E4%B8%AD"
    # The client reads the same bytes off httpx's URL as the server gets in its scope.
    assert request_target(httpx.URL("http://h/a/b%20c?")) == b"/a/b%20c"
    assert request_target(httpx.URL("http://h/a?x=1&y=%E4%B8%AD")) == b"/a?x=1&y=%E4%B8%AD"
    assert request_target(httpx.URL("http://h")) == b"/"


# ---------------------------------------------------------------------------- signatures


def test_a_signed_request_verifies_and_every_signed_part_is_bound():
    headers = signed()
    assert headers[signing.KEY_SERIAL_HEADER] == "1"
    assert len(headers[signing.SIGNATURE_HEADER]) == 88
    assert verifies(headers)
    assert not verifies(headers, method="PUT")
    assert not verifies(headers, path_with_query="/api/v1/transfers?x=2")
    assert not verifies(headers, path_with_query="/api/v1/transfers")
    assert not verifies(headers, body=b'{"amount":101}')
    assert not verifies({**headers, signing.TIMESTAMP_HEADER: str(T + 1)})
    assert not verifies({**headers, signing.NONCE_HEADER: NONCE[:-1] + "X"})
    assert not verifies({**headers, signing.LOCATION_HEADER: "30.0,120.0"})
    other = signing.sign_request(
        OTHER_KEY,
        terminal_id=TERMINAL,
        key_serial=1,
        method="POST",
        path_with_query="/api/v1/transfers?x=1",
        body=b'{"amount":100}',
        timestamp=T,
        nonce=NONCE,
    )
    assert not verifies(other)


def test_the_location_is_signed_when_sent():
    headers = signed(location="30.274084,120.155070")
    assert headers[signing.LOCATION_HEADER] == "30.274084,120.155070"
    assert verifies(headers)
    assert not verifies({**headers, signing.LOCATION_HEADER: "30.274085,120.155070"})
    stripped = {k: v for k, v in headers.items() if k != signing.LOCATION_HEADER}
    assert not verifies(stripped)


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.from_regex(r"/[A-Za-z0-9/_%.-]{0,40}", fullmatch=True),
    body=st.binary(max_size=256),
    flip=st.integers(min_value=0, max_value=255),
)
def test_any_body_byte_changed_breaks_the_signature(method, path, body, flip):
    headers = signed(method=method, path_with_query=path, body=body)
    assert verifies(headers, method=method, path_with_query=path, body=body)
    if body:
        position = flip % len(body)
        tampered = bytearray(body)
        tampered[position] ^= 0x01
        assert not verifies(headers, method=method, path_with_query=path, body=bytes(tampered))
    assert not verifies(headers, method=method, path_with_query=path, body=body + b" ")


def test_a_response_signature_verifies_and_binds_everything():
    headers = signing.sign_response(
        KEY,
        key_serial=3,
        method="GET",
        path_with_query=b"/api/v1/terminals/self",
        request_nonce=NONCE,
        status=200,
        body=b'{"ok":true}',
        timestamp=T,
    )
    parts = {
        "method": "GET",
        "path_with_query": b"/api/v1/terminals/self",
        "request_nonce": NONCE,
        "status": 200,
        "body": b'{"ok":true}',
    }
    assert signing.verify_response(KEY.public_key, headers=headers, **parts) == 3  # type: ignore[arg-type]
    for name, value in [
        ("method", "POST"),
        ("path_with_query", b"/api/v1/terminals/other"),
        ("request_nonce", NONCE[:-1] + "Q"),
        ("status", 201),
        ("body", b'{"ok":false}'),
    ]:
        with pytest.raises(signing.ResponseSignatureInvalid):
            signing.verify_response(KEY.public_key, headers=headers, **{**parts, name: value})  # type: ignore[arg-type]
    with pytest.raises(signing.ResponseSignatureInvalid):
        signing.verify_response(OTHER_KEY.public_key, headers=headers, **parts)  # type: ignore[arg-type]
    with pytest.raises(signing.ResponseSignatureInvalid):
        bad = {**headers, signing.SIGNATURE_HEADER: "not base64"}
        signing.verify_response(KEY.public_key, headers=bad, **parts)  # type: ignore[arg-type]
    for missing in (
        signing.PLATFORM_KEY_SERIAL_HEADER,
        signing.TIMESTAMP_HEADER,
        signing.SIGNATURE_HEADER,
    ):
        without = {k: v for k, v in headers.items() if k != missing}
        with pytest.raises(signing.ResponseSignatureMissing, match=missing):
            signing.verify_response(KEY.public_key, headers=without, **parts)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- header parsing


def test_parsed_headers_carry_the_values():
    parsed = signing.parse_request_headers(signed(location="30.5,-120.25"))
    assert parsed.terminal_id == TERMINAL
    assert parsed.key_serial == 1
    assert parsed.timestamp == T
    assert parsed.nonce == NONCE
    assert len(parsed.signature) == 64
    assert parsed.location == "30.5,-120.25"
    assert parsed.position == geofence.Point(30_500_000, -120_250_000)
    # Header names are matched whatever their case (HTTP/2 sends them in lower case).
    lower = {k.lower(): v for k, v in signed().items()}
    assert signing.parse_request_headers(lower).nonce == NONCE
    assert signing.is_signed_request(lower)
    assert not signing.is_signed_request({"Authorization": "Bearer x"})


@pytest.mark.parametrize(
    "header",
    [
        signing.TERMINAL_ID_HEADER,
        signing.KEY_SERIAL_HEADER,
        signing.TIMESTAMP_HEADER,
        signing.NONCE_HEADER,
        signing.SIGNATURE_HEADER,
    ],
)
def test_each_missing_header_is_named(header):
    headers = {k: v for k, v in signed().items() if k != header}
    with pytest.raises(Unauthenticated) as caught:
        signing.parse_request_headers(headers)
    assert (caught.value.code, caught.value.field) == ("terminals.missing_header", header)
    with pytest.raises(Unauthenticated) as caught:
        signing.parse_request_headers({**headers, header: "  "})
    assert caught.value.code == "terminals.missing_header"


GOOD_SIGNATURE = base64.b64encode(bytes(range(64))).decode()


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (signing.TERMINAL_ID_HEADER, "SP0042-POS1"),
        (signing.TERMINAL_ID_HEADER, "0192f0c4"),
        (signing.KEY_SERIAL_HEADER, "0"),
        (signing.KEY_SERIAL_HEADER, "01"),
        (signing.KEY_SERIAL_HEADER, "-1"),
        (signing.KEY_SERIAL_HEADER, "one"),
        (signing.KEY_SERIAL_HEADER, "1234567890"),
        (signing.TIMESTAMP_HEADER, "1764000000.5"),
        (signing.TIMESTAMP_HEADER, "-1764000000"),
        (signing.TIMESTAMP_HEADER, "01764000000"),
        (signing.TIMESTAMP_HEADER, "2026-11-22T08:00:00Z"),
        (signing.TIMESTAMP_HEADER, "1" * 13),
        (signing.NONCE_HEADER, "a" * 15),
        (signing.NONCE_HEADER, "a" * 65),
        (signing.NONCE_HEADER, "a" * 15 + "!"),
        (signing.NONCE_HEADER, "a" * 15 + "é"),
        (signing.SIGNATURE_HEADER, GOOD_SIGNATURE[:-2]),
        (signing.SIGNATURE_HEADER, bytes(range(64)).hex()),
        (signing.SIGNATURE_HEADER, base64.b64encode(bytes(63)).decode()),
        (signing.SIGNATURE_HEADER, base64.urlsafe_b64encode(b"\xff" * 64).decode()),
        (signing.LOCATION_HEADER, "30.1"),
        (signing.LOCATION_HEADER, "30.1,120.1,5"),
        (signing.LOCATION_HEADER, "91.0,120.0"),
        (signing.LOCATION_HEADER, "30.0,180.5"),
        (signing.LOCATION_HEADER, "3e1,120"),
        (signing.LOCATION_HEADER, "nan,nan"),
        (signing.LOCATION_HEADER, ""),
    ],
)
def test_each_malformed_header_is_named(header, value):
    with pytest.raises(Unauthenticated) as caught:
        signing.parse_request_headers({**signed(), header: value})
    assert caught.value.code == "terminals.malformed_header"
    assert caught.value.field == header
    assert caught.value.status == 401


def test_boundary_nonces_and_signatures_are_accepted():
    for nonce in ("a" * 16, "Z" * 64, "0123456789_-abcd"):
        assert (
            signing.parse_request_headers({**signed(), signing.NONCE_HEADER: nonce}).nonce == nonce
        )
    parsed = signing.parse_request_headers({**signed(), signing.SIGNATURE_HEADER: GOOD_SIGNATURE})
    assert parsed.signature == bytes(range(64))
    assert len(signing.new_nonce()) == 32
    assert signing.new_nonce() != signing.new_nonce()


# ---------------------------------------------------------------------------- time window


def test_the_window_is_inclusive_and_each_side_has_its_code():
    for skew in (-300, -1, 0, 1, 300):
        signing.check_timestamp(T + skew, now=NOW, window_seconds=300)
    with pytest.raises(Unauthenticated) as stale:
        signing.check_timestamp(T - 301, now=NOW, window_seconds=300)
    assert (stale.value.code, stale.value.field) == ("terminals.stale_timestamp", "X-Timestamp")
    with pytest.raises(Unauthenticated) as future:
        signing.check_timestamp(T + 301, now=NOW, window_seconds=300)
    assert (future.value.code, future.value.field) == ("terminals.future_timestamp", "X-Timestamp")
    with pytest.raises(Unauthenticated):
        signing.check_timestamp(0, now=NOW, window_seconds=300)


# ---------------------------------------------------------------------------- geofence


def test_degrees_become_micro_degrees_exactly():
    assert geofence.degrees_to_micro("30.274084") == 30_274_084
    assert geofence.degrees_to_micro("-120.1550705") == -120_155_071  # half away from zero
    assert geofence.degrees_to_micro("+0.0000004") == 0
    assert geofence.degrees_to_micro("180") == 180_000_000
    assert geofence.micro_to_text(-500_000) == "-0.500000"
    assert geofence.micro_to_text(30_274_084) == "30.274084"
    for bad in ("", "abc", "1e5", "1234.5", "1.", ".5", "inf", "1,5"):
        with pytest.raises(ValueError):
            geofence.degrees_to_micro(bad)
    with pytest.raises(ValueError):
        geofence.Point(90_000_001, 0)
    with pytest.raises(ValueError):
        geofence.Point(0, -180_000_001)


def test_haversine_distances():
    origin = geofence.Point(0, 0)
    # One degree of arc on the mean sphere: 2 pi R / 360.
    one_degree = 111_195.08
    assert geofence.distance_metres(origin, geofence.Point(0, 1_000_000)) == pytest.approx(
        one_degree, abs=0.01
    )
    assert geofence.distance_metres(origin, geofence.Point(1_000_000, 0)) == pytest.approx(
        one_degree, abs=0.01
    )
    assert geofence.distance_metres(origin, origin) == 0
    # Antipodes: half the circumference, without a math domain error.
    assert geofence.distance_metres(
        geofence.Point(0, 0), geofence.Point(0, 180_000_000)
    ) == pytest.approx(20_015_114.4, abs=1)
    # Hangzhou West Lake to Hangzhou East station, about 8.6 km, symmetric.
    lake = geofence.parse_location("30.2420,120.1490")
    station = geofence.parse_location("30.2908,120.2126")
    there = geofence.distance_metres(lake, station)
    assert 8_000 < there < 8_300
    assert geofence.distance_metres(station, lake) == pytest.approx(there)


def test_a_fence_contains_its_circle_and_nothing_beyond():
    centre = geofence.Point(30_000_000, 120_000_000)
    fence = geofence.Fence(centre, 500)
    assert fence.contains(centre)
    # 4 micro-degrees of latitude ~ 0.44 m: 4,490 of them is ~499.3 m, 4,500 ~500.4 m.
    assert fence.contains(geofence.Point(30_004_490, 120_000_000))
    assert not fence.contains(geofence.Point(30_004_500, 120_000_000))
    for radius in (0, 9, 1_000_001):
        with pytest.raises(ValueError):
            geofence.Fence(centre, radius)
    assert geofence.Point(30_274_084, -120_155_070).text() == "30.274084,-120.155070"


# ---------------------------------------------------------------------------- life cycle


def test_the_status_transitions():
    s = TerminalStatus
    allowed = {
        (s.pending, s.active),
        (s.pending, s.revoked),
        (s.active, s.suspended),
        (s.active, s.revoked),
        (s.suspended, s.active),
        (s.suspended, s.revoked),
    }
    for current in s:
        for target in s:
            if (current, target) in allowed:
                assert rules.check_transition(current, target) is target
            else:
                with pytest.raises(Conflict) as refused:
                    rules.check_transition(current, target)
                assert refused.value.code == "terminals.invalid_transition"
    with pytest.raises(Conflict, match="final"):
        rules.check_transition(s.revoked, s.active)


def test_roles_follow_the_binding_and_codes_are_checked():
    assert rules.roles_for(BindingKind.service_point) == {Role.agent}
    assert rules.roles_for(BindingKind.merchant) == {Role.buyer}
    assert rules.check_code("SP0042-POS1.a_b") == "SP0042-POS1.a_b"
    for bad in ("", "-x", "a b", "a" * 33, "终端"):
        with pytest.raises(Exception) as refused:
            rules.check_code(bad)
        assert getattr(refused.value, "code", None) == "terminals.invalid_code"
