"""The 12-digit statistical division code (统计用区划代码) and the import file, as pure rules.

The National Bureau of Statistics numbers every division of the mainland with 12 digits in
five segments::

    37 02 81 102 205
    |  |  |  |   └── village (村/居委会), 3 digits: 001-199 residents' committees, 200-399 villages
    |  |  |  └────── township (乡/镇/街道), 3 digits
    |  |  └───────── county (区/县/县级市), 2 digits
    |  └──────────── city (地级市/州/盟), 2 digits
    └─────────────── province, 2 digits

A division's level is its last non-zero segment, and its parent is the code with that segment
zeroed. Province, city and county codes are often written short (``37``, ``3702``,
``370281``); we store every code padded to 12 digits so that one column keys every level.
Two shapes need care: a city with no county level (东莞 ``441900``) numbers its townships
directly (``441900003000``), so a township's parent is its city when the county segment is
zero; a code with a zero city segment but something below it is never valid (counties run
by a province directly have city segment ``90``).

Villages also carry the urban/rural classification code (城乡分类代码) of the same
publication: 111 main urban area, 112 urban-rural fringe, 121 town centre, 122 town-rural
fringe, 123 special area, 210 township centre, 220 village.

:func:`parse_division_file` reads the township and village file ``huinong geo import`` takes
(CSV: code, name[, urban_rural_code]) and reports every bad row by line and column; it knows
nothing of the database, so the service hands it the codes that already exist.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from huinong.errors import InvalidInput

CODE_LENGTH = 12
NAME_MAX_LENGTH = 100


class DivisionLevel(StrEnum):
    province = "province"
    city = "city"
    county = "county"
    township = "township"
    village = "village"


LEVELS = tuple(DivisionLevel)
# How many leading digits name a division of each level (its short code).
SHORT_LENGTH = {
    DivisionLevel.province: 2,
    DivisionLevel.city: 4,
    DivisionLevel.county: 6,
    DivisionLevel.township: 9,
    DivisionLevel.village: 12,
}
URBAN_RURAL_CODES = {
    "111": "main urban area (主城区)",
    "112": "urban-rural fringe (城乡结合区)",
    "121": "town centre (镇中心区)",
    "122": "town-rural fringe (镇乡结合区)",
    "123": "special area (特殊区域)",
    "210": "township centre (乡中心区)",
    "220": "village (村庄)",
}
_DIGITS = re.compile(r"^[0-9]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidDivisionCode(InvalidInput):
    def __init__(self, message: str, *, field: str = "code") -> None:
        super().__init__("geography.invalid_code", message, field=field)


def normalise_code(text: str) -> str:
    """A division code as 12 digits: short province/city/county/township codes are padded.

    Raises :class:`InvalidDivisionCode` for anything that is not 2, 4, 6, 9 or 12 ASCII digits
    forming a valid code (see :func:`level_of`).
    """
    code = text.strip()
    if not _DIGITS.match(code) or not code.isascii():
        raise InvalidDivisionCode("a division code is made of digits only")
    if len(code) not in SHORT_LENGTH.values():
        raise InvalidDivisionCode(
            "a division code has 12 digits (or 2, 4, 6 or 9 for a province, city, county or "
            "township)"
        )
    code = code.ljust(CODE_LENGTH, "0")
    level_of(code)
    return code


def _segments(code: str) -> tuple[str, str, str, str, str]:
    return code[0:2], code[2:4], code[4:6], code[6:9], code[9:12]


def level_of(code: str) -> DivisionLevel:
    """The level of a 12-digit code: its last non-zero segment."""
    if len(code) != CODE_LENGTH or not _DIGITS.match(code) or not code.isascii():
        raise InvalidDivisionCode("a division code has exactly 12 digits here")
    province, city, county, township, village = _segments(code)
    if province == "00":
        raise InvalidDivisionCode("the province segment (digits 1-2) must not be 00")
    if city == "00" and code[4:] != "0" * 8:
        raise InvalidDivisionCode(
            "the city segment (digits 3-4) is 00 but a lower segment is not: no such division"
        )
    if village != "000":
        if township == "000":
            raise InvalidDivisionCode(
                "a village code (digits 10-12) needs its township (digits 7-9)"
            )
        return DivisionLevel.village
    if township != "000":
        return DivisionLevel.township
    if county != "00":
        return DivisionLevel.county
    if city != "00":
        return DivisionLevel.city
    return DivisionLevel.province


def parent_of(code: str) -> str | None:
    """The 12-digit code of the division one level up; ``None`` for a province.

    A township of a city without counties (东莞, 中山, 儋州 …) has the city as its parent.
    """
    level = level_of(code)
    if level is DivisionLevel.province:
        return None
    if level is DivisionLevel.township and code[4:6] == "00":
        return code[:4].ljust(CODE_LENGTH, "0")
    keep = SHORT_LENGTH[LEVELS[LEVELS.index(level) - 1]]
    return code[:keep].ljust(CODE_LENGTH, "0")


def short_code(code: str) -> str:
    """The code as people usually write it for its level (``370281`` for a county)."""
    return code[: SHORT_LENGTH[level_of(code)]]


def check_name(name: str, *, field_name: str = "name") -> str:
    """A division's name, trimmed: 1 to 100 characters, no control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput(
            "geography.name_required", "the name must not be empty", field=field_name
        )
    if len(cleaned) > NAME_MAX_LENGTH:
        raise InvalidInput(
            "geography.name_too_long",
            f"the name has more than {NAME_MAX_LENGTH} characters",
            field=field_name,
        )
    if _CONTROL.search(cleaned):
        raise InvalidInput(
            "geography.name_invalid", "the name holds control characters", field=field_name
        )
    return cleaned


