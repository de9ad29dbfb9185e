"""The audit trail (read by auditors): the records of the caller's institution, and a check of
its hash chain. Reading the trail is itself audited."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_position, encode_position, utc_time
from huinong.security.audit import service
from huinong.security.audit.chain import chain_of
from huinong.security.audit.models import AuditRecord
from huinong.security.audit.schemas import (
    AuditActor,
    AuditObject,
    AuditRecordPage,
    AuditRecordRead,
    FindingRead,
    VerificationRead,
)

router = APIRouter(tags=["audit"])

Text = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


def record_read(row: AuditRecord) -> AuditRecordRead:
    return AuditRecordRead(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=(
            AuditActor(kind=row.actor_kind, id=row.actor_id, display=row.actor_display)
            if row.actor_kind is not None
            else None
        ),
        action=row.action,
        object=(
            AuditObject(type=row.object_type, id=row.object_id)
            if row.object_type is not None
            else None
        ),
        outcome=row.outcome,
        request_id=row.request_id,
        detail=row.detail,
        sequence=row.sequence,
        chain_hash=row.chain_hash.hex() if row.chain_hash is not None else None,
    )


@router.get("/audit-records", response_model=AuditRecordPage)
def list_audit_records(
    principal: PrincipalDep,
    database: DatabaseDep,
    action: Annotated[
        str | None,
        Query(
            max_length=66,
            pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$",
            description="an action, or a prefix ending in .* (payments.*)",
        ),
    ] = None,
    actor_id: uuid.UUID | None = None,
    object_type: Text = None,
    object_id: Text = None,
    outcome: Literal["ok", "denied", "failed"] | None = None,
    since: Annotated[datetime | None, Query(description="inclusive")] = None,
    until: Annotated[datetime | None, Query(description="exclusive")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_position(cursor)
    start = utc_time(since, field="since") if since is not None else None
    end = utc_time(until, field="until") if until is not None else None
    filters = {
        "action": action,
        "actor_id": actor_id,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "since": start,
        "until": end,
    }

    def unit(session):  # type: ignore[no-untyped-def]
        rows = service.list_records(
            session,
            institution_id=principal.institution_id,
            action=action,
            actor_id=actor_id,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            since=start,
            until=end,
            after=after,
            limit=limit,
        )
        # Which filters, not their values: an object id may be an account number.
        service.record(
            session,
            action="audit.records_read",
            institution_id=principal.institution_id,
            actor=principal,
            detail={
                "filters": sorted(name for name, value in filters.items() if value is not None),
                "returned": len(rows),
            },
        )
        return [record_read(row) for row in rows]

    items = database.run(unit)
    last = items[-1] if len(items) == limit else None
    return AuditRecordPage(
        items=items,
        next_cursor=encode_position(last.occurred_at, last.id) if last else None,
    )


@router.get("/audit/verification", response_model=VerificationRead)
def verify_audit_chain(principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Check the hash chain of the caller's institution: every sealed record, link, anchor
    signature and the chain head. Records not sealed yet are counted, not checked."""
    chain_id = chain_of(principal.institution_id)

    def unit(session):  # type: ignore[no-untyped-def]
        reports, key_findings = service.verify_chains(session, chain_id=chain_id)
        report = reports[0]
        findings = key_findings + report.findings
        service.record(
            session,
            action="audit.verified",
            institution_id=principal.institution_id,
            actor=principal,
            outcome="ok" if not findings else "failed",
            detail={"records": report.records, "findings": len(findings)},
        )
        return VerificationRead(
            chain_id=chain_id,
            intact=not findings,
            records=report.records,
            last_sequence=report.last_sequence,
            anchors=report.anchors,
            unsealed=report.unsealed,
            audit_key_fingerprint=service.public_key_fingerprint(session),
            findings=[
                FindingRead(
                    kind=f.kind,
                    message=f.message,
                    sequences=list(f.sequences),
                    record_ids=list(f.record_ids),
                )
                for f in findings
            ],
        )

    return database.run(unit)
