"""ledger hot path: room for balance updates in place; a transfer's references checked per statement

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 15:40:00

Three changes to what every transfer costs the database, none to what it allows.

**Account pages keep half their room free (PostgreSQL, ``fillfactor = 50``).** Every transfer
rewrites two account rows (their balances). PostgreSQL writes a new row version; when the
page has room for it and no indexed column changed, the update is *heap-only* (HOT): no entry
in any of the table's four indexes, a fraction of the WAL. Packed full, the pages had no
room, and 98 % of the balance updates of a benchmark batch went to all four indexes; at half
full they are all HOT, and the set-based balance update of a batch of 8,190 took less than
half the time. The table is rewritten once here so that existing rows get the room.

**The pending transfer a post or void resolves is checked per statement.** A foreign key on
``pending_id`` ran its trigger for every inserted row, though almost every row has no
``pending_id``. The statement trigger of migration 0013 now checks it with the accounts, and
says more than the key did: ``pending_id`` names a *pending* transfer of the same institution
and ledger. SQLite checks the same per row, before it inserts.

**"Resolved at most once" indexes only the rows that resolve something.** The unique
constraint on ``pending_id`` indexed every transfer (NULL included); a partial unique index
``WHERE pending_id IS NOT NULL`` holds the same rule and skips the rest.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_PENDING_FK = "fk_ledger_transfers_pending_id_ledger_transfers"
_PENDING_UNIQUE = "uq_ledger_transfers_pending_id"
_ACCOUNT_TEXT = "the accounts of a transfer must be accounts of its institution and ledger"
_PENDING_TEXT = "pending_id must name a pending transfer of the same institution and ledger"
_RESOLVING = "pending_id IS NOT NULL"
_ACCOUNT_FILLFACTOR = 50


def _pg_references_match(check_pending: bool) -> str:
    """The statement trigger's function: the accounts, and with ``check_pending`` the pending
    transfer, of every inserted row (transition table ``inserted``)."""
    pending = f"""
    SELECT t.id INTO stray
    FROM inserted AS t
    WHERE t.pending_id IS NOT NULL
      AND NOT EXISTS (
        SELECT 1 FROM ledger_transfers AS p
        WHERE p.id = t.pending_id
          AND p.institution_id = t.institution_id
          AND p.ledger = t.ledger
          AND p.flags & 2 <> 0)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '{_PENDING_TEXT}: transfer % does not', stray
            USING ERRCODE = 'foreign_key_violation';
    END IF;"""
    return f"""
CREATE OR REPLACE FUNCTION ledger_transfers_accounts_match() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stray uuid;
BEGIN
    SELECT named.account_id INTO stray
    FROM (SELECT DISTINCT t.institution_id, t.ledger, side.account_id
          FROM inserted AS t
          CROSS JOIN LATERAL (VALUES (t.debit_account_id), (t.credit_account_id))
              AS side(account_id)) AS named
    WHERE NOT EXISTS (
        SELECT 1 FROM ledger_accounts AS a
        WHERE a.id = named.account_id
          AND a.institution_id = named.institution_id
          AND a.ledger = named.ledger)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '{_ACCOUNT_TEXT}: % is not', stray
            USING ERRCODE = 'foreign_key_violation';
    END IF;{pending if check_pending else ""}
    RETURN NULL;
END
$$
"""


_SQLITE_PENDING_MATCHES = (
    "CREATE TRIGGER ledger_transfers_pending_matches BEFORE INSERT ON ledger_transfers "
    "WHEN NEW.pending_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_transfers AS p "
    "WHERE p.id = NEW.pending_id AND p.institution_id = NEW.institution_id "
    "AND p.ledger = NEW.ledger AND p.flags & 2 <> 0) "
    f"BEGIN SELECT RAISE(ABORT, '{_PENDING_TEXT}'); END"
)


def _sqlite_rebuild_transfers(change) -> None:  # type: ignore[no-untyped-def]
    """Rebuild ``ledger_transfers`` with ``change`` applied in batch mode. SQLite drops a
    table's triggers with the table, so they are read first and re-created after."""
    triggers = op.get_bind().execute(
        text(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_transfers'"
        )
    )
    kept = [sql for (sql,) in triggers]
    with op.batch_alter_table("ledger_transfers") as batch:
        change(batch)
    for sql in kept:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_PENDING_FK, "ledger_transfers", type_="foreignkey")
        op.drop_constraint(_PENDING_UNIQUE, "ledger_transfers", type_="unique")
        op.create_index(
            _PENDING_UNIQUE,
            "ledger_transfers",
            ["pending_id"],
            unique=True,
            postgresql_where=text(_RESOLVING),
        )
        op.execute(_pg_references_match(check_pending=True))
        op.execute(f"ALTER TABLE ledger_accounts SET (fillfactor = {_ACCOUNT_FILLFACTOR})")
        # Only new pages follow a new fillfactor: a rewrite gives the existing rows their room.
        # VACUUM cannot run inside a transaction.
        with op.get_context().autocommit_block():
            op.execute("VACUUM FULL ledger_accounts")
        return

    def change(batch) -> None:  # type: ignore[no-untyped-def]
        batch.drop_constraint(_PENDING_FK, type_="foreignkey")
        batch.drop_constraint(_PENDING_UNIQUE, type_="unique")

    _sqlite_rebuild_transfers(change)
    op.execute(_SQLITE_PENDING_MATCHES)
    op.create_index(
        _PENDING_UNIQUE,
        "ledger_transfers",
        ["pending_id"],
        unique=True,
        sqlite_where=text(_RESOLVING),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ledger_accounts RESET (fillfactor)")
        op.execute(_pg_references_match(check_pending=False))
        op.drop_index(_PENDING_UNIQUE, "ledger_transfers")
        op.create_unique_constraint(_PENDING_UNIQUE, "ledger_transfers", ["pending_id"])
        op.create_foreign_key(
            _PENDING_FK, "ledger_transfers", "ledger_transfers", ["pending_id"], ["id"]
        )
        return
    op.execute("DROP TRIGGER ledger_transfers_pending_matches")
    op.drop_index(_PENDING_UNIQUE, "ledger_transfers")

    def change(batch) -> None:  # type: ignore[no-untyped-def]
        batch.create_unique_constraint(_PENDING_UNIQUE, ["pending_id"])
        batch.create_foreign_key(_PENDING_FK, "ledger_transfers", ["pending_id"], ["id"])

    _sqlite_rebuild_transfers(change)
