"""The household source: facts about the head of household that no survey is needed for.

The head's age is read from the birth date that the resident identity card number carries
(GB 11643, digits 7–14), so it needs no questionnaire and cannot be mistyped apart from the
number itself, whose check character :mod:`huinong.parties.rules` verifies. The facts table
keeps the birth date, never the ID number: features must not carry personal identifiers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from huinong.credit.features.arrays import nullable_int, whole_years_since
from huinong.credit.features.catalogue import Column, FeaturesInvalid, Source, spec
from huinong.parties.rules import is_valid_resident_id

FACTS = (
    spec(
        "head_born_on", "date", "datetime64[s]",
        "birth date of the head of household, from the ID number", "户主出生日期(取自身份证号)",
        "the head is not known",
    ),
)  # fmt: skip

FEATURES = (
    spec(
        "age_years", "years", "Int64",
        "completed years of age of the head of household on the as-of date", "户主年龄(周岁)",
        "the head's birth date is not known",
    ),
)  # fmt: skip


def birth_date(id_number: str) -> dt.date:
    """The birth date in a resident identity card number, or :class:`FeaturesInvalid`."""
    number = id_number.strip().upper()
    if not is_valid_resident_id(number):
        raise FeaturesInvalid(
            "credit.features.invalid_id_number",
            "not a valid resident identity card number",
            field="head_id_number",
        )
    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def household_facts(head_id_number: str | None) -> dict[str, object]:
    return {"head_born_on": None if head_id_number is None else birth_date(head_id_number)}


def _compute(facts: pd.DataFrame, as_of: dt.date) -> Mapping[str, Column]:
    age, missing = whole_years_since(facts["head_born_on"], as_of)
    return {"age_years": nullable_int(age, missing)}


SOURCE = Source("household", FACTS, FEATURES, _compute)
