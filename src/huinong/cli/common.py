"""What every ``huinong`` sub-command shares: consoles, the session factory, failing with a
message that says what to do, and the progress bar for long jobs."""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong.config import get_settings
from huinong.db import make_engine, make_session_factory, run_in_transaction
from huinong.errors import HuinongError
from huinong.institutions import service as institutions
from huinong.security.identities import sessions
from huinong.security.identities.models import StaffUser
from huinong.security.principals import Principal, Role

# soft_wrap: a message is one line however long its paths, so that a script reading the
# output (or a narrow pipe's default 80 columns) never finds it broken; tables still fit.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("huinong")


def session_factory() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def institution_id_by_code(factory: sessionmaker[Session], code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    try:
        return run_in_transaction(
            factory, lambda s: institutions.get_institution_by_code(s, code=code).id
        )
    except HuinongError as exc:
        fail(f"{exc.message} (list them with `huinong institution list`)")


def staff_principal(
    session: Session, institution_code: str, username: str, roles: frozenset[Role], doing: str
) -> Principal:
    """The named staff user as the principal a command acts for; they must hold one of
    ``roles`` (what ``doing`` needs)."""
    institution = institutions.get_institution_by_code(session, code=institution_code)
    user = session.scalar(
        select(StaffUser).where(
            StaffUser.institution_id == institution.id, StaffUser.username == username
        )
    )
    if user is None:
        fail(f"no staff user {username!r} in {institution_code}")
    principal = sessions.staff_principal(user, institution)
    if not principal.has_any(roles):
        wanted = " or ".join(sorted(str(r) for r in roles))
        fail(f"{username} is not {wanted}: only they {doing}")
    return principal


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
