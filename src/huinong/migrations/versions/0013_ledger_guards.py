"""ledger guards: a transfer's accounts checked per statement; accounts and transfers kept

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 14:20:00

Until now two foreign keys tied a transfer to its debit and credit accounts. PostgreSQL checks a
foreign key with a trigger per row and key: a batch of 8,190 transfers ran 16,380 lookups, each
locking the account it found, and they were about a third of the batch's insert. They only said
that the accounts exist. One trigger per statement (``ledger_transfers_accounts_match``) now
checks the whole batch at once, with one lookup per distinct account, and says more: each
account exists **and** belongs to the transfer's institution and ledger (so far a rule of the
Python engine alone). SQLite, in-process, checks the same per row before it inserts.

What a foreign key also did, keep an account from being deleted while a transfer names it, is
now a rule of its own and a stronger one, as in TigerBeetle: a ledger account is never deleted
(it is closed), and its id, institution and ledger never change. Transfers are immutable: no
UPDATE or DELETE, a correction is a new transfer. The guards cost nothing on the hot path:
PostgreSQL fires an ``UPDATE OF`` trigger only for statements that set those columns, and
balance updates do not.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ACCOUNT_FKS = (
    "fk_ledger_transfers_debit_account_id_ledger_accounts",
    "fk_ledger_transfers_credit_account_id_ledger_accounts",
)
_ACCOUNT_TEXT = "the accounts of a transfer must be accounts of its institution and ledger"
_IMMUTABLE_TEXT = "ledger accounts are closed, never deleted; transfers never change"

_PG_ACCOUNTS_MATCH = f"""
CREATE FUNCTION ledger_transfers_accounts_match() RETURNS trigger
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
    END IF;
    RETURN NULL;
END
$$
"""
_PG_KEEP = f"""
CREATE FUNCTION ledger_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_IMMUTABLE_TEXT}: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""


def _sqlite_account_matches(side: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM ledger_accounts AS a "
        f"WHERE a.id = NEW.{side}_account_id AND a.institution_id = NEW.institution_id "
        "AND a.ledger = NEW.ledger)"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _ACCOUNT_FKS:
            op.drop_constraint(name, "ledger_transfers", type_="foreignkey")
        op.execute(_PG_ACCOUNTS_MATCH)
        op.execute(
            "CREATE TRIGGER ledger_transfers_accounts_match AFTER INSERT ON ledger_transfers "
            "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
            "EXECUTE FUNCTION ledger_transfers_accounts_match()"
        )
        op.execute(_PG_KEEP)
        keep = "EXECUTE FUNCTION ledger_keep()"
        op.execute(
            f"CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE "
            f"ON ledger_transfers FOR EACH ROW {keep}"
        )
        op.execute(
            f"CREATE TRIGGER ledger_accounts_never_deleted BEFORE DELETE "
            f"ON ledger_accounts FOR EACH ROW {keep}"
        )
        op.execute(
            "CREATE TRIGGER ledger_accounts_identity_kept "
            "BEFORE UPDATE OF id, institution_id, ledger ON ledger_accounts FOR EACH ROW "
            "WHEN (NEW.id <> OLD.id OR NEW.institution_id <> OLD.institution_id "
            f"OR NEW.ledger <> OLD.ledger) {keep}"
        )
        for table in ("ledger_transfers", "ledger_accounts"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT {keep}"
            )
        return
    # SQLite drops a foreign key by rebuilding the table (the table had no triggers to lose).
    with op.batch_alter_table("ledger_transfers") as batch:
        for name in _ACCOUNT_FKS:
            batch.drop_constraint(name, type_="foreignkey")
    op.execute(
        "CREATE TRIGGER ledger_transfers_accounts_match BEFORE INSERT ON ledger_transfers "
        f"WHEN NOT {_sqlite_account_matches('debit')} OR NOT {_sqlite_account_matches('credit')} "
        f"BEGIN SELECT RAISE(ABORT, '{_ACCOUNT_TEXT}'); END"
    )
    keep = f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE_TEXT}'); END"
    op.execute(
        f"CREATE TRIGGER ledger_transfers_no_update BEFORE UPDATE ON ledger_transfers {keep}"
    )
    op.execute(
        f"CREATE TRIGGER ledger_transfers_no_delete BEFORE DELETE ON ledger_transfers {keep}"
    )
    op.execute(
        f"CREATE TRIGGER ledger_accounts_never_deleted BEFORE DELETE ON ledger_accounts {keep}"
    )
    op.execute(
        "CREATE TRIGGER ledger_accounts_identity_kept "
        "BEFORE UPDATE OF id, institution_id, ledger ON ledger_accounts "
        "WHEN NEW.id IS NOT OLD.id OR NEW.institution_id IS NOT OLD.institution_id "
        f"OR NEW.ledger IS NOT OLD.ledger {keep}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (
            ("ledger_transfers_accounts_match", "ledger_transfers"),
            ("ledger_transfers_immutable", "ledger_transfers"),
            ("ledger_transfers_no_truncate", "ledger_transfers"),
            ("ledger_accounts_never_deleted", "ledger_accounts"),
            ("ledger_accounts_identity_kept", "ledger_accounts"),
            ("ledger_accounts_no_truncate", "ledger_accounts"),
        ):
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute("DROP FUNCTION ledger_transfers_accounts_match()")
        op.execute("DROP FUNCTION ledger_keep()")
        for name, column in zip(
            _ACCOUNT_FKS, ("debit_account_id", "credit_account_id"), strict=True
        ):
            op.create_foreign_key(name, "ledger_transfers", "ledger_accounts", [column], ["id"])
        return
    for trigger in (
        "ledger_transfers_accounts_match",
        "ledger_transfers_no_update",
        "ledger_transfers_no_delete",
        "ledger_accounts_never_deleted",
        "ledger_accounts_identity_kept",
    ):
        op.execute(f"DROP TRIGGER {trigger}")
    with op.batch_alter_table("ledger_transfers") as batch:
        for name, column in zip(
            _ACCOUNT_FKS, ("debit_account_id", "credit_account_id"), strict=True
        ):
            batch.create_foreign_key(name, "ledger_accounts", [column], ["id"])
