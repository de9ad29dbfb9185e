"""The household survey file of a village credit campaign (入户调查表), read and checked per row.

Account managers and village cadres survey every household offline and bring back a
spreadsheet. This module turns that file into household archives
(:class:`~huinong.parties.households.archive.ArchiveContent`) with their members, and lists
every problem by sheet, row and column, so the account manager can fix the file and send it
again. It writes nothing: the campaign service decides what to import.

Two shapes are read, with the same columns (Chinese headers and English names both accepted,
see :mod:`.survey_format`):

* **XLSX with two sheets**, ``households`` (农户) — one row per household — and ``members``
  (家庭成员) — one row per person, the head included. Sheets are found by name, else the first
  two sheets are taken in that order.
* **One table**, a CSV (UTF-8 or GBK) or a single-sheet XLSX, with a ``record`` column
  (记录类型: ``household``/户, ``member``/成员): household rows fill the household columns,
  member rows the member columns (成员姓名, 成员身份证号, 与户主关系, 成员电话), each leaving the
  other kind's columns blank. One file, because the API and the account managers both handle
  one file more reliably than a pair that must travel together; the member columns carry a
  成员 prefix so that no header means two things in the same table.

Values in the file are as people write them: areas in mu (up to two decimals), money in yuan
(up to two decimals, converted once to integer fen), yes/no as 是/否. The income columns are
the household's income of ``income_year`` (收入年度), by default the year before the survey —
an annual survey asks about last year's income, the one year that is complete.

What is checked, per row: required values, numbers, GB 11643 resident ID numbers (checksum and
birth date), mobile numbers, the village's 12-digit statistical code (and, when the campaign
names its villages, that the village is one of them), then the archive rules themselves
(:func:`archive.parse`; its field paths are mapped back to the columns they came from). Across
rows: a survey reference used twice, an ID number appearing twice in the file (two households,
or twice in one), a member row naming an unknown household, exactly one head (户主) per
household whose ID number is the household row's, and no more listed members than the
household's member count. A household with any problem — on its own row or a member row — is
left out of :attr:`SurveyFile.households` and named in :attr:`SurveyFile.rejected`.

Faults of the whole file (encoding, unreadable spreadsheet, missing columns or sheet, no rows)
raise :class:`~huinong.errors.InvalidInput` naming ``file``; see :mod:`huinong.tabular`.
Messages never repeat an ID number or phone: the error report is a file that travels.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from huinong import tabular
from huinong.credit.campaigns.survey_format import (
    ASSET_COLUMNS,
    CROP_ITEM,
    DEBT_COLUMNS,
    ENTITY_WORDS,
    ERROR_PREFIX,
    HOUSEHOLD_SHEET_NAMES,
    HOUSEHOLDS_LAYOUT,
    INCOME_COLUMNS,
    LIST_SEPARATORS,
    MAX_NOTE,
    MEMBER_SHEET_NAMES,
    MEMBERS_LAYOUT,
    ONE_TABLE_LAYOUT,
    RECORD_KINDS,
    RELATIONSHIP_WORDS,
    SPECIES_COLUMNS,
    VETO_COLUMNS,
    RowProblem,
    RowReader,
)
from huinong.errors import InvalidInput
from huinong.parties.geography import rules as geography
from huinong.parties.households import archive


@dataclass(frozen=True)
class SurveyMember:
    row: int
    name: str
    id_number: str
    relationship: str  # a value of RELATIONSHIPS
    phone: str | None

    def __repr__(self) -> str:  # a traceback shows no ID number or phone
        return f"SurveyMember(row={self.row}, relationship={self.relationship})"


@dataclass(frozen=True)
class SurveyHousehold:
    row: int
    survey_ref: str
    village_code: str
    surveyed_on: dt.date
    head_name: str
    head_id_number: str
    phone: str | None
    consent_reference: str | None
    content: archive.ArchiveContent
    members: tuple[SurveyMember, ...]

    def __repr__(self) -> str:
        return f"SurveyHousehold(row={self.row}, survey_ref={self.survey_ref!r})"


@dataclass(frozen=True)
class SurveyFile:
    format: str  # "csv" or "xlsx"
    encoding: str | None
    households: list[SurveyHousehold]  # only the households without any problem
    problems: list[RowProblem]
    rejected: list[str]  # survey references of households left out, in file order
    household_rows: int
    member_rows: int


# --------------------------------------------------------------------------- reading the file


def parse(
    file_name: str,
    content: bytes,
    *,
    surveyed_on: dt.date,
    encoding: str | None = None,
    villages: Collection[str] | None = None,
) -> SurveyFile:
    """Read and check a survey file. ``surveyed_on`` is the survey date of rows that give
    none; ``villages``, when given, are the 12-digit codes the campaign covers."""
    tabular.check_size(content, ONE_TABLE_LAYOUT)
    used_encoding: str | None = None
    if tabular.file_format(file_name, content, error_prefix=ERROR_PREFIX) == "xlsx":
        file_format = "xlsx"
        sheets = tabular.xlsx_sheet_names(content, ERROR_PREFIX)
        if len(sheets) == 1:
            records = tabular.xlsx_records(content, ERROR_PREFIX, sheets[0])
            household_rows, member_rows = _split(sheets[0], records)
        else:
            household_sheet, member_sheet = _pick_sheets(sheets)
            household_rows = _rows(content, household_sheet, HOUSEHOLDS_LAYOUT)
            member_rows = _rows(content, member_sheet, MEMBERS_LAYOUT)
    else:
        file_format = "csv"
        text, used_encoding = tabular.decode(content, encoding, error_prefix=ERROR_PREFIX)
        household_rows, member_rows = _split("", tabular.csv_records(text, ERROR_PREFIX))
    if not household_rows:
        raise tabular.refuse(ERROR_PREFIX, "no_households", "the file has no household rows")
    households, problems, rejected = _check(
        household_rows, member_rows, surveyed_on=surveyed_on, villages=villages
    )
    return SurveyFile(
        format=file_format,
        encoding=used_encoding,
        households=households,
        problems=problems,
        rejected=rejected,
        household_rows=len(household_rows),
        member_rows=len(member_rows),
    )


def _pick_sheets(names: list[str]) -> tuple[str, str]:
    """The households and members sheets: by name, else the first sheets left, in order."""

    def named(aliases: tuple[str, ...]) -> str | None:
        return next((n for n in names if n.strip().lower() in aliases), None)

    households, members = named(HOUSEHOLD_SHEET_NAMES), named(MEMBER_SHEET_NAMES)
    rest = [n for n in names if n not in (households, members)]
    return households or rest.pop(0), members or rest.pop(0)


def _rows(content: bytes, sheet: str, layout: tabular.Layout) -> list[RowReader]:
    records = tabular.xlsx_records(content, ERROR_PREFIX, sheet)
    return [RowReader(sheet, n, v, layout) for n, v in tabular.table_rows(records, layout)]


def _split(
    sheet: str, records: Iterable[tabular.Record]
) -> tuple[list[RowReader], list[RowReader]]:
    """Household and member rows of a one-table file, by its ``record`` column; a row of
    another kind stays with the households, to be reported (and its household refused)."""
    households: list[RowReader] = []
    members: list[RowReader] = []
    for number, values in tabular.table_rows(records, ONE_TABLE_LAYOUT):
        row = RowReader(sheet, number, values, ONE_TABLE_LAYOUT)
        kind = RECORD_KINDS.get(values.get("record", "").strip().lower())
        if kind == "member":
            members.append(row)
        else:
            if kind is None:
                row.fail("record", "unknown_record_type", "the record type is 户 or 成员")
            households.append(row)
    return households, members


# --------------------------------------------------------------------------- checking the rows


@dataclass
class _Household:
    row: RowReader
    survey_ref: str
    village_code: str | None
    surveyed_on: dt.date
    head_name: str | None
    head_id_number: str | None
    phone: str | None
    consent_reference: str | None
    content: archive.ArchiveContent | None
    members: list[tuple[RowReader, SurveyMember | None]] = field(default_factory=list)


def _check(
    household_rows: list[RowReader],
    member_rows: list[RowReader],
    *,
    surveyed_on: dt.date,
    villages: Collection[str] | None,
) -> tuple[list[SurveyHousehold], list[RowProblem], list[str]]:
    drafts: dict[str, _Household] = {}
    refused: set[str] = set()
    stray: list[RowReader] = []
    for row in household_rows:
        draft = _read_household(row, surveyed_on, villages)
        if draft is None:
            stray.append(row)
        elif draft.survey_ref in drafts:
            first = drafts[draft.survey_ref].row
            row.fail(
                "survey_ref", "duplicate_household", f"this 户编号 is also on row {first.number}"
            )
            refused.add(draft.survey_ref)
        else:
            drafts[draft.survey_ref] = draft
    for row in member_rows:
        ref = row.text("survey_ref", required=True, max_length=32)
        member = _read_member(row)
        if ref is None:
            stray.append(row)
        elif ref not in drafts:
            row.fail("survey_ref", "unknown_household", "no household row has this 户编号")
            stray.append(row)
        else:
            drafts[ref].members.append((row, member))
    for draft in drafts.values():
        _check_members(draft)
    _check_duplicate_ids(drafts, refused)

    households: list[SurveyHousehold] = []
    rejected: list[str] = []
    for ref, draft in drafts.items():
        member_problems = any(member_row.problems for member_row, _ in draft.members)
        if ref in refused or draft.row.problems or member_problems:
            rejected.append(ref)
            continue
        assert draft.content is not None and draft.village_code is not None  # no problems
        assert draft.head_name is not None and draft.head_id_number is not None
        households.append(
            SurveyHousehold(
                row=draft.row.number,
                survey_ref=ref,
                village_code=draft.village_code,
                surveyed_on=draft.surveyed_on,
                head_name=draft.head_name,
                head_id_number=draft.head_id_number,
                phone=draft.phone,
                consent_reference=draft.consent_reference,
                content=draft.content,
                members=tuple(m for _, m in draft.members if m is not None),
            )
        )
    all_rows = [*household_rows, *member_rows]
    sheet_rank = {row.sheet: rank for rank, row in reversed(list(enumerate(all_rows)))}
    problems = sorted(
        (p for row in all_rows for p in row.problems), key=lambda p: (sheet_rank[p.sheet], p.row)
    )
    return households, problems, rejected


def _read_household(
    row: RowReader, default_date: dt.date, villages: Collection[str] | None
) -> _Household | None:
    ref = row.text("survey_ref", required=True, max_length=32)
    village = row.text("village_code", required=True)
    if village is not None:
        try:
            is_village = geography.level_of(village) is geography.DivisionLevel.village
        except InvalidInput:
            is_village = False
        if not is_village:
            row.fail(
                "village_code", "invalid_village_code", "the village's 12-digit statistical code"
            )
            village = None
        elif villages is not None and village not in villages:
            row.fail(
                "village_code", "village_not_in_campaign", "this village is not in the campaign"
            )
            village = None
    surveyed_on = row.date("surveyed_on") or default_date
    draft = _Household(
        row=row,
        survey_ref=ref or "",
        village_code=village,
        surveyed_on=surveyed_on,
        head_name=row.text("head_name", required=True),
        head_id_number=row.id_number("head_id_number"),
        phone=row.phone("phone"),
        consent_reference=row.text("consent_reference", max_length=64),
        content=None,
    )
    document, origins = _archive_document(row, surveyed_on)
    if document is not None and not row.problems:
        try:
            draft.content = archive.parse(document, surveyed_on=surveyed_on)
        except archive.ArchiveInvalid as invalid:
            for problem in invalid.problems:
                row.fail(_column_of(problem.field, origins), "archive_rule", problem.message)
    return draft if ref is not None else None


def _archive_document(
    row: RowReader, surveyed_on: dt.date
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The archive document of a household row, and the column each of its paths came from;
    no document when a cell did not read (its problem is already recorded)."""
    origins = {name: name for name in ("member_count", "labour_count", "cultivated_land_mu")}
    origins |= {"rented_in_land_mu": "rented_in_land_mu", "forest_land_mu": "forest_land_mu"}
    origins |= {"crops": "main_crops", "income": "income_year", "entity_flags": "entity_flags"}
    values: dict[str, Any] = {
        "member_count": row.count("member_count", required=True),
        "labour_count": row.count("labour_count", required=True),
        **{c: row.mu(c) for c in ("cultivated_land_mu", "rented_in_land_mu", "forest_land_mu")},
        "crops": _crops(row),
        "entity_flags": _entity_flags(row),
    }
    livestock = []
    for column, species in SPECIES_COLUMNS.items():
        heads = row.count(column)
        if heads:
            origins[f"livestock.{len(livestock)}"] = column
            livestock.append({"species": species, "head_count": heads})
    income: dict[str, Any] | None = None
    if any(row.values.get(c, "").strip() for c in (*INCOME_COLUMNS, "income_year")):
        year = row.count("income_year") or surveyed_on.year - 1
        income = {"year": year} | {
            source: row.fen(column) for column, source in INCOME_COLUMNS.items()
        }
        origins |= {f"income.{source}": column for column, source in INCOME_COLUMNS.items()}
    assets = []
    for column, kind in ASSET_COLUMNS.items():
        value = row.fen(column)
        if value:
            origins[f"assets.{len(assets)}"] = column
            assets.append({"kind": kind, "value_fen": value})
    debts = []
    for column, (lender_kind, lender) in DEBT_COLUMNS.items():
        value = row.fen(column)
        if value:
            origins[f"debts.{len(debts)}"] = column
            debts.append({"lender_kind": lender_kind, "lender": lender, "amount_fen": value})
    note = row.text("veto_note", max_length=MAX_NOTE) or "入户调查登记"
    vetoes = []
    for column, kind in VETO_COLUMNS.items():
        if row.yes(column):
            origins[f"veto_facts.{len(vetoes)}"] = column
            origins[f"veto_facts.{len(vetoes)}.note"] = "veto_note"
            vetoes.append({"kind": kind, "note": note})
    parts = [values, income, *livestock, *assets, *debts]
    if any(v is None for part in parts if part is not None for v in part.values()):
        return None, origins
    document = {
        **{k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()},
        "livestock": livestock,
        "income": income,
        "assets": assets,
        "debts": debts,
        "veto_facts": vetoes,
    }
    return document, origins


