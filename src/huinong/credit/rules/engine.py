"""The rules engine: a rule set over a batch of households, with a trace of every rule fired.

:func:`evaluate` compiles the rule set's conditions once and evaluates each over whole
columns, so a batch of 100,000 households costs a few dozen numpy operations per rule (see
``benchmarks/credit_rules.py`` for the figures and the comparison with zen-engine that chose
this design). A single decision is a batch of one through the very same code, which is what
makes :func:`replay` trustworthy: a stored :class:`Decision` carries the inputs it was made
from and the digest of its rule set, and evaluating them again must give the same decision.

Precedence, per row:

1. any knock-out fires → **decline** (limit 0, no rate);
2. else any refer rule fires, or the score is missing, or the score's grade is not
   approvable → **refer** (a person decides; the proposed limit and rate are still given);
3. else → **approve**.

Every knock-out and refer rule is evaluated on every row (not only until the first fires) so
that the trace is complete. The trace is a boolean matrix rules × rows in this order:
knock-outs, refers, the engine's ``grade.no_score`` and ``grade.not_approvable``, caps,
rate adjustments. Caps and rate adjustments are recorded only where they applied: on rows
that are not declined and have a grade; a cap "fires" where it lowered the limit.

The limit, in exact integers (int64, or Python integers when a bound check says int64 could
overflow):

* ``raw = base_limit_fen(grade) + Σ rate_i × column_i``: the Decimal rates are scaled to
  integers by 10**k (k the most decimal places among them), so the sum is exact, then
  quantized to fen **once, ROUND_HALF_UP** (the house rule for money). A missing column
  counts as 0 (unknown assets add nothing); a negative rate may subtract, e.g., debts.
* each cap in order: ``min(limit, max_fen)`` or ``min(limit, floor(multiple × column))`` —
  a cap is a maximum, so its fen amount is **floored**; a missing column caps at 0.
* a limit below zero becomes zero, then it is **floored** to a whole ``step_fen``.

The annual rate is the grade's base rate plus the adjustments that fired, added exactly as
scaled integers and given as a Decimal string (``"0.0435"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from huinong.credit.rules.expressions import (
    BoolArray,
    Columns,
    CompiledExpression,
    ObjectArray,
    compile_condition,
)
from huinong.credit.rules.inputs import Column, IntArray, Scalar, read_columns
from huinong.credit.rules.ruleset import RuleSet, RuleSetRef
from huinong.errors import InvalidInput

_INT64_MAX = 2**63 - 1
NO_SCORE = "grade.no_score"
NOT_APPROVABLE = "grade.not_approvable"


class Outcome(StrEnum):
    approve = "approve"
    refer = "refer"
    decline = "decline"


OUTCOMES = (Outcome.approve, Outcome.refer, Outcome.decline)  # index = outcome code


class RuleKind(StrEnum):
    knockout = "knockout"
    refer = "refer"
    grade = "grade"
    cap = "cap"
    pricing = "pricing"


@dataclass(frozen=True)
class FiredRule:
    id: str
    kind: RuleKind
    reason: str


@dataclass(frozen=True)
class Decision:
    """One household's decision, with what it was made from; JSON round-trips exactly."""

    ruleset: RuleSetRef
    inputs: Mapping[str, Scalar]
    outcome: Outcome
    grade: str | None
    limit_fen: int
    annual_rate: str | None
    fired: tuple[FiredRule, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "ruleset": {
                    "institution": self.ruleset.institution,
                    "name": self.ruleset.name,
                    "version": self.ruleset.version,
                    "digest": self.ruleset.digest,
                },
                "inputs": dict(self.inputs),
                "outcome": self.outcome.value,
                "grade": self.grade,
                "limit_fen": self.limit_fen,
                "annual_rate": self.annual_rate,
                "fired": [
                    {"id": rule.id, "kind": rule.kind.value, "reason": rule.reason}
                    for rule in self.fired
                ],
            },
            ensure_ascii=False,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Decision:
        data = json.loads(text)
        ref = data["ruleset"]
        return cls(
            ruleset=RuleSetRef(ref["institution"], ref["name"], int(ref["version"]), ref["digest"]),
            inputs=dict(data["inputs"]),
            outcome=Outcome(data["outcome"]),
            grade=data["grade"],
            limit_fen=int(data["limit_fen"]),
            annual_rate=data["annual_rate"],
            fired=tuple(
                FiredRule(rule["id"], RuleKind(rule["kind"]), rule["reason"])
                for rule in data["fired"]
            ),
        )


