"""客运贷: the shipped operator scorecard and rule set, and the features → score → rules flow."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.features.compute import CATALOGUE
from huinong.credit.features.facts import facts_frame
from huinong.credit.features.flows import add_months, last_complete_month
from huinong.credit.features.telematics import RouteAssessment, TelematicsMonth, telematics_facts
from huinong.credit.rules import (
    Decision,
    Decisions,
    Outcome,
    catalogue_columns,
    compile_rules,
    parse_ruleset,
    replay,
    ruleset_problems,
)
from huinong.credit.scorecards.model import ScorecardModel, validate_model
from huinong.credit.scorecards.report import discrimination
from huinong.credit.scorecards.scoring import Scores, score_batch
from huinong.credit.synthetic import LABEL, synthetic_operators
from huinong.credit.transport import (
    EXAMPLE_AS_OF,
    OPERATOR_SOURCES,
    decide_operators,
    example_training_table,
    load_example_rules,
    load_example_scorecard,
    operator_features,
    train_example_scorecard,
)
from huinong.errors import InvalidInput
from tests.unit.credit.artefacts import assert_retrained_matches

AS_OF = dt.date(2025, 3, 31)
SHIPPED_JSON = files("huinong.credit.scorecards").joinpath("examples", "transport_operator.json")
SHIPPED_YAML = files("huinong.credit.rules").joinpath("examples", "transport_operator.yaml")
Decided = tuple[pd.DataFrame, Scores, Decisions]


@pytest.fixture(scope="module")
def scorecard() -> ScorecardModel:
    return load_example_scorecard()


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    """A sample the example model never saw: another seed and another as-of date."""
    return synthetic_operators(30_000, seed=77, as_of=AS_OF)


@pytest.fixture(scope="module")
def decided(fresh: pd.DataFrame, scorecard: ScorecardModel) -> Decided:
    return decide_operators(fresh, as_of=AS_OF, scorecard=scorecard, rules=load_example_rules())


def _points_tables(model: ScorecardModel) -> list[tuple[str, tuple[float, ...], list[int]]]:
    return [(f.name, f.edges, [b.points for b in f.bins]) for f in model.features]


# --- the shipped files -----------------------------------------------------------------------


def test_the_rule_set_validates_against_the_feature_catalogue() -> None:
    document = yaml.safe_load(SHIPPED_YAML.read_text(encoding="utf-8"))
    columns = catalogue_columns(CATALOGUE)
    assert ruleset_problems(document, columns) == []
    rules = load_example_rules()
    assert (rules.institution, rules.name, rules.version) == ("demo-rcc", "transport_operator", 1)
    assert [band.grade for band in rules.bands] == ["A", "B", "C", "D"]
    operator_columns = {f.column.name for f in CATALOGUE.features(OPERATOR_SOURCES)}
    assert set(rules.inputs) - {"score"} <= operator_columns
    # the same document asking for a column no source computes is refused, naming it
    document["inputs"]["tele_fare_revenue_fen"] = "fen"
    problems = ruleset_problems(document, columns)
    assert [p.path for p in problems] == ["inputs.tele_fare_revenue_fen"]


def test_better_grades_have_higher_base_limits_and_lower_rates() -> None:
    rules = load_example_rules()
    limits = [band.base_limit_fen for band in rules.bands]
    rates = [rules.pricing.base[band.grade] for band in rules.bands]
    assert limits == sorted(limits, reverse=True) and len(set(limits)) == len(limits)
    assert rates == sorted(rates) and len(set(rates)) == len(rates)
    assert [band.approvable for band in rules.bands] == [True, True, True, False]


def test_the_example_scorecard_loads_and_validates(scorecard: ScorecardModel) -> None:
    assert validate_model(scorecard) == []
    assert scorecard.name == "transport_operator" and scorecard.target == LABEL
    operator_columns = {f.column.name for f in CATALOGUE.features(OPERATOR_SOURCES)}
    assert set(scorecard.feature_names) <= operator_columns
    assert {"tele_speeding_per_100km", "tele_route_score"} <= set(scorecard.feature_names)
    assert scorecard.training.rows == 20_000
    # the shipped text is the canonical serialisation of the model it holds
    assert SHIPPED_JSON.read_text(encoding="utf-8") == scorecard.to_json()


def test_retraining_reproduces_the_shipped_artefact(scorecard: ScorecardModel) -> None:
    assert_retrained_matches(train_example_scorecard(), scorecard)


def test_another_training_seed_gives_another_model(scorecard: ScorecardModel) -> None:
    other = train_example_scorecard(seed=5)
    assert _points_tables(other) != _points_tables(scorecard)


def test_the_example_scorecard_separates_on_a_fresh_sample(
    fresh: pd.DataFrame, scorecard: ScorecardModel
) -> None:
    scores = score_batch(scorecard, operator_features(fresh, as_of=AS_OF)).scores
    measured = discrimination(fresh[LABEL].to_numpy(), scores)
    assert measured["auc"] > 0.7
    assert measured["ks"] > 0.3


def test_the_training_table_is_the_operator_features_with_the_label() -> None:
    table = example_training_table(500, seed=3)
    expected = [f.column.name for f in CATALOGUE.features(OPERATOR_SOURCES)] + [LABEL]
    assert list(table.columns) == expected
    facts = synthetic_operators(500, seed=3, as_of=EXAMPLE_AS_OF)
    assert table[LABEL].tolist() == facts[LABEL].tolist()


# --- decisions -------------------------------------------------------------------------------


def test_decisions_line_up_with_the_facts(fresh: pd.DataFrame, decided: Decided) -> None:
    features, scores, decisions = decided
    assert len(features) == len(decisions) == len(fresh)
    assert features.index.equals(fresh.index)
    score_input = decisions.inputs["score"].values
    assert score_input.tolist() == scores.scores.astype(float).tolist()


def test_better_grades_get_higher_limits_lower_rates_and_fewer_defaults(
    fresh: pd.DataFrame, decided: Decided
) -> None:
    _, _, decisions = decided
    granted = decisions.outcome != Outcome.decline.value
    table = pd.DataFrame(
        {
            "grade": decisions.grade[granted],
            "limit": decisions.limit_fen[granted],
            "rate": [float(Decimal(r)) for r in decisions.annual_rate[granted]],
            "bad": fresh[LABEL].to_numpy()[granted],
        }
    )
    by_grade = table.groupby("grade").mean().loc[["A", "B", "C", "D"]]
    assert by_grade["limit"].is_monotonic_decreasing and by_grade["limit"].is_unique
    assert by_grade["rate"].is_monotonic_increasing and by_grade["rate"].is_unique
    assert by_grade["bad"].is_monotonic_increasing
    assert by_grade.loc["A", "bad"] < 0.5 * by_grade.loc["D", "bad"]
    shares = pd.Series(decisions.grade).value_counts(normalize=True)
    assert shares.between(0.1, 0.4).all()  # every grade is used
    approved = decisions.outcome == Outcome.approve.value
    assert set(decisions.grade[approved]) <= {"A", "B", "C"}
    assert 0.5 < approved.mean() < 0.85


def test_knock_outs_decline_with_limit_zero_and_no_rate(
    decided: Decided,
) -> None:
    _, _, decisions = decided
    knockout_rows = [i for i, rule in enumerate(decisions.rules) if rule.id.startswith("KO_")]
    knocked = decisions.fired[knockout_rows].any(axis=0)
    assert knocked.sum() > 100
    assert (decisions.outcome[knocked] == Outcome.decline.value).all()
    assert (decisions.outcome[~knocked] != Outcome.decline.value).all()
    assert (decisions.limit_fen[knocked] == 0).all()
    assert all(rate is None for rate in decisions.annual_rate[knocked])


def _operator(months: int, violations: int, route_score: float | None) -> dict[str, object]:
    """A steady, safe operator (6,000 km a month, 0.5 harsh brakings and 0.1 speeding events
    per 100 km) with ``months`` months of data, ``violations`` in the newest month and a
    route assessment of ``route_score`` (none when None)."""
    newest = last_complete_month(AS_OF)
    records = [
        TelematicsMonth(
            month=add_months(newest, -k),
            km=6_000,
            harsh_braking_events=30,
            speeding_events=6,
            violations=violations if k == 0 else 0,
        )
        for k in range(months)
    ]
    assessed = [] if route_score is None else [RouteAssessment(dt.date(2025, 1, 15), route_score)]
    return telematics_facts(records, assessed, AS_OF)


@pytest.mark.parametrize(
    ("months", "violations", "route_score", "fired"),
    [
        (12, 0, 92.0, []),
        (4, 0, 92.0, ["KO_HISTORY", "RF_THIN_HISTORY"]),
        (12, 7, 92.0, ["KO_VIOLATIONS"]),
        (12, 0, 60.0, ["KO_ROUTE"]),
        (9, 0, 92.0, ["RF_THIN_HISTORY"]),
        (12, 0, None, ["RF_NO_ROUTE"]),
    ],
)
def test_one_operator_from_its_telematics_records(
    scorecard: ScorecardModel,
    months: int,
    violations: int,
    route_score: float | None,
    fired: list[str],
) -> None:
    facts = facts_frame(
        [_operator(months, violations, route_score)], as_of=AS_OF, sources=OPERATOR_SOURCES
    )
    _, _, decisions = decide_operators(
        facts, as_of=AS_OF, scorecard=scorecard, rules=load_example_rules()
    )
    decision = decisions.row(0)
    assert [r.id for r in decision.fired if r.kind.value in ("knockout", "refer")] == fired
    expected = (
        Outcome.decline
        if any(f.startswith("KO_") for f in fired)
        else Outcome.refer
        if fired
        else Outcome.approve
    )
    assert decision.outcome is expected
    assert (decision.limit_fen == 0) is (expected is Outcome.decline)


def test_a_decision_replays_to_the_same_result(
    decided: Decided,
) -> None:
    _, _, decisions = decided
    rules = load_example_rules()
    outcomes = decisions.outcome
    rows = [int(np.flatnonzero(outcomes == o.value)[0]) for o in Outcome]  # one of each
    rows += [int(np.flatnonzero(decisions.grade == "A")[0])]
    for row in rows:
        stored = Decision.from_json(decisions.row(row).to_json())
        assert replay(rules, stored) == stored
        assert replay(compile_rules(rules), stored) == decisions.row(row)


def test_replay_refuses_another_version_of_the_rules(
    decided: Decided,
) -> None:
    _, _, decisions = decided
    document = yaml.safe_load(SHIPPED_YAML.read_text(encoding="utf-8"))
    document["version"] = 2
    newer = parse_ruleset(document, catalogue_columns(CATALOGUE))
    with pytest.raises(InvalidInput) as raised:
        replay(newer, decisions.row(0))
    assert raised.value.code == "credit.rules.ruleset_mismatch"


def test_rules_that_need_a_household_column_are_refused_naming_it(
    fresh: pd.DataFrame, scorecard: ScorecardModel
) -> None:
    document = yaml.safe_load(SHIPPED_YAML.read_text(encoding="utf-8"))
    document["inputs"]["age_years"] = "integer"
    document["knockouts"].append({"id": "KO_AGE", "when": "age_years > 70", "reason": "age"})
    household_rules = parse_ruleset(document, catalogue_columns(CATALOGUE))
    with pytest.raises(InvalidInput) as raised:
        decide_operators(fresh.head(5), as_of=AS_OF, scorecard=scorecard, rules=household_rules)
    assert (raised.value.code, raised.value.field) == ("credit.rules.bad_input", "age_years")


def test_facts_of_another_date_are_refused(fresh: pd.DataFrame, scorecard: ScorecardModel) -> None:
    with pytest.raises(InvalidInput) as raised:
        decide_operators(
            fresh, as_of=EXAMPLE_AS_OF, scorecard=scorecard, rules=load_example_rules()
        )
    assert raised.value.code == "credit.features.as_of_mismatch"


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.integers(0, 29_999), min_size=1, max_size=20))
def test_an_operator_is_decided_alike_alone_and_in_the_batch(
    fresh: pd.DataFrame,
    scorecard: ScorecardModel,
    decided: Decided,
    rows: list[int],
) -> None:
    _, _, batch = decided
    subset = fresh.iloc[rows]
    subset.attrs = dict(fresh.attrs)
    _, _, alone = decide_operators(
        subset, as_of=AS_OF, scorecard=scorecard, rules=load_example_rules()
    )
    for position, row in enumerate(rows):
        assert dataclasses.asdict(alone.row(position)) == dataclasses.asdict(batch.row(row))
