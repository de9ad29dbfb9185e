"""Export the ledger as a beancount journal (beancount 3) that ``bean-check`` accepts.

The journal is a faithful, checkable copy of the *posted* ledger, written for people who
read beancount: an auditor can load it in Fava or run ``bean-check`` and see every balance
the bank reports proved against the transactions that make it up.

Mapping
-------
* **Header**: ``option "title"`` (the institution, or "all institutions") and one
  ``option "operating_currency"`` per ledger (currency) in use.
* **Accounts** become ``open`` directives with their currency as constraint, dated on the
  Asia/Shanghai (:data:`huinong.clock.DISPLAY_TIMEZONE`) date of ``created_at``. The name is
  ``<Root>:<institution>:<chart code>:<unique>``:

  - ``<Root>`` from the account type: ``Assets``, ``Liabilities``, ``Equity``, ``Income``,
    ``Expenses`` (beancount's five roots).
  - ``<institution>`` is the institution code with ``_`` written ``-`` (beancount allows only
    letters, digits and dashes). Should that make two codes equal (``A_B`` and ``A-B``), every
    code of the clash that contained ``_`` also gets ``-`` and the last 8 hex digits of the
    institution's id.
  - ``<chart code>`` is the code, followed by its CamelCase name when the standard chart
    (:class:`huinong.ledger.chart.AccountCode`) knows it: ``2011-CustomerDeposits``, ``1``.
  - ``<unique>`` is the account number for customer accounts (unique in the institution by
    a database constraint); other accounts use the last 12 hex digits of their id, upper
    case (the random part of a UUIDv7). Should two accounts of the same institution, type
    and code share those digits, every account after the first (by id) takes its full
    32-digit id instead, so names are always unique and do not depend on what is exported.

  Example: ``Liabilities:HNRCB:2011-CustomerDeposits:0000000000000013``,
  ``Assets:HNRCB:1001-CashInVault:8F3A0C91D2B7``. Metadata: ``huinong-id``, ``name``,
  ``account-number``, ``owner-id``, ``limit`` (the ``*_must_not_exceed_*`` flag).
* **Transfers**: one transaction (flag ``*``) per movement of posted balances, i.e. plain
  transfers and the posts of pending transfers, in the order they were applied (timestamp,
  id), dated on the Asia/Shanghai date of the timestamp. The debit account gets ``+amount``
  and the credit account ``-amount``: beancount's sign convention is debits positive, so
  an account's beancount balance is ``debits_posted - credits_posted`` whatever its type
  (liabilities, equity and income show negative numbers, as beancount users expect).
  Amounts are yuan with exactly two decimals, converted from integer fen by ``Decimal``.
  Pending transfers and voids (including expiries) change no posted balance and are left
  out; a post carries ``pending-id`` so its pending transfer can be found in Huinong.
  Metadata: ``huinong-id``, ``timestamp`` (ISO 8601, +08:00), ``code``, ``reference``,
  ``pending-id``, ``flags`` (TigerBeetle flag names), ``metadata`` (the transfer's JSON).
* **Balance assertions**: one ``balance`` per account, all dated the day after the last
  exported transaction (or the latest ``open``, if later), asserting the *stored* posted
  balance ``debits_posted - credits_posted``, with an explicit tolerance of zero
  (``123.45 ~ 0.00 CNY``): by default beancount lets a balance written with two decimals
  be off by 0.01, which would hide a one-fen error. ``bean-check`` thereby proves the stored
  balances equal the sum of the exported transfers exactly, account by account.
* **Closed accounts** get a ``close`` on the Asia/Shanghai date of ``closed_at``, written
  after the assertions. Their zero balance is asserted with the others: a beancount
  ``balance`` checks the *start* of its day, so an account emptied and closed on the same day
  can only be asserted on a later date, and beancount explicitly allows ``balance``
  directives after a ``close`` for this.

Clock skew: should a posted transfer carry a timestamp earlier than its account's
``created_at`` (or later than its ``closed_at``) — clocks of two servers, or a back-dated
load — the ``open`` (``close``) moves to that transfer's date, so the journal stays valid.
One query per side (a scan of the transfers) finds them; on a healthy ledger it returns
nothing.

Reading only: the export runs no statement that writes. When it starts the session's
transaction itself, on PostgreSQL that transaction is ``REPEATABLE READ READ ONLY``, so
accounts and transfers come from one snapshot while the bank keeps working (the balances
asserted are exactly those the exported transfers add up to) and the database itself refuses
any write. Inside a caller's transaction it reads in that transaction's isolation. (On
SQLite, ``huinong.db`` begins every transaction with ``BEGIN IMMEDIATE``: the export reads a
consistent state but holds the write lock while it runs.)

Size: transfers and accounts are streamed (``yield_per``), so memory does not grow with the
ledger; it holds the institutions, at most 100,000 cached account names, the accounts
clock skew concerns and, while names are checked for clashes, the short ids of one group of
accounts without a number. Measured on one core: 200,000 transfers in 12-19 s on PostgreSQL
and SQLite, most of it spent turning UUID columns into objects.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, TextIO

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.orm import Session, aliased

from huinong.clock import DISPLAY_TIMEZONE
from huinong.db import is_postgres
from huinong.errors import NotFound
from huinong.institutions.models import Institution
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account, Transfer
from huinong.ledger.types import AccountType, TransferFlags, flag_names

YIELD_PER = 2000
_NAME_CACHE = 100_000

ROOTS: dict[str, str] = {
    AccountType.asset.value: "Assets",
    AccountType.liability.value: "Liabilities",
    AccountType.equity.value: "Equity",
    AccountType.income.value: "Income",
    AccountType.expense.value: "Expenses",
}

_CODE_NAMES: dict[int, str] = {
    int(code): "".join(part.capitalize() for part in code.name.split("_")) for code in AccountCode
}

# beancount 3: a component after the root starts with an upper-case letter or a digit and
# holds letters, digits and dashes (we stay within ASCII); currencies as in its lexer.
_COMPONENT = re.compile(r"[A-Z0-9][A-Za-z0-9-]*")
_CURRENCY = re.compile(r"[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})

_NOT_POSTED = int(TransferFlags.pending | TransferFlags.void_pending)


def write_beancount(
    session: Session, *, out: TextIO, institution_id: uuid.UUID | None = None
) -> int:
    """Write the journal of one institution (or all) to ``out``; return the number of
    transactions written."""
    started = not session.in_transaction()
    if started and is_postgres(session):
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    try:
        return _Journal(session, out, institution_id).write()
    finally:
        if started:
            session.rollback()  # nothing was written: just end the snapshot


def yuan(fen: int) -> str:
    """``12345`` fen -> ``"123.45"``: exact, always two decimals, never through a float."""
    return format(Decimal(fen).scaleb(-2), "f")


def quote(text: str) -> str:
    """A beancount string literal."""
    return '"' + _CONTROL.sub(" ", text.translate(_ESCAPES)) + '"'


def local_day(moment: datetime) -> date:
    return moment.astimezone(DISPLAY_TIMEZONE).date()


# --------------------------------------------------------------------------- names


def institution_components(institutions: Iterable[tuple[uuid.UUID, str]]) -> dict[uuid.UUID, str]:
    """Institution id -> name component (see the module docstring)."""
    mapped: dict[uuid.UUID, str] = {}
    originals: dict[uuid.UUID, str] = {}
    for inst_id, code in institutions:
        component = code.replace("_", "-")
        if not _COMPONENT.fullmatch(component):
            component = "I" + inst_id.hex[-12:].upper()
        mapped[inst_id] = component
        originals[inst_id] = code
    clashes: dict[str, list[uuid.UUID]] = {}
    for inst_id, component in mapped.items():
        clashes.setdefault(component, []).append(inst_id)
    for ids in clashes.values():
        if len(ids) > 1:
            for inst_id in ids:
                if originals[inst_id] != mapped[inst_id]:
                    mapped[inst_id] = f"{mapped[inst_id]}-{inst_id.hex[-8:].upper()}"
    return mapped


def short_id(account_id: uuid.UUID) -> str:
    return account_id.hex[-12:].upper()


@dataclass
class _Names:
    institutions: dict[uuid.UUID, str]
    # Accounts whose short id clashed inside their (institution, type, code): full id instead.
    full_ids: set[uuid.UUID]
    # Names of recently seen accounts (a name never changes: its parts are immutable).
    cache: dict[uuid.UUID, str] = field(default_factory=dict)

    def cached(self, parts: Sequence[Any]) -> str:
        """The name of ``(id, institution_id, type, code, account_number)``."""
        name = self.cache.get(parts[0])
        if name is None:
            if len(self.cache) >= _NAME_CACHE:
                self.cache.clear()
            name = self.cache[parts[0]] = self.account(*parts)
        return name

    def account(
        self,
        account_id: uuid.UUID,
        institution_id: uuid.UUID,
        account_type: str,
        code: int,
        number: str | None,
    ) -> str:
        label = _CODE_NAMES.get(code)
        chart = f"{code}-{label}" if label else str(code)
        if number is not None:
            unique = number if _COMPONENT.fullmatch(number) else account_id.hex.upper()
        elif account_id in self.full_ids:
            unique = account_id.hex.upper()
        else:
            unique = short_id(account_id)
        return f"{ROOTS[account_type]}:{self.institutions[institution_id]}:{chart}:{unique}"


def _short_id_clashes(session: Session, institution_id: uuid.UUID | None) -> set[uuid.UUID]:
    """Accounts without a number whose short id an earlier account of the same institution,
    type and code already uses. One streamed pass; memory is one group's short ids."""
    query = (
        select(Account.id, Account.institution_id, Account.type, Account.code)
        .where(Account.account_number.is_(None))
        .order_by(Account.institution_id, Account.type, Account.code, Account.id)
    )
    if institution_id is not None:
        query = query.where(Account.institution_id == institution_id)
    clashes: set[uuid.UUID] = set()
    group: tuple[Any, ...] | None = None
    seen: set[str] = set()
    for account_id, inst_id, account_type, code in _stream(session, query):
        if (inst_id, account_type, code) != group:
            group = (inst_id, account_type, code)
            seen = set()
        short = short_id(account_id)
        if short in seen:
            clashes.add(account_id)
        seen.add(short)
    return clashes


