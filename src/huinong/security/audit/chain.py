"""The hash chain of the audit trail: canonical content, links, anchors, and verification.

Pure functions (no database): the service feeds them rows and stores what they return.

* **Content hash.** A record's content (who, institution, action, object, outcome, time,
  request id, detail) is serialised canonically — a JSON array in a fixed field order, keys
  of the detail sorted, no spaces, UTF-8, times as UTC with microseconds — and hashed with
  SM3. ``record()`` computes it when the record is written.
* **Link.** Sealing gives the record a sequence number in its chain and
  ``chain_hash = SM3(tag || prev_hash || sequence || content_hash)``, where ``prev_hash`` is
  the chain hash of the record before it; the first record of a chain follows a genesis hash
  made from the chain's id, so a chain cannot be passed off as another institution's.
  Because the sequence is inside the link, moving a record changes what its hash should be.
* **Anchor.** Each seal ends with an anchor: the platform audit key's SM2 signature over
  (chain, first and last sequence it covers, the chain hash at the last, time). Anchors of a
  chain are contiguous — each starts right after the one before — so a deleted anchor leaves
  a hole, and a rewritten stretch of the chain no longer matches the signed hash.

What verification reports (:class:`Finding` ``kind``):

``altered``       the record's content no longer hashes to its content hash, or its chain
                  hash does not follow from its own predecessor hash, sequence and content
``removed``       sequence numbers are missing (in the middle, or at the end the chain head
                  or an anchor vouches for)
``reordered``     the record is not where it was sealed: its sequence and predecessor do not
                  give its chain hash, and it does not follow the record now before it
``chain_break``   an intact record does not follow the intact record before it: the chain
                  was rewritten between them
``anchor_signature`` an anchor's signature is bad, or made with a key the platform lacks
``anchor_mismatch``  an anchor's signed hash is not the chain hash at its sequence
``anchor_missing``   sealed records no anchor covers, or a hole between anchors
``head_mismatch``    the chain's stored head (last sequence and hash) disagrees with the
                     records
``audit_key``        the stored audit key cannot be unwrapped, or its public half was swapped

Consequences are not repeated: once a record is reported altered or moved, the break it
causes in the link of its intact successor is not reported a second time.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from huinong.security.crypto import sm3

CONTENT_VERSION = "huinong-audit/1"
_GENESIS_TAG = b"huinong-audit-genesis/1"
_LINK_TAG = b"huinong-audit-link/1"
_ANCHOR_TAG = b"huinong-audit-anchor/1"

HASH_BYTES = 32

# The chain of records that belong to no institution (a sign-in with an unknown username,
# platform administration).
PLATFORM_CHAIN = uuid.UUID(int=0)

OUTCOMES = frozenset({"ok", "denied", "failed"})


def chain_of(institution_id: uuid.UUID | None) -> uuid.UUID:
    """The chain a record of this institution goes to: one chain per institution."""
    return PLATFORM_CHAIN if institution_id is None else institution_id


class AuditContent(Protocol):
    """What is hashed of a record. The ORM model and a plain row both have these fields."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def institution_id(self) -> uuid.UUID | None: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor_kind(self) -> str | None: ...
    @property
    def actor_id(self) -> uuid.UUID | None: ...
    @property
    def actor_display(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def object_type(self) -> str | None: ...
    @property
    def object_id(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def detail(self) -> Mapping[str, Any] | None: ...


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times are timezone-aware")
    # isoformat of a UTC time ends in "+00:00"; written with a Z, always with microseconds.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def check_detail(detail: Mapping[str, Any] | None) -> None:
    """A detail must survive a round trip through a JSON column unchanged, or its hash would
    not verify: string keys; strings, integers, booleans, null, lists and objects only —
    no floats (money never floats, and nothing else here needs them)."""

    def check(value: Any) -> None:
        if value is None or isinstance(value, str | bool | int):
            return
        if isinstance(value, list):
            for item in value:
                check(item)
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError("audit detail keys are strings")
                check(item)
            return
        raise ValueError(f"audit detail values are JSON scalars, lists or objects, not {value!r}")

    if detail is not None:
        check(dict(detail))


_CONTENT_FIELDS = (
    "id",
    "institution_id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_display",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "request_id",
    "detail",
)


def canonical_content(record: AuditContent | Mapping[str, Any]) -> bytes:
    """The bytes a record's content hash covers; ``record`` has the content fields as
    attributes (a model, a row) or as keys (the row ``record()`` is about to insert)."""
    if isinstance(record, Mapping):
        v = record
    else:
        v = {name: getattr(record, name) for name in _CONTENT_FIELDS}
    fields = [
        CONTENT_VERSION,
        str(v["id"]),
        _text(v["institution_id"]),
        _utc(v["occurred_at"]),
        v["actor_kind"],
        _text(v["actor_id"]),
        v["actor_display"],
        v["action"],
        v["object_type"],
        v["object_id"],
        v["outcome"],
        v["request_id"],
        v["detail"],
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def content_hash(record: AuditContent | Mapping[str, Any]) -> bytes:
    return sm3(canonical_content(record))


def genesis_hash(chain_id: uuid.UUID) -> bytes:
    return sm3(_GENESIS_TAG + chain_id.bytes)


def link_hash(prev_hash: bytes, sequence: int, content: bytes) -> bytes:
    """The chain hash of the record at ``sequence`` with content hash ``content``."""
    return sm3(_LINK_TAG + prev_hash + sequence.to_bytes(8, "big") + content)


@dataclass(frozen=True)
class Link:
    sequence: int
    prev_hash: bytes
    chain_hash: bytes


def seal_links(
    *, chain_id: uuid.UUID, last_sequence: int, last_hash: bytes | None, contents: Iterable[bytes]
) -> list[Link]:
    """Links for the next records of a chain whose head is (``last_sequence``,
    ``last_hash``), given their content hashes in sealing order."""
    prev = last_hash if last_hash is not None else genesis_hash(chain_id)
    links = []
    sequence = last_sequence
    for content in contents:
        sequence += 1
        chained = link_hash(prev, sequence, content)
        links.append(Link(sequence, prev, chained))
        prev = chained
    return links


def anchor_message(
    *,
    chain_id: uuid.UUID,
    first_sequence: int,
    last_sequence: int,
    chain_hash: bytes,
    signed_at: datetime,
) -> bytes:
    """The bytes an anchor's SM2 signature covers."""
    return b"|".join(
        [
            _ANCHOR_TAG,
            str(chain_id).encode(),
            str(first_sequence).encode(),
            str(last_sequence).encode(),
            chain_hash.hex().encode(),
            _utc(signed_at).encode(),
        ]
    )


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Finding:
    kind: str
    chain_id: uuid.UUID
    message: str
    sequences: tuple[int, ...] = ()
    record_ids: tuple[uuid.UUID, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}: chain {self.chain_id}: {self.message}"


@dataclass(frozen=True)
class SealedRecord:
    """A sealed record as stored: ``content_hash`` is the stored hash, ``actual_hash`` the
    hash of the stored content recomputed now."""

    id: uuid.UUID
    sequence: int
    content_hash: bytes
    actual_hash: bytes
    prev_hash: bytes
    chain_hash: bytes


def _few(sequences: Iterable[int]) -> tuple[int, ...]:
    """At most the first 1,000 sequences of a finding: the message gives the whole span."""
    return tuple(itertools.islice(sequences, 1000))


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


class ChainVerifier:
    """Checks one chain's sealed records, fed in sequence order (streaming: the memory it
    needs does not grow with the chain)."""

    def __init__(self, chain_id: uuid.UUID) -> None:
        self.chain_id = chain_id
        self.findings: list[Finding] = []
        self.records = 0
        self.last_sequence = 0
        self.last_hash: bytes | None = None
        self._expected_prev = genesis_hash(chain_id)
        self._last_id: uuid.UUID | None = None
        self._last_intact = True

    def _find(self, kind: str, message: str, sequences: Iterable[int], ids: Iterable[Any]) -> None:
        self.findings.append(
            Finding(kind, self.chain_id, message, _few(sequences), tuple(i for i in ids if i))
        )

    def feed(self, record: SealedRecord) -> None:
        self.records += 1
        sequence = record.sequence
        content_intact = record.actual_hash == record.content_hash
        link_intact = link_hash(record.prev_hash, sequence, record.content_hash) == (
            record.chain_hash
        )
        follows = record.prev_hash == self._expected_prev
        gap = sequence > self.last_sequence + 1

        if not content_intact:
            self._find(
                "altered",
                f"record {record.id} at sequence {sequence}: its content was changed after it "
                "was written (the content no longer matches its hash)",
                [sequence],
                [record.id],
            )
        if gap:
            first, last = self.last_sequence + 1, sequence - 1
            after = f"record {self._last_id}" if self._last_id else "the start of the chain"
            self._find(
                "removed",
                f"sequence {_span(first, last)} missing, between {after} and record {record.id}",
                range(first, last + 1),
                [self._last_id, record.id],
            )
        elif sequence <= self.last_sequence:
            self._find(
                "reordered",
                f"record {record.id} repeats sequence {sequence}",
                [sequence],
                [record.id],
            )
        if content_intact and not link_intact:
            if follows:
                self._find(
                    "altered",
                    f"record {record.id} at sequence {sequence}: its hashes were changed (its "
                    "chain hash does not follow from its content)",
                    [sequence],
                    [record.id],
                )
            else:
                self._find(
                    "reordered",
                    f"record {record.id} now at sequence {sequence} was not sealed there (its "
                    "chain hash does not follow from this position)",
                    [sequence],
                    [record.id],
                )
        elif not follows and not gap and content_intact and self._last_intact:
            self._find(
                "chain_break",
                f"record {record.id} at sequence {sequence} does not follow record "
                f"{self._last_id} at sequence {self.last_sequence}: the chain was rewritten "
                "between them",
                [self.last_sequence, sequence],
                [self._last_id, record.id],
            )

        self._expected_prev = record.chain_hash
        self._last_id = record.id
        self._last_intact = content_intact and link_intact
        self.last_sequence = max(self.last_sequence, sequence)
        self.last_hash = record.chain_hash

    def check_head(self, head: tuple[int, bytes] | None) -> None:
        """Compare the chain's stored head (``None`` when the chain state row is gone)."""
        if head is None:
            if self.records:
                self._find(
                    "head_mismatch",
                    "the chain has sealed records but no stored head",
                    [self.last_sequence],
                    [],
                )
            return
        head_sequence, head_hash = head
        if head_sequence > self.last_sequence:
            self._find(
                "removed",
                f"sequence {_span(self.last_sequence + 1, head_sequence)} missing at the end of "
                f"the chain (its head is at {head_sequence})",
                range(self.last_sequence + 1, head_sequence + 1),
                [self._last_id],
            )
        elif head_sequence < self.last_sequence or head_hash != self.last_hash:
            self._find(
                "head_mismatch",
                f"the stored head (sequence {head_sequence}) does not match the last record "
                f"(sequence {self.last_sequence})",
                [self.last_sequence],
                [self._last_id],
            )


@dataclass(frozen=True)
class StoredAnchor:
    id: uuid.UUID
    first_sequence: int
    last_sequence: int
    chain_hash: bytes
    signature_valid: bool
    # The chain hash of the record stored at ``last_sequence`` (None: no such record).
    record_hash: bytes | None


class AnchorVerifier:
    """Checks one chain's anchors, fed in order of their last sequence."""

    def __init__(self, chain_id: uuid.UUID) -> None:
        self.chain_id = chain_id
        self.findings: list[Finding] = []
        self.anchors = 0
        self.covered = 0

    def _find(self, kind: str, message: str, sequences: Iterable[int]) -> None:
        self.findings.append(Finding(kind, self.chain_id, message, _few(sequences)))

    def feed(self, anchor: StoredAnchor, *, last_record_sequence: int) -> None:
        self.anchors += 1
        span = _span(anchor.first_sequence, anchor.last_sequence)
        if anchor.first_sequence > self.covered + 1:
            self._find(
                "anchor_missing",
                f"no anchor covers sequence {_span(self.covered + 1, anchor.first_sequence - 1)} "
                "(an anchor was removed)",
                range(self.covered + 1, anchor.first_sequence),
            )
        elif anchor.first_sequence <= self.covered:
            self._find(
                "anchor_mismatch",
                f"anchor {anchor.id} for sequence {span} overlaps the anchor before it",
                [anchor.first_sequence],
            )
        if not anchor.signature_valid:
            self._find(
                "anchor_signature",
                f"anchor {anchor.id} for sequence {span}: the signature is not the platform "
                "audit key's over what the anchor says",
                [anchor.last_sequence],
            )
        elif anchor.record_hash is None:
            if anchor.last_sequence > last_record_sequence:
                first = max(last_record_sequence + 1, anchor.first_sequence)
                self._find(
                    "removed",
                    f"sequence {_span(first, anchor.last_sequence)} missing: the anchor "
                    f"{anchor.id} vouches for records up to {anchor.last_sequence}",
                    range(first, anchor.last_sequence + 1),
                )
            # A hole inside the chain is reported by the chain check already.
        elif anchor.record_hash != anchor.chain_hash:
            self._find(
                "anchor_mismatch",
                f"anchor {anchor.id} signed chain hash {anchor.chain_hash.hex()[:16]}… at "
                f"sequence {anchor.last_sequence}, the chain has "
                f"{anchor.record_hash.hex()[:16]}… there: records up to it were rewritten",
                [anchor.last_sequence],
            )
        self.covered = max(self.covered, anchor.last_sequence)

    def finish(self, *, last_record_sequence: int) -> None:
        if last_record_sequence > self.covered:
            self._find(
                "anchor_missing",
                f"sequence {_span(self.covered + 1, last_record_sequence)} sealed but covered "
                "by no anchor",
                range(self.covered + 1, last_record_sequence + 1),
            )
