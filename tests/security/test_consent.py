"""Consent on both databases: recording, the guard, revocation at once, the data captured
with a consent, and the purge after a consent ends."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions.models import Institution
from huinong.parties import service as parties
from huinong.parties.models import CustomerKind
from huinong.security.audit.models import AuditRecord
from huinong.security.consent import service as consent
from huinong.security.consent.models import (
    Consent,
    ConsentData,
    DataCategory,
    EvidenceKind,
    Purpose,
)
from huinong.security.principals import Principal, PrincipalKind, Role
from tests.api.conftest import race, resident_id
from tests.conftest import new_institution

C = DataCategory
P = Purpose


def new_customer(factory: sessionmaker[Session], institution: Institution) -> uuid.UUID:
    with transaction(factory) as session:
        return parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.individual,
            name="李四",
            id_number=resident_id(),
        ).id


def manager(institution: Institution) -> Principal:
    return Principal(
        kind=PrincipalKind.staff,
        subject_id=uuid7(),
        institution_id=institution.id,
        institution_code=institution.code,
        currency="CNY",
        roles=frozenset({Role.account_manager}),
        display="manager01",
    )


def grant(
    factory: sessionmaker[Session],
    institution: Institution,
    customer_id: uuid.UUID,
    categories: list[DataCategory],
    purpose: Purpose,
    **fields,
) -> Consent:
    return run_in_transaction(
        factory,
        lambda s: consent.grant_consent(
            s,
            institution_id=institution.id,
            customer_id=customer_id,
            categories=categories,
            purpose=purpose,
            evidence_kind=fields.pop("evidence_kind", EvidenceKind.paper_form),
            evidence_reference=fields.pop("evidence_reference", "HN-2026-000123"),
            actor=manager(institution),
            **fields,
        ),
    )


def check(factory, customer_id, category, purpose, grantee, at=None) -> str | None:
    """The guard's refusal code, or None when it allows."""
    with factory() as session:
        try:
            consent.require_consent(
                session,
                customer_id=customer_id,
                category=category,
                purpose=purpose,
                grantee_institution_id=grantee,
                at=at,
            )
        except Forbidden as refused:
            return refused.code
    return None


def audit_actions(factory, institution_id: uuid.UUID) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(AuditRecord.action)
                .where(AuditRecord.institution_id == institution_id)
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )


def data_rows(factory, customer_id: uuid.UUID) -> list[tuple[str, str, str]]:
    with factory() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(ConsentData.category, ConsentData.purpose, ConsentData.name)
                .where(ConsentData.customer_id == customer_id)
                .order_by(ConsentData.category, ConsentData.name)
            )
        ]


# --------------------------------------------------------------------------- the guard


def test_the_guard_allows_exactly_what_was_consented(factory, institution):
    customer = new_customer(factory, institution)
    assert check(factory, customer, C.credit, P.credit_assessment, institution.id) == (
        "consent.missing"
    )
    given = grant(
        factory, institution, customer, [C.credit, C.household_archive], P.credit_assessment
    )
    assert sorted(given.category_names) == ["credit", "household_archive"]
    assert given.grantee_institution_id == institution.id
    assert check(factory, customer, C.credit, P.credit_assessment, institution.id) is None
    assert (
        check(factory, customer, "household_archive", "credit_assessment", institution.id) is None
    )
    # Another category, purpose or grantee is not covered.
    assert check(factory, customer, C.transactions, P.credit_assessment, institution.id) == (
        "consent.missing"
    )
    assert check(factory, customer, C.credit, P.marketing, institution.id) == "consent.missing"
    other = new_institution(factory)
    assert check(factory, customer, C.credit, P.credit_assessment, other.id) == "consent.missing"
    with factory() as session:
        found = consent.require_consent(
            session,
            customer_id=customer,
            category=C.credit,
            purpose=P.credit_assessment,
            grantee_institution_id=institution.id,
        )
    assert found.id == given.id
    assert audit_actions(factory, institution.id) == ["consent.granted"]


