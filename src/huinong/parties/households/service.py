"""Household use cases: households and members, archive versions, default accounts.

**Households and members.** A household is created with its head, a customer, who becomes its
first member (relationship ``head``). Other members are customers or named persons; a named
person's ID number, when the household gives one, is encrypted like a customer's (SM4 bound
to the row, blind index beside it). Member changes lock the household row first, so two
clerks adding members at once cannot both slip past a rule. "A customer is in at most one
household of the institution" is the database's unique index; the service checks it first to
answer with a clear error, and a concurrent race ends in the index (the transaction is
retried and then answers the same way).

**Archive versions.** Each survey is a new immutable row (``archive`` holds the content model
and its rules). Collecting and reading archive data are both uses of the head of household's
``household_archive`` data for a purpose, so both go through
``consent.require_consent(category="household_archive", purpose=...)`` first; the purpose is
stored on the version. "As of a date" is by survey date: the version with the latest
``surveyed_on`` on or before the date, and among versions of one survey date the one recorded
last (a correction of the same survey is recorded after it).

**Purge.** This module registers a purpose data holder: when the consent purge finds that a
customer's consents for ``household_archive`` and a purpose have all ended, the archive
versions collected under that customer's consent for that purpose are deleted — the content
is the personal data, so nothing of it is kept.

**Default account.** A party lookup answers with the customer's default deposit account: the
one marked (``customer_default_accounts``) if it is still open, otherwise the customer's
first open deposit account. Parties does not read ledger tables: the caller (the API layer)
checks the account and passes its id here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import luhn_check_digit, luhn_is_valid, uuid7
from huinong.parties import rules
from huinong.parties import service as parties
from huinong.parties.geography import service as geography
from huinong.parties.households import archive
from huinong.parties.households.models import (
    CustomerDefaultAccount,
    Household,
    HouseholdArchiveVersion,
    HouseholdMember,
    HouseholdNumberSequence,
    Relationship,
)
from huinong.parties.models import CustomerKind
from huinong.security.consent import service as consent
from huinong.security.consent.models import Consent, DataCategory, Purpose
from huinong.security.personal_data import service as personal_data

MEMBERS_TABLE = HouseholdMember.__tablename__
ARCHIVE_CATEGORY = DataCategory.household_archive
# The oldest living person was born after this; a birth year before it is a typing error.
EARLIEST_BIRTH_YEAR = 1900


# --------------------------------------------------------------------------- numbers


def _next_household_number(session: Session, institution_id: uuid.UUID) -> str:
    """12 digits: an 11-digit serial per institution and a Luhn check digit. Updating the
    serial row in place serialises concurrent creations per institution."""
    serial = session.execute(
        update(HouseholdNumberSequence)
        .where(HouseholdNumberSequence.institution_id == institution_id)
        .values(last_serial=HouseholdNumberSequence.last_serial + 1)
        .returning(HouseholdNumberSequence.last_serial)
    ).scalar_one_or_none()
    if serial is None:
        session.add(HouseholdNumberSequence(institution_id=institution_id, last_serial=1))
        session.flush()
        serial = 1
    body = f"{serial:011d}"
    return body + luhn_check_digit(body)


def check_village_code(village_code: str | None) -> str | None:
    """The 12-digit statistical division code of a village (统计用区划代码), or ``None``."""
    if village_code is None:
        return None
    code = village_code.strip()
    if not (len(code) == 12 and code.isascii() and code.isdigit()):
        raise InvalidInput(
            "households.invalid_village_code",
            "a village code is the 12-digit statistical division code",
            field="village_code",
        )
    return code


# --------------------------------------------------------------------------- households


def _customer_household_id(
    session: Session, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID | None:
    return session.scalar(
        select(HouseholdMember.household_id).where(
            HouseholdMember.institution_id == institution_id,
            HouseholdMember.customer_id == customer_id,
        )
    )


def _refuse_if_in_household(
    session: Session, institution_id: uuid.UUID, customer_id: uuid.UUID, field: str
) -> None:
    if _customer_household_id(session, institution_id, customer_id) is not None:
        raise Conflict(
            "households.customer_in_household",
            "this customer is already a member of a household; a customer belongs to one "
            "household only",
            field=field,
        )


def create_household(
    session: Session,
    *,
    institution_id: uuid.UUID,
    head_customer_id: uuid.UUID,
    village_code: str | None = None,
    head_is_labour: bool = True,
) -> Household:
    """A new household with ``head_customer_id`` as its head (and first member)."""
    code = check_village_code(village_code)
    if code is not None:
        geography.check_village(session, code)
    try:
        head = parties.get_customer(
            session, institution_id=institution_id, customer_id=head_customer_id
        )
    except NotFound as exc:
        raise NotFound(exc.code, exc.message, field="head_customer_id") from exc
    if head.kind not in (CustomerKind.individual, CustomerKind.household):
        raise InvalidInput(
            "households.head_not_a_person",
            "the head of household is an individual customer",
            field="head_customer_id",
        )
    _refuse_if_in_household(session, institution_id, head.id, "head_customer_id")
    now = clock.now()
    household = Household(
        id=uuid7(),
        institution_id=institution_id,
        household_number=_next_household_number(session, institution_id),
        village_code=code,
        head_customer_id=head.id,
        created_at=now,
    )
    session.add(household)
    session.flush()
    session.add(
        HouseholdMember(
            id=uuid7(),
            institution_id=institution_id,
            household_id=household.id,
            relationship=str(Relationship.head),
            is_labour=head_is_labour,
            customer_id=head.id,
            created_at=now,
        )
    )
    session.flush()
    return household


def get_household(
    session: Session, *, institution_id: uuid.UUID, household_id: uuid.UUID, lock: bool = False
) -> Household:
    query = select(Household).where(Household.id == household_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    household = session.scalars(query).one_or_none()
    if household is None or household.institution_id != institution_id:
        raise NotFound("households.not_found", "no such household", field="household_id")
    return household


def get_household_by_number(
    session: Session, *, institution_id: uuid.UUID, household_number: str
) -> Household:
    number = household_number.strip()
    if not luhn_is_valid(number):
        raise InvalidInput(
            "households.invalid_household_number",
            "the household number's check digit does not match; check it for a typo",
            field="household_number",
        )
    household = session.scalar(
        select(Household).where(
            Household.institution_id == institution_id, Household.household_number == number
        )
    )
    if household is None:
        raise NotFound("households.not_found", "no such household", field="household_number")
    return household


def household_of_customer(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> Household | None:
    household_id = _customer_household_id(session, institution_id, customer_id)
    if household_id is None:
        return None
    return session.get(Household, household_id)


def list_households(
    session: Session,
    *,
    institution_id: uuid.UUID,
    village_code: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Household]:
    query = select(Household).where(Household.institution_id == institution_id)
    if village_code is not None:
        query = query.where(Household.village_code == check_village_code(village_code))
    if after is not None:
        query = query.where(Household.id > after)
    return list(session.scalars(query.order_by(Household.id).limit(limit)))


def members(session: Session, *, household: Household) -> list[HouseholdMember]:
    """The members, head first, then in the order they were added."""
    found = session.scalars(
        select(HouseholdMember)
        .where(HouseholdMember.household_id == household.id)
        .order_by(HouseholdMember.id)
    ).all()
    return sorted(found, key=lambda m: m.relationship != Relationship.head)


def add_member(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    relationship: Relationship,
    is_labour: bool,
    customer_id: uuid.UUID | None = None,
    name: str | None = None,
    birth_year: int | None = None,
    id_number: str | None = None,
) -> HouseholdMember:
    """Add a customer, or a named person who is not a customer, to a household."""
    household = get_household(
        session, institution_id=institution_id, household_id=household_id, lock=True
    )
    if Relationship(relationship) is Relationship.head:
        raise Conflict(
            "households.one_head",
            "a household has one head, named when it was created",
            field="relationship",
        )
    if (customer_id is None) == (name is None):
        raise InvalidInput(
            "households.member_needs_customer_or_name",
            "give either customer_id (a customer) or name (a person who is not a customer)",
            field="customer_id",
        )
    member_id = uuid7()
    member = HouseholdMember(
        id=member_id,
        institution_id=institution_id,
        household_id=household.id,
        relationship=str(relationship),
        is_labour=bool(is_labour),
        created_at=clock.now(),
    )
    if customer_id is not None:
        if birth_year is not None or id_number is not None:
            raise InvalidInput(
                "households.customer_member_details",
                "a customer's name, birth date and ID number are on the customer record",
                field="birth_year" if birth_year is not None else "id_number",
            )
        customer = parties.get_customer(
            session, institution_id=institution_id, customer_id=customer_id
        )
        _refuse_if_in_household(session, institution_id, customer.id, "customer_id")
        member.customer_id = customer.id
    else:
        assert name is not None
        member.name = name.strip()
        if not member.name:
            raise InvalidInput("households.name_required", "the name is empty", field="name")
        if birth_year is not None and not (
            EARLIEST_BIRTH_YEAR <= birth_year <= clock.local_date(clock.now()).year
        ):
            raise InvalidInput(
                "households.invalid_birth_year",
                f"a birth year is between {EARLIEST_BIRTH_YEAR} and this year",
                field="birth_year",
            )
        member.birth_year = birth_year
        if id_number is not None:
            number = rules.check_id_number(CustomerKind.individual, id_number)
            key = personal_data.active_key(session)
            member.id_number_ciphertext = personal_data.seal(
                key, number, table=MEMBERS_TABLE, field="id_number", row_id=member_id
            )
            member.id_number_index = personal_data.blind_index(
                number, field="id_number", institution_id=institution_id
            )
            member.data_key_version = key.version
    session.add(member)
    session.flush()
    return member


def change_head(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    previous_head_relationship: Relationship,
    relationships: Mapping[uuid.UUID, Relationship] | None = None,
) -> Household:
    """户主变更: the member ``member_id`` — a customer — becomes the head; the previous head
    stays a member with ``previous_head_relationship``. Relationships are to the head, so the
    others may change too: ``relationships`` gives their new ones, all in one transaction."""
    household = get_household(
        session, institution_id=institution_id, household_id=household_id, lock=True
    )
    new_head = get_member(
        session, institution_id=institution_id, household_id=household.id, member_id=member_id
    )
    if new_head.relationship == Relationship.head:
        raise Conflict(
            "households.already_head", "this member is the head already", field="member_id"
        )
    if new_head.customer_id is None:
        raise InvalidInput(
            "households.head_not_a_customer",
            "the head of household must be a customer: open the member's customer record first",
            field="member_id",
        )
    head_customer = parties.get_customer(
        session, institution_id=institution_id, customer_id=new_head.customer_id
    )
    if head_customer.kind not in (CustomerKind.individual, CustomerKind.household):
        raise InvalidInput(
            "households.head_not_a_person",
            "the head of household is an individual customer",
            field="member_id",
        )
    if Relationship(previous_head_relationship) is Relationship.head:
        raise InvalidInput(
            "households.one_head",
            "the previous head takes another relationship, such as spouse or parent",
            field="previous_head_relationship",
        )
    changes = dict(relationships or {})
    by_id = {m.id: m for m in members(session, household=household)}
    for other_id, relationship in changes.items():
        if other_id not in by_id or other_id == new_head.id or by_id[other_id] is _head(by_id):
            raise InvalidInput(
                "households.invalid_relationship_change",
                "relationships name the other members (not the new or previous head)",
                field="relationships",
            )
        if Relationship(relationship) is Relationship.head:
            raise InvalidInput(
                "households.one_head", "a household has one head", field="relationships"
            )
    previous = _head(by_id)
    previous.relationship = str(previous_head_relationship)
    session.flush()  # one head at a time, whatever order the rows are written in
    new_head.relationship = str(Relationship.head)
    for other_id, relationship in changes.items():
        by_id[other_id].relationship = str(relationship)
    household.head_customer_id = head_customer.id
    session.flush()
    return household


def _head(by_id: Mapping[uuid.UUID, HouseholdMember]) -> HouseholdMember:
    return next(m for m in by_id.values() if m.relationship == Relationship.head)


def get_member(
    session: Session, *, institution_id: uuid.UUID, household_id: uuid.UUID, member_id: uuid.UUID
) -> HouseholdMember:
    member = session.get(HouseholdMember, member_id)
    if (
        member is None
        or member.institution_id != institution_id
        or member.household_id != household_id
    ):
        raise NotFound("households.member_not_found", "no such member", field="member_id")
    return member


def remove_member(
    session: Session, *, institution_id: uuid.UUID, household_id: uuid.UUID, member_id: uuid.UUID
) -> HouseholdMember:
    """Remove a member who left the household (the head stays: the household is theirs)."""
    get_household(session, institution_id=institution_id, household_id=household_id, lock=True)
    member = get_member(
        session, institution_id=institution_id, household_id=household_id, member_id=member_id
    )
    if member.relationship == Relationship.head:
        raise Conflict(
            "households.head_not_removable",
            "the head of household cannot be removed from it",
            field="member_id",
        )
    session.delete(member)
    session.flush()
    return member


def member_id_number(session: Session, member: HouseholdMember) -> str | None:
    """A named member's decrypted ID number, for masking; ``None`` if none was given."""
    if member.id_number_ciphertext is None or member.data_key_version is None:
        return None
    return personal_data.unseal(
        session,
        member.id_number_ciphertext,
        version=member.data_key_version,
        table=MEMBERS_TABLE,
        field="id_number",
        row_id=member.id,
    )


