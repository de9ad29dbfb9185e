"""The condition language: documented semantics, and vectorized = a per-row Python reference."""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.rules.expressions import (
    ExpressionError,
    Kind,
    Value,
    compile_condition,
    compile_expression,
)

SCHEMA: dict[str, Kind] = {"a": "num", "b": "num", "p": "bool", "s": "str"}
TEXTS = ("x", "y", "z")


def columns(
    a: list[float | None], b: list[float | None], p: list[bool | None], s: list[str | None]
) -> dict[str, Value]:
    p_unknown = np.array([v is None for v in p])
    s_missing = np.array([v is None for v in s])
    return {
        "a": np.array([np.nan if v is None else v for v in a], dtype=np.float64),
        "b": np.array([np.nan if v is None else v for v in b], dtype=np.float64),
        "p": (np.array([bool(v) for v in p]), p_unknown),
        "s": (np.array(s, dtype=object), s_missing),
    }


def conditions(source: str, data: dict[str, Value]) -> list[bool | None]:
    """The compiled condition per row: True, False or None (unknown)."""
    true, unknown = compile_condition(source, SCHEMA).evaluate(data)  # type: ignore[misc]
    size = len(data["a"])  # type: ignore[arg-type]
    true = np.broadcast_to(true, (size,))
    unknown = np.zeros(size, bool) if unknown is None else np.broadcast_to(unknown, (size,))
    return [None if unknown[i] else bool(true[i]) for i in range(size)]


def test_comparisons_with_a_missing_value_are_unknown_and_do_not_fire() -> None:
    data = columns([10.0, 30.0, None], [0.0] * 3, [True] * 3, ["x"] * 3)
    assert conditions("a < 18", data) == [True, False, None]
    assert conditions("not (a >= 18)", data) == [True, False, None]
    assert conditions("a < 18 or missing(a)", data) == [True, False, True]
    assert conditions("missing(a)", data) == [False, False, True]
    assert conditions("coalesce(a, 0) < 18", data) == [True, False, True]


def test_kleene_logic() -> None:
    data = columns([None] * 3, [1.0] * 3, [True, False, None], ["x"] * 3)
    assert conditions("p or a > 0", data) == [True, None, None]
    assert conditions("p and a > 0", data) == [None, False, None]
    assert conditions("not p", data) == [False, True, None]
    assert conditions("b > 0 or p", data) == [True, True, True]
    assert conditions("b < 0 and p", data) == [False, False, False]


def test_arithmetic_division_by_zero_and_chains() -> None:
    data = columns([10.0, 10.0, 70.0], [2.0, 0.0, 5.0], [True] * 3, ["x", None, "z"])
    assert conditions("a / b == 5", data) == [True, None, False]
    assert conditions("18 <= a * 2 <= 65", data) == [True, True, False]
    assert conditions("max(a, b, 20) - min(a, b) == 18", data) == [True, False, False]
    assert conditions("abs(b - a) > 60", data) == [False, False, True]
    assert conditions("a in [10, -3]", data) == [True, True, False]
    assert conditions("s in ['x', 'z']", data) == [True, None, True]
    assert conditions("s not in ['x']", data) == [False, None, True]
    assert conditions("s == 'x' or s == 'z'", data) == [True, None, True]
    assert conditions("p == True and s != 'y'", data) == [True, None, True]


def test_every_column_named_is_recorded() -> None:
    compiled = compile_expression("a > 1 and (missing(s) or p)", SCHEMA)
    assert compiled.columns == frozenset({"a", "s", "p"})
    assert compiled.kind == "bool"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a < 's'", "cannot compare a number with a text"),
        ("s < 'x'", "a text compares only with == and !="),
        ("a in b", "'in' takes a list of literals"),
        ("a in ['x']", "the list after 'in' holds number literals only"),
        ("a in []", "the list after 'in' is empty"),
        ("min(a)", "min() takes two or more arguments"),
        ("coalesce(a)", "coalesce() takes a value and a default"),
        ("abs(x=a) > 1", "abs() takes plain arguments only"),
        ("abs(a, b) > 1", "abs() takes exactly one argument"),
        ("a if p else b", "IfExp is not allowed in a condition"),
        ("a is None", "comparison not allowed"),
        ("None == a", "literal None is not allowed"),
        ("missing", "missing is a function"),
        ("a + " * 1000 + "1", "an expression is at most 2000 characters"),
        ("", "an expression is required"),
    ],
)
def test_refused_expressions(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source, SCHEMA)
    assert str(raised.value).startswith(message)


# --- the reference: a plain per-row interpreter of the documented semantics --------------


