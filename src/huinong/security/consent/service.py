"""Consent use cases: record, list and revoke consents; the guard that every read of archive
or credit data for a purpose goes through; and the purge of data whose consent has ended.

**The guard.** :func:`require_consent` answers before data of a category is used for a
purpose by a grantee institution: it returns the live consent, or raises ``Forbidden`` with
``consent.missing``, ``consent.expired`` or ``consent.revoked``. A revocation is one committed
row update, so the next check — in any worker — already refuses.

**The purge and its data holders.** Every domain that keeps data collected for a purpose
registers a *purpose data holder*: a function ``(session, customer_id, category, purpose) ->
rows deleted or anonymised``. Security cannot import the domains above it, so the registry is
here and they register into it when their service module is imported (entry points import
every domain). :func:`purge_customer` works out, with ``rules.purge_plan``, which (category,
purpose) pairs of a customer have lost their last live consent, calls every holder for each,
marks the ended consents as dealt with (so a second run does nothing) and leaves one
``consent.purged`` audit record. This module registers the first holder itself: the data
captured together with a consent (``consent_data``).

Captured values are encrypted with the versioned data keys of ``personal_data`` (rotated by
``huinong keys rotate`` with every other encrypted column).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Uuid, column, delete, distinct, func, or_, select, table
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.security.audit import service as audit
from huinong.security.consent import rules
from huinong.security.consent.models import (
    Consent,
    ConsentCategory,
    ConsentData,
    DataCategory,
    EvidenceKind,
    Purpose,
)
from huinong.security.personal_data import service as personal_data
from huinong.security.principals import Principal

# The parties domain's table, by name: only its id and institution are needed here.
_customers = table("customers", column("id", Uuid), column("institution_id", Uuid))


def _check_customer(session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    owner = session.scalar(
        select(_customers.c.institution_id).where(_customers.c.id == customer_id)
    )
    if owner is None or owner != institution_id:
        raise NotFound("consent.customer_not_found", "no such customer", field="customer_id")


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class CollectedValue:
    """A value captured with a consent, for its purpose (``name`` says what it is)."""

    category: DataCategory
    name: str
    value: str


def grant_consent(
    session: Session,
    *,
    institution_id: uuid.UUID,
    customer_id: uuid.UUID,
    categories: Sequence[DataCategory],
    purpose: Purpose,
    evidence_kind: EvidenceKind,
    evidence_reference: str,
    grantee_institution_code: str | None = None,
    expires_at: datetime | None = None,
    collected: Sequence[CollectedValue] = (),
    actor: Principal | None = None,
) -> Consent:
    """Record a consent the customer gave now. The grantee is the recording institution
    unless another one's code is named."""
    _check_customer(session, institution_id=institution_id, customer_id=customer_id)
    grantee_id = institution_id
    if grantee_institution_code is not None:
        try:
            grantee_id = institutions.get_institution_by_code(
                session, code=grantee_institution_code
            ).id
        except NotFound as exc:
            raise NotFound(
                "consent.grantee_not_found",
                "no institution with this code",
                field="grantee_institution_code",
            ) from exc
    now = clock.now()
    names = rules.check_terms(
        categories=[str(c) for c in categories], granted_at=now, expires_at=expires_at
    )
    reference = evidence_reference.strip()
    if not reference:
        raise InvalidInput(
            "consent.evidence_required",
            "say where the consent is recorded (form number, e-signature id, terminal)",
            field="evidence_reference",
        )
    for index, item in enumerate(collected):
        if str(item.category) not in names:
            raise InvalidInput(
                "consent.data_outside_consent",
                f"data of category {item.category} was collected without consent to it",
                field=f"data[{index}].category",
            )
    consent = Consent(
        id=uuid7(),
        institution_id=institution_id,
        customer_id=customer_id,
        purpose=str(purpose),
        grantee_institution_id=grantee_id,
        granted_at=now,
        expires_at=expires_at,
        revoked_at=None,
        evidence_kind=str(evidence_kind),
        evidence_reference=reference,
        recorded_by=actor.subject_id if actor is not None else None,
        purged_at=None,
    )
    consent.categories = [ConsentCategory(consent_id=consent.id, category=c) for c in names]
    session.add(consent)
    session.flush()  # the consent row first: the captured data refers to it
    for item in collected:
        row_id = uuid7()
        ciphertext, version = personal_data.encrypt(
            session, item.value, table=ConsentData.__tablename__, field="value", row_id=row_id
        )
        session.add(
            ConsentData(
                id=row_id,
                institution_id=institution_id,
                consent_id=consent.id,
                customer_id=customer_id,
                category=str(item.category),
                purpose=str(purpose),
                name=item.name,
                value_ciphertext=ciphertext,
                data_key_version=version,
                collected_at=now,
            )
        )
    audit.record(
        session,
        action="consent.granted",
        institution_id=institution_id,
        actor=actor,
        object_type="consent",
        object_id=str(consent.id),
        detail={
            "customer_id": str(customer_id),
            "purpose": str(purpose),
            "categories": names,
            "grantee_institution_id": str(grantee_id),
            "data_items": len(collected),
        },
    )
    session.flush()
    return consent


