"""Credit use cases: the scorecard registry, rule set versions, decisions and their replay.

A decision is computed in one pass over a batch — a village of households or one — by the
pure modules: the champion scorecard scores the feature values (``scorecards.scoring``), the
active rule set turns score and features into outcome, grade, limit and rate
(``rules.engine``), and every row is stored with what it was made from. Replaying a decision
reads only what was stored (its inputs, the scorecard version and the rule set version it
names), computes again and compares field by field; a stored decision never changes.

Artefacts are loaded once per digest and kept (they are immutable), so a batch does not parse
JSON per row.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit.models import (
    CreditDecision,
    RuleSetStatus,
    RuleSetVersion,
    Scorecard,
    ScorecardRole,
    SubjectKind,
)
from huinong.credit.rules import engine
from huinong.credit.rules.ruleset import RuleSet, parse_ruleset
from huinong.credit.scorecards import scoring
from huinong.credit.scorecards.model import ScorecardModel, load_model
from huinong.db import is_postgres
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.security.crypto import sm3

Scalar = int | float | str | bool | None

# --------------------------------------------------------------------------- scorecards


def artefact_digest(text: str) -> str:
    return sm3(text.encode()).hex()


@lru_cache(maxsize=64)
def _model(digest: str, artefact: str) -> ScorecardModel:
    return load_model(artefact)


def scorecard_model(row: Scorecard) -> ScorecardModel:
    return _model(row.digest, row.artefact)


def register_scorecard(
    session: Session,
    *,
    institution_id: uuid.UUID,
    model: ScorecardModel,
    metrics: Mapping[str, Any],
    created_by: uuid.UUID | None,
) -> Scorecard:
    """Store a trained scorecard as the next version of its name, as a candidate."""
    artefact = model.to_json()
    load_model(artefact)  # a model that does not validate is never stored
    latest = session.scalar(
        select(func.max(Scorecard.version)).where(
            Scorecard.institution_id == institution_id, Scorecard.name == model.name
        )
    )
    now = clock.now()
    row = Scorecard(
        id=uuid7(),
        institution_id=institution_id,
        name=model.name,
        version=(latest or 0) + 1,
        role=str(ScorecardRole.candidate),
        artefact=artefact,
        digest=artefact_digest(artefact),
        metrics=json.loads(json.dumps(dict(metrics), default=str)),
        created_by=created_by,
        created_at=now,
        role_changed_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_scorecard(
    session: Session, *, institution_id: uuid.UUID, scorecard_id: uuid.UUID
) -> Scorecard:
    row = session.get(Scorecard, scorecard_id)
    if row is None or row.institution_id != institution_id:
        raise NotFound("credit.scorecard_not_found", "no such scorecard", field="scorecard_id")
    return row


def scorecard_version(
    session: Session, *, institution_id: uuid.UUID, name: str, version: int | None = None
) -> Scorecard:
    """Version ``version`` of the scorecard ``name``, or its champion when no version is given."""
    if version is None:
        return champion(session, institution_id=institution_id, name=name)
    row = session.scalars(
        select(Scorecard).where(
            Scorecard.institution_id == institution_id,
            Scorecard.name == name,
            Scorecard.version == version,
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            "credit.scorecard_not_found",
            f"no scorecard {name} version {version}: `huinong credit scorecards` lists them",
            field="version",
        )
    return row


def list_scorecards(
    session: Session, *, institution_id: uuid.UUID, name: str | None = None
) -> list[Scorecard]:
    query = select(Scorecard).where(Scorecard.institution_id == institution_id)
    if name is not None:
        query = query.where(Scorecard.name == name)
    return list(session.scalars(query.order_by(Scorecard.name, Scorecard.version)))


def set_scorecard_role(
    session: Session, *, institution_id: uuid.UUID, scorecard_id: uuid.UUID, role: ScorecardRole
) -> Scorecard:
    """Promote a version to champion (the champion before it becomes a challenger), make it a
    challenger, or retire it. A retired version stays readable: decisions name it."""
    row = get_scorecard(session, institution_id=institution_id, scorecard_id=scorecard_id)
    role = ScorecardRole(role)
    if role is ScorecardRole.candidate:
        raise InvalidInput(
            "credit.invalid_role",
            "a scorecard becomes champion, challenger or retired",
            field="role",
        )
    now = clock.now()
    if role is ScorecardRole.champion and row.role != ScorecardRole.champion:
        session.execute(
            update(Scorecard)
            .where(
                Scorecard.institution_id == institution_id,
                Scorecard.name == row.name,
                Scorecard.role == str(ScorecardRole.champion),
            )
            .values(role=str(ScorecardRole.challenger), role_changed_at=now)
        )
        session.flush()
    row.role = str(role)
    row.role_changed_at = now
    session.flush()
    return row


def champion(session: Session, *, institution_id: uuid.UUID, name: str) -> Scorecard:
    row = session.scalars(
        select(Scorecard).where(
            Scorecard.institution_id == institution_id,
            Scorecard.name == name,
            Scorecard.role == str(ScorecardRole.champion),
        )
    ).one_or_none()
    if row is None:
        raise Conflict(
            "credit.no_champion",
            f"scorecard {name!r} has no champion: promote a version first",
            field="scorecard",
        )
    return row


def read_training_query(session: Session, query: str) -> pd.DataFrame:
    """A labelled table from the platform's own database — a read-only SELECT, e.g. over a
    view that joins past decisions with how the loans turned out. On PostgreSQL the
    transaction is made read-only first; the caller rolls it back."""
    statement = query.strip().rstrip(";")
    if not statement.lower().startswith(("select", "with")) or ";" in statement:
        raise InvalidInput(
            "credit.training.not_a_query",
            "give one SELECT (or WITH … SELECT) statement",
            field="query",
        )
    if is_postgres(session):
        session.execute(text("SET TRANSACTION READ ONLY"))
    result = session.execute(text(statement))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


# --------------------------------------------------------------------------- rule sets


@lru_cache(maxsize=64)
def _compiled(digest: str, document: str) -> engine.CompiledRules:
    return engine.compile_rules(parse_ruleset(json.loads(document)))


def compiled_rules(row: RuleSetVersion) -> engine.CompiledRules:
    return _compiled(row.digest, json.dumps(row.document, sort_keys=True, ensure_ascii=False))


def add_rule_set(
    session: Session,
    *,
    institution_id: uuid.UUID,
    institution_code: str,
    document: Mapping[str, Any],
    created_by: uuid.UUID | None,
) -> RuleSetVersion:
    """Store a rule set version (as a draft) after validating the whole document."""
    ruleset: RuleSet = parse_ruleset(document)
    if ruleset.institution != institution_code:
        raise InvalidInput(
            "credit.rules.other_institution",
            f"the rule set names another institution: write `institution: {institution_code}`",
            field="institution",
        )
    latest = session.scalar(
        select(func.max(RuleSetVersion.version)).where(
            RuleSetVersion.institution_id == institution_id, RuleSetVersion.name == ruleset.name
        )
    )
    if latest is not None and ruleset.version <= latest:
        raise Conflict(
            "credit.rules.version_exists",
            f"{ruleset.name} is at version {latest}: a changed rule set is version {latest + 1}",
            field="version",
        )
    now = clock.now()
    row = RuleSetVersion(
        id=uuid7(),
        institution_id=institution_id,
        name=ruleset.name,
        version=ruleset.version,
        status=str(RuleSetStatus.draft),
        document=json.loads(json.dumps(dict(document), ensure_ascii=False)),
        digest=ruleset.digest,
        created_by=created_by,
        created_at=now,
        status_changed_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_rule_set(
    session: Session, *, institution_id: uuid.UUID, rule_set_id: uuid.UUID
) -> RuleSetVersion:
    row = session.get(RuleSetVersion, rule_set_id)
    if row is None or row.institution_id != institution_id:
        raise NotFound("credit.rule_set_not_found", "no such rule set", field="rule_set_id")
    return row


def rule_set_version(
    session: Session, *, institution_id: uuid.UUID, name: str, version: int
) -> RuleSetVersion:
    row = session.scalars(
        select(RuleSetVersion).where(
            RuleSetVersion.institution_id == institution_id,
            RuleSetVersion.name == name,
            RuleSetVersion.version == version,
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            "credit.rule_set_not_found",
            f"no rule set {name} version {version}: `huinong credit rules list` lists them",
            field="version",
        )
    return row


def list_rule_sets(session: Session, *, institution_id: uuid.UUID) -> list[RuleSetVersion]:
    return list(
        session.scalars(
            select(RuleSetVersion)
            .where(RuleSetVersion.institution_id == institution_id)
            .order_by(RuleSetVersion.name, RuleSetVersion.version)
        )
    )


def activate_rule_set(
    session: Session, *, institution_id: uuid.UUID, rule_set_id: uuid.UUID
) -> RuleSetVersion:
    """Make a version the active one of its name; the version active before is retired."""
    row = get_rule_set(session, institution_id=institution_id, rule_set_id=rule_set_id)
    if row.status == RuleSetStatus.active:
        return row
    now = clock.now()
    session.execute(
        update(RuleSetVersion)
        .where(
            RuleSetVersion.institution_id == institution_id,
            RuleSetVersion.name == row.name,
            RuleSetVersion.status == str(RuleSetStatus.active),
        )
        .values(status=str(RuleSetStatus.retired), status_changed_at=now)
    )
    session.flush()
    row.status = str(RuleSetStatus.active)
    row.status_changed_at = now
    session.flush()
    return row


def active_rule_set(session: Session, *, institution_id: uuid.UUID, name: str) -> RuleSetVersion:
    row = session.scalars(
        select(RuleSetVersion).where(
            RuleSetVersion.institution_id == institution_id,
            RuleSetVersion.name == name,
            RuleSetVersion.status == str(RuleSetStatus.active),
        )
    ).one_or_none()
    if row is None:
        raise Conflict(
            "credit.rules.none_active",
            f"rule set {name!r} has no active version: activate one first",
            field="rule_set",
        )
    return row


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Subject:
    """Who a decision is about: a household, or another subject by reference."""

    kind: SubjectKind
    household_id: uuid.UUID | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One decision as computed (before it is stored), comparable field by field."""

    score: int | None
    reasons: tuple[tuple[str, int], ...]
    fired: tuple[tuple[str, str], ...]
    outcome: str
    grade: str | None
    limit_fen: int
    annual_rate: str | None