# --------------------------------------------------------------------------- archive


def _require_archive_consent(
    session: Session, *, household: Household, purpose: Purpose | str, grantee: uuid.UUID
) -> Consent:
    """The head of household's live consent to this use; the refusal names ``purpose``."""
    try:
        return consent.require_consent(
            session,
            customer_id=household.head_customer_id,
            category=ARCHIVE_CATEGORY,
            purpose=purpose,
            grantee_institution_id=grantee,
        )
    except Forbidden as refused:
        raise Forbidden(refused.code, refused.message, field="purpose") from None


def _invalid_archive(problems: Sequence[archive.Problem]) -> InvalidInput:
    fields = [f"archive.{p.field}" for p in problems]
    message = "; ".join(f"{f}: {p.message}" for f, p in zip(fields, problems, strict=True))
    return InvalidInput("households.invalid_archive", message, field=fields[0])


def record_archive_version(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    purpose: Purpose,
    surveyed_on: dt.date,
    source: archive.Source,
    content: archive.ArchiveContent | dict[str, Any],
    surveyor_id: uuid.UUID | None = None,
) -> HouseholdArchiveVersion:
    """Record one survey of the household as a new version (versions are never changed)."""
    household = get_household(session, institution_id=institution_id, household_id=household_id)
    today = clock.local_date(clock.now())
    if surveyed_on > today:
        raise InvalidInput(
            "households.survey_in_future",
            "the survey date cannot be after today",
            field="surveyed_on",
        )
    try:
        parsed = archive.parse(content, surveyed_on=surveyed_on)
    except archive.ArchiveInvalid as exc:
        raise _invalid_archive(exc.problems) from None
    granted = _require_archive_consent(
        session, household=household, purpose=purpose, grantee=institution_id
    )
    version = HouseholdArchiveVersion(
        id=uuid7(),
        institution_id=institution_id,
        household_id=household.id,
        consenting_customer_id=household.head_customer_id,
        purpose=str(Purpose(purpose)),
        consent_id=granted.id,
        surveyed_on=surveyed_on,
        source=str(archive.Source(source)),
        surveyor_id=surveyor_id,
        schema_version=parsed.schema_version,
        content=archive.to_document(parsed),
        recorded_at=clock.now(),
    )
    session.add(version)
    session.flush()
    return version


