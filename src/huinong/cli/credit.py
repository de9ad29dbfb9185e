"""``huinong credit``: the feature catalogue, scorecards from training to monitoring, rule sets
and the replay of a stored decision.

The commands follow a model's life: ``train`` fits a scorecard on a labelled table and
registers it as a *candidate*; ``promote`` makes a version champion (the champion before it
becomes a challenger), challenger or retired; ``score`` scores a table with the champion;
``report`` shows what was measured at training and, given today's table, how far the
population has drifted (PSI). Rule sets are checked (``rules check``, no database), stored as
drafts (``rules add``) and activated (``rules activate``).

Decisions:

* **One transaction per command**, owned here, around the service calls only. Training,
  scoring and PSI are pure and can take a while; they run before or after the transaction,
  never inside it, so no database lock is held while numpy works.
* **Versions are named ``NAME VERSION``** on the command line, as people say them; the ids stay
  inside. An institution is named by ``--institution CODE`` like everywhere else.
* **The split is stratified and seeded** (``--test-share``, ``--seed``): the same table and
  options give the same model and the same figures, and bads are equally frequent in both
  parts. ``--test-share 0`` trains and reports on the whole table.
* **The stored metrics are the training report**: headline AUC/KS/Gini/rows/bads per sample
  at the top (what ``scorecards`` lists), the split, and the whole report dict under
  ``report``, so ``report --html`` reproduces the page as it was when the model was trained
  (a model's figures are a record, not something recomputed later on other data).
* **Scoring streams**: the table is read and scored in chunks of ``SCORE_CHUNK_ROWS`` with a
  progress bar, and the output is written to a ``.partial`` file renamed at the end, so an
  interrupted run never leaves a half-written ``scores.csv`` that looks finished.
* **Rule sets are validated against the feature catalogue** (``catalogue_columns``) before
  they are stored, so a rule reading a column nobody computes is refused at upload; every
  problem is printed with its path and the command exits 1.
* **Imports are lazy where they are heavy**: training and the report pull in optbinning and
  scikit-learn (seconds to import); every ``huinong`` command imports this module, so those
  are imported inside the commands that use them.
* **Governance changes are audited** (registration, role, activation, replay) with the same
  actions as the API; the command line has no signed-in principal, so the actor is empty.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import jinja2
import numpy as np
import pandas as pd
import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from huinong.cli import credit_campaigns, credit_rules
from huinong.cli.common import (
    console,
    err,
    fail,
    progress_bar,
    session_factory,
)
from huinong.cli.credit_common import audit_registry, institution_id_of, run
from huinong.credit import service
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.models import Scorecard, ScorecardRole
from huinong.credit.scorecards.model import Scaling, ScorecardInvalid, ScorecardModel
from huinong.credit.scorecards.monitoring import Stability, stability_report
from huinong.credit.scorecards.scoring import REASON_SLOTS, score_batch
from huinong.errors import HuinongError
from huinong.money import Money
from huinong.security.audit import service as audit

app = typer.Typer(help="Credit (授信): features, scorecards, decision rules.", no_args_is_help=True)
app.add_typer(credit_rules.app, name="rules")
app.add_typer(credit_campaigns.app, name="campaign")
app.command("bureau")(credit_campaigns.bureau)

SCORE_CHUNK_ROWS = 100_000
DISTRIBUTION_BAND = 20
HEADLINE = ("rows", "bads", "auc", "ks", "gini")
BAND_STYLE = {"stable": "green", "monitor": "yellow", "significant": "bold red"}
TABLE_SUFFIXES = (".csv", ".parquet")

T = TypeVar("T")


class Role(StrEnum):
    champion = "champion"
    challenger = "challenger"
    retired = "retired"


# --------------------------------------------------------------------------- helpers


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _read_query(factory: sessionmaker[Session], query: str) -> pd.DataFrame:
    with factory() as session:
        try:
            return service.read_training_query(session, query)
        except HuinongError as exc:
            fail(f"{exc.message} [{exc.code}]")
        except SQLAlchemyError as exc:
            fail(f"the query failed: {exc.__class__.__name__}: {exc.orig or exc}")
        finally:
            session.rollback()


def _read_table(path: Path) -> pd.DataFrame:
    from huinong.credit.scorecards.tables import read_training_table

    try:
        return read_training_table(path)
    except HuinongError as exc:
        fail(f"{exc.message}: give a .csv or .parquet table")


def _print_performance(performance: dict[str, dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    table.add_column("sample")
    for heading in ("rows", "bads", "AUC", "KS", "Gini"):
        table.add_column(heading, justify="right")
    for sample, figures in performance.items():
        table.add_row(
            sample,
            str(figures["rows"]),
            str(figures["bads"]),
            *(f"{figures[key]:.4f}" for key in ("auc", "ks", "gini")),
        )
    console.print(table)


def _print_iv_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="information value")
    table.add_column("feature", no_wrap=True)
    table.add_column("kind")
    table.add_column("IV", justify="right")
    table.add_column("selected", overflow="fold")
    for row in rows:
        verdict = "[green]yes[/]" if row["selected"] else f"[dim]no: {row['reason']}[/]"
        table.add_row(row["feature"], row["kind"], f"{row['iv']:.4f}", verdict)
    console.print(table)


def _print_scorecards(rows: list[Scorecard], title: str) -> None:
    table = Table(title=title)
    for heading in ("name", "version", "role", "test AUC", "test KS", "created", "digest"):
        table.add_column(heading, justify="right" if heading.startswith("test") else "left")
    for row in rows:
        measured = row.metrics.get("test") or row.metrics.get("train") or {}
        table.add_row(
            row.name,
            str(row.version),
            f"[bold]{row.role}[/]" if row.role == ScorecardRole.champion else row.role,
            f"{measured['auc']:.4f}" if "auc" in measured else "",
            f"{measured['ks']:.4f}" if "ks" in measured else "",
            row.created_at.date().isoformat(),
            row.digest[:12],
        )
    console.print(table)


# --------------------------------------------------------------------------- features


@app.command("features")
def features(
    source: Annotated[
        str | None, typer.Option(help="only this source (household, archive, ledger, …)")
    ] = None,
) -> None:
    """The feature catalogue: every feature with its source, unit and meaning."""
    try:
        documented = CATALOGUE.documentation([source] if source else None)
    except HuinongError as exc:
        fail(exc.message)
    table = Table(title=f"credit features ({len(documented)})")
    for heading in ("name", "source", "unit"):
        table.add_column(heading, no_wrap=True)
    table.add_column("meaning", overflow="fold")
    for feature in documented:
        meaning = f"{feature['meaning']} / {feature['meaning_zh']}"
        table.add_row(feature["name"], feature["source"], feature["unit"], meaning)
    console.print(table)


# --------------------------------------------------------------------------- scorecards


@app.command("train")
def train(
    institution: Annotated[str, typer.Option(help="institution code")],
    name: Annotated[str, typer.Option(help="scorecard name; each training is a new version")],
    table: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="or a read-only SELECT on the platform's database")
    ] = None,
    target: Annotated[str, typer.Option(help="column: 1 = bad, 0 = good")] = "bad",
    features: Annotated[
        str | None, typer.Option(help="candidate columns a,b,… (default: all but the target)")
    ] = None,
    test_share: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="share held out for testing (0: none)")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="seed of the split and the regression")] = 42,
    base_score: Annotated[float, typer.Option(help="points at the base odds")] = 600.0,
    base_odds: Annotated[float, typer.Option(help="good:bad odds of the base score")] = 50.0,
    pdo: Annotated[float, typer.Option(help="points to double the odds")] = 20.0,
    report_html_path: Annotated[
        Path | None, typer.Option("--report-html", help="write the report as HTML")
    ] = None,
    report_json_path: Annotated[
        Path | None, typer.Option("--report-json", help="write the report as JSON")
    ] = None,
) -> None:
    """Train a scorecard on a labelled table and register it as a candidate version."""
    from huinong.credit.scorecards.report import report_html, training_report
    from huinong.credit.scorecards.training import (
        TrainingConfig,
        train_scorecard,
        validate_training_config,
        validate_training_table,
    )

    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    config = TrainingConfig(
        name=name,
        target=target,
        features=_names(features),
        seed=seed,
        scaling=Scaling(base_score=base_score, base_odds=base_odds, pdo=pdo),
    )
    if (table is None) == (query is None):
        fail("give a table file or --query, not both")
    source = "query" if table is None else table.name
    with progress_bar() as progress:
        step = progress.add_task(f"reading {source}", total=4)
        frame = _read_table(table) if table is not None else _read_query(factory, query or "")
        problems = validate_training_config(config) + validate_training_table(frame, config)
        if problems:
            fail("the table or options do not fit: " + "; ".join(problems))
        progress.update(step, advance=1, description="splitting")
        train_part, test_part = _split(frame, target=target, test_share=test_share, seed=seed)
        progress.update(step, advance=1, description="binning and fitting")
        try:
            trained = train_scorecard(train_part, config)
        except ScorecardInvalid as exc:
            fail(f"{exc.message} [{exc.code}]")
        progress.update(step, advance=1, description="measuring")
        report = training_report(
            trained.model, train_part, test=test_part, candidates=trained.candidates
        )
        progress.update(step, advance=1, description="trained")
    if report_json_path is not None:
        report_json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        err.print(f"wrote {report_json_path}")
    if report_html_path is not None:
        report_html_path.write_text(report_html(report), encoding="utf-8")
        err.print(f"wrote {report_html_path}")
    metrics: dict[str, Any] = {
        sample: {key: figures[key] for key in HEADLINE}
        for sample, figures in report["performance"].items()
    }
    metrics["split"] = {"table": source, "test_share": test_share, "seed": seed}
    metrics["report"] = report

    def register(session: Session) -> Scorecard:
        row = service.register_scorecard(
            session,
            institution_id=institution_id,
            model=trained.model,
            metrics=metrics,
            created_by=None,
        )
        audit_registry(session, "credit.scorecard_registered", row)
        return row

    row = run(factory, register)
    _print_performance(report["performance"], f"scorecard {name}")
    _print_iv_table(report["iv_table"])
    console.print(
        f"registered [bold]{row.name}[/] version [bold]{row.version}[/] as a candidate "
        f"({len(trained.model.features)} features, digest {row.digest[:12]}); make it the "
        f"champion with `huinong credit promote --institution {institution} {row.name} "
        f"{row.version}`"
    )


def _split(
    frame: pd.DataFrame, *, target: str, test_share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A stratified, seeded train/test split (no test part when ``test_share`` is 0)."""
    if test_share == 0:
        return frame, None
    from sklearn.model_selection import train_test_split

    try:
        train_part, test_part = train_test_split(
            frame, test_size=test_share, stratify=frame[target], random_state=seed
        )
    except ValueError as exc:
        fail(f"cannot split {len(frame)} rows by {target} with --test-share {test_share}: {exc}")
    return train_part, test_part


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="scorecard name")],
    version: Annotated[int, typer.Argument(min=1, help="version")],
    institution: Annotated[str, typer.Option(help="institution code")],
    role: Annotated[Role, typer.Option(help="the new role")] = Role.champion,
) -> None:
    """Make a version champion (the former one becomes challenger), challenger or retired."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)

    def work(session: Session) -> list[Scorecard]:
        row = service.scorecard_version(
            session, institution_id=institution_id, name=name, version=version
        )
        row = service.set_scorecard_role(
            session,
            institution_id=institution_id,
            scorecard_id=row.id,
            role=ScorecardRole(role.value),
        )
        audit_registry(session, "credit.scorecard_role_set", row)
        return service.list_scorecards(session, institution_id=institution_id, name=name)

    rows = run(factory, work)
    console.print(f"{name} version {version} is now [bold]{role.value}[/]")
    _print_scorecards(rows, f"scorecard {name}")


@app.command("scorecards")
def scorecards(institution: Annotated[str, typer.Option(help="institution code")]) -> None:
    """Every scorecard version of the institution with its role and test figures."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    rows = run(factory, lambda s: service.list_scorecards(s, institution_id=institution_id))
    if not rows:
        console.print(f"no scorecards in {institution}: `huinong credit train` makes one")
        return
    _print_scorecards(rows, f"scorecards of {institution}")


