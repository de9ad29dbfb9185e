"""Village credit campaign use cases, part two: the batch decision, the report, the sign-off
and the publication list (公示).

The batch decision reads every surveyed household's facts as of one date (consent checked per
head), computes the features in one pass, scores them with the champion of the campaign's
scorecard and decides them with the active version of its rule set, and stores one decision
per household with everything it was made from. It may run again — after more reviews came
in, say — until the campaign is signed off; each run's decisions are kept and the campaign
points at the latest.

An approver who did not run the decision signs the campaign off (four eyes). Only then is the
publication list produced: the approved households of each village with the head's name
masked (张*), the household number, the grade and the limit in yuan — what is posted in the
village for the objection period (公示期).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit import household_facts
from huinong.credit import service as credit
from huinong.credit.campaigns import review
from huinong.credit.campaigns.models import Campaign, CampaignHousehold, CampaignStatus
from huinong.credit.campaigns.service import (
    PURPOSE,
    campaign_households,
    get_campaign,
    list_flags,
    require_open,
    village_codes,
)
from huinong.credit.features.compute import compute
from huinong.credit.models import CreditDecision, SubjectKind
from huinong.errors import Conflict, Forbidden
from huinong.parties import service as parties
from huinong.parties.geography import service as geography
from huinong.parties.households import service as households
from huinong.parties.households.models import Household
from huinong.security.personal_data.masking import mask_name

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _noop(stage: str, done: int, total: int) -> None:
    return None


def decide_campaign(
    session: Session,
    *,
    institution_id: uuid.UUID,
    campaign_id: uuid.UUID,
    as_of: dt.date,
    decided_by: uuid.UUID | None,
    progress: Progress = _noop,
) -> list[CreditDecision]:
    """Decide every surveyed household of the campaign as of ``as_of``."""
    campaign = get_campaign(
        session, institution_id=institution_id, campaign_id=campaign_id, lock=True
    )
    require_open(campaign, "decided")
    rows = campaign_households(session, campaign=campaign)
    if not rows:
        raise Conflict(
            "credit.campaign.nothing_surveyed",
            "no household is surveyed yet: import the survey first",
            field="campaign_id",
        )
    scorecard = credit.champion(
        session, institution_id=institution_id, name=campaign.scorecard_name
    )
    rule_set = credit.active_rule_set(
        session, institution_id=institution_id, name=campaign.rule_set_name
    )
    model = credit.scorecard_model(scorecard)
    rules = credit.compiled_rules(rule_set)
    total = len(rows)
    progress("peer review", 0, total)
    found = review.aggregates(session, campaign=campaign)
    peer = {
        row.household_id: facts
        for row in rows
        if (facts := review.peer_facts_of(found[row.id])) is not None
    }
    progress("facts", 0, total)
    facts = household_facts.facts_of_households(
        session,
        institution_id=institution_id,
        household_ids=[row.household_id for row in rows],
        as_of=as_of,
        purpose=PURPOSE,
        peer=peer,
    )
    progress("features", total, total)
    features = compute(facts, as_of=as_of)
    needed = sorted(
        {
            *model.feature_names,
            *(n for n in rules.ruleset.inputs if n != rules.ruleset.score_column),
        }
    )
    inputs = [{name: features.at[row.household_id, name] for name in needed} for row in rows]
    outcomes = credit.decide_batch(model, rules, inputs)
    progress("decisions", total, total)
    ids = credit.store_decisions(
        session,
        institution_id=institution_id,
        subjects=[
            credit.Subject(SubjectKind.household, household_id=row.household_id) for row in rows
        ],
        inputs=inputs,
        outcomes=outcomes,
        scorecard=scorecard,
        rule_set=rule_set,
        as_of=as_of,
        decided_by=decided_by,
    )
    for row, decision_id in zip(rows, ids, strict=True):
        row.decision_id = decision_id
    campaign.status = str(CampaignStatus.decided)
    campaign.decided_as_of = as_of
    campaign.decided_by = decided_by
    campaign.decided_at = clock.now()
    session.flush()
    return list(session.scalars(select(CreditDecision).where(CreditDecision.id.in_(ids))))


def sign_off(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID, approver_id: uuid.UUID
) -> Campaign:
    campaign = get_campaign(
        session, institution_id=institution_id, campaign_id=campaign_id, lock=True
    )
    if campaign.status == CampaignStatus.signed_off and campaign.signed_off_by == approver_id:
        return campaign  # the same sign-off sent again
    if campaign.status != CampaignStatus.decided:
        raise Conflict(
            "credit.campaign.not_decided",
            f"the campaign is {campaign.status}: run the batch decision before signing off",
            field="campaign_id",
        )
    if campaign.decided_by == approver_id:
        raise Forbidden(
            "credit.campaign.self_sign_off",
            "whoever ran the decision cannot sign it off: another approver must",
            field="campaign_id",
        )
    campaign.status = str(CampaignStatus.signed_off)
    campaign.signed_off_by = approver_id
    campaign.signed_off_at = clock.now()
    session.flush()
    return campaign


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ReportRow:
    survey_ref: str
    household_number: str
    village_code: str | None
    outcome: str | None
    grade: str | None
    limit_fen: int
    annual_rate: str | None
    score: int | None
    review: str  # "scored", "pending"
    flags: tuple[str, ...]


@dataclass(frozen=True)
class CampaignReport:
    code: str
    name: str
    status: str
    villages: tuple[tuple[str, str], ...]  # (code, name)
    households_in_villages: int
    surveyed: int
    decided: int
    outcomes: dict[str, int]
    grades: dict[str, int]
    approved_limit_fen: int
    reviews_scored: int
    flagged_households: int
    flags_by_code: dict[str, int]
    rows: tuple[ReportRow, ...] = field(repr=False)

    @property
    def coverage(self) -> str:
        """Surveyed households as a share of the villages' households on record."""
        if not self.households_in_villages:
            return "—"
        return f"{self.surveyed / self.households_in_villages:.1%}"


