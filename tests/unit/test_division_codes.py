"""The 12-digit statistical division code and the import file's checks, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.errors import InvalidInput
from huinong.parties.geography import rules
from huinong.parties.geography.rules import DivisionLevel

# -------------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("text", "code", "level", "parent"),
    [
        ("37", "370000000000", DivisionLevel.province, None),
        ("3702", "370200000000", DivisionLevel.city, "370000000000"),
        ("370281", "370281000000", DivisionLevel.county, "370200000000"),
        ("370281102", "370281102000", DivisionLevel.township, "370281000000"),
        ("370281102200", "370281102200", DivisionLevel.village, "370281102000"),
        (" 370281000000 ", "370281000000", DivisionLevel.county, "370200000000"),
        # 东莞 has no county level: its townships hang off the city.
        ("441900003", "441900003000", DivisionLevel.township, "441900000000"),
        ("441900003001", "441900003001", DivisionLevel.village, "441900003000"),
        # Counties a province runs directly sit under the city segment 90.
        ("429004", "429004000000", DivisionLevel.county, "429000000000"),
    ],
)
def test_codes_are_padded_and_know_their_level_and_parent(
    text: str, code: str, level: DivisionLevel, parent: str | None
) -> None:
    assert rules.normalise_code(text) == code
    assert rules.level_of(code) is level
    assert rules.parent_of(code) == parent
    assert rules.short_code(code) == text.strip()[: rules.SHORT_LENGTH[level]]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3",
        "370",
        "37028",
        "3702811",
        "37028110220",
        "3702811022001",
        "37028110220A",
        "３７０２８１",  # full-width digits
        "-37028",
        "000000000000",  # no province
        "00",
        "370081000000",  # a county in no city
        "370000102000",  # a township in no city
        "370281000200",  # a village in no township
    ],
)
def test_malformed_codes_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        rules.normalise_code(text)
    assert raised.value.code == "geography.invalid_code"
    assert raised.value.field == "code"


segment2 = st.integers(1, 99).map(lambda n: f"{n:02d}")
segment3 = st.integers(1, 999).map(lambda n: f"{n:03d}")


@given(segment2, segment2, segment2, segment3, segment3)
def test_every_level_walks_up_to_its_province(
    province: str, city: str, county: str, township: str, village: str
) -> None:
    code = province + city + county + township + village
    chain = []
    current: str | None = code
    while current is not None:
        chain.append(rules.level_of(current))
        current = rules.parent_of(current)
    assert chain == list(reversed(rules.LEVELS))
    assert rules.parent_of(province.ljust(12, "0")) is None


@given(st.text(max_size=14))
def test_normalise_code_either_returns_12_digits_or_refuses(text: str) -> None:
    try:
        code = rules.normalise_code(text)
    except InvalidInput:
        return
    assert len(code) == 12 and code.isdigit()
    assert rules.normalise_code(rules.short_code(code)) == code


def test_names_and_urban_rural_codes() -> None:
    assert rules.check_name("  李哥庄镇 ") == "李哥庄镇"
    for bad in ("", "   ", "x" * 101, "a\tb"):
        with pytest.raises(InvalidInput):
            rules.check_name(bad)
    assert rules.check_urban_rural_code("220", DivisionLevel.village) == "220"
    assert rules.check_urban_rural_code("", DivisionLevel.township) is None
    with pytest.raises(InvalidInput) as raised:
        rules.check_urban_rural_code("999", DivisionLevel.village)
    assert raised.value.field == "urban_rural_code"
    with pytest.raises(InvalidInput):
        rules.check_urban_rural_code("220", DivisionLevel.township)


# -------------------------------------------------------------------------------- the file

STORED = {"370281000000"}


def parse(text: str, encoding: str = "utf-8", stored: set[str] = STORED) -> rules.ParsedFile:
    return rules.parse_division_file(
        text.encode(encoding), existing=lambda codes: set(codes) & stored
    )


GOOD = """code,name,urban_rural_code
370281102000,李哥庄镇,
370281102200,港东新村村民委员会,220
370281102220,李哥庄新村村民委员会,220
"""


def test_a_good_file_reads_in_order_with_levels_and_parents() -> None:
    parsed = parse(GOOD)
    assert parsed.problems == []
    assert parsed.encoding == "utf-8"
    assert [(r.line, r.code, r.level, r.parent_code) for r in parsed.rows] == [
        (2, "370281102000", DivisionLevel.township, "370281000000"),
        (3, "370281102200", DivisionLevel.village, "370281102000"),
        (4, "370281102220", DivisionLevel.village, "370281102000"),
    ]
    assert parsed.rows[1].urban_rural_code == "220"


def test_gbk_without_header_and_with_comments_and_short_township_codes() -> None:
    text = "# sample\n\n370281102,李哥庄镇\n370281102200,港东新村村民委员会,220\n"
    parsed = parse(text, "gbk")
    assert parsed.encoding == "gbk"
    assert parsed.problems == []
    assert [r.name for r in parsed.rows] == ["李哥庄镇", "港东新村村民委员会"]
    assert parse("\ufeff" + GOOD).encoding == "utf-8-sig"


def test_header_columns_are_found_by_name_in_any_order() -> None:
    text = (
        "名称,城乡分类代码,备注,统计用区划代码\n李哥庄镇,,x,370281102000\n港东,220,,370281102200\n"
    )
    parsed = parse(text)
    assert parsed.problems == []
    assert [(r.code, r.urban_rural_code) for r in parsed.rows] == [
        ("370281102000", None),
        ("370281102200", "220"),
    ]


def test_missing_columns_are_named() -> None:
    parsed = parse("code,urban_rural_code\n370281102000,\n")
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (1, "name", "geography.missing_column")
    ]
    assert parsed.rows == []
    no_name = parse("370281102000\n")
    assert [(p.line, p.column, p.code) for p in no_name.problems] == [
        (1, "name", "geography.missing_value")
    ]


def test_every_bad_row_is_reported_by_line_and_column() -> None:
    text = """code,name,urban_rural_code
370281102000,李哥庄镇,
37028110220X,坏代码,220
370281102200,,220
370281102201,港东,999
370281000000,胶州市,
370281102200,重复,220
370281105200,没有乡镇,220
370281102202,乡镇的城乡代码,
370281106000,乡镇,121
"""
    parsed = parse(text)
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (3, "code", "geography.invalid_code"),
        (4, "name", "geography.name_required"),
        (5, "urban_rural_code", "geography.invalid_urban_rural_code"),
        (6, "code", "geography.level_not_importable"),
        (7, "code", "geography.duplicate_code"),
        (8, "code", "geography.parent_missing"),
        (10, "urban_rural_code", "geography.urban_rural_code_on_village_only"),
    ]
    assert [r.line for r in parsed.rows] == [2, 9]
    assert parsed.bad_lines == {3, 4, 5, 6, 7, 8, 10}


def test_villages_of_a_bad_township_are_bad_too() -> None:
    parsed = parse("370281102000,\n370281102200,港东,220\n")
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (1, "name", "geography.name_required"),
        (2, "code", "geography.parent_missing"),
    ]
    assert parsed.rows == []


def test_a_township_whose_county_is_not_stored_is_refused() -> None:
    parsed = parse("370283001000,某街道\n", stored=set())
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (1, "code", "geography.parent_missing")
    ]


def test_undecodable_bytes_are_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        rules.parse_division_file(b"\x81\x30\xff\xff", existing=lambda codes: set())
    assert raised.value.field == "file"
