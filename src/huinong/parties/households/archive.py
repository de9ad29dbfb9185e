"""The household archive (双基联动 农户经济档案): its content model, rules and derived figures.

A rural bank's account manager and the village committee survey each household together
(双基联动: the bank's grass-roots outlet and the village's grass-roots party branch) and write
down what the household has and owes: members and labour, land and forest, crops, livestock
with their ear tags, machinery, vehicles, the house, income by source, assets, debts to banks
and to private lenders, subsidies received, whether it is a new agricultural entity (family
farm, cooperative member, large grower), honours, and the facts that veto a credit rating
outright (a lawsuit, a bad loan, gambling or drugs). That survey is the basis of the
household's credit grade in a village credit campaign (整村授信).

The content is one JSON document per survey, validated here in two steps:

1. :class:`ArchiveContent` (pydantic) checks shapes and ranges: areas are ``Decimal`` with
   at most two places, given as JSON strings (a float would lose a mu here and there, so a
   JSON number with a fraction is refused), money is integer fen, years are plausible;
2. :func:`problems` applies the rules that look across fields (labourers cannot outnumber
   members, crops cannot be planted on more land than the household works, a livestock line
   cannot list more ear tags than heads, an ear tag appears once, …) and names every problem
   by its field path (``crops.1.area_mu``), the way the API names a schema error.

Derived figures — total income, total debt, debt-to-income, land per labourer, net worth —
are pure functions of a validated document (:func:`summary`): they are computed when read,
never stored, so a rule change never leaves a stale total behind.

The document holds no identity numbers or phones: members are counted here, and named (with
their encrypted ID numbers) on the household itself. ``schema_version`` lets the model grow:
a stored document is read back with the model of its version.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from huinong.inputs import RequestModel
from huinong.money import MAX_FEN

SCHEMA_VERSION = 1
# Surveys and purchases in the archive are of living households: nothing before 1900.
EARLIEST_YEAR = 1900
# 100,000 mu (~6,700 ha) is far beyond any household; a bigger number is a typing error.
MAX_AREA_MU = Decimal("100000")


def _no_float(value: Any) -> Any:
    """Areas and yields are decimal strings: a JSON float (``2.3``) may already have lost
    precision on its way here, so only strings and whole numbers are accepted."""
    if isinstance(value, float):
        raise ValueError('give decimal quantities as strings, e.g. "12.5"')
    if isinstance(value, bool):
        raise ValueError("a quantity is a number, not true/false")
    return value


Mu = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, le=MAX_AREA_MU, max_digits=10, decimal_places=2, description="mu, as a string"),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, max_digits=14, decimal_places=2, description="decimal string"),
]
Fen = Annotated[int, Field(ge=0, le=MAX_FEN, strict=True, description="integer fen")]
Year = Annotated[int, Field(ge=EARLIEST_YEAR, le=2200, strict=True)]
Count = Annotated[int, Field(ge=0, le=100_000, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(min_length=1, max_length=500)]


class _Part(RequestModel):
    # RequestModel: no unknown fields, no control characters in any text.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(StrEnum):
    """How a version came to be."""

    field_survey = "field_survey"  # the account manager's visit (入户调查)
    campaign_import = "campaign_import"  # a village credit campaign's batch (整村授信)
    customer_update = "customer_update"  # the household reported a change itself


class Crop(_Part):
    crop: Text = Field(description="e.g. 玉米 maize, 小麦 wheat, 苹果 apple")
    area_mu: Mu
    expected_yield_kg: Quantity | None = None


class Species(StrEnum):
    pig = "pig"
    cattle = "cattle"
    sheep = "sheep"
    goat = "goat"
    poultry = "poultry"
    fish = "fish"
    other = "other"


class Livestock(_Part):
    species: Species
    head_count: Count
    # Ear tags (耳标) identify insured or mortgaged animals; not every animal carries one.
    ear_tags: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=10_000
    )
    note: Note | None = None


class Machine(_Part):
    kind: Text = Field(description="e.g. 拖拉机 tractor, 收割机 combine harvester")
    purchase_year: Year | None = None
    value_fen: Fen | None = None


class Vehicle(_Part):
    kind: Text = Field(description="e.g. 货车 truck, 三轮车 tricycle, 轿车 car")
    purchase_year: Year | None = None
    value_fen: Fen | None = None


class HouseStructure(StrEnum):
    reinforced_concrete = "reinforced_concrete"  # 钢混
    brick_concrete = "brick_concrete"  # 砖混
    brick_wood = "brick_wood"  # 砖木
    earth_wood = "earth_wood"  # 土木
    other = "other"


class House(_Part):
    structure: HouseStructure
    floor_area_m2: Quantity
    built_year: Year | None = None
    value_fen: Fen | None = None


class Income(_Part):
    """A year's income by source (家庭年收入), in fen."""

    year: Year
    planting: Fen = 0  # 种植
    breeding: Fen = 0  # 养殖
    wages: Fen = 0  # 务工
    business: Fen = 0  # 经商
    transfer: Fen = 0  # 转移性收入: subsidies, pensions, remittances
    other: Fen = 0


