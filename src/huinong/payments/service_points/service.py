"""Use cases of village service points: the points and their agents, the institution's terms,
PINs, the operations a signed terminal performs, commission and the end-of-day report.

**Who is asking.** A service point's terminals are enrolled with binding ``service_point``
and the point's code as binding reference; a signed request's principal is the terminal,
and the point is found from it. A terminal of a suspended or closed point does nothing.

**Money.** Every operation that moves money is a customer transfer between deposit accounts
(``payments.service.transfer``), with the Idempotency-Key as client id, so replays and
reversals work as at the counter: an assisted withdrawal (助农取款) moves the amount from the
customer's account to the agent's float and the agent hands over cash from the till; a small
deposit moves it from the float to the customer. The float is a deposit account of the agent
and can never go below zero, so concurrent deposits cannot overdraw it. Each operation is
also written to the point's journal with the commission it earns (业务量计酬).

**PINs** travel SM2-encrypted to the institution's platform public key (the key terminals
already pin to verify answers), inside the signed request; the server keeps only an argon2id
hash. Three wrong PINs in a row lock the PIN until a teller sets a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from huinong import clock
from huinong.db import is_postgres
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.institutions.models import Office, OfficeKind
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.ledger.types import CreateTransferResult, TransferInput
from huinong.parties import service as parties
from huinong.payments import service as payments
from huinong.payments.codes import TransferCode
from huinong.payments.models import Payment
from huinong.payments.service_points import rules
from huinong.payments.service_points.models import (
    AccountPin,
    AgentOperation,
    AgentTermsRecord,
    CommissionPayout,
    CustomerAccountDay,
    ServicePoint,
    ServicePointDay,
)
from huinong.payments.service_points.rules import AgentTerms, OperationKind
from huinong.security.audit import service as audit
from huinong.security.crypto import CryptoError
from huinong.security.identities import passwords
from huinong.security.principals import Principal, PrincipalKind
from huinong.security.terminals import platform_keys
from huinong.security.terminals import service as terminals

COMMISSION_NAMESPACE = uuid.UUID("5b1e8f0e-52a4-4b9c-9a55-0c6f3e3a7d21")

# --------------------------------------------------------------------------- terms


def get_terms(session: Session, *, institution_id: uuid.UUID) -> AgentTerms:
    record = session.get(AgentTermsRecord, institution_id)
    if record is None:
        return AgentTerms()
    return AgentTerms(**{name: getattr(record, name) for name in asdict(AgentTerms())})


def set_terms(
    session: Session, *, institution_id: uuid.UUID, terms: AgentTerms, actor: Principal
) -> AgentTerms:
    for field, problem in rules.check_terms(terms):
        raise InvalidInput("agents.invalid_terms", f"{field}: {problem}", field=field)
    record = session.get(AgentTermsRecord, institution_id, with_for_update=True)
    if record is None:
        record = AgentTermsRecord(institution_id=institution_id)
        session.add(record)
    for name, value in asdict(terms).items():
        setattr(record, name, value)
    record.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="agents.terms_changed",
        institution_id=institution_id,
        actor=actor,
        object_type="agent_terms",
        object_id=str(institution_id),
        detail=asdict(terms),
    )
    return terms


# --------------------------------------------------------------------------- service points


def create_service_point(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    outlet_id: uuid.UUID,
    agent_customer_id: uuid.UUID,
    village_code: str | None,
    actor: Principal | None = None,
) -> ServicePoint:
    """Open a service point run by a merchant customer, with a new float account of theirs."""
    if not name.strip():
        raise InvalidInput("agents.name_required", "the name must not be empty", field="name")
    if village_code is not None and not (len(village_code) == 12 and village_code.isdigit()):
        raise InvalidInput(
            "agents.invalid_village_code",
            "a village is named by its 12-digit statistical division code",
            field="village_code",
        )
    outlet = session.get(Office, outlet_id)
    if outlet is None or outlet.institution_id != institution_id:
        raise NotFound("institutions.office_not_found", "no such office", field="outlet_id")
    if outlet.kind != OfficeKind.outlet:
        raise InvalidInput(
            "agents.not_an_outlet", "a service point belongs to an outlet", field="outlet_id"
        )
    agent = parties.get_customer(
        session, institution_id=institution_id, customer_id=agent_customer_id
    )
    if agent.kind != "merchant":
        raise InvalidInput(
            "agents.agent_not_merchant",
            "a service point is run by a merchant customer (the shop that hosts it)",
            field="agent_customer_id",
        )
    taken = session.scalar(
        select(ServicePoint.id).where(
            ServicePoint.institution_id == institution_id, ServicePoint.code == code
        )
    )
    if taken is not None:
        raise Conflict("agents.code_taken", f"service point {code} exists", field="code")
    float_account = payments.open_deposit_account(
        session, institution_id=institution_id, customer_id=agent_customer_id
    )
    point = ServicePoint(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        outlet_id=outlet_id,
        village_code=village_code,
        agent_customer_id=agent_customer_id,
        float_account_id=float_account.id,
        status="active",
        created_at=clock.now(),
    )
    session.add(point)
    session.flush()
    audit.record(
        session,
        action="agents.service_point_created",
        institution_id=institution_id,
        actor=actor,
        object_type="service_point",
        object_id=str(point.id),
    )
    return point


def get_service_point(
    session: Session, *, institution_id: uuid.UUID, service_point_id: uuid.UUID
) -> ServicePoint:
    point = session.get(ServicePoint, service_point_id)
    if point is None or point.institution_id != institution_id:
        raise NotFound("agents.service_point_not_found", "no such service point", field="id")
    return point


def list_service_points(session: Session, *, institution_id: uuid.UUID) -> Sequence[ServicePoint]:
    return session.scalars(
        select(ServicePoint)
        .where(ServicePoint.institution_id == institution_id)
        .order_by(ServicePoint.code)
    ).all()


def float_account(session: Session, *, point: ServicePoint) -> Account:
    return ledger.get_account(
        session, institution_id=point.institution_id, account_id=point.float_account_id
    )


def service_point_of(session: Session, *, principal: Principal) -> ServicePoint:
    """The active service point behind a signed terminal request."""
    if principal.kind != PrincipalKind.terminal:
        raise Forbidden(
            "agents.terminal_only", "service point operations come from a signed terminal"
        )
    terminal = terminals.get_terminal(
        session, institution_id=principal.institution_id, terminal_id=principal.subject_id
    )
    point = session.scalar(
        select(ServicePoint)
        .where(
            ServicePoint.institution_id == principal.institution_id,
            ServicePoint.code == terminal.binding_reference,
        )
        .with_for_update()
    )
    if terminal.binding_kind != "service_point" or point is None:
        raise Forbidden(
            "agents.no_service_point",
            "this terminal is not bound to a service point of the institution",
        )
    if point.status != "active":
        raise Forbidden("agents.service_point_inactive", f"the service point is {point.status}")
    return point


# --------------------------------------------------------------------------- PINs


class PinRefused(Exception):
    """A wrong PIN: the entry point records the failure in a transaction of its own (the
    operation's rolls back), then answers with ``error``."""

    def __init__(self, error: Forbidden, account_id: uuid.UUID) -> None:
        super().__init__(error.message)
        self.error = error
        self.account_id = account_id


def set_pin(
    session: Session, *, institution_id: uuid.UUID, account_number: str, pin: str, actor: Principal
) -> None:
    """A teller sets (or resets) an account's PIN, which also unlocks it."""
    rules.check_pin_format(pin)
    if rules.weak_pin(pin):
        raise InvalidInput(
            "agents.weak_pin", "choose a PIN that is not a run or a repeated digit", field="pin"
        )
    account = payments.deposit_account(
        session, institution_id=institution_id, account_number=account_number
    )
    record = session.get(AccountPin, account.id, with_for_update=True)
    if record is None:
        record = AccountPin(account_id=account.id, institution_id=institution_id)
        session.add(record)
    record.pin_hash = passwords.hash_password(pin)
    record.failed_attempts = 0
    record.locked = False
    record.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="agents.pin_set",
        institution_id=institution_id,
        actor=actor,
        object_type="account",
        object_id=str(account.id),
    )


