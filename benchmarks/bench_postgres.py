"""What the PostgreSQL benchmarks share: a fresh, migrated benchmark database, psycopg
connection arguments from a SQLAlchemy URL, and the raw-SQL baseline they measure against —
what PostgreSQL does with no rules at all: a batch of transfers stored with one
``INSERT … SELECT FROM unnest`` and the balances changed with one set-based ``UPDATE``
(binary array parameters)."""

from __future__ import annotations

import sys
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from huinong.migrations import upgrade


def prepare_postgres(url: str) -> None:
    """Create (or re-create) the benchmark database and migrate it."""
    parsed = make_url(url)
    name = parsed.database or ""
    if "bench" not in name:
        sys.exit(f"refusing to reset database {name!r}: a benchmark database's name has 'bench'")
    admin = psycopg.connect(**connect_args(parsed, "postgres"), autocommit=True)
    with admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    upgrade(url)


def connect_args(parsed: URL, database: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "dbname": database or parsed.database,
    }
    if parsed.password:
        args["password"] = parsed.password
    return args


TRANSFER_COLUMNS = (
    "id, institution_id, debit_account_id, credit_account_id, amount, ledger, code, flags, "
    "pending_id, timeout, reference, metadata, timestamp"
)

PG_INSERT = f"""
INSERT INTO ledger_transfers ({TRANSFER_COLUMNS})
SELECT * FROM unnest(%(id)b::uuid[], %(institution_id)b::uuid[], %(debit)b::uuid[],
    %(credit)b::uuid[], %(amount)b::bigint[], %(ledger)b::varchar[], %(code)b::int[],
    %(flags)b::int[], %(pending_id)b::uuid[], %(timeout)b::int[], %(reference)b::varchar[],
    %(metadata)b::json[], %(timestamp)b::timestamptz[])
"""

PG_UPDATE = """
UPDATE ledger_accounts AS a
SET debits_posted = a.debits_posted + v.dr, credits_posted = a.credits_posted + v.cr
FROM (SELECT id, sum(dr) AS dr, sum(cr) AS cr
      FROM unnest(%(account)b::uuid[], %(dr)b::bigint[], %(cr)b::bigint[]) AS u(id, dr, cr)
      GROUP BY id) AS v
WHERE a.id = v.id
"""
