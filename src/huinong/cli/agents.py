"""``huinong agents``: the batch side of village service points — monthly commission
(业务量计酬) and the end-of-day report that reconciles a point's journal against the ledger."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from huinong.cli.common import console, fail, institution_id_by_code, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.institutions import service as institutions
from huinong.payments.service_points import reports
from huinong.payments.service_points.models import ServicePoint

app = typer.Typer(help="Village service points and their agents.", no_args_is_help=True)

Institution = Annotated[str, typer.Option(help="institution code")]


@app.command("pay-commissions")
def pay_commissions(
    institution: Institution,
    month: Annotated[str, typer.Option(help="YYYY-MM")],
) -> None:
    """Pay every service point its commission for a month; safe to run again."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    try:
        lines = run_in_transaction(
            factory,
            lambda s: reports.pay_commissions(s, institution_id=institution_id, month=month),
        )
    except HuinongError as exc:
        fail(exc.message)
    table = Table("service point", "operations", "commission (fen)", "status")
    for line in lines:
        status = "paid before" if line.already_paid else "paid now"
        table.add_row(line.service_point_code, str(line.operations), str(line.amount), status)
    console.print(table)
    new = [line for line in lines if not line.already_paid]
    console.print(f"{len(new)} payouts, {sum(line.amount for line in new)} fen")


@app.command("day-report")
def day_report(
    institution: Institution,
    service_point: Annotated[str, typer.Option(help="service point code")],
    business_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today's)")] = None,
) -> None:
    """A service point's operations for a business date, reconciled against the ledger; exits
    1 when a difference needs explaining."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)

    def unit(session):  # type: ignore[no-untyped-def]
        point = session.scalar(
            select(ServicePoint).where(
                ServicePoint.institution_id == institution_id, ServicePoint.code == service_point
            )
        )
        if point is None:
            raise HuinongError(
                "agents.service_point_not_found", f"no service point {service_point}"
            )
        day = (
            date.fromisoformat(business_date)
            if business_date
            else institutions.get_institution(session, institution_id=institution_id).business_date
        )
        return reports.end_of_day(
            session, institution_id=institution_id, service_point_id=point.id, day=day
        )

    try:
        report = run_in_transaction(factory, unit)
    except (HuinongError, ValueError) as exc:
        fail(getattr(exc, "message", str(exc)))
    table = Table("operation", "count", "amount (fen)", "commission (fen)")
    for totals in report.totals:
        table.add_row(totals.kind, str(totals.count), str(totals.amount), str(totals.commission))
    console.print(f"{report.service_point_code} on {report.business_date}")
    console.print(table)
    for difference in report.differences:
        console.print(
            f"[bold red]difference[/] operation {difference.operation_id} "
            f"payment {difference.payment_id}: {difference.problem}"
        )
    if report.differences:
        raise typer.Exit(1)
    console.print("journal and ledger agree")
