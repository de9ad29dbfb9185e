"""A village credit campaign end to end through ``huinong credit campaign …`` on both
databases: create, import (with the error report of a bad file), bureau file, cross-check,
decide, report, sign-off by another person, publication list."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from huinong.credit.campaigns import review
from huinong.credit.campaigns import service as campaigns
from huinong.credit.campaigns.models import ReviewerKind
from huinong.db import run_in_transaction
from huinong.institutions.models import Institution
from tests.conftest import new_institution
from tests.credit.test_campaigns import DATA, VILLAGE, set_up_models, staff
from tests.credit.test_cli_credit import cli_database, invoke, said  # noqa: F401

pytestmark = pytest.mark.usefixtures("sample_villages", "cli_database")


@pytest.fixture
def bank(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory, prefix="ZCL")


def usernames(factory, bank) -> dict[str, str]:
    names = {}
    for role in ("account_manager", "approver"):
        staff(factory, bank, role.split("_")[0], [role])
        names[role] = f"{role.split('_')[0]}{bank.code.lower()}"[:60]
    return names


def rate_everything(factory, bank, code: str) -> None:
    panel = [staff(factory, bank, f"cadre{i}", ["reviewer"]) for i in range(3)]

    def work(s: Session) -> None:
        campaign = campaigns.get_campaign_by_code(s, institution_id=bank.id, code=code)
        for user in panel:
            review.add_reviewer(
                s,
                institution_id=bank.id,
                campaign_id=campaign.id,
                staff_user_id=user,
                kind=ReviewerKind.village_cadre,
            )
            for row in campaigns.campaign_households(s, campaign=campaign):
                review.rate(
                    s,
                    institution_id=bank.id,
                    campaign_id=campaign.id,
                    staff_user_id=user,
                    campaign_household_id=row.id,
                    integrity=4,
                    suggested_limit_fen=5_000_000,
                    recommend=True,
                    comment=None,
                )

    run_in_transaction(factory, work)


def ok(*args: object) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return said(result)


def test_a_campaign_from_the_command_line(factory, bank, tmp_path: Path) -> None:
    users = usernames(factory, bank)
    manager, approver = users["account_manager"], users["approver"]
    set_up_models(factory, bank)
    code, where = "ZC-CLI-1", ("--institution", bank.code)
    refused = invoke(
        "campaign",
        "create",
        code,
        *where,
        "--by",
        approver,
        "--name",
        "x",
        "--village",
        VILLAGE,
        "--scorecard",
        "household",
        "--rules",
        "village_standard",
    )
    assert refused.exit_code == 1 and "account_manager" in said(refused)
    ok(
        "campaign",
        "create",
        code,
        *where,
        "--by",
        manager,
        "--name",
        "巩家庄新村",
        "--village",
        VILLAGE,
        "--scorecard",
        "household",
        "--rules",
        "village_standard",
    )
    errors = tmp_path / "bad.errors.csv"
    bad = ok(
        "campaign",
        "import",
        code,
        DATA / "survey_village_bad.csv",
        *where,
        "--by",
        manager,
        "--surveyed-on",
        "2026-03-20",
        "--errors",
        errors,
    )
    assert "0 imported" in bad and "credit.survey.no_consent" in errors.read_text("utf-8-sig")
    good = ok(
        "campaign",
        "import",
        code,
        DATA / "survey_village.csv",
        *where,
        "--by",
        manager,
        "--surveyed-on",
        "2026-03-20",
    )
    assert "12 imported" in good
    assert "12 report(s) stored" in ok("bureau", DATA / "bureau_village.csv", *where)
    flags = ok(
        "campaign", "crosscheck", code, *where, "--land-register", DATA / "land_register.csv"
    )
    assert "GJZ-011" in flags and "land_mismatch" in flags
    rate_everything(factory, bank, code)  # reviewers rate over the API; here, the service
    decided = ok("campaign", "decide", code, *where, "--by", manager, "--as-of", "2026-06-30")
    assert "decided" in decided
    html, csv = tmp_path / "report.html", tmp_path / "report.csv"
    ok("campaign", "report", code, *where, "--html", html, "--csv", csv)
    assert (
        "巩家庄" in html.read_text("utf-8") and len(csv.read_text("utf-8-sig").splitlines()) == 13
    )
    publication = tmp_path / "gongshi.csv"
    early = invoke("campaign", "publication", code, *where, "--out", publication)
    assert early.exit_code == 1 and "signed the campaign off" in said(early)
    ok("campaign", "sign-off", code, *where, "--by", approver)
    ok("campaign", "publication", code, *where, "--out", publication)
    lines = publication.read_text("utf-8-sig").splitlines()
    assert lines[0].startswith("村,户主") and len(lines) >= 2
    assert all(line.split(",")[1][1:].strip("*") == "" for line in lines[1:])
    assert code in ok("campaign", "list", *where)


def test_a_campaign_needs_its_models_in_force(factory, bank) -> None:
    users = usernames(factory, bank)
    manager = users["account_manager"]
    where = ("--institution", bank.code)
    ok(
        "campaign",
        "create",
        "ZC-CLI-2",
        *where,
        "--by",
        manager,
        "--name",
        "x",
        "--village",
        VILLAGE,
        "--scorecard",
        "household",
        "--rules",
        "village_standard",
    )
    ok(
        "campaign",
        "import",
        "ZC-CLI-2",
        DATA / "survey_village.csv",
        *where,
        "--by",
        manager,
        "--surveyed-on",
        "2026-03-20",
    )
    refused = invoke(
        "campaign", "decide", "ZC-CLI-2", *where, "--by", manager, "--as-of", "2026-06-30"
    )
    assert refused.exit_code == 1 and "champion" in said(refused)