def _column_of(path: str, origins: dict[str, str]) -> str:
    """The column an archive field path (``livestock.1.head_count``) came from."""
    parts = path.split(".")
    for length in range(len(parts), 0, -1):
        column = origins.get(".".join(parts[:length]))
        if column is not None:
            return column
    return ""


def _crops(row: RowReader) -> list[dict[str, str]] | None:
    """``玉米:10；大豆:2.5`` (or ``玉米10亩、大豆2.5亩``) as archive crop lines."""
    text = row.text("main_crops", max_length=MAX_NOTE)
    if text is None:
        return []
    crops = []
    for item in filter(None, (part.strip() for part in LIST_SEPARATORS.split(text))):
        match = CROP_ITEM.fullmatch(item)
        if match is None:
            row.fail(
                "main_crops", "invalid_crops", "give each crop with its mu, e.g. 玉米:10；大豆:2.5"
            )
            return None
        crops.append({"crop": match["crop"].strip(), "area_mu": match["area"]})
    return crops


def _entity_flags(row: RowReader) -> list[str] | None:
    text = row.text("entity_flags", max_length=MAX_NOTE)
    if text is None:
        return []
    words = [w.strip().lower() for w in LIST_SEPARATORS.split(text) if w.strip()]
    unknown = [w for w in words if w not in ENTITY_WORDS]
    if unknown:
        row.fail(
            "entity_flags",
            "unknown_entity_flag",
            "one or more of 家庭农场, 合作社成员, 种养大户, 龙头企业订单户",
        )
        return None
    return [ENTITY_WORDS[w] for w in words]


