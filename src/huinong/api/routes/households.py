"""Households and their archives (农户经济档案), the 360° customer view, the party lookup.

Every route here reads or writes personal data and leaves an audit record in its own
transaction — ids, codes and counts only, never a value:

* ``households.created`` / ``.read`` / ``.listed`` / ``.member_added`` / ``.member_removed`` /
  ``.head_changed``;
* ``households.archive_recorded`` and ``households.archive_read`` (with the purpose and the
  consent the use went through) and ``households.archive_versions_listed``; a use refused for
  want of consent is recorded with outcome ``denied`` before the refusal is answered;
* ``customers.viewed`` for the 360° view, ``parties.looked_up`` for a lookup,
  ``customers.default_account_set``.

The 360° view and the lookup put parties and payments side by side; that happens here, in the
API layer, because parties may not import payments or the ledger.

**Default account** (what a lookup answers with, ``payments.service.default_deposit_account``):
the deposit account the customer marked (``PUT /customers/{id}/default-account``) while it is
open; otherwise the customer's first open deposit account, in opening order; none if no
deposit account is open.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from huinong import clock
from huinong.api.deps import Database, DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.api.routes.consent import consent_read
from huinong.api.routes.customers import customer_read
from huinong.api.routes.payments import deposit_account_read
from huinong.errors import Forbidden, InvalidInput
from huinong.ledger.models import Account
from huinong.parties import service as parties
from huinong.parties.households import archive, service
from huinong.parties.households.models import Household, HouseholdArchiveVersion, HouseholdMember
from huinong.parties.households.schemas import (
    AccountInView,
    ArchiveFigures,
    ArchiveVersionCreate,
    ArchiveVersionList,
    ArchiveVersionRead,
    ArchiveVersionSummary,
    CustomerView,
    DefaultAccountRead,
    DefaultAccountSet,
    HeadChange,
    HouseholdCreate,
    HouseholdInView,
    HouseholdPage,
    HouseholdRead,
    MemberCreate,
    MemberRead,
    PartyLookup,
    PartyLookupResult,
    PartyMatch,
)
from huinong.payments import service as payments
from huinong.security.audit import service as audit
from huinong.security.consent import service as consent
from huinong.security.consent.models import Purpose
from huinong.security.personal_data import masking
from huinong.security.principals import Principal, PrincipalKind

router = APIRouter(tags=["households"])
T = TypeVar("T")


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    *,
    object_type: str,
    object_id: uuid.UUID | None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=principal.institution_id,
        actor=principal,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        outcome=outcome,
        detail=detail,
    )


def _run_consented(
    database: Database,
    principal: Principal,
    work: Callable[[Session], T],
    *,
    action: str,
    household_id: uuid.UUID,
    detail: dict[str, Any],
) -> T:
    """Run an archive use case; a refusal for want of consent is recorded (outcome
    ``denied``) in a transaction of its own before it is answered — the use case's own
    transaction is rolled back with the refusal."""
    try:
        return database.run(work)
    except Forbidden as refused:
        reason = refused.code
        if reason.startswith("consent."):
            database.run(
                lambda s: _audit(
                    s,
                    principal,
                    action,
                    object_type="household",
                    object_id=household_id,
                    outcome="denied",
                    detail={**detail, "reason": reason},
                )
            )
        raise


# --------------------------------------------------------------------------- reads


def _member_read(session: Session, member: HouseholdMember, principal: Principal) -> MemberRead:
    if member.customer_id is not None:
        customer = parties.get_customer(
            session, institution_id=member.institution_id, customer_id=member.customer_id
        )
        name = customer.name
        id_number: str | None = parties.identifiers(session, customer).id_number
    else:
        name = member.name or ""
        id_number = service.member_id_number(session, member)
    return MemberRead(
        id=member.id,
        relationship=member.relationship,  # type: ignore[arg-type]
        is_labour=member.is_labour,
        customer_id=member.customer_id,
        name=masking.present("name", name, principal.roles) or "",
        birth_year=member.birth_year,
        id_number_masked=None if id_number is None else masking.mask_id_number(id_number),
    )


def _member_reads(session: Session, household: Household, principal: Principal) -> list[MemberRead]:
    return [
        _member_read(session, m, principal) for m in service.members(session, household=household)
    ]


def _household_read(session: Session, household: Household, principal: Principal) -> HouseholdRead:
    members = _member_reads(session, household, principal)
    return HouseholdRead(
        id=household.id,
        household_number=household.household_number,
        village_code=household.village_code,
        head_customer_id=household.head_customer_id,
        members=members,
        member_count=len(members),
        labour_count=sum(1 for m in members if m.is_labour),
        created_at=household.created_at,
    )


def _version_summary(version: HouseholdArchiveVersion) -> ArchiveVersionSummary:
    return ArchiveVersionSummary(
        id=version.id,
        household_id=version.household_id,
        surveyed_on=version.surveyed_on,
        source=archive.Source(version.source),
        purpose=Purpose(version.purpose),
        surveyor_id=version.surveyor_id,
        schema_version=version.schema_version,
        recorded_at=version.recorded_at,
    )


def _version_read(version: HouseholdArchiveVersion, consent_id: uuid.UUID) -> ArchiveVersionRead:
    content = service.content_of(version)
    figures = archive.summary(content)
    return ArchiveVersionRead(
        **_version_summary(version).model_dump(),
        consent_id=consent_id,
        archive=archive.to_document(content),
        figures=ArchiveFigures(**figures.__dict__),
    )


# --------------------------------------------------------------------------- households


@router.post("/households", status_code=201, response_model=HouseholdRead)
def create_household(body: HouseholdCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> HouseholdRead:
        household = service.create_household(
            s, institution_id=principal.institution_id, **body.model_dump()
        )
        _audit(
            s,
            principal,
            "households.created",
            object_type="household",
            object_id=household.id,
            detail={"head_customer_id": str(household.head_customer_id)},
        )
        return _household_read(s, household, principal)

    return database.run(work)


@router.get("/households", response_model=HouseholdPage)
def list_households(
    principal: PrincipalDep,
    database: DatabaseDep,
    village_code: Annotated[str | None, Query(min_length=12, max_length=12)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    after = decode_id(cursor)

    def work(s: Session) -> list[HouseholdRead]:
        found = service.list_households(
            s,
            institution_id=principal.institution_id,
            village_code=village_code,
            after=after,
            limit=limit,
        )
        _audit(
            s,
            principal,
            "households.listed",
            object_type="household",
            object_id=None,
            detail={"returned": len(found)},
        )
        return [_household_read(s, h, principal) for h in found]

    items = database.run(work)
    return HouseholdPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/households/{household_id}", response_model=HouseholdRead)
def get_household(household_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> HouseholdRead:
        household = service.get_household(
            s, institution_id=principal.institution_id, household_id=household_id
        )
        _audit(s, principal, "households.read", object_type="household", object_id=household.id)
        return _household_read(s, household, principal)

    return database.run(work)


@router.post("/households/{household_id}/members", status_code=201, response_model=HouseholdRead)
def add_member(
    household_id: uuid.UUID, body: MemberCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def work(s: Session) -> HouseholdRead:
        member = service.add_member(
            s,
            institution_id=principal.institution_id,
            household_id=household_id,
            **body.model_dump(),
        )
        _audit(
            s,
            principal,
            "households.member_added",
            object_type="household",
            object_id=household_id,
            detail={
                "member_id": str(member.id),
                "customer_id": None if member.customer_id is None else str(member.customer_id),
                "relationship": member.relationship,
            },
        )
        household = service.get_household(
            s, institution_id=principal.institution_id, household_id=household_id
        )
        return _household_read(s, household, principal)

    return database.run(work)


@router.delete("/households/{household_id}/members/{member_id}", response_model=HouseholdRead)
def remove_member(
    household_id: uuid.UUID, member_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def work(s: Session) -> HouseholdRead:
        member = service.remove_member(
            s,
            institution_id=principal.institution_id,
            household_id=household_id,
            member_id=member_id,
        )
        _audit(
            s,
            principal,
            "households.member_removed",
            object_type="household",
            object_id=household_id,
            detail={"member_id": str(member.id), "relationship": member.relationship},
        )
        household = service.get_household(
            s, institution_id=principal.institution_id, household_id=household_id
        )
        return _household_read(s, household, principal)

    return database.run(work)


@router.post("/households/{household_id}/head", response_model=HouseholdRead)
def change_head(
    household_id: uuid.UUID, body: HeadChange, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """户主变更: a customer member becomes the head; the previous head stays a member."""

    def work(s: Session) -> HouseholdRead:
        before = service.get_household(
            s, institution_id=principal.institution_id, household_id=household_id
        ).head_customer_id
        household = service.change_head(
            s,
            institution_id=principal.institution_id,
            household_id=household_id,
            member_id=body.member_id,
            previous_head_relationship=body.previous_head_relationship,
            relationships={c.member_id: c.relationship for c in body.relationships},
        )
        _audit(
            s,
            principal,
            "households.head_changed",
            object_type="household",
            object_id=household_id,
            detail={"before": str(before), "after": str(household.head_customer_id)},
        )
        return _household_read(s, household, principal)

    return database.run(work)


# --------------------------------------------------------------------------- archive


@router.post(
    "/households/{household_id}/archive-versions",
    status_code=201,
    response_model=ArchiveVersionRead,
)
def record_archive_version(
    household_id: uuid.UUID,
    body: ArchiveVersionCreate,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> Any:
    """Record a survey as a new version; earlier versions stay as they were."""
    surveyor = principal.subject_id if principal.kind is PrincipalKind.staff else None

    def work(s: Session) -> ArchiveVersionRead:
        version = service.record_archive_version(
            s,
            institution_id=principal.institution_id,
            household_id=household_id,
            purpose=body.purpose,
            surveyed_on=body.surveyed_on,
            source=body.source,
            content=body.archive,
            surveyor_id=surveyor,
        )
        _audit(
            s,
            principal,
            "households.archive_recorded",
            object_type="household",
            object_id=household_id,
            detail={
                "version_id": str(version.id),
                "purpose": version.purpose,
                "consent_id": str(version.consent_id),
                "source": version.source,
            },
        )
        return _version_read(version, version.consent_id)

    return _run_consented(
        database,
        principal,
        work,
        action="households.archive_recorded",
        household_id=household_id,
        detail={"purpose": str(body.purpose)},
    )


@router.get("/households/{household_id}/archive-versions", response_model=ArchiveVersionList)
def list_archive_versions(
    household_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Every version's metadata, newest survey first (the content is read through
    ``/archive``, which checks consent)."""

    def work(s: Session) -> ArchiveVersionList:
        versions = service.list_archive_versions(
            s, institution_id=principal.institution_id, household_id=household_id
        )
        _audit(
            s,
            principal,
            "households.archive_versions_listed",
            object_type="household",
            object_id=household_id,
            detail={"returned": len(versions)},
        )
        return ArchiveVersionList(items=[_version_summary(v) for v in versions])

    return database.run(work)


