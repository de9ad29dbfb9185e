"""The scorecard registry, rule set versions and stored decisions on both databases: versions
and roles (one champion, one active rule set — held by the database too), decisions stored
with everything they were made from, and replay to the same result."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from huinong.credit import service as credit
from huinong.credit.models import CreditDecision, Scorecard, ScorecardRole, SubjectKind
from huinong.credit.scorecards.model import ScorecardModel
from huinong.credit.scorecards.training import TrainingConfig, train_scorecard
from huinong.credit.synthetic import LABEL, synthetic_features
from huinong.db import run_in_transaction, transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.institutions.models import Institution
from tests.conftest import new_institution

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
)


@cache
def trained() -> ScorecardModel:
    frame = synthetic_features(4_000, seed=7, as_of=AS_OF)
    table = frame[list(FEATURES)].copy()
    table["bad"] = frame[LABEL].astype(int)
    config = TrainingConfig(name="household", features=FEATURES, seed=7)
    return train_scorecard(table, config).model


def rule_document(code: str, version: int = 1, top_limit: int = 20_000_000) -> dict:
    return {
        "format": "huinong.credit.rules/1",
        "institution": code,
        "name": "household_standard",
        "version": version,
        "description": "test rules",
        "inputs": {
            "age_years": "integer",
            "score": "number",
            "total_income_fen": "fen",
            "bureau_max_overdue_days": "integer",
        },
        "knockouts": [
            {"id": "KO_AGE", "when": "age_years < 18 or age_years > 65", "reason": "age"},
            {"id": "KO_OVERDUE", "when": "bureau_max_overdue_days > 90", "reason": "overdue"},
        ],
        "refers": [{"id": "RF_INCOME", "when": "missing(total_income_fen)", "reason": "income"}],
        "grades": {
            "score": "score",
            "bands": [
                {"grade": "AAA", "min_score": 640, "base_limit_fen": top_limit, "approvable": True},
                {"grade": "A", "min_score": 580, "base_limit_fen": 5_000_000, "approvable": True},
                {"grade": "C", "base_limit_fen": 0, "approvable": False},
            ],
        },
        "limit": {
            "terms": [{"column": "total_income_fen", "rate": "0.5"}],
            "caps": [{"id": "CAP_MAX", "max_fen": 50_000_000, "reason": "max"}],
            "step_fen": 100_000,
        },
        "pricing": {"base": {"AAA": "0.0435", "A": "0.0520", "C": "0.0650"}, "adjustments": []},
    }


@pytest.fixture
def bank(factory: sessionmaker[Session]) -> Institution:
    return new_institution(factory, prefix="CR")


def register(factory, bank) -> Scorecard:
    return run_in_transaction(
        factory,
        lambda s: credit.register_scorecard(
            s, institution_id=bank.id, model=trained(), metrics={"auc": 0.7}, created_by=None
        ),
    )


def promote(factory, bank, row: Scorecard, role=ScorecardRole.champion) -> Scorecard:
    return run_in_transaction(
        factory,
        lambda s: credit.set_scorecard_role(
            s, institution_id=bank.id, scorecard_id=row.id, role=role
        ),
    )


def test_versions_and_one_champion(factory, bank):
    first, second = register(factory, bank), register(factory, bank)
    assert (first.version, second.version) == (1, 2)
    assert first.role == "candidate" and first.digest == second.digest
    with pytest.raises(Conflict):
        run_in_transaction(
            factory, lambda s: credit.champion(s, institution_id=bank.id, name="household")
        )
    promote(factory, bank, first)
    promote(factory, bank, second)
    with factory() as session:
        roles = {r.version: r.role for r in credit.list_scorecards(session, institution_id=bank.id)}
        assert roles == {1: "challenger", 2: "champion"}
        champion = credit.champion(session, institution_id=bank.id, name="household")
        assert champion.id == second.id
        assert credit.scorecard_model(champion) == trained()
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(update(Scorecard).where(Scorecard.id == first.id).values(role="champion"))
    with pytest.raises(InvalidInput):
        promote(factory, bank, first, ScorecardRole.candidate)


def test_rule_set_versions_and_one_active(factory, bank):
    def add(document):
        return run_in_transaction(
            factory,
            lambda s: credit.add_rule_set(
                s,
                institution_id=bank.id,
                institution_code=bank.code,
                document=document,
                created_by=None,
            ),
        )

    with pytest.raises(InvalidInput) as caught:
        add(rule_document("SOMEONE-ELSE"))
    assert caught.value.field == "institution"
    broken = rule_document(bank.code)
    broken["knockouts"][0]["when"] = "__import__('os').system('true')"
    with pytest.raises(InvalidInput):
        add(broken)
    first = add(rule_document(bank.code))
    with pytest.raises(Conflict):
        add(rule_document(bank.code))
    second = add(rule_document(bank.code, version=2, top_limit=30_000_000))
    for row in (first, second):
        run_in_transaction(
            factory,
            lambda s, row=row: credit.activate_rule_set(
                s, institution_id=bank.id, rule_set_id=row.id
            ),
        )
    with factory() as session:
        statuses = {
            r.version: r.status for r in credit.list_rule_sets(session, institution_id=bank.id)
        }
        assert statuses == {1: "retired", 2: "active"}
        active = credit.active_rule_set(session, institution_id=bank.id, name="household_standard")
        assert active.id == second.id


def test_decisions_are_stored_whole_and_replay_to_the_same_result(factory, bank):
    scorecard = promote(factory, bank, register(factory, bank))
    rules_row = run_in_transaction(
        factory,
        lambda s: credit.add_rule_set(
            s,
            institution_id=bank.id,
            institution_code=bank.code,
            document=rule_document(bank.code),
            created_by=None,
        ),
    )
    frame = synthetic_features(60, seed=11, as_of=AS_OF)
    inputs = [{name: frame[name].iloc[i] for name in (*FEATURES,)} for i in range(len(frame))]
    with factory() as session:
        rules = credit.compiled_rules(rules_row)
    outcomes = credit.decide_batch(trained(), rules, inputs)
    assert {o.outcome for o in outcomes} <= {"approve", "refer", "decline"}
    assert all(o.limit_fen == 0 for o in outcomes if o.outcome == "decline")
    assert all(len(o.reasons) <= 3 for o in outcomes)
    ids = run_in_transaction(
        factory,
        lambda s: credit.store_decisions(
            s,
            institution_id=bank.id,
            subjects=[
                credit.Subject(SubjectKind.household, reference=f"S{i:03d}")
                for i in range(len(inputs))
            ],
            inputs=inputs,
            outcomes=outcomes,
            scorecard=scorecard,
            rule_set=rules_row,
            as_of=AS_OF,
            decided_by=None,
        ),
    )
    for decision_id, outcome in zip(ids, outcomes, strict=True):
        with factory() as session:
            replay = credit.replay_decision(
                session, institution_id=bank.id, decision_id=decision_id
            )
        assert replay.same, replay.differences
        assert replay.stored == outcome
    # A stored decision that was tampered with no longer replays to itself.
    with transaction(factory) as session:
        session.execute(
            update(CreditDecision)
            .where(CreditDecision.id == ids[0])
            .values(limit_fen=CreditDecision.limit_fen + 100_000, outcome="approve")
        )
    with factory() as session:
        replay = credit.replay_decision(session, institution_id=bank.id, decision_id=ids[0])
    assert not replay.same and "limit_fen" in replay.differences
    # Another institution finds none of it.
    other = new_institution(factory, prefix="CR")
    with factory() as session, pytest.raises(NotFound) as caught:
        credit.replay_decision(session, institution_id=other.id, decision_id=ids[0])
    assert caught.value.code == "credit.decision_not_found"
