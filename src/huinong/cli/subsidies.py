"""``huinong subsidies``: import a subsidy batch file, disburse an approved batch, show a batch
and write its error report.

Submission and approval (maker-checker) are done by two different staff users over the API;
the command line imports on behalf of a named maker and disburses what a checker approved.
``disburse`` pays chunk by chunk (one transaction each) with a progress bar; interrupt it at
any point and run it again: it resumes where it stopped and never pays a row twice.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from huinong.cli.common import (
    console,
    err,
    fail,
    institution_id_by_code,
    progress_bar,
    session_factory,
    staff_principal,
)
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.money import Money
from huinong.payments.subsidies import disbursement, importing, reporting
from huinong.security.principals import Principal, Role

app = typer.Typer(help="Subsidy disbursement (惠农补贴 一卡通).", no_args_is_help=True)

MAKER_ROLES = frozenset({Role.teller, Role.account_manager})


def _yuan(fen: int) -> str:
    return str(Money(fen))


def _institution(factory: sessionmaker[Session], code: str) -> uuid.UUID:
    found = institution_id_by_code(factory, code)
    assert found is not None
    return found


def _maker(session: Session, institution_code: str, username: str) -> Principal:
    return staff_principal(session, institution_code, username, MAKER_ROLES, "make subsidy batches")


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX")],
    institution: Annotated[str, typer.Option(help="institution code")],
    payer: Annotated[str, typer.Option(help="the government payer's deposit account number")],
    maker: Annotated[str, typer.Option(help="username of the maker (teller/account manager)")],
    encoding: Annotated[str | None, typer.Option(help="utf-8 or gbk (default: detect)")] = None,
) -> None:
    """Import and validate a batch file; prints the batch id and the findings."""
    factory = session_factory()
    content = file.read_bytes()
    with progress_bar() as progress:
        task = progress.add_task("validating and storing rows", total=None)

        def unit(session: Session) -> tuple[uuid.UUID, int, int, int]:
            principal = _maker(session, institution, maker)
            batch = importing.import_batch(
                session,
                institution_id=principal.institution_id,
                maker_id=principal.subject_id,
                payer_account_number=payer,
                file_name=file.name,
                content=content,
                encoding=encoding,
                actor=principal,
                progress=lambda n, total: progress.update(task, total=total, advance=n),
            )
            return batch.id, batch.row_count, batch.valid_count, batch.valid_amount

        try:
            batch_id, rows, valid, amount = run_in_transaction(factory, unit)
        except HuinongError as exc:
            fail(f"{exc.message} [{exc.code}]")
    console.print(f"batch [bold]{batch_id}[/]: {rows} rows, {valid} valid ({_yuan(amount)})")
    if valid < rows:
        err.print(
            f"{rows - valid} rows have findings: `huinong subsidies errors {batch_id} "
            f"--institution {institution}` writes the report"
        )


@app.command("disburse")
def disburse(
    batch: Annotated[uuid.UUID, typer.Argument(help="batch id")],
    institution: Annotated[str, typer.Option(help="institution code")],
    chunk_size: Annotated[
        int, typer.Option(min=1, max=disbursement.MAX_CHUNK, help="rows per transaction")
    ] = disbursement.DEFAULT_CHUNK,
) -> None:
    """Pay an approved batch (resumable: run it again after an interruption)."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    try:
        pending = run_in_transaction(
            factory,
            lambda s: disbursement.pending_rows(s, institution_id=institution_id, batch_id=batch),
        )
        with progress_bar() as progress:
            task = progress.add_task("disbursing", total=pending)
            run = disbursement.run_disbursement(
                factory,
                institution_id=institution_id,
                batch_id=batch,
                chunk_size=chunk_size,
                on_chunk=lambda chunk: progress.advance(task, chunk.rows),
            )
    except HuinongError as exc:
        fail(f"{exc.message} [{exc.code}]")
    console.print(
        f"{run.rows} rows in {run.chunks} chunks: {run.paid} paid, {run.suspense} to suspense, "
        f"{run.failed} failed; payer debited {_yuan(run.amount)}"
    )
    _show(factory, institution_id, batch)


def _show(factory: sessionmaker[Session], institution_id: uuid.UUID, batch_id: uuid.UUID) -> None:
    summary = run_in_transaction(
        factory,
        lambda s: reporting.summary(s, institution_id=institution_id, batch_id=batch_id),
    )
    table = Table(title=f"subsidy batch {batch_id} ({summary.batch.status})")
    table.add_column("status")
    table.add_column("rows", justify="right")
    table.add_column("amount", justify="right")
    for status, total in summary.by_status.items():
        table.add_row(status, str(total.rows), _yuan(total.amount))
    console.print(table)
    verdict = "[green]reconciled[/]" if summary.reconciled else "[bold red]NOT reconciled[/]"
    paid = summary.by_status["paid"].amount + summary.by_status["suspense"].amount
    console.print(
        f"payer debit {_yuan(summary.payer_debit)} vs paid + suspense {_yuan(paid)}: {verdict}"
    )
    if not summary.reconciled:
        raise typer.Exit(1)


@app.command("show")
def show(
    batch: Annotated[uuid.UUID, typer.Argument(help="batch id")],
    institution: Annotated[str, typer.Option(help="institution code")],
) -> None:
    """Counts and sums per row status, and the reconciliation with the payer's debit."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    try:
        _show(factory, institution_id, batch)
    except HuinongError as exc:
        fail(f"{exc.message} [{exc.code}]")


@app.command("errors")
def errors(
    batch: Annotated[uuid.UUID, typer.Argument(help="batch id")],
    institution: Annotated[str, typer.Option(help="institution code")],
    output: Annotated[Path | None, typer.Option("-o", help="file (default: stdout)")] = None,
) -> None:
    """The error report as CSV: row, column, code, message."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    try:
        report = run_in_transaction(
            factory,
            lambda s: reporting.error_report(s, institution_id=institution_id, batch_id=batch),
        )
    except HuinongError as exc:
        fail(f"{exc.message} [{exc.code}]")
    if output is None:
        typer.echo(report.lstrip("\ufeff"), nl=False)
    else:
        output.write_text(report, encoding="utf-8")
        err.print(f"wrote {output}")