def _scorecard_model(
    factory: sessionmaker[Session], institution_id: uuid.UUID, name: str, version: int | None
) -> tuple[Scorecard, ScorecardModel]:
    def work(session: Session) -> tuple[Scorecard, ScorecardModel]:
        row = service.scorecard_version(
            session, institution_id=institution_id, name=name, version=version
        )
        return row, service.scorecard_model(row)

    return run(factory, work)


@app.command("score")
def score(
    table: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")],
    institution: Annotated[str, typer.Option(help="institution code")],
    scorecard: Annotated[str, typer.Option(help="scorecard name: its champion scores")],
    out: Annotated[Path, typer.Option(help="output .csv or .parquet")] = Path("scores.csv"),
    keep: Annotated[
        str | None,
        typer.Option(help="columns a,b,… copied to the output (default: all; '' for none)"),
    ] = None,
) -> None:
    """Score every row with the champion: score and the top-3 reasons (feature, points lost)."""
    if out.suffix.lower() not in TABLE_SUFFIXES or table.suffix.lower() not in TABLE_SUFFIXES:
        fail("tables are .csv or .parquet files: check the TABLE and --out names")
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    row, model = _scorecard_model(factory, institution_id, scorecard, None)
    kept = _names(keep)
    partial = out.with_name(out.name + ".partial")
    scores: list[np.ndarray] = []
    written: list[pd.DataFrame] = []
    try:
        with progress_bar() as progress:
            task = progress.add_task(
                f"scoring with {row.name} v{row.version}", total=_row_count(table)
            )
            for chunk in _chunks(table):
                missing = [c for c in kept or () if c not in chunk.columns]
                if missing:
                    fail(f"--keep names columns the table lacks: {', '.join(missing)}")
                scored = _scored(model, chunk, kept)
                first = not scores
                scores.append(scored["score"].to_numpy())
                if out.suffix.lower() == ".csv":
                    scored.to_csv(partial, mode="w" if first else "a", header=first, index=False)
                else:
                    written.append(scored)
                progress.advance(task, len(chunk))
        if not sum(len(part) for part in scores):
            fail(f"{table.name} has no rows to score")
        if written:
            pd.concat(written, ignore_index=True).to_parquet(partial, index=False)
        partial.replace(out)
    except HuinongError as exc:
        fail(f"{exc.message} [{exc.code}]")
    finally:
        partial.unlink(missing_ok=True)
    all_scores = np.concatenate(scores)
    console.print(f"scored {len(all_scores)} rows with {row.name} version {row.version} → {out}")
    _print_distribution(all_scores)