def list_archive_versions(
    session: Session, *, institution_id: uuid.UUID, household_id: uuid.UUID
) -> list[HouseholdArchiveVersion]:
    """Every version of a household, newest survey first. Callers show metadata only: the
    content is read through :func:`archive_as_of` or :func:`read_archive_version`, which
    check consent."""
    household = get_household(session, institution_id=institution_id, household_id=household_id)
    return list(
        session.scalars(
            select(HouseholdArchiveVersion)
            .where(HouseholdArchiveVersion.household_id == household.id)
            .order_by(
                HouseholdArchiveVersion.surveyed_on.desc(),
                HouseholdArchiveVersion.recorded_at.desc(),
                HouseholdArchiveVersion.id.desc(),
            )
        )
    )


def archive_as_of(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    as_of: dt.date,
    purpose: Purpose,
) -> tuple[HouseholdArchiveVersion, Consent]:
    """The version in force on ``as_of`` (the latest survey on or before it), read for
    ``purpose`` under the head of household's live consent."""
    household = get_household(session, institution_id=institution_id, household_id=household_id)
    granted = _require_archive_consent(
        session, household=household, purpose=purpose, grantee=institution_id
    )
    version = session.scalars(
        select(HouseholdArchiveVersion)
        .where(
            HouseholdArchiveVersion.household_id == household.id,
            HouseholdArchiveVersion.surveyed_on <= as_of,
        )
        .order_by(
            HouseholdArchiveVersion.surveyed_on.desc(),
            HouseholdArchiveVersion.recorded_at.desc(),
            HouseholdArchiveVersion.id.desc(),
        )
        .limit(1)
    ).one_or_none()
    if version is None:
        raise NotFound(
            "households.archive_not_surveyed",
            f"the household had not been surveyed by {as_of.isoformat()}",
            field="as_of",
        )
    return version, granted