class AssetKind(StrEnum):
    deposits = "deposits"
    house = "house"
    machinery = "machinery"
    vehicles = "vehicles"
    livestock = "livestock"
    land_use_rights = "land_use_rights"  # 土地经营权
    other = "other"


class Asset(_Part):
    kind: AssetKind
    description: Text | None = None
    value_fen: Fen


class LenderKind(StrEnum):
    bank = "bank"
    informal = "informal"  # 民间借贷: relatives, neighbours, private lenders


class Debt(_Part):
    lender_kind: LenderKind
    lender: Text = Field(description="the bank's name, or who lent informally")
    amount_fen: Fen = Field(description="outstanding amount")
    due_on: dt.date | None = None


class SubsidyReceived(_Part):
    subsidy_type: Text = Field(description="e.g. 耕地地力保护补贴, 农机购置补贴")
    year: Year
    amount_fen: Fen


class NewAgriculturalEntity(StrEnum):
    """新型农业经营主体 the household is, or belongs to."""

    family_farm = "family_farm"  # 家庭农场
    cooperative_member = "cooperative_member"  # 农民专业合作社成员
    large_grower = "large_grower"  # 种养大户
    leading_enterprise_contract = "leading_enterprise_contract"  # 龙头企业订单户


class Honour(_Part):
    title: Text = Field(description="e.g. 文明家庭, 致富带头人")
    year: Year | None = None
    awarded_by: Text | None = None


class VetoKind(StrEnum):
    """Facts that rule out a credit rating (一票否决), named neutrally."""

    lawsuit = "lawsuit"  # an unresolved lawsuit as defendant
    bad_loan = "bad_loan"  # a non-performing or written-off loan
    gambling_or_drugs = "gambling_or_drugs"  # involvement established by the authorities
    other = "other"


class VetoFact(_Part):
    kind: VetoKind
    note: Note = Field(description="what was found and where it was established")


