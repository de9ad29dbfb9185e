"""``huinong credit campaign``: a village credit campaign (整村授信) from the command line, and
``huinong credit bureau`` for bureau files.

The account manager's steps — create, import the survey, cross-check, decide, report — run
here as they do over the API, each command one transaction, acting for a named staff user
(``--by``) who must hold the role the step needs. Reviewers rate over the API (they are people
with their own sign-in, and blind review is enforced there); the sign-off needs an approver
other than whoever ran the decision, named with ``--by`` as well. Long steps show progress;
file outputs (error report, report, publication list) are written where ``--out`` says.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from huinong.cli.common import console, err, progress_bar, session_factory, staff_principal
from huinong.cli.credit_common import institution_id_of, run
from huinong.credit import bureau_files
from huinong.credit.campaigns import decisions
from huinong.credit.campaigns import service as campaigns
from huinong.credit.campaigns.models import Campaign
from huinong.institutions import service as institutions
from huinong.money import Money
from huinong.security.audit import service as audit
from huinong.security.principals import Principal, Role

app = typer.Typer(help="Village credit campaigns (整村授信).", no_args_is_help=True)

Institution = Annotated[str, typer.Option(help="institution code")]
Code = Annotated[str, typer.Argument(help="the campaign's code, e.g. ZC-2026-01")]
By = Annotated[str, typer.Option("--by", help="username of the staff user doing this")]
MANAGERS = frozenset({Role.account_manager})


def _campaign(session: Session, institution: str, code: str) -> Campaign:
    found = institutions.get_institution_by_code(session, code=institution)
    return campaigns.get_campaign_by_code(session, institution_id=found.id, code=code)


def _audit(session: Session, principal: Principal, action: str, campaign: Campaign) -> None:
    audit.record(
        session,
        action=action,
        institution_id=campaign.institution_id,
        actor=principal,
        object_type="credit_campaign",
        object_id=str(campaign.id),
    )


def _yuan(fen: int) -> str:
    return str(Money(fen))


@app.command("create")
def create(
    code: Code,
    institution: Institution,
    by: By,
    name: Annotated[str, typer.Option(help="what the village calls it")],
    village: Annotated[list[str], typer.Option(help="12-digit village code (repeatable)")],
    scorecard: Annotated[str, typer.Option(help="scorecard name (its champion decides)")],
    rules: Annotated[str, typer.Option(help="rule set name (its active version decides)")],
    quorum: Annotated[int, typer.Option(min=3, help="reviewers needed per household")] = 3,
    quorum_share: Annotated[str, typer.Option(help="share of the panel needed")] = "0.5",
) -> None:
    """Create a campaign for one or more villages."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)

    def work(session: Session) -> Campaign:
        principal = staff_principal(session, institution, by, MANAGERS, "run campaigns")
        campaign = campaigns.create_campaign(
            session,
            institution_id=institution_id,
            code=code,
            name=name,
            village_codes=village,
            scorecard_name=scorecard,
            rule_set_name=rules,
            quorum_min_count=quorum,
            quorum_min_share=quorum_share,
            created_by=principal.subject_id,
        )
        _audit(session, principal, "credit.campaign_created", campaign)
        return campaign

    campaign = run(factory, work)
    console.print(f"campaign [bold]{campaign.code}[/] created for {len(village)} village(s)")


@app.command("list")
def list_campaigns(institution: Institution) -> None:
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    rows = run(factory, lambda s: campaigns.list_campaigns(s, institution_id=institution_id))
    table = Table(title=f"campaigns of {institution}")
    for heading in ("code", "name", "status", "scorecard", "rules", "created"):
        table.add_column(heading)
    for c in rows:
        table.add_row(
            c.code,
            c.name,
            c.status,
            c.scorecard_name,
            c.rule_set_name,
            c.created_at.date().isoformat(),
        )
    console.print(table)


@app.command("import")
def import_survey(
    code: Code,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="XLSX or CSV")],
    institution: Institution,
    by: By,
    surveyed_on: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="date of rows that give none")
    ],
    encoding: Annotated[str | None, typer.Option(help="utf-8 or gbk (default: detect)")] = None,
    errors: Annotated[Path | None, typer.Option(help="write the error report here")] = None,
) -> None:
    """Import the household survey: households with problems are left out and reported."""
    factory = session_factory()
    content = file.read_bytes()
    with progress_bar() as progress:
        task = progress.add_task("importing households", total=None)

        def work(session: Session) -> campaigns.ImportResult:
            principal = staff_principal(session, institution, by, MANAGERS, "import surveys")
            campaign = _campaign(session, institution, code)
            result = campaigns.import_survey(
                session,
                institution_id=campaign.institution_id,
                campaign_id=campaign.id,
                file_name=file.name,
                content=content,
                surveyed_on=surveyed_on.date(),
                encoding=encoding,
                imported_by=principal.subject_id,
                progress=lambda n: progress.advance(task, n),
            )
            _audit(session, principal, "credit.survey_imported", campaign)
            return result

        result = run(factory, work)
    record = result.survey_import
    console.print(
        f"{record.household_rows} household rows: [green]{record.imported} imported[/], "
        f"[red]{record.rejected} left out[/], {len(result.problems)} problem(s)"
    )
    if result.problems:
        target = errors or file.with_name(file.stem + ".errors.csv")
        target.write_bytes(campaigns.import_problems_csv(record))
        err.print(f"problems by row and column: {target} — fix them and import those rows again")


