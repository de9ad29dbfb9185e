"""What a village survey file looks like: its columns, the words it may use, and the reading of
one cell — the vocabulary of :mod:`huinong.credit.campaigns.survey`.

Headers are matched after stripping and lower-casing; each column accepts its English name
(with ``_`` or a space) and its Chinese names, bare or followed by the unit in ASCII or
full-width brackets (``耕地面积``, ``耕地面积(亩)``, ``耕地面积（亩）``), because that is how
people title spreadsheet columns. The members sheet also accepts the plain headers 姓名,
身份证号, 联系电话: on that sheet the person is the row's own. The one-table shape cannot, since
there 联系电话 is the household's phone.

Cells are read as people type them: counts as whole numbers, areas in mu with at most two
decimals, money in yuan with at most two decimals (thousands separators and a ¥ allowed) and
converted once to fen, yes/no as 是/否 (also 有/无, y/n, 1/0, √/×; blank is no), dates as
2026-06-01, 2026/6/1 or 2026年6月1日. A cell that does not read records a :class:`RowProblem`
and gives ``None``; the row is then left out, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from huinong import tabular
from huinong.errors import InvalidInput
from huinong.money import MAX_FEN, Money
from huinong.parties import rules as party_rules
from huinong.parties.households import archive

ERROR_PREFIX = "credit.survey"
MAX_BYTES = 32 * 1024 * 1024
MAX_ROWS = 100_000  # a village has hundreds of households; a town's file fits easily
MAX_NAME = 50
MAX_NOTE = 500


def _headers(canonical: str, *chinese: str, unit: str | None = None) -> tuple[str, ...]:
    """The headers accepted for a column: its name, with spaces for underscores, and each
    Chinese name bare and followed by its unit in ASCII or full-width brackets."""
    names = [canonical, canonical.replace("_", " ")]
    for name in chinese:
        names.append(name)
        if unit is not None:
            names += [f"{name}({unit})", f"{name}（{unit}）"]
    return tuple(names)


HOUSEHOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "survey_ref": _headers("survey_ref", "户编号", "调查编号"),
    "village_code": _headers("village_code", "村代码", "村级区划代码", "行政区划代码"),
    "surveyed_on": _headers("surveyed_on", "调查日期"),
    "head_name": _headers("head_name", "户主姓名"),
    "head_id_number": _headers("head_id_number", "户主身份证号", "户主身份证号码"),
    "phone": _headers("phone", "联系电话", "户主电话", "手机号"),
    # The number of the consent form (授权书) the head signed at the survey: with it the import
    # records the consent the archive is collected under.
    "consent_reference": _headers("consent_reference", "授权书编号"),
    "member_count": _headers("member_count", "家庭人口", "人口数", unit="人"),
    "labour_count": _headers("labour_count", "劳动力", "劳动力人数", unit="人"),
    "cultivated_land_mu": _headers("cultivated_land_mu", "耕地面积", "耕地", unit="亩"),
    "rented_in_land_mu": _headers("rented_in_land_mu", "流转入面积", "流转入土地", unit="亩"),
    "forest_land_mu": _headers("forest_land_mu", "林地面积", "林地", unit="亩"),
    "main_crops": _headers("main_crops", "主要作物"),
    "pigs": _headers("pigs", "生猪", "猪", unit="头"),
    "cattle": _headers("cattle", "牛", unit="头"),
    "sheep": _headers("sheep", "羊", "绵羊", unit="只"),
    "goats": _headers("goats", "山羊", unit="只"),
    "poultry": _headers("poultry", "家禽", unit="只"),
    "income_year": _headers("income_year", "收入年度"),
    "planting_income": _headers("planting_income", "种植收入", unit="元"),
    "breeding_income": _headers("breeding_income", "养殖收入", unit="元"),
    "wage_income": _headers("wage_income", "务工收入", "工资性收入", unit="元"),
    "business_income": _headers("business_income", "经商收入", "经营收入", unit="元"),
    "transfer_income": _headers("transfer_income", "转移性收入", unit="元"),
    "other_income": _headers("other_income", "其他收入", unit="元"),
    "deposits": _headers("deposits", "存款", unit="元"),
    "house_value": _headers("house_value", "房产价值", "住房价值", unit="元"),
    "machinery_value": _headers("machinery_value", "农机具价值", "农机价值", unit="元"),
    "vehicle_value": _headers("vehicle_value", "车辆价值", unit="元"),
    "other_assets": _headers("other_assets", "其他资产", unit="元"),
    "bank_debt": _headers("bank_debt", "银行贷款", "银行负债", unit="元"),
    "informal_debt": _headers("informal_debt", "民间借贷", "民间负债", unit="元"),
    "entity_flags": _headers("entity_flags", "新型经营主体", "经营主体"),
    "veto_lawsuit": _headers("veto_lawsuit", "涉诉"),
    "veto_bad_loan": _headers("veto_bad_loan", "不良贷款"),
    "veto_gambling_or_drugs": _headers("veto_gambling_or_drugs", "涉赌涉毒"),
    "veto_note": _headers("veto_note", "否决说明", "备注"),
}
HOUSEHOLD_REQUIRED = (
    "survey_ref",
    "village_code",
    "head_name",
    "head_id_number",
    "member_count",
    "labour_count",
)
MEMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "survey_ref": HOUSEHOLD_COLUMNS["survey_ref"],
    "member_name": _headers("member_name", "成员姓名"),
    "member_id_number": _headers("member_id_number", "成员身份证号", "成员身份证号码"),
    "relationship": _headers("relationship", "与户主关系"),
    "member_phone": _headers("member_phone", "成员电话"),
}
MEMBER_REQUIRED = ("survey_ref", "member_name", "member_id_number", "relationship")
# On the members sheet the person is the row's own, so the plain headers mean the member.
_MEMBER_SHEET_EXTRA = {
    "member_name": ("姓名",),
    "member_id_number": ("身份证号", "身份证号码"),
    "relationship": ("关系",),
    "member_phone": ("联系电话", "电话", "手机号"),
}
RECORD_COLUMN = {"record": _headers("record", "记录类型", "类型")}
RECORD_KINDS = {"household": "household", "户": "household", "农户": "household"} | {
    "member": "member",
    "成员": "member",
    "家庭成员": "member",
}

HOUSEHOLDS_LAYOUT = tabular.Layout(
    ERROR_PREFIX, HOUSEHOLD_COLUMNS, HOUSEHOLD_REQUIRED, MAX_ROWS, MAX_BYTES, "survey sheet"
)
MEMBERS_LAYOUT = tabular.Layout(
    ERROR_PREFIX,
    {c: names + _MEMBER_SHEET_EXTRA.get(c, ()) for c, names in MEMBER_COLUMNS.items()},
    MEMBER_REQUIRED,
    MAX_ROWS,
    MAX_BYTES,
    "survey sheet",
)
ONE_TABLE_LAYOUT = tabular.Layout(
    ERROR_PREFIX,
    RECORD_COLUMN | HOUSEHOLD_COLUMNS | MEMBER_COLUMNS,
    ("record", *HOUSEHOLD_REQUIRED, *MEMBER_REQUIRED[1:]),
    MAX_ROWS,
    MAX_BYTES,
    "survey file",
)
HOUSEHOLD_SHEET_NAMES = ("households", "household", "农户", "农户信息", "户信息")
MEMBER_SHEET_NAMES = ("members", "member", "家庭成员", "成员", "成员信息")

# The values of huinong.parties.households.models.Relationship (mirrored: that module holds
# tables, and this one stays free of SQLAlchemy; a unit test keeps the two equal).
RELATIONSHIPS = ("head", "spouse", "child", "parent", "sibling", "grandchild", "other")
RELATIONSHIP_WORDS = {r: r for r in RELATIONSHIPS} | {
    "户主": "head",
    "配偶": "spouse",
    "妻子": "spouse",
    "丈夫": "spouse",
    "子女": "child",
    "儿子": "child",
    "女儿": "child",
    "父母": "parent",
    "父亲": "parent",
    "母亲": "parent",
    "兄弟姐妹": "sibling",
    "孙子女": "grandchild",
    "孙子": "grandchild",
    "孙女": "grandchild",
    "其他": "other",
}
ENTITY_WORDS = {e.value: e.value for e in archive.NewAgriculturalEntity} | {
    "家庭农场": "family_farm",
    "合作社成员": "cooperative_member",
    "农民专业合作社成员": "cooperative_member",
    "种养大户": "large_grower",
    "龙头企业订单户": "leading_enterprise_contract",
    "订单户": "leading_enterprise_contract",
}
YES_WORDS = frozenset({"是", "有", "y", "yes", "true", "1", "√"})
NO_WORDS = frozenset({"", "否", "无", "n", "no", "false", "0", "×"})
SPECIES_COLUMNS = {
    "pigs": "pig",
    "cattle": "cattle",
    "sheep": "sheep",
    "goats": "goat",
    "poultry": "poultry",
}
INCOME_COLUMNS = {
    "planting_income": "planting",
    "breeding_income": "breeding",
    "wage_income": "wages",
    "business_income": "business",
    "transfer_income": "transfer",
    "other_income": "other",
}
ASSET_COLUMNS = {
    "deposits": "deposits",
    "house_value": "house",
    "machinery_value": "machinery",
    "vehicle_value": "vehicles",
    "other_assets": "other",
}
DEBT_COLUMNS = {
    "bank_debt": ("bank", "银行贷款（调查合计）"),
    "informal_debt": ("informal", "民间借贷（调查合计）"),
}
VETO_COLUMNS = {
    "veto_lawsuit": "lawsuit",
    "veto_bad_loan": "bad_loan",
    "veto_gambling_or_drugs": "gambling_or_drugs",
}
LIST_SEPARATORS = re.compile(r"[;；,，、\n]+")
CROP_ITEM = re.compile(r"^(?P<crop>.*?[^\d.\s:：])\s*[:：]?\s*(?P<area>\d+(?:\.\d+)?)\s*亩?$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[T ].*)?$")
_YUAN = re.compile(r"^\d+(?:\.\d{1,2})?$")


@dataclass(frozen=True)
class RowProblem:
    """One problem of the file: where (sheet, row as the user sees it, canonical column; an
    empty column means the whole row), a stable code and what to fix."""

    sheet: str  # the sheet's name in an XLSX, "" in a CSV
    row: int
    column: str
    code: str
    message: str


@dataclass
class RowReader:
    """One data row being read: values by canonical column, and the problems found so far."""

    sheet: str
    number: int
    values: dict[str, str]
    layout: tabular.Layout
    problems: list[RowProblem] = field(default_factory=list)

    def fail(self, column: str, code: str, message: str) -> None:
        self.problems.append(
            RowProblem(self.sheet, self.number, column, f"{ERROR_PREFIX}.{code}", message)
        )

    def text(
        self, column: str, *, required: bool = False, max_length: int = MAX_NAME
    ) -> str | None:
        value = self.values.get(column, "").strip()
        if not value:
            if required:
                self.fail(column, "required", f"{self.layout.label(column)} is required")
            return None
        if len(value) > max_length:
            self.fail(column, "too_long", f"at most {max_length} characters")
            return None
        return value

    def count(self, column: str, *, required: bool = False) -> int | None:
        value = self.text(column, required=required)
        if value is None:
            return None if required else 0
        if not value.isascii() or not value.isdigit() or len(value) > 6:
            self.fail(column, "invalid_number", "a whole number, such as 3")
            return None
        return int(value)

    def mu(self, column: str) -> Decimal | None:
        value = self.text(column) or "0"
        try:
            area = Decimal(value)
        except InvalidOperation:
            area = Decimal(-1)
        if not (
            area.is_finite()
            and 0 <= area <= archive.MAX_AREA_MU
            and area == area.quantize(Decimal("0.01"))
        ):
            self.fail(column, "invalid_area", "an area in mu with at most two decimals, e.g. 12.5")
            return None
        return area

    def fen(self, column: str) -> int | None:
        value = (self.text(column) or "0").replace(",", "").replace("，", "").lstrip("¥￥")
        if not _YUAN.fullmatch(value):
            self.fail(column, "invalid_amount", "an amount in yuan with at most two decimals")
            return None
        fen = Money.from_yuan(value).amount_fen
        if fen > MAX_FEN:
            self.fail(column, "invalid_amount", "the amount is too large")
            return None
        return fen

    def yes(self, column: str) -> bool | None:
        value = self.values.get(column, "").strip().lower()
        if value in YES_WORDS:
            return True
        if value in NO_WORDS:
            return False
        self.fail(column, "invalid_yes_no", "write 是 or 否")
        return None

    def date(self, column: str) -> dt.date | None:
        value = self.text(column)
        if value is None:
            return None
        match = _DATE.fullmatch(value)
        if match is not None:
            try:
                return dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                pass
        self.fail(column, "invalid_date", "a date such as 2026-06-01")
        return None

    def id_number(self, column: str) -> str | None:
        value = self.text(column, required=True)
        if value is None:
            return None
        value = value.upper()
        if not party_rules.is_valid_resident_id(value):
            self.fail(
                column,
                "invalid_id_number",
                "not a valid 18-character resident ID number (GB 11643): check the last "
                "character and the birth date",
            )
            return None
        return value

    def phone(self, column: str) -> str | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            return party_rules.check_phone(value)
        except InvalidInput:
            self.fail(column, "invalid_phone", "a mobile number is 11 digits starting with 1")
            return None
