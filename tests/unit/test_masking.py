"""Masks of personal data and the role policy deciding who sees what in full."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.security import permissions
from huinong.security.personal_data import masking
from huinong.security.principals import STAFF_ROLES, Role

VALID_ID = "11010519491231002X"  # the GB 11643 example number


def test_id_number_keeps_first_six_and_last_four():
    assert masking.mask_id_number(VALID_ID) == "110105********002X"
    assert masking.mask_id_number("91350100M000100Y43") == "913501********0Y43"
    # the birth date (characters 7-14) is always hidden
    assert "19491231" not in masking.mask_id_number(VALID_ID)


def test_phone_keeps_first_three_and_last_four():
    assert masking.mask_phone("13800138000") == "138****8000"
    assert masking.mask_phone(None) is None


def test_name_keeps_the_first_character():
    assert masking.mask_name("张三") == "张*"
    assert masking.mask_name("欧阳娜娜") == "欧***"
    assert masking.mask_name("张") == "张"


def test_account_number_keeps_first_six_and_last_four():
    assert masking.mask_account_number("6228480402564890018") == "622848*********0018"
    assert masking.mask_account_number(None) is None


def test_too_short_to_keep_both_ends_is_starred_whole():
    assert masking.mask_id_number("1234567890") == "**********"
    assert masking.mask_phone("1234567") == "*******"
    assert masking.mask("unknown_field", "secret") == "******"


@given(st.text(min_size=0, max_size=40))
def test_a_mask_never_shows_the_middle_and_keeps_the_length(value: str) -> None:
    for field, (head, tail) in {"id_number": (6, 4), "phone": (3, 4)}.items():
        masked = masking.mask(field, value)
        assert len(masked) == len(value)
        if len(value) > head + tail:
            assert masked[head : len(value) - tail] == "*" * (len(value) - head - tail)
            assert masked[:head] == value[:head] and masked[len(value) - tail :] == value[-tail:]
        else:
            assert masked == "*" * len(value)


def test_identifiers_are_masked_for_every_role_in_ordinary_responses():
    for role in Role:
        for field in ("id_number", "phone", "card_number"):
            assert not masking.shows_in_full(field, {role})
        assert masking.present("id_number", VALID_ID, {role}) == "110105********002X"
        assert masking.present("phone", "13800138000", {role}) == "138****8000"


@pytest.mark.parametrize("role", sorted(masking.SERVING_ROLES))
def test_roles_serving_the_customer_see_the_name(role: Role) -> None:
    assert masking.present("name", "王小明", {role}) == "王小明"


@pytest.mark.parametrize("role", sorted(set(Role) - masking.SERVING_ROLES))
def test_other_roles_see_the_name_masked(role: Role) -> None:
    assert masking.present("name", "王小明", {role}) == "王**"


def test_several_roles_get_the_most_any_of_them_gets():
    assert masking.present("name", "王小明", {Role.auditor, Role.teller}) == "王小明"
    assert masking.present("name", "王小明", set()) == "王**"
    assert masking.present("name", None, {Role.teller}) is None


def test_who_may_reveal_full_identifiers():
    assert masking.may_reveal("id_number", {Role.teller})
    assert masking.may_reveal("id_number", {Role.risk_officer})
    assert masking.may_reveal("phone", {Role.account_manager})
    assert not masking.may_reveal("phone", {Role.risk_officer})
    for role in (Role.admin, Role.auditor, Role.agent, Role.partner, Role.gov_viewer):
        assert not masking.may_reveal("id_number", {role})
        assert not masking.may_reveal("phone", {role})
    assert not masking.may_reveal("name", set(STAFF_ROLES))


def test_reveal_route_permission_is_exactly_the_roles_the_policy_names():
    row = permissions.PERMISSIONS[("POST", "/api/v1/customers/{customer_id}/reveal")]
    assert row == frozenset().union(*masking.REVEALABLE.values())