class ArchiveContent(_Part):
    """One survey of a household, as recorded."""

    schema_version: Literal[1] = SCHEMA_VERSION
    member_count: Count = Field(description="people living in the household")
    labour_count: Count = Field(description="members able to work (劳动力)")
    cultivated_land_mu: Mu = Decimal(0)  # 耕地, contracted and rented in
    rented_in_land_mu: Mu = Decimal(0)  # of which rented in (流转入)
    forest_land_mu: Mu = Decimal(0)  # 林地
    crops: list[Crop] = Field(default_factory=list, max_length=100)
    livestock: list[Livestock] = Field(default_factory=list, max_length=100)
    machinery: list[Machine] = Field(default_factory=list, max_length=100)
    vehicles: list[Vehicle] = Field(default_factory=list, max_length=100)
    house: House | None = None
    income: Income | None = None
    assets: list[Asset] = Field(default_factory=list, max_length=100)
    debts: list[Debt] = Field(default_factory=list, max_length=100)
    subsidies: list[SubsidyReceived] = Field(default_factory=list, max_length=200)
    entity_flags: list[NewAgriculturalEntity] = Field(default_factory=list, max_length=10)
    honours: list[Honour] = Field(default_factory=list, max_length=50)
    veto_facts: list[VetoFact] = Field(default_factory=list, max_length=20)


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field path (``crops.1.area_mu``) and what is wrong."""

    field: str
    message: str


def problems(content: ArchiveContent, *, surveyed_on: dt.date | None = None) -> list[Problem]:
    """Every cross-field rule the document breaks, in document order (empty when valid)."""
    found: list[Problem] = []

    def add(field: str, message: str) -> None:
        found.append(Problem(field, message))

    if content.labour_count > content.member_count:
        add("labour_count", "there cannot be more labourers than members")
    if content.rented_in_land_mu > content.cultivated_land_mu:
        add("rented_in_land_mu", "land rented in is part of the cultivated land, not more")
    planted = sum((c.area_mu for c in content.crops), Decimal(0))
    if content.crops and planted > content.cultivated_land_mu * 2:
        # Two harvests a year (复种) may plant the same field twice, never three times over.
        add(
            "crops",
            f"crops cover {planted} mu, more than twice the {content.cultivated_land_mu} mu "
            "cultivated",
        )
    crop_names = Counter(c.crop.strip() for c in content.crops)
    for index, crop in enumerate(content.crops):
        if crop_names[crop.crop.strip()] > 1:
            add(f"crops.{index}.crop", "each crop is listed once; add the areas together")
    seen_tags: set[str] = set()
    for index, line in enumerate(content.livestock):
        if len(line.ear_tags) > line.head_count:
            add(f"livestock.{index}.ear_tags", "more ear tags than head of livestock")
        for tag_index, tag in enumerate(line.ear_tags):
            if tag in seen_tags:
                add(f"livestock.{index}.ear_tags.{tag_index}", "this ear tag is listed twice")
            seen_tags.add(tag)
    if len(set(content.entity_flags)) != len(content.entity_flags):
        add("entity_flags", "each flag is given once")
    this_year = surveyed_on.year if surveyed_on is not None else None
    if this_year is not None:
        dated: list[tuple[str, int | None]] = [
            *(
                (f"machinery.{i}.purchase_year", m.purchase_year)
                for i, m in enumerate(content.machinery)
            ),
            *(
                (f"vehicles.{i}.purchase_year", v.purchase_year)
                for i, v in enumerate(content.vehicles)
            ),
            *((f"subsidies.{i}.year", s.year) for i, s in enumerate(content.subsidies)),
            *((f"honours.{i}.year", h.year) for i, h in enumerate(content.honours)),
        ]
        if content.house is not None:
            dated.append(("house.built_year", content.house.built_year))
        if content.income is not None:
            dated.append(("income.year", content.income.year))
        for field, year in dated:
            if year is not None and year > this_year:
                add(field, f"{year} is after the survey ({surveyed_on})")
    seen_subsidies: set[tuple[str, int]] = set()
    for index, subsidy in enumerate(content.subsidies):
        key = (subsidy.subsidy_type.strip(), subsidy.year)
        if key in seen_subsidies:
            add(f"subsidies.{index}", "this subsidy type and year is listed twice")
        seen_subsidies.add(key)
    return found


class ArchiveInvalid(ValueError):
    """A document that fails the schema or the rules; ``problems`` names every field."""

    def __init__(self, found: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in found))
        self.problems = found


def parse(document: Any, *, surveyed_on: dt.date | None = None) -> ArchiveContent:
    """A validated :class:`ArchiveContent` from a JSON-like document, or
    :class:`ArchiveInvalid` naming every bad field."""
    try:
        content = (
            document
            if isinstance(document, ArchiveContent)
            else ArchiveContent.model_validate(document)
        )
    except ValidationError as exc:
        raise ArchiveInvalid(
            [
                Problem(".".join(str(p) for p in error["loc"]) or "archive", error["msg"])
                for error in exc.errors()
            ]
        ) from None
    found = problems(content, surveyed_on=surveyed_on)
    if found:
        raise ArchiveInvalid(found)
    return content


def to_document(content: ArchiveContent) -> dict[str, Any]:
    """The JSON form stored in the database: decimals as strings, dates as ISO strings."""
    return content.model_dump(mode="json")


# --------------------------------------------------------------------------- derived figures


def total_income_fen(content: ArchiveContent) -> int:
    income = content.income
    if income is None:
        return 0
    return (
        income.planting
        + income.breeding
        + income.wages
        + income.business
        + income.transfer
        + income.other
    )


def debt_fen(content: ArchiveContent, lender_kind: LenderKind | None = None) -> int:
    return sum(
        d.amount_fen for d in content.debts if lender_kind is None or d.lender_kind is lender_kind
    )


def total_assets_fen(content: ArchiveContent) -> int:
    return sum(a.value_fen for a in content.assets)


def debt_to_income(content: ArchiveContent) -> Decimal | None:
    """Outstanding debt over a year's income, to 4 places; ``None`` without income."""
    income = total_income_fen(content)
    if income == 0:
        return None
    return (Decimal(debt_fen(content)) / Decimal(income)).quantize(Decimal("0.0001"))


def land_per_labourer_mu(content: ArchiveContent) -> Decimal | None:
    """Cultivated mu per labourer, to 2 places; ``None`` when nobody works the land."""
    if content.labour_count == 0:
        return None
    return (content.cultivated_land_mu / content.labour_count).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Summary:
    total_income_fen: int
    bank_debt_fen: int
    informal_debt_fen: int
    total_debt_fen: int
    total_assets_fen: int
    net_worth_fen: int
    debt_to_income: Decimal | None
    land_per_labourer_mu: Decimal | None
    livestock_heads: int
    subsidies_fen: int
    vetoed: bool


def summary(content: ArchiveContent) -> Summary:
    total_debt = debt_fen(content)
    assets = total_assets_fen(content)
    return Summary(
        total_income_fen=total_income_fen(content),
        bank_debt_fen=debt_fen(content, LenderKind.bank),
        informal_debt_fen=debt_fen(content, LenderKind.informal),
        total_debt_fen=total_debt,
        total_assets_fen=assets,
        net_worth_fen=assets - total_debt,
        debt_to_income=debt_to_income(content),
        land_per_labourer_mu=land_per_labourer_mu(content),
        livestock_heads=sum(line.head_count for line in content.livestock),
        subsidies_fen=sum(s.amount_fen for s in content.subsidies),
        vetoed=bool(content.veto_facts),
    )
