"""Village credit campaign use cases, part one: the campaign, its survey and the cross-check.

Importing a survey turns each household of the file into the platform's records in one
transaction with the file: the head becomes (or is found as) a customer by the blind index of
the ID number — a head whose name differs from the customer on record is a problem, not a
rename — the household is created or found, members not yet recorded are added as named
persons, the signed consent form (授权书) named on the row is recorded as the head's consent to
the archive, the account activity and credit data being used for the campaign, and the survey
is stored as a new archive version. A household with a problem is left out whole and listed in
the import's error report (row, column, code, message; no values); the others are imported. A
household the campaign already has is surveyed again: its new version replaces the old one in
the campaign (the old version stays in the archive's history).

Checks come before writes for each household, so a refused household writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from huinong import clock, tabular
from huinong.credit.campaigns import crosscheck, survey
from huinong.credit.campaigns.models import (
    Campaign,
    CampaignFlag,
    CampaignHousehold,
    CampaignStatus,
    CampaignVillage,
    SurveyImport,
)
from huinong.credit.campaigns.survey_format import RowProblem
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.parties import rules
from huinong.parties import service as parties
from huinong.parties.geography import service as geography
from huinong.parties.households import archive
from huinong.parties.households import service as households
from huinong.parties.households.models import Household, Relationship
from huinong.parties.models import Customer, CustomerKind
from huinong.security.consent import service as consent
from huinong.security.consent.models import DataCategory, EvidenceKind, Purpose

PURPOSE = Purpose.village_credit_campaign
# What the survey's consent form covers: the archive, account activity and credit data.
CONSENTED = (DataCategory.household_archive, DataCategory.transactions, DataCategory.credit)

# --------------------------------------------------------------------------- campaigns


def create_campaign(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    village_codes: Sequence[str],
    scorecard_name: str,
    rule_set_name: str,
    quorum_min_count: int = 3,
    quorum_min_share: str = "0.5",
    created_by: uuid.UUID | None,
) -> Campaign:
    if not village_codes:
        raise InvalidInput(
            "credit.campaign.no_villages",
            "name the villages of the campaign",
            field="village_codes",
        )
    villages = sorted(
        {geography.check_village(session, c, field="village_codes") for c in village_codes}
    )
    if quorum_min_count < 3:
        raise InvalidInput(
            "credit.campaign.quorum_too_small",
            "a review panel's quorum is at least 3 reviewers",
            field="quorum_min_count",
        )
    try:
        share = Decimal(quorum_min_share)
    except InvalidOperation:
        share = Decimal(-1)
    if not Decimal(0) < share <= Decimal(1):
        raise InvalidInput(
            "credit.campaign.invalid_quorum_share",
            "the quorum share is a decimal in (0, 1], e.g. 0.5",
            field="quorum_min_share",
        )
    taken = session.scalar(
        select(Campaign.id).where(Campaign.institution_id == institution_id, Campaign.code == code)
    )
    if taken is not None:
        raise Conflict("credit.campaign.code_taken", f"campaign {code} exists", field="code")
    campaign = Campaign(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        scorecard_name=scorecard_name,
        rule_set_name=rule_set_name,
        quorum_min_count=quorum_min_count,
        quorum_min_share=str(share),
        status=str(CampaignStatus.open),
        created_by=created_by,
        created_at=clock.now(),
    )
    session.add(campaign)
    session.flush()
    session.add_all(CampaignVillage(campaign_id=campaign.id, village_code=v) for v in villages)
    session.flush()
    return campaign


def get_campaign(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID, lock: bool = False
) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = session.scalars(query).one_or_none()
    if campaign is None or campaign.institution_id != institution_id:
        raise NotFound("credit.campaign.not_found", "no such campaign", field="campaign_id")
    return campaign


def get_campaign_by_code(session: Session, *, institution_id: uuid.UUID, code: str) -> Campaign:
    campaign = session.scalars(
        select(Campaign).where(Campaign.institution_id == institution_id, Campaign.code == code)
    ).one_or_none()
    if campaign is None:
        raise NotFound("credit.campaign.not_found", f"no campaign {code}", field="campaign")
    return campaign


def list_campaigns(session: Session, *, institution_id: uuid.UUID) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.institution_id == institution_id).order_by(Campaign.id)
        )
    )


def village_codes(session: Session, *, campaign: Campaign) -> list[str]:
    return list(
        session.scalars(
            select(CampaignVillage.village_code)
            .where(CampaignVillage.campaign_id == campaign.id)
            .order_by(CampaignVillage.village_code)
        )
    )


def require_open(campaign: Campaign, doing: str) -> None:
    if campaign.status == CampaignStatus.signed_off:
        raise Conflict(
            "credit.campaign.signed_off",
            f"the campaign is signed off: nothing is {doing} any more",
            field="campaign_id",
        )


def campaign_households(session: Session, *, campaign: Campaign) -> list[CampaignHousehold]:
    return list(
        session.scalars(
            select(CampaignHousehold)
            .where(CampaignHousehold.campaign_id == campaign.id)
            .order_by(CampaignHousehold.survey_ref)
        )
    )


def get_campaign_household(
    session: Session, *, campaign: Campaign, campaign_household_id: uuid.UUID
) -> CampaignHousehold:
    row = session.get(CampaignHousehold, campaign_household_id)
    if row is None or row.campaign_id != campaign.id:
        raise NotFound(
            "credit.campaign.household_not_found",
            "no such household in this campaign",
            field="campaign_household_id",
        )
    return row


# --------------------------------------------------------------------------- survey import


@dataclass(frozen=True)
class ImportResult:
    survey_import: SurveyImport
    imported: list[CampaignHousehold]
    problems: list[RowProblem]


def _problem(found: survey.SurveyHousehold, column: str, code: str, message: str) -> RowProblem:
    return RowProblem("households", found.row, column, f"credit.survey.{code}", message)


def _check_household(
    session: Session, institution_id: uuid.UUID, campaign: Campaign, found: survey.SurveyHousehold
) -> tuple[Customer | None, bool, RowProblem | None]:
    """The head on record (if any), whether consent is on record, or the problem."""
    head = parties.find_customer_by_id_number(
        session, institution_id=institution_id, id_number=found.head_id_number
    )
    if head is not None and head.name != found.head_name:
        return (
            None,
            False,
            _problem(
                found,
                "head_name",
                "head_name_mismatch",
                "the head's name differs from the customer with this ID number: check the survey",
            ),
        )
    consented = (
        head is not None
        and consent.consent_decision(
            session,
            customer_id=head.id,
            category=DataCategory.household_archive,
            purpose=PURPOSE,
            grantee_institution_id=institution_id,
        )[0].allowed
    )
    if not consented and found.consent_reference is None:
        return (
            None,
            False,
            _problem(
                found,
                "consent_reference",
                "no_consent",
                "no consent on record: give the number of the signed consent form (授权书编号)",
            ),
        )
    taken = session.scalars(
        select(CampaignHousehold.household_id).where(
            CampaignHousehold.campaign_id == campaign.id,
            CampaignHousehold.survey_ref == found.survey_ref,
        )
    ).one_or_none()
    if taken is not None:
        # The reference may only come back for the household that already holds it.
        household = (
            None
            if head is None
            else households.household_of_customer(
                session, institution_id=institution_id, customer_id=head.id
            )
        )
        if household is None or household.id != taken:
            return (
                None,
                False,
                _problem(
                    found,
                    "survey_ref",
                    "survey_ref_taken",
                    "this 户编号 belongs to another household of the campaign",
                ),
            )
    return head, consented, None


def _household_of(
    session: Session, institution_id: uuid.UUID, head: Customer, village: str
) -> Household:
    found = households.household_of_customer(
        session, institution_id=institution_id, customer_id=head.id
    )
    if found is not None:
        return found
    return households.create_household(
        session, institution_id=institution_id, head_customer_id=head.id, village_code=village
    )


def _add_new_members(
    session: Session, institution_id: uuid.UUID, household: Household, found: survey.SurveyHousehold
) -> None:
    known = {
        households.member_id_number(session, m)
        for m in households.members(session, household=household)
    }
    for member in found.members:
        if member.relationship == Relationship.head or member.id_number in known:
            continue
        households.add_member(
            session,
            institution_id=institution_id,
            household_id=household.id,
            relationship=Relationship(member.relationship),
            is_labour=False,
            name=member.name,
            id_number=member.id_number,
        )
        known.add(member.id_number)


def _import_household(
    session: Session,
    institution_id: uuid.UUID,
    campaign: Campaign,
    found: survey.SurveyHousehold,
    head: Customer | None,
    consented: bool,
    surveyor_id: uuid.UUID | None,
) -> CampaignHousehold:
    if head is None:
        head = parties.create_customer(
            session,
            institution_id=institution_id,
            kind=CustomerKind.individual,
            name=found.head_name,
            id_number=found.head_id_number,
            phone=found.phone,
            village_code=found.village_code,
        )
    household = _household_of(session, institution_id, head, found.village_code)
    _add_new_members(session, institution_id, household, found)
    if not consented:
        assert found.consent_reference is not None
        consent.grant_consent(
            session,
            institution_id=institution_id,
            customer_id=head.id,
            categories=list(CONSENTED),
            purpose=PURPOSE,
            evidence_kind=EvidenceKind.paper_form,
            evidence_reference=found.consent_reference,
        )
    version = households.record_archive_version(
        session,
        institution_id=institution_id,
        household_id=household.id,
        purpose=PURPOSE,
        surveyed_on=found.surveyed_on,
        source=archive.Source.campaign_import,
        content=found.content,
        surveyor_id=surveyor_id,
    )
    row = session.scalars(
        select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == campaign.id,
            CampaignHousehold.household_id == household.id,
        )
    ).one_or_none()
    if row is None:
        row = CampaignHousehold(
            id=uuid7(),
            institution_id=institution_id,
            campaign_id=campaign.id,
            household_id=household.id,
            survey_ref=found.survey_ref,
            archive_version_id=version.id,
            created_at=clock.now(),
        )
        session.add(row)
    else:
        row.survey_ref = found.survey_ref
        row.archive_version_id = version.id
    session.flush()
    return row


def import_survey(
    session: Session,
    *,
    institution_id: uuid.UUID,
    campaign_id: uuid.UUID,
    file_name: str,
    content: bytes,
    surveyed_on: dt.date,
    encoding: str | None = None,
    imported_by: uuid.UUID | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a survey file into the campaign (see the module docstring)."""
    campaign = get_campaign(
        session, institution_id=institution_id, campaign_id=campaign_id, lock=True
    )
    require_open(campaign, "imported")
    parsed = survey.parse(
        file_name,
        content,
        surveyed_on=surveyed_on,
        encoding=encoding,
        villages=village_codes(session, campaign=campaign),
    )
    problems = list(parsed.problems)
    imported = []
    for found in parsed.households:
        head, consented, problem = _check_household(session, institution_id, campaign, found)
        if problem is not None:
            problems.append(problem)
        else:
            imported.append(
                _import_household(
                    session, institution_id, campaign, found, head, consented, imported_by
                )
            )
        if progress is not None:
            progress(1)
    record = SurveyImport(
        id=uuid7(),
        institution_id=institution_id,
        campaign_id=campaign.id,
        file_name=file_name[:200],
        household_rows=parsed.household_rows,
        imported=len(imported),
        rejected=parsed.household_rows - len(imported),
        problems=[
            {
                "sheet": p.sheet,
                "row": p.row,
                "column": p.column,
                "code": p.code,
                "message": p.message,
            }
            for p in problems
        ],
        imported_by=imported_by,
        imported_at=clock.now(),
    )
    session.add(record)
    session.flush()
    return ImportResult(record, imported, problems)


