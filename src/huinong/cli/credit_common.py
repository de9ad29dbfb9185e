"""Helpers shared by the ``huinong credit`` commands (scorecards, rule sets, campaigns)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from huinong.cli.common import fail, institution_id_by_code
from huinong.credit.models import RuleSetVersion, Scorecard
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.security.audit import service as audit

T = TypeVar("T")


def institution_id_of(factory: sessionmaker[Session], code: str) -> uuid.UUID:
    found = institution_id_by_code(factory, code)
    assert found is not None
    return found


def run(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """``work`` as the command's transaction; a domain error ends the command with its message."""
    try:
        return run_in_transaction(factory, work)
    except HuinongError as exc:
        fail(f"{exc.message} [{exc.code}]")


def audit_registry(session: Session, action: str, row: Scorecard | RuleSetVersion) -> None:
    """An audit record of a registry change: which row, its version and its new role/status."""
    scorecard = isinstance(row, Scorecard)
    audit.record(
        session,
        action=action,
        institution_id=row.institution_id,
        object_type="scorecard" if scorecard else "rule_set",
        object_id=str(row.id),
        detail={"version": row.version, "state": row.role if scorecard else row.status},
    )
