"""Money: integer fen, one currency, no floats, explicit remainders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.money import MAX_FEN, Money, MoneyError


def test_from_yuan_rounds_half_up_once():
    assert Money.from_yuan("12.345").amount_fen == 1235
    assert Money.from_yuan("12.344").amount_fen == 1234
    assert Money.from_yuan(Decimal("-0.005")).amount_fen == -1
    assert Money.from_yuan("7").amount_fen == 700


@pytest.mark.parametrize("bad", [1.5, True, "1.5", None])
def test_constructor_refuses_anything_but_int(bad):
    with pytest.raises(MoneyError):
        Money(bad)  # type: ignore[arg-type]


def test_from_yuan_refuses_float_and_garbage():
    with pytest.raises(MoneyError):
        Money.from_yuan(0.1)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money.from_yuan("abc")
    with pytest.raises(MoneyError):
        Money.from_yuan("Infinity")


def test_mixed_currencies_are_refused():
    with pytest.raises(MoneyError):
        Money(100, "CNY") + Money(100, "USD")
    with pytest.raises(MoneyError):
        Money(100, "CNY") < Money(100, "USD")  # noqa: B015


def test_bounds_are_a_signed_64_bit_integer():
    assert Money(MAX_FEN).amount_fen == MAX_FEN
    with pytest.raises(MoneyError):
        Money(MAX_FEN + 1)
    with pytest.raises(MoneyError):
        Money(MAX_FEN) + Money(1)


def test_currency_must_be_iso_code():
    with pytest.raises(MoneyError):
        Money(1, "cny")
    with pytest.raises(MoneyError):
        Money(1, "YUAN")


def test_arithmetic_and_format():
    assert Money(150) + Money(50) == Money(200)
    assert Money(150) - Money(200) == Money(-50)
    assert -Money(5) == Money(-5)
    assert Money(3) * 4 == Money(12)
    assert str(Money(123456789)) == "1,234,567.89 CNY"
    assert Money(1000).times_rate(Decimal("0.0035")) == Money(4)  # 3.5 rounds half up
    with pytest.raises(MoneyError):
        Money(1) * 1.5  # type: ignore[operator]


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=1, max_value=97))
def test_split_parts_add_up_and_only_the_last_absorbs(total, parts):
    shares = Money(total).split(parts)
    assert len(shares) == parts
    assert sum(s.amount_fen for s in shares) == total
    assert len({s.amount_fen for s in shares[:-1]}) <= 1


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False))
def test_from_yuan_is_within_half_a_fen(yuan):
    fen = Money.from_yuan(yuan).amount_fen
    assert abs(Decimal(fen) - yuan * 100) <= Decimal("0.5")