def test_revocation_takes_effect_at_once(factory, institution):
    customer = new_customer(factory, institution)
    given = grant(factory, institution, customer, [C.contact], P.marketing)
    with clock.frozen(clock.now()):
        revoked = run_in_transaction(
            factory,
            lambda s: consent.revoke_consent(
                s, institution_id=institution.id, consent_id=given.id, actor=manager(institution)
            ),
        )
        assert revoked.revoked_at == clock.now()
        # The very same instant already refuses.
        assert check(factory, customer, C.contact, P.marketing, institution.id) == (
            "consent.revoked"
        )
    with pytest.raises(Conflict) as again:
        run_in_transaction(
            factory,
            lambda s: consent.revoke_consent(s, institution_id=institution.id, consent_id=given.id),
        )
    assert (again.value.code, again.value.field) == ("consent.already_revoked", "consent_id")
    assert audit_actions(factory, institution.id) == ["consent.granted", "consent.revoked"]


def test_two_simultaneous_revocations_one_wins(factory, institution):
    customer = new_customer(factory, institution)
    given = grant(factory, institution, customer, [C.contact], P.marketing)

    def revoke(_: int) -> str:
        try:
            run_in_transaction(
                factory,
                lambda s: consent.revoke_consent(
                    s, institution_id=institution.id, consent_id=given.id
                ),
            )
        except Conflict as exc:
            return exc.code
        return "revoked"

    assert sorted(race(4, revoke)) == ["consent.already_revoked"] * 3 + ["revoked"]


def test_an_expired_consent_refuses_and_cannot_be_revoked(factory, institution):
    customer = new_customer(factory, institution)
    expires = clock.now() + timedelta(days=30)
    given = grant(
        factory, institution, customer, [C.identity], P.account_opening, expires_at=expires
    )
    assert given.expires_at == expires
    before, after = expires - timedelta(microseconds=1), expires
    assert (
        check(factory, customer, C.identity, P.account_opening, institution.id, at=before) is None
    )
    assert check(factory, customer, C.identity, P.account_opening, institution.id, at=after) == (
        "consent.expired"
    )
    with clock.frozen(expires + timedelta(days=1)), pytest.raises(Conflict) as late:
        run_in_transaction(
            factory,
            lambda s: consent.revoke_consent(s, institution_id=institution.id, consent_id=given.id),
        )
    assert late.value.code == "consent.already_expired"
    # A fresh consent after the old one expired allows again.
    with clock.frozen(expires + timedelta(days=2)):
        grant(factory, institution, customer, [C.identity], P.account_opening)
        assert check(factory, customer, C.identity, P.account_opening, institution.id) is None


def test_a_grantee_named_by_code(factory, institution):
    customer = new_customer(factory, institution)
    partner = new_institution(factory, prefix="G")
    given = grant(
        factory,
        institution,
        customer,
        [C.transactions],
        P.credit_assessment,
        grantee_institution_code=partner.code,
    )
    assert given.grantee_institution_id == partner.id
    assert check(factory, customer, C.transactions, P.credit_assessment, partner.id) is None
    assert check(factory, customer, C.transactions, P.credit_assessment, institution.id) == (
        "consent.missing"
    )
    with pytest.raises(NotFound) as unknown:
        grant(
            factory,
            institution,
            customer,
            [C.credit],
            P.credit_assessment,
            grantee_institution_code="NO-SUCH-BANK",
        )
    assert (unknown.value.code, unknown.value.field) == (
        "consent.grantee_not_found",
        "grantee_institution_code",
    )


# --------------------------------------------------------------------------- tenancy and input


