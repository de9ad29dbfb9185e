"""``huinong staff``: what the platform operator does for an institution's staff users from the
server — chiefly giving a locked-out administrator a new one-time password."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.cli.common import console, fail, institution_id_by_code, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.security.identities import rules
from huinong.security.identities.models import StaffUser

app = typer.Typer(help="Staff users of an institution.", no_args_is_help=True)

Institution = Annotated[str, typer.Option(help="institution code")]


@app.command("list")
def staff_list(institution: Institution) -> None:
    """List the staff users of an institution with their roles."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)

    def unit(session: Session) -> list[tuple[str, ...]]:
        users = session.scalars(
            select(StaffUser)
            .where(StaffUser.institution_id == institution_id)
            .order_by(StaffUser.username)
        ).all()
        now = clock.now()
        return [
            (
                u.username,
                u.display_name,
                ", ".join(r.role for r in u.roles),
                u.status + (" (locked)" if rules.is_locked(u.locked_until, now) else ""),
            )
            for u in users
        ]

    table = Table("username", "name", "roles", "status")
    for row in run_in_transaction(factory, unit):
        table.add_row(*row)
    console.print(table)


@app.command("reset-password")
def reset_password(username: str, institution: Institution) -> None:
    """Give a staff user a new one-time password (printed once), unlock it, and require a
    new password at the next sign-in."""
    from huinong.security.identities import staff_users

    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    try:
        password = run_in_transaction(
            factory,
            lambda s: staff_users.reset_password(
                s, institution_id=institution_id, username=username
            ),
        )
    except HuinongError as exc:
        fail(f"{exc.message} (see `huinong staff list --institution {institution}`)")
    console.print(
        f"{username}: one-time password [bold]{password}[/] "
        "(shown once; it must be changed at the next sign-in)"
    )
