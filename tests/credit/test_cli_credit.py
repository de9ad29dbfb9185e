"""``huinong credit …`` on both databases: train → promote → score → report (PSI), rule sets
checked, stored and activated, and a stored decision replayed.

The tables are small synthetic ones (``huinong.credit.synthetic``) written to a temporary
folder, so a scorecard trains in about a second; the scoring chunk is made small so that a
few thousand rows go through several chunks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from huinong.cli import credit as credit_cli
from huinong.cli.credit import app
from huinong.config import get_settings
from huinong.credit import service as credit
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.models import CreditDecision, ScorecardRole, SubjectKind
from huinong.credit.rules import catalogue_columns, ruleset_problems
from huinong.credit.scorecards.model import ScorecardModel
from huinong.credit.scorecards.monitoring import stability_report
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.scorecards.tables import read_training_table
from huinong.credit.scorecards.training import (
    TrainingConfig,
    train_scorecard,
)
from huinong.credit.synthetic import LABEL, synthetic_features
from huinong.db import run_in_transaction, transaction
from huinong.institutions.models import Institution
from tests.conftest import new_institution

runner = CliRunner()
AS_OF = dt.date(2026, 6, 30)
FEATURES = (
    "age_years",
    "total_income_fen",
    "debt_to_income",
    "informal_debt_fen",
    "months_active_12m",
    "positive_balance_share_12m",
    "peer_integrity_median",
    "bureau_max_overdue_days",
    "entity_family_farm",
)
EXAMPLE_RULES = (
    Path(__file__).parents[2] / "src/huinong/credit/rules/examples/village_standard.yaml"
)


def said(result: object) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def rows_of(result: object) -> dict[str, list[str]]:
    """The rows of the Rich tables in the output, by their first cell."""
    found = {}
    for line in result.output.splitlines():  # type: ignore[attr-defined]
        cells = [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        if len(cells) > 1 and cells[0]:
            found[cells[0]] = cells[1:]
    return found


def labelled(n: int, seed: int) -> pd.DataFrame:
    frame = synthetic_features(n, seed=seed, as_of=AS_OF)
    table = frame[list(FEATURES)].copy()
    table["bad"] = frame[LABEL].astype(int)
    return table


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A training CSV, a scoring Parquet file from the same population, and a shifted CSV."""
    folder = tmp_path_factory.mktemp("credit-cli")
    paths = {
        "train": folder / "train.csv",
        "today": folder / "today.parquet",
        "shifted": folder / "shifted.csv",
    }
    labelled(3_000, seed=7).to_csv(paths["train"], index=False)
    labelled(2_500, seed=8).to_parquet(paths["today"], index=False)
    shifted = labelled(2_000, seed=9)
    # A drought year: incomes fall to a third, debts weigh three times as much.
    shifted["total_income_fen"] = shifted["total_income_fen"] // 3
    shifted["debt_to_income"] = shifted["debt_to_income"] * 3
    shifted.to_csv(paths["shifted"], index=False)
    return paths


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HUINONG_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def bank(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory, prefix="CC")


def invoke(*args: object) -> object:
    return runner.invoke(app, [str(arg) for arg in args])


def test_features_lists_the_catalogue_by_source(cli_database: str) -> None:
    everything = invoke("features")
    assert everything.exit_code == 0, everything.output
    assert {"total_income_fen", "bureau_blacklisted", "tele_km_monthly_mean"} <= set(
        rows_of(everything)
    )
    assert rows_of(everything)["total_income_fen"][:2] == ["archive", "fen"]
    bureau = invoke("features", "--source", "bureau")
    assert "bureau_blacklisted" in rows_of(bureau) and "age_years" not in rows_of(bureau)
    unknown = invoke("features", "--source", "horoscope")
    assert unknown.exit_code == 1 and "no source horoscope" in said(unknown)


