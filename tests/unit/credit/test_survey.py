"""The village survey file: shapes (CSV, one-sheet and two-sheet XLSX), per-row problems, report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from huinong.credit.campaigns import survey, survey_format
from huinong.errors import InvalidInput
from huinong.parties.households.models import Relationship
from huinong.parties.rules import resident_id_check_char

DATA = Path(__file__).parents[2] / "data" / "credit"
SURVEYED_ON = dt.date(2026, 3, 1)
VILLAGE = "370281105201"


def resident_id(birth: str, sequence: int) -> str:
    first = f"370281{birth}{sequence:03d}"
    return first + resident_id_check_char(first)


HEAD = resident_id("19700101", 11)
SPOUSE = resident_id("19720202", 22)


def table(header: list[str], *rows: list[object]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue().encode()


ONE_TABLE = ["记录类型", "户编号", "村代码", "户主姓名", "户主身份证号", "家庭人口", "劳动力"]
ONE_TABLE += [
    "耕地面积(亩)",
    "流转入面积(亩)",
    "种植收入(元)",
    "成员姓名",
    "成员身份证号",
    "与户主关系",
]


def household(ref: str = "H1", **cells: object) -> list[object]:
    values: dict[str, object] = {
        "记录类型": "户",
        "户编号": ref,
        "村代码": VILLAGE,
        "户主姓名": "王建国",
        "户主身份证号": HEAD,
        "家庭人口": 2,
        "劳动力": 2,
        "耕地面积(亩)": "8",
        "流转入面积(亩)": "",
        "种植收入(元)": "12000.5",
    } | cells
    return [values.get(column, "") for column in ONE_TABLE]


def member(ref: str, name: str, id_number: str, relationship: str) -> list[object]:
    return ["成员", ref, *[""] * 8, name, id_number, relationship]


def parse(content: bytes, name: str = "survey.csv", **options: object) -> survey.SurveyFile:
    return survey.parse(name, content, surveyed_on=SURVEYED_ON, **options)  # type: ignore[arg-type]


def codes(parsed: survey.SurveyFile) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.code.removeprefix("credit.survey.")) for p in parsed.problems]


def test_the_sample_village_reads_clean() -> None:
    parsed = parse((DATA / "survey_village.csv").read_bytes())
    assert (parsed.format, parsed.encoding) == ("csv", "utf-8")
    assert parsed.problems == [] and parsed.rejected == []
    assert (parsed.household_rows, parsed.member_rows) == (12, 37)
    assert [h.survey_ref for h in parsed.households][:3] == ["GJZ-001", "GJZ-002", "GJZ-003"]
    first = parsed.households[0]
    assert (first.village_code, first.surveyed_on) == (VILLAGE, dt.date(2026, 3, 15))
    content = first.content
    assert (content.member_count, content.labour_count) == (4, 2)
    assert (content.cultivated_land_mu, content.rented_in_land_mu) == (
        Decimal("12.5"),
        Decimal("2.5"),
    )
    assert [(c.crop, c.area_mu) for c in content.crops] == [("小麦", 12.5), ("玉米", 12.5)]
    assert [(line.species, line.head_count) for line in content.livestock] == [
        ("pig", 8),
        ("poultry", 30),
    ]
    assert content.income is not None
    assert (content.income.year, content.income.planting, content.income.transfer) == (
        2025,
        4_200_000,
        320_000,
    )
    assert [(a.kind, a.value_fen) for a in content.assets][:2] == [
        ("deposits", 5_000_000),
        ("house", 30_000_000),
    ]
    assert [(d.lender_kind, d.amount_fen) for d in content.debts] == [("bank", 5_000_000)]
    assert content.entity_flags == ["cooperative_member"]
    assert [(m.name, m.relationship) for m in first.members] == [
        ("王建国", "head"),
        ("李秀英", "spouse"),
        ("王磊", "child"),
        ("王芳", "child"),
    ]
    vetoed = parsed.households[-1].content.veto_facts
    assert [(v.kind, v.note) for v in vetoed] == [
        ("lawsuit", "镇法庭民间借贷纠纷被告，2025年立案未结")
    ]


def test_the_bad_sample_names_each_kind_of_problem() -> None:
    parsed = parse((DATA / "survey_village_bad.csv").read_bytes())
    assert parsed.encoding == "gbk"
    assert [h.survey_ref for h in parsed.households] == ["BAD-01"]
    assert len(parsed.rejected) == 19 and "BAD-01" not in parsed.rejected
    found = {code for _, _, code in codes(parsed)}
    assert found == {
        "invalid_id_number",
        "invalid_phone",
        "invalid_number",
        "invalid_area",
        "invalid_amount",
        "invalid_village_code",
        "no_head",
        "several_heads",
        "duplicate_household",
        "duplicate_id_number",
        "unknown_relationship",
        "archive_rule",
        "invalid_yes_no",
        "invalid_crops",
        "head_mismatch",
        "too_many_members",
        "required",
        "invalid_date",
        "unknown_household",
        "unknown_record_type",
    }
    assert (32, "labour_count", "archive_rule") in codes(parsed)
    assert [p.row for p in parsed.problems] == sorted(p.row for p in parsed.problems)


def test_cross_row_rules() -> None:
    content = table(
        ONE_TABLE,
        household("H1"),
        member("H1", "王建国", HEAD, "户主"),
        member("H1", "李秀英", SPOUSE, "配偶"),
        household("H2", 户主身份证号=SPOUSE, 户主姓名="李秀英"),
        member("H2", "李秀英", SPOUSE, "户主"),
        member("H3", "无名", resident_id("19900101", 33), "户主"),
        household("H4", 户主身份证号=resident_id("19800101", 44), 家庭人口=1, 劳动力=1),
    )
    parsed = parse(content)
    assert codes(parsed) == [
        (4, "member_id_number", "duplicate_id_number"),
        (5, "head_id_number", "duplicate_id_number"),
        (7, "survey_ref", "unknown_household"),
        (8, "", "no_head"),
    ]
    assert parsed.households == [] and parsed.rejected == ["H1", "H2", "H4"]


def test_archive_rules_are_reported_at_their_column() -> None:
    content = table(
        ONE_TABLE,
        household("H1", **{"耕地面积(亩)": "5", "流转入面积(亩)": "6"}),
        member("H1", "王建国", HEAD, "户主"),
    )
    assert codes(parse(content)) == [(2, "rented_in_land_mu", "archive_rule")]


def test_villages_outside_the_campaign_are_refused() -> None:
    content = table(ONE_TABLE, household("H1"), member("H1", "王建国", HEAD, "户主"))
    assert codes(parse(content, villages={"370281105270"})) == [
        (2, "village_code", "village_not_in_campaign")
    ]
    assert len(parse(content, villages={VILLAGE}).households) == 1


def test_income_is_of_the_year_before_the_survey_unless_given() -> None:
    content = table(ONE_TABLE, household("H1"), member("H1", "王建国", HEAD, "户主"))
    (found,) = parse(content).households
    assert found.content.income is not None
    assert (found.content.income.year, found.content.income.planting) == (2025, 1_200_050)
    assert found.phone is None and found.head_id_number == HEAD


def xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HOUSEHOLD_SHEET = [
    ["巩家庄村入户调查表"],
    [
        "户编号",
        "村代码",
        "户主姓名",
        "户主身份证号",
        "家庭人口（人）",
        "劳动力（人）",
        "耕地面积（亩）",
        "生猪（头）",
    ],
    ["H1", 370281105201, "王建国", HEAD, 2, 1, 12.5, 20.0],
]
MEMBER_SHEET = [
    ["户编号", "姓名", "身份证号", "与户主关系", "联系电话"],
    ["H1", "王建国", HEAD, "户主", 13905321101],
    ["H1", "李秀英", SPOUSE, "spouse", None],
]


@pytest.mark.parametrize("names", [("农户", "家庭成员"), ("Sheet1", "Sheet2")])
def test_two_sheet_xlsx_by_name_or_position(names: tuple[str, str]) -> None:
    parsed = parse(xlsx(dict(zip(names, (HOUSEHOLD_SHEET, MEMBER_SHEET), strict=True))), "s.xlsx")
    assert parsed.format == "xlsx" and parsed.problems == []
    (found,) = parsed.households
    assert found.row == 3
    assert (found.content.cultivated_land_mu, found.content.livestock[0].head_count) == (
        Decimal("12.5"),
        20,
    )
    assert [(m.relationship, m.phone) for m in found.members] == [
        ("head", "13905321101"),
        ("spouse", None),
    ]


def test_problems_on_a_members_sheet_name_the_sheet() -> None:
    members = [*MEMBER_SHEET, ["H9", "外人", resident_id("19900909", 99), "户主", None]]
    parsed = parse(xlsx({"members": members, "households": HOUSEHOLD_SHEET}), "s.xlsx")
    assert [(p.sheet, p.row, p.code) for p in parsed.problems] == [
        ("members", 4, "credit.survey.unknown_household")
    ]


def test_one_sheet_xlsx_is_read_like_the_csv() -> None:
    rows = [ONE_TABLE, household("H1"), member("H1", "王建国", HEAD, "户主")]
    parsed = parse(xlsx({"调查": rows}), "s.xlsx")
    assert [h.survey_ref for h in parsed.households] == ["H1"] and parsed.problems == []


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (table(["户编号", "户主姓名"], ["H1", "王"]), "credit.survey.missing_columns"),
        (table(ONE_TABLE, member("H1", "王建国", HEAD, "户主")), "credit.survey.no_households"),
        (table(ONE_TABLE), "credit.survey.no_rows"),
        ("户编号".encode("utf-16"), "credit.survey.wrong_encoding"),
        (b"", "credit.survey.empty_file"),
    ],
)
def test_file_level_faults_refuse_the_whole_file(content: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(content)
    assert (caught.value.code, caught.value.field) == (code, "file")


def test_the_error_report_opens_in_excel_and_quotes_formulas() -> None:
    problems = [
        survey_format.RowProblem(
            "=HYPERLINK()", 4, "head_id_number", "credit.survey.x", "-1 is wrong"
        ),
        survey_format.RowProblem("", 7, "", "credit.survey.no_head", "no head"),
    ]
    report = survey.problems_csv(problems)
    assert report.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert lines[0] == list(survey.REPORT_HEADER)
    assert lines[1] == [
        "'=HYPERLINK()",
        "4",
        "head_id_number / 户主身份证号",
        "credit.survey.x",
        "'-1 is wrong",
    ]
    assert lines[2] == ["", "7", "", "credit.survey.no_head", "no head"]


def test_relationship_values_are_the_household_model_s() -> None:
    assert set(survey_format.RELATIONSHIPS) == {r.value for r in Relationship}
    assert set(survey_format.RELATIONSHIP_WORDS.values()) == set(survey_format.RELATIONSHIPS)


def test_personal_data_stays_out_of_reprs_and_messages() -> None:
    parsed = parse((DATA / "survey_village.csv").read_bytes())
    household_ = parsed.households[0]
    assert household_.head_id_number not in repr(household_)
    assert household_.members[0].id_number not in repr(household_.members[0])
    content = (DATA / "survey_village_bad.csv").read_bytes()
    report = survey.problems_csv(parse(content).problems).decode("utf-8-sig")
    identifiers = set(re.findall(r"\b1[0-9]{6,}X?\b|\b[0-9]{17}[0-9X]\b", content.decode("gbk")))
    assert len(identifiers) > 20
    assert not [number for number in identifiers if number in report]


def test_the_sample_spreadsheet_holds_the_same_village_as_the_csv() -> None:
    def village(parsed: survey.SurveyFile) -> list[tuple[object, ...]]:
        return [
            (h.survey_ref, h.head_id_number, h.content, [(m.name, m.id_number) for m in h.members])
            for h in parsed.households
        ]

    from_csv = parse((DATA / "survey_village.csv").read_bytes())
    from_xlsx = parse((DATA / "survey_village.xlsx").read_bytes(), "survey_village.xlsx")
    assert from_xlsx.problems == [] and len(from_xlsx.households) == 12
    assert village(from_xlsx) == village(from_csv)