def _row_count(path: Path) -> int:
    """Data rows of the table, for the progress bar (lines of a CSV minus its header)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


def _chunks(path: Path) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=SCORE_CHUNK_ROWS):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(path, chunksize=SCORE_CHUNK_ROWS)


def _scored(
    model: ScorecardModel, chunk: pd.DataFrame, kept: tuple[str, ...] | None
) -> pd.DataFrame:
    """The kept columns of ``chunk`` followed by the score and three reasons with points lost."""
    result = score_batch(model, chunk)
    names = np.array([*model.feature_names, ""], dtype=object)  # index -1: no reason
    columns: dict[str, Any] = {name: chunk[name].to_numpy() for name in (kept or ())}
    if kept is None:
        columns = {name: chunk[name].to_numpy() for name in chunk.columns}
    columns["score"] = result.scores
    for slot in range(REASON_SLOTS):
        columns[f"reason_{slot + 1}"] = names[result.reasons[:, slot]]
        columns[f"reason_{slot + 1}_points_lost"] = result.points_lost[:, slot]
    return pd.DataFrame(columns)


def _print_distribution(scores: np.ndarray) -> None:
    low, median, high = np.percentile(scores, [10, 50, 90])
    console.print(
        f"score min {scores.min()}, p10 {low:.0f}, median {median:.0f}, p90 {high:.0f}, "
        f"max {scores.max()}, mean {scores.mean():.1f}"
    )
    lowers, counts = np.unique(
        (scores // DISTRIBUTION_BAND) * DISTRIBUTION_BAND, return_counts=True
    )
    table = Table(title="score distribution")
    table.add_column("band")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    widest = counts.max()
    for lower, count in zip(lowers, counts, strict=True):
        table.add_row(
            f"[{lower}, {lower + DISTRIBUTION_BAND})",
            str(count),
            f"{count / len(scores):.1%}",
            "█" * max(1, round(30 * count / widest)),
        )
    console.print(table)


@app.command("report")
def report(
    institution: Annotated[str, typer.Option(help="institution code")],
    scorecard: Annotated[str, typer.Option(help="scorecard name")],
    version: Annotated[int | None, typer.Option(min=1, help="version (default: champion)")] = None,
    table: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="today's table: PSI of score and features"),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="write the report as HTML")] = None,
) -> None:
    """The figures stored at training and, with a table, the population stability (PSI)."""
    from huinong.credit.scorecards.report import discrimination, report_html

    factory = session_factory()
    institution_id = institution_id_of(factory, institution)
    row, model = _scorecard_model(factory, institution_id, scorecard, version)
    stored = row.metrics.get("report")
    title = f"{row.name} version {row.version} ({row.role}), trained {model.training.trained_at}"
    if stored is None:
        console.print(title)
        console.print_json(data=row.metrics)
    else:
        _print_performance(stored["performance"], title)
        _print_iv_table(stored["iv_table"])
    stabilities: list[Stability] = []
    if table is not None:
        frame = _read_table(table)
        with err.status(f"measuring stability on {table.name}…"):
            try:
                stabilities = stability_report(model, frame)
            except HuinongError as exc:
                fail(f"{exc.message} [{exc.code}]")
        _print_stability(stabilities, table.name)
        if model.target in frame.columns:
            figures = discrimination(frame[model.target], score_batch(model, frame).scores)
            console.print(
                f"on {table.name}: AUC {figures['auc']:.4f}, KS {figures['ks']:.4f}, "
                f"Gini {figures['gini']:.4f}"
            )
    if html is not None:
        if stored is None:
            fail(f"{row.name} version {row.version} holds no training report to render")
        html.write_text(_with_stability(report_html(stored), stabilities), encoding="utf-8")
        err.print(f"wrote {html}")


def _print_stability(stabilities: list[Stability], source: str) -> None:
    table = Table(title=f"population stability on {source} (PSI: <0.10 stable, ≤0.25 monitor)")
    table.add_column("variable", no_wrap=True)
    table.add_column("PSI", justify="right")
    table.add_column("band")
    for stability in stabilities:
        style = BAND_STYLE[stability.band]
        table.add_row(stability.name, f"{stability.psi:.4f}", f"[{style}]{stability.band}[/]")
    console.print(table)


_STABILITY_SECTION = jinja2.Environment(autoescape=True).from_string(
    """<h2>Population stability</h2>
