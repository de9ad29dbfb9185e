"""Arrays built in binary by ``huinong.pgarrays`` arrive in PostgreSQL as the values they hold."""

from __future__ import annotations

import uuid

import pytest

from huinong.ids import uuid7
from huinong.pgarrays import int4_array, int8_array, uuid_array

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
