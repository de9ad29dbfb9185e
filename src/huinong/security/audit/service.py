"""The audit trail: write a record with the event, seal records into hash chains, verify.

**Writing** (:func:`record`) is on the path of every money movement, so it is cheap: it
computes the record's SM3 content hash and keeps the row on the session; at commit all of the
transaction's records are inserted in one statement (on PostgreSQL the same statement as the
transaction's other commit-time rows, ``db.write_at_commit``), so the record exists exactly
when the event's effects do and vanishes with them on rollback. It takes no lock: records are
written *unsealed* (no sequence number), so concurrent transactions never queue on a chain
head.

**Sealing** (:func:`seal`) is done apart, by the server every
``HUINONG_AUDIT_SEAL_INTERVAL_SECONDS`` (:func:`seal_forever`), by ``huinong audit seal``, and
first thing by ``huinong audit verify``. For each chain with unsealed records it locks the
chain's head row (``audit_chains``; sealers queue there, writers never do), numbers the
unsealed records consecutively in (time, id) order, links each to the one before
(``chain.link_hash``), moves the head, and ends with an anchor: the platform audit key's SM2
signature over the new head. A record committed late, with a time earlier than records
already sealed, simply joins the next seal: sequence order is sealing order.

**Chains.** One chain per institution (its id is the institution's id) and one platform
chain (``chain.PLATFORM_CHAIN``) for records of no institution. Sealing and verifying an
institution's part needs nothing of the others', an auditor checks exactly their own
institution, and the chain follows the data when tables are distributed by institution.

**The window.** A record is tamper-evident once sealed *and* anchored, which happens in the
same seal transaction: at most one seal interval (5 s by default) after its transaction
commits, plus the seal's own duration. Inside that window someone who can write to the
database directly could change or delete the unsealed row without a trace in the chain. After
it, a change breaks the chain, and rewriting the chain from that point on breaks the signed
anchor — unless the signing key is also stolen, which needs the master key, not just the
database. Deleting the newest records together with their anchors and the head row is the one
change the database alone cannot reveal; each seal logs its anchor (chain, sequence, hash) so
the log system is an outside witness of how far every chain had got.

**The audit key.** One SM2 key pair for the whole platform (``audit_keys``, name
``platform``), created on first use, its private half wrapped with SM4-GCM under
``keyring.derived_key("audit-key-wrap")``. It is separate from the institutions' platform
keys that sign responses to terminals: one key, one purpose. Verification takes the public
key from the unwrapped private key, so a swapped public key in the table is noticed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import (
    CommitWrite,
    flush_commit_writes,
    is_postgres,
    pg_execute,
    run_in_transaction,
    write_at_commit,
)
from huinong.errors import InvalidInput, ServiceUnavailable
from huinong.ids import uuid7
from huinong.logs import request_id_var
from huinong.pgarrays import unnest
from huinong.security import keyring
from huinong.security.audit import chain
from huinong.security.audit.chain import (
    PLATFORM_CHAIN,
    AnchorVerifier,
    ChainVerifier,
    Finding,
    SealedRecord,
    StoredAnchor,
    chain_of,
)
from huinong.security.audit.models import AuditAnchor, AuditChain, AuditKey, AuditRecord
from huinong.security.crypto import (
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from huinong.security.principals import Principal

log = logging.getLogger(__name__)

# Dotted lower-case names: ``payments.cash_deposit``, ``auth.sign_in``.
_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
# Records sealed per chain and transaction; more wait for the next round (which the timer
# starts at once when a round was full).
SEAL_BATCH = 10_000
VERIFY_BATCH = 2_000

# --------------------------------------------------------------------------- writing


def record(
    session: Session,
    *,
    action: str,
    institution_id: uuid.UUID | None,
    actor: Principal | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit record to the caller's transaction: it is written when the transaction
    commits, and not at all if it rolls back. ``detail`` is small and holds ids and codes,
    never personal data in clear. A bad argument is a programming error (``ValueError``),
    not the caller's input.

    The row is kept on the session and written at commit with the transaction's other
    commit-time rows (``db.write_at_commit``): a batch of a thousand transfers costs no
    statement of its own. Inside a savepoint the row is inserted at once instead, so rolling
    the savepoint back takes the record with it.
    """
    if len(action) > 64 or _ACTION.fullmatch(action) is None:
        raise ValueError(f"audit actions are dotted lower-case names, not {action!r}")
    if outcome not in chain.OUTCOMES:
        raise ValueError(f"audit outcome is one of {sorted(chain.OUTCOMES)}, not {outcome!r}")
    if object_type is not None and len(object_type) > 64:
        raise ValueError("audit object types are at most 64 characters")
    if object_id is not None and len(object_id) > 128:
        raise ValueError("audit object ids are at most 128 characters")
    chain.check_detail(detail)
    request_id = request_id_var.get()
    row: dict[str, Any] = {
        "id": uuid7(),
        "chain_id": chain_of(institution_id),
        "institution_id": institution_id,
        "occurred_at": clock.now(),
        "actor_kind": str(actor.kind) if actor is not None else None,
        "actor_id": actor.subject_id if actor is not None else None,
        "actor_display": (actor.display[:200] or None) if actor is not None else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "request_id": None if request_id == "-" else request_id[:64],
        "detail": dict(detail) if detail is not None else None,
    }
    row["content_hash"] = chain.content_hash(row)
    write_at_commit(session, _RECORDS, row)


