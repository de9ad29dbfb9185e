"""Passenger-transport operator credit (客运贷): telematics features → score → grade, limit, rate.

客运贷 is credit for the operators of rural bus lines — often a family or a small company
running a few buses between villages and the county town under a route licence. They rarely
have the archive or the collateral a household credit line rests on, but their vehicles carry
telematics boxes (车联网) and the transport authority assesses every licensed route, so the
bank can see *how the business is run*: monthly mileage (is the route really driven, and
steadily — a coefficient of variation of the monthly kilometres), harsh braking and speeding
events per 100 km (how safely), traffic violations in the last twelve months, and the route
assessment score (线路考核, 0–100). The telematics source of the feature catalogue
(:mod:`huinong.credit.features.telematics`) turns the monthly records into those features.

The flow is the household flow with other inputs, as pure vectorized functions:

1. **features** — :func:`operator_features`: the catalogue's :data:`OPERATOR_SOURCES` over a
   telematics facts table (one row per operator, as of a date, no look-ahead);
2. **score** — :func:`~huinong.credit.scorecards.scoring.score_batch` with a scorecard
   trained on those features (the shipped example: :func:`load_example_scorecard`);
3. **rules** — :func:`~huinong.credit.rules.evaluate` with an operator rule set (the shipped
   example: :func:`load_example_rules`, ``rules/examples/transport_operator.yaml``).

:func:`decide_operators` runs the three over a whole batch; one operator is a one-row table.

How the grade differentiates: the example rule set bands the score into grades A–D. Each grade
has its own base limit (800,000 / 500,000 / 300,000 / 100,000 yuan) and its own annual rate
(4.35 % / 4.95 % / 5.60 % / 6.50 %), with discounts for safe driving and an excellent route
assessment; grade D is never approved automatically. Knock-outs (too short a telematics
history, many violations, a failing route assessment) decline with limit 0 whatever the score.

Decisions:

* **The example model is reproducible, not just shipped.** :func:`train_example_scorecard`
  trains on :func:`~huinong.credit.synthetic.synthetic_operators` with a fixed size, seed,
  as-of date and training timestamp, so its JSON is a pure function of the code and the
  library versions; the committed ``scorecards/examples/transport_operator.json`` is exactly
  its ``to_json()`` and a test retrains and compares. Training imports optbinning, so that
  import happens inside the function: deciding operators never pays for it.
* **The shipped files are read with importlib.resources**, so they are found in an installed
  wheel as well as in a checkout; the rule set is validated against the feature catalogue on
  loading (a rule set asking for a column the catalogue does not compute is refused).
* **The rules read the features table directly** (plus ``score``): no renaming layer between
  the catalogue and the rule set, so the names a bank officer writes in the YAML are the names
  in the catalogue's documentation.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files

import pandas as pd

from huinong.credit.features.compute import CATALOGUE, OPERATOR_SOURCES, compute
from huinong.credit.rules import (
    CompiledRules,
    Decisions,
    RuleSet,
    catalogue_columns,
    evaluate,
    loads_ruleset,
)
from huinong.credit.scorecards.model import ScorecardModel, load_model
from huinong.credit.scorecards.scoring import Scores, score_batch
from huinong.credit.synthetic import LABEL, synthetic_operators

__all__ = [
    "EXAMPLE_AS_OF",
    "EXAMPLE_ROWS",
    "EXAMPLE_SEED",
    "OPERATOR_SOURCES",
    "decide_operators",
    "example_training_table",
    "load_example_rules",
    "load_example_scorecard",
    "operator_features",
    "train_example_scorecard",
]

EXAMPLE_NAME = "transport_operator"
EXAMPLE_ROWS = 20_000
EXAMPLE_SEED = 2024
EXAMPLE_AS_OF = dt.date(2024, 6, 30)
# A fixed timestamp rather than the clock, so that retraining reproduces the artefact exactly.
EXAMPLE_TRAINED_AT = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
EXAMPLE_SCORECARD_FILE = f"{EXAMPLE_NAME}.json"
EXAMPLE_RULES_FILE = f"{EXAMPLE_NAME}.yaml"


def operator_features(facts: pd.DataFrame, *, as_of: dt.date) -> pd.DataFrame:
    """The telematics features of every operator row of ``facts`` as of ``as_of``."""
    return compute(facts, as_of=as_of, sources=OPERATOR_SOURCES)


def example_training_table(
    rows: int = EXAMPLE_ROWS, *, seed: int = EXAMPLE_SEED, as_of: dt.date = EXAMPLE_AS_OF
) -> pd.DataFrame:
    """Synthetic operators' features with the ``default`` label: the example's training table
    (with the defaults) or a fresh sample to test it on (with another seed)."""
    facts = synthetic_operators(rows, seed=seed, as_of=as_of)
    table = operator_features(facts, as_of=as_of)
    table[LABEL] = facts[LABEL].to_numpy()
    return table


def train_example_scorecard(seed: int = EXAMPLE_SEED) -> ScorecardModel:
    """The example operator scorecard, trained on :data:`EXAMPLE_ROWS` synthetic operators
    drawn with ``seed``; deterministic (the shipped artefact is this with the default seed)."""
    from huinong.credit.scorecards.training import TrainingConfig, train_scorecard

    config = TrainingConfig(name=EXAMPLE_NAME, target=LABEL, seed=0)
    trained = train_scorecard(
        example_training_table(seed=seed), config, trained_at=EXAMPLE_TRAINED_AT
    )
    return trained.model


def load_example_scorecard() -> ScorecardModel:
    """The shipped example scorecard (``scorecards/examples/transport_operator.json``),
    validated."""
    resource = files("huinong.credit.scorecards").joinpath("examples", EXAMPLE_SCORECARD_FILE)
    return load_model(resource.read_text(encoding="utf-8"))


def load_example_rules() -> RuleSet:
    """The shipped example rule set (``rules/examples/transport_operator.yaml``), validated
    against the feature catalogue."""
    resource = files("huinong.credit.rules").joinpath("examples", EXAMPLE_RULES_FILE)
    return loads_ruleset(
        resource.read_text(encoding="utf-8"), catalogue=catalogue_columns(CATALOGUE)
    )


def decide_operators(
    facts: pd.DataFrame,
    *,
    as_of: dt.date,
    scorecard: ScorecardModel,
    rules: RuleSet | CompiledRules,
) -> tuple[pd.DataFrame, Scores, Decisions]:
    """Features, scores and decisions of every operator row of the telematics ``facts``.

    Row ``i`` of the three results is row ``i`` of ``facts``. The rule set's score column
    holds the scorecard's points; its other inputs are read from the features table, so a
    rule set naming a column the features lack is refused by the engine, naming the column."""
    features = operator_features(facts, as_of=as_of)
    scores = score_batch(scorecard, features)
    ruleset = rules.ruleset if isinstance(rules, CompiledRules) else rules
    columns = {name: features[name] for name in ruleset.inputs if name in features.columns}
    columns[ruleset.score_column] = scores.scores
    return features, scores, evaluate(rules, columns)
