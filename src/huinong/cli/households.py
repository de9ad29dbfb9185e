"""``huinong households``: households of a village and how recently each was surveyed.

``huinong households list --institution CODE [--village 12-DIGIT-CODE]`` prints, per
household, its number, village, member and labour counts, the number of archive versions and
the latest survey date — the account manager's checklist before a village credit campaign
(整村授信): who has never been surveyed, whose survey is old. It prints no names or ID
numbers, and no archive content (that is read through the API, under consent).

Importing this module also imports the households service, which registers the archive's
purpose data holder with ``huinong consent purge``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from huinong.cli.common import console, fail, institution_id_by_code, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.parties.households import service as households

app = typer.Typer(help="Households and their archives (农户经济档案).", no_args_is_help=True)


@app.callback()
def households_commands() -> None:
    """Households and their archives (农户经济档案)."""


@app.command("list")
def list_households(
    institution: Annotated[str, typer.Option(help="institution code")],
    village: Annotated[
        str | None, typer.Option(help="12-digit statistical code of the village")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="households at most")] = 500,
) -> None:
    """Households with their member and labour counts and their latest survey."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    assert institution_id is not None

    def rows(session: Session) -> list[tuple[str, str, int, int, int, str]]:
        found = households.list_households(
            session, institution_id=institution_id, village_code=village, limit=limit
        )
        table_rows = []
        for household in found:
            members = households.members(session, household=household)
            versions = households.list_archive_versions(
                session, institution_id=institution_id, household_id=household.id
            )
            table_rows.append(
                (
                    household.household_number,
                    household.village_code or "",
                    len(members),
                    sum(1 for m in members if m.is_labour),
                    len(versions),
                    versions[0].surveyed_on.isoformat() if versions else "never",
                )
            )
        return table_rows

    try:
        found = run_in_transaction(factory, rows)
    except HuinongError as exc:
        fail(exc.message)
    if not found:
        console.print("no households")
        return
    table = Table(
        title=f"households of {institution}" + (f", village {village}" if village else "")
    )
    for column in ("household", "village", "members", "labour", "surveys", "last surveyed"):
        table.add_column(
            column, justify="right" if column in ("members", "labour", "surveys") else "left"
        )
    for row in found:
        table.add_row(*(str(value) for value in row))
    console.print(table)
    never = sum(1 for row in found if row[4] == 0)
    console.print(f"{len(found)} household(s), {never} never surveyed")