def campaign_report(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID
) -> CampaignReport:
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    codes = village_codes(session, campaign=campaign)
    rows = campaign_households(session, campaign=campaign)
    decisions = {
        d.id: d
        for d in session.scalars(
            select(CreditDecision).where(
                CreditDecision.id.in_([r.decision_id for r in rows if r.decision_id])
            )
        )
    }
    numbers: dict[uuid.UUID, str] = {}
    village_of: dict[uuid.UUID, str | None] = {}
    for household_id, number, village in session.execute(
        select(Household.id, Household.household_number, Household.village_code).where(
            Household.id.in_([r.household_id for r in rows])
        )
    ):
        numbers[household_id] = number
        village_of[household_id] = village
    in_villages = int(
        session.scalar(
            select(func.count())
            .select_from(Household)
            .where(Household.institution_id == institution_id, Household.village_code.in_(codes))
        )
        or 0
    )
    flags: dict[uuid.UUID, list[str]] = {}
    for flag in list_flags(session, campaign=campaign):
        flags.setdefault(flag.campaign_household_id, []).append(flag.code)
    peer = review.aggregates(session, campaign=campaign)
    report_rows = []
    for row in rows:
        decision = decisions.get(row.decision_id) if row.decision_id else None
        report_rows.append(
            ReportRow(
                survey_ref=row.survey_ref,
                household_number=numbers[row.household_id],
                village_code=village_of[row.household_id],
                outcome=decision.outcome if decision else None,
                grade=decision.grade if decision else None,
                limit_fen=decision.limit_fen if decision else 0,
                annual_rate=decision.annual_rate if decision else None,
                score=decision.score if decision else None,
                review=peer[row.id].status,
                flags=tuple(sorted(set(flags.get(row.id, [])))),
            )
        )
    decided = [r for r in report_rows if r.outcome is not None]
    names = {code: geography.get_division(session, code=code).name for code in codes}
    return CampaignReport(
        code=campaign.code,
        name=campaign.name,
        status=campaign.status,
        villages=tuple((code, names[code]) for code in codes),
        households_in_villages=in_villages,
        surveyed=len(rows),
        decided=len(decided),
        outcomes=dict(Counter(r.outcome for r in decided if r.outcome)),
        grades=dict(sorted(Counter(r.grade for r in decided if r.grade).items())),
        approved_limit_fen=sum(r.limit_fen for r in decided if r.outcome == "approve"),
        reviews_scored=sum(1 for r in report_rows if r.review == "scored"),
        flagged_households=sum(1 for r in report_rows if r.flags),
        flags_by_code=dict(Counter(code for r in report_rows for code in r.flags)),
        rows=tuple(report_rows),
    )


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def report_csv(report: CampaignReport) -> bytes:
    """One line per surveyed household; no names or ID numbers (the report travels)."""
    return _csv(
        [
            "survey_ref",
            "household_number",
            "village_code",
            "outcome",
            "grade",
            "limit_yuan",
            "annual_rate",
            "score",
            "review",
            "flags",
        ],
        [
            [
                r.survey_ref,
                r.household_number,
                r.village_code or "",
                r.outcome or "",
                r.grade or "",
                _yuan(r.limit_fen),
                r.annual_rate or "",
                "" if r.score is None else r.score,
                r.review,
                " ".join(r.flags),
            ]
            for r in report.rows
        ],
    )


_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_ENVIRONMENT.filters["yuan"] = _yuan

