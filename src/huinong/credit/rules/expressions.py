"""A small, safe expression language for rule conditions, compiled once to numpy.

Bank staff write conditions such as ``age < 18 or age > 65``, ``veto_facts > 0``,
``debt_fen > 3 * annual_income_fen and not missing(annual_income_fen)`` or
``village in ['610102', '610103']``. The text is Python-like so that it reads naturally, but it
is never handed to ``eval``: it is parsed with :mod:`ast` and every node is checked against a
whitelist. Allowed are column names, literals (numbers, strings, ``True``/``False``),
comparisons (chained too: ``18 <= age <= 65``), ``and``/``or``/``not``, ``+ - * /``,
unary minus, ``x in [..]`` / ``x not in [..]`` over a list of literals, and the calls
``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(x)``, ``missing(x)`` and ``coalesce(x, default)``.
Attribute access, subscripts, any other call, lambdas, comprehensions and the rest are refused
with a message naming the construct — so ``__import__('os')`` or ``().__class__`` cannot run.

Each expression has a static kind (``bool``, ``num`` or ``str``) checked at compile time:
arithmetic is on numbers only, ``and``/``or``/``not`` take conditions, strings compare only
with ``==``, ``!=`` and ``in``, and a rule's condition must be a condition. Integers, fen
and decimal numbers are all ``num`` and evaluate as float64, exact for integers up to 2**53
(90 trillion yuan in fen): conditions only compare; the money arithmetic of limits is done
elsewhere in exact integers (see ``engine``).

Compilation turns the tree into nested closures over whole columns, built once; evaluating a
condition over 100,000 rows is then a handful of numpy operations, not 100,000 interpreter
walks.

Missing values (decided here, documented for rule authors):

* A missing number is NaN (``None`` in inputs becomes NaN). Arithmetic with a missing value
  is missing, and so is ``min``/``max``/``abs`` of one; division by zero is missing too.
* Conditions use three-valued (Kleene) logic, as SQL does: a comparison with a missing value
  is *unknown*; ``not unknown`` is unknown; ``False and unknown`` is false;
  ``True or unknown`` is true. A rule fires only when its condition is definitely **true**,
  so ``age < 18`` does not fire for an unknown age, and neither does ``not (age >= 18)``.
* To act on a missing value, say so: ``missing(age)`` is true exactly when ``age`` is
  missing (never unknown), and ``coalesce(x, 0)`` replaces a missing ``x`` by ``0``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

Kind = Literal["bool", "num", "str"]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
FloatArray: TypeAlias = npt.NDArray[np.float64]
ObjectArray: TypeAlias = npt.NDArray[np.object_]
# A condition's value: rows where it is true, and rows where it is unknown (None: none are).
# ``true`` is False wherever the value is unknown.
Tri: TypeAlias = tuple[BoolArray, BoolArray | None]
# A string column: the values, and the rows where it is missing (None: none are).
Text: TypeAlias = tuple[ObjectArray, BoolArray | None]
Value: TypeAlias = FloatArray | Tri | Text
Columns: TypeAlias = Mapping[str, Value]
Evaluator: TypeAlias = Callable[[Columns], Value]

MAX_SOURCE_LENGTH = 2000
FUNCTIONS = ("min", "max", "abs", "missing", "coalesce")
_COMPARISONS: dict[type[ast.cmpop], Callable[[object, object], object]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_ARITHMETIC: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}


class ExpressionError(ValueError):
    """The text is not a valid condition: bad syntax, a forbidden construct, an unknown column
    or a kind mismatch. The message is meant for the rule's author."""


@dataclass(frozen=True)
class CompiledExpression:
    """An expression checked and compiled against a column schema, ready to evaluate."""

    source: str
    kind: Kind
    columns: frozenset[str]
    evaluator: Evaluator

    def evaluate(self, columns: Columns) -> Value:
        with np.errstate(all="ignore"):
            return self.evaluator(columns)


