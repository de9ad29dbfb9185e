"""The ledger service against an independent model, driven by a Hypothesis state machine.

Each example is a fresh institution on one backend (the ``factory`` fixture runs the test on
SQLite and PostgreSQL). Rules open and close accounts in two ledgers, submit random batches
through ``service.create_transfers`` (plain, pending with and without timeout, full / partial /
amount-less posts, voids, balancing transfers, linked chains — some left open at the end of the
batch — repeats of earlier ids with the same or a changed field, unknown accounts and pending
ids, same-account transfers, zero amounts, malformed requests), share ids with a second
institution, move the frozen clock (also to a few microseconds either side of a pending
transfer's expiry) and run the expiry sweep. Every result (code, timestamp, amount) must equal
what :mod:`tests.ledger.reference_model` predicts; after every step every account's four
balances must equal the model's, and at the end of every example ``ledger verify`` must find
nothing.

Each example starts its clock a day earlier than the one before, so the sweep, which runs across
institutions, never meets another example's pending transfers and its count is exact.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import transaction
from huinong.errors import HuinongError
from huinong.ledger import service
from huinong.ledger.models import Account
from huinong.ledger.types import AccountType, TransferFlags, TransferInput, flag_names
from huinong.ledger.verify import verify
from tests.conftest import new_institution
from tests.ledger.reference_model import NIL, LedgerModel, ModelAccount, Outcome

F = TransferFlags
BALANCING = F.balancing_debit | F.balancing_credit
ALL_ONES = uuid.UUID(int=(1 << 128) - 1)
FIRST_DAY = datetime(2000, 1, 1, tzinfo=UTC)
_example_days = itertools.count()

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# One batch item is drawn as one tuple of small integers, interpreted against the machine's
# state (accounts, earlier transfers). 0 is always the most ordinary choice, so that shrinking
# towards 0 gives the plainest failing batch.
KINDS = ("plain", "pending", "post", "repeat", "void", "plain", "pending", "post", "void", "odd")
TWO_PHASE_KINDS = ("post", "pending", "void", "repeat")
MUTATIONS = (
    ("same",) * 4
    + ("amount_omitted",) * 3
    + (
        "amount_up",
        "amount_down",
        "debit",
        "credit",
        "flags",
        "reference",
        "metadata",
        "code",
        "ledger",
        "timeout",
        "pending_id",
        "foreign_id",
    )
)
ODDITIES = (
    "id_zero",
    "id_all_ones",
    "pending_id_on_plain",
    "post_without_pending_id",
    "post_of_itself",
    "post_with_timeout",
    "pending_and_post",
    "post_and_void",
    "void_balancing",
    "no_debit_account",
    "nil_credit_account",
    "timeout_on_plain",
    "negative_amount",
)


@dataclasses.dataclass(frozen=True)
class Spec:
    """The choices for one batch item, read by ``LedgerMachine._item`` and its helpers. The
    ``*_mode`` fields pick the rare cases from their top values (see the helpers)."""

    kind: str  # plain, pending, post, void, repeat of an earlier request, odd (malformed)
    linked: int  # 8, 9: the item carries ``linked``
    debit_mode: int  # 37: maybe a closed account, 38: unknown, 39: none
    debit: int  # which account
    credit_mode: int  # 27: the debit account, 28: any (maybe another ledger), 29: unknown
    credit: int  # which account; also picks among alternatives elsewhere
    amount_mode: int  # 38: zero, 39: none
    amount: int
    ledger_mode: int  # 27, 28, 29: CNY, USD, "" whatever the accounts (posts: 26, 27)
    code_mode: int  # 28: code 2, 29: code 0 (posts: 27, 28 give the code 1 or 2)
    balancing: int  # 9, 10, 11: balancing debit, credit, both
    timeout: int  # of a pending transfer, seconds
    reference: int
    metadata: int
    target_mode: int  # posts: < 24 a pending still pending, 24-26 any, 27 a failed one,
    # 28 a transfer that is not pending, 29 unknown; repeats: < 15 prefer subtle ones
    target: int  # which one
    resolve_amount: int  # posts: omitted, full, part (less for a void), over, zero
    accounts_mode: int  # posts: 1, 2 name the pending's accounts, 3, 4 a wrong one
    mutation: str  # of a repeat
    oddity: str  # of a malformed request


SPECS = st.builds(
    Spec,
    kind=st.sampled_from(KINDS),
    linked=st.integers(0, 9),
    debit_mode=st.integers(0, 39),
    debit=st.integers(0, 63),
    credit_mode=st.integers(0, 29),
    credit=st.integers(0, 63),
    amount_mode=st.integers(0, 39),
    amount=st.integers(1, 400),
    ledger_mode=st.integers(0, 29),
    code_mode=st.integers(0, 29),
    balancing=st.integers(0, 11),
    timeout=st.sampled_from((0, 1, 2, 5)),
    reference=st.integers(0, 3),
    metadata=st.integers(0, 3),
    target_mode=st.integers(0, 29),
    target=st.integers(0, 63),
    resolve_amount=st.integers(0, 19),
    accounts_mode=st.integers(0, 29),
    mutation=st.sampled_from(MUTATIONS),
    oddity=st.sampled_from(ODDITIES),
)
BATCHES = st.lists(SPECS, min_size=1, max_size=8)
TWO_PHASE_BATCHES = st.lists(
    st.builds(dataclasses.replace, SPECS, kind=st.sampled_from(TWO_PHASE_KINDS)),
    min_size=1,
    max_size=8,
)


class LedgerMachine(RuleBasedStateMachine):
    factory: ClassVar[sessionmaker[Session]]

    def __init__(self) -> None:
        super().__init__()
        self.institution_id = new_institution(self.factory, prefix="SM").id
        self.now = FIRST_DAY - timedelta(days=next(_example_days))
        self.model = LedgerModel()
        with self.factory() as session:
            for account in session.scalars(
                select(Account).where(Account.institution_id == self.institution_id)
            ):
                self.model.add_account(
                    ModelAccount(
                        account.id,
                        account.ledger,
                        account.debits_must_not_exceed_credits,
                        account.credits_must_not_exceed_debits,
                    )
                )
        self.pool: list[uuid.UUID] = []  # the accounts this machine opened
        self.applied: list[TransferInput] = []  # requests answered ``ok``, for repeats
        self.requests: dict[uuid.UUID, TransferInput] = {}  # every pending request sent
        self.other: tuple[uuid.UUID, uuid.UUID, uuid.UUID] | None = None
        self.foreign: list[uuid.UUID] = []  # ids of the other institution's transfers
        self.focus: uuid.UUID | None = None  # a pending whose expiry is about now

    # ------------------------------------------------------------------ accounts

    def _open(self, ledger: str, limit: str | None) -> None:
        with transaction(self.factory) as session:
            account = service.create_account(
                session,
                institution_id=self.institution_id,
                ledger=ledger,
                type=AccountType.liability if limit != "credits" else AccountType.asset,
                code=2011,
                name=f"sm {len(self.pool)}",
                debits_must_not_exceed_credits=limit == "debits",
                credits_must_not_exceed_debits=limit == "credits",
            )
            account_id = account.id
        self.pool.append(account_id)
        self.model.add_account(
            ModelAccount(account_id, ledger, limit == "debits", limit == "credits")
        )

    @initialize()
    def open_first_accounts(self) -> None:
        self._open("CNY", None)
        self._open("CNY", None)
        self._open("USD", None)
        self._open("USD", None)

    @precondition(lambda self: len(self.pool) < 8)
    @rule(
        ledger=st.sampled_from(("CNY", "CNY", "USD")),
        limit=st.sampled_from((None, None, "debits", "credits")),
    )
    def open_account(self, ledger: str, limit: str | None) -> None:
        self._open(ledger, limit)

    @precondition(lambda self: sum(not self.model.accounts[a].closed for a in self.pool) > 5)
    @rule(data=st.data())
    def close_account(self, data: st.DataObject) -> None:
        account_id = data.draw(st.sampled_from(self.pool), label="close")
        expected = self.model.close_problem(account_id)
        try:
            with transaction(self.factory) as session:
                service.close_account(
                    session, institution_id=self.institution_id, account_id=account_id
                )
        except HuinongError as error:
            got: str | None = error.code
        else:
            got = None
        assert got == expected
        if expected is None:
            self.model.accounts[account_id].closed = True

    def _other_institution(self) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        """Another institution with two accounts, opened the first time it is needed."""
        if self.other is None:
            other = new_institution(self.factory, prefix="SO").id
            with transaction(self.factory) as session:
                debit, credit = (
                    service.create_account(
                        session,
                        institution_id=other,
                        ledger="CNY",
                        type=AccountType.liability,
                        code=2011,
                        name=f"other {n}",
                    ).id
                    for n in range(2)
                )
            self.other = (other, debit, credit)
        return self.other

    def _submit_elsewhere(self, t: TransferInput) -> str:
        other, _, _ = self._other_institution()
        with clock.frozen(self.now), transaction(self.factory) as session:
            results = service.create_transfers(session, institution_id=other, batch=[t])
        return results[0].result.value

    @precondition(lambda self: bool(self.applied))
    @rule(data=st.data())
    def share_ids_with_another_institution(self, data: st.DataObject) -> None:
        """Ids are unique across institutions: each side's ids are ``id_already_used`` on the
        other, and nothing is learnt about the other transfer."""
        ours = data.draw(st.sampled_from(self.applied), label="our transfer")
        _, debit, credit = self._other_institution()
        theirs = TransferInput(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=1,
            ledger="CNY",
            code=1,
        )
        assert self._submit_elsewhere(dataclasses.replace(theirs, id=ours.id)) == (
            "id_already_used"
        )
        assert self._submit_elsewhere(theirs) == "ok"
        self.model.foreign_ids.add(theirs.id)
        self.foreign.append(theirs.id)
        self.now += timedelta(milliseconds=1)

    # ------------------------------------------------------------------ time

    def _timed_pendings(self) -> list[uuid.UUID]:
        # In the order they were created: draws must not depend on the random ids.
        return [
            pid
            for pid, status in self.model.status.items()
            if status == "pending" and self.model.transfers[pid].expires_at is not None
        ]

    @precondition(lambda self: bool(self._timed_pendings()))
    @rule(data=st.data())
    def advance_clock_to_an_expiry(self, data: st.DataObject) -> None:
        """Put the clock a microsecond before, at, or just after a pending's expiry."""
        pending_id = data.draw(st.sampled_from(self._timed_pendings()), label="expiring")
        expires_at = self.model.transfers[pending_id].expires_at
        assert expires_at is not None
        offset = data.draw(st.sampled_from((0, -1, 1, -2, 3, -5)), label="microseconds")
        target = expires_at + timedelta(microseconds=offset)
        if target > self.now:
            self.now = target
        self.focus = pending_id  # the next batches post or void it now and then

    @rule()
    def sweep_expired(self) -> None:
        expected = self.model.expire(self.now)
        with clock.frozen(self.now), transaction(self.factory) as session:
            voided = service.sweep_expired_pending(session)
        assert voided == len(expected)
        self.now += timedelta(milliseconds=1)

    # ------------------------------------------------------------------ batches

    @rule(specs=BATCHES)
    def submit_batch(self, specs: list[Spec]) -> None:
        self._submit(specs)

    @rule(specs=TWO_PHASE_BATCHES)
    def submit_two_phase_batch(self, specs: list[Spec]) -> None:
        """Pending transfers, posts, voids and repeats only: where most rules are."""
        self._submit(specs)

    @rule(specs=BATCHES, seconds=st.integers(0, 6), milliseconds=st.sampled_from((0, 1, 999)))
    def submit_batch_later(self, specs: list[Spec], seconds: int, milliseconds: int) -> None:
        self.now += timedelta(seconds=seconds, milliseconds=milliseconds)
        self._submit(specs)

    def _submit(self, specs: list[Spec]) -> None:
        batch: list[TransferInput] = []
        for spec in specs:
            batch.append(self._item(spec, batch))
        expected = self.model.create_transfers(batch, self.now)
        with clock.frozen(self.now), transaction(self.factory) as session:
            results = service.create_transfers(
                session, institution_id=self.institution_id, batch=batch
            )
        got = [(r.index, r.id, r.result.value, r.timestamp, r.amount) for r in results]
        want = [
            (index, t.id, o.result, o.timestamp, o.amount)
            for index, (t, o) in enumerate(zip(batch, expected, strict=True))
        ]
        if got != want:
            note(self._explain(batch, got, expected))
        assert got == want
        for t, o in zip(batch, expected, strict=True):
            if t.flags & F.pending:
                self.requests.setdefault(t.id, t)
            if o.result == "ok":
                self.applied.append(t)
        self.now += timedelta(milliseconds=1)

    def _explain(self, batch: list[TransferInput], got: list[Any], want: list[Outcome]) -> str:
        names = {a: f"A{i}" for i, a in enumerate(self.pool)}
        lines = [f"batch at {self.now.isoformat()}:"]
        for t, g, w in zip(batch, got, want, strict=True):
            lines.append(
                f"  {str(t.id)[-6:]} dr={names.get(t.debit_account_id, t.debit_account_id)}"
                f" cr={names.get(t.credit_account_id, t.credit_account_id)} amount={t.amount}"
                f" ledger={t.ledger} code={t.code} flags={'|'.join(flag_names(t.flags)) or '-'}"
                f" pending={str(t.pending_id)[-6:] if t.pending_id else None}"
                f" timeout={t.timeout}  service={g[2]}/{g[4]}  model={w.result}/{w.amount}"
            )
        return "\n".join(lines)

    def _item(self, spec: Spec, earlier: list[TransferInput]) -> TransferInput:
        if spec.kind == "repeat" and (self.applied or earlier):
            return self._repeat(spec, earlier)
        resolution = None
        if spec.kind in ("post", "void"):
            resolution = self._resolve(spec, spec.kind == "post", earlier)
        if resolution is not None:
            t = resolution
        elif spec.kind == "odd":
            t = self._oddity(spec, earlier)
        else:
            # A post or void with nothing to resolve makes a pending transfer instead.
            t = self._transfer(spec, pending=spec.kind != "plain")
        if spec.linked >= 8:
            t = dataclasses.replace(t, flags=t.flags | F.linked)
        return t

    def _ledger_of(self, account_id: uuid.UUID | None) -> str:
        account = self.model.accounts.get(account_id) if account_id else None
        return account.ledger if account else "CNY"

    def _accounts(self, spec: Spec) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """Mostly two different open accounts of one ledger; sometimes the same account,
        accounts of two ledgers, a closed, an unknown account or none."""
        usable = [a for a in self.pool if not self.model.accounts[a].closed] or self.pool
        debit: uuid.UUID | None = usable[spec.debit % len(usable)]
        if spec.debit_mode == 37:
            debit = self.pool[spec.debit % len(self.pool)]  # perhaps a closed one
        elif spec.debit_mode == 38:
            debit = uuid.uuid4()
        elif spec.debit_mode == 39:
            debit = None
        partners = [
            a for a in usable if a != debit and self._ledger_of(a) == self._ledger_of(debit)
        ]
        if spec.credit_mode == 27:
            credit = debit
        elif spec.credit_mode == 28 or not partners:
            credit = self.pool[spec.credit % len(self.pool)]
        elif spec.credit_mode == 29:
            credit = uuid.uuid4()
        else:
            credit = partners[spec.credit % len(partners)]
        return debit, credit

    def _transfer(self, spec: Spec, *, pending: bool) -> TransferInput:
        debit, credit = self._accounts(spec)
        flags = F.pending if pending else F.none
        flags |= {9: F.balancing_debit, 10: F.balancing_credit}.get(spec.balancing, F.none)
        if spec.balancing == 11:
            flags |= F.balancing_debit | F.balancing_credit
        if flags & BALANCING and spec.target_mode < 20:
            debit, credit = self._balancing_accounts(spec, flags, debit, credit)
        amount = {38: 0, 39: None}.get(spec.amount_mode, spec.amount)
        ledger = {27: "CNY", 28: "USD", 29: ""}.get(spec.ledger_mode, self._ledger_of(debit))
        return TransferInput(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger=ledger,
            code={28: 2, 29: 0}.get(spec.code_mode, 1),
            flags=int(flags),
            timeout=spec.timeout if pending else 0,
            reference=(None, None, "r1", "收款")[spec.reference],
            metadata=None if spec.metadata < 3 else {"k": 1},
        )

    def _balancing_accounts(
        self, spec: Spec, flags: int, debit: uuid.UUID | None, credit: uuid.UUID | None
    ) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """Accounts a balancing transfer can move something between: a debit account whose
        credits exceed its debits, a credit account whose debits exceed its credits."""
        accounts = [self.model.accounts[a] for a in self.pool if not self.model.accounts[a].closed]
        if flags & F.balancing_debit:
            rich = [a for a in accounts if a.credits_posted > a.debits_posted + a.debits_pending]
            if rich:
                debit = rich[spec.debit % len(rich)].id
        if flags & F.balancing_credit:
            owing = [
                a
                for a in accounts
                if a.debits_posted > a.credits_posted + a.credits_pending
                and a.id != debit
                and a.ledger == self._ledger_of(debit)
            ]
            if owing:
                credit = owing[spec.credit % len(owing)].id
        if credit == debit or self._ledger_of(credit) != self._ledger_of(debit):
            partners = [
                a.id for a in accounts if a.id != debit and a.ledger == self._ledger_of(debit)
            ]
            credit = partners[spec.credit % len(partners)] if partners else credit
        return debit, credit

    def _resolve(
        self, spec: Spec, posting: bool, earlier: list[TransferInput]
    ) -> TransferInput | None:
        """A post or void of (mostly) a pending transfer that is still pending, stored or
        earlier in this batch; sometimes of one already resolved, an unknown id, a failed
        pending or a transfer that is not pending. None if there is nothing to resolve."""
        created = list(self.model.status)  # every pending the ledger holds, any state
        open_ones = [pid for pid in created if self.model.status[pid] == "pending"]
        in_batch = [t.id for t in earlier if t.flags & F.pending]
        failed = [pid for pid in self.requests if pid not in self.model.status]
        plain = [t.id for t in self.applied if not t.flags & (F.pending | F.post_pending)]
        mode = spec.target_mode
        if mode == 29:
            choices = [uuid.uuid4()]  # unknown
        else:
            choices = (
                (created + in_batch if mode >= 24 else [])
                if mode < 27
                else failed
                if mode == 27
                else plain
            ) or (open_ones + in_batch)
        if not choices:
            return None
        pending_id = choices[spec.target % len(choices)]
        if self.focus is not None and self.model.status.get(self.focus) == "pending" and mode < 5:
            pending_id = self.focus
        source: Any = self.model.transfers.get(pending_id) or next(
            (t for t in earlier if t.id == pending_id), None
        )
        full = (source.amount if source else None) or 100
        amount: int | None = None  # omitted, meaning the full amount
        if spec.resolve_amount in (1, 5):
            amount = full
        elif spec.resolve_amount in (2, 6, 10, 14) and posting:
            amount = max(1, full * (1 + spec.credit % 7) // 8)  # a part
        elif spec.resolve_amount == 2:
            amount = max(full - 1, 1)
        elif spec.resolve_amount == 3:
            amount = full + 1
        elif spec.resolve_amount == 7:
            amount = 0
        debit = credit = None
        if spec.accounts_mode in (1, 2) and source is not None:
            debit, credit = source.debit_account_id, source.credit_account_id
        elif spec.accounts_mode == 3:
            debit = self._accounts(spec)[0]
        elif spec.accounts_mode == 4:
            credit = self._accounts(spec)[1]
        return TransferInput(
            id=uuid.uuid4(),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger={26: "CNY", 27: "USD"}.get(spec.ledger_mode),
            code={27: 1, 28: 2}.get(spec.code_mode, 0),
            flags=int(F.post_pending if posting else F.void_pending),
            pending_id=pending_id,
            reference=(None, None, "p", None)[spec.reference],
        )

    def _repeat(self, spec: Spec, earlier: list[TransferInput]) -> TransferInput:
        """An earlier request again: the same, or with one field changed."""
        mutation = spec.mutation
        candidates = self.applied + earlier
        # Where "the same" is subtle: the omitted amount of a post or void (the pending
        # amount), the amount of a balancing transfer (a ceiling).
        resolves = [
            t
            for t in candidates
            if t.flags & (F.post_pending | F.void_pending)
            and (t.amount is not None or mutation != "amount_omitted")
        ]
        balancing = [t for t in candidates if t.flags & BALANCING]
        subtle = resolves if mutation == "amount_omitted" else resolves + balancing
        if mutation == "amount_up":
            subtle = balancing
        if subtle and spec.target_mode < 15:
            candidates = subtle
        original = candidates[spec.target % len(candidates)]
        replace = dataclasses.replace
        if mutation == "same":
            return original
        if mutation == "amount_up":
            return replace(original, amount=(original.amount or 0) + 1)
        if mutation == "amount_down":
            return replace(original, amount=max((original.amount or 2) - 1, 1))
        if mutation == "amount_omitted":
            return replace(original, amount=None)
        if mutation == "debit":
            return replace(original, debit_account_id=self._accounts(spec)[0])
        if mutation == "credit":
            return replace(original, credit_account_id=self._accounts(spec)[1])
        if mutation == "flags":
            bit = (F.linked, F.pending, F.balancing_debit)[spec.reference % 3]
            return replace(original, flags=original.flags ^ bit)
        if mutation == "reference":
            return replace(original, reference="changed")
        if mutation == "metadata":
            return replace(original, metadata={"k": 2})
        if mutation == "code":
            return replace(original, code=original.code + 1)
        if mutation == "ledger":
            return replace(original, ledger="USD" if original.ledger == "CNY" else "CNY")
        if mutation == "timeout":
            return replace(original, timeout=original.timeout + 1)
        if mutation == "foreign_id" and self.foreign:
            return replace(original, id=self.foreign[spec.credit % len(self.foreign)])
        others = list(self.model.status) or [uuid.uuid4()]
        return replace(original, pending_id=others[spec.credit % len(others)])

    def _oddity(self, spec: Spec, earlier: list[TransferInput]) -> TransferInput:
        """A request with something wrong in its shape."""
        base = self._transfer(spec, pending=False)
        post = self._resolve(spec, True, earlier) or TransferInput(
            id=uuid.uuid4(), pending_id=uuid.uuid4(), flags=int(F.post_pending)
        )
        replace = dataclasses.replace
        oddity = spec.oddity
        if oddity == "id_zero":
            return replace(base, id=NIL)
        if oddity == "id_all_ones":
            return replace(base, id=ALL_ONES)
        if oddity == "pending_id_on_plain":
            return replace(base, pending_id=uuid.uuid4())
        if oddity == "post_without_pending_id":
            return replace(post, pending_id=None)
        if oddity == "post_of_itself":
            return replace(post, pending_id=post.id)
        if oddity == "post_with_timeout":
            return replace(post, timeout=3)
        if oddity == "pending_and_post":
            return replace(post, flags=post.flags | F.pending)
        if oddity == "post_and_void":
            return replace(post, flags=post.flags | F.void_pending)
        if oddity == "void_balancing":
            return replace(post, flags=int(F.void_pending | F.balancing_credit))
        if oddity == "no_debit_account":
            return replace(base, debit_account_id=None)
        if oddity == "nil_credit_account":
            return replace(base, credit_account_id=NIL)
        if oddity == "timeout_on_plain":
            return replace(base, timeout=4)
        return replace(base, amount=-5)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def balances_match_the_model(self) -> None:
        with self.factory() as session:
            rows = session.execute(
                select(
                    Account.id,
                    Account.debits_pending,
                    Account.debits_posted,
                    Account.credits_pending,
                    Account.credits_posted,
                ).where(Account.institution_id == self.institution_id)
            ).all()
        assert {row[0]: tuple(row[1:]) for row in rows} == self.model.balances()

    def teardown(self) -> None:
        """``ledger verify`` once per example rather than after every step: a call costs
        50-70 ms even on a small ledger (mostly SQLAlchemy building its aliased queries), which
        would make this test minutes long. The per-step invariant above already pins every
        balance to the model, and the ledger only grows, so a fault is still caught (and
        shrunk) here."""
        with self.factory() as session:
            assert verify(session, institution_id=self.institution_id) == []


def test_service_agrees_with_the_reference_model(factory: sessionmaker[Session]) -> None:
    machine = type("BoundLedgerMachine", (LedgerMachine,), {"factory": factory})
    run_state_machine_as_test(machine, settings=SETTINGS)