@app.command("crosscheck")
def crosscheck(
    code: Code,
    institution: Institution,
    land_register: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="the village's 确权 register")
    ] = None,
) -> None:
    """Cross-check the surveys (land, income, shared phones and IDs, anomalies)."""
    factory = session_factory()
    register = (
        None
        if land_register is None
        else campaigns.parse_land_register(land_register.name, land_register.read_bytes())
    )

    def work(session: Session) -> list[tuple[str, str, str, str]]:
        campaign = _campaign(session, institution, code)
        flags = campaigns.cross_check(
            session,
            institution_id=campaign.institution_id,
            campaign_id=campaign.id,
            land_register=register,
        )
        refs = {
            r.id: r.survey_ref for r in campaigns.campaign_households(session, campaign=campaign)
        }
        return [(refs[f.campaign_household_id], f.severity, f.code, f.reason) for f in flags]

    flagged = run(factory, work)
    table = Table(title=f"{code}: {len(flagged)} flag(s) for the account manager")
    for heading in ("户编号", "severity", "flag", "reason"):
        table.add_column(heading, overflow="fold")
    for row in flagged:
        table.add_row(*row)
    console.print(table)


@app.command("decide")
def decide(
    code: Code,
    institution: Institution,
    by: By,
    as_of: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="decide as of")],
) -> None:
    """Score and decide every surveyed household (champion scorecard, active rule set)."""
    factory = session_factory()
    with progress_bar() as progress:
        task = progress.add_task("deciding", total=None)

        def step(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        def work(session: Session) -> decisions.CampaignReport:
            principal = staff_principal(session, institution, by, MANAGERS, "run decisions")
            campaign = _campaign(session, institution, code)
            decisions.decide_campaign(
                session,
                institution_id=campaign.institution_id,
                campaign_id=campaign.id,
                as_of=as_of.date(),
                decided_by=principal.subject_id,
                progress=step,
            )
            _audit(session, principal, "credit.campaign_decided", campaign)
            return decisions.campaign_report(
                session, institution_id=campaign.institution_id, campaign_id=campaign.id
            )

        report = run(factory, work)
    _print_summary(report)


def _print_summary(report: decisions.CampaignReport) -> None:
    table = Table(title=f"{report.name} ({report.code}) — {report.status}")
    for heading in (
        "surveyed",
        "coverage",
        "decided",
        "approve",
        "refer",
        "decline",
        "approved lines",
        "flagged",
    ):
        table.add_column(heading, justify="right")
    table.add_row(
        str(report.surveyed),
        report.coverage,
        str(report.decided),
        *(str(report.outcomes.get(k, 0)) for k in ("approve", "refer", "decline")),
        _yuan(report.approved_limit_fen),
        str(report.flagged_households),
    )
    console.print(table)
    grades = Table(title="grades")
    for grade in report.grades:
        grades.add_column(grade, justify="right")
    grades.add_row(*(str(n) for n in report.grades.values()))
    console.print(grades)


@app.command("report")
def report(
    code: Code,
    institution: Institution,
    html: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    csv: Annotated[Path | None, typer.Option(help="write one line per household here")] = None,
) -> None:
    """The campaign report: coverage, outcomes, grades, total lines, flags."""
    factory = session_factory()

    def work(session: Session) -> decisions.CampaignReport:
        campaign = _campaign(session, institution, code)
        return decisions.campaign_report(
            session, institution_id=campaign.institution_id, campaign_id=campaign.id
        )

    found = run(factory, work)
    _print_summary(found)
    if html is not None:
        html.write_text(decisions.report_html(found), encoding="utf-8")
        console.print(f"HTML report: {html}")
    if csv is not None:
        csv.write_bytes(decisions.report_csv(found))
        console.print(f"CSV report: {csv}")


@app.command("sign-off")
def sign_off(code: Code, institution: Institution, by: By) -> None:
    """An approver (not whoever ran the decision) signs the campaign off."""
    factory = session_factory()

    def work(session: Session) -> Campaign:
        principal = staff_principal(
            session, institution, by, frozenset({Role.approver}), "sign campaigns off"
        )
        campaign = _campaign(session, institution, code)
        signed = decisions.sign_off(
            session,
            institution_id=campaign.institution_id,
            campaign_id=campaign.id,
            approver_id=principal.subject_id,
        )
        _audit(session, principal, "credit.campaign_signed_off", signed)
        return signed

    run(factory, work)
    console.print(f"campaign {code} [bold]signed off[/]; the publication list can be produced")


@app.command("publication")
def publication(
    code: Code,
    institution: Institution,
    out: Annotated[Path, typer.Option(help="where to write it (.csv or .html)")],
) -> None:
    """The publication list (公示) of a signed-off campaign: approved households, masked."""
    factory = session_factory()

    def work(session: Session) -> bytes:
        campaign = _campaign(session, institution, code)
        rows = decisions.publication_list(
            session, institution_id=campaign.institution_id, campaign_id=campaign.id
        )
        if out.suffix.lower() == ".html":
            return decisions.publication_html(campaign, rows).encode("utf-8")
        return decisions.publication_csv(rows)

    out.write_bytes(run(factory, work))
    console.print(f"publication list: {out}")


def bureau(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX")],
    institution: Institution,
    encoding: Annotated[str | None, typer.Option(help="utf-8 or gbk (default: detect)")] = None,
) -> None:
    """Import a credit bureau file (征信): good rows are stored, bad rows reported."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    result = run(
        factory,
        lambda s: bureau_files.import_bureau_file(
            s,
            institution_id=institution_id,
            file_name=file.name,
            content=file.read_bytes(),
            encoding=encoding,
        ),
    )
    console.print(f"{result.stored} report(s) stored, {len(result.problems)} row(s) with problems")
    for problem in result.problems:
        err.print(f"  row {problem.row}, {problem.column}: {problem.message} [{problem.code}]")
