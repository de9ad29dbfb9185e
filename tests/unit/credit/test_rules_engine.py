"""The rules engine: precedence, limit arithmetic, pricing, trace, JSON and replay."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import huinong.credit.rules
from huinong.credit.rules import (
    Decision,
    FiredRule,
    Outcome,
    RuleKind,
    compile_rules,
    evaluate,
    load_ruleset,
    parse_ruleset,
    replay,
)
from huinong.credit.synthetic import synthetic_features
from huinong.errors import InvalidInput
from huinong.money import MAX_FEN

EXAMPLE = Path(huinong.credit.rules.__file__).parent / "examples" / "village_standard.yaml"
RULES = load_ruleset(EXAMPLE)

CLEAN = {
    "age_years": 40,
    "score": 760.0,
    "veto_count": 0,
    "bureau_overdue_fen": 0,
    "bureau_blacklisted": False,
    "assets_fen": 10_000_000,  # 100,000 yuan
    "total_income_fen": 8_000_000,  # 80,000 yuan
    "total_debt_fen": 0,
    "entity_family_farm": False,
    "entity_cooperative_member": False,
    "entity_large_grower": False,
    "peer_recommend_share": 1.0,
    "flow_months_on_book": 6,
}


def batch(*households: dict[str, Any]) -> dict[str, list[Any]]:
    rows = [CLEAN | household for household in households]
    return {name: [row[name] for row in rows] for name in CLEAN}


def ids(decisions: Any, row: int) -> list[str]:
    return [rule.id for rule in decisions.trace(row)]


def test_precedence_knock_out_then_refer_then_approve() -> None:
    decisions = evaluate(
        RULES,
        batch(
            {},  # clean AAA
            {"age_years": 70, "peer_recommend_share": 0.25},  # a knock-out and a refer rule
            {"peer_recommend_share": 0.25},  # a refer rule only
            {"score": 550.0},  # grade C is not approvable
            {"score": None},  # no score
            # No bureau report: the overdue and blacklist knock-outs cannot fire, so it refers.
            {"bureau_blacklisted": None, "bureau_overdue_fen": None},
            {"peer_recommend_share": None},  # the campaign's peer review is still pending
        ),
    )
    assert list(decisions.outcome) == [
        *("approve", "decline", "refer", "refer", "refer", "refer", "refer")
    ]
    assert list(decisions.grade) == ["AAA", "AAA", "AAA", "C", None, "AAA", "AAA"]
    # 200,000 + 5% of 100,000 + 50% of 80,000 = 245,000 yuan, capped at 3 x 80,000 yuan.
    assert list(decisions.limit_fen) == [
        *(24_000_000, 0, 24_000_000, 4_500_000, 0, 24_000_000, 24_000_000)
    ]
    assert list(decisions.annual_rate) == [
        *("0.0435", None, "0.0435", "0.0650", None, "0.0435", "0.0435")
    ]
    assert ids(decisions, 1) == ["KO_AGE", "RF_PEER"]
    assert ids(decisions, 2) == ["RF_PEER", "CAP_INCOME"]
    assert ids(decisions, 3) == ["grade.not_approvable"]
    assert ids(decisions, 4) == ["grade.no_score"]
    assert ids(decisions, 5) == ["RF_NO_BUREAU", "CAP_INCOME"]
    assert ids(decisions, 6) == ["RF_NO_REVIEW", "CAP_INCOME"]
    assert decisions.limit_fen.dtype == np.int64


def test_trace_lists_every_rule_fired_in_order_with_kind_and_reason() -> None:
    decisions = evaluate(
        RULES,
        batch(
            {
                "age_years": 80,
                "veto_count": 1,
                "bureau_blacklisted": True,
                "total_income_fen": None,
                "entity_family_farm": True,
            },
            {"entity_large_grower": True, "flow_months_on_book": 12, "score": 720.0},
        ),
    )
    assert decisions.fired.shape == (len(decisions.rules), 2)
    assert decisions.trace(0) == [
        FiredRule("KO_AGE", RuleKind.knockout, RULES.knockouts[0].reason),
        FiredRule("KO_VETO", RuleKind.knockout, RULES.knockouts[1].reason),
        FiredRule("KO_BLACKLIST", RuleKind.knockout, RULES.knockouts[3].reason),
        FiredRule("RF_NO_INCOME", RuleKind.refer, RULES.refers[1].reason),
    ]
    # Rate adjustments and caps apply (and are traced) only where a rate and limit are given.
    assert ids(decisions, 1) == ["PR_ENTITY", "PR_LOYAL"]  # 195,000 yuan: below both caps
    assert decisions.annual_rate[1] == "0.0440"  # AA 0.0475 - 0.0025 - 0.0010
    assert [r.id for r in decisions.rules] == [
        *("KO_AGE", "KO_VETO", "KO_OVERDUE", "KO_BLACKLIST"),
        *("RF_AGE_UNKNOWN", "RF_NO_INCOME", "RF_DEBT", "RF_NO_BUREAU", "RF_NO_REVIEW", "RF_PEER"),
        *("grade.no_score", "grade.not_approvable", "CAP_MAX", "CAP_INCOME"),
        *("PR_ENTITY", "PR_LOYAL"),
    ]


def test_any_entity_flag_gives_the_discount_and_unknown_flags_do_not() -> None:
    decisions = evaluate(
        RULES,
        batch(
            {"entity_family_farm": True},
            {"entity_cooperative_member": True},
            {"entity_family_farm": None, "entity_large_grower": True},  # true or unknown: true
            {"entity_family_farm": None, "entity_cooperative_member": None},  # unknown: no
            {"flow_months_on_book": 11},  # not on book all year: no loyalty discount
            {"flow_months_on_book": 12},
        ),
    )
    assert list(decisions.annual_rate) == [
        *("0.0410", "0.0410", "0.0410", "0.0435", "0.0435", "0.0425")
    ]


def test_grade_band_edges() -> None:
    scores = [750.0, 749.9, 700.0, 650.0, 600.0, 599.99, -1e9, 1e9]
    decisions = evaluate(RULES, batch(*({"score": s} for s in scores)))
    assert list(decisions.grade) == ["AAA", "AA", "AA", "A", "B", "C", "C", "AAA"]


# --- limit arithmetic on a small rule set -------------------------------------------------


def limit_rules(
    terms: list[tuple[str, str]],
    caps: list[dict[str, Any]],
    step_fen: int = 1,
    base_limit_fen: int = 0,
) -> Any:
    return parse_ruleset(
        {
            "format": "huinong.credit.rules/1",
            "institution": "test",
            "name": "limits",
            "version": 1,
            "inputs": {"score": "number", "assets_fen": "fen", "income_fen": "fen"},
            "grades": {
                "score": "score",
                "bands": [{"grade": "A", "base_limit_fen": base_limit_fen, "approvable": True}],
            },
            "limit": {
                "terms": [{"column": c, "rate": r} for c, r in terms],
                "caps": [{"id": f"CAP{i}", "reason": "cap", **cap} for i, cap in enumerate(caps)],
                "step_fen": step_fen,
            },
            "pricing": {"base": {"A": "0.05"}},
        }
    )


def limits(rules: Any, assets: list[Any], income: list[Any]) -> list[int]:
    decisions = evaluate(
        rules, {"score": [1.0] * len(assets), "assets_fen": assets, "income_fen": income}
    )
    return [int(v) for v in decisions.limit_fen]


def test_rounding_half_up_once_to_fen() -> None:
    rules = limit_rules([("assets_fen", "0.5")], [{"max_fen": MAX_FEN}])
    assert limits(rules, [1, 3, 4, 5], [0] * 4) == [1, 2, 2, 3]
    # Two halves are added before rounding, not rounded each: 0.5 + 0.5 = 1, not 2.
    both = limit_rules([("assets_fen", "0.5"), ("income_fen", "0.5")], [{"max_fen": MAX_FEN}])
    assert limits(both, [1], [1]) == [1]


def test_exact_caps_and_what_fires() -> None:
    rules = limit_rules(
        [("assets_fen", "1")],
        [{"max_fen": 1000}, {"column": "income_fen", "multiple": "1.5"}],
    )
    decisions = evaluate(
        rules,
        {
            "score": [1.0] * 4,
            "assets_fen": [1000, 1001, 900, 900],
            "income_fen": [700, 700, 600, 3],
        },
    )
    assert list(decisions.limit_fen) == [1000, 1000, 900, 4]  # 1.5 x 3 = 4.5 floors to 4
    assert [[r.id for r in decisions.trace(i)] for i in range(4)] == [
        [],  # exactly at the cap: nothing lowered it
        ["CAP0"],
        [],  # 1.5 x 600 = 900: exactly at the cap
        ["CAP1"],
    ]


def test_zero_or_missing_income_caps_at_zero() -> None:
    rules = limit_rules(
        [("assets_fen", "0.1")],
        [{"max_fen": 10**9}, {"column": "income_fen", "multiple": "3"}],
        base_limit_fen=5_000_000,
    )
    assert limits(rules, [10**8, 10**8, 10**8], [0, None, 1_000_000]) == [0, 0, 3_000_000]


def test_rounding_down_to_the_step_and_no_negative_limits() -> None:
    rules = limit_rules(
        [("assets_fen", "1"), ("income_fen", "-1")], [{"max_fen": 10**9}], step_fen=100_000
    )
    assert limits(rules, [199_999, 200_000, 99_999, 5], [0, 0, 0, 10]) == [100_000, 200_000, 0, 0]


def test_limits_beyond_int64_are_computed_exactly_and_capped() -> None:
    # Scaled by 10**9 the sum leaves int64; it is done in Python integers instead.
    rules = limit_rules([("assets_fen", "1.000000001")], [{"max_fen": MAX_FEN}])
    huge = 9_000_000_000_000_000_000
    assert limits(rules, [huge, 10**18], [0, 0]) == [huge + 9 * 10**9, 10**18 + 10**9]
    doubled = limit_rules([("assets_fen", "2")], [{"max_fen": MAX_FEN}])
    assert limits(doubled, [huge, 3], [0, 0]) == [MAX_FEN, 6]


def decimal_limit(
    base: int,
    terms: list[tuple[Decimal, int | None]],
    max_fen: int,
    multiple: Decimal,
    income: int | None,
    step: int,
) -> int:
    raw = Decimal(base) + sum((rate * (value or 0) for rate, value in terms), Decimal(0))
    limit = max(int(raw.quantize(Decimal(1), rounding=ROUND_HALF_UP)), 0)
    limit = min(limit, max_fen)
    limit = min(limit, int((multiple * (income or 0)).to_integral_value(rounding=ROUND_FLOOR)))
    return max(limit, 0) // step * step


fen_values = st.one_of(st.none(), st.integers(-(10**12), 10**12))
rates = st.decimals(-2, 2, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    base=st.integers(0, 10**10),
    assets=fen_values,
    income=fen_values,
    asset_rate=rates,
    income_rate=rates,
    max_fen=st.integers(0, 10**12),
    multiple=st.decimals(0, 10, places=3, allow_nan=False),
    step=st.sampled_from([1, 100, 100_000, 7]),
)
def test_limit_matches_decimal_arithmetic(
    base: int,
    assets: int | None,
    income: int | None,
    asset_rate: Decimal,
    income_rate: Decimal,
    max_fen: int,
    multiple: Decimal,
    step: int,
) -> None:
    rules = limit_rules(
        [("assets_fen", str(asset_rate)), ("income_fen", str(income_rate))],
        [{"max_fen": max_fen}, {"column": "income_fen", "multiple": str(multiple)}],
        step_fen=step,
        base_limit_fen=base,
    )
    expected = decimal_limit(
        base, [(asset_rate, assets), (income_rate, income)], max_fen, multiple, income, step
    )
    assert limits(rules, [assets], [income]) == [expected]


# --- decisions as JSON, replay ------------------------------------------------------------


def mixed_batch() -> dict[str, list[Any]]:
    rng = np.random.default_rng(7)
    households = []
    for _ in range(200):
        households.append(
            {
                "age_years": None if rng.random() < 0.05 else int(rng.integers(15, 80)),
                "score": None if rng.random() < 0.05 else round(float(rng.normal(680, 60)), 2),
                "veto_count": int(rng.random() < 0.05),
                "bureau_overdue_fen": int(rng.integers(0, 2)) * 1000,
                "bureau_blacklisted": None if rng.random() < 0.05 else bool(rng.random() < 0.05),
                "assets_fen": int(rng.integers(0, 10**8)),
                "total_income_fen": None if rng.random() < 0.05 else int(rng.integers(0, 10**7)),
                "total_debt_fen": int(rng.integers(0, 10**7)),
                "entity_family_farm": bool(rng.random() < 0.1),
                "entity_cooperative_member": None if rng.random() < 0.05 else False,
                "entity_large_grower": bool(rng.random() < 0.1),
                "peer_recommend_share": (
                    None if rng.random() < 0.05 else float(rng.choice([0.0, 0.5, 1.0]))
                ),
                "flow_months_on_book": int(rng.integers(0, 13)),
            }
        )
    return batch(*households)


def test_decision_json_round_trips_and_replays_to_the_same_result() -> None:
    decisions = evaluate(RULES, mixed_batch())
    outcomes = set(decisions.outcome)
    assert outcomes == {"approve", "refer", "decline"}
    for row in range(len(decisions)):
        decision = decisions.row(row)
        stored = decision.to_json()
        loaded = Decision.from_json(stored)
        assert loaded == decision
        assert loaded.to_json() == stored
        assert replay(RULES, loaded) == decision


def test_a_single_decision_is_a_batch_of_one() -> None:
    columns = mixed_batch()
    decisions = evaluate(compile_rules(RULES), columns)
    for row in (0, 17, 101):
        single = evaluate(RULES, {name: [values[row]] for name, values in columns.items()})
        assert single.row(0) == decisions.row(row)


def test_decision_json_carries_the_rule_set_and_the_inputs() -> None:
    decision = evaluate(RULES, batch({"score": 720.5, "total_income_fen": None})).row(0)
    assert decision.outcome is Outcome.refer
    assert decision.ruleset == RULES.ref
    assert decision.inputs["score"] == 720.5
    assert decision.inputs["total_income_fen"] is None
    assert decision.inputs["age_years"] == 40
    assert decision.limit_fen == 0  # an unknown income caps the limit at 0
    assert [rule.id for rule in decision.fired] == ["RF_NO_INCOME", "CAP_INCOME"]
    assert '"total_income_fen": null' in decision.to_json()


def test_replay_refuses_another_version_of_the_rules() -> None:
    decision = evaluate(RULES, batch({})).row(0)
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    changed = copy.deepcopy(document)
    changed["version"] = 2
    with pytest.raises(InvalidInput) as raised:
        replay(parse_ruleset(changed), decision)
    assert raised.value.code == "credit.rules.ruleset_mismatch"


# --- inputs -------------------------------------------------------------------------------


def test_dataframe_with_nullable_integers() -> None:
    frame = pd.DataFrame(batch({}, {"total_income_fen": None}, {"age_years": None}))
    frame["total_income_fen"] = frame["total_income_fen"].astype("Int64")
    frame["age_years"] = frame["age_years"].astype("Int64")
    decisions = evaluate(RULES, frame)
    assert list(decisions.outcome) == ["approve", "refer", "refer"]
    assert ids(decisions, 1)[0] == "RF_NO_INCOME"
    assert ids(decisions, 2)[0] == "RF_AGE_UNKNOWN"
    assert decisions.row(1).inputs["total_income_fen"] is None


def test_the_features_table_goes_in_as_the_catalogue_computes_it() -> None:
    features = synthetic_features(2_000, seed=11, as_of=dt.date(2025, 6, 30))
    features["score"] = np.random.default_rng(3).normal(700, 50, len(features)).round(1)
    decisions = evaluate(RULES, features)
    outcome = decisions.outcome
    report = features["bureau_blacklisted"]
    blacklisted = report.fillna(False).to_numpy(dtype=bool)
    assert blacklisted.any() and report.isna().any()
    assert (outcome[blacklisted] == "decline").all()
    approved = features[outcome == "approve"]
    assert 0 < len(approved) < len(features)
    # Nothing missing that a refer rule names reaches an automatic approval.
    for column in ("age_years", "total_income_fen", "bureau_blacklisted", "peer_recommend_share"):
        assert approved[column].notna().all(), column
    assert (approved["peer_recommend_share"] >= 0.5).all()
    assert approved["age_years"].between(18, 65).all()
    assert (approved["veto_count"] == 0).all() and (approved["bureau_overdue_fen"] == 0).all()
    assert (approved["total_debt_fen"] <= 2 * approved["total_income_fen"]).all()


def test_nullable_booleans_are_read_whole_and_are_not_numbers() -> None:
    frame = pd.DataFrame(batch({}, {}, {}))
    frame["bureau_blacklisted"] = pd.array([False, True, None], dtype="boolean")
    decisions = evaluate(RULES, frame)
    assert list(decisions.outcome) == ["approve", "decline", "refer"]
    assert decisions.row(2).inputs["bureau_blacklisted"] is None
    frame["peer_recommend_share"] = pd.array([True, False, None], dtype="boolean")
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, frame)
    assert (
        raised.value.message == "column 'peer_recommend_share': expected numbers, found true/false"
    )


def test_float_money_is_accepted_only_when_whole() -> None:
    columns: dict[str, Any] = {k: np.array(v) for k, v in batch({}, {}).items()}
    columns["assets_fen"] = np.array([10_000_000.0, np.nan])
    assert list(evaluate(RULES, columns).limit_fen) == [24_000_000, 24_000_000]
    columns["assets_fen"] = np.array([10_000_000.0, 0.5])
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.code == "credit.rules.bad_input"
    assert raised.value.field == "assets_fen"
    assert "row 1" in raised.value.message


def test_missing_and_mismatched_columns_are_named() -> None:
    columns = batch({}, {})
    del columns["total_debt_fen"]
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.field == "total_debt_fen"
    columns = batch({}, {})
    columns["score"] = [1.0]
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.field == "score"
    columns = batch({})
    columns["bureau_blacklisted"] = ["yes"]
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.field == "bureau_blacklisted"
    columns = batch({}, {})
    columns["age_years"] = [40, 40.5]
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.message == "column 'age_years': row 1: expected a whole number, got 40.5"
    columns = batch({})
    columns["score"] = [float("inf")]
    with pytest.raises(InvalidInput) as raised:
        evaluate(RULES, columns)
    assert raised.value.field == "score"
