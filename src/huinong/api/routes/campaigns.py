"""Village credit campaigns (整村授信), their review panels, and bureau files.

Who does what (the permission table has the rows):

* account managers create a campaign, import its survey, run the cross-check, name the panel
  and run the batch decision; an approver who did not run it signs it off;
* reviewers (the ``reviewer`` role: village cadres and key persons) see their review sheet —
  the households to rate and only their own ratings — and rate; every panel-wide read (all
  ratings, aggregates, the report) is granted to bank roles only, so a reviewer asking for
  others' ratings is refused with 403 before anything is read (背靠背: blind review);
* risk officers import bureau files.

Files travel base64-encoded in the JSON body. Reports come as JSON, CSV or HTML
(``?format=``); the publication list (公示) masks names and exists only after sign-off.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.uploads import decode_file
from huinong.credit import bureau_files
from huinong.credit.campaigns import decisions, review
from huinong.credit.campaigns import service as campaigns
from huinong.credit.campaigns.models import Campaign, CampaignHousehold, PeerRating
from huinong.credit.campaigns.schemas import (
    AggregateRead,
    BureauImportRead,
    CampaignCreate,
    CampaignHouseholdRead,
    CampaignRead,
    CrossCheckCreate,
    DecisionRun,
    DecisionRunRead,
    FileUpload,
    FlagRead,
    RatingRead,
    RatingSet,
    ReviewerCreate,
    ReviewerRead,
    SheetLine,
    SurveyImportRead,
    SurveyUpload,
)
from huinong.credit.models import CreditDecision
from huinong.parties import service as parties
from huinong.parties.households import service as households
from huinong.security.audit import service as audit
from huinong.security.principals import Principal

router = APIRouter(tags=["credit campaigns"])
ReportFormat = Literal["json", "csv", "html"]


def _audit(
    session: Session, principal: Principal, action: str, campaign_id: Any, **detail: Any
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=principal.institution_id,
        actor=principal,
        object_type="credit_campaign",
        object_id=str(campaign_id),
        detail=detail or None,
    )


def _campaign(s: Session, principal: Principal, campaign_id: uuid.UUID) -> Campaign:
    return campaigns.get_campaign(
        s, institution_id=principal.institution_id, campaign_id=campaign_id
    )


def campaign_read(s: Session, campaign: Campaign) -> CampaignRead:
    return CampaignRead(
        id=campaign.id,
        code=campaign.code,
        name=campaign.name,
        village_codes=campaigns.village_codes(s, campaign=campaign),
        scorecard_name=campaign.scorecard_name,
        rule_set_name=campaign.rule_set_name,
        quorum_min_count=campaign.quorum_min_count,
        quorum_min_share=campaign.quorum_min_share,
        status=campaign.status,
        created_at=campaign.created_at,
        decided_as_of=campaign.decided_as_of,
        decided_at=campaign.decided_at,
        signed_off_at=campaign.signed_off_at,
    )


def rating_read(rating: PeerRating) -> RatingRead:
    return RatingRead.model_validate(rating, from_attributes=True)


@router.post("/credit/campaigns", status_code=201, response_model=CampaignRead)
def create_campaign(body: CampaignCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> CampaignRead:
        campaign = campaigns.create_campaign(
            s,
            institution_id=principal.institution_id,
            created_by=principal.subject_id,
            **body.model_dump(),
        )
        _audit(s, principal, "credit.campaign_created", campaign.id, code=campaign.code)
        return campaign_read(s, campaign)

    return database.run(work)


@router.get("/credit/campaigns", response_model=list[CampaignRead])
def list_campaigns(principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: [
            campaign_read(s, c)
            for c in campaigns.list_campaigns(s, institution_id=principal.institution_id)
        ]
    )


@router.get("/credit/campaigns/{campaign_id}", response_model=CampaignRead)
def get_campaign(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(lambda s: campaign_read(s, _campaign(s, principal, campaign_id)))


# --------------------------------------------------------------------------- survey


@router.post(
    "/credit/campaigns/{campaign_id}/survey-imports",
    status_code=201,
    response_model=SurveyImportRead,
)
def import_survey(
    campaign_id: uuid.UUID, body: SurveyUpload, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Import the household survey (XLSX or CSV, UTF-8 or GBK). Households with problems are
    left out and listed in the import's error report; the others are imported."""
    content = decode_file(body.content_base64, domain="credit.survey")

    def work(s: Session) -> SurveyImportRead:
        result = campaigns.import_survey(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            file_name=body.file_name,
            content=content,
            surveyed_on=body.surveyed_on,
            encoding=body.encoding,
            imported_by=principal.subject_id,
        )
        record = result.survey_import
        _audit(
            s,
            principal,
            "credit.survey_imported",
            campaign_id,
            imported=record.imported,
            rejected=record.rejected,
        )
        return SurveyImportRead(
            id=record.id,
            file_name=record.file_name,
            household_rows=record.household_rows,
            imported=record.imported,
            rejected=record.rejected,
            problems=len(record.problems),
            imported_at=record.imported_at,
        )

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/survey-imports/{import_id}/errors")
def survey_errors(
    campaign_id: uuid.UUID, import_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    """The import's problems as CSV (row, column, code, message; no values from the file)."""
    content = database.run(
        lambda s: campaigns.import_problems_csv(
            campaigns.get_survey_import(
                s, campaign=_campaign(s, principal, campaign_id), import_id=import_id
            )
        )
    )
    return Response(content, media_type="text/csv; charset=utf-8")


@router.get(
    "/credit/campaigns/{campaign_id}/households", response_model=list[CampaignHouseholdRead]
)
def campaign_households(
    campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def work(s: Session) -> list[CampaignHouseholdRead]:
        campaign = _campaign(s, principal, campaign_id)
        lines = []
        for row in campaigns.campaign_households(s, campaign=campaign):
            household = households.get_household(
                s, institution_id=principal.institution_id, household_id=row.household_id
            )
            decision = s.get(CreditDecision, row.decision_id) if row.decision_id else None
            lines.append(
                CampaignHouseholdRead(
                    id=row.id,
                    survey_ref=row.survey_ref,
                    household_id=row.household_id,
                    household_number=household.household_number,
                    decision_id=row.decision_id,
                    outcome=decision.outcome if decision else None,
                    grade=decision.grade if decision else None,
                    limit_fen=decision.limit_fen if decision else None,
                )
            )
        return lines

    return database.run(work)


@router.post("/credit/campaigns/{campaign_id}/cross-check", response_model=list[FlagRead])
def cross_check(
    campaign_id: uuid.UUID, body: CrossCheckCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Check the surveys against each other, the land register and the anomaly score; the
    flags replace the last run's."""
    register = None
    if body.land_register is not None:
        upload = body.land_register
        register = campaigns.parse_land_register(
            upload.file_name, decode_file(upload.content_base64, domain="credit.land_register")
        )

    def work(s: Session) -> list[FlagRead]:
        flags = campaigns.cross_check(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            land_register=register,
        )
        _audit(s, principal, "credit.campaign_cross_checked", campaign_id, flags=len(flags))
        return _flag_reads(s, flags)

    return database.run(work)


def _flag_reads(s: Session, flags: list[Any]) -> list[FlagRead]:
    refs = {
        row.id: row.survey_ref
        for row in (s.get(CampaignHousehold, f.campaign_household_id) for f in flags)
        if row is not None
    }
    return [
        FlagRead(
            campaign_household_id=f.campaign_household_id,
            survey_ref=refs[f.campaign_household_id],
            code=f.code,
            severity=f.severity,
            reason=f.reason,
        )
        for f in flags
    ]


@router.get("/credit/campaigns/{campaign_id}/flags", response_model=list[FlagRead])
def list_flags(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: _flag_reads(
            s, campaigns.list_flags(s, campaign=_campaign(s, principal, campaign_id))
        )
    )


# --------------------------------------------------------------------------- review


@router.post(
    "/credit/campaigns/{campaign_id}/reviewers", status_code=201, response_model=ReviewerRead
)
def add_reviewer(
    campaign_id: uuid.UUID, body: ReviewerCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    def work(s: Session) -> ReviewerRead:
        reviewer = review.add_reviewer(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            staff_user_id=body.staff_user_id,
            kind=body.kind,
        )
        _audit(s, principal, "credit.reviewer_added", campaign_id, reviewer=str(reviewer.id))
        return ReviewerRead(
            id=reviewer.id, staff_user_id=reviewer.staff_user_id, kind=reviewer.kind
        )

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/review-sheet", response_model=list[SheetLine])
def review_sheet(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The caller's sheet: every household to rate, with the caller's own rating only."""

    def work(s: Session) -> list[SheetLine]:
        campaign = review.campaign_of_reviewer(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            staff_user_id=principal.subject_id,
        )
        mine = {
            r.campaign_household_id: r
            for r in review.my_ratings(
                s,
                institution_id=principal.institution_id,
                campaign_id=campaign.id,
                staff_user_id=principal.subject_id,
            )
        }
        lines = []
        for row in campaigns.campaign_households(s, campaign=campaign):
            household = households.get_household(
                s, institution_id=principal.institution_id, household_id=row.household_id
            )
            head = parties.get_customer(
                s, institution_id=principal.institution_id, customer_id=household.head_customer_id
            )
            lines.append(
                SheetLine(
                    campaign_household_id=row.id,
                    survey_ref=row.survey_ref,
                    household_number=household.household_number,
                    head_name=head.name,
                    my_rating=rating_read(mine[row.id]) if row.id in mine else None,
                )
            )
        _audit(s, principal, "credit.review_sheet_read", campaign.id)
        return lines

    return database.run(work)


@router.put(
    "/credit/campaigns/{campaign_id}/ratings/{campaign_household_id}", response_model=RatingRead
)
def rate(
    campaign_id: uuid.UUID,
    campaign_household_id: uuid.UUID,
    body: RatingSet,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> Any:
    """The caller's rating of one household (sent again, it replaces the caller's own)."""

    def work(s: Session) -> RatingRead:
        review.campaign_of_reviewer(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            staff_user_id=principal.subject_id,
        )
        rating = review.rate(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            staff_user_id=principal.subject_id,
            campaign_household_id=campaign_household_id,
            **body.model_dump(),
        )
        _audit(s, principal, "credit.household_rated", campaign_id, rating=str(rating.id))
        return rating_read(rating)

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/ratings", response_model=list[RatingRead])
def all_ratings(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Every reviewer's ratings — bank roles only; never a reviewer (blind review)."""

    def work(s: Session) -> list[RatingRead]:
        campaign = _campaign(s, principal, campaign_id)
        _audit(s, principal, "credit.ratings_read", campaign.id)
        return [rating_read(r) for r in review.all_ratings(s, campaign=campaign)]

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/peer-aggregates", response_model=list[AggregateRead])
def peer_aggregates(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> list[AggregateRead]:
        found = review.aggregates(s, campaign=_campaign(s, principal, campaign_id))
        reads = []
        for household_id, result in found.items():
            scored = isinstance(result, review.peer_review.Aggregate)
            reads.append(
                AggregateRead(
                    campaign_household_id=household_id,
                    status=result.status,
                    reviewer_count=result.reviewer_count,
                    integrity=str(result.integrity) if scored else None,
                    suggested_limit_fen=result.suggested_limit_fen if scored else None,
                    recommend=result.recommend if scored else None,
                    recommend_share=str(result.recommend_share) if scored else None,
                    disagreement=result.disagreement if scored else None,
                )
            )
        return reads

    return database.run(work)


# --------------------------------------------------------------------------- decision


@router.post("/credit/campaigns/{campaign_id}/decision", response_model=DecisionRunRead)
def decide(
    campaign_id: uuid.UUID, body: DecisionRun, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Score and decide every surveyed household as of ``as_of`` (may run again until the
    campaign is signed off)."""

    def work(s: Session) -> DecisionRunRead:
        made = decisions.decide_campaign(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            as_of=body.as_of,
            decided_by=principal.subject_id,
        )
        report = decisions.campaign_report(
            s, institution_id=principal.institution_id, campaign_id=campaign_id
        )
        _audit(s, principal, "credit.campaign_decided", campaign_id, decisions=len(made))
        return DecisionRunRead(
            campaign_id=campaign_id,
            decided=len(made),
            outcomes=report.outcomes,
            grades=report.grades,
            approved_limit_fen=report.approved_limit_fen,
        )

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/report")
def report(
    campaign_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    format: ReportFormat = Query(default="json"),
) -> Any:
    """Coverage, outcomes, grade distribution, total lines and flagged households."""
    found = database.run(
        lambda s: decisions.campaign_report(
            s, institution_id=principal.institution_id, campaign_id=campaign_id
        )
    )
    if format == "csv":
        return Response(decisions.report_csv(found), media_type="text/csv; charset=utf-8")
    if format == "html":
        return Response(decisions.report_html(found), media_type="text/html; charset=utf-8")
    return {
        "code": found.code,
        "name": found.name,
        "status": found.status,
        "villages": [{"code": c, "name": n} for c, n in found.villages],
        "households_in_villages": found.households_in_villages,
        "surveyed": found.surveyed,
        "coverage": found.coverage,
        "decided": found.decided,
        "outcomes": found.outcomes,
        "grades": found.grades,
        "approved_limit_fen": found.approved_limit_fen,
        "reviews_scored": found.reviews_scored,
        "flagged_households": found.flagged_households,
        "flags_by_code": found.flags_by_code,
    }


@router.post("/credit/campaigns/{campaign_id}/sign-off", response_model=CampaignRead)
def sign_off(campaign_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> CampaignRead:
        campaign = decisions.sign_off(
            s,
            institution_id=principal.institution_id,
            campaign_id=campaign_id,
            approver_id=principal.subject_id,
        )
        _audit(s, principal, "credit.campaign_signed_off", campaign.id)
        return campaign_read(s, campaign)

    return database.run(work)


@router.get("/credit/campaigns/{campaign_id}/publication")
def publication(
    campaign_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    format: Literal["csv", "html"] = Query(default="html"),
) -> Response:
    """The publication list (公示): approved households, names masked."""

    def work(s: Session) -> Response:
        campaign = _campaign(s, principal, campaign_id)
        rows = decisions.publication_list(
            s, institution_id=principal.institution_id, campaign_id=campaign.id
        )
        if format == "csv":
            return Response(decisions.publication_csv(rows), media_type="text/csv; charset=utf-8")
        return Response(
            decisions.publication_html(campaign, rows), media_type="text/html; charset=utf-8"
        )

    return database.run(work)


# --------------------------------------------------------------------------- bureau


@router.post("/credit/bureau-files", response_model=BureauImportRead)
def import_bureau_file(body: FileUpload, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Store a bureau file's good rows (by the ID number's blind index); the problems of the
    others are listed (row, column, code, message)."""
    content = decode_file(body.content_base64, domain="credit.bureau")

    def work(s: Session) -> BureauImportRead:
        result = bureau_files.import_bureau_file(
            s,
            institution_id=principal.institution_id,
            file_name=body.file_name,
            content=content,
            encoding=body.encoding,
        )
        audit.record(
            s,
            action="credit.bureau_file_imported",
            institution_id=principal.institution_id,
            actor=principal,
            object_type="bureau_file",
            object_id=None,
            detail={"stored": result.stored, "problems": len(result.problems)},
        )
        return BureauImportRead(
            stored=result.stored,
            problems=[
                {"row": p.row, "column": p.column, "code": p.code, "message": p.message}
                for p in result.problems
            ],
        )

    return database.run(work)
