"""The shipped example household scorecard: it is what training says it is, it loads, and its
scale fits the example rule set's grade bands."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import yaml

from huinong.credit.features.compute import CATALOGUE
from huinong.credit.rules import catalogue_columns, evaluate, loads_ruleset
from huinong.credit.scorecards.report import discrimination
from huinong.credit.scorecards.scoring import score_batch
from huinong.credit.synthetic import LABEL, synthetic_features
from huinong.credit.village import (
    EXAMPLE_SCALING,
    example_rules_text,
    load_example_scorecard,
    train_example_scorecard,
)
from tests.unit.credit.artefacts import assert_retrained_matches


def test_the_shipped_artefact_is_the_trained_model() -> None:
    shipped = load_example_scorecard()
    assert_retrained_matches(train_example_scorecard(), shipped)
    assert shipped.scaling == EXAMPLE_SCALING
    assert json.loads(shipped.to_json())["name"] == "household"


def test_on_fresh_households_it_separates_and_spreads_over_the_grades() -> None:
    model = load_example_scorecard()
    table = synthetic_features(20_000, seed=99, as_of=dt.date(2026, 9, 30))
    scores = score_batch(model, table)
    figures = discrimination(table[LABEL].to_numpy(), scores.scores)
    assert figures["auc"] > 0.72 and figures["ks"] > 0.3
    document = yaml.safe_load(example_rules_text())
    rules = loads_ruleset(
        yaml.safe_dump(document, allow_unicode=True), catalogue=catalogue_columns(CATALOGUE)
    )
    columns = {name: table[name] for name in rules.inputs if name != "score"}
    decided = evaluate(rules, {**columns, "score": scores.scores.astype(float)})
    grades = Counter(decided.grade)
    assert {"AAA", "AA", "A", "B", "C"} <= set(grades), grades
    assert max(grades.values()) < 0.6 * len(table), grades