def get_survey_import(
    session: Session, *, campaign: Campaign, import_id: uuid.UUID
) -> SurveyImport:
    row = session.get(SurveyImport, import_id)
    if row is None or row.campaign_id != campaign.id:
        raise NotFound("credit.survey.import_not_found", "no such import", field="import_id")
    return row


def import_problems_csv(record: SurveyImport) -> bytes:
    """The import's error report: UTF-8 with BOM so Excel opens it; no values from the file."""
    return survey.problems_csv(
        [
            RowProblem(p["sheet"], p["row"], p["column"], p["code"], p["message"])
            for p in record.problems
        ]
    )


# --------------------------------------------------------------------------- cross-check


LAND_REGISTER = tabular.Layout(
    error_prefix="credit.land_register",
    columns={
        "name": ("name", "承包方姓名", "姓名"),
        "id_number": ("id_number", "承包方身份证号", "身份证号", "身份证号码"),
        "area_mu": ("area_mu", "确权面积(亩)", "确权面积", "承包面积(亩)"),
    },
    required=("id_number", "area_mu"),
    what="land register",
)


def parse_land_register(file_name: str, content: bytes) -> dict[str, Decimal]:
    """A village land register (确权登记, CSV in UTF-8 or GBK, or XLSX): ID number → the
    confirmed contracted area in mu. A row that does not read refuses the file, naming it."""
    register: dict[str, Decimal] = {}
    for number, cells in tabular.parse(file_name, content, LAND_REGISTER).rows:
        try:
            area = Decimal(cells.get("area_mu", "").strip())
        except InvalidOperation:
            area = Decimal(-1)
        if not area.is_finite() or area < 0:
            raise tabular.refuse(
                "credit.land_register", "invalid_area", f"row {number}: the area is not in mu"
            )
        register[rules.normalise_id_number(cells.get("id_number", ""))] = area
    return register


