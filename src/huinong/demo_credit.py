"""The demo bank's credit: models in force and one village credit campaign, ready to sign off.

After the village end is loaded, the demo registers the example household scorecard
(``credit.village``) as the champion and the example rule set as the active version, then runs
a campaign for 巩家庄新村 on the SAMPLE files shipped in ``credit/campaigns/samples``: the
survey (12 households, consent forms numbered), the bureau's answers, the cross-check against
the land register, a review panel of three village cadres (demo users ``cadre1``–``cadre3``)
who rate every household — reproducibly random, one of them harsher than the others — and the
batch decision by the account manager. It stops before the sign-off, which is the approver's
to give (over the API or ``huinong credit campaign sign-off``).
"""

from __future__ import annotations

import random
import uuid
from importlib.resources import files

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit import bureau_files
from huinong.credit import service as credit
from huinong.credit.campaigns import decisions, review
from huinong.credit.campaigns import service as campaigns
from huinong.credit.campaigns.models import ReviewerKind
from huinong.credit.models import ScorecardRole
from huinong.credit.village import example_rules_text, load_example_scorecard
from huinong.security.identities.models import StaffUser

CAMPAIGN_CODE = "ZC-2026-01"
CAMPAIGN_VILLAGE = "370281105201"  # 巩家庄新村, in the SAMPLE county
REVIEWERS = ("cadre1", "cadre2", "cadre3")


def sample(name: str) -> bytes:
    return files("huinong.credit.campaigns").joinpath("samples", name).read_bytes()


def _staff_id(session: Session, institution_id: uuid.UUID, username: str) -> uuid.UUID:
    found = session.scalar(
        select(StaffUser.id).where(
            StaffUser.institution_id == institution_id, StaffUser.username == username
        )
    )
    assert found is not None, username
    return found


def models_in_force(session: Session, *, institution_id: uuid.UUID, institution_code: str) -> None:
    scorecard = credit.register_scorecard(
        session,
        institution_id=institution_id,
        model=load_example_scorecard(),
        metrics={"source": "example trained on synthetic households (credit.village)"},
        created_by=None,
    )
    credit.set_scorecard_role(
        session,
        institution_id=institution_id,
        scorecard_id=scorecard.id,
        role=ScorecardRole.champion,
    )
    document = yaml.safe_load(example_rules_text())
    document["institution"] = institution_code
    rules = credit.add_rule_set(
        session,
        institution_id=institution_id,
        institution_code=institution_code,
        document=document,
        created_by=None,
    )
    credit.activate_rule_set(session, institution_id=institution_id, rule_set_id=rules.id)


def village_campaign(session: Session, *, institution_id: uuid.UUID, seed: int) -> uuid.UUID:
    """The campaign, surveyed, cross-checked, reviewed and decided; returns its id."""
    manager = _staff_id(session, institution_id, "manager")
    campaign = campaigns.create_campaign(
        session,
        institution_id=institution_id,
        code=CAMPAIGN_CODE,
        name="巩家庄新村整村授信 (sample)",
        village_codes=[CAMPAIGN_VILLAGE],
        scorecard_name="household",
        rule_set_name="village_standard",
        created_by=manager,
    )
    today = clock.local_date(clock.now())
    campaigns.import_survey(
        session,
        institution_id=institution_id,
        campaign_id=campaign.id,
        file_name="survey_village.csv",
        content=sample("survey_village.csv"),
        surveyed_on=today,
        imported_by=manager,
    )
    bureau_files.import_bureau_file(
        session,
        institution_id=institution_id,
        file_name="bureau_village.csv",
        content=sample("bureau_village.csv"),
    )
    campaigns.cross_check(
        session,
        institution_id=institution_id,
        campaign_id=campaign.id,
        land_register=campaigns.parse_land_register(
            "land_register.csv", sample("land_register.csv")
        ),
    )
    rng = random.Random(seed)
    households = campaigns.campaign_households(session, campaign=campaign)
    for number, username in enumerate(REVIEWERS):
        reviewer = _staff_id(session, institution_id, username)
        review.add_reviewer(
            session,
            institution_id=institution_id,
            campaign_id=campaign.id,
            staff_user_id=reviewer,
            kind=ReviewerKind.village_cadre,
        )
        for household in households:
            harsh = number == 2
            integrity = rng.choice((2, 3) if harsh else (3, 4, 4))
            review.rate(
                session,
                institution_id=institution_id,
                campaign_id=campaign.id,
                staff_user_id=reviewer,
                campaign_household_id=household.id,
                integrity=integrity,
                suggested_limit_fen=rng.choice((3, 5, 8, 10)) * 1_000_000,
                recommend=integrity >= 3,
                comment=None,
            )
    decisions.decide_campaign(
        session,
        institution_id=institution_id,
        campaign_id=campaign.id,
        as_of=today,
        decided_by=manager,
    )
    return campaign.id
