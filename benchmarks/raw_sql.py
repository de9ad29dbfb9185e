"""The raw-SQL baseline both ledger-writing benchmarks measure against: what PostgreSQL does
with no rules at all — a batch of transfers stored with one ``INSERT … SELECT FROM unnest``
and the balances changed with one set-based ``UPDATE`` (binary array parameters, psycopg)."""

from __future__ import annotations

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
