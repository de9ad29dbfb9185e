"""``huinong consent purge``: remove the data collected for a purpose once its consent ended.

For every customer with a consent that expired or was revoked and that the purge has not
dealt with, every registered purpose data holder deletes or anonymises what it keeps for each
(category, purpose) that no other live consent still covers (``huinong.security.consent``).
Customers are handled in batches of ``--batch-size``, one transaction per batch, with a
progress bar; every customer purged leaves a ``consent.purged`` audit record. ``--dry-run``
does the same work and rolls each batch back, so its report shows exactly what a real run
would remove. Running it twice removes nothing the second time.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from huinong import clock
from huinong.cli.common import (
    console,
    err,
    fail,
    institution_id_by_code,
    progress_bar,
    session_factory,
)
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.security.consent import service as consent

app = typer.Typer(help="Customers' consents to the use of their data.", no_args_is_help=True)


@app.callback()
def consent_commands() -> None:
    """Customers' consents to the use of their data."""
    # A callback keeps ``purge`` a sub-command: a Typer app of one command collapses into it.


class _RolledBack(Exception):
    """Carries a dry run's result out of the transaction it rolls back."""

    def __init__(self, result: object) -> None:
        super().__init__("dry run")
        self.result = result


@app.command("purge")
def purge(
    institution: Annotated[str | None, typer.Option(help="institution code (default: all)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be removed; change nothing")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="customers per transaction")
    ] = 200,
) -> None:
    """Delete or anonymise data collected for purposes whose consents have all ended."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    at = clock.now()  # one instant for the whole run: every batch judges consents alike
    actions: list[consent.PurgeAction] = []
    customers = 0
    after: uuid.UUID | None = None

    def batch(session: Session) -> tuple[list[uuid.UUID], list[consent.PurgeAction]]:
        due = consent.customers_due_for_purge(
            session, at=at, institution_id=institution_id, after=after, limit=batch_size
        )
        done = [a for c in due for a in consent.purge_customer(session, customer_id=c, at=at)]
        if dry_run:
            raise _RolledBack((due, done))
        return due, done

    try:
        with factory() as session:
            total = consent.count_due_for_purge(session, at=at, institution_id=institution_id)
        with progress_bar() as progress:
            task = progress.add_task("dry run" if dry_run else "purging", total=total)
            while True:
                try:
                    due, done = run_in_transaction(factory, batch)
                except _RolledBack as rolled_back:
                    due, done = rolled_back.result  # type: ignore[misc]
                if not due:
                    break
                after = due[-1]
                customers += len(due)
                actions.extend(done)
                progress.advance(task, len(due))
    except HuinongError as exc:
        fail(exc.message)

    prefix = "[yellow]dry run[/] — nothing was changed; " if dry_run else ""
    if not actions:
        console.print(f"{prefix}consent purge: nothing to purge")
        return
    table = Table(title="consent purge (would remove)" if dry_run else "consent purge")
    for column in ("customer", "category", "purpose", "outcome", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for action in actions:
        if action.kept:
            outcome, rows = "kept: another consent is live", ""
        else:
            outcome = "purged"
            rows = ", ".join(f"{name} {count}" for name, count in action.removed.items())
        table.add_row(str(action.customer_id), action.category, action.purpose, outcome, rows)
    console.print(table)
    purged = [a for a in actions if not a.kept]
    removed = sum(sum(a.removed.values()) for a in purged)
    console.print(
        f"{prefix}consent purge: {customers} customer(s), {len(purged)} purpose(s) purged, "
        f"{removed} row(s) removed, {len(actions) - len(purged)} kept"
    )
    if dry_run:
        err.print("run again without --dry-run to purge")
