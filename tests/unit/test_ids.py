"""UUIDv7 ordering and Luhn check digits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from huinong.ids import luhn_check_digit, luhn_is_valid, uuid7


def test_uuid7_has_version_and_variant_and_increases():
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert all(i.variant == "specified in RFC 4122" for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_luhn_known_numbers():
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_is_valid("79927398713")
    assert not luhn_is_valid("79927398710")
    assert not luhn_is_valid("7")
    assert not luhn_is_valid("12a4")


@given(st.text(alphabet="0123456789", min_size=1, max_size=30), st.data())
def test_luhn_catches_any_single_digit_error(body, data):
    number = body + luhn_check_digit(body)
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert luhn_is_valid(number)
    assert not luhn_is_valid(number[:position] + wrong + number[position + 1 :])
