"""``huinong audit``: seal the audit trail into its hash chains, and verify them.

``huinong audit seal`` seals every record written since the last seal (the server does it on
its own every ``HUINONG_AUDIT_SEAL_INTERVAL_SECONDS``; this is for scripts and servers run
with the timer off). ``huinong audit verify`` seals first, so everything written so far is
covered, then checks every chain — or one institution's with ``--institution`` — record by
record, with a progress bar, and exits 1 naming every altered, removed or reordered record
and every bad, missing or mismatched anchor.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from huinong.cli.common import (
    console,
    err,
    fail,
    institution_id_by_code,
    progress_bar,
    session_factory,
)
from huinong.errors import HuinongError
from huinong.institutions import service as institutions
from huinong.security.audit import service as audit
from huinong.security.audit.chain import PLATFORM_CHAIN, chain_of

app = typer.Typer(
    help="The tamper-evident audit trail (SM3 hash chains, SM2 anchors).", no_args_is_help=True
)

InstitutionOption = Annotated[
    str | None, typer.Option(help="institution code (default: every chain)")
]


def _chain_names(factory) -> dict[uuid.UUID, str]:  # type: ignore[no-untyped-def]
    with factory() as session:
        names = {i.id: i.code for i in institutions.list_institutions(session)}
    names[PLATFORM_CHAIN] = "(platform)"
    return names


def _scope(factory, institution: str | None) -> uuid.UUID | None:  # type: ignore[no-untyped-def]
    institution_id = institution_id_by_code(factory, institution)
    return chain_of(institution_id) if institution is not None else None


@app.command("seal")
def seal(institution: InstitutionOption = None) -> None:
    """Seal the records written since the last seal, and anchor each chain."""
    factory = session_factory()
    chain_id = _scope(factory, institution)
    try:
        with err.status("sealing the audit trail…"):
            sealed = audit.seal_all(factory, chain_id=chain_id)
    except HuinongError as exc:
        fail(exc.message)
    if not sealed:
        console.print("audit seal: nothing to seal")
        return
    names = _chain_names(factory)
    table = Table(title="sealed")
    for column in ("chain", "records", "sequences", "head (SM3)"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for item in sealed:
        table.add_row(
            names.get(item.chain_id, str(item.chain_id)),
            str(item.records),
            f"{item.first_sequence}..{item.last_sequence}",
            item.chain_hash.hex()[:16] + "…",
        )
    console.print(table)
    console.print(
        f"audit seal: {sum(i.records for i in sealed)} records sealed in "
        f"{len({i.chain_id for i in sealed})} chain(s)"
    )


@app.command("verify")
def verify(institution: InstitutionOption = None) -> None:
    """Seal, then check every record, link and anchor; exit 1 naming what was tampered with."""
    factory = session_factory()
    chain_id = _scope(factory, institution)
    try:
        with err.status("sealing the audit trail…"):
            audit.seal_all(factory, chain_id=chain_id)
        with factory() as session:
            total = audit.sealed_count(session, chain_id=chain_id)
            with progress_bar() as progress:
                task = progress.add_task("verifying the audit trail", total=total)
                reports, key_findings = audit.verify_chains(
                    session,
                    chain_id=chain_id,
                    on_records=lambda n: progress.advance(task, n),
                )
            fingerprint = audit.public_key_fingerprint(session)
    except HuinongError as exc:
        fail(exc.message)
    names = _chain_names(factory)
    summary = Table(title="audit chains")
    for column in ("chain", "records", "anchors", "findings"):
        summary.add_column(column, justify="left" if column == "chain" else "right")
    for report in reports:
        summary.add_row(
            names.get(report.chain_id, str(report.chain_id)),
            str(report.records),
            str(report.anchors),
            f"[red]{len(report.findings)}[/]" if report.findings else "0",
        )
    console.print(summary)
    findings = key_findings + [f for r in reports for f in r.findings]
    records = sum(r.records for r in reports)
    console.print(f"audit key fingerprint (SM3): {fingerprint or '(none yet)'}")
    if not findings:
        console.print(
            f"[green]audit verify: intact[/] — {records} records in {len(reports)} chain(s)"
        )
        return
    table = Table(title="findings", show_lines=True)
    for column in ("kind", "chain", "sequences", "records", "what"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        sequences = finding.sequences
        shown = ", ".join(map(str, sequences[:10])) + (" …" if len(sequences) > 10 else "")
        table.add_row(
            f"[red]{finding.kind}[/]",
            names.get(finding.chain_id, str(finding.chain_id)),
            shown,
            "\n".join(str(i) for i in finding.record_ids),
            finding.message,
        )
    console.print(table)
    fail(f"audit verify: {len(findings)} finding(s) in {records} records")