def reference(node: ast.expr, row: dict[str, Any]) -> Any:
    """Numbers: float or None. Conditions: True, False or None (unknown). Text: str or None."""
    if isinstance(node, ast.Constant):
        return float(node.value) if type(node.value) in (int, float) else node.value
    if isinstance(node, ast.Name):
        return row[node.id]
    if isinstance(node, ast.UnaryOp):
        value = reference(node.operand, row)
        if isinstance(node.op, ast.Not):
            return None if value is None else not value
        return None if value is None else -value
    if isinstance(node, ast.BoolOp):
        values = [reference(v, row) for v in node.values]
        if isinstance(node.op, ast.And):
            return False if False in values else (None if None in values else True)
        return True if True in values else (None if None in values else False)
    if isinstance(node, ast.BinOp):
        left, right = reference(node.left, row), reference(node.right, row)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div):
            result = None if right == 0 else left / right
        else:
            result = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[
                type(node.op)
            ]
        return None if result is None or math.isnan(result) else result
    if isinstance(node, ast.Compare):
        results = []
        left = reference(node.left, row)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                options = [reference(e, row) for e in comparator.elts]  # type: ignore[attr-defined]
                found = None if left is None else left in options
                results.append(found if found is None or isinstance(op, ast.In) else not found)
                continue
            right = reference(comparator, row)
            if left is None or right is None:
                results.append(None)
            else:
                compare = {
                    ast.Lt: left < right if not isinstance(left, str) else None,
                    ast.Gt: left > right if not isinstance(left, str) else None,
                    ast.LtE: left <= right if not isinstance(left, str) else None,
                    ast.GtE: left >= right if not isinstance(left, str) else None,
                    ast.Eq: left == right,
                    ast.NotEq: left != right,
                }
                results.append(compare[type(op)])
            left = right
        return False if False in results else (None if None in results else True)
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        args = [reference(a, row) for a in node.args]
        if name == "missing":
            return args[0] is None
        if name == "coalesce":
            return args[1] if args[0] is None else args[0]
        if any(a is None for a in args):
            return None
        result = abs(args[0]) if name == "abs" else (min if name == "min" else max)(args)
        return None if math.isnan(result) else result
    raise AssertionError(f"unexpected node {node!r}")


numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False).map(repr),
)
number_expressions = st.recursive(
    st.one_of(st.sampled_from(["a", "b"]), numbers),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda x: f"(-{x})"),
        inner.map(lambda x: f"abs({x})"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(inner, numbers).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    ),
    max_leaves=6,
)
comparison = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
condition_leaves = st.one_of(
    st.tuples(number_expressions, comparison, number_expressions).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    st.tuples(number_expressions, comparison, number_expressions, comparison, numbers).map(
        lambda t: f"({t[0]} {t[1]} {t[2]} {t[3]} {t[4]})"
    ),
    st.just("p"),
    st.sampled_from(["missing(a)", "missing(p)", "missing(s)", "s == 'x'", "s != 'y'"]),
    st.sampled_from(["s in ['x', 'z']", "s not in ['y']", "a in [0, 1, -2]", "b not in [3]"]),
    st.just("coalesce(p, True)"),
)
condition_expressions = st.recursive(
    condition_leaves,
    lambda inner: st.one_of(
        inner.map(lambda x: f"(not {x})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
    ),
    max_leaves=5,
)
cell_numbers = st.one_of(
    st.none(), st.integers(-3, 3).map(float), st.floats(-1e6, 1e6, allow_subnormal=False)
)
rows = st.lists(
    st.tuples(
        cell_numbers,
        cell_numbers,
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.sampled_from(TEXTS)),
    ),
    min_size=1,
    max_size=12,
)


def _data(table: list[tuple[Any, ...]]) -> tuple[dict[str, Value], list[dict[str, Any]]]:
    a, b, p, s = (list(column) for column in zip(*table, strict=True))
    per_row = [
        {"a": None if x is None or math.isnan(x) else x, "b": None if y is None else y}
        | {"p": q, "s": t}
        for x, y, q, t in table
    ]
    return columns(a, b, p, s), per_row


@settings(max_examples=300, deadline=None)
@given(source=condition_expressions, table=rows)
def test_conditions_match_a_per_row_evaluation(source: str, table: list[tuple[Any, ...]]) -> None:
    data, per_row = _data(table)
    tree = ast.parse(source, mode="eval").body
    assert conditions(source, data) == [reference(tree, row) for row in per_row]


@settings(max_examples=300, deadline=None)
@given(source=number_expressions, table=rows)
def test_numbers_match_a_per_row_evaluation(source: str, table: list[tuple[Any, ...]]) -> None:
    data, per_row = _data(table)
    tree = ast.parse(source, mode="eval").body
    values = np.broadcast_to(compile_expression(source, SCHEMA).evaluate(data), (len(table),))
    expected = [reference(tree, row) for row in per_row]
    assert [None if math.isnan(v) else float(v) for v in values] == expected
