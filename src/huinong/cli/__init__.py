"""The ``huinong`` command: serve the API, migrate, load the demo, look after the ledger.

Every command that changes data runs one transaction per use case; long jobs show a Rich
progress bar; errors print what to do and exit non-zero.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from huinong import logs
from huinong.cli import (
    agents,
    audit,
    bills,
    consent,
    credit,
    geo,
    households,
    keys,
    staff,
    subsidies,
    terminals,
)
from huinong.cli.common import (
    console,
    err,
    fail,
    institution_id_by_code,
    log,
    progress_bar,
    session_factory,
)
from huinong.config import get_settings
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.institutions import service as institutions
from huinong.institutions.models import OfficeKind

app = typer.Typer(
    help="Huinong 惠农: the digital service hall of a rural bank.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demonstration data.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
institution_app = typer.Typer(help="Institutions (法人机构).", no_args_is_help=True)
office_app = typer.Typer(help="Offices of an institution.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(ledger_app, name="ledger")
app.add_typer(institution_app, name="institution")
app.add_typer(office_app, name="office")
app.add_typer(staff.app, name="staff")
app.add_typer(keys.app, name="keys")
app.add_typer(terminals.app, name="terminal")
app.add_typer(audit.app, name="audit")
app.add_typer(consent.app, name="consent")
app.add_typer(geo.app, name="geo")
app.add_typer(agents.app, name="agents")
app.add_typer(households.app, name="households")
app.add_typer(bills.app, name="bills")
app.add_typer(subsidies.app, name="subsidies")
app.add_typer(credit.app, name="credit")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port")] = 0,
    reload: Annotated[bool, typer.Option(help="restart on code changes")] = False,
) -> None:
    """Serve the API (OpenAPI docs at /docs) on HUINONG_HOST (127.0.0.1 by default)."""
    import uvicorn

    from huinong.security import keyring

    settings = get_settings()
    logs.configure(json_lines=settings.environment == "production", level=settings.log_level)
    try:
        keyring.master_key()  # fail now, not at the first request that needs a key
    except HuinongError as exc:
        fail(exc.message)
    log.info("serving on http://%s:%d; docs at /docs", settings.host, port or settings.port)
    uvicorn.run(
        "huinong.api.asgi:app",
        host=settings.host,
        port=port or settings.port,
        reload=reload,
        log_config=None,
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations to HUINONG_DATABASE_URL."""
    from huinong.migrations import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    console.print(f"database at [bold]{_safe_url(url)}[/] is at revision {revision}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@demo_app.command("load")
def demo_load(
    if_empty: Annotated[bool, typer.Option(help="do nothing when any institution exists")] = False,
    customers: Annotated[int, typer.Option(min=1, max=100_000)] = 300,
    seed: Annotated[int, typer.Option()] = 2026,
) -> None:
    """Load a demo county rural commercial bank: offices, customers, accounts, history."""
    from huinong import demo

    factory = session_factory()
    if if_empty and not demo.is_empty(factory):
        console.print("the database holds data already; demo not loaded")
        return
    with progress_bar() as progress:
        code = demo.load(factory, customers=customers, seed=seed, progress=progress)
    users = ", ".join(username for username, *_ in demo.DEMO_STAFF)
    console.print(
        f"demo institution [bold]{code}[/] loaded; staff users {users}, "
        f"password [bold]{demo.DEMO_PASSWORD}[/] (demo only). Sign in with\n"
        f"  curl -X POST http://127.0.0.1:8000/api/v1/auth/sign-in "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"institution": "{code}", "username": "teller", '
        f'"password": "{demo.DEMO_PASSWORD}"}}\''
    )


@ledger_app.command("verify")
def ledger_verify(
    institution: Annotated[str | None, typer.Option(help="institution code (default: all)")] = None,
) -> None:
    """Check every ledger invariant; exit 1 naming the offending ids."""
    from huinong.ledger.verify import verify

    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    problems = run_in_transaction(factory, lambda s: verify(s, institution_id=institution_id))
    if not problems:
        console.print("[green]ledger verify: clean[/]")
        return
    for problem in problems:
        err.print(f"[red]{problem}[/]")
    fail(f"{len(problems)} problem(s) found")


@ledger_app.command("export")
def ledger_export(
    format: Annotated[str, typer.Option("--format", help="only 'beancount' for now")] = "beancount",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default stdout)")
    ] = None,
    institution: Annotated[str | None, typer.Option(help="institution code (default: all)")] = None,
) -> None:
    """Export the ledger as a beancount journal with balance assertions."""
    from huinong.ledger.export import write_beancount

    if format != "beancount":
        fail(f"unknown format {format!r}; use --format beancount")
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    with factory() as session:
        if output is None:
            write_beancount(session, out=sys.stdout, institution_id=institution_id)
            return
        with output.open("w", encoding="utf-8") as handle, err.status(f"exporting to {output}…"):
            count = write_beancount(session, out=handle, institution_id=institution_id)
    err.print(f"wrote {count} transactions to {output}")