def test_train_promote_score_and_report(
    factory: sessionmaker[Session],
    bank: Institution,
    cli_database: str,
    tables: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report_json, report_html = tmp_path / "report.json", tmp_path / "report.html"
    trained = invoke(
        "train", tables["train"], "--institution", bank.code, "--name", "household",
        "--features", ",".join(FEATURES), "--seed", 7,
        "--report-json", report_json, "--report-html", report_html,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "registered household version 1 as a candidate" in said(trained)
    report = json.loads(report_json.read_text())
    performance = report["performance"]
    # A stratified 70/30 split: the sizes, and the bad rate nearly the same on both sides.
    assert (performance["train"]["rows"], performance["test"]["rows"]) == (2_100, 900)
    rates = [performance[s]["bads"] / performance[s]["rows"] for s in ("train", "test")]
    assert abs(rates[0] - rates[1]) < 0.002
    assert 0.6 < performance["test"]["auc"] < 0.95
    assert rows_of(trained)["test"][2] == f"{performance['test']['auc']:.4f}"
    iv_rows = rows_of(trained)
    for candidate in report["iv_table"]:
        verdict = iv_rows[candidate["feature"]][2]
        assert verdict.startswith("yes" if candidate["selected"] else "no")
    assert "<h2>Bins</h2>" in report_html.read_text()
    with factory() as session:
        [row] = credit.list_scorecards(session, institution_id=bank.id)
    assert (row.version, row.role) == (1, "candidate")
    assert row.metrics["test"]["auc"] == performance["test"]["auc"]
    assert row.metrics["split"] == {"table": "train.csv", "test_share": 0.3, "seed": 7}
    assert row.metrics["report"] == report

    out = tmp_path / "scores.csv"
    no_champion = invoke(
        "score", tables["today"], "--institution", bank.code, "--scorecard", "household",
        "--out", out,
    )  # fmt: skip
    assert no_champion.exit_code == 1 and "has no champion" in said(no_champion)
    assert not out.exists()

    promoted = invoke("promote", "household", 1, "--institution", bank.code)
    assert promoted.exit_code == 0, promoted.output
    listed = invoke("scorecards", "--institution", bank.code)
    assert rows_of(listed)["household"][:2] == ["1", "champion"]

    monkeypatch.setattr(credit_cli, "SCORE_CHUNK_ROWS", 1_000)  # three chunks of 2,500 rows
    scored = invoke(
        "score", tables["today"], "--institution", bank.code, "--scorecard", "household",
        "--out", out, "--keep", "age_years,bad",
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    model = credit.scorecard_model(row)
    today = read_training_table(tables["today"])
    expected = score_batch(model, today)
    written = pd.read_csv(out, keep_default_na=False)
    assert list(written.columns) == [
        "age_years", "bad", "score",
        "reason_1", "reason_1_points_lost", "reason_2", "reason_2_points_lost",
        "reason_3", "reason_3_points_lost",
    ]  # fmt: skip
    assert written["score"].tolist() == expected.scores.tolist()
    assert written["bad"].tolist() == today["bad"].tolist()
    for position in (0, 1, 1_234, 2_499):
        reasons = expected.reasons_for(model, position)
        reasons += [("", 0)] * (3 - len(reasons))
        got = written.iloc[position]
        assert [(got[f"reason_{k}"], got[f"reason_{k}_points_lost"]) for k in (1, 2, 3)] == [
            (name, lost) for name, lost in reasons
        ]
    assert f"scored 2500 rows with household version 1 → {out}" in said(scored)
    assert f"max {expected.scores.max()}" in said(scored)

    html = tmp_path / "monitoring.html"
    drifted = invoke(
        "report", "--institution", bank.code, "--scorecard", "household",
        "--table", tables["shifted"], "--html", html,
    )  # fmt: skip
    assert drifted.exit_code == 0, drifted.output
    stabilities = {
        s.name: s for s in stability_report(model, read_training_table(tables["shifted"]))
    }
    assert stabilities["score"].band != "stable"
    bands = rows_of(drifted)
    for name, stability in stabilities.items():
        assert bands[name] == [f"{stability.psi:.4f}", stability.band]
    assert bands["total_income_fen"][1] == "significant"
    assert bands["age_years"][1] == "stable"  # untouched by the drought
    page = html.read_text()
    assert "Population stability" in page and f"{stabilities['score'].psi:.4f}" in page

    steady = invoke(
        "report", "--institution", bank.code, "--scorecard", "household",
        "--table", tables["today"],
    )  # fmt: skip
    assert rows_of(steady)["score"][1] == "stable"


def test_a_second_version_takes_over_as_champion(
    factory: sessionmaker[Session], bank: Institution, cli_database: str, tables: dict[str, Path]
) -> None:
    for _ in range(2):
        trained = invoke(
            "train", tables["train"], "--institution", bank.code, "--name", "household",
            "--features", ",".join(FEATURES), "--test-share", 0,
            "--base-score", 500, "--pdo", 40,
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
    for version in (1, 2):
        assert invoke("promote", "household", version, "--institution", bank.code).exit_code == 0
    retired = invoke("promote", "household", 1, "--institution", bank.code, "--role", "retired")
    assert retired.exit_code == 0
    with factory() as session:
        rows = credit.list_scorecards(session, institution_id=bank.id)
    assert [(r.version, r.role) for r in rows] == [(1, "retired"), (2, "champion")]
    assert "test" not in rows[1].metrics and rows[1].metrics["train"]["rows"] == 3_000
    assert credit.scorecard_model(rows[1]).scaling.pdo == 40
    missing = invoke("promote", "household", 9, "--institution", bank.code)
    assert missing.exit_code == 1 and "no scorecard household version 9" in said(missing)
    bad_target = invoke(
        "train", tables["train"], "--institution", bank.code, "--name", "x", "--target", "nope"
    )
    assert bad_target.exit_code == 1 and "columns.nope: the target column is missing" in said(
        bad_target
    )


BAD_RULES = """\
format: huinong.credit.rules/1
institution: {code}
name: broken
version: 1
inputs: {{age_years: integer, score: number, shoe_size: integer, assets_fen: integer}}
knockout:
  - {{id: KO_AGE, when: "age_years < 18", reason: age}}
knockouts:
  - {{id: KO_X, when: "age_years >", reason: broken}}
grades:
  score: score
  bands:
    - {{grade: A, min_score: 600, base_limit_fen: 100, approvable: true}}
    - {{grade: C, base_limit_fen: 0, approvable: false}}
limit: {{terms: [], caps: [{{id: CAP_MAX, max_fen: 1000, reason: max}}], step_fen: 100}}
pricing: {{base: {{A: 0.05, C: "0.06"}}}}
"""


def rules_file(folder: Path, code: str, version: int = 1) -> Path:
    document = yaml.safe_load(EXAMPLE_RULES.read_text(encoding="utf-8"))
    document["institution"], document["version"] = code, version
    path = folder / f"village_standard_v{version}.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_rule_sets_checked_added_and_activated(
    factory: sessionmaker[Session], bank: Institution, cli_database: str, tmp_path: Path
) -> None:
    checked = runner.invoke(app, ["rules", "check", str(EXAMPLE_RULES)])
    assert checked.exit_code == 0, checked.output
    assert "valid rule set village_standard version 1" in said(checked)

    bad = tmp_path / "broken.yaml"
    bad.write_text(BAD_RULES.format(code=bank.code), encoding="utf-8")
    expected = ruleset_problems(yaml.safe_load(bad.read_text()), catalogue_columns(CATALOGUE))
    paths = {"knockout", "inputs.shoe_size", "inputs.assets_fen", "knockouts[0].when"}
    assert paths <= {p.path for p in expected}
    for command in (
        ["rules", "check", str(bad)],
        ["rules", "add", str(bad), "--institution", bank.code],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        for problem in expected:
            assert f"{problem.path}: {problem.message}" in said(result)
        assert f"{len(expected)} problem(s)" in said(result)
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("knockouts: [unclosed\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(garbled)])
    assert result.exit_code == 1 and "$: not valid YAML or JSON" in said(result)

    with factory() as session:
        assert credit.list_rule_sets(session, institution_id=bank.id) == []
    first, second = rules_file(tmp_path, bank.code), rules_file(tmp_path, bank.code, 2)
    for path in (first, second):
        added = runner.invoke(app, ["rules", "add", str(path), "--institution", bank.code])
        assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["rules", "add", str(first), "--institution", bank.code])
    assert again.exit_code == 1 and "village_standard is at version 2" in said(again)
    other = runner.invoke(app, ["rules", "add", str(EXAMPLE_RULES), "--institution", bank.code])
    assert other.exit_code == 1 and "names another institution" in said(other)
    for version in ("1", "2"):
        activated = runner.invoke(
            app, ["rules", "activate", "village_standard", version, "--institution", bank.code]
        )
        assert activated.exit_code == 0, activated.output
    assert "village_standard version 2 is now active" in said(activated)
    listed = runner.invoke(app, ["rules", "list", "--institution", bank.code])
    assert re.findall(r"village_standard\s+│\s+(\d)\s+│\s+(\w+)", listed.output) == [
        ("1", "retired"),
        ("2", "active"),
    ]
    unknown = runner.invoke(
        app, ["rules", "activate", "village_standard", "7", "--institution", bank.code]
    )
    assert unknown.exit_code == 1 and "no rule set village_standard version 7" in said(unknown)


@cache
def household_model() -> ScorecardModel:
    config = TrainingConfig(name="household", features=FEATURES, seed=7)
    return train_scorecard(labelled(3_000, seed=7), config).model


def test_replay_says_same_and_names_differences(
    factory: sessionmaker[Session], bank: Institution, cli_database: str, tmp_path: Path
) -> None:
    def setup(session: Session) -> tuple[object, object]:
        scorecard = credit.register_scorecard(
            session, institution_id=bank.id, model=household_model(), metrics={}, created_by=None
        )
        credit.set_scorecard_role(
            session,
            institution_id=bank.id,
            scorecard_id=scorecard.id,
            role=ScorecardRole.champion,
        )
        document = json.loads(rules_file(tmp_path, bank.code).read_text(encoding="utf-8"))
        rule_set = credit.add_rule_set(
            session,
            institution_id=bank.id,
            institution_code=bank.code,
            document=document,
            created_by=None,
        )
        return scorecard, rule_set

    scorecard, rule_set = run_in_transaction(factory, setup)
    frame = synthetic_features(5, seed=21, as_of=AS_OF).drop(columns=[LABEL])
    inputs = [frame.iloc[i].to_dict() for i in range(len(frame))]
    outcomes = credit.decide_batch(household_model(), credit.compiled_rules(rule_set), inputs)
    ids = run_in_transaction(
        factory,
        lambda s: credit.store_decisions(
            s,
            institution_id=bank.id,
            subjects=[credit.Subject(SubjectKind.household, reference=f"R{i}") for i in range(5)],
            inputs=inputs,
            outcomes=outcomes,
            scorecard=scorecard,
            rule_set=rule_set,
            as_of=AS_OF,
            decided_by=None,
        ),
    )
    same = invoke("replay", ids[0], "--institution", bank.code)
    assert same.exit_code == 0, same.output
    assert f"replays to the same result: {outcomes[0].outcome}" in said(same)
    assert f"score {outcomes[0].score}" in said(same)

    with transaction(factory) as session:
        session.execute(
            update(CreditDecision)
            .where(CreditDecision.id == ids[1])
            .values(score=CreditDecision.score + 1)
        )
    differs = invoke("replay", ids[1], "--institution", bank.code)
    assert differs.exit_code == 1
    assert rows_of(differs)["score"] == [str(outcomes[1].score + 1), str(outcomes[1].score)]
    assert "1 field(s) differ: score" in said(differs)

    stranger = new_institution(factory, prefix="CC")
    elsewhere = invoke("replay", ids[0], "--institution", stranger.code)
    assert elsewhere.exit_code == 1 and "no such decision" in said(elsewhere)


def test_train_reads_a_labelled_table_from_the_database(
    factory: sessionmaker[Session], bank: Institution, cli_database: str
) -> None:
    name = f"training_{bank.code.lower()}"
    engine = factory.kw["bind"]
    labelled(3_000, seed=7).to_sql(name, engine, index=False)
    try:
        trained = invoke(
            "train", "--query", f"SELECT * FROM {name}", "--institution", bank.code,
            "--name", "from_db", "--features", ",".join(FEATURES), "--seed", 7,
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
        with factory() as session:
            [row] = credit.list_scorecards(session, institution_id=bank.id, name="from_db")
        assert row.metrics["split"]["table"] == "query" and row.metrics["train"]["rows"] == 2_100
        for statement in (f"DELETE FROM {name}", f"SELECT 1; DROP TABLE {name}"):
            refused = invoke(
                "train", "--query", statement, "--institution", bank.code, "--name", "x"
            )
            assert refused.exit_code == 1 and "SELECT" in said(refused)
        both = invoke("train", "--institution", bank.code, "--name", "x")
        assert both.exit_code == 1 and "--query" in said(both)
        with factory() as session:
            assert session.execute(text(f"SELECT count(*) FROM {name}")).scalar() == 3_000
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {name}"))