def cross_check(
    session: Session,
    *,
    institution_id: uuid.UUID,
    campaign_id: uuid.UUID,
    land_register: dict[str, Decimal] | None = None,
    settings: crosscheck.Settings | None = None,
) -> list[CampaignFlag]:
    """Run the cross-checks over the campaign's surveys and store the flags (replacing the
    last run's). Phones and ID numbers are compared by their blind indexes."""
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    rows = campaign_households(session, campaign=campaign)
    facts = []
    register_by_ref: dict[str, Decimal] = {}
    for row in rows:
        household = households.get_household(
            session, institution_id=institution_id, household_id=row.household_id
        )
        head = parties.get_customer(
            session, institution_id=institution_id, customer_id=household.head_customer_id
        )
        members = households.members(session, household=household)
        id_keys = {head.id_number_index, *(m.id_number_index for m in members if m.id_number_index)}
        version = households.read_archive_version(
            session,
            institution_id=institution_id,
            household_id=household.id,
            version_id=row.archive_version_id,
            purpose=PURPOSE,
        )
        facts.append(
            crosscheck.facts_from_archive(
                row.survey_ref,
                households.content_of(version),
                phone_keys=tuple(k for k in (head.phone_index,) if k),
                id_keys=tuple(sorted(id_keys)),
            )
        )
        if land_register is not None:
            number = parties.identifiers(session, head).id_number
            if number in land_register:
                register_by_ref[row.survey_ref] = land_register[number]
    found = crosscheck.crosscheck(
        facts,
        register_mu=register_by_ref if land_register is not None else None,
        settings=settings or crosscheck.Settings(),
    )
    session.execute(delete(CampaignFlag).where(CampaignFlag.campaign_id == campaign.id))
    by_ref = {row.survey_ref: row for row in rows}
    now = clock.now()
    flags = [
        CampaignFlag(
            id=uuid7(),
            campaign_household_id=by_ref[flag.ref].id,
            campaign_id=campaign.id,
            code=flag.code,
            severity=str(flag.severity),
            reason=flag.reason[:500],
            details=dict(flag.details),
            created_at=now,
        )
        for flag in found
    ]
    session.add_all(flags)
    session.flush()
    return flags


def list_flags(session: Session, *, campaign: Campaign) -> list[CampaignFlag]:
    return list(
        session.scalars(
            select(CampaignFlag)
            .where(CampaignFlag.campaign_id == campaign.id)
            .order_by(CampaignFlag.campaign_household_id, CampaignFlag.id)
        )
    )
