"""Households on both databases: numbers, member rules, encrypted member ID numbers, archive
versions as of a date, the consent guard and the purge after a consent ends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from huinong.config import get_settings
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import luhn_is_valid
from huinong.institutions.models import Institution
from huinong.parties import service as parties
from huinong.parties.households import archive
from huinong.parties.households import service as households
from huinong.parties.households.models import (
    Household,
    HouseholdArchiveVersion,
    HouseholdMember,
    Relationship,
)
from huinong.parties.models import CustomerKind
from huinong.security.consent import service as consent
from huinong.security.consent.models import DataCategory, EvidenceKind, Purpose
from tests.api.conftest import race, resident_id
from tests.conftest import SAMPLE_VILLAGE, new_institution

CAMPAIGN = Purpose.village_credit_campaign
VILLAGE = SAMPLE_VILLAGE
pytestmark = pytest.mark.usefixtures("sample_villages")


def new_customer(
    factory: sessionmaker[Session], institution: Institution, name: str = "王五"
) -> uuid.UUID:
    with transaction(factory) as session:
        return parties.create_customer(
            session,
            institution_id=institution.id,
            kind=CustomerKind.individual,
            name=name,
            id_number=resident_id(),
        ).id


def new_household(factory, institution, head: uuid.UUID | None = None):
    head = head or new_customer(factory, institution)
    return run_in_transaction(
        factory,
        lambda s: households.create_household(
            s, institution_id=institution.id, head_customer_id=head, village_code=VILLAGE
        ),
    )


def grant(factory, institution, customer_id, purpose=CAMPAIGN):
    return run_in_transaction(
        factory,
        lambda s: consent.grant_consent(
            s,
            institution_id=institution.id,
            customer_id=customer_id,
            categories=[DataCategory.household_archive],
            purpose=purpose,
            evidence_kind=EvidenceKind.paper_form,
            evidence_reference="ZCSX-2026-0001",
        ),
    )


def survey(members: int = 3, labour: int = 2, **fields: Any) -> dict[str, Any]:
    return {"member_count": members, "labour_count": labour, "cultivated_land_mu": "8", **fields}


def record(factory, institution, household_id, surveyed_on, purpose=CAMPAIGN, **fields):
    return run_in_transaction(
        factory,
        lambda s: households.record_archive_version(
            s,
            institution_id=institution.id,
            household_id=household_id,
            purpose=purpose,
            surveyed_on=surveyed_on,
            source=archive.Source.field_survey,
            content=survey(**fields),
        ),
    )


def as_of(factory, institution, household_id, day, purpose=CAMPAIGN):
    with factory() as session:
        version, _ = households.archive_as_of(
            session,
            institution_id=institution.id,
            household_id=household_id,
            as_of=day,
            purpose=purpose,
        )
        return version


@pytest.fixture
def bank(factory) -> Institution:
    return new_institution(factory, prefix="HH")


# --------------------------------------------------------------------------- households


def test_a_household_starts_with_its_head_and_a_check_digit_number(factory, bank):
    head = new_customer(factory, bank)
    first = new_household(factory, bank, head)
    second = new_household(factory, bank)
    assert luhn_is_valid(first.household_number) and len(first.household_number) == 12
    assert int(second.household_number[:-1]) == int(first.household_number[:-1]) + 1
    with factory() as session:
        found = households.get_household(session, institution_id=bank.id, household_id=first.id)
        members = households.members(session, household=found)
        assert [(m.customer_id, m.relationship) for m in members] == [(head, "head")]
        assert found.village_code == VILLAGE
        by_number = households.get_household_by_number(
            session, institution_id=bank.id, household_number=first.household_number
        )
        assert by_number.id == first.id
        mistyped = first.household_number[:-1] + str((int(first.household_number[-1]) + 1) % 10)
        with pytest.raises(InvalidInput) as caught:
            households.get_household_by_number(
                session, institution_id=bank.id, household_number=mistyped
            )
        assert caught.value.field == "household_number"


@pytest.mark.parametrize("code", ["61042310520", "6104231052011", "61042310520X"])
def test_a_village_code_has_twelve_digits(factory, bank, code):
    head = new_customer(factory, bank)
    with pytest.raises(InvalidInput) as caught, transaction(factory) as session:
        households.create_household(
            session, institution_id=bank.id, head_customer_id=head, village_code=code
        )
    assert caught.value.field == "village_code"


def test_a_household_s_village_is_a_stored_village(factory, bank):
    head = new_customer(factory, bank)
    for code, error in (
        ("370281102999", "geography.village_not_found"),
        ("370281102000", "geography.not_a_village"),
    ):
        with pytest.raises(InvalidInput) as caught, transaction(factory) as session:
            households.create_household(
                session, institution_id=bank.id, head_customer_id=head, village_code=code
            )
        assert (caught.value.code, caught.value.field) == (error, "village_code")
    # The database holds the rule too: a row naming an unknown village is refused.
    household = new_household(factory, bank, head)
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(
            update(Household)
            .where(Household.id == household.id)
            .values(village_code="370281102999")
        )


def add(factory, bank, household, relationship, **who):
    return run_in_transaction(
        factory,
        lambda s: households.add_member(
            s,
            institution_id=bank.id,
            household_id=household.id,
            relationship=relationship,
            is_labour=True,
            **who,
        ),
    )


def change_head(factory, bank, household, member_id, previous="spouse", relationships=None):
    return run_in_transaction(
        factory,
        lambda s: households.change_head(
            s,
            institution_id=bank.id,
            household_id=household.id,
            member_id=member_id,
            previous_head_relationship=Relationship(previous),
            relationships=relationships,
        ),
    )


def test_the_head_changes_to_a_customer_member(factory, bank):
    father = new_customer(factory, bank, "王父")
    household = new_household(factory, bank, father)
    son = add(
        factory,
        bank,
        household,
        Relationship.child,
        customer_id=new_customer(factory, bank, "王子"),
    )
    daughter = add(factory, bank, household, Relationship.child, name="王女")
    changed = change_head(
        factory,
        bank,
        household,
        son.id,
        previous="parent",
        relationships={daughter.id: Relationship.sibling},
    )
    assert changed.head_customer_id == son.customer_id
    with factory() as session:
        found = households.get_household(session, institution_id=bank.id, household_id=household.id)
        assert found.head_customer_id == son.customer_id
        got = {m.id: m.relationship for m in households.members(session, household=found)}
    heads = [m for m, r in got.items() if r == "head"]
    assert heads == [son.id]
    assert got[daughter.id] == "sibling"
    assert sorted(got.values()) == ["head", "parent", "sibling"]


def test_a_head_change_is_refused_when_it_would_break_a_rule(factory, bank):
    head = new_customer(factory, bank)
    household = new_household(factory, bank, head)
    named = add(factory, bank, household, Relationship.spouse, name="李梅")
    son = add(factory, bank, household, Relationship.child, customer_id=new_customer(factory, bank))
    before = run_in_transaction(
        factory,
        lambda s: [
            (m.id, m.relationship)
            for m in households.members(
                s,
                household=households.get_household(
                    s, institution_id=bank.id, household_id=household.id
                ),
            )
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        change_head(factory, bank, household, named.id)
    assert (caught.value.code, caught.value.field) == (
        "households.head_not_a_customer",
        "member_id",
    )
    with pytest.raises(InvalidInput) as caught:
        change_head(factory, bank, household, son.id, previous="head")
    assert caught.value.field == "previous_head_relationship"
    with pytest.raises(InvalidInput) as caught:
        change_head(factory, bank, household, son.id, relationships={son.id: Relationship.child})
    assert caught.value.field == "relationships"
    with pytest.raises(InvalidInput) as caught:
        change_head(factory, bank, household, son.id, relationships={named.id: Relationship.head})
    assert caught.value.field == "relationships"
    with pytest.raises(NotFound):
        change_head(factory, bank, household, uuid.uuid4())
    head_member = before[0][0]
    with pytest.raises(Conflict) as caught:
        change_head(factory, bank, household, head_member)
    assert caught.value.code == "households.already_head"
    after = run_in_transaction(
        factory,
        lambda s: [
            (m.id, m.relationship)
            for m in households.members(
                s,
                household=households.get_household(
                    s, institution_id=bank.id, household_id=household.id
                ),
            )
        ],
    )
    assert after == before
    # The database holds "one head" too.
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(
            update(HouseholdMember).where(HouseholdMember.id == son.id).values(relationship="head")
        )


def test_a_customer_belongs_to_one_household(factory, bank):
    head = new_customer(factory, bank)
    household = new_household(factory, bank, head)
    other = new_household(factory, bank)
    spouse = new_customer(factory, bank, "李梅")
    run_in_transaction(
        factory,
        lambda s: households.add_member(
            s,
            institution_id=bank.id,
            household_id=household.id,
            relationship=Relationship.spouse,
            is_labour=True,
            customer_id=spouse,
        ),
    )
    for customer_id in (spouse, head):
        with pytest.raises(Conflict) as caught, transaction(factory) as session:
            households.add_member(
                session,
                institution_id=bank.id,
                household_id=other.id,
                relationship=Relationship.sibling,
                is_labour=False,
                customer_id=customer_id,
            )
        assert caught.value.code == "households.customer_in_household"
    with pytest.raises(Conflict) as caught, transaction(factory) as session:
        households.create_household(session, institution_id=bank.id, head_customer_id=spouse)
    assert caught.value.field == "head_customer_id"


def test_two_clerks_adding_one_customer_to_two_households_at_once(factory, bank):
    homes = [new_household(factory, bank) for _ in range(2)]
    child = new_customer(factory, bank, "王小")

    def add(i: int) -> str:
        try:
            run_in_transaction(
                factory,
                lambda s: households.add_member(
                    s,
                    institution_id=bank.id,
                    household_id=homes[i].id,
                    relationship=Relationship.child,
                    is_labour=False,
                    customer_id=child,
                ),
            )
        except Conflict as refused:
            return refused.code
        return "ok"

    assert sorted(race(2, add)) == ["households.customer_in_household", "ok"]
    with factory() as session:
        rows = session.scalar(
            select(func.count())
            .select_from(HouseholdMember)
            .where(HouseholdMember.customer_id == child)
        )
    assert rows == 1


def test_one_head_and_the_head_stays(factory, bank):
    household = new_household(factory, bank)
    with pytest.raises(Conflict) as caught, transaction(factory) as session:
        households.add_member(
            session,
            institution_id=bank.id,
            household_id=household.id,
            relationship=Relationship.head,
            is_labour=True,
            name="张大",
        )
    assert (caught.value.code, caught.value.field) == ("households.one_head", "relationship")
    with factory() as session:
        head = households.members(session, household=household)[0]
    with pytest.raises(Conflict) as caught, transaction(factory) as session:
        households.remove_member(
            session, institution_id=bank.id, household_id=household.id, member_id=head.id
        )
    assert caught.value.code == "households.head_not_removable"


def test_a_named_member_s_id_number_is_encrypted_and_removable(factory, bank):
    household = new_household(factory, bank)
    number = resident_id()
    member = run_in_transaction(
        factory,
        lambda s: households.add_member(
            s,
            institution_id=bank.id,
            household_id=household.id,
            relationship=Relationship.parent,
            is_labour=False,
            name="王老汉",
            birth_year=1950,
            id_number=number,
        ),
    )
    with factory() as session:
        row = session.get(HouseholdMember, member.id)
        assert row is not None and row.id_number_ciphertext is not None
        assert number.encode() not in row.id_number_ciphertext
        assert number not in (row.id_number_index or "")
        assert households.member_id_number(session, row) == number
    run_in_transaction(
        factory,
        lambda s: households.remove_member(
            s, institution_id=bank.id, household_id=household.id, member_id=member.id
        ),
    )
    with factory() as session:
        assert session.get(HouseholdMember, member.id) is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "x", "customer_id": uuid.uuid4()}, "customer_id"),
        ({}, "customer_id"),
        ({"name": "  "}, "name"),
        ({"name": "x", "birth_year": 1800}, "birth_year"),
        ({"name": "x", "id_number": "110105194912310021"}, "id_number"),  # bad check digit
    ],
)
def test_member_input_errors_name_the_field(factory, bank, fields, field):
    household = new_household(factory, bank)
    with pytest.raises(InvalidInput) as caught, transaction(factory) as session:
        households.add_member(
            session,
            institution_id=bank.id,
            household_id=household.id,
            relationship=Relationship.child,
            is_labour=False,
            **fields,
        )
    assert caught.value.field == field


def test_another_institution_s_household_and_customers_are_not_found(factory, bank):
    household = new_household(factory, bank)
    other = new_institution(factory, prefix="HX")
    theirs = new_customer(factory, other)
    with factory() as session:
        with pytest.raises(NotFound):
            households.get_household(session, institution_id=other.id, household_id=household.id)
        assert households.list_households(session, institution_id=other.id) == []
    with pytest.raises(NotFound), transaction(factory) as session:
        households.add_member(
            session,
            institution_id=bank.id,
            household_id=household.id,
            relationship=Relationship.child,
            is_labour=False,
            customer_id=theirs,
        )


# --------------------------------------------------------------------------- archive


def test_versions_and_as_of(factory, bank):
    household = new_household(factory, bank)
    grant(factory, bank, household.head_customer_id)
    first = record(factory, bank, household.id, dt.date(2025, 3, 1), members=3)
    second = record(factory, bank, household.id, dt.date(2026, 3, 1), members=4)
    with pytest.raises(NotFound) as caught:
        as_of(factory, bank, household.id, dt.date(2025, 2, 28))
    assert caught.value.code == "households.archive_not_surveyed"
    assert as_of(factory, bank, household.id, dt.date(2025, 3, 1)).id == first.id
    assert as_of(factory, bank, household.id, dt.date(2025, 12, 31)).id == first.id
    assert as_of(factory, bank, household.id, dt.date(2026, 6, 30)).id == second.id
    # A correction of the 2025 survey is a new version of the same date, and wins from then on;
    # the earlier versions stay as they were.
    correction = record(factory, bank, household.id, dt.date(2025, 3, 1), members=5)
    corrected = as_of(factory, bank, household.id, dt.date(2025, 12, 31))
    assert corrected.id == correction.id and corrected.content["member_count"] == 5
    assert as_of(factory, bank, household.id, dt.date(2026, 6, 30)).id == second.id
    with factory() as session:
        listed = households.list_archive_versions(
            session, institution_id=bank.id, household_id=household.id
        )
        assert [v.id for v in listed] == [second.id, correction.id, first.id]
        assert session.get(HouseholdArchiveVersion, first.id).content["member_count"] == 3


def test_an_invalid_archive_names_the_field_and_writes_nothing(factory, bank):
    household = new_household(factory, bank)
    grant(factory, bank, household.head_customer_id)
    with pytest.raises(InvalidInput) as caught:
        record(factory, bank, household.id, dt.date(2026, 1, 1), members=1, labour=2)
    assert caught.value.field == "archive.labour_count"
    with pytest.raises(InvalidInput) as caught:
        record(factory, bank, household.id, dt.date(2999, 1, 1))
    assert caught.value.field == "surveyed_on"
    with factory() as session:
        assert (
            households.list_archive_versions(
                session, institution_id=bank.id, household_id=household.id
            )
            == []
        )


def test_without_consent_nothing_is_collected_or_read(factory, bank):
    household = new_household(factory, bank)
    with pytest.raises(Forbidden) as caught:
        record(factory, bank, household.id, dt.date(2026, 1, 1))
    assert caught.value.code == "consent.missing"
    grant(factory, bank, household.head_customer_id, Purpose.credit_assessment)
    record(factory, bank, household.id, dt.date(2026, 1, 1), purpose=Purpose.credit_assessment)
    # Consent to one purpose does not open the archive for another.
    with pytest.raises(Forbidden) as caught:
        as_of(factory, bank, household.id, dt.date(2026, 1, 1), purpose=Purpose.marketing)
    assert caught.value.code == "consent.missing"


def test_a_revoked_consent_refuses_at_once_and_the_purge_deletes_its_versions(factory, bank):
    household = new_household(factory, bank)
    head = household.head_customer_id
    campaign = grant(factory, bank, head, CAMPAIGN)
    grant(factory, bank, head, Purpose.credit_assessment)
    record(factory, bank, household.id, dt.date(2025, 5, 1), purpose=CAMPAIGN)
    record(factory, bank, household.id, dt.date(2025, 6, 1), purpose=CAMPAIGN)
    kept = record(
        factory, bank, household.id, dt.date(2025, 7, 1), purpose=Purpose.credit_assessment
    )
    run_in_transaction(
        factory,
        lambda s: consent.revoke_consent(s, institution_id=bank.id, consent_id=campaign.id),
    )
    with pytest.raises(Forbidden) as caught:
        as_of(factory, bank, household.id, dt.date(2026, 1, 1), purpose=CAMPAIGN)
    assert caught.value.code == "consent.revoked"
    assert "parties.household_archives" in consent.purpose_data_holders()
    actions = run_in_transaction(factory, lambda s: consent.purge_customer(s, customer_id=head))
    removed = {
        (a.category, a.purpose): a.removed.get("parties.household_archives") for a in actions
    }
    assert removed == {("household_archive", "village_credit_campaign"): 2}
    with factory() as session:
        left = households.list_archive_versions(
            session, institution_id=bank.id, household_id=household.id
        )
    assert [v.id for v in left] == [kept.id]
    # A second run finds nothing to do.
    assert run_in_transaction(factory, lambda s: consent.purge_customer(s, customer_id=head)) == []


def test_default_account_marking(factory, bank):
    customer = new_customer(factory, bank)
    account_id = uuid.uuid4()  # the API checks the account; here only the marking is stored
    with factory() as session:
        assert (
            households.default_account_id(session, institution_id=bank.id, customer_id=customer)
            is None
        )
    other = new_institution(factory, prefix="HY")
    with pytest.raises(NotFound), transaction(factory) as session:
        households.set_default_account(
            session, institution_id=other.id, customer_id=customer, account_id=account_id
        )


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI (which reads HUINONG_DATABASE_URL once, cached) at the test database."""
    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_database")
def test_cli_lists_households_and_their_last_survey(factory, bank):
    from typer.testing import CliRunner

    from huinong.cli.households import app

    surveyed = new_household(factory, bank)
    grant(factory, bank, surveyed.head_customer_id)
    record(factory, bank, surveyed.id, dt.date(2026, 3, 1))
    never = new_household(factory, bank)
    result = CliRunner().invoke(app, ["list", "--institution", bank.code, "--village", VILLAGE])
    assert result.exit_code == 0, result.output
    assert surveyed.household_number in result.output and "2026-03-01" in result.output
    assert never.household_number in result.output and "never" in result.output
    assert "2 household(s), 1 never surveyed" in result.output
    unknown = CliRunner().invoke(app, ["list", "--institution", "NO-SUCH-BANK"])
    assert unknown.exit_code == 1
