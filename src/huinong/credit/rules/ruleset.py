"""A rule set: one institution's credit decision rules, versioned, written as data.

Bank staff author a rule set in YAML or JSON — the same document either way (see
``examples/village_standard.yaml``)::

    format: huinong.credit.rules/1
    institution: demo-rcc          # the institution's code
    name: village_standard
    version: 3                     # a positive integer; a changed rule set is a new version
    inputs: {age_years: integer, score: number, veto_count: integer, bureau_blacklisted: boolean,
             bureau_overdue_fen: fen, assets_fen: fen, total_income_fen: fen}
    knockouts:                     # any one fires -> decline
      - {id: KO_AGE, when: "age_years < 18 or age_years > 65", reason: "年龄不符 / not 18-65"}
    refers:                        # any one fires -> a person decides
      - {id: RF_NO_INCOME, when: "missing(total_income_fen)", reason: "..."}
    grades:
      score: score                 # the input column holding the score
      bands:                       # best first; min_score strictly decreasing; last has none
        - {grade: AAA, min_score: 750, base_limit_fen: 20000000, approvable: true}
        - {grade: C, base_limit_fen: 0, approvable: false}
    limit:
      terms: [{column: assets_fen, rate: "0.05"}, {column: total_income_fen, rate: "0.5"}]
      caps:
        - {id: CAP_MAX, max_fen: 50000000, reason: "..."}
        - {id: CAP_INCOME, column: total_income_fen, multiple: "2", reason: "..."}
      step_fen: 100000             # round down to whole 1,000 yuan
    pricing:
      base: {AAA: "0.0435", AA: "0.0475", A: "0.0520", B: "0.0580", C: "0.0650"}
      adjustments:
        - {id: PR_ENTITY, when: "entity_family_farm", add: "-0.0025", reason: "..."}

Decisions made here:

* **Structured limit formula, not free arithmetic.** ``base_fen + Σ rate × column`` then caps
  then a step: an auditor reads it at a glance, the engine computes it in exact integers, and
  no author can write a formula that divides by zero or mixes money with a score. Rates and
  multiples are ``Decimal`` strings (a YAML float would already have lost digits, so a number
  is refused there); money is integer fen. An absolute cap (``max_fen``) is required: it keeps
  every limit within a signed 64-bit integer whatever the inputs.
* **Declared inputs.** The rule set names the columns it reads and their types
  (``boolean``, ``integer``, ``number``, ``fen``, ``string``); every condition is checked
  against them, and a caller may pass its own catalogue of columns so that a rule set asking
  for a column the platform does not compute is refused before it is used
  (``catalogue.catalogue_columns`` derives it from the feature catalogue).
* **Validation is one pure pass** (:func:`ruleset_problems`) that returns every problem with
  its path (``knockouts[2].when``) and message; :func:`parse_ruleset` raises
  :class:`RuleSetInvalid` carrying them all. Unknown keys are problems too: a misspelt
  ``knockout:`` must not silently drop every knock-out.
* Rule ids are unique across knock-outs, refers, caps and rate adjustments, because the trace
  of a decision names rules by id alone.
* The rule set's **digest** (SM3 of its canonical JSON) goes into every decision, so a
  replay can prove it used the very rules the decision was made with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from huinong.credit.rules.expressions import ExpressionError, Kind, compile_condition
from huinong.errors import InvalidInput
from huinong.money import MAX_FEN
from huinong.security.crypto import sm3

FORMAT = "huinong.credit.rules/1"
MAX_RULES = 2000
# The engine's own trace entries (a missing score, a grade that is not approvable) use it.
RESERVED_ID_PREFIX = "grade."
_TOP_KEYS = frozenset(
    {"format", "institution", "name", "version", "description", "inputs", "knockouts"}
    | {"refers", "grades", "limit", "pricing"}
)


class ColumnType(StrEnum):
    boolean = "boolean"
    integer = "integer"
    number = "number"
    fen = "fen"  # money: an integer number of fen
    string = "string"

    @property
    def kind(self) -> Kind:
        if self is ColumnType.boolean:
            return "bool"
        if self is ColumnType.string:
            return "str"
        return "num"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule set: where (``knockouts[2].when``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RuleSetInvalid(InvalidInput):
    """A rule set document breaks the schema; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            "credit.rules.invalid",
            f"the rule set is invalid: {shown}{more}",
            field=problems[0].path if problems else None,
        )
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    """A knock-out or refer rule: it fires on the rows where ``when`` is true."""

    id: str
    when: str
    reason: str


@dataclass(frozen=True)
class GradeBand:
    grade: str
    min_score: float | None  # None only on the last band: every score below the others
    base_limit_fen: int
    approvable: bool


@dataclass(frozen=True)
class LimitTerm:
    column: str
    rate: Decimal