@dataclass(frozen=True)
class Decisions:
    """The decisions of a batch, column-wise; :meth:`row` gives one as a :class:`Decision`."""

    ruleset: RuleSetRef
    rules: tuple[FiredRule, ...]  # the rows of ``fired``, in evaluation order
    fired: BoolArray  # rules × rows
    outcome_code: npt.NDArray[np.int8]  # index into OUTCOMES
    grades: tuple[str, ...]
    grade_index: npt.NDArray[np.int16]  # index into grades, -1 when the score is missing
    limit_fen: IntArray
    annual_rate: ObjectArray  # Decimal strings, None when declined or without a grade
    inputs: Mapping[str, Column]

    def __len__(self) -> int:
        return len(self.outcome_code)

    @property
    def outcome(self) -> npt.NDArray[np.str_]:
        return np.array([o.value for o in OUTCOMES])[self.outcome_code]

    @property
    def grade(self) -> ObjectArray:
        names = np.array([*self.grades, None], dtype=object)
        return names[self.grade_index]  # -1 picks the trailing None

    def trace(self, row: int) -> list[FiredRule]:
        return [self.rules[i] for i in np.flatnonzero(self.fired[:, row])]

    def row(self, row: int) -> Decision:
        grade = int(self.grade_index[row])
        return Decision(
            ruleset=self.ruleset,
            inputs={name: column.scalar(row) for name, column in self.inputs.items()},
            outcome=OUTCOMES[int(self.outcome_code[row])],
            grade=self.grades[grade] if grade >= 0 else None,
            limit_fen=int(self.limit_fen[row]),
            annual_rate=self.annual_rate[row],
            fired=tuple(self.trace(row)),
        )


@dataclass(frozen=True)
class CompiledRules:
    """A rule set with its conditions compiled; build once with :func:`compile_rules` to
    evaluate many batches."""

    ruleset: RuleSet
    rules: tuple[FiredRule, ...]
    knockouts: tuple[CompiledExpression, ...]
    refers: tuple[CompiledExpression, ...]
    adjustments: tuple[CompiledExpression, ...]


def compile_rules(ruleset: RuleSet) -> CompiledRules:
    schema = {name: column_type.kind for name, column_type in ruleset.inputs.items()}
    rules = [
        *(FiredRule(r.id, RuleKind.knockout, r.reason) for r in ruleset.knockouts),
        *(FiredRule(r.id, RuleKind.refer, r.reason) for r in ruleset.refers),
        FiredRule(NO_SCORE, RuleKind.grade, "没有评分 / no score: a person decides"),
        FiredRule(NOT_APPROVABLE, RuleKind.grade, "等级不可自动批准 / grade needs a person"),
        *(FiredRule(c.id, RuleKind.cap, c.reason) for c in ruleset.limit.caps),
        *(FiredRule(a.id, RuleKind.pricing, a.reason) for a in ruleset.pricing.adjustments),
    ]
    return CompiledRules(
        ruleset=ruleset,
        rules=tuple(rules),
        knockouts=tuple(compile_condition(r.when, schema) for r in ruleset.knockouts),
        refers=tuple(compile_condition(r.when, schema) for r in ruleset.refers),
        adjustments=tuple(compile_condition(a.when, schema) for a in ruleset.pricing.adjustments),
    )


def evaluate(
    ruleset: RuleSet | CompiledRules, columns: Mapping[str, Any] | pd.DataFrame
) -> Decisions:
    """Decide every row of ``columns`` (arrays, Series or a DataFrame, one per declared
    input) under ``ruleset``."""
    compiled = ruleset if isinstance(ruleset, CompiledRules) else compile_rules(ruleset)
    rules = compiled.ruleset
    size, inputs = read_columns(rules.inputs, columns)
    env: Columns = {name: column.as_value() for name, column in inputs.items()}
    fired = np.zeros((len(compiled.rules), size), dtype=bool)

    def fires(expression: CompiledExpression) -> BoolArray:
        true, _unknown = expression.evaluate(env)  # type: ignore[misc]
        return np.broadcast_to(np.asarray(true, dtype=bool), (size,))

    at = 0
    for expression in (*compiled.knockouts, *compiled.refers):
        fired[at] = fires(expression)
        at += 1
    declined = fired[: len(compiled.knockouts)].any(axis=0)
    referred = fired[len(compiled.knockouts) : at].any(axis=0)

    grade_index = _grades(rules, env[rules.score_column])  # type: ignore[arg-type]
    graded = grade_index >= 0
    approvable = np.array([band.approvable for band in rules.bands], dtype=bool)[grade_index]
    fired[at] = ~graded
    fired[at + 1] = graded & ~approvable
    at += 2
    outcome = np.where(declined, 2, np.where(referred | ~graded | ~approvable, 1, 0)).astype(
        np.int8
    )
    priced = graded & ~declined

    limit, cap_fired = _limits(rules, inputs, grade_index, priced)
    adjustment_fired = [fires(expression) & priced for expression in compiled.adjustments]
    for row_fired in (*cap_fired, *adjustment_fired):
        fired[at] = row_fired
        at += 1
    return Decisions(
        ruleset=rules.ref,
        rules=compiled.rules,
        fired=fired,
        outcome_code=outcome,
        grades=tuple(band.grade for band in rules.bands),
        grade_index=grade_index,
        limit_fen=limit,
        annual_rate=_rates(rules, grade_index, priced, adjustment_fired),
        inputs=inputs,
    )


