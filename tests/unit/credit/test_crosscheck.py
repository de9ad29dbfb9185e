"""Cross-checks of a survey: land, income, shared keys and the seeded anomaly score."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.campaigns import crosscheck as cc
from huinong.credit.campaigns import survey
from huinong.errors import InvalidInput

DATA = Path(__file__).parents[2] / "data" / "credit"


def facts(ref: str = "H1", **changes: object) -> cc.HouseholdFacts:
    """A wheat-maize household: 10 mu, two labourers, 20,000 yuan planting + 30,000 wages."""
    base = cc.HouseholdFacts(
        ref=ref,
        member_count=4,
        labour_count=2,
        cultivated_land_mu=Decimal(10),
        rented_in_land_mu=Decimal(0),
        forest_land_mu=Decimal(0),
        income_fen={"planting": 2_000_000, "wages": 3_000_000},
        assets_fen=20_000_000,
        bank_debt_fen=0,
        informal_debt_fen=0,
        livestock_heads=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def codes(flags: list[cc.Flag]) -> list[tuple[str, str]]:
    return [(f.ref, f.code) for f in flags]


def test_land_within_tolerance_passes_and_beyond_it_is_flagged() -> None:
    households = [
        facts("H1", cultivated_land_mu=Decimal("11")),  # 1 mu off: within the 1 mu minimum
        facts("H2", cultivated_land_mu=Decimal("32"), rented_in_land_mu=Decimal("10")),  # 22 vs 20
        facts("H3", cultivated_land_mu=Decimal("23")),  # 23 vs 20: beyond 10 %
        facts("H4", cultivated_land_mu=Decimal("3")),  # not in the register
        facts("H5", cultivated_land_mu=Decimal("0.5")),  # not in the register, garden plot
    ]
    register = {"H1": Decimal(10), "H2": Decimal(20), "H3": Decimal(20)}
    flags = cc.land_flags(households, register)
    assert codes(flags) == [("H3", "land_mismatch"), ("H4", "land_not_registered")]
    assert flags[0].details == {"declared_mu": "23", "registered_mu": "20", "tolerance_mu": "2.00"}
    stricter = cc.Settings(land_tolerance_mu=Decimal("0.5"), land_tolerance_share=Decimal(0))
    assert ("H1", "land_mismatch") in codes(cc.land_flags(households, register, stricter))


def test_income_bounds() -> None:
    households = [
        facts("ok"),
        facts("greenhouse", income_fen={"planting": 25_000_000}),  # 25,000 yuan per mu
        facts("idle", income_fen={"planting": 0, "wages": 6_000_000}),
        facts(
            "no-land", cultivated_land_mu=Decimal(0), income_fen={"planting": 1, "wages": 9_000_000}
        ),
        facts(
            "no-labour",
            labour_count=0,
            cultivated_land_mu=Decimal(0),
            income_fen={"transfer": 500_000, "business": 1},
        ),
        facts("poor", income_fen={"planting": 100_000, "transfer": 100_000}),
        facts("rich", income_fen={"planting": 2_000_000, "business": 70_000_000}),
    ]
    flags = cc.income_flags(households)
    assert codes(flags) == [
        ("greenhouse", "planting_income_per_mu"),
        ("idle", "planting_income_per_mu"),
        ("no-land", "planting_income_without_land"),
        ("no-labour", "income_without_labour"),
        ("poor", "income_per_labourer"),
        ("rich", "income_per_labourer"),
    ]
    by_ref = {f.ref: f for f in flags}
    assert by_ref["greenhouse"].details["per_mu_fen"] == 2_500_000
    assert by_ref["idle"].severity is cc.Severity.low
    assert by_ref["rich"].severity is cc.Severity.medium
    assert by_ref["poor"].details["per_labourer_fen"] == 100_000


def test_shared_keys_are_compared_as_opaque_values() -> None:
    households = [
        facts("H1", phone_keys=(b"idx-a",), id_keys=(b"id-1", b"id-2")),
        facts("H2", phone_keys=(b"idx-a",), id_keys=(b"id-3",)),
        facts("H3", phone_keys=(b"idx-b",), id_keys=(b"id-2", b"id-4")),
        facts("H4", phone_keys=(b"idx-a", b"idx-a"), id_keys=(b"id-5", b"id-5")),
    ]
    flags = cc.shared_key_flags(households)
    assert [(f.ref, f.code, f.details["other_households"]) for f in flags] == [
        ("H1", "shared_phone", ["H2", "H4"]),
        ("H2", "shared_phone", ["H1", "H4"]),
        ("H4", "shared_phone", ["H1", "H2"]),
        ("H1", "shared_id_number", ["H3"]),
        ("H3", "shared_id_number", ["H1"]),
    ]
    assert {f.severity for f in flags if f.code == "shared_id_number"} == {cc.Severity.high}
    assert all("idx" not in f.reason and "id-" not in f.reason for f in flags)


def village(count: int = 30) -> list[cc.HouseholdFacts]:
    """A village of similar households, with one that borrows far more than anyone."""
    households = [
        facts(
            f"H{i:02d}",
            cultivated_land_mu=Decimal(8 + i % 5),
            income_fen={"planting": 1_600_000 + 50_000 * (i % 7), "wages": 2_500_000 + 10_000 * i},
            assets_fen=15_000_000 + 100_000 * i,
            bank_debt_fen=3_000_000 * (i % 3),
            livestock_heads=i % 4,
        )
        for i in range(count)
    ]
    households[7] = replace(households[7], informal_debt_fen=80_000_000, livestock_heads=300)
    return households


def test_the_anomaly_score_names_the_outlier_and_why() -> None:
    flags = cc.anomaly_flags(village(), cc.Settings(contamination=Decimal("0.04")))
    assert codes(flags) == [("H07", "anomaly")]
    assert flags[0].reason.startswith("unusual for this village: informal_debt high")
    assert "livestock_heads high" in flags[0].reason
    assert list(flags[0].details["robust_z"])[:2] == ["informal_debt", "livestock_heads"]  # type: ignore[call-overload]


def test_the_anomaly_share_and_the_minimum_village() -> None:
    assert len(cc.anomaly_flags(village(), cc.Settings(contamination=Decimal("0.10")))) == 3
    assert cc.anomaly_flags(village(9)) == []
    assert cc.anomaly_flags(village(), cc.Settings(contamination=Decimal(0))) == []


@settings(max_examples=3, deadline=None)
@given(st.randoms())
def test_the_anomaly_flags_do_not_depend_on_input_order(random: object) -> None:
    households = village()
    shuffled = list(households)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert cc.anomaly_flags(shuffled) == cc.anomaly_flags(households)


def test_the_sample_village_end_to_end() -> None:
    parsed = survey.parse(
        "survey.csv",
        (DATA / "survey_village.csv").read_bytes(),
        surveyed_on=dt.date(2026, 3, 1),
    )
    with (DATA / "land_register.csv").open(encoding="utf-8-sig") as register_file:
        by_id = {
            r["承包方身份证号"]: Decimal(r["确权面积(亩)"]) for r in csv.DictReader(register_file)
        }
    households = [
        cc.facts_from_archive(
            h.survey_ref,
            h.content,
            phone_keys=[h.phone] if h.phone else [],
            id_keys=[m.id_number for m in h.members],
        )
        for h in parsed.households
    ]
    register = {h.survey_ref: by_id[h.head_id_number] for h in parsed.households}
    flags = cc.crosscheck(households, register_mu=register)
    found = set(codes(flags))
    assert {
        ("GJZ-007", "shared_phone"),
        ("GJZ-008", "shared_phone"),
        ("GJZ-011", "land_mismatch"),
        ("GJZ-012", "income_per_labourer"),
        ("GJZ-012", "planting_income_per_mu"),
    } <= found
    assert len([f for f in flags if f.code == "anomaly"]) == 1
    assert [f.ref for f in flags] == sorted(f.ref for f in flags)
    assert flags == cc.crosscheck(households, register_mu=register)


def test_a_household_given_twice_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        cc.crosscheck([facts("H1"), facts("H1")])
    assert caught.value.code == "credit.crosscheck.duplicate_household"
