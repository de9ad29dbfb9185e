"""Resident ID numbers, credit codes and phones (masks: tests/unit/test_masking.py)."""

from __future__ import annotations

import pytest

from huinong.errors import InvalidInput
from huinong.parties import rules

VALID_ID = "11010519491231002X"  # the GB 11643 example number


def test_resident_id_check_character():
    assert rules.resident_id_check_char(VALID_ID[:17]) == "X"
    assert rules.is_valid_resident_id(VALID_ID)
    assert rules.is_valid_resident_id(VALID_ID.lower())
    assert not rules.is_valid_resident_id("110105194912310021")  # wrong check char
    assert not rules.is_valid_resident_id("110105194902300024")  # 30 February
    assert not rules.is_valid_resident_id("11010519491231002")  # too short


def test_unified_social_credit_code():
    body = "91350100M000100Y4"
    code = body + rules.uscc_check_char(body)
    assert rules.is_valid_uscc(code)
    assert code == "91350100M000100Y43"  # a published example
    assert not rules.is_valid_uscc(body + "0")
    assert not rules.is_valid_uscc("I1350100M000100Y43")  # I is not in the alphabet


def test_check_id_number_by_kind():
    assert rules.check_id_number("individual", VALID_ID.lower()) == VALID_ID
    with pytest.raises(InvalidInput) as raised:
        rules.check_id_number("merchant", VALID_ID)
    assert raised.value.code == "parties.invalid_id_number"
    assert raised.value.field == "id_number"


def test_phone():
    assert rules.check_phone("138 0013 8000") == "13800138000"
    assert rules.check_phone(None) is None
    for bad in ("12800138000", "1380013800", "+8613800138000"):
        with pytest.raises(InvalidInput):
            rules.check_phone(bad)


def test_normalise_id_number_for_lookup():
    assert rules.normalise_id_number(" " + VALID_ID.lower() + " ") == VALID_ID
    assert rules.normalise_id_number("91350100m000100y43") == "91350100M000100Y43"
    with pytest.raises(InvalidInput) as raised:
        rules.normalise_id_number("110105194912310021")
    assert raised.value.field == "id_number"
