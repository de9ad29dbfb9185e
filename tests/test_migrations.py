"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from huinong.migrations.metadata import metadata


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrated_tables_have_the_storage_parameters_of_the_models(engine):
    """``compare_metadata`` does not look at ``postgresql_with``; the account table's
    fillfactor, which keeps balance updates heap-only, must not be lost to a migration."""
    named = {
        table.name: {f"{key}={value}" for key, value in options.items()}
        for table in metadata.tables.values()
        if (options := table.dialect_options["postgresql"]["with"])
    }
    assert named["ledger_accounts"] == {"fillfactor=50"}
    if engine.dialect.name != "postgresql":
        pytest.skip("storage parameters are PostgreSQL's; SQLite updates rows in place")
    with engine.connect() as connection:
        stored = {
            name: set(options or ())
            for name, options in connection.exec_driver_sql(
                "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%(names)s)",
                {"names": list(named)},
            )
        }
    assert stored == named