def _read_member(row: RowReader) -> SurveyMember | None:
    name = row.text("member_name", required=True)
    id_number = row.id_number("member_id_number")
    word = row.text("relationship", required=True)
    relationship = RELATIONSHIP_WORDS.get(word.lower()) if word is not None else None
    if word is not None and relationship is None:
        row.fail(
            "relationship",
            "unknown_relationship",
            "one of 户主, 配偶, 子女, 父母, 兄弟姐妹, 孙子女, 其他",
        )
    phone = row.phone("member_phone")
    if row.problems or name is None or id_number is None or relationship is None:
        return None
    return SurveyMember(row.number, name, id_number, relationship, phone)


def _check_members(draft: _Household) -> None:
    heads = [(row, m) for row, m in draft.members if m is not None and m.relationship == "head"]
    if not heads and not any(m is None for _, m in draft.members):
        draft.row.fail("", "no_head", "no member row of this household is the head (户主)")
    for row, _ in heads[1:]:
        row.fail("relationship", "several_heads", "a household has one head (户主)")
    if heads and draft.head_id_number is not None:
        row, head = heads[0]
        if head.id_number != draft.head_id_number:
            row.fail(
                "member_id_number", "head_mismatch", "not the head's ID number on the household row"
            )
        elif draft.head_name is not None and head.name != draft.head_name:
            row.fail("member_name", "head_mismatch", "not the head's name on the household row")
    if draft.content is not None and len(draft.members) > draft.content.member_count:
        draft.row.fail(
            "member_count",
            "too_many_members",
            f"{len(draft.members)} member rows for a household of {draft.content.member_count}",
        )