_REPORT = _ENVIRONMENT.from_string(
    """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>整村授信 {{ r.code }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #999;padding:.25em .6em;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}</style></head><body>
<h1>整村授信报告 · {{ r.name }} ({{ r.code }})</h1>
<p>Status: {{ r.status }} · villages: {% for code, name in r.villages %}{{ name }} ({{ code }}){%
 if not loop.last %}, {% endif %}{% endfor %}</p>
<table><tr><th>households on record</th><th>surveyed</th><th>coverage</th><th>decided</th>
<th>reviews scored</th><th>flagged</th><th>approved lines (yuan)</th></tr>
<tr><td>{{ r.households_in_villages }}</td><td>{{ r.surveyed }}</td><td>{{ r.coverage }}</td>
<td>{{ r.decided }}</td><td>{{ r.reviews_scored }}</td><td>{{ r.flagged_households }}</td>
<td>{{ r.approved_limit_fen | yuan }}</td></tr></table>
<h2>Outcomes</h2><table><tr>{% for k in r.outcomes %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in r.outcomes.values() %}<td>{{ v }}</td>{% endfor %}</tr></table>
<h2>Grades</h2><table><tr>{% for k in r.grades %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in r.grades.values() %}<td>{{ v }}</td>{% endfor %}</tr></table>
<h2>Flags</h2><table><tr><th>flag</th><th>households</th></tr>
{% for k, v in r.flags_by_code.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</table>
<h2>Households</h2><table><tr><th>户编号</th><th>household</th><th>outcome</th><th>grade</th>
<th>limit (yuan)</th><th>rate</th><th>score</th><th>review</th><th>flags</th></tr>
{% for row in r.rows %}<tr><td>{{ row.survey_ref }}</td><td>{{ row.household_number }}</td>
<td>{{ row.outcome or "" }}</td><td>{{ row.grade or "" }}</td><td>{{ row.limit_fen | yuan }}</td>
<td>{{ row.annual_rate or "" }}</td><td>{{ row.score if row.score is not none else "" }}</td>
<td>{{ row.review }}</td><td>{{ row.flags | join(" ") }}</td></tr>{% endfor %}
</table></body></html>
"""
)


def report_html(report: CampaignReport) -> str:
    return _REPORT.render(r=report)


# --------------------------------------------------------------------------- publication


@dataclass(frozen=True)
class PublicationRow:
    village: str
    masked_name: str
    household_number: str
    grade: str
    limit_fen: int


def publication_list(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID
) -> list[PublicationRow]:
    """The approved households of a signed-off campaign, village by village, names masked."""
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    if campaign.status != CampaignStatus.signed_off:
        raise Conflict(
            "credit.campaign.not_signed_off",
            "the publication list is produced once an approver has signed the campaign off",
            field="campaign_id",
        )
    names = {
        code: geography.get_division(session, code=code).name
        for code in village_codes(session, campaign=campaign)
    }
    listed = []
    rows: list[CampaignHousehold] = campaign_households(session, campaign=campaign)
    for row in rows:
        decision = session.get(CreditDecision, row.decision_id) if row.decision_id else None
        if decision is None or decision.outcome != "approve" or decision.grade is None:
            continue
        household = households.get_household(
            session, institution_id=institution_id, household_id=row.household_id
        )
        head = parties.get_customer(
            session, institution_id=institution_id, customer_id=household.head_customer_id
        )
        listed.append(
            PublicationRow(
                village=names.get(household.village_code or "", household.village_code or ""),
                masked_name=mask_name(head.name),
                household_number=household.household_number,
                grade=decision.grade,
                limit_fen=decision.limit_fen,
            )
        )
    return sorted(listed, key=lambda r: (r.village, r.household_number))


def publication_csv(rows: list[PublicationRow]) -> bytes:
    return _csv(
        ["村", "户主", "农户编号", "信用等级", "授信额度(元)"],
        [[r.village, r.masked_name, r.household_number, r.grade, _yuan(r.limit_fen)] for r in rows],
    )


_PUBLICATION = _ENVIRONMENT.from_string(
    """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>整村授信公示</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:.3em .8em}</style></head><body>
<h1>{{ name }} 整村授信结果公示</h1>
<table><tr><th>村</th><th>户主</th><th>农户编号</th><th>信用等级</th><th>授信额度(元)</th></tr>
{% for r in rows %}<tr><td>{{ r.village }}</td><td>{{ r.masked_name }}</td>
<td>{{ r.household_number }}</td><td>{{ r.grade }}</td><td>{{ r.limit_fen | yuan }}</td></tr>
{% endfor %}</table>
<p>如有异议，请于公示期内向本行客户经理或村委会反映。</p></body></html>
"""
)


def publication_html(campaign: Campaign, rows: list[PublicationRow]) -> str:
    return _PUBLICATION.render(name=campaign.name, rows=rows)
