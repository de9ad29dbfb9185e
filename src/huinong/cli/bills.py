"""``huinong bills``: billers, bill files, confirmations, settlement files and reconciliation.

A biller is named by its code within an institution (``--institution``). Every command is
one use case, as the API runs it; ``confirm-pending`` is the retry loop for HTTP billers that
did not confirm a payment when it was made (run it from cron, and it runs before the daily
settlement). See the modules of ``huinong.payments.bills`` for the rules.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
)
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.payments.bills import billers, confirmations, files, intake
from huinong.payments.bills import settlement as bill_settlement
from huinong.payments.bills.common import FileRejected
from huinong.payments.bills.models import BillerKind, BillerProtocol

app = typer.Typer(
    help="Bill payment: billers, bill files, confirmations, settlement, reconciliation.",
    no_args_is_help=True,
)

Institution = Annotated[str, typer.Option(help="institution code")]
BillerCode = Annotated[str, typer.Option("--biller", help="the biller's code")]


def _institution(factory: sessionmaker[Session], code: str) -> uuid.UUID:
    institution_id = institution_id_by_code(factory, code)
    assert institution_id is not None
    return institution_id


def _biller_id(factory: sessionmaker[Session], institution_id: uuid.UUID, code: str) -> uuid.UUID:
    try:
        return run_in_transaction(
            factory,
            lambda s: billers.get_biller_by_code(s, institution_id=institution_id, code=code).id,
        )
    except HuinongError as exc:
        fail(f"{exc.message} (list them with `huinong bills billers`)")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _report_rejected(exc: FileRejected) -> None:
    table = Table("row", "column", "problem", title="the file was rejected; nothing was written")
    for e in exc.errors[:200]:
        table.add_row(str(e.row), e.column or "", e.message)
    err.print(table)
    if len(exc.errors) > 200:
        err.print(f"… and {len(exc.errors) - 200} more")


@app.command("create-biller")
def create_biller(
    institution: Institution,
    code: Annotated[str, typer.Option(help="the biller's code, e.g. STATE-GRID")],
    name: Annotated[str, typer.Option(help="the biller's name")],
    kind: Annotated[BillerKind, typer.Option()],
    protocol: Annotated[BillerProtocol, typer.Option()] = BillerProtocol.file,
    base_url: Annotated[str | None, typer.Option(help="HTTP billers: the protocol's URL")] = None,
    biller_public_key: Annotated[
        str | None, typer.Option(help="HTTP billers: the biller's SM2 public key (hex)")
    ] = None,
) -> None:
    """Create a biller and its settlement account; prints our public key for HTTP billers."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    try:
        made = run_in_transaction(
            factory,
            lambda s: (lambda b: (str(b.id), b.our_public_key))(
                billers.create_biller(
                    s,
                    institution_id=institution_id,
                    code=code,
                    name=name,
                    kind=kind.value,
                    protocol=protocol.value,
                    base_url=base_url,
                    biller_public_key=biller_public_key,
                )
            ),
        )
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"biller {code} created: {made[0]}")
    if made[1]:
        console.print(f"our public key for this biller (give it to the biller): {made[1]}")


@app.command("billers")
def list_billers(institution: Institution) -> None:
    """List the institution's billers."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    rows = run_in_transaction(
        factory,
        lambda s: [
            (b.code, b.name, b.kind, b.protocol, "yes" if b.active else "no")
            for b in billers.list_billers(s, institution_id=institution_id)
        ],
    )
    table = Table("code", "name", "kind", "protocol", "active")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command("import")
def import_bills(
    institution: Institution,
    biller: BillerCode,
    file: Annotated[Path, typer.Argument(help="the biller's bill file (CSV, UTF-8 or GBK)")],
    encoding: Annotated[
        str | None, typer.Option(help="utf-8 or gbk; detected when not given")
    ] = None,
) -> None:
    """Import a bill file: every row or none (a bad file is reported by row and column)."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    biller_id = _biller_id(factory, institution_id, biller)
    data = _read(file)
    with progress_bar() as progress:
        task = progress.add_task(f"importing {file.name}", total=1)
        try:
            result = run_in_transaction(
                factory,
                lambda s: (
                    lambda r: (
                        r.replayed,
                        r.bill_file.row_count,
                        r.bill_file.new_bills,
                        r.bill_file.total_amount,
                        r.bill_file.encoding,
                    )
                )(
                    intake.import_bill_file(
                        s,
                        institution_id=institution_id,
                        biller_id=biller_id,
                        data=data,
                        filename=file.name,
                        encoding=encoding,
                    )
                ),
            )
        except FileRejected as exc:
            progress.stop()
            _report_rejected(exc)
            raise typer.Exit(1) from None
        except HuinongError as exc:
            progress.stop()
            fail(exc.message)
        progress.advance(task)
    replayed, rows, new, total, used = result
    if replayed:
        console.print(f"{file.name} was imported before: nothing new ({rows} rows)")
    else:
        console.print(
            f"imported {file.name} ({used}): {rows} rows, {new} new bills, "
            f"total {files.format_yuan(total)} yuan"
        )