@dataclass(frozen=True)
class Cap:
    """At most ``max_fen``, or at most ``multiple`` × ``column`` (exactly one of the two)."""

    id: str
    reason: str
    max_fen: int | None = None
    column: str | None = None
    multiple: Decimal | None = None


@dataclass(frozen=True)
class LimitFormula:
    terms: tuple[LimitTerm, ...]
    caps: tuple[Cap, ...]
    step_fen: int


@dataclass(frozen=True)
class RateAdjustment:
    id: str
    when: str
    add: Decimal
    reason: str


@dataclass(frozen=True)
class Pricing:
    base: Mapping[str, Decimal]
    adjustments: tuple[RateAdjustment, ...]


@dataclass(frozen=True)
class RuleSetRef:
    """Which rule set made a decision."""

    institution: str
    name: str
    version: int
    digest: str


@dataclass(frozen=True)
class RuleSet:
    institution: str
    name: str
    version: int
    description: str
    inputs: Mapping[str, ColumnType]
    knockouts: tuple[Rule, ...]
    refers: tuple[Rule, ...]
    score_column: str
    bands: tuple[GradeBand, ...]
    limit: LimitFormula
    pricing: Pricing
    digest: str

    @property
    def ref(self) -> RuleSetRef:
        return RuleSetRef(self.institution, self.name, self.version, self.digest)


def ruleset_problems(
    document: object, catalogue: Mapping[str, ColumnType | str] | None = None
) -> list[Problem]:
    """Every problem of a rule set document, in document order (empty when it is valid).

    ``catalogue``, when given, is the caller's list of available columns and their types:
    each declared input must be in it with the same type."""
    return _Reader(catalogue).read(document)[1]


def parse_ruleset(
    document: object, catalogue: Mapping[str, ColumnType | str] | None = None
) -> RuleSet:
    """The rule set of a valid document; raises :class:`RuleSetInvalid` otherwise."""
    ruleset, problems = _Reader(catalogue).read(document)
    if problems or ruleset is None:
        raise RuleSetInvalid(problems)
    return ruleset


def loads_ruleset(
    text: str, *, format: str = "yaml", catalogue: Mapping[str, ColumnType | str] | None = None
) -> RuleSet:
    """Parse rule set text; ``format`` is ``yaml`` or ``json`` (YAML also reads JSON)."""
    try:
        document = json.loads(text) if format == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RuleSetInvalid([Problem("$", f"not valid {format.upper()}: {exc}")]) from exc
    return parse_ruleset(document, catalogue)


