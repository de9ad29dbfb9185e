"""The archive source: facts and features from the household archive (农户经济档案).

Which survey counts: the latest version surveyed on or before ``as_of`` (ties: the last one
given, so the caller passes versions in the order they were recorded). A version surveyed
after ``as_of`` is never read — not even for a field the older one lacks — so a back-dated
decision sees exactly what the bank knew then.

Subsidies are the one exception to "the latest version only": a survey lists the subsidies
the household mentions, usually the recent ones, so the five-year window is the union of
every version surveyed on or before ``as_of``, one entry per (subsidy type, year) with the
amount of the latest version that lists it. The window is the five calendar years ending with
``as_of``'s year (subsidies are recorded by year; one recorded in a survey on or before
``as_of`` was known then).

Missing versus zero: with no archive at all every archive fact is missing; with an archive
but no income section the income facts are missing (an unasked question is not a zero
income); a house without a recorded value has a missing value. Machines and vehicles without
a value add nothing to their totals (a survey often values only the main machine).

Derived figures (totals, net worth, debt-to-income, land per labourer, shares) are computed
vectorized from the facts, not stored in them, as
:func:`huinong.parties.households.archive.summary` does for one document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from huinong.credit.features.arrays import (
    floats,
    ints,
    nullable_bool,
    nullable_int,
    ratio,
    whole_months_since,
)
from huinong.credit.features.catalogue import Column, ColumnSpec, Source, spec
from huinong.parties.households.archive import (
    ArchiveContent,
    LenderKind,
    NewAgriculturalEntity,
    VetoKind,
    debt_fen,
    total_assets_fen,
)

SUBSIDY_YEARS = 5
NO_ARCHIVE = "the household has no archive surveyed on or before the as-of date"
NO_INCOME = "the archive has no income section (or none at all)"

INCOME_SOURCES = {
    "planting": ("planting (crops)", "种植收入"),
    "breeding": ("breeding (livestock)", "养殖收入"),
    "wages": ("wages from work away", "务工收入"),
    "business": ("business", "经商收入"),
    "transfer": ("transfers: subsidies, pensions, remittances", "转移性收入"),
    "other": ("other", "其他收入"),
}
VETO_MEANING = {
    VetoKind.lawsuit: ("an unresolved lawsuit as defendant", "涉诉(被告)未结"),
    VetoKind.bad_loan: ("a non-performing or written-off loan", "不良或核销贷款"),
    VetoKind.gambling_or_drugs: ("gambling or drugs established", "涉赌涉毒"),
    VetoKind.other: ("another veto fact", "其他否决事项"),
}
ENTITY_MEANING = {
    NewAgriculturalEntity.family_farm: ("is a family farm", "家庭农场"),
    NewAgriculturalEntity.cooperative_member: ("is a cooperative member", "合作社成员"),
    NewAgriculturalEntity.large_grower: ("is a large grower", "种养大户"),
    NewAgriculturalEntity.leading_enterprise_contract: (
        "grows under a leading enterprise's contract",
        "龙头企业订单户",
    ),
}


def _passed_through() -> tuple[ColumnSpec, ...]:
    """Facts that are features as they are."""
    return (
        spec("member_count", "count", "Int64",
             "members living in the household", "家庭人口", NO_ARCHIVE),
        spec("labour_count", "count", "Int64", "members able to work", "劳动力人数", NO_ARCHIVE),
        spec("cultivated_land_mu", "mu", "float64",
             "cultivated land incl. rented in", "耕地面积", NO_ARCHIVE),
        spec("rented_in_land_mu", "mu", "float64", "land rented in", "流转入土地面积", NO_ARCHIVE),
        spec("forest_land_mu", "mu", "float64", "forest land", "林地面积", NO_ARCHIVE),
        spec("livestock_heads", "count", "Int64",
             "head of livestock, all species", "牲畜存栏(头/只)", NO_ARCHIVE),
        spec("machinery_value_fen", "fen", "Int64",
             "value of farm machinery (valued items)", "农机具价值", NO_ARCHIVE),
        spec("vehicle_value_fen", "fen", "Int64",
             "value of vehicles (valued items)", "车辆价值", NO_ARCHIVE),
        spec("house_value_fen", "fen", "Int64",
             "value of the house", "房屋价值", "no archive, no house or no value recorded"),
        *(
            spec(f"income_{key}_fen", "fen", "Int64",
                 f"a year's income from {en}", f"年{zh}", NO_INCOME)
            for key, (en, zh) in INCOME_SOURCES.items()
        ),
        spec("assets_fen", "fen", "Int64", "total assets declared", "家庭资产合计", NO_ARCHIVE),
        spec("bank_debt_fen", "fen", "Int64", "outstanding debt to banks", "银行负债", NO_ARCHIVE),
        spec("informal_debt_fen", "fen", "Int64",
             "outstanding informal debt", "民间借贷负债", NO_ARCHIVE),
        spec("subsidies_5y_fen", "fen", "Int64",
             "subsidies received in the five calendar years ending with the as-of year",
             "近五年惠农补贴合计", NO_ARCHIVE),
        spec("subsidy_years_5y", "count", "Int64",
             "years of those five with any subsidy", "近五年获补贴年数", NO_ARCHIVE),
        *(
            spec(f"entity_{kind.value}", "flag", "boolean", f"the household {en}", zh, NO_ARCHIVE)
            for kind, (en, zh) in ENTITY_MEANING.items()
        ),
        spec("honours_count", "count", "Int64",
             "honours recorded, e.g. model family", "荣誉称号数", NO_ARCHIVE),
    )  # fmt: skip


PASSED_THROUGH = _passed_through()

FACTS = (
    spec("archive_surveyed_on", "date", "datetime64[s]",
         "date of the survey used", "档案调查日期", NO_ARCHIVE),
    spec("income_year", "years", "Int64",
         "the year the income section describes", "收入所属年度", NO_INCOME),
    *PASSED_THROUGH,
    *(
        spec(f"veto_{kind.value}_count", "count", "Int64",
             f"veto facts: {en}", f"否决事项:{zh}", NO_ARCHIVE)
        for kind, (en, zh) in VETO_MEANING.items()
    ),
)  # fmt: skip

FEATURES = (
    spec("archive_age_months", "months", "Int64",
         "completed months since the survey", "档案距今月数", NO_ARCHIVE),
    *PASSED_THROUGH,
    spec("labour_share", "share", "float64",
         "labourers per member", "劳动力占比", "no archive or no members"),
    spec("land_per_labourer_mu", "mu", "float64",
         "cultivated mu per labourer", "人均劳动力耕地", "no archive or no labourer"),
    spec("total_income_fen", "fen", "Int64",
         "a year's income, all sources", "家庭年收入", NO_INCOME),
    spec("income_sources_count", "count", "Int64",
         "income sources with any income", "收入来源数", NO_INCOME),
    spec("off_farm_income_share", "share", "float64",
         "wages and business over total income", "非农收入占比", "no income or zero income"),
    spec("total_debt_fen", "fen", "Int64",
         "outstanding debt, banks and informal", "负债合计", NO_ARCHIVE),
    spec("net_worth_fen", "fen", "Int64", "assets less debt", "家庭净资产", NO_ARCHIVE),
    spec("debt_to_income", "ratio", "float64",
         "outstanding debt over a year's income", "负债收入比", "no income or zero income"),
    spec("veto_count", "count", "Int64", "veto facts of any kind", "一票否决事项数", NO_ARCHIVE),
    *(
        spec(f"veto_{kind.value}", "flag", "boolean", f"has {en}", f"存在{zh}", NO_ARCHIVE)
        for kind, (en, zh) in VETO_MEANING.items()
    ),
)  # fmt: skip


def archive_facts(
    versions: Iterable[tuple[dt.date, ArchiveContent]], as_of: dt.date
) -> dict[str, object]:
    """The archive facts of one household as of ``as_of`` (all ``None`` without an archive)."""
    usable = sorted(
        ((on, content) for on, content in versions if on <= as_of), key=lambda v: v[0]
    )  # stable: equal dates keep the caller's order
    if not usable:
        return {column.name: None for column in FACTS}
    surveyed_on, content = usable[-1]
    income = content.income if content.income and content.income.year <= as_of.year else None
    facts: dict[str, object] = {
        "archive_surveyed_on": surveyed_on,
        "income_year": None if income is None else income.year,
        "member_count": content.member_count,
        "labour_count": content.labour_count,
        "cultivated_land_mu": float(content.cultivated_land_mu),
        "rented_in_land_mu": float(content.rented_in_land_mu),
        "forest_land_mu": float(content.forest_land_mu),
        "livestock_heads": sum(line.head_count for line in content.livestock),
        "machinery_value_fen": sum(m.value_fen or 0 for m in content.machinery),
        "vehicle_value_fen": sum(v.value_fen or 0 for v in content.vehicles),
        "house_value_fen": None if content.house is None else content.house.value_fen,
        "assets_fen": total_assets_fen(content),
        "bank_debt_fen": debt_fen(content, LenderKind.bank),
        "informal_debt_fen": debt_fen(content, LenderKind.informal),
        "honours_count": len(content.honours),
    }
    for key in INCOME_SOURCES:
        facts[f"income_{key}_fen"] = None if income is None else getattr(income, key)
    for kind in VetoKind:
        facts[f"veto_{kind.value}_count"] = sum(v.kind is kind for v in content.veto_facts)
    for entity in NewAgriculturalEntity:
        facts[f"entity_{entity.value}"] = entity in content.entity_flags
    first_year = as_of.year - SUBSIDY_YEARS + 1
    subsidies: dict[tuple[str, int], int] = {}
    for _, version in usable:  # oldest first: a later survey's amount wins
        for subsidy in version.subsidies:
            if first_year <= subsidy.year <= as_of.year:
                subsidies[(subsidy.subsidy_type.strip(), subsidy.year)] = subsidy.amount_fen
    facts["subsidies_5y_fen"] = sum(subsidies.values())
    facts["subsidy_years_5y"] = len({year for _, year in subsidies})
    return facts


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    out: dict[str, Column] = {column.name: facts[column.name] for column in PASSED_THROUGH}
    age, no_archive = whole_months_since(facts["archive_surveyed_on"], as_of)
    out["archive_age_months"] = nullable_int(age, no_archive)

    members, _ = ints(facts["member_count"])
    labour, _ = ints(facts["labour_count"])
    out["labour_share"] = ratio(labour, members)
    out["land_per_labourer_mu"] = ratio(floats(facts["cultivated_land_mu"]), labour)

    income = {key: ints(facts[f"income_{key}_fen"]) for key in INCOME_SOURCES}
    no_income = income["planting"][1]
    total_income = sum(values for values, _ in income.values())
    out["total_income_fen"] = nullable_int(total_income, no_income)
    sources = sum((values > 0).astype(np.int64) for values, _ in income.values())
    out["income_sources_count"] = nullable_int(sources, no_income)
    off_farm = income["wages"][0] + income["business"][0]
    total_or_nan = np.where(no_income, np.nan, total_income)
    out["off_farm_income_share"] = ratio(off_farm, total_or_nan)

    bank, _ = ints(facts["bank_debt_fen"])
    informal, _ = ints(facts["informal_debt_fen"])
    assets, _ = ints(facts["assets_fen"])
    debt = bank + informal
    out["total_debt_fen"] = nullable_int(debt, no_archive)
    out["net_worth_fen"] = nullable_int(assets - debt, no_archive)
    out["debt_to_income"] = ratio(debt, total_or_nan)

    vetoes = 0
    for kind in VetoKind:
        count, _ = ints(facts[f"veto_{kind.value}_count"])
        vetoes = vetoes + count
        out[f"veto_{kind.value}"] = nullable_bool(count > 0, no_archive)
    out["veto_count"] = nullable_int(vetoes + np.zeros(len(facts), np.int64), no_archive)
    return out


SOURCE = Source("archive", FACTS, FEATURES, _compute)