def list_consents(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> list[Consent]:
    """Every consent of a customer, oldest first (a customer has few)."""
    _check_customer(session, institution_id=institution_id, customer_id=customer_id)
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.institution_id == institution_id, Consent.customer_id == customer_id)
            .order_by(Consent.granted_at, Consent.id)
        )
    )


def get_consent(session: Session, *, institution_id: uuid.UUID, consent_id: uuid.UUID) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None or consent.institution_id != institution_id:
        raise NotFound("consent.not_found", "no such consent", field="consent_id")
    return consent


def revoke_consent(
    session: Session,
    *,
    institution_id: uuid.UUID,
    consent_id: uuid.UUID,
    actor: Principal | None = None,
) -> Consent:
    """Revoke now: from this instant the guard refuses. The row is locked first, so two
    revocations of one consent cannot both succeed."""
    consent = session.scalars(
        select(Consent)
        .where(Consent.id == consent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if consent is None or consent.institution_id != institution_id:
        raise NotFound("consent.not_found", "no such consent", field="consent_id")
    now = clock.now()
    state = rules.state_at(consent, now)
    if state is rules.ConsentState.revoked:
        raise Conflict(
            "consent.already_revoked", "the consent is revoked already", field="consent_id"
        )
    if state is rules.ConsentState.expired:
        raise Conflict(
            "consent.already_expired", "the consent has expired already", field="consent_id"
        )
    # A consent revoked before it started never was live.
    consent.revoked_at = max(now, consent.granted_at)
    audit.record(
        session,
        action="consent.revoked",
        institution_id=institution_id,
        actor=actor,
        object_type="consent",
        object_id=str(consent.id),
        detail={"customer_id": str(consent.customer_id), "purpose": consent.purpose},
    )
    session.flush()
    return consent


# --------------------------------------------------------------------------- the guard


def consent_decision(
    session: Session,
    *,
    customer_id: uuid.UUID,
    category: DataCategory | str,
    purpose: Purpose | str,
    grantee_institution_id: uuid.UUID,
    at: datetime | None = None,
) -> tuple[rules.Decision, Consent | None]:
    candidates = session.scalars(
        select(Consent)
        .join(ConsentCategory, ConsentCategory.consent_id == Consent.id)
        .where(
            Consent.customer_id == customer_id,
            Consent.purpose == str(Purpose(purpose)),
            Consent.grantee_institution_id == grantee_institution_id,
            ConsentCategory.category == str(DataCategory(category)),
        )
    )
    return rules.decide(list(candidates), at or clock.now())


def require_consent(
    session: Session,
    *,
    customer_id: uuid.UUID,
    category: DataCategory | str,
    purpose: Purpose | str,
    grantee_institution_id: uuid.UUID,
    at: datetime | None = None,
) -> Consent:
    """The live consent that allows ``grantee_institution_id`` to use the customer's data of
    ``category`` for ``purpose``; ``Forbidden`` (consent.missing / consent.expired /
    consent.revoked) when there is none. Call it before reading the data."""
    decision, consent = consent_decision(
        session,
        customer_id=customer_id,
        category=category,
        purpose=purpose,
        grantee_institution_id=grantee_institution_id,
        at=at,
    )
    if not decision.allowed or consent is None:
        raise Forbidden(decision.code or "consent.missing", decision.message)
    return consent


@dataclass(frozen=True)
class CollectedRead:
    name: str
    value: str
    collected_at: datetime


def read_collected_data(
    session: Session,
    *,
    customer_id: uuid.UUID,
    category: DataCategory | str,
    purpose: Purpose | str,
    grantee_institution_id: uuid.UUID,
    actor: Principal | None = None,
) -> list[CollectedRead]:
    """The values captured for ``purpose`` — through the guard, and audited."""
    consent = require_consent(
        session,
        customer_id=customer_id,
        category=category,
        purpose=purpose,
        grantee_institution_id=grantee_institution_id,
    )
    rows = session.scalars(
        select(ConsentData)
        .where(
            ConsentData.customer_id == customer_id,
            ConsentData.category == str(DataCategory(category)),
            ConsentData.purpose == str(Purpose(purpose)),
        )
        .order_by(ConsentData.collected_at, ConsentData.id)
    ).all()
    values = [
        CollectedRead(
            row.name,
            personal_data.unseal(
                session,
                row.value_ciphertext,
                version=row.data_key_version,
                table=ConsentData.__tablename__,
                field="value",
                row_id=row.id,
            ),
            row.collected_at,
        )
        for row in rows
    ]
    audit.record(
        session,
        action="consent.data_read",
        institution_id=grantee_institution_id,
        actor=actor,
        object_type="customer",
        object_id=str(customer_id),
        detail={
            "category": str(category),
            "purpose": str(purpose),
            "consent_id": str(consent.id),
            "values": len(values),
        },
    )
    return values


# --------------------------------------------------------------------------- the purge

PurposeDataPurger = Callable[[Session, uuid.UUID, DataCategory, Purpose], int]
_holders: dict[str, PurposeDataPurger] = {}


def register_purpose_data_holder(name: str, purger: PurposeDataPurger) -> None:
    """Register (or replace, by name) a holder of data collected for a purpose. The purger
    deletes or anonymises what it keeps for (customer, category, purpose), returns how many
    rows it touched, and returns 0 when there is nothing left (the purge may repeat)."""
    _holders[name] = purger


def purpose_data_holders() -> dict[str, PurposeDataPurger]:
    return dict(sorted(_holders.items()))


def _purge_consent_data(
    session: Session, customer_id: uuid.UUID, category: DataCategory, purpose: Purpose
) -> int:
    result = session.execute(
        delete(ConsentData.__table__).where(
            ConsentData.customer_id == customer_id,
            ConsentData.category == str(category),
            ConsentData.purpose == str(purpose),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


register_purpose_data_holder("security.consent_data", _purge_consent_data)


@dataclass(frozen=True)
class PurgeAction:
    institution_id: uuid.UUID
    customer_id: uuid.UUID
    category: str
    purpose: str
    # holder name -> rows deleted or anonymised; empty when the data was kept.
    removed: dict[str, int] = field(default_factory=dict)
    # True: another consent for the same category and purpose is live, nothing was removed.
    kept: bool = False


def _ended(at: datetime) -> ColumnElement[bool]:
    return or_(Consent.revoked_at <= at, Consent.expires_at <= at)


def customers_due_for_purge(
    session: Session,
    *,
    at: datetime | None = None,
    institution_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int = 500,
) -> list[uuid.UUID]:
    """Customers with an ended consent the purge has not dealt with, in id order."""
    at = at or clock.now()
    query = select(Consent.customer_id).distinct().where(Consent.purged_at.is_(None), _ended(at))
    if institution_id is not None:
        query = query.where(Consent.institution_id == institution_id)
    if after is not None:
        query = query.where(Consent.customer_id > after)
    return list(session.scalars(query.order_by(Consent.customer_id).limit(limit)))


def count_due_for_purge(
    session: Session, *, at: datetime | None = None, institution_id: uuid.UUID | None = None
) -> int:
    at = at or clock.now()
    query = select(func.count(distinct(Consent.customer_id))).where(
        Consent.purged_at.is_(None), _ended(at)
    )
    if institution_id is not None:
        query = query.where(Consent.institution_id == institution_id)
    return int(session.scalar(query) or 0)


def purge_customer(
    session: Session,
    *,
    customer_id: uuid.UUID,
    at: datetime | None = None,
    actor: Principal | None = None,
) -> list[PurgeAction]:
    """Remove the data collected for every purpose whose consents of this customer have all
    ended, mark the ended consents as dealt with, and audit it. Idempotent: a second call
    finds nothing to do and writes nothing."""
    at = at or clock.now()
    consents = list(
        session.scalars(
            select(Consent)
            .where(Consent.customer_id == customer_id)
            .order_by(Consent.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    plan, done = rules.purge_plan(consents, at)
    if not done:
        return []
    institution_id = done[0].institution_id
    holders = purpose_data_holders()
    actions = []
    for category, purpose in plan.purge:
        # Every holder is asked; the report names those that held something.
        counts = {
            name: purger(session, customer_id, DataCategory(category), Purpose(purpose))
            for name, purger in holders.items()
        }
        removed = {name: count for name, count in counts.items() if count}
        actions.append(PurgeAction(institution_id, customer_id, category, purpose, removed))
    for category, purpose in plan.kept:
        actions.append(PurgeAction(institution_id, customer_id, category, purpose, kept=True))
    for consent in done:
        consent.purged_at = at
    audit.record(
        session,
        action="consent.purged",
        institution_id=institution_id,
        actor=actor,
        object_type="customer",
        object_id=str(customer_id),
        detail={
            "consent_ids": [str(c.id) for c in done],
            "purged": [
                {"category": a.category, "purpose": a.purpose, "removed": a.removed}
                for a in actions
                if not a.kept
            ],
            "kept": [[a.category, a.purpose] for a in actions if a.kept],
        },
    )
    session.flush()
    return actions
