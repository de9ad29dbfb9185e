"""Transfer codes (the ``code`` of a ledger transfer: why money moved) used by payments."""

from __future__ import annotations

from enum import IntEnum


class TransferCode(IntEnum):
    cash_deposit = 101
    cash_withdrawal = 102
    customer_transfer = 103
    transfer_fee = 104
    reversal = 105
    agent_commission = 106  # 业务量计酬: a service point's monthly pay, fee expense -> float
    bill_payment = 201  # a customer's deposit -> the biller's agency payable
    biller_settlement = 202  # the biller's agency payable -> clearing, after reconciliation
    subsidy_to_beneficiary = 301  # 惠农补贴: the government payer -> a beneficiary's account
    subsidy_to_suspense = 302  # … -> suspense, for a beneficiary with no account yet
    subsidy_from_suspense = 303  # suspense -> the account, once it is opened
    opening_capital = 900