def read_archive_version(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    version_id: uuid.UUID,
    purpose: Purpose,
) -> HouseholdArchiveVersion:
    """One version, read for ``purpose`` under the head of household's live consent."""
    household = get_household(session, institution_id=institution_id, household_id=household_id)
    _require_archive_consent(session, household=household, purpose=purpose, grantee=institution_id)
    version = session.get(HouseholdArchiveVersion, version_id)
    if version is None or version.household_id != household.id:
        raise NotFound(
            "households.archive_version_not_found", "no such archive version", field="version_id"
        )
    return version


def archive_history(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_id: uuid.UUID,
    as_of: dt.date,
    purpose: Purpose,
) -> list[tuple[dt.date, archive.ArchiveContent]]:
    """Every survey on or before ``as_of`` (oldest first), read for ``purpose`` under the head
    of household's live consent — what features that look back over years need."""
    household = get_household(session, institution_id=institution_id, household_id=household_id)
    _require_archive_consent(session, household=household, purpose=purpose, grantee=institution_id)
    versions = session.scalars(
        select(HouseholdArchiveVersion)
        .where(
            HouseholdArchiveVersion.household_id == household.id,
            HouseholdArchiveVersion.surveyed_on <= as_of,
        )
        .order_by(HouseholdArchiveVersion.surveyed_on, HouseholdArchiveVersion.recorded_at)
    )
    return [(version.surveyed_on, content_of(version)) for version in versions]