# The columns as ``json_to_recordset`` reads them; the content hash comes as hex text.
_JSON_COLUMNS = (
    ("id", "uuid"),
    ("chain_id", "uuid"),
    ("institution_id", "uuid"),
    ("occurred_at", "timestamptz"),
    ("actor_kind", "varchar"),
    ("actor_id", "uuid"),
    ("actor_display", "varchar"),
    ("action", "varchar"),
    ("object_type", "varchar"),
    ("object_id", "varchar"),
    ("outcome", "varchar"),
    ("request_id", "varchar"),
    ("detail", "json"),
)
_NAMES = ", ".join(name for name, _ in _JSON_COLUMNS)
_RECORDS = CommitWrite(
    name="audit",
    postgres=(
        f"INSERT INTO audit_records ({_NAMES}, content_hash) "
        f"SELECT {_NAMES}, decode(content_hash, 'hex') FROM json_to_recordset(%(audit)s::json) "
        f"AS v({', '.join(f'{name} {kind}' for name, kind in _JSON_COLUMNS)}, content_hash text)"
    ),
    portable=insert(AuditRecord.__table__),
    postgres_row=lambda row: {**row, "content_hash": row["content_hash"].hex()},
)


# --------------------------------------------------------------------------- the audit key

_KEY_NAME = "platform"
# Unwrapped keys by (key id, wrapped bytes, wrapping key): a changed row or master key misses.
_unwrapped: dict[tuple[uuid.UUID, bytes, bytes], SM2PrivateKey] = {}


def _wrapping_key() -> bytes:
    return keyring.derived_key("audit-key-wrap", length=16)


def _key_aad(key_id: uuid.UUID) -> bytes:
    return b"huinong/audit-key/" + key_id.bytes


def _unwrap(row: AuditKey) -> SM2PrivateKey:
    wrapping_key = _wrapping_key()
    cache_key = (row.id, bytes(row.wrapped_private_key), wrapping_key)
    private = _unwrapped.get(cache_key)
    if private is None:
        der = sm4_gcm_decrypt(wrapping_key, cache_key[1], aad=_key_aad(row.id))
        private = SM2PrivateKey.from_der(der)
        _unwrapped[cache_key] = private
    return private


def signing_key(session: Session) -> tuple[uuid.UUID, SM2PrivateKey]:
    """The platform audit key, created on first use."""
    row = session.scalar(select(AuditKey).where(AuditKey.name == _KEY_NAME))
    if row is None:
        private = SM2PrivateKey.generate()
        key_id = uuid7()
        row = AuditKey(
            id=key_id,
            name=_KEY_NAME,
            public_key=private.public_key.to_hex(),
            wrapped_private_key=sm4_gcm_encrypt(
                _wrapping_key(), private.to_der(), aad=_key_aad(key_id)
            ),
            created_at=clock.now(),
        )
        session.add(row)
        session.flush()  # a racing first seal fails here on the unique name and is retried
        log.info("created the platform audit key %s", private.public_key.fingerprint())
        return key_id, private
    try:
        return row.id, _unwrap(row)
    except CryptoError as exc:
        raise ServiceUnavailable(
            "audit.key_unreadable",
            "the platform audit key cannot be unwrapped with this master key",
        ) from exc