def load_ruleset(
    path: str | Path, catalogue: Mapping[str, ColumnType | str] | None = None
) -> RuleSet:
    """Read a rule set file: ``.json`` as JSON, anything else as YAML."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return loads_ruleset(
        text, format="json" if path.suffix.lower() == ".json" else "yaml", catalogue=catalogue
    )


def canonical_digest(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sm3(canonical.encode("utf-8")).hex()


class _Reader:
    """Walks a document once, collecting problems and building the rule set."""

    def __init__(self, catalogue: Mapping[str, ColumnType | str] | None) -> None:
        self.catalogue = catalogue
        self.problems: list[Problem] = []
        self.ids: set[str] = set()
        self.inputs: dict[str, ColumnType] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def read(self, document: object) -> tuple[RuleSet | None, list[Problem]]:
        if not isinstance(document, Mapping):
            self.add("$", "a rule set is a mapping (YAML) or an object (JSON)")
            return None, self.problems
        for key in document:
            if key not in _TOP_KEYS:
                self.add(str(key), "unknown key")
        if document.get("format") != FORMAT:
            self.add("format", f"must be {FORMAT!r}")
        institution = self.text(document, "institution", "institution")
        name = self.text(document, "name", "name")
        version = document.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.add("version", "must be a positive integer")
        description = document.get("description", "")
        if not isinstance(description, str):
            self.add("description", "must be text")
        self.read_inputs(document.get("inputs"))
        knockouts = self.rules(document.get("knockouts", []), "knockouts")
        refers = self.rules(document.get("refers", []), "refers")
        score_column, bands = self.grades(document.get("grades"))
        limit = self.limit(document.get("limit"))
        pricing = self.pricing(document.get("pricing"), bands)
        if self.problems:
            return None, self.problems
        return (
            RuleSet(
                institution=institution,
                name=name,
                version=int(version),  # type: ignore[arg-type]
                description=str(description),
                inputs=dict(self.inputs),
                knockouts=knockouts,
                refers=refers,
                score_column=score_column,
                bands=bands,
                limit=limit,  # type: ignore[arg-type]
                pricing=pricing,  # type: ignore[arg-type]
                digest=canonical_digest(document),
            ),
            self.problems,
        )

    def text(self, mapping: Mapping[str, Any], key: str, path: str) -> str:
        value = mapping.get(key)
        if not isinstance(value, str) or not value.strip():
            self.add(path, "required text")
            return ""
        return value

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.add(path, "required mapping")
            return {}
        return value

    def keys(self, mapping: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(f"{path}.{key}", "unknown key")

    def read_inputs(self, value: object) -> None:
        inputs = self.mapping(value, "inputs")
        for column, type_name in inputs.items():
            path = f"inputs.{column}"
            if not isinstance(column, str) or not column.isidentifier() or column.startswith("_"):
                self.add(path, "a column name is a plain identifier (letters, digits, _)")
                continue
            try:
                column_type = ColumnType(type_name)
            except ValueError:
                self.add(path, f"type must be one of {', '.join(t.value for t in ColumnType)}")
                continue
            if self.catalogue is not None:
                known = self.catalogue.get(column)
                if known is None:
                    self.add(path, f"unknown column {column!r}: not in the column catalogue")
                    continue
                if ColumnType(known) is not column_type:
                    self.add(path, f"the catalogue has {column!r} as {ColumnType(known).value}")
            self.inputs[column] = column_type

    def column(self, value: object, path: str, *types: ColumnType) -> str:
        if not isinstance(value, str) or value not in self.inputs:
            self.add(path, f"unknown column {value!r}: declare it under inputs")
            return ""
        if types and self.inputs[value] not in types:
            wanted = " or ".join(t.value for t in types)
            self.add(path, f"column {value!r} must be of type {wanted}")
        return value

    def rule_id(self, mapping: Mapping[str, Any], path: str) -> str:
        rule_id = self.text(mapping, "id", f"{path}.id")
        if rule_id.startswith(RESERVED_ID_PREFIX):
            self.add(f"{path}.id", f"ids beginning {RESERVED_ID_PREFIX!r} are the engine's own")
        elif rule_id and rule_id in self.ids:
            self.add(f"{path}.id", f"duplicate rule id {rule_id!r}")
        self.ids.add(rule_id)
        return rule_id

    def condition(self, mapping: Mapping[str, Any], path: str) -> str:
        source = mapping.get("when")
        if not isinstance(source, str):
            self.add(f"{path}.when", "required condition text")
            return ""
        schema = {column: column_type.kind for column, column_type in self.inputs.items()}
        try:
            compile_condition(source, schema)
        except ExpressionError as exc:
            self.add(f"{path}.when", str(exc))
        return source

    def sequence(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.add(path, "required list")
            return []
        if len(value) > MAX_RULES:
            self.add(path, f"at most {MAX_RULES} entries")
        return value

    def rules(self, value: object, path: str) -> tuple[Rule, ...]:
        found: list[Rule] = []
        for index, entry in enumerate(self.sequence(value, path)):
            where = f"{path}[{index}]"
            rule = self.mapping(entry, where)
            self.keys(rule, where, {"id", "when", "reason"})
            found.append(
                Rule(
                    self.rule_id(rule, where),
                    self.condition(rule, where),
                    self.text(rule, "reason", f"{where}.reason"),
                )
            )
        return tuple(found)

    def fen(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, "must be a whole number of fen")
            return 0
        if not 0 <= value <= MAX_FEN:
            self.add(path, "must not be negative" if value < 0 else "too large for 64 bits")
        return value

    def decimal(self, value: object, path: str, *, negative: bool = True) -> Decimal:
        if not isinstance(value, str):
            self.add(path, 'give rates as decimal strings, e.g. "0.0435"')
            return Decimal(0)
        try:
            number = Decimal(value)
        except InvalidOperation:
            self.add(path, f"not a decimal number: {value!r}")
            return Decimal(0)
        if not number.is_finite() or number.as_tuple().exponent < -9:  # type: ignore[operator]
            self.add(path, "must be finite with at most 9 decimal places")
        elif abs(number) > 1_000_000:
            self.add(path, "must be at most 1,000,000 in size")
        elif not negative and number < 0:
            self.add(path, "must not be negative")
        return number

    def grades(self, value: object) -> tuple[str, tuple[GradeBand, ...]]:
        grades = self.mapping(value, "grades")
        self.keys(grades, "grades", {"score", "bands"})
        score = self.column(
            grades.get("score"), "grades.score", ColumnType.number, ColumnType.integer
        )
        bands: list[GradeBand] = []
        entries = self.sequence(grades.get("bands"), "grades.bands")
        if value is not None and not entries:
            self.add("grades.bands", "at least one band")
        names: set[str] = set()
        previous: float | None = None
        for index, entry in enumerate(entries):
            where = f"grades.bands[{index}]"
            band = self.mapping(entry, where)
            self.keys(band, where, {"grade", "min_score", "base_limit_fen", "approvable"})
            grade = self.text(band, "grade", f"{where}.grade")
            if grade in names:
                self.add(f"{where}.grade", f"duplicate grade {grade!r}")
            names.add(grade)
            last = index == len(entries) - 1
            min_score = band.get("min_score")
            if last and min_score is not None:
                self.add(f"{where}.min_score", "the last band takes every lower score: omit it")
                min_score = None
            elif not last:
                if (
                    isinstance(min_score, bool)
                    or not isinstance(min_score, int | float)
                    or not math.isfinite(min_score)
                ):
                    self.add(f"{where}.min_score", "required number")
                    min_score = None
                elif previous is not None and min_score >= previous:
                    self.add(
                        f"{where}.min_score",
                        f"bands go best first: min_score must be below the band above ({previous})",
                    )
                else:
                    previous = float(min_score)
            approvable = band.get("approvable")
            if not isinstance(approvable, bool):
                self.add(f"{where}.approvable", "required true or false")
            bands.append(
                GradeBand(
                    grade,
                    None if min_score is None else float(min_score),
                    self.fen(band.get("base_limit_fen"), f"{where}.base_limit_fen"),
                    bool(approvable),
                )
            )
        return score, tuple(bands)

    def limit(self, value: object) -> LimitFormula | None:
        limit = self.mapping(value, "limit")
        self.keys(limit, "limit", {"terms", "caps", "step_fen"})
        terms: list[LimitTerm] = []
        for index, entry in enumerate(self.sequence(limit.get("terms", []), "limit.terms")):
            where = f"limit.terms[{index}]"
            term = self.mapping(entry, where)
            self.keys(term, where, {"column", "rate"})
            column = self.column(term.get("column"), f"{where}.column", ColumnType.fen)
            terms.append(LimitTerm(column, self.decimal(term.get("rate"), f"{where}.rate")))
        caps: list[Cap] = []
        for index, entry in enumerate(self.sequence(limit.get("caps"), "limit.caps")):
            where = f"limit.caps[{index}]"
            cap = self.mapping(entry, where)
            self.keys(cap, where, {"id", "max_fen", "column", "multiple", "reason"})
            rule_id, reason = self.rule_id(cap, where), self.text(cap, "reason", f"{where}.reason")
            if "max_fen" in cap and ("column" in cap or "multiple" in cap):
                self.add(where, "a cap is either max_fen or column and multiple, not both")
            elif "max_fen" in cap:
                caps.append(
                    Cap(rule_id, reason, max_fen=self.fen(cap["max_fen"], f"{where}.max_fen"))
                )
            else:
                column = self.column(cap.get("column"), f"{where}.column", ColumnType.fen)
                multiple = self.decimal(cap.get("multiple"), f"{where}.multiple", negative=False)
                caps.append(Cap(rule_id, reason, column=column, multiple=multiple))
        if value is not None and not any(cap.max_fen is not None for cap in caps):
            self.add("limit.caps", "an absolute cap (max_fen) is required")
        step = limit.get("step_fen", 1)
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= MAX_FEN:
            self.add("limit.step_fen", "must be a whole number of fen, at least 1")
        if value is None:
            return None
        return LimitFormula(tuple(terms), tuple(caps), step)

    def pricing(self, value: object, bands: tuple[GradeBand, ...]) -> Pricing | None:
        pricing = self.mapping(value, "pricing")
        self.keys(pricing, "pricing", {"base", "adjustments"})
        base_rates = self.mapping(pricing.get("base"), "pricing.base")
        base: dict[str, Decimal] = {}
        for grade, rate in base_rates.items():
            if grade not in {band.grade for band in bands}:
                self.add(f"pricing.base.{grade}", f"no grade band {grade!r}")
            found = len(self.problems)
            parsed = self.decimal(rate, f"pricing.base.{grade}", negative=False)
            if len(self.problems) == found:
                base[str(grade)] = parsed
        for band in bands:
            if band.grade and band.grade not in base_rates:
                self.add("pricing.base", f"no rate for grade {band.grade!r}")
        adjustments: list[RateAdjustment] = []
        entries = self.sequence(pricing.get("adjustments", []), "pricing.adjustments")
        for index, entry in enumerate(entries):
            where = f"pricing.adjustments[{index}]"
            adjustment = self.mapping(entry, where)
            self.keys(adjustment, where, {"id", "when", "add", "reason"})
            adjustments.append(
                RateAdjustment(
                    self.rule_id(adjustment, where),
                    self.condition(adjustment, where),
                    self.decimal(adjustment.get("add"), f"{where}.add"),
                    self.text(adjustment, "reason", f"{where}.reason"),
                )
            )
        discounts = sum((a.add for a in adjustments if a.add < 0), Decimal(0))
        for grade, rate in base.items():
            if rate + discounts < 0:
                self.add(
                    f"pricing.base.{grade}",
                    f"all discounts together ({discounts}) would take the rate below zero",
                )
        if value is None:
            return None
        return Pricing(base, tuple(adjustments))