# --------------------------------------------------------------------------- the journal


def _stream(session: Session, query: Any) -> Iterator[Row[Any]]:
    yield from session.execute(query, execution_options={"yield_per": YIELD_PER})


@lru_cache(maxsize=64)
def _currency(code: str) -> str:
    if not _CURRENCY.fullmatch(code):
        raise ValueError(f"ledger {code!r} is not a currency beancount can write")
    return code


@lru_cache(maxsize=64)
def _flags(flags: int) -> str:
    return quote(" ".join(flag_names(flags)))


_ACCOUNT_COLUMNS = (
    Account.id,
    Account.institution_id,
    Account.type,
    Account.code,
    Account.account_number,
    Account.ledger,
    Account.name,
    Account.owner_id,
    Account.debits_must_not_exceed_credits,
    Account.credits_must_not_exceed_debits,
    Account.created_at,
    Account.closed_at,
    Account.debits_posted,
    Account.credits_posted,
)


class _Journal:
    def __init__(self, session: Session, out: TextIO, institution_id: uuid.UUID | None) -> None:
        self.session = session
        self.out = out
        self.institution_id = institution_id

    # ---------------------------------------------------------------- queries

    def _scoped(self, query: Any, column: Any) -> Any:
        return query if self.institution_id is None else query.where(column == self.institution_id)

    def _accounts(self) -> Iterator[Row[Any]]:
        query = select(*_ACCOUNT_COLUMNS).order_by(
            Account.institution_id, Account.code, Account.created_at, Account.id
        )
        return _stream(self.session, self._scoped(query, Account.institution_id))

    def _skew(self) -> dict[uuid.UUID, tuple[date, date]]:
        """(earliest, latest) posting day of the accounts some posted transfer precedes
        (``created_at``) or follows (``closed_at``); empty on a healthy ledger."""
        found: dict[uuid.UUID, tuple[date, date]] = {}
        for side in (Transfer.debit_account_id, Transfer.credit_account_id):
            query = (
                select(Account.id, Transfer.timestamp)
                .select_from(Transfer)
                .join(Account, Account.id == side)
                .where(
                    Transfer.flags.op("&")(_NOT_POSTED) == 0,
                    or_(
                        Transfer.timestamp < Account.created_at,
                        and_(
                            Account.closed_at.is_not(None), Transfer.timestamp > Account.closed_at
                        ),
                    ),
                )
            )
            for account_id, stamp in _stream(
                self.session, self._scoped(query, Transfer.institution_id)
            ):
                day = local_day(stamp)
                first, last = found.get(account_id, (day, day))
                found[account_id] = (min(first, day), max(last, day))
        return found

    # ---------------------------------------------------------------- writing

    def write(self) -> int:
        session = self.session
        institutions = session.execute(
            select(Institution.id, Institution.code, Institution.name).order_by(Institution.code)
        ).all()
        if self.institution_id is not None and self.institution_id not in {
            row[0] for row in institutions
        }:
            raise NotFound("institutions.not_found", "no such institution", field="institution_id")
        self.names = _Names(
            institution_components((row[0], row[1]) for row in institutions),
            _short_id_clashes(session, self.institution_id),
        )
        self.skew = self._skew()
        in_scope = [row for row in institutions if self.institution_id in (None, row[0])]
        self._header(in_scope)
        last_open = self._opens({row[0]: (row[1], row[2]) for row in in_scope})
        count, last_day = self._transactions()
        if last_open is not None:
            as_of = last_open if last_day is None else max(last_day + timedelta(days=1), last_open)
            self._balances(as_of)
            self._closes(as_of)
        return count

    def _header(self, institutions: Sequence[Row[Any]]) -> None:
        if self.institution_id is not None:
            _, code, name = institutions[0]
            title = f"{name} ({code}): Huinong ledger"
        else:
            title = "Huinong ledger: all institutions"
        ledgers = self._scoped(select(Account.ledger).distinct(), Account.institution_id)
        currencies = sorted(_currency(c) for c in self.session.scalars(ledgers))
        lines = [
            f";; {title}",
            ";; Exported by Huinong: posted transfers, amounts in yuan, debits positive.",
            ";; Dates are Asia/Shanghai calendar dates; see huinong.ledger.export.",
            "",
            f"option {quote('title')} {quote(title)}",
            *(f"option {quote('operating_currency')} {quote(c)}" for c in currencies),
            "",
        ]
        self.out.write("\n".join(lines) + "\n")

    def _name(self, row: Row[Any]) -> str:
        return self.names.account(*row[:5])

    def _open_day(self, account_id: uuid.UUID, created_at: datetime) -> date:
        day = local_day(created_at)
        skew = self.skew.get(account_id)
        return min(day, skew[0]) if skew else day

    def _opens(self, institutions: dict[uuid.UUID, tuple[str, str]]) -> date | None:
        last_open: date | None = None
        current: uuid.UUID | None = None
        write = self.out.write
        for row in self._accounts():
            account_id, inst_id, number, ledger, name = row[0], row[1], row[4], row[5], row[6]
            owner_id, no_overdraft, no_overcredit, created_at = row[7], row[8], row[9], row[10]
            if inst_id != current:
                current = inst_id
                code, inst_name = institutions[inst_id]
                write(f"\n;; ---- accounts of {code} {inst_name}\n")
            day = self._open_day(account_id, created_at)
            last_open = day if last_open is None else max(last_open, day)
            lines = [
                f"{day.isoformat()} open {self._name(row)} {_currency(ledger)}",
                f"  huinong-id: {quote(str(account_id))}",
                f"  name: {quote(name)}",
            ]
            if number is not None:
                lines.append(f"  account-number: {quote(number)}")
            if owner_id is not None:
                lines.append(f"  owner-id: {quote(str(owner_id))}")
            if no_overdraft:
                lines.append(f"  limit: {quote('debits_must_not_exceed_credits')}")
            if no_overcredit:
                lines.append(f"  limit: {quote('credits_must_not_exceed_debits')}")
            write("\n".join(lines) + "\n")
        return last_open

    def _transactions(self) -> tuple[int, date | None]:
        debit = aliased(Account)
        credit = aliased(Account)
        query = (
            select(
                Transfer.id,
                Transfer.timestamp,
                Transfer.amount,
                Transfer.ledger,
                Transfer.code,
                Transfer.flags,
                Transfer.pending_id,
                Transfer.reference,
                Transfer.metadata_,
                debit.id,
                debit.institution_id,
                debit.type,
                debit.code,
                debit.account_number,
                credit.id,
                credit.institution_id,
                credit.type,
                credit.code,
                credit.account_number,
            )
            .select_from(Transfer)
            .join(debit, debit.id == Transfer.debit_account_id)
            .join(credit, credit.id == Transfer.credit_account_id)
            .where(Transfer.flags.op("&")(_NOT_POSTED) == 0)
            .order_by(Transfer.timestamp, Transfer.id)
        )
        query = self._scoped(query, Transfer.institution_id)
        self.out.write("\n;; ---- posted transfers\n")
        count = 0
        last_day: date | None = None
        names = self.names
        write = self.out.write
        for row in _stream(self.session, query):
            transfer_id, stamp, amount, ledger, code, flags, pending_id, reference, metadata = row[
                :9
            ]
            local = stamp.astimezone(DISPLAY_TIMEZONE)
            day = local.date()
            last_day = day
            narration = reference or (
                f"post of pending transfer (code {code})"
                if pending_id
                else f"transfer (code {code})"
            )
            lines = [  # ids and timestamps need no escaping
                f"\n{day.isoformat()} * {quote(narration)}",
                f'  huinong-id: "{transfer_id}"',
                f'  timestamp: "{local.isoformat()}"',
                f"  code: {code}",
            ]
            if reference is not None:
                lines.append(f"  reference: {quote(reference)}")
            if pending_id is not None:
                lines.append(f'  pending-id: "{pending_id}"')
            if flags:
                lines.append(f"  flags: {_flags(flags)}")
            if metadata is not None:
                encoded = json.dumps(metadata, ensure_ascii=False, sort_keys=True)
                lines.append(f"  metadata: {quote(encoded)}")
            currency = _currency(ledger)
            lines.append(f"  {names.cached(row[9:14])}  {yuan(amount)} {currency}")
            lines.append(f"  {names.cached(row[14:19])}  {yuan(-amount)} {currency}")
            write("\n".join(lines) + "\n")
            count += 1
        return count, last_day

    def _balances(self, as_of: date) -> None:
        write = self.out.write
        write(f"\n;; ---- posted balances (debits - credits) at the start of {as_of}\n")
        stamp = as_of.isoformat()
        for row in self._accounts():
            ledger, debits_posted, credits_posted = row[5], row[12], row[13]
            balance = yuan(debits_posted - credits_posted)
            write(f"{stamp} balance {self._name(row)} {balance} ~ 0.00 {ledger}\n")

    def _closes(self, as_of: date) -> None:
        query = (
            select(*_ACCOUNT_COLUMNS).where(Account.closed).order_by(Account.closed_at, Account.id)
        )
        header = False
        for row in _stream(self.session, self._scoped(query, Account.institution_id)):
            account_id, created_at, closed_at = row[0], row[10], row[11]
            closed_day = as_of if closed_at is None else local_day(closed_at)
            day = max(closed_day, self._open_day(account_id, created_at))
            skew = self.skew.get(account_id)
            if skew:
                day = max(day, skew[1])
            if not header:
                self.out.write("\n;; ---- closed accounts\n")
                header = True
            self.out.write(f"{day.isoformat()} close {self._name(row)}\n")
