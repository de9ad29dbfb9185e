"""The household archive's content model, rules and derived figures, without a database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from huinong.parties.households import archive


def document(**fields: Any) -> dict[str, Any]:
    """A plausible survey of a maize-and-pig household of four with two labourers."""
    return {
        "member_count": 4,
        "labour_count": 2,
        "cultivated_land_mu": "12.50",
        "rented_in_land_mu": "2.5",
        "forest_land_mu": "30",
        "crops": [
            {"crop": "玉米", "area_mu": "10", "expected_yield_kg": "6500"},
            {"crop": "大豆", "area_mu": "2.5"},
        ],
        "livestock": [{"species": "pig", "head_count": 20, "ear_tags": ["P-001", "P-002"]}],
        "machinery": [{"kind": "拖拉机", "purchase_year": 2019, "value_fen": 3_500_000}],
        "vehicles": [{"kind": "三轮车", "purchase_year": 2021, "value_fen": 800_000}],
        "house": {"structure": "brick_concrete", "floor_area_m2": "160", "built_year": 2008},
        "income": {
            "year": 2025,
            "planting": 4_000_000,
            "breeding": 3_000_000,
            "wages": 2_500_000,
            "transfer": 500_000,
        },
        "assets": [
            {"kind": "house", "value_fen": 30_000_000},
            {"kind": "deposits", "value_fen": 5_000_000},
        ],
        "debts": [
            {"lender_kind": "bank", "lender": "某农商银行", "amount_fen": 5_000_000},
            {
                "lender_kind": "informal",
                "lender": "亲戚",
                "amount_fen": 1_000_000,
                "due_on": "2026-12-31",
            },
        ],
        "subsidies": [{"subsidy_type": "耕地地力保护补贴", "year": 2025, "amount_fen": 150_000}],
        "entity_flags": ["cooperative_member"],
        "honours": [{"title": "文明家庭", "year": 2024}],
        "veto_facts": [],
        **fields,
    }


SURVEY = dt.date(2026, 6, 1)


def fields_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(archive.ArchiveInvalid) as caught:
        archive.parse(doc, surveyed_on=SURVEY)
    return [p.field for p in caught.value.problems]


def test_a_full_survey_parses_and_round_trips_with_decimal_strings():
    content = archive.parse(document(), surveyed_on=SURVEY)
    stored = archive.to_document(content)
    assert stored["cultivated_land_mu"] == "12.50"
    assert stored["crops"][0]["area_mu"] == "10"
    assert archive.parse(stored, surveyed_on=SURVEY) == content


def test_derived_figures():
    figures = archive.summary(archive.parse(document(), surveyed_on=SURVEY))
    assert figures.total_income_fen == 10_000_000
    assert figures.bank_debt_fen == 5_000_000
    assert figures.informal_debt_fen == 1_000_000
    assert figures.total_debt_fen == 6_000_000
    assert figures.total_assets_fen == 35_000_000
    assert figures.net_worth_fen == 29_000_000
    assert figures.debt_to_income == Decimal("0.6000")
    assert figures.land_per_labourer_mu == Decimal("6.25")
    assert figures.livestock_heads == 20
    assert figures.subsidies_fen == 150_000
    assert figures.vetoed is False


def test_figures_without_income_or_labour_are_none_not_a_division_by_zero():
    content = archive.parse(document(labour_count=0, income=None), surveyed_on=SURVEY)
    assert archive.debt_to_income(content) is None
    assert archive.land_per_labourer_mu(content) is None
    assert archive.total_income_fen(content) == 0


def test_a_veto_fact_marks_the_household_and_needs_a_note():
    content = archive.parse(
        document(veto_facts=[{"kind": "lawsuit", "note": "2025 民事判决, 被告"}]),
        surveyed_on=SURVEY,
    )
    assert archive.summary(content).vetoed is True
    assert fields_of(document(veto_facts=[{"kind": "bad_loan"}])) == ["veto_facts.0.note"]
    assert fields_of(document(veto_facts=[{"kind": "theft", "note": "x"}])) == ["veto_facts.0.kind"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cultivated_land_mu": 12.5}, "cultivated_land_mu"),  # a float: refused
        ({"cultivated_land_mu": "12.345"}, "cultivated_land_mu"),  # three places
        ({"forest_land_mu": "-1"}, "forest_land_mu"),
        ({"forest_land_mu": "abc"}, "forest_land_mu"),
        ({"forest_land_mu": True}, "forest_land_mu"),
        ({"member_count": -1}, "member_count"),
        ({"member_count": "4"}, "member_count"),  # counts are JSON integers
        ({"income": {"year": 2025, "wages": 10.5}}, "income.wages"),  # money is integer fen
        ({"income": {"year": 2025, "wages": -1}}, "income.wages"),
        ({"debts": [{"lender_kind": "bank", "lender": "x"}]}, "debts.0.amount_fen"),
        (
            {"debts": [{"lender_kind": "loan shark", "lender": "x", "amount_fen": 1}]},
            "debts.0.lender_kind",
        ),
        ({"crops": [{"crop": "", "area_mu": "1"}]}, "crops.0.crop"),
        ({"entity_flags": ["collective_farm"]}, "entity_flags.0"),
        ({"house": {"structure": "igloo", "floor_area_m2": "10"}}, "house.structure"),
        ({"subsidies": [{"subsidy_type": "x", "year": 1850, "amount_fen": 1}]}, "subsidies.0.year"),
        ({"surprise": 1}, "surprise"),  # unknown fields are errors, not dropped
        ({"crops": [{"crop": "玉米\x00", "area_mu": "1"}]}, "crops.0.crop"),
    ],
)
def test_schema_errors_name_the_field_path(changes, field):
    assert field in fields_of(document(**changes))


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"labour_count": 5}, ["labour_count"]),
        ({"rented_in_land_mu": "13"}, ["rented_in_land_mu"]),
        ({"crops": [{"crop": "玉米", "area_mu": "26"}]}, ["crops"]),
        (
            {"crops": [{"crop": "玉米", "area_mu": "5"}, {"crop": "玉米", "area_mu": "5"}]},
            ["crops.0.crop", "crops.1.crop"],
        ),
        (
            {"livestock": [{"species": "cattle", "head_count": 1, "ear_tags": ["C1", "C2"]}]},
            ["livestock.0.ear_tags"],
        ),
        (
            {
                "livestock": [
                    {"species": "cattle", "head_count": 2, "ear_tags": ["T1"]},
                    {"species": "sheep", "head_count": 2, "ear_tags": ["T1"]},
                ]
            },
            ["livestock.1.ear_tags.0"],
        ),
        ({"entity_flags": ["family_farm", "family_farm"]}, ["entity_flags"]),
        (
            {"machinery": [{"kind": "收割机", "purchase_year": 2027}]},
            ["machinery.0.purchase_year"],
        ),
        ({"income": {"year": 2027}}, ["income.year"]),
        (
            {
                "subsidies": [
                    {"subsidy_type": "农机购置补贴", "year": 2025, "amount_fen": 1},
                    {"subsidy_type": "农机购置补贴", "year": 2025, "amount_fen": 2},
                ]
            },
            ["subsidies.1"],
        ),
    ],
)
def test_cross_field_rules_name_every_broken_field(changes, fields):
    assert fields_of(document(**changes)) == fields


def test_two_harvests_a_year_may_plant_the_land_twice():
    twice = document(
        crops=[{"crop": "小麦", "area_mu": "12.5"}, {"crop": "玉米", "area_mu": "12.5"}]
    )
    assert archive.parse(twice, surveyed_on=SURVEY).crops[1].area_mu == Decimal("12.5")


def test_without_a_survey_date_future_years_are_not_judged():
    assert archive.parse(document(income={"year": 2030}), surveyed_on=None).income is not None


def test_the_empty_survey_needs_members_and_labour():
    assert fields_of({}) == ["member_count", "labour_count"]
    minimal = archive.parse({"member_count": 1, "labour_count": 0})
    assert archive.summary(minimal).total_debt_fen == 0


def test_pick_default_account_prefers_the_marked_open_one():
    import uuid
    from dataclasses import dataclass

    from huinong.parties.households.service import pick_default_account

    @dataclass
    class Acc:
        id: uuid.UUID
        closed: bool

    first, second, third = (
        Acc(uuid.uuid4(), False),
        Acc(uuid.uuid4(), False),
        Acc(uuid.uuid4(), True),
    )
    assert pick_default_account([first, second], None) is first
    assert pick_default_account([first, second], second.id) is second
    assert pick_default_account([third, second], third.id) is second  # marked but closed
    assert pick_default_account([third], None) is None


def test_member_id_numbers_are_marked_ciphertexts_that_key_rotation_finds():
    from huinong.migrations.metadata import metadata
    from huinong.security.personal_data import classification
    from huinong.security.personal_data import service as personal_data

    tables = {t.name: t for t in personal_data.encrypted_tables(metadata)}
    members = tables["household_members"]
    assert [field for field, _ in members.fields] == ["id_number"]
    assert members.version_column.name == "data_key_version"
    assert classification.classify("id_number").is_sensitive
    # The archive document itself holds no identifiers: none of its fields is C2/C3.
    assert not {"id_number", "phone", "card_number"} & set(archive.ArchiveContent.model_fields)