def _check_duplicate_ids(drafts: dict[str, _Household], refused: set[str]) -> None:
    """An ID number names one person of one household: the head's household row and head
    member row are one occurrence, anything more is reported on every row it appears."""
    seen: defaultdict[str, list[tuple[str, RowReader, str]]] = defaultdict(list)
    for ref, draft in drafts.items():
        if draft.head_id_number is not None:
            seen[draft.head_id_number].append((ref, draft.row, "head_id_number"))
        for row, member in draft.members:
            if member is None:
                continue
            same_as_head = (
                member.relationship == "head" and member.id_number == draft.head_id_number
            )
            if not same_as_head:
                seen[member.id_number].append((ref, row, "member_id_number"))
    for occurrences in seen.values():
        if len(occurrences) < 2:
            continue
        for ref, row, column in occurrences:
            others = [
                f"row {other.number}" + (f" ({other.sheet})" if other.sheet else "")
                for _, other, _ in occurrences
                if other is not row
            ]
            listed = ", ".join(others[:3]) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            row.fail(column, "duplicate_id_number", f"the same ID number is also on {listed}")
            refused.add(ref)


# --------------------------------------------------------------------------- the error report

REPORT_HEADER = ("工作表 sheet", "行号 row", "列 column", "代码 code", "说明 message")


def problems_csv(problems: Iterable[RowProblem]) -> bytes:
    """The downloadable error report: UTF-8 with a BOM (so Excel opens it as UTF-8), one
    line per problem, the column named as the file's header names it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_HEADER)
    for p in problems:
        column = (
            ONE_TABLE_LAYOUT.label(p.column) if p.column in ONE_TABLE_LAYOUT.columns else p.column
        )
        writer.writerow([_inert(p.sheet), p.row, column, p.code, _inert(p.message)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _inert(text: str) -> str:
    """Text Excel will not run as a formula (CSV injection): a leading = + - @ is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