def test_another_institutions_customer_and_consents_are_not_found(factory, institution):
    customer = new_customer(factory, institution)
    given = grant(factory, institution, customer, [C.contact], P.marketing)
    other = new_institution(factory)
    with pytest.raises(NotFound) as foreign_grant:
        grant(factory, other, customer, [C.contact], P.marketing)
    assert (foreign_grant.value.code, foreign_grant.value.field) == (
        "consent.customer_not_found",
        "customer_id",
    )
    with factory() as session, pytest.raises(NotFound):
        consent.list_consents(session, institution_id=other.id, customer_id=customer)
    with pytest.raises(NotFound) as foreign_revoke:
        run_in_transaction(
            factory,
            lambda s: consent.revoke_consent(s, institution_id=other.id, consent_id=given.id),
        )
    assert foreign_revoke.value.code == "consent.not_found"
    with pytest.raises(NotFound):
        grant(factory, institution, uuid7(), [C.contact], P.marketing)
    assert check(factory, customer, C.contact, P.marketing, institution.id) is None  # untouched


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"categories": []}, "consent.categories_required", "categories"),
        ({"expires_at": "past"}, "consent.expiry_not_after_grant", "expires_at"),
        ({"evidence_reference": "   "}, "consent.evidence_required", "evidence_reference"),
        (
            {"collected": [consent.CollectedValue(C.credit, "income", "30000")]},
            "consent.data_outside_consent",
            "data[0].category",
        ),
    ],
)
def test_bad_consents_are_refused_and_write_nothing(factory, institution, fields, code, field):
    customer = new_customer(factory, institution)
    fields = dict(fields)  # shared by both backends' runs
    if fields.get("expires_at") == "past":
        fields["expires_at"] = clock.now() - timedelta(seconds=1)
    categories = fields.pop("categories", [C.contact])
    with pytest.raises(InvalidInput) as refused:
        grant(factory, institution, customer, categories, P.marketing, **fields)
    assert (refused.value.code, refused.value.field) == (code, field)
    with factory() as session:
        assert (
            consent.list_consents(session, institution_id=institution.id, customer_id=customer)
            == []
        )
    assert audit_actions(factory, institution.id) == []


def test_consents_are_listed_oldest_first(factory, institution):
    customer = new_customer(factory, institution)
    first = grant(factory, institution, customer, [C.contact], P.marketing)
    second = grant(factory, institution, customer, [C.identity], P.account_opening)
    with factory() as session:
        listed = consent.list_consents(session, institution_id=institution.id, customer_id=customer)
    assert [c.id for c in listed] == [first.id, second.id]


# --------------------------------------------------------------------------- captured data


def test_captured_data_is_encrypted_and_read_only_through_the_guard(factory, institution):
    customer = new_customer(factory, institution)
    secret = "13912345678"
    given = grant(
        factory,
        institution,
        customer,
        [C.contact],
        P.marketing,
        collected=[consent.CollectedValue(C.contact, "mobile", secret)],
    )
    with factory() as session:
        stored = session.scalars(
            select(ConsentData).where(ConsentData.consent_id == given.id)
        ).one()
    assert secret.encode() not in bytes(stored.value_ciphertext)

    def read(s: Session) -> list[consent.CollectedRead]:
        return consent.read_collected_data(
            s,
            customer_id=customer,
            category=C.contact,
            purpose=P.marketing,
            grantee_institution_id=institution.id,
            actor=manager(institution),
        )

    values = run_in_transaction(factory, read)
    assert [(v.name, v.value) for v in values] == [("mobile", secret)]
    run_in_transaction(
        factory,
        lambda s: consent.revoke_consent(s, institution_id=institution.id, consent_id=given.id),
    )
    with pytest.raises(Forbidden) as refused:
        run_in_transaction(factory, read)
    assert refused.value.code == "consent.revoked"
    actions = audit_actions(factory, institution.id)
    assert actions == ["consent.granted", "consent.data_read", "consent.revoked"]


# --------------------------------------------------------------------------- the purge


def purge(factory, institution, at=None) -> list[consent.PurgeAction]:
    def unit(session: Session) -> list[consent.PurgeAction]:
        actions = []
        for customer_id in consent.customers_due_for_purge(
            session, at=at, institution_id=institution.id
        ):
            actions += consent.purge_customer(session, customer_id=customer_id, at=at)
        return actions

    return run_in_transaction(factory, unit)


