"""The example household scorecard of village credit campaigns (整村授信), shipped with the rule
set ``rules/examples/village_standard.yaml`` so that a new institution (and the demo) can run a
campaign before it has trained a model on its own portfolio.

It is trained on synthetic households (``huinong.credit.synthetic``: a county's mix of farms,
wages away from home, debts and vetoes, with a default label that has real signal), every
household feature of the catalogue a candidate, and scaled so that the example rule set's
grade bands mean something: **720 points at good:bad odds of 50:1, 40 points to double the
odds**. A household as risky as the synthetic county's average (about 7 % default, odds 13:1)
then scores about 640, the A/B boundary; odds of 100:1 reach AAA (750). A bank replaces it with
its own model (``huinong credit train``) as soon as it has outcomes to learn from.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files

from huinong.credit.scorecards.model import Scaling, ScorecardModel, load_model
from huinong.credit.synthetic import LABEL, synthetic_features

EXAMPLE_NAME = "household"
EXAMPLE_ROWS = 20_000
EXAMPLE_SEED = 2026
EXAMPLE_AS_OF = dt.date(2026, 6, 30)
EXAMPLE_SCALING = Scaling(base_score=720.0, base_odds=50.0, pdo=40.0)
# A fixed timestamp rather than the clock, so that retraining reproduces the artefact exactly.
EXAMPLE_TRAINED_AT = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
EXAMPLE_SCORECARD_FILE = "village_household.json"


def train_example_scorecard(seed: int = EXAMPLE_SEED) -> ScorecardModel:
    """The example scorecard (the shipped artefact is this with the default seed)."""
    from huinong.credit.scorecards.training import TrainingConfig, train_scorecard

    table = synthetic_features(EXAMPLE_ROWS, seed=seed, as_of=EXAMPLE_AS_OF)
    config = TrainingConfig(name=EXAMPLE_NAME, target=LABEL, scaling=EXAMPLE_SCALING, seed=0)
    return train_scorecard(table, config, trained_at=EXAMPLE_TRAINED_AT).model


def load_example_scorecard() -> ScorecardModel:
    """The shipped example (``scorecards/examples/village_household.json``), validated."""
    resource = files("huinong.credit.scorecards").joinpath("examples", EXAMPLE_SCORECARD_FILE)
    return load_model(resource.read_text(encoding="utf-8"))


def example_rules_text() -> str:
    """The example rule set's YAML (its ``institution`` is a placeholder to replace)."""
    return (
        files("huinong.credit.rules")
        .joinpath("examples", "village_standard.yaml")
        .read_text(encoding="utf-8")
    )
