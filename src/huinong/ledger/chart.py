"""The chart of accounts every institution starts with.

Codes follow the chart used by Chinese banks (《金融企业会计制度》 numbering), so an
accountant reads them at a glance: 1xxx assets, 2xxx liabilities, 3xxx clearing, 4xxx equity,
6xxx income and expense. Customer deposit accounts all carry code 2011 (吸收存款) and an
account number; the other codes have one institution-wide account each.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from huinong.ledger.types import AccountType


class AccountCode(IntEnum):
    cash_in_vault = 1001  # 库存现金
    deposits_with_central_bank = 1003  # 存放中央银行款项
    customer_deposits = 2011  # 吸收存款
    suspense = 2241  # 其他应付款 (暂收/待处理)
    clearing = 3001  # 清算资金往来
    paid_in_capital = 4001  # 实收资本
    interest_income = 6011  # 利息收入
    fee_income = 6021  # 手续费及佣金收入
    interest_expense = 6411  # 利息支出
    fee_expense = 6421  # 手续费及佣金支出


@dataclass(frozen=True)
class ChartEntry:
    code: AccountCode
    type: AccountType
    name: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


STANDARD_CHART: tuple[ChartEntry, ...] = (
    ChartEntry(
        AccountCode.cash_in_vault,
        AccountType.asset,
        "库存现金 Cash in vault",
        credits_must_not_exceed_debits=True,
    ),
    ChartEntry(
        AccountCode.deposits_with_central_bank,
        AccountType.asset,
        "存放中央银行款项 Deposits with the central bank",
    ),
    ChartEntry(AccountCode.suspense, AccountType.liability, "其他应付款 Suspense"),
    ChartEntry(AccountCode.clearing, AccountType.asset, "清算资金往来 Clearing"),
    ChartEntry(AccountCode.paid_in_capital, AccountType.equity, "实收资本 Paid-in capital"),
    ChartEntry(AccountCode.interest_income, AccountType.income, "利息收入 Interest income"),
    ChartEntry(AccountCode.fee_income, AccountType.income, "手续费及佣金收入 Fee income"),
    ChartEntry(AccountCode.interest_expense, AccountType.expense, "利息支出 Interest expense"),
    ChartEntry(AccountCode.fee_expense, AccountType.expense, "手续费及佣金支出 Fee expense"),
)
