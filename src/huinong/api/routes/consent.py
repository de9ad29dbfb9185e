"""Consent records of customers: record, list, revoke, and check before using data."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from huinong import clock
from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import utc_time
from huinong.security.consent import rules, service
from huinong.security.consent.models import Consent, DataCategory, EvidenceKind, Purpose
from huinong.security.consent.schemas import (
    ConsentCheck,
    ConsentCheckRead,
    ConsentCreate,
    ConsentList,
    ConsentRead,
    EvidenceRead,
)

router = APIRouter(tags=["consent"])


def consent_read(consent: Consent) -> ConsentRead:
    return ConsentRead(
        id=consent.id,
        customer_id=consent.customer_id,
        categories=[DataCategory(c) for c in consent.category_names],
        purpose=Purpose(consent.purpose),
        grantee_institution_id=consent.grantee_institution_id,
        granted_at=consent.granted_at,
        expires_at=consent.expires_at,
        revoked_at=consent.revoked_at,
        state=rules.state_at(consent, clock.now()),
        evidence=EvidenceRead(
            kind=EvidenceKind(consent.evidence_kind), reference=consent.evidence_reference
        ),
        purged_at=consent.purged_at,
    )


@router.post("/customers/{customer_id}/consents", status_code=201, response_model=ConsentRead)
def grant_consent(
    customer_id: uuid.UUID, body: ConsentCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    expires_at = utc_time(body.expires_at, field="expires_at") if body.expires_at else None
    collected = [
        service.CollectedValue(category=item.category, name=item.name, value=item.value)
        for item in body.data
    ]
    return database.run(
        lambda s: consent_read(
            service.grant_consent(
                s,
                institution_id=principal.institution_id,
                customer_id=customer_id,
                categories=body.categories,
                purpose=body.purpose,
                evidence_kind=body.evidence.kind,
                evidence_reference=body.evidence.reference,
                grantee_institution_code=body.grantee_institution_code,
                expires_at=expires_at,
                collected=collected,
                actor=principal,
            )
        )
    )


@router.get("/customers/{customer_id}/consents", response_model=ConsentList)
def list_consents(customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    items = database.run(
        lambda s: [
            consent_read(c)
            for c in service.list_consents(
                s, institution_id=principal.institution_id, customer_id=customer_id
            )
        ]
    )
    return ConsentList(items=items)


@router.post("/consents/{consent_id}/revocation", response_model=ConsentRead)
def revoke_consent(consent_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Revoke at once: from this response on, the consent allows nothing."""
    return database.run(
        lambda s: consent_read(
            service.revoke_consent(
                s, institution_id=principal.institution_id, consent_id=consent_id, actor=principal
            )
        )
    )


@router.post("/consents/check", response_model=ConsentCheckRead)
def check_consent(body: ConsentCheck, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Whether the caller's institution may use the customer's data of a category for a
    purpose now. The answer is 200 either way; ``code`` says why not."""

    def unit(session):  # type: ignore[no-untyped-def]
        decision, consent = service.consent_decision(
            session,
            customer_id=body.customer_id,
            category=body.category,
            purpose=body.purpose,
            grantee_institution_id=principal.institution_id,
        )
        return ConsentCheckRead(
            allowed=decision.allowed,
            code=decision.code,
            message=decision.message,
            consent_id=consent.id if consent is not None and decision.allowed else None,
        )

    return database.run(unit)
