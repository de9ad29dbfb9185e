"""A village credit campaign over HTTP on both databases, with the blind review enforced by
the API: a reviewer sees only their own sheet and ratings, and asking for the panel's ratings
or aggregates is refused with 403."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from huinong.credit.campaigns.models import ReviewerKind
from huinong.security.principals import Role
from tests.api.conftest import Bank, assert_problem
from tests.credit.test_registry_and_decisions import trained

DATA = Path(__file__).parents[1] / "data" / "credit"
EXAMPLE = Path(__file__).parents[2] / "src/huinong/credit/rules/examples/village_standard.yaml"
VILLAGE = "370281105201"

pytestmark = pytest.mark.usefixtures("sample_villages")


def upload(name: str) -> dict[str, str]:
    return {
        "file_name": name,
        "content_base64": base64.b64encode((DATA / name).read_bytes()).decode(),
    }


def models_in_force(bank: Bank) -> None:
    """A champion scorecard (registered as `huinong credit train` does) and an active rule set."""
    from huinong.credit import service as credit
    from huinong.db import run_in_transaction

    run_in_transaction(
        bank.factory,
        lambda s: credit.register_scorecard(
            s, institution_id=bank.id, model=trained(), metrics={}, created_by=None
        ),
    )
    risk, approver = bank.as_role(Role.risk_officer), bank.as_role(Role.approver)
    [scorecard] = risk.ok(risk.get("/credit/scorecards"))
    approver.ok(approver.put(f"/credit/scorecards/{scorecard['id']}/role", {"role": "champion"}))
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    document["institution"] = bank.code
    rules = risk.ok(risk.post("/credit/rule-sets", {"document": document}), 201)
    approver.ok(approver.post(f"/credit/rule-sets/{rules['id']}/activation"))


def me(client: Bank) -> str:
    return str(client.ok(client.get("/auth/me"))["subject_id"])


def test_a_campaign_through_the_api(bank: Bank) -> None:
    models_in_force(bank)
    manager = bank.as_role(Role.account_manager)
    risk = bank.as_role(Role.risk_officer)
    campaign = manager.ok(
        manager.post(
            "/credit/campaigns",
            {
                "code": "ZC-API-1",
                "name": "巩家庄新村整村授信",
                "village_codes": [VILLAGE],
                "scorecard_name": "household",
                "rule_set_name": "village_standard",
            },
        ),
        201,
    )
    base = f"/credit/campaigns/{campaign['id']}"
    imported = manager.ok(
        manager.post(
            f"{base}/survey-imports", {**upload("survey_village.csv"), "surveyed_on": "2026-03-20"}
        ),
        201,
    )
    assert imported["imported"] == 12 and imported["problems"] == 0
    bad = manager.ok(
        manager.post(
            f"{base}/survey-imports",
            {**upload("survey_village_bad.csv"), "surveyed_on": "2026-03-20"},
        ),
        201,
    )
    assert bad["imported"] == 0 and bad["problems"] > 5
    errors = manager.get(f"{base}/survey-imports/{bad['id']}/errors")
    assert errors.status_code == 200 and "credit.survey.no_consent" in errors.text
    stored = risk.ok(risk.post("/credit/bureau-files", upload("bureau_village.csv")))
    assert stored == {"stored": 12, "problems": []}
    flags = manager.ok(
        manager.post(f"{base}/cross-check", {"land_register": upload("land_register.csv")})
    )
    assert {f["survey_ref"] for f in flags if f["code"] == "shared_phone"} == {"GJZ-007", "GJZ-008"}

    cadres = [bank.as_role(Role.reviewer) for _ in range(3)]
    for cadre in cadres:
        manager.ok(
            manager.post(
                f"{base}/reviewers",
                {"staff_user_id": me(cadre), "kind": str(ReviewerKind.village_cadre)},
            ),
            201,
        )
    sheet = cadres[0].ok(cadres[0].get(f"{base}/review-sheet"))
    assert len(sheet) == 12 and all(line["my_rating"] is None for line in sheet)
    for number, cadre in enumerate(cadres):
        for line in sheet:
            body: dict[str, Any] = {
                "integrity": 4 - (number == 2),
                "suggested_limit_fen": 8_000_000,
                "recommend": True,
            }
            cadre.ok(cadre.put(f"{base}/ratings/{line['campaign_household_id']}", body))
    mine = cadres[1].ok(cadres[1].get(f"{base}/review-sheet"))
    assert {line["my_rating"]["integrity"] for line in mine} == {4}
    # Blind: no reviewer reads the panel's ratings or aggregates, nor another campaign's sheet.
    for path in ("ratings", "peer-aggregates", "report", "households", "flags"):
        assert_problem(cadres[0].get(f"{base}/{path}"), 403, "auth.forbidden", needs_field=False)
    outsider = bank.as_role(Role.reviewer)
    assert_problem(outsider.get(f"{base}/review-sheet"), 404)
    line = sheet[0]["campaign_household_id"]
    refused = outsider.put(
        f"{base}/ratings/{line}", {"integrity": 1, "suggested_limit_fen": 0, "recommend": False}
    )
    assert_problem(refused, 404)
    assert_problem(
        cadres[0].put(
            f"{base}/ratings/{line}", {"integrity": 5, "suggested_limit_fen": 0, "recommend": True}
        ),
        422,
        field="integrity",
    )
    everything = manager.ok(manager.get(f"{base}/ratings"))
    assert len(everything) == 36
    aggregates = manager.ok(manager.get(f"{base}/peer-aggregates"))
    assert {a["status"] for a in aggregates} == {"scored"} and {
        a["integrity"] for a in aggregates
    } == {"4"}

    decided = manager.ok(manager.post(f"{base}/decision", {"as_of": "2026-06-30"}))
    assert decided["decided"] == 12 and sum(decided["outcomes"].values()) == 12
    assert decided["outcomes"].get("approve", 0) >= 1
    households = manager.ok(manager.get(f"{base}/households"))
    one = next(h for h in households if h["outcome"] == "approve")
    replay = manager.ok(manager.post(f"/credit/decisions/{one['decision_id']}/replay"))
    assert replay["same"] is True
    decision = manager.ok(manager.get(f"/credit/decisions/{one['decision_id']}"))
    assert decision["inputs"]["peer_integrity_median"] == 4.0 and len(decision["reasons"]) <= 3
    report = manager.ok(manager.get(f"{base}/report"))
    assert report["decided"] == 12 and report["reviews_scored"] == 12
    assert "巩家庄" in manager.get(f"{base}/report", format="html").text
    assert manager.get(f"{base}/report", format="csv").text.count("\n") == 13

    assert_problem(manager.get(f"{base}/publication"), 409, "credit.campaign.not_signed_off")
    assert_problem(manager.post(f"{base}/sign-off"), 403, needs_field=False)  # not an approver
    approver = bank.as_role(Role.approver)
    signed = approver.ok(approver.post(f"{base}/sign-off"))
    assert signed["status"] == "signed_off"
    listed = approver.get(f"{base}/publication", format="csv").text
    assert listed.count("\n") == 1 + decided["outcomes"]["approve"]
    names = [row.split(",")[1] for row in listed.lstrip("\ufeff").splitlines()[1:]]
    assert names and all(re.fullmatch(r".\*+", name) for name in names), names
    again = manager.post(
        f"{base}/survey-imports", {**upload("survey_village.csv"), "surveyed_on": "2026-03-20"}
    )
    assert_problem(again, 409, "credit.campaign.signed_off")