<table><tr><th>variable</th><th>PSI</th><th>band</th></tr>
{% for s in rows %}<tr><td>{{ s.name }}</td><td>{{ "%.4f"|format(s.psi) }}</td>
<td>{{ s.band }}</td></tr>
{% endfor %}</table>
"""
)


def _with_stability(page: str, stabilities: list[Stability]) -> str:
    """The training report page with a PSI section before its end (when there is one)."""
    if not stabilities:
        return page
    section = _STABILITY_SECTION.render(rows=stabilities)
    return page.replace("</body>", section + "</body>", 1)


# --------------------------------------------------------------------------- decisions


@app.command("replay")
def replay(
    decision: Annotated[uuid.UUID, typer.Argument(help="decision id")],
    institution: Annotated[str, typer.Option(help="institution code")],
) -> None:
    """Decide again from what was stored; exit 1 naming the fields that come out different."""
    factory = session_factory()
    institution_id = institution_id_of(factory, institution)

    def work(session: Session) -> service.Replay:
        replayed = service.replay_decision(
            session, institution_id=institution_id, decision_id=decision
        )
        audit.record(
            session,
            action="credit.decision_replayed",
            institution_id=institution_id,
            object_type="credit_decision",
            object_id=str(decision),
            detail={"same": replayed.same},
        )
        return replayed

    result = run(factory, work)
    stored = result.stored
    if result.same:
        limit = str(Money(stored.limit_fen))
        console.print(
            f"decision {decision} replays to the [green]same[/] result: {stored.outcome}, "
            f"grade {stored.grade or '-'}, score {stored.score}, limit {limit}, "
            f"rate {stored.annual_rate or '-'}"
        )
        return
    table = Table(title=f"decision {decision} replays differently")
    for heading in ("field", "stored", "replayed"):
        table.add_column(heading)
    for field in result.differences:
        table.add_row(field, str(getattr(stored, field)), str(getattr(result.replayed, field)))
    console.print(table)
    fail(f"{len(result.differences)} field(s) differ: {', '.join(result.differences)}")