@app.command("confirm-pending")
def confirm_pending(
    institution: Annotated[
        str | None, typer.Option(help="institution code (all institutions when omitted)")
    ] = None,
) -> None:
    """Retry the biller confirmations still pending."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    pending = run_in_transaction(
        factory,
        lambda s: len(confirmations.pending_confirmations(s, institution_id=institution_id)),
    )
    with progress_bar() as progress:
        task = progress.add_task("confirming", total=pending)
        summary = confirmations.confirm_pending(
            factory, institution_id=institution_id, on_each=lambda: progress.advance(task)
        )
    for line in summary.errors[:50]:
        err.print(line)
    console.print(f"confirmed {summary.confirmed}, still pending {summary.still_pending}")
    if summary.still_pending:
        raise typer.Exit(2)


def _day(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        fail(f"{text!r} is not a date like 2026-11-22")


@app.command("settlement")
def settlement(
    institution: Institution,
    biller: BillerCode,
    day: Annotated[str, typer.Option("--date", help="business date, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
) -> None:
    """Write the day's settlement file for a biller (retrying its pending confirmations
    first, so the biller learns of every payment before it reads the file)."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    biller_id = _biller_id(factory, institution_id, biller)
    business_date = _day(day)
    retried = confirmations.confirm_pending(
        factory, institution_id=institution_id, biller_id=biller_id
    )
    if retried.confirmed or retried.still_pending:
        err.print(
            f"confirmations: {retried.confirmed} confirmed now, {retried.still_pending} "
            "still pending (they are in the file; `huinong bills confirm-pending` retries)"
        )
    data, totals = run_in_transaction(
        factory,
        lambda s: bill_settlement.settlement_file(
            s, institution_id=institution_id, biller_id=biller_id, business_date=business_date
        ),
    )
    output.write_bytes(data)
    console.print(
        f"wrote {output}: {totals.count} payments, {files.format_yuan(totals.amount)} yuan"
    )


@app.command("reconcile")
def reconcile(
    institution: Institution,
    biller: BillerCode,
    file: Annotated[Path, typer.Argument(help="the biller's return file (CSV)")],
    day: Annotated[
        str | None, typer.Option("--date", help="business date (from the file when omitted)")
    ] = None,
    settle: Annotated[bool, typer.Option(help="settle the matched payments")] = True,
) -> None:
    """Reconcile a return file: list every mismatch; settle the matched payments."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    biller_id = _biller_id(factory, institution_id, biller)
    data = _read(file)
    business_date = _day(day) if day else None

    def unit(session: Session) -> tuple[dict[str, object], list[tuple[str, ...]]]:
        found = bill_settlement.reconcile(
            session,
            institution_id=institution_id,
            biller_id=biller_id,
            data=data,
            business_date=business_date,
            settle=settle,
        )
        items = [
            (
                i.kind,
                i.payment_reference,
                i.reference or "",
                files.format_yuan(i.our_amount) if i.our_amount is not None else "",
                files.format_yuan(i.their_amount) if i.their_amount is not None else "",
                str(i.their_row or ""),
            )
            for i in bill_settlement.reconciliation_items(session, reconciliation=found)
        ]
        summary = {
            "date": found.business_date.isoformat(),
            "matched": found.matched_count,
            "matched_amount": found.matched_amount,
            "mismatches": found.mismatch_count,
            "settled": found.settled_amount,
        }
        return summary, items

    try:
        summary, items = run_in_transaction(factory, unit)
    except FileRejected as exc:
        _report_rejected(exc)
        raise typer.Exit(1) from None
    except HuinongError as exc:
        fail(exc.message)
    if items:
        table = Table("mismatch", "payment", "reference", "ours", "theirs", "their row")
        for item in items:
            table.add_row(*item)
        console.print(table)
    console.print(
        f"{summary['date']}: {summary['matched']} matched "
        f"({files.format_yuan(int(summary['matched_amount']))} yuan), "  # type: ignore[call-overload]
        f"{summary['mismatches']} mismatches, settled "
        f"{files.format_yuan(int(summary['settled']))} yuan"  # type: ignore[call-overload]
    )
    if items:
        raise typer.Exit(2)