def decrypt_pin(session: Session, *, institution_id: uuid.UUID, pin_ciphertext: str) -> str:
    try:
        ciphertext = bytes.fromhex(pin_ciphertext)
        signer = platform_keys.signer(session, institution_id=institution_id)
        pin = signer.private_key.decrypt(ciphertext).decode("ascii")
    except (ValueError, CryptoError, UnicodeDecodeError):
        raise InvalidInput(
            "agents.pin_unreadable",
            "the PIN must be SM2-encrypted (C1C3C2, hex) to the platform public key",
            field="pin_ciphertext",
        ) from None
    return rules.check_pin_format(pin, field="pin_ciphertext")


def _check_pin(session: Session, *, account: Account, pin: str) -> None:
    record = session.get(AccountPin, account.id)
    if record is None:
        raise Forbidden(
            "agents.pin_not_set",
            "this account has no PIN; the customer sets one at an outlet",
            field="account_number",
        )
    if record.locked:
        raise Forbidden(
            "agents.pin_locked",
            "the PIN is locked after too many wrong tries; a teller at the outlet resets it",
            field="pin_ciphertext",
        )
    if not passwords.verify_password(record.pin_hash, pin):
        raise PinRefused(
            Forbidden("agents.wrong_pin", "the PIN is wrong", field="pin_ciphertext"), account.id
        )
    if record.failed_attempts:
        record.failed_attempts = 0


