"""``huinong keys``: the data keys that encrypt personal data — status and rotation.

``huinong keys rotate`` creates the next data-key version (new values are encrypted under it
from that moment, in every worker) and then re-encrypts every value still under an older key,
in batches of ``--batch-size`` rows, one transaction per batch, with a progress bar. A batch
either commits whole or not at all, so stopping the command (Ctrl-C, a lost connection, a
crash) leaves every row readable under one key or the other; ``huinong keys rotate --resume``
continues with the remaining rows without creating another key.

A request that read the old key just before the new one was committed may still write a row
under it a moment later; the batches keep scanning until no such row is left, and one written
after the command ends shows in ``huinong keys status`` and moves with ``--resume``.

``huinong keys status`` lists the versions, which is active, and how many encrypted values
each still protects; a retired key with no values left protects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from huinong.cli.common import console, err, fail, progress_bar, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.migrations.metadata import metadata
from huinong.security.personal_data import service as personal_data
from huinong.security.personal_data.service import EncryptedTable

app = typer.Typer(
    help="Data keys of personal data (SM4, wrapped by the master key).", no_args_is_help=True
)

DEFAULT_BATCH = 500


def reencrypt_all(
    factory: sessionmaker[Session],
    *,
    tables: Sequence[EncryptedTable],
    batch_size: int,
    advance: Callable[[int], None] = lambda _rows: None,
) -> int:
    """Re-encrypt every row under an older key, one transaction per batch; rows done.

    ``advance`` is called after each committed batch with its row count.
    """
    done = 0
    for table in tables:
        while True:
            rows = run_in_transaction(
                factory,
                lambda s, table=table: personal_data.reencrypt_batch(  # type: ignore[misc]
                    s, table=table, limit=batch_size
                ),
            )
            if rows == 0:
                break
            done += rows
            advance(rows)
    return done


@app.command("rotate")
def rotate(
    resume: Annotated[
        bool, typer.Option(help="finish an interrupted rotation without a new key")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="rows per transaction")
    ] = DEFAULT_BATCH,
) -> None:
    """Create a new data key and re-encrypt every value under the older ones."""
    factory = session_factory()
    tables = personal_data.encrypted_tables(metadata)
    try:
        if resume:
            version = run_in_transaction(factory, personal_data.active_version)
            if version is None:
                fail("there is no data key yet; run `huinong keys rotate` without --resume")
        else:
            version = run_in_transaction(factory, personal_data.create_data_key).version
            console.print(
                f"data key [bold]v{version}[/] created; new values are encrypted under it"
            )
        total = run_in_transaction(
            factory, lambda s: personal_data.rows_to_rotate(s, tables=tables)
        )
        with progress_bar() as progress:
            task = progress.add_task(f"re-encrypting under v{version}", total=total)
            done = reencrypt_all(
                factory,
                tables=tables,
                batch_size=batch_size,
                advance=lambda rows: progress.advance(task, rows),
            )
    except KeyboardInterrupt:
        left = run_in_transaction(factory, lambda s: personal_data.rows_to_rotate(s, tables=tables))
        err.print(
            f"interrupted: {left} rows still under older keys; every committed batch stays "
            "done. Run `huinong keys rotate --resume` to finish."
        )
        raise typer.Exit(130) from None
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"{done} rows re-encrypted; every encrypted value is under v{version}")


@app.command("status")
def status() -> None:
    """Data-key versions and how many encrypted values each protects."""
    factory = session_factory()
    tables = personal_data.encrypted_tables(metadata)
    keys = run_in_transaction(factory, lambda s: personal_data.key_status(s, tables=tables))
    if not keys:
        console.print("no data key yet: the first is created with the first encrypted value")
        return
    table = Table("version", "created (UTC)", "state", "encrypted values")
    for key in keys:
        state = "active" if key.active else ("retired" if key.values else "retired, unused")
        table.add_row(
            f"v{key.version}", f"{key.created_at:%Y-%m-%d %H:%M:%S}", state, str(key.values)
        )
    console.print(table)
    stale = sum(k.values for k in keys if not k.active)
    if stale:
        console.print(
            f"{stale} values are under retired keys: `huinong keys rotate --resume` moves them"
        )
