"""The audit trail on both databases: records written with their event, sealed into per-
institution hash chains by concurrent sealers, append-only in the database, and verification
naming every kind of tampering.

Tampering needs the append-only triggers out of the way (as an owner of the database could
do), and a tampered chain would fail every later verification of the platform, so the tamper
tests run against a private database of their own (a fresh SQLite file, a fresh PostgreSQL
schema), migrated for this module. The other tests use the shared database, each in a chain of
its own (a fresh institution id).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.config import get_settings
from huinong.db import make_engine, make_session_factory, run_in_transaction, transaction
from huinong.errors import ServiceUnavailable
from huinong.ids import uuid7
from huinong.logs import request_id_var
from huinong.migrations import upgrade
from huinong.security import keyring
from huinong.security.audit import chain
from huinong.security.audit import service as audit
from huinong.security.audit.models import AuditAnchor, AuditChain, AuditKey, AuditRecord
from huinong.security.crypto import SM2PrivateKey, sm4_gcm_decrypt
from huinong.security.principals import Principal, PrincipalKind, Role
from tests.conftest import POSTGRES_URL, statements_sent

RECORDS = AuditRecord.__table__
ANCHORS = AuditAnchor.__table__


def teller(institution_id: uuid.UUID) -> Principal:
    return Principal(
        kind=PrincipalKind.staff,
        subject_id=uuid7(),
        institution_id=institution_id,
        institution_code="T",
        currency="CNY",
        roles=frozenset({Role.teller}),
        display="teller01",
    )


def write(factory: sessionmaker[Session], chain_id: uuid.UUID, n: int, **fields) -> None:
    with transaction(factory) as session:
        for i in range(n):
            audit.record(
                session,
                action=fields.get("action", "payments.cash_deposit"),
                institution_id=chain_id,
                actor=fields.get("actor"),
                object_type="payment",
                object_id=f"p{i}",
                detail={"amount_fen": 100 * (i + 1)},
            )


def seal(factory: sessionmaker[Session], chain_id: uuid.UUID | None = None) -> list:
    return run_in_transaction(factory, lambda s: audit.seal(s, chain_id=chain_id))


def verify(factory: sessionmaker[Session], chain_id: uuid.UUID) -> list[chain.Finding]:
    with factory() as session:
        return audit.verify(session, chain_id=chain_id)


def sealed(factory: sessionmaker[Session], chain_id: uuid.UUID) -> list:
    with factory() as session:
        return session.execute(
            select(RECORDS).where(RECORDS.c.chain_id == chain_id).order_by(RECORDS.c.sequence)
        ).all()


def new_chain(factory: sessionmaker[Session], n: int, *, rounds: int = 1) -> uuid.UUID:
    chain_id = uuid7()
    for _ in range(rounds):
        write(factory, chain_id, n)
        seal(factory, chain_id)
    return chain_id


# --------------------------------------------------------------------------- writing and sealing


def test_a_record_carries_who_what_when_and_its_content_hash(factory):
    institution_id = uuid7()
    actor = teller(institution_id)
    token = request_id_var.set("req-audit-1")
    try:
        with transaction(factory) as session:
            audit.record(
                session,
                action="payments.cash_deposit",
                institution_id=institution_id,
                actor=actor,
                object_type="payment",
                object_id="pay-1",
                detail={"amount_fen": 12_345, "currency": "CNY"},
            )
    finally:
        request_id_var.reset(token)
    [row] = sealed(factory, institution_id)
    assert (row.actor_kind, row.actor_id, row.actor_display) == (
        "staff",
        actor.subject_id,
        "teller01",
    )
    assert (row.action, row.object_type, row.object_id, row.outcome) == (
        "payments.cash_deposit",
        "payment",
        "pay-1",
        "ok",
    )
    assert row.request_id == "req-audit-1"
    assert row.detail == {"amount_fen": 12_345, "currency": "CNY"}
    assert row.chain_id == institution_id
    assert bytes(row.content_hash) == chain.content_hash(row)
    assert row.sequence is None and row.chain_hash is None  # unsealed until the sealer runs


def test_a_record_exists_exactly_when_its_transaction_commits(factory):
    institution_id = uuid7()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(factory) as session:
        audit.record(session, action="payments.cash_deposit", institution_id=institution_id)
        raise Boom
    assert sealed(factory, institution_id) == []


def actions_of(factory: sessionmaker[Session], chain_id: uuid.UUID) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(AuditRecord.action)
                .where(AuditRecord.chain_id == chain_id)
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )


def test_records_inside_a_rolled_back_savepoint_go_with_it(factory):
    chain_id = uuid7()
    with transaction(factory) as session:
        audit.record(session, action="test.before", institution_id=chain_id)
        dropped = session.begin_nested()
        audit.record(session, action="test.dropped", institution_id=chain_id)
        dropped.rollback()
        kept = session.begin_nested()
        audit.record(session, action="test.kept", institution_id=chain_id)
        kept.commit()
        audit.record(session, action="test.after", institution_id=chain_id)
    assert actions_of(factory, chain_id) == ["test.before", "test.kept", "test.after"]


def test_a_session_without_a_transaction_writes_at_once_and_keeps_no_leftovers(factory):
    chain_id = uuid7()
    with factory() as session:
        audit.record(session, action="test.autobegun", institution_id=chain_id)
        session.rollback()  # the record went into the transaction it began, and goes with it
        with session.begin():
            audit.record(session, action="test.abandoned", institution_id=chain_id)
            session.rollback()
        with session.begin():
            audit.record(session, action="test.committed", institution_id=chain_id)
    assert actions_of(factory, chain_id) == ["test.committed"]


def test_a_transaction_reads_and_seals_its_own_records(factory):
    chain_id = uuid7()
    with transaction(factory) as session:
        audit.record(session, action="test.one", institution_id=chain_id)
        assert [r.action for r in audit.list_records(session, institution_id=chain_id)] == [
            "test.one"
        ]
        audit.record(session, action="test.two", institution_id=chain_id)
        [sealed_now] = audit.seal(session, chain_id=chain_id)
        assert sealed_now.records == 2
    assert verify(factory, chain_id) == []


def test_a_transactions_records_are_written_in_one_statement(factory, engine):
    chain_id = uuid7()
    with statements_sent() as sent:
        write(factory, chain_id, 300)
    inserts = [statement for statement in sent if "INSERT INTO AUDIT_RECORDS" in statement.upper()]
    assert len(inserts) == 1
    assert len(actions_of(factory, chain_id)) == 300


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"action": "Payments.Deposit"}, "dotted"),
        ({"action": "nodot"}, "dotted"),
        ({"outcome": "maybe"}, "outcome"),
        ({"detail": {"rate": 0.5}}, "JSON"),
        ({"object_id": "x" * 129}, "128"),
    ],
)
def test_bad_arguments_are_programming_errors(factory, arguments, problem):
    call = {"action": "auth.sign_in", "institution_id": None, **arguments}
    with factory() as session, pytest.raises(ValueError, match=problem):
        audit.record(session, **call)


def test_sealing_numbers_records_in_time_order_and_anchors_each_seal(factory):
    chain_id = uuid7()
    base = clock.now()
    # Written out of time order: sealing follows time, not insertion.
    for offset in (3, 1, 2):
        with clock.frozen(base + timedelta(seconds=offset)):
            write(factory, chain_id, 1, action=f"test.step{offset}")
    [first] = seal(factory, chain_id)
    assert (first.records, first.first_sequence, first.last_sequence) == (3, 1, 3)
    assert seal(factory, chain_id) == []  # nothing left
    write(factory, chain_id, 2)
    [second] = seal(factory, chain_id)
    assert (second.first_sequence, second.last_sequence) == (4, 5)

    rows = sealed(factory, chain_id)
    assert [r.sequence for r in rows] == [1, 2, 3, 4, 5]
    assert [r.action for r in rows[:3]] == ["test.step1", "test.step2", "test.step3"]
    assert bytes(rows[0].prev_hash) == chain.genesis_hash(chain_id)
    for before, after in itertools.pairwise(rows):
        assert bytes(after.prev_hash) == bytes(before.chain_hash)
    with factory() as session:
        anchors = session.scalars(
            select(AuditAnchor)
            .where(AuditAnchor.chain_id == chain_id)
            .order_by(AuditAnchor.last_sequence)
        ).all()
        head = session.get(AuditChain, chain_id)
        key = session.get(AuditKey, anchors[0].key_id)
    assert [(a.first_sequence, a.last_sequence) for a in anchors] == [(1, 3), (4, 5)]
    assert bytes(anchors[-1].chain_hash) == bytes(rows[-1].chain_hash)
    assert (head.last_sequence, bytes(head.last_hash)) == (5, bytes(rows[-1].chain_hash))
    public = SM2PrivateKey.from_der(
        sm4_gcm_decrypt(
            keyring.derived_key("audit-key-wrap", length=16),
            bytes(key.wrapped_private_key),
            aad=b"huinong/audit-key/" + key.id.bytes,
        )
    ).public_key
    assert public.to_hex() == key.public_key
    for anchor in anchors:
        message = chain.anchor_message(
            chain_id=chain_id,
            first_sequence=anchor.first_sequence,
            last_sequence=anchor.last_sequence,
            chain_hash=bytes(anchor.chain_hash),
            signed_at=anchor.signed_at,
        )
        assert public.verify(bytes(anchor.signature), message)
    assert verify(factory, chain_id) == []


def test_platform_records_go_to_the_platform_chain(factory):
    with transaction(factory) as session:
        audit.record(session, action="auth.sign_in", institution_id=None, outcome="denied")
    with factory() as session:
        pending = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.chain_id == chain.PLATFORM_CHAIN, AuditRecord.sequence.is_(None))
        )
    assert pending >= 1
    seal(factory, chain.PLATFORM_CHAIN)
    assert verify(factory, chain.PLATFORM_CHAIN) == []


def test_a_seal_is_capped_and_the_rest_waits_for_the_next_round(factory):
    chain_id = uuid7()
    write(factory, chain_id, 7)
    [part] = run_in_transaction(factory, lambda s: audit.seal(s, chain_id=chain_id, limit=5))
    assert (part.first_sequence, part.last_sequence) == (1, 5)
    [rest] = seal(factory, chain_id)
    assert (rest.first_sequence, rest.last_sequence) == (6, 7)
    assert verify(factory, chain_id) == []


def test_writers_and_sealers_run_concurrently_without_losing_or_doubling_a_record(factory):
    chain_id = uuid7()
    writers, per_writer = 6, 15
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(per_writer):
                run_in_transaction(
                    factory,
                    lambda s, i=i: audit.record(
                        s, action="payments.transfer", institution_id=chain_id, object_id=str(i)
                    ),
                )
        except BaseException as exc:
            errors.append(exc)

    def sealer() -> None:
        try:
            while not stop.is_set():
                seal(factory, chain_id)
        except BaseException as exc:
            errors.append(exc)

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in sealers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert errors == []
    seal(factory, chain_id)
    rows = sealed(factory, chain_id)
    assert [r.sequence for r in rows] == list(range(1, writers * per_writer + 1))
    assert verify(factory, chain_id) == []


# --------------------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "statement",
    [
        lambda rid: update(RECORDS).where(RECORDS.c.id == rid).values(outcome="denied"),
        lambda rid: update(RECORDS).where(RECORDS.c.id == rid).values(sequence=999_999),
        lambda rid: delete(RECORDS).where(RECORDS.c.id == rid),
    ],
    ids=["update-content", "update-sequence", "delete"],
)
def test_the_database_refuses_to_change_or_delete_a_sealed_record(factory, statement):
    chain_id = new_chain(factory, 2)
    target = sealed(factory, chain_id)[0].id
    with pytest.raises(DBAPIError, match="append-only"), transaction(factory) as session:
        session.execute(statement(target))
    assert verify(factory, chain_id) == []


def test_the_database_refuses_to_change_an_unsealed_record_other_than_by_sealing(factory):
    chain_id = uuid7()
    write(factory, chain_id, 1)
    target = sealed(factory, chain_id)[0].id
    with pytest.raises(DBAPIError, match="append-only"), transaction(factory) as session:
        session.execute(update(RECORDS).where(RECORDS.c.id == target).values(action="x.y"))


def test_the_database_refuses_to_change_or_delete_an_anchor(factory):
    chain_id = new_chain(factory, 1)
    for statement in (
        update(ANCHORS).where(ANCHORS.c.chain_id == chain_id).values(signature=b"\0" * 64),
        delete(ANCHORS).where(ANCHORS.c.chain_id == chain_id),
    ):
        with pytest.raises(DBAPIError, match="append-only"), transaction(factory) as session:
            session.execute(statement)
    assert verify(factory, chain_id) == []


# --------------------------------------------------------------------------- reading


def test_records_are_listed_per_institution_with_filters_and_cursor(factory):
    mine, theirs = uuid7(), uuid7()
    actor = teller(mine)
    write(factory, mine, 3, action="payments.cash_deposit", actor=actor)
    write(factory, mine, 2, action="customers.read")
    write(factory, theirs, 2, action="payments.cash_deposit")
    with factory() as session:
        everything = audit.list_records(session, institution_id=mine)
        assert len(everything) == 5
        assert {r.institution_id for r in everything} == {mine}
        deposits = audit.list_records(session, institution_id=mine, action="payments.*")
        assert [r.action for r in deposits] == ["payments.cash_deposit"] * 3
        # '_' is not a wildcard in the prefix.
        assert audit.list_records(session, institution_id=mine, action="payments_cash.*") == []
        assert len(audit.list_records(session, institution_id=mine, actor_id=actor.subject_id)) == 3
        assert [
            r.object_id
            for r in audit.list_records(
                session, institution_id=mine, object_type="payment", object_id="p1"
            )
        ] == ["p1", "p1"]
        first = audit.list_records(session, institution_id=mine, limit=2)
        rest = audit.list_records(
            session,
            institution_id=mine,
            after=(first[-1].occurred_at, first[-1].id),
            limit=10,
        )
        assert [r.id for r in first + rest] == [r.id for r in everything]
        later = audit.list_records(session, institution_id=mine, since=everything[3].occurred_at)
        assert [r.id for r in later] == [
            r.id for r in everything if r.occurred_at >= everything[3].occurred_at
        ]
        assert (
            audit.list_records(session, institution_id=mine, until=everything[0].occurred_at) == []
        )


# --------------------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def private(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """A private, freshly migrated database for the tamper tests."""
    schema = f"huinong_audit_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'tamper.db'}"
    else:
        assert POSTGRES_URL
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    upgrade(url)
    engine: Engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
    if backend == "postgresql":
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def tamper(factory: sessionmaker[Session], *statements) -> None:
    """Run statements as someone who owns the database: the triggers are dropped first."""
    with transaction(factory) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        for table in ("audit_records", "audit_anchors"):
            for trigger in ("no_delete", "no_update", "seal_only", "no_truncate"):
                suffix = f" ON {table}" if postgres else ""
                session.execute(text(f"DROP TRIGGER IF EXISTS {table}_{trigger}{suffix}"))
        for statement in statements:
            session.execute(statement)


def by_kind(findings: list[chain.Finding]) -> dict[str, list[chain.Finding]]:
    grouped: dict[str, list[chain.Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.kind, []).append(finding)
    return grouped


def test_an_altered_record_is_named(private):
    chain_id = new_chain(private, 5)
    victim = sealed(private, chain_id)[2]
    tamper(
        private,
        update(RECORDS).where(RECORDS.c.id == victim.id).values(detail={"amount_fen": 999_999_00}),
    )
    findings = verify(private, chain_id)
    assert [(f.kind, f.sequences, f.record_ids) for f in findings] == [
        ("altered", (3,), (victim.id,))
    ]
    assert str(victim.id) in findings[0].message


def test_an_altered_record_with_a_recomputed_content_hash_is_named(private):
    chain_id = new_chain(private, 4)
    victim = sealed(private, chain_id)[1]
    forged = dict(victim._mapping) | {"outcome": "denied"}
    tamper(
        private,
        update(RECORDS)
        .where(RECORDS.c.id == victim.id)
        .values(outcome="denied", content_hash=chain.content_hash(SimpleNamespace(**forged))),
    )
    assert [(f.kind, f.record_ids) for f in verify(private, chain_id)] == [
        ("altered", (victim.id,))
    ]


def test_a_removed_record_is_named(private):
    chain_id = new_chain(private, 5)
    rows = sealed(private, chain_id)
    tamper(private, delete(RECORDS).where(RECORDS.c.id == rows[1].id))
    findings = verify(private, chain_id)
    assert [(f.kind, f.sequences) for f in findings] == [("removed", (2,))]
    assert set(findings[0].record_ids) == {rows[0].id, rows[2].id}  # its neighbours


def test_removed_newest_records_are_named_by_the_head_and_the_anchor(private):
    chain_id = new_chain(private, 4)
    rows = sealed(private, chain_id)
    tamper(private, delete(RECORDS).where(RECORDS.c.id.in_([rows[2].id, rows[3].id])))
    kinds = by_kind(verify(private, chain_id))
    assert set(kinds) == {"removed"}
    assert {f.sequences for f in kinds["removed"]} == {(3, 4)}


def test_swapped_records_are_named_as_reordered(private):
    chain_id = new_chain(private, 6)
    rows = sealed(private, chain_id)
    a, b = rows[2], rows[3]
    tamper(
        private,
        update(RECORDS).where(RECORDS.c.id == a.id).values(sequence=10**12),
        update(RECORDS).where(RECORDS.c.id == b.id).values(sequence=a.sequence),
        update(RECORDS).where(RECORDS.c.id == a.id).values(sequence=b.sequence),
    )
    findings = verify(private, chain_id)
    assert {f.kind for f in findings} == {"reordered"}
    assert {record for f in findings for record in f.record_ids} == {a.id, b.id}


def test_a_bad_anchor_signature_is_named(private):
    chain_id = new_chain(private, 2, rounds=2)
    with private() as session:
        anchor = session.scalars(
            select(AuditAnchor)
            .where(AuditAnchor.chain_id == chain_id)
            .order_by(AuditAnchor.last_sequence)
        ).first()
    signature = bytearray(anchor.signature)
    signature[10] ^= 1
    tamper(
        private, update(ANCHORS).where(ANCHORS.c.id == anchor.id).values(signature=bytes(signature))
    )
    findings = verify(private, chain_id)
    assert [(f.kind, f.sequences) for f in findings] == [("anchor_signature", (2,))]
    assert str(anchor.id) in findings[0].message


def test_an_anchor_signed_by_another_key_is_named(private):
    chain_id = new_chain(private, 2)
    with private() as session:
        anchor = session.scalars(select(AuditAnchor).where(AuditAnchor.chain_id == chain_id)).one()
    message = chain.anchor_message(
        chain_id=chain_id,
        first_sequence=anchor.first_sequence,
        last_sequence=anchor.last_sequence,
        chain_hash=bytes(anchor.chain_hash),
        signed_at=anchor.signed_at,
    )
    forged = SM2PrivateKey.generate().sign(message)
    tamper(private, update(ANCHORS).where(ANCHORS.c.id == anchor.id).values(signature=forged))
    assert [f.kind for f in verify(private, chain_id)] == ["anchor_signature"]


def test_a_missing_anchor_is_named(private):
    chain_id = new_chain(private, 2, rounds=3)
    with private() as session:
        middle = session.scalars(
            select(AuditAnchor)
            .where(AuditAnchor.chain_id == chain_id)
            .order_by(AuditAnchor.last_sequence)
        ).all()[1]
    tamper(private, delete(ANCHORS).where(ANCHORS.c.id == middle.id))
    assert [(f.kind, f.sequences) for f in verify(private, chain_id)] == [
        ("anchor_missing", (3, 4))
    ]


def test_a_rewritten_chain_no_longer_matches_its_anchor(private):
    """Someone rewrites a record and recomputes every hash after it: the links agree again,
    the signed anchor does not."""
    chain_id = new_chain(private, 4)
    rows = sealed(private, chain_id)
    forged_content = dict(rows[1]._mapping) | {"detail": {"amount_fen": 1}}
    contents = [bytes(r.content_hash) for r in rows]
    contents[1] = chain.content_hash(SimpleNamespace(**forged_content))
    links = chain.seal_links(chain_id=chain_id, last_sequence=0, last_hash=None, contents=contents)
    statements = [
        update(RECORDS)
        .where(RECORDS.c.id == row.id)
        .values(content_hash=content, prev_hash=link.prev_hash, chain_hash=link.chain_hash)
        for row, content, link in zip(rows, contents, links, strict=True)
    ]
    statements[1] = statements[1].values(detail={"amount_fen": 1})
    statements.append(
        update(AuditChain.__table__)
        .where(AuditChain.__table__.c.id == chain_id)
        .values(last_hash=links[-1].chain_hash)
    )
    tamper(private, *statements)
    assert [(f.kind, f.sequences) for f in verify(private, chain_id)] == [("anchor_mismatch", (4,))]


def test_a_swapped_audit_public_key_is_named(private):
    chain_id = new_chain(private, 1)
    with private() as session:
        key = session.scalars(select(AuditKey)).one()
    original = key.public_key
    impostor = SM2PrivateKey.generate().public_key.to_hex()
    with transaction(private) as session:
        session.execute(
            update(AuditKey.__table__)
            .where(AuditKey.__table__.c.id == key.id)
            .values(public_key=impostor)
        )
    try:
        kinds = [f.kind for f in verify(private, chain_id)]
        assert kinds == ["audit_key"]
    finally:
        with transaction(private) as session:
            session.execute(
                update(AuditKey.__table__)
                .where(AuditKey.__table__.c.id == key.id)
                .values(public_key=original)
            )
    assert verify(private, chain_id) == []


def test_with_another_master_key_sealing_stops_and_verification_says_why(private, monkeypatch):
    chain_id = new_chain(private, 1)
    write(private, chain_id, 1)
    monkeypatch.setenv("HUINONG_MASTER_KEY", "ffeeddccbbaa99887766554433221100")
    get_settings.cache_clear()
    keyring.master_key.cache_clear()
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            seal(private, chain_id)
        assert refused.value.code == "audit.key_unreadable"
        assert "audit_key" in {f.kind for f in verify(private, chain_id)}
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        keyring.master_key.cache_clear()
    seal(private, chain_id)
    assert verify(private, chain_id) == []


def test_tampering_in_one_chain_leaves_the_others_intact(private):
    clean = new_chain(private, 3)
    dirty = new_chain(private, 3)
    victim = sealed(private, dirty)[0]
    tamper(private, update(RECORDS).where(RECORDS.c.id == victim.id).values(object_id="x"))
    assert verify(private, clean) == []
    with private() as session:
        everything = audit.verify(session)
    assert {f.chain_id for f in everything} >= {dirty}
    assert clean not in {f.chain_id for f in everything}
