"""The HTTP biller protocol (HNB1): canonical forms and SM2 signatures, then our client
against the real fake biller over a real socket — both directions refuse what is not signed
by the right key, a replayed nonce, a stale timestamp and a tampered body."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import httpx
import pytest

from huinong.payments.bills import protocol
from huinong.payments.bills.client import BillerClient, BillerEndpoint, BillerError
from huinong.payments.bills.fake_biller import FakeBiller, running
from huinong.security.crypto import SM2PrivateKey

OURS = SM2PrivateKey.generate()
NOW = 1_790_000_000


def _sign(body: bytes = b"{}", **kw):
    args = {"method": "POST", "target": "/bills/query", "caller": "BANK1", "body": body, "now": NOW}
    args.update(kw)
    return protocol.sign_request(OURS, **args)


def _verify(headers, body=b"{}", now=NOW, seen=None, key=OURS.public_key, target="/bills/query"):
    seen = set() if seen is None else seen

    def new(caller, nonce):
        if (caller, nonce) in seen:
            return False
        seen.add((caller, nonce))
        return True

    return protocol.verify_request(
        lambda caller: key if caller == "BANK1" else None,
        method="POST",
        target=target,
        headers=headers,
        body=body,
        now=now,
        nonce_is_new=new,
    )


def test_the_canonical_request_names_every_part():
    message = protocol.request_to_sign("post", "/bills/query", "BANK1", NOW, "ab" * 16, b"{}")
    lines = message.decode().split("\n")
    assert lines[:6] == ["HNB1-REQUEST", "POST", "/bills/query", "BANK1", str(NOW), "ab" * 16]
    assert len(lines[6]) == 64  # hex SM3 of the body


def test_a_signed_request_verifies_once():
    signed = _sign()
    seen: set = set()
    assert _verify(signed.headers, seen=seen) == "BANK1"
    with pytest.raises(protocol.SignatureRefused) as replay:
        _verify(signed.headers, seen=seen)
    assert replay.value.reason == "replayed"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"reference":"2"}'}, "bad_signature"),
        ({"target": "/payments/confirm"}, "bad_signature"),
        ({"now": NOW + protocol.MAX_SKEW_SECONDS + 1}, "stale"),
        ({"key": SM2PrivateKey.generate().public_key}, "bad_signature"),
    ],
)
def test_tampering_is_refused(change, reason):
    signed = _sign()
    args = {"body": b"{}", "now": NOW, "key": OURS.public_key, "target": "/bills/query"}
    args.update(change)
    with pytest.raises(protocol.SignatureRefused) as refused:
        _verify(signed.headers, **args)
    assert refused.value.reason == reason


def test_missing_or_malformed_headers_and_unknown_callers():
    signed = _sign()
    for name in (protocol.TIMESTAMP, protocol.NONCE, protocol.SIGNATURE, protocol.CALLER):
        headers = {k: v for k, v in signed.headers.items() if k != name}
        with pytest.raises(protocol.SignatureRefused) as refused:
            _verify(headers)
        assert refused.value.reason == "missing"
    with pytest.raises(protocol.SignatureRefused) as refused:
        _verify({**signed.headers, protocol.SIGNATURE: "zz"})
    assert refused.value.reason == "malformed"
    stranger = protocol.sign_request(
        OURS, method="POST", target="/bills/query", caller="OTHER", body=b"{}", now=NOW
    )
    with pytest.raises(protocol.SignatureRefused) as refused:
        _verify(stranger.headers)
    assert refused.value.reason == "bad_signature"


def test_an_answer_is_bound_to_the_request_nonce():
    biller = SM2PrivateKey.generate()
    headers = protocol.sign_response(
        biller, status=200, request_nonce="a" * 32, body=b"ok", now=NOW
    )
    protocol.verify_response(
        biller.public_key, status=200, request_nonce="a" * 32, headers=headers, body=b"ok", now=NOW
    )
    for status, nonce, body in (
        (200, "b" * 32, b"ok"),
        (201, "a" * 32, b"ok"),
        (200, "a" * 32, b"no"),
    ):
        with pytest.raises(protocol.SignatureRefused):
            protocol.verify_response(
                biller.public_key,
                status=status,
                request_nonce=nonce,
                headers=headers,
                body=body,
                now=NOW,
            )


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def biller():
    fake = FakeBiller()
    fake.clients["BANK1"] = OURS.public_key
    with running(fake) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


def _client(biller, *, our_key=OURS, biller_key=None, timeout=5.0):
    return BillerClient(
        BillerEndpoint(
            base_url=biller.url,
            caller="BANK1",
            our_key=our_key,
            biller_key=biller_key or biller.public_key,
            timeout=timeout,
        )
    )


def test_query_and_confirm_against_the_fake_biller(biller):
    bill_id = biller.add_bill("3301001", "2026-10", 12850, date(2026, 11, 30))
    biller.add_bill("9999", "2026-10", 1)
    client = _client(biller)
    [found] = client.query("3301001")
    assert (found.bill_id, found.amount, found.status, found.due_date) == (
        bill_id,
        12850,
        "open",
        date(2026, 11, 30),
    )
    paid_at = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    args = dict(
        payment_id="P1", bill_id=bill_id, reference="3301001", period="2026-10", paid_at=paid_at
    )
    first = client.confirm(amount=12850, **args)
    again = client.confirm(amount=12850, **args)  # idempotent on our payment id
    assert first.receipt == again.receipt and first.receipt.startswith("R")
    with pytest.raises(BillerError) as reused:
        client.confirm(amount=1, **args)
    assert reused.value.code == "bills.biller_refused"
    assert client.query("3301001")[0].status == "paid"
    returned = client.return_file(date(2026, 11, 22)).decode()
    assert returned.splitlines()[1].startswith("P1,3301001,128.50,")


def test_the_biller_refuses_a_request_not_signed_by_our_registered_key(biller):
    impostor = _client(biller, our_key=SM2PrivateKey.generate())
    with pytest.raises(BillerError) as refused:
        impostor.query("3301001")
    assert refused.value.code == "bills.biller_refused"
    assert not refused.value.retryable
    assert biller.requests_refused == 1


def test_we_refuse_an_answer_not_signed_by_the_billers_key(biller):
    biller.add_bill("3301001", "2026-10", 100)
    biller.answer_key = SM2PrivateKey.generate()  # someone else answering for the biller
    with pytest.raises(BillerError) as refused:
        _client(biller).query("3301001")
    assert refused.value.code == "bills.biller_answer_invalid"
    biller.answer_key = None
    assert len(_client(biller).query("3301001")) == 1


def test_the_fake_biller_refuses_a_replayed_request(biller):
    body = b'{"reference":"1"}'
    signed = protocol.sign_request(
        OURS, method="POST", target="/bills/query", caller="BANK1", body=body, now=int(time.time())
    )
    headers = {**signed.headers, "Content-Type": "application/json"}
    first = httpx.post(biller.url + "/bills/query", content=body, headers=headers)
    second = httpx.post(biller.url + "/bills/query", content=body, headers=headers)
    assert (first.status_code, second.status_code) == (200, 401)
    assert second.json()["reason"] == "replayed"


def test_an_unavailable_biller_is_retryable(biller):
    bill_id = biller.add_bill("1", "2026-10", 100)
    biller.fail_confirmations = 1
    client = _client(biller)
    args = dict(payment_id="P2", bill_id=bill_id, reference="1", period="2026-10", amount=100)
    with pytest.raises(BillerError) as down:
        client.confirm(paid_at=datetime.now(UTC), **args)
    assert down.value.code == "bills.biller_unavailable" and down.value.retryable
    assert client.confirm(paid_at=datetime.now(UTC), **args).payment_id == "P2"


def test_nobody_listening_is_unavailable():
    with running(FakeBiller()) as url:
        pass  # stopped: the port is closed now
    client = BillerClient(
        BillerEndpoint(url, "BANK1", OURS, SM2PrivateKey.generate().public_key, timeout=2)
    )
    with pytest.raises(BillerError) as down:
        client.query("1")
    assert down.value.code == "bills.biller_unavailable"