def _plain(value: Any) -> Scalar:
    """A JSON-able scalar from a numpy or pandas value; missing becomes None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value  # type: ignore[no-any-return]


def decide_batch(
    model: ScorecardModel, rules: engine.CompiledRules, inputs: Sequence[Mapping[str, Any]]
) -> list[Outcome]:
    """Score and decide every row of ``inputs`` (feature values by name) in one pass."""
    if not inputs:
        return []
    inputs = [{name: _plain(value) for name, value in row.items()} for row in inputs]
    names = sorted({name for row in inputs for name in row})
    columns = {name: [row.get(name) for row in inputs] for name in names}
    scored = scoring.score_batch(model, columns)
    score_column = rules.ruleset.score_column
    decided = engine.evaluate(
        rules,
        {
            **{name: columns.get(name, [None] * len(inputs)) for name in rules.ruleset.inputs},
            score_column: scored.scores.astype(np.float64),
        },
    )
    outcomes = []
    for index in range(len(inputs)):
        row = decided.row(index)
        outcomes.append(
            Outcome(
                score=int(scored.scores[index]),
                reasons=tuple(scored.reasons_for(model, index)),
                fired=tuple((rule.id, rule.kind.value) for rule in row.fired),
                outcome=row.outcome.value,
                grade=row.grade,
                limit_fen=int(row.limit_fen),
                annual_rate=row.annual_rate,
            )
        )
    return outcomes


def store_decisions(
    session: Session,
    *,
    institution_id: uuid.UUID,
    subjects: Sequence[Subject],
    inputs: Sequence[Mapping[str, Any]],
    outcomes: Sequence[Outcome],
    scorecard: Scorecard,
    rule_set: RuleSetVersion,
    as_of: dt.date,
    decided_by: uuid.UUID | None,
) -> list[uuid.UUID]:
    """Write the decisions of a batch with one multi-row INSERT; returns their ids."""
    now = clock.now()
    ids = [uuid7() for _ in subjects]
    rows = [
        {
            "id": decision_id,
            "institution_id": institution_id,
            "subject_kind": str(subject.kind),
            "household_id": subject.household_id,
            "subject_reference": subject.reference,
            "as_of": as_of,
            "scorecard_id": scorecard.id,
            "rule_set_id": rule_set.id,
            "inputs": {name: _plain(value) for name, value in row_inputs.items()},
            "score": outcome.score,
            "reasons": [list(reason) for reason in outcome.reasons],
            "fired": [list(rule) for rule in outcome.fired],
            "outcome": outcome.outcome,
            "grade": outcome.grade,
            "limit_fen": outcome.limit_fen,
            "annual_rate": outcome.annual_rate,
            "decided_by": decided_by,
            "decided_at": now,
        }
        for decision_id, subject, row_inputs, outcome in zip(
            ids, subjects, inputs, outcomes, strict=True
        )
    ]
    if rows:
        session.execute(insert(CreditDecision), rows)
    return ids


def get_decision(
    session: Session, *, institution_id: uuid.UUID, decision_id: uuid.UUID
) -> CreditDecision:
    row = session.get(CreditDecision, decision_id)
    if row is None or row.institution_id != institution_id:
        raise NotFound("credit.decision_not_found", "no such decision", field="decision_id")
    return row


def stored_outcome(row: CreditDecision) -> Outcome:
    return Outcome(
        score=row.score,
        reasons=tuple((str(name), int(lost)) for name, lost in row.reasons),
        fired=tuple((str(rule), str(kind)) for rule, kind in row.fired),
        outcome=row.outcome,
        grade=row.grade,
        limit_fen=row.limit_fen,
        annual_rate=row.annual_rate,
    )


@dataclass(frozen=True)
class Replay:
    stored: Outcome
    replayed: Outcome

    @property
    def same(self) -> bool:
        return self.stored == self.replayed

    @property
    def differences(self) -> list[str]:
        return [
            name
            for name in Outcome.__dataclass_fields__
            if getattr(self.stored, name) != getattr(self.replayed, name)
        ]


def replay_decision(
    session: Session, *, institution_id: uuid.UUID, decision_id: uuid.UUID
) -> Replay:
    """Decide again from the stored inputs with the stored scorecard and rule set versions."""
    row = get_decision(session, institution_id=institution_id, decision_id=decision_id)
    scorecard = get_scorecard(session, institution_id=institution_id, scorecard_id=row.scorecard_id)
    rule_set = get_rule_set(session, institution_id=institution_id, rule_set_id=row.rule_set_id)
    [replayed] = decide_batch(scorecard_model(scorecard), compiled_rules(rule_set), [row.inputs])
    return Replay(stored=stored_outcome(row), replayed=replayed)
