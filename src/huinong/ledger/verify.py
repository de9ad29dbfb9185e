"""``huinong ledger verify``: prove the stored ledger obeys the invariants of ``engine.py``.

Checks, for every institution and ledger, and reports every offending id:

* ``unbalanced``: the sum of debits differs from the sum of credits (posted or pending);
* ``balance_mismatch``: an account's stored balances differ from the sums of its transfers;
* ``limit_broken``: an account breaks its ``*_must_not_exceed_*`` flag;
* ``cross_ledger``: a transfer whose accounts are not both of its institution and ledger;
* ``pending_state``: a pending transfer's recorded state disagrees with its resolving
  transfer (or lack of one).

Each check is a set-based query, so the cost is a few scans however large the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from huinong.ledger.models import Account, PendingTransfer, Transfer
from huinong.ledger.service import transfer_sums


@dataclass(frozen=True)
class Problem:
    check: str
    ids: tuple[str, ...]
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {', '.join(self.ids)}: {self.detail}"


def verify(session: Session, *, institution_id: uuid.UUID | None = None) -> list[Problem]:
    problems: list[Problem] = []
    accounts = select(
        Account.institution_id,
        Account.ledger,
        Account.id,
        Account.debits_pending,
        Account.debits_posted,
        Account.credits_pending,
        Account.credits_posted,
        Account.debits_must_not_exceed_credits,
        Account.credits_must_not_exceed_debits,
    )
    if institution_id is not None:
        accounts = accounts.where(Account.institution_id == institution_id)
    sums = transfer_sums(session)
    # Totals are added up here in Python integers: SQLite's sum() stops at 2^63 - 1, and a
    # ledger's total may pass that while every account stays within it.
    totals: dict[tuple[uuid.UUID, str], list[int]] = {}
    for row in session.execute(accounts):
        inst, ledger, account_id, dp, dpo, cp, cpo, no_overdraft, no_overcredit = row
        total = totals.setdefault((inst, ledger), [0, 0, 0, 0])
        for index, value in enumerate((dp, dpo, cp, cpo)):
            total[index] += value
        expected = sums.get(account_id, (0, 0, 0, 0))
        if (dp, dpo, cp, cpo) != expected:
            problems.append(
                Problem(
                    "balance_mismatch",
                    (str(account_id),),
                    f"stored {(dp, dpo, cp, cpo)} but transfers sum to {expected} "
                    "(debits pending, debits posted, credits pending, credits posted)",
                )
            )
        if no_overdraft and dp + dpo > cpo:
            problems.append(Problem("limit_broken", (str(account_id),), "debits exceed credits"))
        if no_overcredit and cp + cpo > dpo:
            problems.append(Problem("limit_broken", (str(account_id),), "credits exceed debits"))
    for (inst, ledger), (dp, dpo, cp, cpo) in totals.items():
        if dpo != cpo or dp != cp:
            problems.append(
                Problem(
                    "unbalanced",
                    (str(inst), ledger),
                    f"posted debits {dpo} vs credits {cpo}; pending debits {dp} vs credits {cp}",
                )
            )
    debit = aliased(Account)
    credit = aliased(Account)
    crossing = (
        select(Transfer.id)
        .join(debit, debit.id == Transfer.debit_account_id)
        .join(credit, credit.id == Transfer.credit_account_id)
        .where(
            (debit.institution_id != Transfer.institution_id)
            | (credit.institution_id != Transfer.institution_id)
            | (debit.ledger != Transfer.ledger)
            | (credit.ledger != Transfer.ledger)
        )
    )
    if institution_id is not None:
        crossing = crossing.where(Transfer.institution_id == institution_id)
    for (transfer_id,) in session.execute(crossing):
        problems.append(
            Problem(
                "cross_ledger", (str(transfer_id),), "accounts of another institution or ledger"
            )
        )
    problems.extend(_pending_problems(session, institution_id))
    return problems


def _pending_problems(session: Session, institution_id: uuid.UUID | None) -> list[Problem]:
    pending = aliased(Transfer)
    resolver = aliased(Transfer)
    query = (
        select(
            pending.id,
            PendingTransfer.status,
            PendingTransfer.resolved_by,
            resolver.id,
            resolver.flags,
        )
        .select_from(pending)
        .outerjoin(PendingTransfer, PendingTransfer.pending_id == pending.id)
        .outerjoin(resolver, resolver.pending_id == pending.id)
        .where(pending.flags.op("&")(2) != 0)
    )
    if institution_id is not None:
        query = query.where(pending.institution_id == institution_id)
    problems = []
    for pending_id, status, resolved_by, resolver_id, resolver_flags in session.execute(query):
        if status is None:
            problems.append(Problem("pending_state", (str(pending_id),), "no state row"))
        elif (status == "pending") != (resolver_id is None) or resolved_by != resolver_id:
            problems.append(
                Problem(
                    "pending_state",
                    (str(pending_id),),
                    f"state {status} but resolving transfer {resolver_id}",
                )
            )
        elif status == "posted" and not resolver_flags & 4:
            problems.append(
                Problem("pending_state", (str(pending_id),), "marked posted but resolved by a void")
            )
    return problems
