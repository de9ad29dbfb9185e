"""Pure rules of service points: terms, limits, PINs, commission by kind."""

from __future__ import annotations

import pytest

from huinong.errors import Conflict, Forbidden, InvalidInput
from huinong.payments.service_points import rules
from huinong.payments.service_points.rules import AgentTerms, OperationKind


def test_default_terms_are_sound_and_pay_by_kind() -> None:
    terms = AgentTerms()
    assert rules.check_terms(terms) == []
    assert terms.commission(OperationKind.assisted_withdrawal) == 100
    assert terms.commission(OperationKind.balance_inquiry) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"withdrawal_per_transaction": 0}, "withdrawal_per_transaction"),
        ({"deposit_per_transaction": -1}, "deposit_per_transaction"),
        ({"commission_transfer": -5}, "commission_transfer"),
        ({"withdrawal_per_transaction": 300_000}, "withdrawal_per_transaction"),
    ],
)
def test_unsound_terms_name_the_field(change: dict, field: str) -> None:
    terms = AgentTerms(**change)
    assert field in [name for name, _ in rules.check_terms(terms)]


def test_withdrawal_limit_edge() -> None:
    terms = AgentTerms(withdrawal_per_transaction=1_000)
    rules.check_withdrawal(terms, 1_000)
    with pytest.raises(Conflict) as over:
        rules.check_withdrawal(terms, 1_001)
    assert over.value.code == "agents.over_transaction_limit"


def test_deposits_off_by_default_and_limited_when_on() -> None:
    with pytest.raises(Forbidden):
        rules.check_deposit(AgentTerms(), 1)
    terms = AgentTerms(deposits_enabled=True, deposit_per_transaction=500)
    rules.check_deposit(terms, 500)
    with pytest.raises(Conflict):
        rules.check_deposit(terms, 501)


@pytest.mark.parametrize("pin", ["123456", "654321", "000000", "999999", "456789"])
def test_runs_and_repeats_are_weak(pin: str) -> None:
    assert rules.weak_pin(pin)


@pytest.mark.parametrize("pin", ["135790", "102938", "112233", "909090"])
def test_other_pins_are_not_weak(pin: str) -> None:
    assert not rules.weak_pin(pin)


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "１２３４５６", ""])
def test_pin_format(pin: str) -> None:
    with pytest.raises(InvalidInput):
        rules.check_pin_format(pin)