def public_key_fingerprint(session: Session) -> str | None:
    row = session.scalar(select(AuditKey).where(AuditKey.name == _KEY_NAME))
    return None if row is None else SM2PublicKey.from_hex(row.public_key).fingerprint()


# --------------------------------------------------------------------------- sealing


@dataclass(frozen=True)
class SealedChain:
    chain_id: uuid.UUID
    institution_id: uuid.UUID | None
    records: int
    first_sequence: int
    last_sequence: int
    chain_hash: bytes


def _lock_head(session: Session, chain_id: uuid.UUID) -> AuditChain:
    head = session.scalars(
        select(AuditChain)
        .where(AuditChain.id == chain_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if head is None:
        head = AuditChain(
            id=chain_id,
            institution_id=None if chain_id == PLATFORM_CHAIN else chain_id,
            last_sequence=0,
            last_hash=None,
            sealed_at=None,
        )
        session.add(head)
        session.flush()  # two first seals of one chain: one fails here and is retried
    return head


def seal(
    session: Session, *, chain_id: uuid.UUID | None = None, limit: int = SEAL_BATCH
) -> list[SealedChain]:
    """Seal up to ``limit`` unsealed records of each chain (or of ``chain_id`` only), in the
    caller's transaction; one anchor per chain sealed. Heads are locked in chain-id order, so
    concurrent sealers cannot deadlock."""
    flush_commit_writes(session)
    pending = select(AuditRecord.chain_id).distinct().where(AuditRecord.sequence.is_(None))
    if chain_id is not None:
        pending = pending.where(AuditRecord.chain_id == chain_id)
    chain_ids = sorted(session.scalars(pending))
    if not chain_ids:
        return []
    key_id, private_key = signing_key(session)
    sealed = []
    for current in chain_ids:
        head = _lock_head(session, current)
        rows = session.execute(
            select(AuditRecord.id, AuditRecord.content_hash)
            .where(AuditRecord.chain_id == current, AuditRecord.sequence.is_(None))
            .order_by(AuditRecord.occurred_at, AuditRecord.id)
            .limit(limit)
        ).all()
        if not rows:  # another sealer got there first
            continue
        links = chain.seal_links(
            chain_id=current,
            last_sequence=head.last_sequence,
            last_hash=head.last_hash,
            contents=[row.content_hash for row in rows],
        )
        _write_links(session, [row.id for row in rows], links)
        first, last = links[0], links[-1]
        signed_at = clock.now()
        message = chain.anchor_message(
            chain_id=current,
            first_sequence=first.sequence,
            last_sequence=last.sequence,
            chain_hash=last.chain_hash,
            signed_at=signed_at,
        )
        session.add(
            AuditAnchor(
                id=uuid7(),
                chain_id=current,
                first_sequence=first.sequence,
                last_sequence=last.sequence,
                chain_hash=last.chain_hash,
                signed_at=signed_at,
                key_id=key_id,
                signature=private_key.sign(message),
            )
        )
        head.last_sequence = last.sequence
        head.last_hash = last.chain_hash
        head.sealed_at = signed_at
        sealed.append(
            SealedChain(
                current,
                head.institution_id,
                len(rows),
                first.sequence,
                last.sequence,
                last.chain_hash,
            )
        )
    session.flush()
    return sealed


# One statement for the whole seal on PostgreSQL, where an UPDATE per record would cost a
# round trip's worth of work each.
_PG_WRITE_LINKS = f"""
UPDATE audit_records AS r
SET sequence = v.sequence, prev_hash = v.prev_hash, chain_hash = v.chain_hash
FROM {
    unnest(("id", "uuid"), ("sequence", "bigint"), ("prev_hash", "bytea"), ("chain_hash", "bytea"))
} AS v(id, sequence, prev_hash, chain_hash)
WHERE r.id = v.id
"""


def _write_links(session: Session, ids: list[uuid.UUID], links: list[chain.Link]) -> None:
    if is_postgres(session):
        pg_execute(
            session,
            _PG_WRITE_LINKS,
            {
                "id": ids,
                "sequence": [link.sequence for link in links],
                "prev_hash": [link.prev_hash for link in links],
                "chain_hash": [link.chain_hash for link in links],
            },
        )
        return
    session.execute(
        update(AuditRecord),
        [
            {
                "id": record_id,
                "sequence": link.sequence,
                "prev_hash": link.prev_hash,
                "chain_hash": link.chain_hash,
            }
            for record_id, link in zip(ids, links, strict=True)
        ],
    )


def log_anchors(sealed: list[SealedChain]) -> None:
    """Log each new anchor: the log system keeps an outside copy of every chain's progress."""
    for item in sealed:
        log.info(
            "audit chain %s sealed %d records: head %d %s",
            item.chain_id,
            item.records,
            item.last_sequence,
            item.chain_hash.hex(),
        )


def seal_all(
    factory: sessionmaker[Session], *, chain_id: uuid.UUID | None = None
) -> list[SealedChain]:
    """Seal until nothing is left, one transaction per round (an entry point's helper)."""
    sealed: list[SealedChain] = []
    while True:
        round_ = run_in_transaction(factory, lambda s: seal(s, chain_id=chain_id))
        log_anchors(round_)
        sealed.extend(round_)
        if not any(item.records == SEAL_BATCH for item in round_):
            return sealed


async def seal_forever(factory: sessionmaker[Session], interval: float) -> None:
    """The server's sealing timer: start it as a task in the application's lifespan."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(seal_all, factory)
        except Exception:  # the timer must survive a bad round; the next one retries
            log.exception("audit sealing failed")


# --------------------------------------------------------------------------- verification


@dataclass
class ChainReport:
    chain_id: uuid.UUID
    institution_id: uuid.UUID | None
    records: int = 0
    last_sequence: int = 0
    anchors: int = 0
    unsealed: int = 0
    findings: list[Finding] = field(default_factory=list)


def _public_keys(session: Session) -> tuple[dict[uuid.UUID, SM2PublicKey], list[Finding]]:
    keys: dict[uuid.UUID, SM2PublicKey] = {}
    findings = []
    for row in session.scalars(select(AuditKey).order_by(AuditKey.id)):
        try:
            public = _unwrap(row).public_key
        except CryptoError:
            findings.append(
                Finding(
                    "audit_key",
                    PLATFORM_CHAIN,
                    f"audit key {row.id} cannot be unwrapped with this master key: its wrapped "
                    "private key was altered, or the master key is not the platform's",
                )
            )
            continue
        if public.to_hex() != row.public_key:
            findings.append(
                Finding(
                    "audit_key",
                    PLATFORM_CHAIN,
                    f"audit key {row.id}: the stored public key is not the private key's",
                )
            )
        keys[row.id] = public
    return keys, findings


def _chain_ids(session: Session) -> list[uuid.UUID]:
    found: set[uuid.UUID] = set(session.scalars(select(AuditChain.id)))
    found.update(session.scalars(select(AuditRecord.chain_id).distinct()))
    found.update(session.scalars(select(AuditAnchor.chain_id).distinct()))
    return sorted(found)


def _verify_records(
    session: Session,
    verifier: ChainVerifier,
    *,
    batch: int,
    on_records: Callable[[int], None] | None,
) -> None:
    table = AuditRecord.__table__
    after = 0
    while True:
        rows = session.execute(
            select(table)
            .where(table.c.chain_id == verifier.chain_id, table.c.sequence > after)
            .order_by(table.c.sequence)
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            verifier.feed(
                SealedRecord(
                    id=row.id,
                    sequence=row.sequence,
                    content_hash=bytes(row.content_hash or b""),
                    actual_hash=chain.content_hash(row),  # type: ignore[arg-type]
                    prev_hash=bytes(row.prev_hash or b""),
                    chain_hash=bytes(row.chain_hash or b""),
                )
            )
        after = rows[-1].sequence
        if on_records is not None:
            on_records(len(rows))


def _verify_anchors(
    session: Session,
    verifier: AnchorVerifier,
    *,
    keys: Mapping[uuid.UUID, SM2PublicKey],
    last_record_sequence: int,
    batch: int,
) -> None:
    anchors = AuditAnchor.__table__
    records = AuditRecord.__table__
    after = 0
    while True:
        rows = session.execute(
            select(anchors, records.c.chain_hash.label("record_hash"))
            .select_from(
                anchors.outerjoin(
                    records,
                    and_(
                        records.c.chain_id == anchors.c.chain_id,
                        records.c.sequence == anchors.c.last_sequence,
                    ),
                )
            )
            .where(anchors.c.chain_id == verifier.chain_id, anchors.c.last_sequence > after)
            .order_by(anchors.c.last_sequence)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            public = keys.get(row.key_id)
            message = chain.anchor_message(
                chain_id=row.chain_id,
                first_sequence=row.first_sequence,
                last_sequence=row.last_sequence,
                chain_hash=bytes(row.chain_hash),
                signed_at=row.signed_at,
            )
            verifier.feed(
                StoredAnchor(
                    id=row.id,
                    first_sequence=row.first_sequence,
                    last_sequence=row.last_sequence,
                    chain_hash=bytes(row.chain_hash),
                    signature_valid=public is not None
                    and public.verify(bytes(row.signature), message),
                    record_hash=None if row.record_hash is None else bytes(row.record_hash),
                ),
                last_record_sequence=last_record_sequence,
            )
        after = rows[-1].last_sequence
    verifier.finish(last_record_sequence=last_record_sequence)


def verify_chains(
    session: Session,
    *,
    chain_id: uuid.UUID | None = None,
    batch: int = VERIFY_BATCH,
    on_records: Callable[[int], None] | None = None,
) -> tuple[list[ChainReport], list[Finding]]:
    """Verify every chain (or ``chain_id`` only): per-chain reports, and the findings about
    the audit key itself. ``on_records(n)`` is told as records are checked (progress)."""
    flush_commit_writes(session)
    keys, key_findings = _public_keys(session)
    chain_ids = [chain_id] if chain_id is not None else _chain_ids(session)
    reports = []
    for current in chain_ids:
        records = ChainVerifier(current)
        _verify_records(session, records, batch=batch, on_records=on_records)
        head = session.get(AuditChain, current)
        records.check_head(None if head is None else (head.last_sequence, head.last_hash))
        anchors = AnchorVerifier(current)
        _verify_anchors(
            session,
            anchors,
            keys=keys,
            last_record_sequence=records.last_sequence,
            batch=batch,
        )
        unsealed = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.chain_id == current, AuditRecord.sequence.is_(None))
        )
        reports.append(
            ChainReport(
                chain_id=current,
                institution_id=None if current == PLATFORM_CHAIN else current,
                records=records.records,
                last_sequence=records.last_sequence,
                anchors=anchors.anchors,
                unsealed=int(unsealed or 0),
                findings=records.findings + anchors.findings,
            )
        )
    return reports, key_findings


def verify(session: Session, *, chain_id: uuid.UUID | None = None) -> list[Finding]:
    """Every finding about the sealed audit trail (of one chain, or all); empty when intact.
    Unsealed records are not covered: seal first."""
    reports, key_findings = verify_chains(session, chain_id=chain_id)
    return key_findings + [finding for report in reports for finding in report.findings]


def sealed_count(session: Session, *, chain_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(AuditRecord).where(AuditRecord.sequence.is_not(None))
    if chain_id is not None:
        query = query.where(AuditRecord.chain_id == chain_id)
    return int(session.scalar(query) or 0)


# --------------------------------------------------------------------------- reading


def list_records(
    session: Session,
    *,
    institution_id: uuid.UUID,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """An institution's records in (time, id) order. ``action`` is a name, or a prefix
    ending in ``.*`` (``payments.*``); ``since`` is inclusive, ``until`` exclusive."""
    flush_commit_writes(session)
    query = select(AuditRecord).where(AuditRecord.institution_id == institution_id)
    if action is not None:
        if action.endswith(".*"):
            query = query.where(AuditRecord.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(AuditRecord.action == action)
    if actor_id is not None:
        query = query.where(AuditRecord.actor_id == actor_id)
    if object_type is not None:
        query = query.where(AuditRecord.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditRecord.object_id == object_id)
    if outcome is not None:
        if outcome not in chain.OUTCOMES:
            raise InvalidInput(
                "audit.unknown_outcome",
                f"the outcome is one of {', '.join(sorted(chain.OUTCOMES))}",
                field="outcome",
            )
        query = query.where(AuditRecord.outcome == outcome)
    if since is not None:
        query = query.where(AuditRecord.occurred_at >= since)
    if until is not None:
        query = query.where(AuditRecord.occurred_at < until)
    if after is not None:
        stamp, last_id = after
        query = query.where(
            (AuditRecord.occurred_at > stamp)
            | and_(AuditRecord.occurred_at == stamp, AuditRecord.id > last_id)
        )
    query = query.order_by(AuditRecord.occurred_at, AuditRecord.id).limit(limit)
    return list(session.scalars(query))
