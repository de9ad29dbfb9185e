"""A village credit campaign end to end through the services, on both databases: survey
import (with consent), cross-check, blind review with a quorum, the batch decision with
replayable decisions, the report, four-eyed sign-off and the masked publication list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.credit import bureau_files
from huinong.credit import service as credit
from huinong.credit.campaigns import decisions, review, survey
from huinong.credit.campaigns import service as campaigns
from huinong.credit.campaigns.models import CampaignHousehold, ReviewerKind
from huinong.credit.models import CreditDecision, ScorecardRole
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, Forbidden, InvalidInput
from huinong.institutions.models import Institution
from huinong.parties.households import service as households_service
from huinong.parties.households.models import Household, HouseholdArchiveVersion
from huinong.payments import service as payments
from huinong.security.consent import service as consent_service
from huinong.security.consent.models import Consent
from huinong.security.identities import staff_users
from tests.conftest import STAFF_PASSWORD, new_institution
from tests.credit.test_registry_and_decisions import trained

DATA = Path(__file__).parents[1] / "data" / "credit"
EXAMPLE = Path(credit.__file__).parent / "rules" / "examples" / "village_standard.yaml"
VILLAGE = "370281105201"
SURVEYED = dt.date(2026, 3, 20)
AS_OF = dt.date(2026, 6, 30)

pytestmark = pytest.mark.usefixtures("sample_villages")


@pytest.fixture
def bank(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory, prefix="ZC")


def staff(factory, bank, name: str, roles: list[str]):
    with transaction(factory) as session:
        return staff_users.create_staff_user(
            session,
            institution_id=bank.id,
            username=f"{name}{bank.code.lower()}"[:60],
            display_name=name,
            roles=roles,
            password=STAFF_PASSWORD,
            must_change_password=False,
        ).id


def set_up_models(factory, bank) -> None:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    document["institution"] = bank.code

    def work(s: Session) -> None:
        scorecard = credit.register_scorecard(
            s, institution_id=bank.id, model=trained(), metrics={}, created_by=None
        )
        credit.set_scorecard_role(
            s, institution_id=bank.id, scorecard_id=scorecard.id, role=ScorecardRole.champion
        )
        rules = credit.add_rule_set(
            s,
            institution_id=bank.id,
            institution_code=bank.code,
            document=document,
            created_by=None,
        )
        credit.activate_rule_set(s, institution_id=bank.id, rule_set_id=rules.id)

    run_in_transaction(factory, work)


def new_campaign(factory, bank, manager):
    return run_in_transaction(
        factory,
        lambda s: campaigns.create_campaign(
            s,
            institution_id=bank.id,
            code="ZC-2026-01",
            name="巩家庄新村整村授信",
            village_codes=[VILLAGE],
            scorecard_name="household",
            rule_set_name="village_standard",
            created_by=manager,
        ),
    )


def import_file(factory, bank, campaign, name: str):
    return run_in_transaction(
        factory,
        lambda s: campaigns.import_survey(
            s,
            institution_id=bank.id,
            campaign_id=campaign.id,
            file_name=name,
            content=(DATA / name).read_bytes(),
            surveyed_on=SURVEYED,
        ),
    )


def test_a_village_campaign_end_to_end(factory, bank):
    manager = staff(factory, bank, "manager", ["account_manager"])
    approver = staff(factory, bank, "approver", ["approver"])
    reviewers = [staff(factory, bank, f"cadre{i}", ["reviewer"]) for i in range(3)]
    set_up_models(factory, bank)
    campaign = new_campaign(factory, bank, manager)

    first = import_file(factory, bank, campaign, "survey_village.csv")
    assert first.survey_import.imported == 12 and first.problems == []
    again = import_file(factory, bank, campaign, "survey_village.csv")  # a re-survey
    assert again.survey_import.imported == 12
    with factory() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(CampaignHousehold)
                .where(CampaignHousehold.campaign_id == campaign.id)
            )
            == 12
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(HouseholdArchiveVersion)
                .where(HouseholdArchiveVersion.institution_id == bank.id)
            )
            == 24
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(Consent)
                .where(Consent.customer_id.is_not(None))
                .where(Consent.evidence_reference.like("SQ-2026-%"))
                .where(Consent.grantee_institution_id == bank.id)
            )
            == 12
        )

    bureau = run_in_transaction(
        factory,
        lambda s: bureau_files.import_bureau_file(
            s,
            institution_id=bank.id,
            file_name="bureau.csv",
            content=(DATA / "bureau_village.csv").read_bytes(),
        ),
    )
    assert bureau.stored == 12 and bureau.problems == ()
    register = campaigns.parse_land_register("land.csv", (DATA / "land_register.csv").read_bytes())
    flags = run_in_transaction(
        factory,
        lambda s: campaigns.cross_check(
            s, institution_id=bank.id, campaign_id=campaign.id, land_register=register
        ),
    )
    with factory() as session:
        rows = {
            r.id: r.survey_ref for r in campaigns.campaign_households(session, campaign=campaign)
        }
    flagged = {(rows[f.campaign_household_id], f.code) for f in flags}
    assert any(ref == "GJZ-011" and "land" in code for ref, code in flagged), flagged
    assert {ref for ref, code in flagged if "phone" in code} >= {"GJZ-007", "GJZ-008"}

    # The panel rates; one reviewer is an outlier on GJZ-001.
    for user in reviewers:
        run_in_transaction(
            factory,
            lambda s, user=user: review.add_reviewer(
                s,
                institution_id=bank.id,
                campaign_id=campaign.id,
                staff_user_id=user,
                kind=ReviewerKind.village_cadre,
            ),
        )
    with pytest.raises(InvalidInput) as caught:
        run_in_transaction(
            factory,
            lambda s: review.add_reviewer(
                s,
                institution_id=bank.id,
                campaign_id=campaign.id,
                staff_user_id=manager,
                kind=ReviewerKind.key_person,
            ),
        )
    assert caught.value.code == "credit.review.not_a_reviewer"
    by_ref = {ref: hid for hid, ref in rows.items()}
    for number, user in enumerate(reviewers):
        for ref, household_id in by_ref.items():
            if ref == "GJZ-012" and number == 2:
                continue  # GJZ-012 stays below the quorum
            outlier = ref == "GJZ-001" and number == 2
            run_in_transaction(
                factory,
                lambda s, user=user, household_id=household_id, outlier=outlier: review.rate(
                    s,
                    institution_id=bank.id,
                    campaign_id=campaign.id,
                    staff_user_id=user,
                    campaign_household_id=household_id,
                    integrity=1 if outlier else 4,
                    suggested_limit_fen=1_000_000 if outlier else 10_000_000,
                    recommend=not outlier,
                    comment=None,
                ),
            )
    with factory() as session:
        mine = review.my_ratings(
            session, institution_id=bank.id, campaign_id=campaign.id, staff_user_id=reviewers[0]
        )
        assert len(mine) == 12 and {r.reviewer_id for r in mine} == {mine[0].reviewer_id}
        found = review.aggregates(session, campaign=campaign)
        assert found[by_ref["GJZ-012"]].status == "pending"
        assert found[by_ref["GJZ-001"]].integrity == 4  # the median ignores the outlier
        assert found[by_ref["GJZ-001"]].suggested_limit_fen == 10_000_000

    made = run_in_transaction(
        factory,
        lambda s: decisions.decide_campaign(
            s, institution_id=bank.id, campaign_id=campaign.id, as_of=AS_OF, decided_by=manager
        ),
    )
    assert len(made) == 12
    assert all(d.limit_fen == 0 for d in made if d.outcome == "decline")
    for decision in made:
        with factory() as session:
            replay = credit.replay_decision(
                session, institution_id=bank.id, decision_id=decision.id
            )
        assert replay.same, replay.differences
    pending = next(d for d in made if d.household_id == _household(factory, by_ref["GJZ-012"]))
    assert pending.outcome != "approve"  # no review yet: a person decides
    assert pending.inputs["peer_recommend_share"] is None

    with factory() as session:
        report = decisions.campaign_report(session, institution_id=bank.id, campaign_id=campaign.id)
    assert report.surveyed == 12 and report.decided == 12 and report.reviews_scored == 11
    assert sum(report.outcomes.values()) == 12 and report.flagged_households >= 3
    assert report.outcomes.get("approve", 0) >= 1 and report.outcomes.get("decline", 0) >= 1
    assert report.approved_limit_fen == sum(d.limit_fen for d in made if d.outcome == "approve")
    csv_text = decisions.report_csv(report).decode("utf-8-sig")
    assert csv_text.count("\r\n") == 13 and "370281196803120111" not in csv_text
    assert "巩家庄" in decisions.report_html(report)

    with pytest.raises(Conflict), factory() as session:
        decisions.publication_list(session, institution_id=bank.id, campaign_id=campaign.id)
    with pytest.raises(Forbidden) as refused:
        run_in_transaction(
            factory,
            lambda s: decisions.sign_off(
                s, institution_id=bank.id, campaign_id=campaign.id, approver_id=manager
            ),
        )
    assert refused.value.code == "credit.campaign.self_sign_off"
    run_in_transaction(
        factory,
        lambda s: decisions.sign_off(
            s, institution_id=bank.id, campaign_id=campaign.id, approver_id=approver
        ),
    )
    with factory() as session:
        listed = decisions.publication_list(
            session, institution_id=bank.id, campaign_id=campaign.id
        )
    approved = [d for d in made if d.outcome == "approve"]
    assert len(listed) == len(approved) >= 1
    assert all(len(r.masked_name) >= 2 and set(r.masked_name[1:]) == {"*"} for r in listed)
    with pytest.raises(Conflict):
        import_file(factory, bank, campaign, "survey_village.csv")


def _household(factory, campaign_household_id):
    with factory() as session:
        return session.get(CampaignHousehold, campaign_household_id).household_id


def test_a_survey_without_consent_imports_nothing_and_reports_every_row(factory, bank):
    manager = staff(factory, bank, "manager", ["account_manager"])
    campaign = new_campaign(factory, bank, manager)
    result = import_file(factory, bank, campaign, "survey_village_bad.csv")
    assert result.survey_import.imported == 0
    codes = {p.code for p in result.problems}
    assert "credit.survey.no_consent" in codes and len(codes) > 5
    report = campaigns.import_problems_csv(result.survey_import).decode("utf-8-sig")
    lines = report.splitlines()
    assert lines[0] == ",".join(survey.REPORT_HEADER)
    assert len(lines) == 1 + len(result.problems) and "credit.survey.no_consent" in report
    with pytest.raises(Conflict):
        run_in_transaction(
            factory,
            lambda s: decisions.decide_campaign(
                s, institution_id=bank.id, campaign_id=campaign.id, as_of=AS_OF, decided_by=manager
            ),
        )


def test_facts_use_account_activity_and_consent_comes_first(factory, bank):
    manager = staff(factory, bank, "manager", ["account_manager"])
    set_up_models(factory, bank)
    campaign = new_campaign(factory, bank, manager)
    import_file(factory, bank, campaign, "survey_village.csv")
    with factory() as session:
        rows = campaigns.campaign_households(session, campaign=campaign)
        heads = {
            r.survey_ref: session.get(Household, r.household_id).head_customer_id for r in rows
        }
    saver = heads["GJZ-001"]
    # Three months of deposits into the head's account, all before the decision date.
    account = run_in_transaction(
        factory,
        lambda s: payments.open_deposit_account(s, institution_id=bank.id, customer_id=saver),
    )
    for month in (3, 4, 5):
        with clock.frozen(dt.datetime(2026, month, 10, 2, tzinfo=dt.UTC)):
            run_in_transaction(
                factory,
                lambda s, month=month: payments.cash_deposit(
                    s,
                    institution_id=bank.id,
                    client_id=f"dep-{bank.code}-{month}",
                    account_number=account.account_number,
                    amount=500_000,
                ),
            )
    made = run_in_transaction(
        factory,
        lambda s: decisions.decide_campaign(
            s, institution_id=bank.id, campaign_id=campaign.id, as_of=AS_OF, decided_by=manager
        ),
    )
    inputs = {d.household_id: d.inputs for d in made}
    with factory() as session:
        saver_household = households_service.household_of_customer(
            session, institution_id=bank.id, customer_id=saver
        ).id
    assert inputs[saver_household]["months_active_12m"] == 3
    others = [i for h, i in inputs.items() if h != saver_household]
    assert all(i["months_active_12m"] in (None, 0) for i in others)

    # A head who revokes the consent stops the batch: nothing of theirs is read or decided.
    with factory() as session:
        granted = session.scalars(
            select(Consent).where(Consent.customer_id == heads["GJZ-002"])
        ).first()
    run_in_transaction(
        factory,
        lambda s: consent_service.revoke_consent(s, institution_id=bank.id, consent_id=granted.id),
    )
    with factory() as session:
        before = session.scalar(select(func.count()).select_from(CreditDecision))
    with pytest.raises(Forbidden) as refused:
        run_in_transaction(
            factory,
            lambda s: decisions.decide_campaign(
                s,
                institution_id=bank.id,
                campaign_id=campaign.id,
                as_of=AS_OF,
                decided_by=manager,
            ),
        )
    assert refused.value.code == "consent.revoked"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CreditDecision)) == before