@router.get("/households/{household_id}/archive", response_model=ArchiveVersionRead)
def read_archive(
    household_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    purpose: Annotated[Purpose, Query(description="what the archive is read for")],
    as_of: Annotated[dt.date | None, Query(description="default: today")] = None,
) -> Any:
    """The archive as it stood on ``as_of``: the latest survey on or before that date."""

    def work(s: Session) -> ArchiveVersionRead:
        day = as_of or clock.local_date(clock.now())
        version, granted = service.archive_as_of(
            s,
            institution_id=principal.institution_id,
            household_id=household_id,
            as_of=day,
            purpose=purpose,
        )
        _audit(
            s,
            principal,
            "households.archive_read",
            object_type="household",
            object_id=household_id,
            detail={
                "version_id": str(version.id),
                "as_of": day.isoformat(),
                "purpose": str(purpose),
                "consent_id": str(granted.id),
            },
        )
        return _version_read(version, granted.id)

    return _run_consented(
        database,
        principal,
        work,
        action="households.archive_read",
        household_id=household_id,
        detail={"purpose": str(purpose)},
    )


# --------------------------------------------------------------------------- accounts


def _deposit_accounts(s: Session, principal: Principal, customer_id: uuid.UUID) -> list[Account]:
    return payments.deposit_accounts_of(
        s, institution_id=principal.institution_id, customer_id=customer_id
    )


