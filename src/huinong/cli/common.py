"""What every ``huinong`` sub-command shares: consoles, the session factory, failing with a
message that says what to do, and the progress bar for long jobs."""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from huinong.config import get_settings
from huinong.db import make_engine, make_session_factory, run_in_transaction
from huinong.errors import HuinongError
from huinong.institutions import service as institutions

console = Console()
err = Console(stderr=True)
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


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
