"""Rule set documents: loading the example from YAML and JSON, and validation with paths."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

import huinong.credit.rules
from huinong.credit.features.compute import CATALOGUE
from huinong.credit.rules import (
    ColumnType,
    Problem,
    RuleSetInvalid,
    catalogue_columns,
    load_ruleset,
    loads_ruleset,
    parse_ruleset,
    ruleset_problems,
)
from huinong.errors import InvalidInput

EXAMPLE = Path(huinong.credit.rules.__file__).parent / "examples" / "village_standard.yaml"


def example_document() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


def paths(document: object, **kwargs: Any) -> dict[str, str]:
    return {p.path: p.message for p in ruleset_problems(document, **kwargs)}


def test_the_example_loads_from_yaml_with_its_rules() -> None:
    ruleset = load_ruleset(EXAMPLE)
    assert (ruleset.institution, ruleset.name, ruleset.version) == (
        "demo-rcc",
        "village_standard",
        1,
    )
    assert [r.id for r in ruleset.knockouts] == ["KO_AGE", "KO_VETO", "KO_OVERDUE", "KO_BLACKLIST"]
    assert [r.id for r in ruleset.refers] == [
        *("RF_AGE_UNKNOWN", "RF_NO_INCOME", "RF_DEBT", "RF_NO_BUREAU", "RF_NO_REVIEW", "RF_PEER")
    ]
    assert [b.grade for b in ruleset.bands] == ["AAA", "AA", "A", "B", "C"]
    assert ruleset.bands[-1].min_score is None and not ruleset.bands[-1].approvable
    assert ruleset.limit.step_fen == 100_000
    assert [t.rate for t in ruleset.limit.terms] == [
        Decimal("0.05"),
        Decimal("0.5"),
        Decimal("-0.25"),
    ]
    assert ruleset.pricing.base["AA"] == Decimal("0.0475")
    assert ruleset.inputs["assets_fen"] is ColumnType.fen
    assert len(ruleset.digest) == 64


def test_the_same_document_in_json_gives_the_same_rule_set(tmp_path: Path) -> None:
    as_json = tmp_path / "village_standard.json"
    as_json.write_text(json.dumps(example_document(), ensure_ascii=False), encoding="utf-8")
    assert load_ruleset(as_json) == load_ruleset(EXAMPLE)
    assert loads_ruleset(as_json.read_text(), format="json") == load_ruleset(EXAMPLE)


def test_a_changed_rule_changes_the_digest() -> None:
    document = example_document()
    before = parse_ruleset(document).digest
    document["knockouts"][0]["when"] = "age_years < 20 or age_years > 65"
    assert parse_ruleset(document).digest != before


def test_unknown_column_is_reported_at_its_path() -> None:
    document = example_document()
    document["knockouts"][2]["when"] = "overdue_days > 90"
    assert paths(document) == {"knockouts[2].when": "unknown column 'overdue_days' (column 1)"}


def test_bad_expression_syntax() -> None:
    document = example_document()
    document["refers"][1]["when"] = "total_income_fen <="
    found = paths(document)
    assert list(found) == ["refers[1].when"]
    assert found["refers[1].when"].startswith("not a valid expression")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("__import__('os')", "calling '__import__' is not allowed"),
        ("age_years.__class__ == 1", "attribute access ('.__class__') is not allowed"),
        ("().__class__", "attribute access ('.__class__') is not allowed"),
        ("open('/etc/passwd') == 'x'", "calling 'open' is not allowed"),
        ("age_years[0] > 1", "subscripts ('[...]') are not allowed"),
        ("[x for x in [1]]", "ListComp is not allowed in a condition"),
        ("(lambda: True)()", "calling 'lambda: True' is not allowed"),
        ("age_years ** 2 > 4", "operator not allowed"),
        ("age_years + 1", "a condition must be true or false; this expression is a number"),
        ("bureau_blacklisted + 1 > 0", "the left side of '+' must be a number, not a condition"),
    ],
)
def test_forbidden_syntax_is_refused(condition: str, message: str) -> None:
    document = example_document()
    document["knockouts"][0]["when"] = condition
    found = paths(document)
    assert list(found) == ["knockouts[0].when"]
    assert found["knockouts[0].when"].startswith(message)


def test_unsorted_grade_bands() -> None:
    document = example_document()
    document["grades"]["bands"][2]["min_score"] = 710  # A above AA's 700
    assert paths(document) == {
        "grades.bands[2].min_score": (
            "bands go best first: min_score must be below the band above (700.0)"
        )
    }


def test_the_last_band_takes_every_lower_score_and_the_others_need_a_minimum() -> None:
    document = example_document()
    document["grades"]["bands"][4]["min_score"] = 0
    del document["grades"]["bands"][1]["min_score"]
    assert set(paths(document)) == {"grades.bands[1].min_score", "grades.bands[4].min_score"}


def test_negative_caps_and_limits() -> None:
    document = example_document()
    document["limit"]["caps"][0]["max_fen"] = -1
    document["limit"]["caps"][1]["multiple"] = "-3"
    document["grades"]["bands"][0]["base_limit_fen"] = -5
    assert paths(document) == {
        "grades.bands[0].base_limit_fen": "must not be negative",
        "limit.caps[0].max_fen": "must not be negative",
        "limit.caps[1].multiple": "must not be negative",
    }


def test_an_absolute_cap_is_required() -> None:
    document = example_document()
    del document["limit"]["caps"][0]
    assert paths(document) == {"limit.caps": "an absolute cap (max_fen) is required"}


def test_money_and_rates_have_exact_types() -> None:
    document = example_document()
    document["pricing"]["base"]["AAA"] = 0.0435  # a YAML float
    document["limit"]["terms"][0]["column"] = "score"  # not money
    document["limit"]["step_fen"] = 0
    document["grades"]["bands"][1]["base_limit_fen"] = 150000.5
    assert paths(document) == {
        "grades.bands[1].base_limit_fen": "must be a whole number of fen",
        "limit.terms[0].column": "column 'score' must be of type fen",
        "limit.step_fen": "must be a whole number of fen, at least 1",
        "pricing.base.AAA": 'give rates as decimal strings, e.g. "0.0435"',
    }


def test_ids_are_unique_and_the_engines_prefix_is_reserved() -> None:
    document = example_document()
    document["refers"][0]["id"] = "KO_AGE"
    document["pricing"]["adjustments"][0]["id"] = "grade.discount"
    assert paths(document) == {
        "refers[0].id": "duplicate rule id 'KO_AGE'",
        "pricing.adjustments[0].id": "ids beginning 'grade.' are the engine's own",
    }


def test_unknown_keys_and_missing_parts() -> None:
    document = example_document()
    document["knockout"] = document.pop("knockouts")
    document["refers"][0]["whn"] = "True"
    del document["pricing"]["base"]["C"]
    assert paths(document) == {
        "knockout": "unknown key",
        "refers[0].whn": "unknown key",
        "pricing.base": "no rate for grade 'C'",
    }


def test_discounts_may_not_take_a_rate_below_zero() -> None:
    document = example_document()
    document["pricing"]["adjustments"][0]["add"] = "-0.0440"
    found = paths(document)
    assert found["pricing.base.AAA"].startswith("all discounts together (-0.0450)")
    assert "pricing.base.AA" not in found  # 0.0475 - 0.0450 stays positive


def test_inputs_are_checked_against_the_callers_catalogue() -> None:
    catalogue = {name: column_type for name, column_type in load_ruleset(EXAMPLE).inputs.items()}
    assert ruleset_problems(example_document(), catalogue=catalogue) == []
    del catalogue["flow_months_on_book"]
    catalogue["bureau_blacklisted"] = ColumnType.string
    assert paths(example_document(), catalogue=catalogue) == {
        "inputs.bureau_blacklisted": "the catalogue has 'bureau_blacklisted' as string",
        "inputs.flow_months_on_book": (
            "unknown column 'flow_months_on_book': not in the column catalogue"
        ),
        "pricing.adjustments[1].when": "unknown column 'flow_months_on_book' (column 1)",
    }


def test_the_example_reads_only_columns_of_the_feature_catalogue() -> None:
    catalogue = catalogue_columns(CATALOGUE)
    ruleset = parse_ruleset(example_document(), catalogue=catalogue)
    assert set(ruleset.inputs) - {"score"} <= {f.column.name for f in CATALOGUE.features()}
    assert ruleset.inputs["peer_recommend_share"] is ColumnType.number
    # A column the platform does not compute, or one read as the wrong type, is refused.
    document = example_document()
    document["inputs"]["annual_income_fen"] = "fen"
    document["inputs"]["flow_months_on_book"] = "fen"
    assert paths(document, catalogue=catalogue) == {
        "inputs.annual_income_fen": (
            "unknown column 'annual_income_fen': not in the column catalogue"
        ),
        "inputs.flow_months_on_book": "the catalogue has 'flow_months_on_book' as integer",
    }


def test_undeclared_input_type_and_columns() -> None:
    document = example_document()
    document["inputs"]["age_years"] = "years"
    found = paths(document)
    assert found["inputs.age_years"].startswith("type must be one of boolean, integer")
    # Conditions over the column that failed to declare report it as unknown.
    assert found["knockouts[0].when"] == "unknown column 'age_years' (column 1)"


def test_parse_raises_with_every_problem_and_a_stable_code() -> None:
    document = example_document()
    document["version"] = 0
    document["knockouts"][0]["when"] = "nope > 1"
    with pytest.raises(RuleSetInvalid) as raised:
        parse_ruleset(document)
    error = raised.value
    assert isinstance(error, InvalidInput)
    assert error.code == "credit.rules.invalid"
    assert error.field == "version"
    assert error.problems == [
        Problem("version", "must be a positive integer"),
        Problem("knockouts[0].when", "unknown column 'nope' (column 1)"),
    ]


def test_not_a_mapping_and_bad_text() -> None:
    assert ruleset_problems([1, 2]) == [
        Problem("$", "a rule set is a mapping (YAML) or an object (JSON)")
    ]
    with pytest.raises(RuleSetInvalid) as raised:
        loads_ruleset("{not json", format="json")
    assert raised.value.problems[0].path == "$"