def test_purge_removes_data_whose_consents_all_ended_and_keeps_the_rest(factory, institution):
    customer = new_customer(factory, institution)
    bystander = new_customer(factory, institution)
    ended = grant(
        factory,
        institution,
        customer,
        [C.contact, C.household_archive],
        P.village_credit_campaign,
        collected=[
            consent.CollectedValue(C.contact, "mobile", "13800000001"),
            consent.CollectedValue(C.household_archive, "land_mu", "12"),
            consent.CollectedValue(C.household_archive, "cattle", "3"),
        ],
    )
    # Contact data for the campaign stays allowed by a second, live consent.
    grant(
        factory,
        institution,
        customer,
        [C.contact],
        P.village_credit_campaign,
        collected=[consent.CollectedValue(C.contact, "wechat", "li4")],
    )
    grant(
        factory,
        institution,
        bystander,
        [C.household_archive],
        P.village_credit_campaign,
        collected=[consent.CollectedValue(C.household_archive, "land_mu", "5")],
    )
    assert purge(factory, institution) == []  # nothing has ended yet
    run_in_transaction(
        factory,
        lambda s: consent.revoke_consent(s, institution_id=institution.id, consent_id=ended.id),
    )

    actions = purge(factory, institution)
    assert [(a.customer_id, a.category, a.purpose, a.kept) for a in actions] == [
        (customer, "household_archive", "village_credit_campaign", False),
        (customer, "contact", "village_credit_campaign", True),
    ]
    assert actions[0].removed["security.consent_data"] == 2
    assert actions[1].removed == {}
    assert data_rows(factory, customer) == [
        ("contact", "village_credit_campaign", "mobile"),
        ("contact", "village_credit_campaign", "wechat"),
    ]
    assert data_rows(factory, bystander) == [
        ("household_archive", "village_credit_campaign", "land_mu")
    ]
    with factory() as session:
        assert session.get(Consent, ended.id).purged_at is not None
        purged = session.scalars(
            select(AuditRecord).where(
                AuditRecord.institution_id == institution.id,
                AuditRecord.action == "consent.purged",
            )
        ).one()
    assert purged.object_id == str(customer)
    assert purged.detail["consent_ids"] == [str(ended.id)]
    assert purged.detail["purged"] == [
        {
            "category": "household_archive",
            "purpose": "village_credit_campaign",
            "removed": {"security.consent_data": 2},
        }
    ]
    assert purged.detail["kept"] == [["contact", "village_credit_campaign"]]

    # Idempotent: nothing more to do, nothing more audited.
    assert purge(factory, institution) == []
    assert audit_actions(factory, institution.id).count("consent.purged") == 1


def test_purge_after_expiry_calls_every_registered_holder(factory, institution, monkeypatch):
    customer = new_customer(factory, institution)
    expires = clock.now() + timedelta(days=90)
    grant(
        factory,
        institution,
        customer,
        [C.contact, C.identity],
        P.marketing,
        expires_at=expires,
        collected=[consent.CollectedValue(C.contact, "mobile", "13800000002")],
    )
    calls: list[tuple[uuid.UUID, str, str]] = []

    def other_domain(session: Session, customer_id, category, purpose) -> int:
        calls.append((customer_id, str(category), str(purpose)))
        return 1 if category == C.contact else 0

    monkeypatch.setitem(consent._holders, "tests.other_domain", other_domain)
    assert purge(factory, institution, at=expires - timedelta(seconds=1)) == []
    actions = purge(factory, institution, at=expires)
    assert [(a.category, a.removed) for a in actions] == [
        ("contact", {"security.consent_data": 1, "tests.other_domain": 1}),
        ("identity", {}),  # every holder was asked (see calls); none held anything
    ]
    assert sorted(calls) == sorted(
        [(customer, "contact", "marketing"), (customer, "identity", "marketing")]
    )
    assert data_rows(factory, customer) == []
    assert purge(factory, institution, at=expires + timedelta(days=1)) == []


def test_purge_counts_due_customers(factory, institution):
    customers = [new_customer(factory, institution) for _ in range(3)]
    given = [grant(factory, institution, c, [C.contact], P.marketing) for c in customers]
    for item in given[:2]:
        run_in_transaction(
            factory,
            lambda s, item=item: consent.revoke_consent(
                s, institution_id=institution.id, consent_id=item.id
            ),
        )
    with factory() as session:
        assert consent.count_due_for_purge(session, institution_id=institution.id) == 2
        due = consent.customers_due_for_purge(session, institution_id=institution.id, limit=1)
        rest = consent.customers_due_for_purge(
            session, institution_id=institution.id, after=due[-1]
        )
    assert sorted(due + rest) == sorted(customers[:2])
    purge(factory, institution)
    with factory() as session:
        assert consent.count_due_for_purge(session, institution_id=institution.id) == 0
        total = session.scalar(
            select(func.count())
            .select_from(Consent)
            .where(Consent.institution_id == institution.id)
        )
    assert total == 3  # consents are kept: they prove the past use was allowed
