"""Transfer codes (the ``code`` of a ledger transfer: why money moved) used by payments."""

from __future__ import annotations

from enum import IntEnum


class TransferCode(IntEnum):
    cash_deposit = 101
    cash_withdrawal = 102
    customer_transfer = 103
    transfer_fee = 104
    reversal = 105
    opening_capital = 900