def _default_account(s: Session, principal: Principal, customer_id: uuid.UUID) -> Account | None:
    return payments.default_deposit_account(
        s, institution_id=principal.institution_id, customer_id=customer_id
    )


@router.put("/customers/{customer_id}/default-account", response_model=DefaultAccountRead)
def set_default_account(
    customer_id: uuid.UUID, body: DefaultAccountSet, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Mark the deposit account a party lookup answers with (one of the customer's open
    deposit accounts)."""

    def work(s: Session) -> DefaultAccountRead:
        customer = parties.get_customer(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        account = payments.deposit_account(
            s, institution_id=principal.institution_id, account_number=body.account_number
        )
        if account.owner_id != customer.id:
            raise InvalidInput(
                "parties.account_of_another_customer",
                "the default account must be one of the customer's own deposit accounts",
                field="account_number",
            )
        if account.closed:
            raise InvalidInput(
                "parties.default_account_closed",
                "a closed account cannot be the default",
                field="account_number",
            )
        row = service.set_default_account(
            s,
            institution_id=principal.institution_id,
            customer_id=customer.id,
            account_id=account.id,
        )
        _audit(
            s,
            principal,
            "customers.default_account_set",
            object_type="customer",
            object_id=customer.id,
            detail={"account_id": str(account.id)},
        )
        assert account.account_number is not None
        return DefaultAccountRead(
            customer_id=customer.id, account_number=account.account_number, set_at=row.set_at
        )

    return database.run(work)


# --------------------------------------------------------------------------- 360° view


@router.get("/customers/{customer_id}/view", response_model=CustomerView)
def customer_view(customer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Everything about a customer on one screen: identity (masked), household and members,
    deposit accounts with balances, archive versions (metadata only), consents."""

    def work(s: Session) -> CustomerView:
        customer = parties.get_customer(
            s, institution_id=principal.institution_id, customer_id=customer_id
        )
        household = service.household_of_customer(
            s, institution_id=principal.institution_id, customer_id=customer.id
        )
        household_view = None
        if household is not None:
            members = service.members(s, household=household)
            own = next(m for m in members if m.customer_id == customer.id)
            versions = service.list_archive_versions(
                s, institution_id=principal.institution_id, household_id=household.id
            )
            household_view = HouseholdInView(
                id=household.id,
                household_number=household.household_number,
                village_code=household.village_code,
                head_customer_id=household.head_customer_id,
                relationship=own.relationship,  # type: ignore[arg-type]
                members=[_member_read(s, m, principal) for m in members],
                archive_versions=[_version_summary(v) for v in versions],
            )
        accounts = _deposit_accounts(s, principal, customer.id)
        default = _default_account(s, principal, customer.id)
        account_views = []
        for account in accounts:
            read = deposit_account_read(account)
            account_views.append(
                AccountInView(
                    account_number=masking.present(
                        "account_number", read.account_number, principal.roles
                    )
                    or "",
                    currency=read.currency,
                    balance=read.balance,
                    available=read.available,
                    closed=read.closed,
                    is_default=default is not None and default.id == account.id,
                    opened_at=read.created_at,
                )
            )
        consents = consent.list_consents(
            s, institution_id=principal.institution_id, customer_id=customer.id
        )
        _audit(
            s,
            principal,
            "customers.viewed",
            object_type="customer",
            object_id=customer.id,
            detail={
                "household_id": None if household is None else str(household.id),
                "accounts": len(accounts),
                "consents": len(consents),
            },
        )
        return CustomerView(
            customer=customer_read(s, customer, principal.roles),
            household=household_view,
            deposit_accounts=account_views,
            consents=[consent_read(c) for c in consents],
        )

    return database.run(work)


# --------------------------------------------------------------------------- party lookup


@router.post("/party-lookup", response_model=PartyLookupResult)
def party_lookup(body: PartyLookup, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Who is behind a phone or an ID number, and which account pays them (like Mojaloop's
    account lookup): the masked name to confirm with, the customer id and the default deposit
    account. Exact match through the blind index; the identifier is in the body, never the
    URL. Several customers may share a phone (one household): each is listed."""

    def work(s: Session) -> PartyLookupResult:
        found = parties.lookup_customers(
            s, institution_id=principal.institution_id, id_number=body.id_number, phone=body.phone
        )
        matches = []
        for customer in found:
            default = _default_account(s, principal, customer.id)
            matches.append(
                PartyMatch(
                    customer_id=customer.id,
                    name_masked=masking.mask_name(customer.name),
                    account_number=None if default is None else default.account_number,
                )
            )
        _audit(
            s,
            principal,
            "parties.looked_up",
            object_type="customer",
            object_id=found[0].id if len(found) == 1 else None,
            detail={
                "by": "id_number" if body.id_number is not None else "phone",
                "returned": len(found),
            },
        )
        return PartyLookupResult(items=matches)

    return database.run(work)
