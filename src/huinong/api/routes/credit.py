"""Credit (授信): the feature catalogue, the scorecard registry, rule sets and decisions.

Model governance is four-eyed: risk officers register scorecards (``huinong credit train``)
and write rule sets; an approver promotes a scorecard to champion and activates a rule set
version. Every change of role or status is audited. A stored decision can be replayed by
anyone who may read it: the answer says whether it comes out the same and, if not, which
fields differ.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.credit import service
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.models import CreditDecision, RuleSetVersion, Scorecard
from huinong.credit.schemas import (
    DecisionRead,
    FeatureRead,
    ReplayRead,
    RuleSetCreate,
    RuleSetRead,
    ScorecardDetail,
    ScorecardRead,
    ScorecardRoleSet,
)
from huinong.security.audit import service as audit
from huinong.security.principals import Principal

router = APIRouter(tags=["credit"])


def _audit(
    session: Session, principal: Principal, action: str, kind: str, row_id: Any, **detail: Any
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=principal.institution_id,
        actor=principal,
        object_type=kind,
        object_id=str(row_id),
        detail=detail or None,
    )


def scorecard_read(row: Scorecard) -> ScorecardRead:
    return ScorecardRead(
        id=row.id,
        name=row.name,
        version=row.version,
        role=row.role,
        digest=row.digest,
        # The headline figures; the whole training report is in the detail (…/{id}).
        metrics={k: v for k, v in row.metrics.items() if k != "report"},
        created_at=row.created_at,
        role_changed_at=row.role_changed_at,
    )


def rule_set_read(row: RuleSetVersion) -> RuleSetRead:
    return RuleSetRead.model_validate(row, from_attributes=True)


def decision_read(row: CreditDecision) -> DecisionRead:
    return DecisionRead.model_validate(row, from_attributes=True)


@router.get("/credit/features", response_model=list[FeatureRead])
def list_features() -> Any:
    """The feature catalogue: every feature's meaning, source, unit and how missing shows."""
    return CATALOGUE.documentation()


@router.get("/credit/scorecards", response_model=list[ScorecardRead])
def list_scorecards(principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: [
            scorecard_read(r)
            for r in service.list_scorecards(s, institution_id=principal.institution_id)
        ]
    )


@router.get("/credit/scorecards/{scorecard_id}", response_model=ScorecardDetail)
def get_scorecard(scorecard_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    def work(s: Session) -> ScorecardDetail:
        row = service.get_scorecard(
            s, institution_id=principal.institution_id, scorecard_id=scorecard_id
        )
        return ScorecardDetail(
            **scorecard_read(row).model_dump() | {"metrics": row.metrics},
            artefact=json.loads(row.artefact),
        )

    return database.run(work)


@router.put("/credit/scorecards/{scorecard_id}/role", response_model=ScorecardRead)
def set_scorecard_role(
    scorecard_id: uuid.UUID, body: ScorecardRoleSet, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Promote to champion (the champion before becomes a challenger), make a challenger, or
    retire."""

    def work(s: Session) -> ScorecardRead:
        row = service.set_scorecard_role(
            s, institution_id=principal.institution_id, scorecard_id=scorecard_id, role=body.role
        )
        _audit(s, principal, "credit.scorecard_role_set", "scorecard", row.id, role=row.role)
        return scorecard_read(row)

    return database.run(work)


@router.post("/credit/rule-sets", status_code=201, response_model=RuleSetRead)
def add_rule_set(body: RuleSetCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Store a rule set version as a draft; every problem of the document is listed at once
    (``problems``: path and message) and nothing is stored."""

    def work(s: Session) -> RuleSetRead:
        row = service.add_rule_set(
            s,
            institution_id=principal.institution_id,
            institution_code=principal.institution_code,
            document=body.document,
            created_by=principal.subject_id,
        )
        _audit(s, principal, "credit.rule_set_added", "rule_set", row.id, version=row.version)
        return rule_set_read(row)

    return database.run(work)


@router.get("/credit/rule-sets", response_model=list[RuleSetRead])
def list_rule_sets(principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: [
            rule_set_read(r)
            for r in service.list_rule_sets(s, institution_id=principal.institution_id)
        ]
    )


@router.get("/credit/rule-sets/{rule_set_id}", response_model=RuleSetRead)
def get_rule_set(rule_set_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: rule_set_read(
            service.get_rule_set(
                s, institution_id=principal.institution_id, rule_set_id=rule_set_id
            )
        )
    )


@router.post("/credit/rule-sets/{rule_set_id}/activation", response_model=RuleSetRead)
def activate_rule_set(
    rule_set_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Make this version the active one of its name (the active one before is retired)."""

    def work(s: Session) -> RuleSetRead:
        row = service.activate_rule_set(
            s, institution_id=principal.institution_id, rule_set_id=rule_set_id
        )
        _audit(s, principal, "credit.rule_set_activated", "rule_set", row.id, version=row.version)
        return rule_set_read(row)

    return database.run(work)


@router.get("/credit/decisions/{decision_id}", response_model=DecisionRead)
def get_decision(decision_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: decision_read(
            service.get_decision(
                s, institution_id=principal.institution_id, decision_id=decision_id
            )
        )
    )


@router.post("/credit/decisions/{decision_id}/replay", response_model=ReplayRead)
def replay_decision(decision_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Decide again from what was stored, with the scorecard and rule set versions it names."""

    def work(s: Session) -> ReplayRead:
        replay = service.replay_decision(
            s, institution_id=principal.institution_id, decision_id=decision_id
        )
        _audit(
            s,
            principal,
            "credit.decision_replayed",
            "credit_decision",
            decision_id,
            same=replay.same,
        )
        replayed = replay.replayed
        return ReplayRead(
            decision_id=decision_id,
            same=replay.same,
            differences=replay.differences,
            replayed={
                "score": replayed.score,
                "reasons": [list(r) for r in replayed.reasons],
                "fired": [list(r) for r in replayed.fired],
                "outcome": replayed.outcome,
                "grade": replayed.grade,
                "limit_fen": replayed.limit_fen,
                "annual_rate": replayed.annual_rate,
            },
        )

    return database.run(work)