def check_urban_rural_code(value: str | None, level: DivisionLevel) -> str | None:
    """The urban/rural classification code: one of the seven, and only on a village."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value not in URBAN_RURAL_CODES:
        raise InvalidInput(
            "geography.invalid_urban_rural_code",
            "the urban/rural code is one of " + ", ".join(URBAN_RURAL_CODES),
            field="urban_rural_code",
        )
    if level is not DivisionLevel.village:
        raise InvalidInput(
            "geography.urban_rural_code_on_village_only",
            "only a village carries an urban/rural classification code",
            field="urban_rural_code",
        )
    return value


# ---------------------------------------------------------------------------- the import file

# Header names we recognise, in English and as the NBS tables print them.
COLUMN_NAMES = {
    "code": "code",
    "统计用区划代码": "code",
    "区划代码": "code",
    "代码": "code",
    "name": "name",
    "名称": "name",
    "urban_rural_code": "urban_rural_code",
    "城乡分类代码": "urban_rural_code",
    "城乡分类": "urban_rural_code",
}
COLUMNS = ("code", "name", "urban_rural_code")
IMPORTABLE_LEVELS = frozenset({DivisionLevel.township, DivisionLevel.village})


@dataclass(frozen=True)
class DivisionRow:
    line: int
    code: str
    name: str
    level: DivisionLevel
    parent_code: str
    urban_rural_code: str | None


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong with the file: the line (1-based, as an editor shows it), the column,
    a stable code and a message."""

    line: int
    column: str
    code: str
    message: str


@dataclass
class ParsedFile:
    encoding: str
    rows: list[DivisionRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def bad_lines(self) -> set[int]:
        return {p.line for p in self.problems}


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding found: UTF-8 (with or without BOM), else GB 18030.

    GB 18030 is a superset of GBK and GB 2312, so one fallback reads all three; UTF-8 is tried
    first because a GBK file is almost never valid UTF-8, while the reverse is often true.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "geography.file_encoding",
            "the file is neither UTF-8 nor GBK text",
            field="file",
        ) from exc


def _is_header(cells: list[str]) -> bool:
    first = cells[0].strip().lstrip("\ufeff") if cells else ""
    return bool(first) and not _DIGITS.match(first)