def compile_expression(source: str, schema: Mapping[str, Kind]) -> CompiledExpression:
    """Parse, check and compile ``source``; ``schema`` gives the kind of every column that may
    be named. Raises :class:`ExpressionError` with the first problem found."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression is required")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"an expression is at most {MAX_SOURCE_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg} (column {exc.offset})") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError("not a valid expression: too deeply nested") from exc
    compiler = _Compiler(schema)
    try:
        kind, evaluator = compiler.compile(tree.body)
    except RecursionError as exc:
        raise ExpressionError("the expression is too deeply nested") from exc
    return CompiledExpression(source, kind, frozenset(compiler.used), evaluator)


def compile_condition(source: str, schema: Mapping[str, Kind]) -> CompiledExpression:
    """Like :func:`compile_expression`, and the result must be a condition (true/false)."""
    compiled = compile_expression(source, schema)
    if compiled.kind != "bool":
        raise ExpressionError(
            f"a condition must be true or false; this expression is a {_KIND_NAMES[compiled.kind]}"
        )
    return compiled


_KIND_NAMES: dict[Kind, str] = {"bool": "condition", "num": "number", "str": "text"}


def _where(node: ast.AST) -> str:
    return f" (column {getattr(node, 'col_offset', 0) + 1})"


def _any(*masks: BoolArray | None) -> BoolArray | None:
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    result = present[0]
    for mask in present[1:]:
        result = result | mask
    return result


def _tri(true: BoolArray, unknown: BoolArray | None) -> Tri:
    """A condition with ``true`` forced False where unknown."""
    return (true & ~unknown if unknown is not None else true), unknown


def _is_nan(values: FloatArray) -> BoolArray:
    return np.isnan(values)


class _Compiler:
    def __init__(self, schema: Mapping[str, Kind]) -> None:
        self.schema = schema
        self.used: set[str] = set()

    def compile(self, node: ast.expr) -> tuple[Kind, Evaluator]:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(_forbidden(node))
        result: tuple[Kind, Evaluator] = method(node)
        return result

    def _expect(self, node: ast.expr, kind: Kind, role: str) -> Evaluator:
        found, evaluator = self.compile(node)
        if found != kind:
            raise ExpressionError(
                f"{role} must be a {_KIND_NAMES[kind]}, not a {_KIND_NAMES[found]}{_where(node)}"
            )
        return evaluator

    def _Name(self, node: ast.Name) -> tuple[Kind, Evaluator]:
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id} is a function: call it, e.g. {node.id}(x)")
        if node.id not in self.schema:
            raise ExpressionError(f"unknown column {node.id!r}{_where(node)}")
        self.used.add(node.id)
        name = node.id
        return self.schema[name], lambda columns: columns[name]

    def _Constant(self, node: ast.Constant) -> tuple[Kind, Evaluator]:
        value = node.value
        if isinstance(value, bool):
            constant_tri: Tri = (np.array(value), None)
            return "bool", lambda columns: constant_tri
        if isinstance(value, int | float):
            number = np.float64(value)
            return "num", lambda columns: number  # type: ignore[return-value]
        if isinstance(value, str):
            text: Text = (np.array(value, dtype=object), None)
            return "str", lambda columns: text
        raise ExpressionError(f"literal {value!r} is not allowed{_where(node)}")

    def _UnaryOp(self, node: ast.UnaryOp) -> tuple[Kind, Evaluator]:
        if isinstance(node.op, ast.Not):
            operand = self._expect(node.operand, "bool", "the operand of 'not'")

            def negate(columns: Columns) -> Tri:
                true, unknown = operand(columns)  # type: ignore[misc]
                return _tri(~true, unknown)

            return "bool", negate
        if isinstance(node.op, ast.USub | ast.UAdd):
            number = self._expect(node.operand, "num", "the operand of a sign")
            if isinstance(node.op, ast.UAdd):
                return "num", number
            return "num", lambda columns: np.negative(number(columns))
        raise ExpressionError(_forbidden(node))

    def _BoolOp(self, node: ast.BoolOp) -> tuple[Kind, Evaluator]:
        operands = [self._expect(v, "bool", "each side of 'and'/'or'") for v in node.values]
        conjunction = isinstance(node.op, ast.And)

        def combine(columns: Columns) -> Tri:
            true, unknown = operands[0](columns)  # type: ignore[misc]
            for operand in operands[1:]:
                other_true, other_unknown = operand(columns)  # type: ignore[misc]
                if unknown is None and other_unknown is None:
                    true = (true & other_true) if conjunction else (true | other_true)
                    continue
                false = ~true if unknown is None else ~true & ~unknown
                other_false = ~other_true if other_unknown is None else ~other_true & ~other_unknown
                if conjunction:
                    true, false = true & other_true, false | other_false
                else:
                    true, false = true | other_true, false & other_false
                unknown = ~(true | false)
            return true, unknown

        return "bool", combine

    def _BinOp(self, node: ast.BinOp) -> tuple[Kind, Evaluator]:
        symbol = _ARITHMETIC.get(type(node.op))
        if symbol is None:
            raise ExpressionError(f"operator not allowed{_where(node)}; use + - * /")
        left = self._expect(node.left, "num", f"the left side of {symbol!r}")
        right = self._expect(node.right, "num", f"the right side of {symbol!r}")
        if symbol == "+":
            return "num", lambda columns: np.add(left(columns), right(columns))
        if symbol == "-":
            return "num", lambda columns: np.subtract(left(columns), right(columns))
        if symbol == "*":
            return "num", lambda columns: np.multiply(left(columns), right(columns))

        def divide(columns: Columns) -> FloatArray:
            divisor = right(columns)
            return np.where(divisor == 0, np.nan, np.divide(left(columns), divisor))

        return "num", divide

    def _Compare(self, node: ast.Compare) -> tuple[Kind, Evaluator]:
        parts: list[Evaluator] = []
        left_node = node.left
        for operator, right_node in zip(node.ops, node.comparators, strict=True):
            parts.append(self._comparison(left_node, operator, right_node))
            left_node = right_node
        if len(parts) == 1:
            return "bool", parts[0]

        def all_of(columns: Columns) -> Tri:
            true, unknown = parts[0](columns)  # type: ignore[misc]
            false = ~true if unknown is None else ~true & ~unknown
            for part in parts[1:]:
                other_true, other_unknown = part(columns)  # type: ignore[misc]
                other_false = ~other_true if other_unknown is None else ~other_true & ~other_unknown
                true, false = true & other_true, false | other_false
            return true, ~(true | false)

        return "bool", all_of

    def _comparison(self, left: ast.expr, operator: ast.cmpop, right: ast.expr) -> Evaluator:
        if isinstance(operator, ast.In | ast.NotIn):
            return self._membership(left, right, negated=isinstance(operator, ast.NotIn))
        function = _COMPARISONS.get(type(operator))
        if function is None:
            raise ExpressionError(f"comparison not allowed{_where(left)}; 'is' is not supported")
        left_kind, left_eval = self.compile(left)
        right_kind, right_eval = self.compile(right)
        if left_kind != right_kind:
            raise ExpressionError(
                f"cannot compare a {_KIND_NAMES[left_kind]} with a {_KIND_NAMES[right_kind]}"
                f"{_where(left)}"
            )
        equality = isinstance(operator, ast.Eq | ast.NotEq)
        if left_kind != "num" and not equality:
            raise ExpressionError(
                f"a {_KIND_NAMES[left_kind]} compares only with == and !={_where(left)}"
            )
        if left_kind == "num":

            def numbers(columns: Columns) -> Tri:
                a, b = left_eval(columns), right_eval(columns)
                unknown = np.asarray(_is_nan(a) | _is_nan(b))  # type: ignore[arg-type]
                return _tri(np.asarray(function(a, b), dtype=bool), unknown)

            return numbers

        def pairs(columns: Columns) -> Tri:
            (a, a_unknown), (b, b_unknown) = left_eval(columns), right_eval(columns)  # type: ignore[misc]
            equal = np.asarray(np.equal(a, b), dtype=bool)
            return _tri(
                equal if isinstance(operator, ast.Eq) else ~equal, _any(a_unknown, b_unknown)
            )

        return pairs

    def _membership(self, left: ast.expr, right: ast.expr, *, negated: bool) -> Evaluator:
        if not isinstance(right, ast.List | ast.Tuple):
            raise ExpressionError(f"'in' takes a list of literals, e.g. x in [1, 2]{_where(right)}")
        kind, left_eval = self.compile(left)
        if kind == "bool":
            raise ExpressionError(f"'in' applies to numbers or text{_where(left)}")
        options: list[object] = []
        for element in right.elts:
            value = element.value if isinstance(element, ast.Constant) else None
            if isinstance(element, ast.UnaryOp) and isinstance(element.op, ast.USub):
                inner = element.operand
                if isinstance(inner, ast.Constant) and type(inner.value) in (int, float):
                    value = -inner.value
            matches = isinstance(value, str) if kind == "str" else type(value) in (int, float)
            if not matches:
                raise ExpressionError(
                    f"the list after 'in' holds {_KIND_NAMES[kind]} literals only{_where(element)}"
                )
            options.append(value)
        if not options:
            raise ExpressionError(f"the list after 'in' is empty{_where(right)}")
        if kind == "num":
            numbers = np.array(options, dtype=np.float64)

            def number_in(columns: Columns) -> Tri:
                values: FloatArray = left_eval(columns)  # type: ignore[assignment]
                found = np.isin(values, numbers)
                return _tri(~found if negated else found, np.asarray(_is_nan(values)))

            return number_in

        def text_in(columns: Columns) -> Tri:
            values, unknown = left_eval(columns)  # type: ignore[misc]
            found = np.zeros(np.shape(values), dtype=bool)
            for option in options:
                found = found | np.asarray(values == option, dtype=bool)
            return _tri(~found if negated else found, unknown)

        return text_in

    def _Call(self, node: ast.Call) -> tuple[Kind, Evaluator]:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name if name is not None else ast.unparse(node.func)
            raise ExpressionError(
                f"calling {shown!r} is not allowed{_where(node)}; the functions are "
                + ", ".join(FUNCTIONS)
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{name}() takes plain arguments only{_where(node)}")
        arguments = node.args
        if name in ("abs", "missing") and len(arguments) != 1:
            raise ExpressionError(f"{name}() takes exactly one argument{_where(node)}")
        if name == "coalesce" and len(arguments) != 2:
            raise ExpressionError(f"coalesce() takes a value and a default{_where(node)}")
        if name in ("min", "max") and len(arguments) < 2:
            raise ExpressionError(f"{name}() takes two or more arguments{_where(node)}")
        if name == "missing":
            return "bool", self._missing(arguments[0])
        if name == "coalesce":
            return self._coalesce(arguments[0], arguments[1])
        evaluators = [self._expect(a, "num", f"the argument of {name}()") for a in arguments]
        if name == "abs":
            return "num", lambda columns: np.abs(evaluators[0](columns))
        reduce = np.minimum if name == "min" else np.maximum

        def extreme(columns: Columns) -> FloatArray:
            result = evaluators[0](columns)
            for evaluator in evaluators[1:]:
                result = reduce(result, evaluator(columns))
            return result  # type: ignore[return-value]

        return "num", extreme

    def _missing(self, argument: ast.expr) -> Evaluator:
        kind, evaluator = self.compile(argument)
        if kind == "num":
            return lambda columns: (np.asarray(_is_nan(evaluator(columns))), None)  # type: ignore[arg-type]

        def flagged(columns: Columns) -> Tri:
            values, unknown = evaluator(columns)  # type: ignore[misc]
            if unknown is None:
                return np.zeros(np.shape(values), dtype=bool), None
            return unknown, None

        return flagged

    def _coalesce(self, value: ast.expr, default: ast.expr) -> tuple[Kind, Evaluator]:
        kind, value_eval = self.compile(value)
        default_eval = self._expect(default, kind, "the default of coalesce()")
        if kind == "num":
            return "num", lambda columns: np.where(
                _is_nan(value_eval(columns)),  # type: ignore[arg-type]
                default_eval(columns),
                value_eval(columns),
            )

        def fill(columns: Columns) -> Value:
            values, unknown = value_eval(columns)  # type: ignore[misc]
            if unknown is None:
                return values, None
            fallback, fallback_unknown = default_eval(columns)  # type: ignore[misc]
            merged = np.where(unknown, fallback, values)
            still = None if fallback_unknown is None else unknown & fallback_unknown
            return merged, still

        return kind, fill


def _forbidden(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"attribute access ('.{node.attr}') is not allowed{_where(node)}"
    if isinstance(node, ast.Subscript):
        return f"subscripts ('[...]') are not allowed{_where(node)}"
    if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
        return f"a list is allowed only after 'in'{_where(node)}"
    return f"{type(node).__name__} is not allowed in a condition{_where(node)}"