@ledger_app.command("sweep")
def ledger_sweep() -> None:
    """Void pending transfers whose timeout has passed."""
    from huinong.ledger import service as ledger

    factory = session_factory()
    total = 0
    with err.status("voiding expired pending transfers…") as status:
        while True:
            voided = run_in_transaction(factory, lambda s: ledger.sweep_expired_pending(s))
            total += voided
            status.update(f"voided {total} so far…")
            if voided == 0:
                break
    console.print(f"voided {total} expired pending transfer(s)")


@institution_app.command("create")
def institution_create(
    code: str,
    name: str,
    currency: Annotated[str, typer.Option()] = "CNY",
    business_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    admin: Annotated[str, typer.Option(help="username of its first administrator")] = "admin",
) -> None:
    """Create an institution with its chart of accounts and its first administrator, whose
    one-time password is printed once and must be changed at the first sign-in."""
    from huinong.ledger import service as ledger
    from huinong.security.identities import staff_users

    password = staff_users.generate_password()

    def unit(session: Session) -> str:
        institution = institutions.create_institution(
            session,
            code=code,
            name=name,
            currency=currency,
            business_date=date.fromisoformat(business_date) if business_date else None,
        )
        ledger.create_chart_of_accounts(
            session, institution_id=institution.id, ledger=institution.currency
        )
        staff_users.create_staff_user(
            session,
            institution_id=institution.id,
            username=admin,
            display_name=f"{name} administrator",
            roles=["admin"],
            password=password,
        )
        return str(institution.id)

    try:
        new_id = run_in_transaction(session_factory(), unit)
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"institution {code} created ({new_id})")
    console.print(
        f"administrator [bold]{admin}[/], one-time password [bold]{password}[/] "
        "(shown once; it must be changed at the first sign-in)"
    )


@institution_app.command("list")
def institution_list() -> None:
    """List institutions."""
    rows = run_in_transaction(
        session_factory(),
        lambda s: [
            (i.code, i.name, i.currency, i.business_date.isoformat())
            for i in institutions.list_institutions(s)
        ],
    )
    table = Table("code", "name", "currency", "business date")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@office_app.command("create")
def office_create(
    institution: Annotated[str, typer.Option(help="institution code")],
    code: str,
    name: str,
    kind: Annotated[OfficeKind, typer.Option()],
    parent: Annotated[str | None, typer.Option(help="parent office code")] = None,
) -> None:
    """Create an office (head, branch or outlet)."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    assert institution_id is not None
    try:
        run_in_transaction(
            factory,
            lambda s: institutions.create_office(
                s,
                institution_id=institution_id,
                code=code,
                name=name,
                kind=kind,
                parent_code=parent,
            ),
        )
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"office {code} created")


@office_app.command("list")
def office_list(institution: Annotated[str, typer.Option(help="institution code")]) -> None:
    """List the offices of an institution."""
    factory = session_factory()
    institution_id = institution_id_by_code(factory, institution)
    assert institution_id is not None
    rows = run_in_transaction(
        factory,
        lambda s: [
            (o.code, o.name, str(o.kind), str(o.parent_id or ""))
            for o in institutions.list_offices(s, institution_id=institution_id)
        ],
    )
    table = Table("code", "name", "kind", "parent")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main() -> None:
    logs.configure(
        json_lines=get_settings().environment == "production", level=get_settings().log_level
    )
    app()