def replay(ruleset: RuleSet | CompiledRules, decision: Decision) -> Decision:
    """Decide again from a stored decision's inputs, with the rule set it names."""
    rules = ruleset.ruleset if isinstance(ruleset, CompiledRules) else ruleset
    if rules.ref != decision.ruleset:
        raise InvalidInput(
            "credit.rules.ruleset_mismatch",
            f"the decision was made by {decision.ruleset.name} v{decision.ruleset.version} "
            f"({decision.ruleset.digest[:12]}), not by {rules.name} v{rules.version} "
            f"({rules.digest[:12]})",
            field="ruleset",
        )
    return evaluate(ruleset, {name: [value] for name, value in decision.inputs.items()}).row(0)


def _grades(rules: RuleSet, score: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    """The band of each score: the number of bands whose minimum is above it; -1 if missing."""
    minimums = np.array([b.min_score for b in rules.bands[:-1]], dtype=np.float64)[::-1]
    above = len(minimums) - np.searchsorted(minimums, score, side="right")
    return np.where(np.isnan(score), -1, above).astype(np.int16)


def _scale(numbers: list[Decimal]) -> int:
    """The power of ten that makes every number whole."""
    places = [-int(n.as_tuple().exponent) for n in numbers]
    return 10 ** max([0, *places])


def _int_array(fits: bool, values: Any) -> Any:
    """int64 when the bound check says it fits, else Python integers (exact, slower)."""
    return np.asarray(values, dtype=np.int64 if fits else object)


def _limits(
    rules: RuleSet,
    inputs: Mapping[str, Column],
    grade_index: npt.NDArray[np.int16],
    priced: BoolArray,
) -> tuple[IntArray, list[BoolArray]]:
    formula = rules.limit
    scale = _scale([term.rate for term in formula.terms])
    scaled_rates = [int(term.rate * scale) for term in formula.terms]
    bases = np.array([b.base_limit_fen for b in rules.bands] + [0], dtype=np.int64)

    def present(name: str) -> IntArray:
        column = inputs[name]
        if column.missing is None:
            return column.values  # type: ignore[return-value]
        return np.where(column.missing, 0, column.values)

    term_values = [present(term.column) for term in formula.terms]
    bound = int(bases.max()) * scale + sum(
        abs(rate) * int(np.abs(values).max(initial=0))
        for rate, values in zip(scaled_rates, term_values, strict=True)
    )
    fits = bound <= _INT64_MAX
    raw = _int_array(fits, bases[grade_index]) * scale
    for rate, values in zip(scaled_rates, term_values, strict=True):
        raw = raw + _int_array(fits, values) * rate
    half = scale // 2
    limit = np.where(raw < 0, -((-raw + half) // scale), (raw + half) // scale)
    limit = np.maximum(limit, 0)
    cap_fired: list[BoolArray] = []
    for cap in formula.caps:
        if cap.max_fen is not None:
            cap_fen: Any = np.int64(cap.max_fen)
        else:
            assert cap.column is not None and cap.multiple is not None
            cap_scale = _scale([cap.multiple])
            multiple = int(cap.multiple * cap_scale)
            values = present(cap.column)
            fits_cap = multiple * int(np.abs(values).max(initial=0)) <= _INT64_MAX
            cap_fen = (_int_array(fits_cap, values) * multiple) // cap_scale
        lowered = cap_fen < limit
        cap_fired.append(np.asarray(lowered & priced, dtype=bool))
        limit = np.where(lowered, cap_fen, limit)
    limit = np.maximum(limit, 0)
    limit = (limit // formula.step_fen) * formula.step_fen
    return np.where(priced, limit, 0).astype(np.int64), cap_fired


def _rates(
    rules: RuleSet,
    grade_index: npt.NDArray[np.int16],
    priced: BoolArray,
    adjustment_fired: list[BoolArray],
) -> ObjectArray:
    pricing = rules.pricing
    adds = [a.add for a in pricing.adjustments]
    base_rates = [pricing.base[band.grade] for band in rules.bands]
    scale = _scale([*base_rates, *adds])
    scaled = np.array([int(rate * scale) for rate in base_rates] + [0], dtype=np.int64)
    total = scaled[grade_index]
    for add, fired in zip(adds, adjustment_fired, strict=True):
        total = total + np.where(fired, int(add * scale), 0)
    places = len(str(scale)) - 1
    rates = np.full(len(total), None, dtype=object)
    values, inverse = np.unique(total[priced], return_inverse=True)
    texts = np.array(
        [format(Decimal(int(v)).scaleb(-places), "f") for v in values] or [""], dtype=object
    )
    rates[priced] = texts[inverse] if len(values) else rates[priced]
    return rates
