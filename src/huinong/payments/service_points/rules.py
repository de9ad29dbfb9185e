"""Pure rules of assisted banking at village service points (助农服务点).

An institution sets its limits and its agents' pay (业务量计酬: a fixed number of fen per
operation, by kind) once; ``AgentTerms`` is that setting with the defaults a county rural bank
starts from. ``check_withdrawal`` and ``check_deposit`` decide an operation against the terms
and what the day has already seen; the daily totals are then raised atomically in the
database, so two operations at the same moment cannot both slip under a limit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from enum import StrEnum

from huinong.errors import Conflict, Forbidden, InvalidInput

PIN = re.compile(r"[0-9]{6}")
PIN_MAX_FAILURES = 3


class OperationKind(StrEnum):
    balance_inquiry = "balance_inquiry"
    assisted_withdrawal = "assisted_withdrawal"  # 助农取款
    small_deposit = "small_deposit"
    transfer = "transfer"
    bill_payment = "bill_payment"


@dataclass(frozen=True)
class AgentTerms:
    withdrawal_per_transaction: int = 100_000  # 1,000.00 yuan
    withdrawal_per_customer_day: int = 200_000
    withdrawal_per_service_point_day: int = 5_000_000
    deposits_enabled: bool = False
    deposit_per_transaction: int = 50_000
    commission_withdrawal: int = 100  # fen per operation
    commission_deposit: int = 100
    commission_transfer: int = 50
    commission_balance_inquiry: int = 0
    commission_bill_payment: int = 50

    def commission(self, kind: OperationKind) -> int:
        return {
            OperationKind.assisted_withdrawal: self.commission_withdrawal,
            OperationKind.small_deposit: self.commission_deposit,
            OperationKind.transfer: self.commission_transfer,
            OperationKind.balance_inquiry: self.commission_balance_inquiry,
            OperationKind.bill_payment: self.commission_bill_payment,
        }[kind]


def check_terms(terms: AgentTerms) -> list[tuple[str, str]]:
    """(field, problem) for each setting out of bounds; empty when the terms are sound."""
    problems = []
    for name in (
        "withdrawal_per_transaction",
        "withdrawal_per_customer_day",
        "withdrawal_per_service_point_day",
        "deposit_per_transaction",
    ):
        if getattr(terms, name) <= 0:
            problems.append((name, "a limit is a positive number of fen"))
    for name in (
        "commission_withdrawal",
        "commission_deposit",
        "commission_transfer",
        "commission_balance_inquiry",
        "commission_bill_payment",
    ):
        if getattr(terms, name) < 0:
            problems.append((name, "a commission is zero or more fen"))
    if terms.withdrawal_per_transaction > terms.withdrawal_per_customer_day:
        problems.append(
            ("withdrawal_per_transaction", "cannot exceed the per-customer daily limit")
        )
    return problems


def check_withdrawal(terms: AgentTerms, amount: int) -> None:
    if amount > terms.withdrawal_per_transaction:
        raise Conflict(
            "agents.over_transaction_limit",
            f"at most {terms.withdrawal_per_transaction} fen per withdrawal at a service point; "
            "the customer can withdraw more at an outlet",
            field="amount",
        )


def check_deposit(terms: AgentTerms, amount: int) -> None:
    if not terms.deposits_enabled:
        raise Forbidden(
            "agents.deposits_disabled",
            "this institution takes no deposits at service points; deposit at an outlet",
            field="amount",
        )
    if amount > terms.deposit_per_transaction:
        raise Conflict(
            "agents.over_deposit_limit",
            f"at most {terms.deposit_per_transaction} fen per deposit at a service point",
            field="amount",
        )


def check_pin_format(pin: str, *, field: str = "pin") -> str:
    if not PIN.fullmatch(pin):
        raise InvalidInput("agents.invalid_pin", "a PIN is six digits", field=field)
    return pin


def weak_pin(pin: str) -> bool:
    """Six equal digits or a run up or down (111111, 123456, 654321) are refused as PINs."""
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    return len(steps) == 1 and steps <= {-1, 0, 1}