def parse_division_file(
    data: bytes, *, existing: Callable[[Iterable[str]], set[str]]
) -> ParsedFile:
    """Read a township and village file and check every row.

    The file is CSV with the columns code, name and (optionally) urban_rural_code. A header
    row is optional: without one the columns are taken in that order; with one they are found
    by name (English or the NBS table's Chinese headings), so a file with the columns in
    another order, or with extra columns, is read correctly. Blank lines and lines starting
    with ``#`` are skipped (a sample file says what it is there).

    Every row is checked: the code (12 digits, a township or a village), the name, the
    urban/rural code, duplicates within the file, and that the parent exists, either in the
    file or among the codes ``existing`` reports as already stored (it is called once, with
    every parent code the file does not itself define).
    """
    text, encoding = decode(data)
    parsed = ParsedFile(encoding=encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    positions: dict[str, int] | None = None
    candidates: list[tuple[int, list[str]]] = []
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if positions is None:
            if _is_header(cells):
                positions = {}
                for index, heading in enumerate(cells):
                    key = COLUMN_NAMES.get(heading.strip().lstrip("\ufeff").lower())
                    if key is not None and key not in positions:
                        positions[key] = index
                missing = [c for c in ("code", "name") if c not in positions]
                for column in missing:
                    parsed.problems.append(
                        RowProblem(
                            line,
                            column,
                            "geography.missing_column",
                            f"the header has no {column} column",
                        )
                    )
                if missing:
                    return parsed
                continue
            positions = {column: index for index, column in enumerate(COLUMNS)}
        candidates.append((line, cells))
    if positions is None:
        positions = {column: index for index, column in enumerate(COLUMNS)}

    seen: dict[str, int] = {}
    checked: list[DivisionRow] = []
    for line, cells in candidates:

        def cell(column: str, cells: list[str] = cells) -> str | None:
            index = positions.get(column)
            return None if index is None or index >= len(cells) else cells[index]

        problems: list[RowProblem] = []
        raw_code, raw_name = cell("code"), cell("name")
        code: str | None = None
        level: DivisionLevel | None = None
        if raw_code is None or not raw_code.strip():
            problems.append(RowProblem(line, "code", "geography.missing_value", "no code"))
        else:
            try:
                code = normalise_code(raw_code)
                level = level_of(code)
            except InvalidInput as exc:
                problems.append(RowProblem(line, "code", exc.code, exc.message))
            else:
                if level not in IMPORTABLE_LEVELS:
                    problems.append(
                        RowProblem(
                            line,
                            "code",
                            "geography.level_not_importable",
                            f"a {level} code: the file holds townships and villages only "
                            "(provinces, cities and counties come from `huinong geo "
                            "load-standard`)",
                        )
                    )
                elif code in seen:
                    problems.append(
                        RowProblem(
                            line,
                            "code",
                            "geography.duplicate_code",
                            f"the code is also on line {seen[code]}",
                        )
                    )
                else:
                    seen[code] = line
        name: str | None = None
        if raw_name is None:
            problems.append(RowProblem(line, "name", "geography.missing_value", "no name"))
        else:
            try:
                name = check_name(raw_name)
            except InvalidInput as exc:
                problems.append(RowProblem(line, "name", exc.code, exc.message))
        urban_rural: str | None = None
        if level is not None:
            try:
                urban_rural = check_urban_rural_code(cell("urban_rural_code"), level)
            except InvalidInput as exc:
                problems.append(RowProblem(line, "urban_rural_code", exc.code, exc.message))
        if problems:
            parsed.problems.extend(problems)
            continue
        assert code is not None and level is not None and name is not None
        parent = parent_of(code)
        assert parent is not None
        checked.append(DivisionRow(line, code, name, level, parent, urban_rural))

    # A parent is good if the file defines it on a good row, or it is already stored.
    defined = {row.code for row in checked}
    outside = {row.parent_code for row in checked} - defined
    known = existing(sorted(outside)) if outside else set()
    for row in checked:
        if row.parent_code in defined or row.parent_code in known:
            parsed.rows.append(row)
            continue
        parsed.problems.append(
            RowProblem(
                row.line,
                "code",
                "geography.parent_missing",
                f"its parent {short_code(row.parent_code)} is neither in the file nor stored "
                "(load the standard divisions first, or add the township)",
            )
        )
    # A row whose parent was dropped above is bad too: repeat until nothing changes.
    while True:
        good = {row.code for row in parsed.rows}
        orphans = [
            r for r in parsed.rows if r.parent_code not in good and r.parent_code not in known
        ]
        if not orphans:
            break
        for row in orphans:
            parsed.rows.remove(row)
            parsed.problems.append(
                RowProblem(
                    row.line,
                    "code",
                    "geography.parent_missing",
                    f"its parent {short_code(row.parent_code)} is on a bad row of the file",
                )
            )
    parsed.problems.sort(key=lambda p: (p.line, COLUMNS.index(p.column)))
    return parsed


def level_order(level: DivisionLevel) -> int:
    return LEVELS.index(level)