def content_of(version: HouseholdArchiveVersion) -> archive.ArchiveContent:
    """The stored document as the content model (validated on write, so it parses)."""
    return archive.ArchiveContent.model_validate(version.content)


def _purge_archives(
    session: Session, customer_id: uuid.UUID, category: DataCategory, purpose: Purpose
) -> int:
    """Purpose data holder: delete the archive versions collected under this customer's
    consent for ``purpose`` once every such consent has ended."""
    if DataCategory(category) is not ARCHIVE_CATEGORY:
        return 0
    result = session.execute(
        delete(HouseholdArchiveVersion.__table__).where(
            HouseholdArchiveVersion.consenting_customer_id == customer_id,
            HouseholdArchiveVersion.purpose == str(Purpose(purpose)),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


consent.register_purpose_data_holder("parties.household_archives", _purge_archives)


# --------------------------------------------------------------------------- default account


class _DepositAccount(Protocol):
    id: uuid.UUID
    closed: bool


A = TypeVar("A", bound=_DepositAccount)


def pick_default_account(accounts: Sequence[A], marked_id: uuid.UUID | None) -> A | None:
    """The default among a customer's deposit accounts (given in opening order): the marked
    one while it is open, else the first open one; ``None`` when none is open."""
    open_accounts = [a for a in accounts if not a.closed]
    marked = next((a for a in open_accounts if a.id == marked_id), None)
    return marked or (open_accounts[0] if open_accounts else None)


def default_account_id(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID | None:
    """The account the customer marked as default, if any (the caller checks it is open)."""
    return session.scalar(
        select(CustomerDefaultAccount.account_id).where(
            CustomerDefaultAccount.institution_id == institution_id,
            CustomerDefaultAccount.customer_id == customer_id,
        )
    )


def set_default_account(
    session: Session, *, institution_id: uuid.UUID, customer_id: uuid.UUID, account_id: uuid.UUID
) -> CustomerDefaultAccount:
    """Mark ``account_id`` — the caller has checked it is an open deposit account of the
    customer — as the one a party lookup answers with."""
    customer = parties.get_customer(session, institution_id=institution_id, customer_id=customer_id)
    row = session.scalars(
        select(CustomerDefaultAccount)
        .where(CustomerDefaultAccount.customer_id == customer.id)
        .with_for_update()
    ).one_or_none()
    now = clock.now()
    if row is None:
        row = CustomerDefaultAccount(
            customer_id=customer.id,
            institution_id=institution_id,
            account_id=account_id,
            set_at=now,
        )
        session.add(row)
    else:
        row.account_id = account_id
        row.set_at = now
    session.flush()
    return row