def record_pin_failure(session: Session, *, account_id: uuid.UUID) -> None:
    record = session.get(AccountPin, account_id, with_for_update=True)
    if record is None:
        return
    record.failed_attempts += 1
    if record.failed_attempts >= rules.PIN_MAX_FAILURES:
        record.locked = True
    record.updated_at = clock.now()
    audit.record(
        session,
        action="agents.wrong_pin",
        institution_id=record.institution_id,
        object_type="account",
        object_id=str(account_id),
        outcome="denied",
        detail={"failed_attempts": record.failed_attempts, "locked": record.locked},
    )


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class OperationResult:
    operation: AgentOperation
    payment: Payment | None
    account: Account


def _raise_day_total(
    session: Session,
    model: type[ServicePointDay] | type[CustomerAccountDay],
    key: dict[str, object],
    amount: int,
    limit: int,
) -> bool:
    """Add ``amount`` to a day's total unless that would pass ``limit``; atomic."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    table = model.__table__
    session.execute(insert(table).values(**key, withdrawn=0).on_conflict_do_nothing())
    raised = session.execute(
        update(table)
        .where(*(table.c[name] == value for name, value in key.items()))
        .where(table.c.withdrawn + amount <= limit)
        .values(withdrawn=table.c.withdrawn + amount)
    )
    return bool(raised.rowcount)


def _journal(
    session: Session,
    *,
    point: ServicePoint,
    principal: Principal,
    kind: OperationKind,
    account: Account,
    payment: Payment | None,
    amount: int,
    terms: AgentTerms,
) -> AgentOperation:
    institution = institutions.get_institution(session, institution_id=point.institution_id)
    operation = AgentOperation(
        id=uuid7(),
        institution_id=point.institution_id,
        service_point_id=point.id,
        terminal_id=principal.subject_id,
        kind=kind,
        account_id=account.id,
        payment_id=payment.id if payment else None,
        amount=amount,
        commission=terms.commission(kind),
        business_date=institution.business_date,
        created_at=clock.now(),
    )
    session.add(operation)
    session.flush()
    return operation


def balance_inquiry(
    session: Session, *, principal: Principal, account_number: str, pin_ciphertext: str
) -> OperationResult:
    point = service_point_of(session, principal=principal)
    account = payments.deposit_account(
        session, institution_id=point.institution_id, account_number=account_number
    )
    pin = decrypt_pin(session, institution_id=point.institution_id, pin_ciphertext=pin_ciphertext)
    _check_pin(session, account=account, pin=pin)
    terms = get_terms(session, institution_id=point.institution_id)
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=OperationKind.balance_inquiry,
        account=account,
        payment=None,
        amount=0,
        terms=terms,
    )
    audit.record(
        session,
        action="agents.balance_inquiry",
        institution_id=point.institution_id,
        actor=principal,
        object_type="account",
        object_id=str(account.id),
    )
    return OperationResult(operation, None, account)


def assisted_withdrawal(
    session: Session,
    *,
    principal: Principal,
    client_id: str,
    account_number: str,
    pin_ciphertext: str,
    amount: int,
) -> OperationResult:
    """助农取款: the customer's account pays the agent's float; the agent pays out cash."""
    point = service_point_of(session, principal=principal)
    terms = get_terms(session, institution_id=point.institution_id)
    account = payments.deposit_account(
        session, institution_id=point.institution_id, account_number=account_number
    )
    pin = decrypt_pin(session, institution_id=point.institution_id, pin_ciphertext=pin_ciphertext)
    _check_pin(session, account=account, pin=pin)
    rules.check_withdrawal(terms, amount)
    institution = institutions.get_institution(session, institution_id=point.institution_id)
    day = institution.business_date
    if not _raise_day_total(
        session,
        CustomerAccountDay,
        {"account_id": account.id, "business_date": day},
        amount,
        terms.withdrawal_per_customer_day,
    ):
        raise Conflict(
            "agents.over_customer_day_limit",
            f"this account may withdraw at most {terms.withdrawal_per_customer_day} fen a day "
            "at service points",
            field="amount",
        )
    if not _raise_day_total(
        session,
        ServicePointDay,
        {"service_point_id": point.id, "business_date": day},
        amount,
        terms.withdrawal_per_service_point_day,
    ):
        raise Conflict(
            "agents.over_service_point_day_limit",
            "the service point has reached its withdrawals for the day",
            field="amount",
        )
    payout = float_account(session, point=point)
    assert payout.account_number is not None and account.account_number is not None
    payment = payments.transfer(
        session,
        institution_id=point.institution_id,
        client_id=client_id,
        from_account_number=account.account_number,
        to_account_number=payout.account_number,
        amount=amount,
        memo=f"助农取款 {point.code}",
    )
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=OperationKind.assisted_withdrawal,
        account=account,
        payment=payment,
        amount=amount,
        terms=terms,
    )
    return OperationResult(operation, payment, account)


def small_deposit(
    session: Session, *, principal: Principal, client_id: str, account_number: str, amount: int
) -> OperationResult:
    """The customer hands cash to the agent; the agent's float pays the customer's account."""
    point = service_point_of(session, principal=principal)
    terms = get_terms(session, institution_id=point.institution_id)
    rules.check_deposit(terms, amount)
    account = payments.deposit_account(
        session, institution_id=point.institution_id, account_number=account_number
    )
    payer = float_account(session, point=point)
    assert payer.account_number is not None and account.account_number is not None
    payment = payments.transfer(
        session,
        institution_id=point.institution_id,
        client_id=client_id,
        from_account_number=payer.account_number,
        to_account_number=account.account_number,
        amount=amount,
        memo=f"助农存款 {point.code}",
    )
    operation = _journal(
        session,
        point=point,
        principal=principal,
        kind=OperationKind.small_deposit,
        account=account,
        payment=payment,
        amount=amount,
        terms=terms,
    )
    return OperationResult(operation, payment, account)


# --------------------------------------------------------------------------- commission


@dataclass(frozen=True)
class PayoutLine:
    service_point_code: str
    operations: int
    amount: int
    already_paid: bool


def _month_bounds(month: str) -> tuple[date, date]:
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise InvalidInput(
            "agents.invalid_month", "give the month as YYYY-MM", field="month"
        ) from None
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, following


def pay_commissions(session: Session, *, institution_id: uuid.UUID, month: str) -> list[PayoutLine]:
    """Pay each service point its commission for a month, from fee expense into its float.
    One payout per point and month (a unique key), with a transfer id derived from both, so
    running the batch again pays nothing twice."""
    first, following = _month_bounds(month)
    lines = []
    expense = ledger.system_account(
        session, institution_id=institution_id, code=AccountCode.fee_expense
    )
    for point in list_service_points(session, institution_id=institution_id):
        paid = session.scalar(
            select(CommissionPayout).where(
                CommissionPayout.service_point_id == point.id, CommissionPayout.month == month
            )
        )
        if paid is not None:
            lines.append(PayoutLine(point.code, paid.operations, paid.amount, True))
            continue
        due = session.execute(
            select(AgentOperation.id, AgentOperation.commission).where(
                AgentOperation.service_point_id == point.id,
                AgentOperation.business_date >= first,
                AgentOperation.business_date < following,
                AgentOperation.commission_payout_id.is_(None),
            )
        ).all()
        amount = sum(commission for _, commission in due)
        transfer_id = uuid.uuid5(COMMISSION_NAMESPACE, f"{point.id}:{month}") if amount else None
        if transfer_id is not None:
            result = ledger.create_transfers(
                session,
                institution_id=institution_id,
                batch=[
                    TransferInput(
                        transfer_id,
                        expense.id,
                        point.float_account_id,
                        amount,
                        expense.ledger,
                        code=TransferCode.agent_commission,
                        reference=f"commission {point.code} {month}",
                    )
                ],
            )
            if result[0].result not in (CreateTransferResult.ok, CreateTransferResult.exists):
                raise Conflict(
                    "agents.commission_not_paid",
                    f"the commission of {point.code} was refused: {result[0].result}",
                )
        payout = CommissionPayout(
            id=uuid7(),
            institution_id=institution_id,
            service_point_id=point.id,
            month=month,
            operations=len(due),
            amount=amount,
            transfer_id=transfer_id,
            created_at=clock.now(),
        )
        session.add(payout)
        session.flush()
        if due:
            session.execute(
                update(AgentOperation)
                .where(AgentOperation.id.in_([operation_id for operation_id, _ in due]))
                .values(commission_payout_id=payout.id)
            )
        lines.append(PayoutLine(point.code, len(due), amount, False))
    return lines


# --------------------------------------------------------------------------- end of day


@dataclass(frozen=True)
class KindTotals:
    kind: str
    count: int
    amount: int
    commission: int


@dataclass(frozen=True)
class Difference:
    operation_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    problem: str


@dataclass(frozen=True)
class DayReport:
    service_point_code: str
    business_date: date
    totals: list[KindTotals]
    differences: list[Difference]


def end_of_day(
    session: Session, *, institution_id: uuid.UUID, service_point_id: uuid.UUID, day: date
) -> DayReport:
    """The point's journal for a business date, totalled by kind and checked operation by
    operation against the ledger: each money operation's payment exists, moved the same amount
    between the customer's account and this point's float, in the right direction."""
    point = get_service_point(
        session, institution_id=institution_id, service_point_id=service_point_id
    )
    operations = session.scalars(
        select(AgentOperation)
        .where(AgentOperation.service_point_id == point.id, AgentOperation.business_date == day)
        .order_by(AgentOperation.created_at, AgentOperation.id)
    ).all()
    totals = [
        KindTotals(kind, count, amount or 0, commission or 0)
        for kind, count, amount, commission in session.execute(
            select(
                AgentOperation.kind,
                func.count(),
                func.sum(AgentOperation.amount),
                func.sum(AgentOperation.commission),
            )
            .where(AgentOperation.service_point_id == point.id, AgentOperation.business_date == day)
            .group_by(AgentOperation.kind)
            .order_by(AgentOperation.kind)
        ).all()
    ]
    differences = []
    for operation in operations:
        if operation.payment_id is None:
            continue
        payment = session.get(Payment, operation.payment_id)
        expected = (
            (operation.account_id, point.float_account_id)
            if operation.kind == OperationKind.assisted_withdrawal
            else (point.float_account_id, operation.account_id)
        )
        if payment is None:
            differences.append(Difference(operation.id, operation.payment_id, "payment missing"))
        elif payment.amount != operation.amount:
            differences.append(
                Difference(
                    operation.id,
                    payment.id,
                    f"journal says {operation.amount} fen, the ledger {payment.amount} fen",
                )
            )
        elif (payment.debit_account_id, payment.credit_account_id) != expected:
            differences.append(
                Difference(operation.id, payment.id, "the payment moved other accounts")
            )
        elif session.scalar(select(Payment.id).where(Payment.reverses_id == payment.id)):
            differences.append(Difference(operation.id, payment.id, "reversed since"))
    return DayReport(point.code, day, totals, differences)
