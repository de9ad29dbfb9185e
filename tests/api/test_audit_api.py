"""The audit trail over HTTP: auditors of an institution read its records (filtered, paged)
and check its chain; nobody else may, and no institution sees another's records."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from huinong.db import run_in_transaction
from huinong.security.audit import service as audit
from huinong.security.audit.chain import chain_of
from huinong.security.principals import Role
from tests.api.conftest import Bank, assert_problem, new_bank


def consent_body() -> dict[str, Any]:
    return {
        "categories": ["contact"],
        "purpose": "marketing",
        "evidence": {"kind": "terminal", "reference": "T-9"},
    }


def audited_activity(bank: Bank) -> tuple[Bank, list[str]]:
    """Three audited events by one teller: two consents recorded, one revoked."""
    teller = bank.as_role(Role.teller)
    customer = bank.customer()["id"]
    first = teller.ok(teller.post(f"/customers/{customer}/consents", consent_body()), 201)
    second = teller.ok(teller.post(f"/customers/{customer}/consents", consent_body()), 201)
    teller.ok(teller.post(f"/consents/{first['id']}/revocation"))
    return teller, [first["id"], second["id"]]


def records(auditor: Bank, **filters: Any) -> list[dict[str, Any]]:
    return auditor.ok(auditor.get("/audit-records", **filters))["items"]  # type: ignore[no-any-return]


def test_auditors_read_their_institutions_records(client, bank):
    _, consent_ids = audited_activity(bank)
    auditor = bank.as_role(Role.auditor)
    consent_records = records(auditor, action="consent.*")
    assert [r["action"] for r in consent_records] == [
        "consent.granted",
        "consent.granted",
        "consent.revoked",
    ]
    granted = consent_records[0]
    assert granted["actor"]["kind"] == "staff"
    assert granted["actor"]["display"]  # who, by name
    assert granted["object"] == {"type": "consent", "id": consent_ids[0]}
    assert granted["outcome"] == "ok"
    assert granted["request_id"]  # the request that caused it
    assert granted["detail"]["purpose"] == "marketing"

    by_actor = records(auditor, actor_id=granted["actor"]["id"])
    assert {r["actor"]["id"] for r in by_actor} == {granted["actor"]["id"]}
    assert [r["action"] for r in by_actor if r["action"].startswith("consent.")] == [
        "consent.granted",
        "consent.granted",
        "consent.revoked",
    ]
    by_object = records(auditor, object_type="consent", object_id=consent_ids[0])
    assert [r["action"] for r in by_object] == ["consent.granted", "consent.revoked"]
    assert (
        records(auditor, action="consent.revoked", outcome="ok")[0]["object"]["id"]
        == consent_ids[0]
    )


def test_cursor_pages_and_time_range(client, bank):
    audited_activity(bank)
    auditor = bank.as_role(Role.auditor)
    everything = records(auditor, action="consent.*", limit=500)
    seen, cursor = [], None
    while True:
        params = {"action": "consent.*", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = auditor.ok(auditor.get("/audit-records", **params))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["id"] for r in seen] == [r["id"] for r in everything]

    third = datetime.fromisoformat(everything[2]["occurred_at"])
    later = records(auditor, action="consent.*", since=third.isoformat())
    assert [r["id"] for r in later] == [everything[2]["id"]]
    earlier = records(auditor, action="consent.*", until=third.isoformat())
    assert [r["id"] for r in earlier] == [r["id"] for r in everything[:2]]
    future = (third + timedelta(days=1)).isoformat()
    assert records(auditor, action="consent.*", since=future) == []


def test_reading_the_trail_is_itself_audited(client, bank):
    auditor = bank.as_role(Role.auditor)
    records(auditor, object_id="6228480000000000006")
    [read] = records(auditor, action="audit.records_read")
    assert read["actor"]["id"] is not None
    assert read["detail"] == {"filters": ["object_id"], "returned": 0}
    assert "6228480000000000006" not in str(read)  # which filters, not their values


def test_other_institutions_and_other_roles_see_nothing(client, bank, factory):
    audited_activity(bank)
    other = new_bank(client, factory, prefix="OTH")
    outsider = other.as_role(Role.auditor)
    assert records(outsider, action="consent.*") == []
    report = outsider.ok(outsider.get("/audit/verification"))
    assert report["chain_id"] == str(other.id)
    for role in (Role.teller, Role.admin, Role.risk_officer):
        caller = bank.as_role(role)
        assert_problem(caller.get("/audit-records"), 403, "auth.forbidden", needs_field=False)
        assert_problem(caller.get("/audit/verification"), 403, "auth.forbidden", needs_field=False)


def test_bad_filters_are_4xx_naming_the_field(client, bank):
    auditor = bank.as_role(Role.auditor)
    naive = datetime.now().replace(tzinfo=None).isoformat()
    for params, field in [
        ({"since": naive}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"cursor": "%%%"}, "cursor"),
        ({"action": "Payments; drop"}, "action"),
        ({"outcome": "maybe"}, "outcome"),
        ({"actor_id": "nobody"}, "actor_id"),
        ({"limit": 0}, "limit"),
        ({"object_id": "a\x01b"}, "object_id"),
    ]:
        assert_problem(auditor.get("/audit-records", **params), 422, field=field)


def test_verification_of_the_callers_chain(client, bank):
    audited_activity(bank)
    auditor = bank.as_role(Role.auditor)
    before = auditor.ok(auditor.get("/audit/verification"))
    assert before["chain_id"] == str(bank.id)
    # The server's seal timer may or may not have run yet: every record is one or the other.
    assert before["unsealed"] + before["records"] >= 3 and before["intact"] is True
    audit.seal_all(bank.factory, chain_id=chain_of(bank.id))
    after = auditor.ok(auditor.get("/audit/verification"))
    assert after["intact"] is True and after["findings"] == [] and after["unsealed"] == 0
    assert after["records"] >= 3 and after["anchors"] >= 1
    assert after["last_sequence"] == after["records"]
    assert len(after["audit_key_fingerprint"]) == 64
    # Sealed records show their place in the chain.
    listed = records(auditor, action="consent.granted")
    assert all(r["sequence"] is not None and len(r["chain_hash"]) == 64 for r in listed)
    verified = records(auditor, action="audit.verified")
    assert [r["outcome"] for r in verified] == ["ok", "ok"]
    assert run_in_transaction(bank.factory, lambda s: audit.verify(s, chain_id=bank.id)) == []
