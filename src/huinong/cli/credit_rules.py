"""``huinong credit rules``: decision rule sets written by staff — check, add, activate, list.

Rule sets are validated against the feature catalogue (``catalogue_columns``) before they are
stored, so a rule reading a column nobody computes is refused at upload; every problem is
printed with its path and the command exits 1. ``check`` needs no database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table
from sqlalchemy.orm import Session

from huinong.cli.common import console, fail, session_factory
from huinong.cli.credit_common import audit_registry, institution_id_of, run
from huinong.credit import service
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.models import RuleSetVersion
from huinong.credit.rules import Problem, catalogue_columns, parse_ruleset, ruleset_problems

app = typer.Typer(help="Decision rule sets written by staff.", no_args_is_help=True)


def _rule_document(path: Path) -> tuple[object, list[Problem]]:
    """The document of a rule set file (``.json`` as JSON, else YAML) and every problem,
    checked against the columns the feature catalogue supplies."""
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        return None, [Problem("$", f"not valid YAML or JSON: {exc}")]
    return document, ruleset_problems(document, catalogue_columns(CATALOGUE))


def _print_problems(path: Path, problems: list[Problem]) -> None:
    for problem in problems:
        console.print(f"  [red]{problem.path}[/]: {problem.message}", highlight=False)
    fail(f"{path.name}: {len(problems)} problem(s); fix them and check again")


@app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON")],
) -> None:
    """Validate a rule set file (no database): every problem with its path; exit 1 if any."""
    document, problems = _rule_document(file)
    if problems:
        _print_problems(file, problems)
    ruleset = parse_ruleset(document)
    console.print(
        f"{file.name}: [green]valid[/] rule set {ruleset.name} version {ruleset.version} for "
        f"{ruleset.institution} ({len(ruleset.knockouts)} knock-outs, {len(ruleset.refers)} "
        f"refers, {len(ruleset.bands)} grades)"
    )


@app.command("add")
def rules_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON")],
    institution: Annotated[str, typer.Option(help="institution code")],
) -> None:
    """Store a rule set file as a draft version (activate it to use it)."""
    document, problems = _rule_document(file)
    if problems:
        _print_problems(file, problems)
    assert isinstance(document, dict)  # a valid rule set is a mapping
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)

    def work(session: Session) -> RuleSetVersion:
        row = service.add_rule_set(
            session,
            institution_id=institution_id,
            institution_code=institution,
            document=document,
            created_by=None,
        )
        audit_registry(session, "credit.rule_set_added", row)
        return row

    row = run(factory, work)
    console.print(
        f"rule set [bold]{row.name}[/] version [bold]{row.version}[/] stored as a draft; "
        f"activate it with `huinong credit rules activate --institution {institution} "
        f"{row.name} {row.version}`"
    )


@app.command("activate")
def rules_activate(
    name: Annotated[str, typer.Argument(help="rule set name")],
    version: Annotated[int, typer.Argument(min=1, help="version")],
    institution: Annotated[str, typer.Option(help="institution code")],
) -> None:
    """Make a version the active one of its name (the active one before is retired)."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)

    def work(session: Session) -> RuleSetVersion:
        row = service.rule_set_version(
            session, institution_id=institution_id, name=name, version=version
        )
        row = service.activate_rule_set(session, institution_id=institution_id, rule_set_id=row.id)
        audit_registry(session, "credit.rule_set_activated", row)
        return row

    row = run(factory, work)
    console.print(f"rule set {row.name} version {row.version} is now [bold]{row.status}[/]")


@app.command("list")
def rules_list(institution: Annotated[str, typer.Option(help="institution code")]) -> None:
    """Every rule set version of the institution with its status."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    rows = run(factory, lambda s: service.list_rule_sets(s, institution_id=institution_id))
    if not rows:
        console.print(f"no rule sets in {institution}: `huinong credit rules add` stores one")
        return
    table = Table(title=f"rule sets of {institution}")
    for heading in ("name", "version", "status", "since", "digest"):
        table.add_column(heading)
    for row in rows:
        status = f"[bold]{row.status}[/]" if row.status == "active" else row.status
        table.add_row(
            row.name,
            str(row.version),
            status,
            row.status_changed_at.date().isoformat(),
            row.digest[:12],
        )
    console.print(table)
