"""The audit hash chain without a database: canonical content, links, anchors, and what the
verifiers report for each kind of tampering."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.security.audit import chain
from huinong.security.audit.chain import (
    AnchorVerifier,
    ChainVerifier,
    SealedRecord,
    StoredAnchor,
)
from huinong.security.crypto import SM2PrivateKey, sm3

CHAIN = uuid.UUID("0190b0a0-0000-7000-8000-000000000001")
T0 = datetime(2026, 11, 22, 8, 0, 0, 123456, tzinfo=UTC)


@dataclasses.dataclass
class Content:
    id: uuid.UUID
    institution_id: uuid.UUID | None = CHAIN
    occurred_at: datetime = T0
    actor_kind: str | None = "staff"
    actor_id: uuid.UUID | None = None
    actor_display: str | None = "teller01"
    action: str = "payments.cash_deposit"
    object_type: str | None = "payment"
    object_id: str | None = "p-1"
    outcome: str = "ok"
    request_id: str | None = "req-1"
    detail: dict | None = None


def content(n: int, **changes) -> Content:
    return Content(id=uuid.UUID(int=n), **changes)


def sealed_chain(n: int) -> list[SealedRecord]:
    contents = [chain.content_hash(content(i)) for i in range(1, n + 1)]
    links = chain.seal_links(chain_id=CHAIN, last_sequence=0, last_hash=None, contents=contents)
    return [
        SealedRecord(uuid.UUID(int=i), link.sequence, h, h, link.prev_hash, link.chain_hash)
        for i, (h, link) in enumerate(zip(contents, links, strict=True), start=1)
    ]


def verify(records: list[SealedRecord], head: tuple[int, bytes] | None = None) -> list:
    verifier = ChainVerifier(CHAIN)
    for record in records:
        verifier.feed(record)
    if head is not None:
        verifier.check_head(head)
    return verifier.findings


# --------------------------------------------------------------------------- content


def test_content_hash_is_sm3_of_the_canonical_form():
    record = content(1, detail={"b": 1, "a": ["x", None, True]})
    canonical = chain.canonical_content(record)
    assert chain.content_hash(record) == sm3(canonical)
    text = canonical.decode()
    assert text.startswith('["huinong-audit/1","00000000-0000-0000-0000-000000000001"')
    assert '"2026-11-22T08:00:00.123456Z"' in text
    assert '{"a":["x",null,true],"b":1}' in text  # keys sorted, no spaces


def test_every_field_is_covered_by_the_hash():
    base = content(1, actor_id=uuid.UUID(int=9), detail={"k": "v"})
    original = chain.content_hash(base)
    changes = {
        "id": uuid.UUID(int=2),
        "institution_id": None,
        "occurred_at": T0 + timedelta(microseconds=1),
        "actor_kind": "terminal",
        "actor_id": uuid.UUID(int=10),
        "actor_display": "teller02",
        "action": "payments.cash_withdrawal",
        "object_type": "account",
        "object_id": "p-2",
        "outcome": "denied",
        "request_id": "req-2",
        "detail": {"k": "w"},
    }
    assert set(changes) == {f.name for f in dataclasses.fields(Content)}
    for name, value in changes.items():
        assert chain.content_hash(dataclasses.replace(base, **{name: value})) != original, name


def test_the_same_moment_in_another_zone_hashes_the_same():
    shanghai = timezone(timedelta(hours=8))
    assert chain.content_hash(content(1, occurred_at=T0.astimezone(shanghai))) == (
        chain.content_hash(content(1))
    )


@pytest.mark.parametrize(
    "detail", [{"amount": 1.5}, {"x": {"y": [float("nan")]}}, {1: "a"}, {"b": b"bytes"}]
)
def test_details_that_would_not_survive_a_json_column_are_refused(detail):
    with pytest.raises(ValueError):
        chain.check_detail(detail)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_json_details_round_trip_to_the_same_hash(value):
    import json

    detail = {"value": value}
    chain.check_detail(detail)
    reloaded = json.loads(json.dumps(detail))
    assert chain.content_hash(content(1, detail=detail)) == chain.content_hash(
        content(1, detail=reloaded)
    )


def test_genesis_depends_on_the_chain():
    assert chain.genesis_hash(CHAIN) != chain.genesis_hash(chain.PLATFORM_CHAIN)
    assert chain.chain_of(None) == chain.PLATFORM_CHAIN
    assert chain.chain_of(CHAIN) == CHAIN


def test_seal_links_continue_from_the_head():
    hashes = [sm3(bytes([i])) for i in range(5)]
    whole = chain.seal_links(chain_id=CHAIN, last_sequence=0, last_hash=None, contents=hashes)
    first = chain.seal_links(chain_id=CHAIN, last_sequence=0, last_hash=None, contents=hashes[:2])
    rest = chain.seal_links(
        chain_id=CHAIN, last_sequence=2, last_hash=first[-1].chain_hash, contents=hashes[2:]
    )
    assert first + rest == whole
    assert [link.sequence for link in whole] == [1, 2, 3, 4, 5]
    assert whole[0].prev_hash == chain.genesis_hash(CHAIN)
    for before, after in itertools.pairwise(whole):
        assert after.prev_hash == before.chain_hash


# --------------------------------------------------------------------------- chain verification


def test_an_intact_chain_has_no_findings():
    records = sealed_chain(6)
    assert verify(records, head=(6, records[-1].chain_hash)) == []


def test_altered_content_names_the_record():
    records = sealed_chain(5)
    records[2] = dataclasses.replace(records[2], actual_hash=sm3(b"changed"))
    findings = verify(records)
    assert [(f.kind, f.sequences, f.record_ids) for f in findings] == [
        ("altered", (3,), (uuid.UUID(int=3),))
    ]


def test_content_rehashed_in_place_is_still_altered():
    records = sealed_chain(5)
    forged = sm3(b"forged")
    records[2] = dataclasses.replace(records[2], content_hash=forged, actual_hash=forged)
    findings = verify(records)
    assert [(f.kind, f.sequences) for f in findings] == [("altered", (3,))]


def test_a_removed_record_is_named_by_its_sequence():
    records = sealed_chain(5)
    del records[2]
    findings = verify(records)
    assert [(f.kind, f.sequences) for f in findings] == [("removed", (3,))]
    assert set(findings[0].record_ids) == {uuid.UUID(int=2), uuid.UUID(int=4)}


def test_the_first_record_removed():
    records = sealed_chain(3)[1:]
    assert [(f.kind, f.sequences) for f in verify(records)] == [("removed", (1,))]


def test_swapped_records_are_both_named_as_reordered():
    records = sealed_chain(6)
    a, b = records[2], records[3]
    records[2] = dataclasses.replace(b, sequence=3)
    records[3] = dataclasses.replace(a, sequence=4)
    findings = verify(records)
    assert {f.kind for f in findings} == {"reordered"}
    assert {f.record_ids for f in findings} == {(uuid.UUID(int=4),), (uuid.UUID(int=3),)}


def test_a_rewritten_stretch_breaks_the_chain_where_it_rejoins():
    records = sealed_chain(6)
    # Rewrite records 3..4 consistently (new content, new hashes), leave 5.. untouched.
    forged = [sm3(b"x"), sm3(b"y")]
    links = chain.seal_links(
        chain_id=CHAIN, last_sequence=2, last_hash=records[1].chain_hash, contents=forged
    )
    for index, (h, link) in enumerate(zip(forged, links, strict=True), start=2):
        records[index] = SealedRecord(
            records[index].id, link.sequence, h, h, link.prev_hash, link.chain_hash
        )
    findings = verify(records)
    assert [(f.kind, f.sequences) for f in findings] == [("chain_break", (4, 5))]


def test_removed_tail_shows_against_the_head():
    records = sealed_chain(5)
    head = (5, records[-1].chain_hash)
    findings = verify(records[:3], head=head)
    assert [(f.kind, f.sequences) for f in findings] == [("removed", (4, 5))]


def test_a_head_that_disagrees_is_reported():
    records = sealed_chain(3)
    assert [f.kind for f in verify(records, head=(3, sm3(b"other")))] == ["head_mismatch"]
    verifier = ChainVerifier(CHAIN)
    for record in records:
        verifier.feed(record)
    verifier.check_head(None)
    assert [f.kind for f in verifier.findings] == ["head_mismatch"]


# --------------------------------------------------------------------------- anchors


def anchors_for(records: list[SealedRecord], cuts: list[int]) -> list[StoredAnchor]:
    anchors, first = [], 1
    for last in cuts:
        h = records[last - 1].chain_hash
        anchors.append(StoredAnchor(uuid.UUID(int=100 + last), first, last, h, True, h))
        first = last + 1
    return anchors


def check_anchors(anchors: list[StoredAnchor], last_record: int) -> list:
    verifier = AnchorVerifier(CHAIN)
    for anchor in anchors:
        verifier.feed(anchor, last_record_sequence=last_record)
    verifier.finish(last_record_sequence=last_record)
    return verifier.findings


def test_contiguous_valid_anchors_pass():
    records = sealed_chain(6)
    assert check_anchors(anchors_for(records, [2, 5, 6]), 6) == []


def test_anchor_findings():
    records = sealed_chain(6)
    anchors = anchors_for(records, [2, 5, 6])
    bad_signature = [anchors[0], dataclasses.replace(anchors[1], signature_valid=False), anchors[2]]
    assert [f.kind for f in check_anchors(bad_signature, 6)] == ["anchor_signature"]

    mismatch = [anchors[0], dataclasses.replace(anchors[1], record_hash=sm3(b"z")), anchors[2]]
    assert [(f.kind, f.sequences) for f in check_anchors(mismatch, 6)] == [
        ("anchor_mismatch", (5,))
    ]

    hole = [anchors[0], anchors[2]]
    assert [(f.kind, f.sequences) for f in check_anchors(hole, 6)] == [
        ("anchor_missing", (3, 4, 5))
    ]

    unanchored_tail = anchors[:2]
    assert [(f.kind, f.sequences) for f in check_anchors(unanchored_tail, 6)] == [
        ("anchor_missing", (6,))
    ]

    # The last records and the head are gone, the signed anchor still vouches for them.
    gone = [*anchors[:2], dataclasses.replace(anchors[2], record_hash=None)]
    assert [(f.kind, f.sequences) for f in check_anchors(gone, 5)] == [("removed", (6,))]


def test_anchor_message_signs_and_verifies():
    key = SM2PrivateKey.generate()
    message = chain.anchor_message(
        chain_id=CHAIN, first_sequence=1, last_sequence=9, chain_hash=sm3(b"h"), signed_at=T0
    )
    signature = key.sign(message)
    assert key.public_key.verify(signature, message)
    other = chain.anchor_message(
        chain_id=CHAIN, first_sequence=1, last_sequence=8, chain_hash=sm3(b"h"), signed_at=T0
    )
    assert not key.public_key.verify(signature, other)
