"""Arrays built in binary by ``huinong.pgarrays`` arrive in PostgreSQL as the values they hold,
and statements joining them keep one generic plan."""

from __future__ import annotations

import uuid

import pytest

from huinong.ids import uuid7
from huinong.pgarrays import int4_array, int8_array, unnest, uuid_array

CASES = [
    ("uuid", uuid_array, [uuid7(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()]),
    ("int", int4_array, [0, 1, -1, 2**31 - 1, -(2**31), 8190]),
    ("bigint", int8_array, [0, 1, -1, 2**63 - 1, -(2**63), 500_000]),
]


@pytest.mark.parametrize(("sql_type", "build", "values"), CASES, ids=[c[0] for c in CASES])
def test_values_arrive_in_order(engine, sql_type, build, values):
    if engine.dialect.name != "postgresql":
        pytest.skip("binary arrays are PostgreSQL's")
    with engine.connect() as connection:
        for sent in (values, values[:1], []):
            rows = connection.exec_driver_sql(
                f"SELECT x FROM unnest(%(a)b::{sql_type}[]) WITH ORDINALITY AS q(x, n) ORDER BY n",
                {"a": build(sent)},
            )
            assert [row[0] for row in rows] == sent


def test_an_integer_out_of_range_is_refused_not_wrapped():
    with pytest.raises(OverflowError):
        int4_array([2**31])
    with pytest.raises(OverflowError):
        int8_array([-(2**63) - 1])


def test_a_join_on_hidden_arrays_is_planned_once_and_answers_for_any_length(engine):
    """Given the values, the planner sizes ``unnest`` of a visible array by its length, and a
    statement run with a few ids (a single transfer's accounts) is planned anew every time;
    with ``pgarrays.unnest`` it keeps the generic plan once psycopg has prepared the
    statement, and that plan is right for any number of rows."""
    if engine.dialect.name != "postgresql":
        pytest.skip("binary arrays are PostgreSQL's")
    hidden = (
        f"SELECT g.n, v.label FROM {unnest(('wanted', 'int'), ('label', 'bigint'))} AS v(n, label)"
        " JOIN generate_series(1, 5000) AS g(n) ON g.n = v.n ORDER BY g.n"
    )
    assert hidden.startswith("SELECT g.n, v.label FROM unnest((SELECT %(wanted)b::int[]), (SELECT")
    visible = hidden.replace("(SELECT %(wanted)b::int[])", "%(wanted)b::int[]")
    visible = visible.replace("(SELECT %(label)b::bigint[])", "%(label)b::bigint[]")

    def run(connection, statement, wanted):
        params = {"wanted": int4_array(wanted), "label": int8_array([-n for n in wanted])}
        rows = connection.exec_driver_sql(statement, params).all()
        assert rows == [(n, -n) for n in sorted(wanted)]

    with engine.connect() as connection:
        for length in (2, 1, 3, 2) * 5:
            for statement in (hidden, visible):
                run(connection, statement, list(range(length, 0, -1)))
        plans = dict(
            connection.exec_driver_sql(
                "SELECT statement LIKE '%%(SELECT $1::int[])%%', generic_plans"
                " FROM pg_prepared_statements WHERE statement LIKE '%%generate_series(1, 5000)%%'"
            ).all()
        )
        for length in (0, 5000, 4000, 1):
            run(connection, hidden, list(range(length, 0, -1)))
    assert plans[True] > 0  # hidden: the generic plan is kept
    assert plans[False] == 0  # visible: planned anew every time
