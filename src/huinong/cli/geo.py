"""``huinong geo``: administrative divisions — load the bundled provinces, cities and counties,
import a county's townships and villages, and look divisions up.

Divisions are national reference data shared by every institution (``parties.geography``),
so none of these commands takes an institution.

``import FILE`` reads CSV (code, name[, urban_rural_code]; UTF-8 or GBK, found by itself;
header optional; ``#`` lines are comments) and checks every row before writing any. A file
with bad rows is all or nothing by default: every problem is listed by line and column, and
nothing is written, so a half-imported county never leaves villages without their township.
``--skip-bad`` writes the good rows instead (a row whose township is on a bad row is bad
too) and still lists the rest; the exit status is then 0. Importing again is safe: stored
codes get the file's names and urban/rural codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from huinong.cli.common import console, err, fail, progress_bar, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.parties.geography import rules, service
from huinong.parties.geography.models import Division
from huinong.parties.geography.rules import DivisionLevel, ParsedFile

app = typer.Typer(
    help="Administrative divisions (provinces to villages), national reference data.",
    no_args_is_help=True,
)

_MAX_PROBLEMS_SHOWN = 200


@app.command("load-standard")
def load_standard() -> None:
    """Load the bundled provinces, cities and counties (NBS codes; see the data's SOURCE.md).

    Idempotent: a second run inserts nothing."""
    factory = session_factory()
    total = len(service.standard_rows())
    with progress_bar() as progress:
        task = progress.add_task("provinces, cities, counties", total=total)

        def unit(session: Session) -> service.WriteSummary:
            progress.reset(task)
            return service.load_standard(session, progress=lambda n: progress.advance(task, n))

        summary = run_in_transaction(factory, unit)
    console.print(
        f"standard divisions: {summary.inserted} added, {summary.updated} renamed, "
        f"{summary.unchanged} unchanged ({summary.total} in the bundle)"
    )


def _report(parsed: ParsedFile) -> None:
    """One line per problem, ``line N, column C: message (code)``: easy to read and to grep."""
    err.print(f"{len(parsed.problems)} problem(s):", highlight=False)
    for problem in parsed.problems[:_MAX_PROBLEMS_SHOWN]:
        err.print(
            f"  line {problem.line}, column {problem.column}: {problem.message} ({problem.code})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if len(parsed.problems) > _MAX_PROBLEMS_SHOWN:
        err.print(f"  … and {len(parsed.problems) - _MAX_PROBLEMS_SHOWN} more")


def _import(data: bytes, source: str, *, skip_bad: bool) -> None:
    factory = session_factory()
    try:
        parsed = run_in_transaction(factory, lambda s: service.parse_file(s, data))
    except HuinongError as exc:
        fail(f"{source}: {exc.message}")
    if parsed.problems:
        _report(parsed)
        if not skip_bad:
            fail(
                f"{source}: {len(parsed.bad_lines)} bad row(s); nothing was written "
                "(fix them, or write the good rows with --skip-bad)"
            )
    rows = parsed.rows
    with progress_bar() as progress:
        task = progress.add_task("townships and villages", total=len(rows))

        def unit(session: Session) -> service.WriteSummary:
            progress.reset(task)
            return service.import_divisions(
                session, rows=rows, progress=lambda n: progress.advance(task, n)
            )

        summary = run_in_transaction(factory, unit)
    townships = sum(1 for r in rows if r.level is DivisionLevel.township)
    console.print(
        f"{source} ({parsed.encoding}): {len(rows)} row(s) — {townships} township(s), "
        f"{len(rows) - townships} village(s); {summary.inserted} added, {summary.updated} "
        f"updated, {summary.unchanged} unchanged"
        + (f"; {len(parsed.bad_lines)} bad row(s) skipped" if parsed.problems else "")
    )


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="write the good rows of a file with bad rows")
    ] = False,
) -> None:
    """Import townships and villages from a 12-digit statistical division code file."""
    _import(file.read_bytes(), file.name, skip_bad=skip_bad)


@app.command("load-sample")
def load_sample() -> None:
    """Import the bundled SAMPLE county (370281 胶州市: four townships and their villages),
    for the demo. Load the standard divisions first."""
    _import(service.data_file(service.SAMPLE_FILE), service.SAMPLE_FILE, skip_bad=False)


@app.command("show")
def show(code: Annotated[str, typer.Argument(help="a division code, 12 digits or short")]) -> None:
    """A division and its children."""
    factory = session_factory()

    def unit(session: Session) -> tuple[Division, list[Division]]:
        division = service.get_division(session, code=code)
        return division, service.list_divisions(session, parent=division.code, limit=1000)

    try:
        division, children = run_in_transaction(factory, unit)
    except HuinongError as exc:
        fail(exc.message)
    console.print(
        f"{rules.short_code(division.code)} {division.name} ({division.level}), "
        f"parent {division.parent_code or '—'}"
    )
    table = Table(title=f"{len(children)} child division(s)")
    for column in ("code", "name", "level", "urban/rural"):
        table.add_column(column)
    for child in children:
        table.add_row(child.code, child.name, child.level, child.urban_rural_code or "")
    console.print(table)
