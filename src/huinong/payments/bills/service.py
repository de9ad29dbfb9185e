"""Bill payment (代缴费): billers, their bills, paying them, the daily settlement file and the
reconciliation against the biller's return file.

**Money path.** Paying a bill debits the payer's deposit account and credits the biller's
settlement account (code 2314 代理业务负债, one account per biller, owned by the biller row:
money we hold for the biller until we settle with it). The ledger transfer, the bill turning
``paid`` and the ``bill_payments`` row are one transaction; the transfer's id derives from
the client id (the Idempotency-Key), so a retried request finds its transfer and its
payment and moves nothing twice. ``bill_payments.bill_id`` is unique and the bill row is
locked while it is paid, so two payments of one bill cannot both succeed: the second is 409.

**HTTP billers.** A bill of an HTTP biller is queried from the biller before it is paid
(:func:`refresh_bills`, outside any database transaction: we never hold locks while waiting on
someone else's server). After our ledger commit the payment is confirmed to the biller
(:func:`confirm_payment`). If the confirmation fails or times out, the payment stays recorded
with ``confirmation = pending`` — the customer has paid, the money sits in the biller's
settlement account — and :func:`confirm_pending` (``huinong bills confirm-pending``, and the
daily settlement) retries it; the biller's confirm is idempotent on our payment id, so a retry
after a lost answer cannot pay twice at the biller either. A biller that *refuses* the
confirmation (4xx) leaves the payment pending with the reason recorded for staff to resolve.

**Settlement and reconciliation.** :func:`settlement_file` lists a biller's payments of one
business date (会计日期) with totals. :func:`reconcile` compares the biller's return file with
our payments of that date and stores every mismatch (missing on their side, missing on ours,
amount differs, duplicate). Only matched payments are settled: one transfer of their sum from
the biller's settlement account to clearing (3001), and each settled payment points to the
reconciliation that settled it, so it is never settled twice; mismatched payments stay in the
settlement account until a later return file matches them. Re-running the same return file
returns the stored result.

Functions that take a session never commit (the entry point owns the transaction); the few
that talk to a biller (:func:`refresh_bills`, :func:`confirm_payment`, :func:`confirm_pending`)
take the session factory instead and run their short transactions around the HTTP call, like
``audit.seal_all``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.db import is_postgres, run_in_transaction
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.models import Account
from huinong.ledger.types import AccountType, CreateTransferResult, TransferInput
from huinong.money import MAX_FEN
from huinong.payments import service as payments
from huinong.payments.bills import files
from huinong.payments.bills.client import BillerClient, BillerEndpoint, BillerError, RemoteBill
from huinong.payments.bills.models import (
    Bill,
    Biller,
    BillerKind,
    BillerProtocol,
    BillFile,
    BillPayment,
    BillReconciliation,
    BillReconciliationItem,
    BillSource,
    BillStatus,
    Channel,
    Confirmation,
    MismatchKind,
)
from huinong.payments.codes import TransferCode
from huinong.security import keyring
from huinong.security.audit import service as audit
from huinong.security.crypto import (
    SM2PrivateKey,
    SM2PublicKey,
    sm3,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from huinong.security.principals import Principal

TRANSFER_ID_NAMESPACE = uuid.UUID("0193a1b2-4c5d-7000-8000-62696c6c7321")
KEY_WRAP_PURPOSE = "biller-key-wrap"
# 代理业务负债 (agency business liabilities): what we collected for a biller and owe it. One
# account per biller, owned by the biller row. Not in ``ledger.chart.AccountCode``: the
# standard chart opens one account per code for every institution, and these are per biller.
AGENCY_PAYABLES = 2314
MAX_FILE_BYTES = 20 * 1024 * 1024


# --------------------------------------------------------------------------- errors


class FileRejected(InvalidInput):
    """A bill file or return file with bad rows: nothing was written. ``errors`` lists each
    problem by row and column."""

    def __init__(self, errors: Sequence[files.RowError], *, what: str = "file") -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "bills.file_rejected",
            f"the {what} has {len(self.errors)} problem(s); nothing was imported"
            + (f"; first: {first}" if first else ""),
            field=(first.column if first and first.column else "file"),
        )


# --------------------------------------------------------------------------- billers


def _wrap_key() -> bytes:
    return keyring.derived_key(KEY_WRAP_PURPOSE, length=16)


def _key_aad(biller_id: uuid.UUID) -> bytes:
    return b"huinong/biller-key/" + biller_id.bytes


def _check_choice(value: str, enum: type, name: str) -> str:
    if value not in {str(m) for m in enum}:
        choices = ", ".join(str(m) for m in enum)
        raise InvalidInput(f"bills.invalid_{name}", f"{name} is one of: {choices}", field=name)
    return value


def _public_key(text: str, field_name: str) -> SM2PublicKey:
    try:
        return SM2PublicKey.from_hex(text)
    except ValueError as exc:
        raise InvalidInput(
            "bills.invalid_public_key",
            "an SM2 public key in hex (04 || x || y, 130 hex digits)",
            field=field_name,
        ) from exc


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > 500 or " " in url:
        raise InvalidInput("bills.invalid_base_url", "an http:// or https:// URL", field="base_url")
    return url.rstrip("/")


def create_biller(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    kind: str,
    protocol: str = BillerProtocol.file,
    base_url: str | None = None,
    biller_public_key: str | None = None,
    actor: Principal | None = None,
    currency: str = "CNY",
) -> Biller:
    """A biller and its settlement account. An HTTP biller also gets our SM2 key pair for
    it (give ``our_public_key`` to the biller); its own public key verifies its answers."""
    code = code.strip()
    if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(
            "bills.invalid_biller_code", "1 to 32 letters, digits, - or _", field="code"
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput("bills.invalid_name", "1 to 200 characters", field="name")
    _check_choice(kind, BillerKind, "kind")
    _check_choice(protocol, BillerProtocol, "protocol")
    http = protocol == BillerProtocol.http
    if http and (not base_url or not biller_public_key):
        missing = "base_url" if not base_url else "biller_public_key"
        raise InvalidInput(
            "bills.http_settings_required",
            "an HTTP biller needs its base_url and its biller_public_key",
            field=missing,
        )
    if not http and (base_url or biller_public_key):
        raise InvalidInput(
            "bills.http_settings_for_file_biller",
            "base_url and biller_public_key are for HTTP billers only",
            field="base_url" if base_url else "biller_public_key",
        )
    taken = session.scalar(
        select(Biller.id).where(Biller.institution_id == institution_id, Biller.code == code)
    )
    if taken is not None:
        raise Conflict("bills.biller_code_taken", f"a biller with code {code} exists", field="code")
    biller_id = uuid7()
    account = ledger.create_account(
        session,
        institution_id=institution_id,
        ledger=currency,
        type=AccountType.liability,
        code=AGENCY_PAYABLES,
        name=f"代理业务负债 {name.strip()}"[:200],
        owner_id=biller_id,
        debits_must_not_exceed_credits=True,
    )
    our_key = SM2PrivateKey.generate() if http else None
    now = clock.now()
    biller = Biller(
        id=biller_id,
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        kind=kind,
        protocol=protocol,
        settlement_account_id=account.id,
        base_url=_check_url(base_url) if http and base_url else None,
        biller_public_key=_public_key(biller_public_key, "biller_public_key").to_hex()
        if http and biller_public_key
        else None,
        our_public_key=our_key.public_key.to_hex() if our_key else None,
        our_private_key_wrapped=sm4_gcm_encrypt(
            _wrap_key(), bytes.fromhex(our_key.to_hex()), aad=_key_aad(biller_id)
        )
        if our_key
        else None,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(biller)
    session.flush()
    audit.record(
        session,
        action="bills.biller_created",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"code": code, "kind": kind, "protocol": protocol},
    )
    return biller


def update_biller(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    name: str | None = None,
    base_url: str | None = None,
    biller_public_key: str | None = None,
    active: bool | None = None,
    actor: Principal | None = None,
) -> Biller:
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    changed: list[str] = []
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("bills.invalid_name", "1 to 200 characters", field="name")
        biller.name = name.strip()
        changed.append("name")
    if base_url is not None or biller_public_key is not None:
        if biller.protocol != BillerProtocol.http:
            raise InvalidInput(
                "bills.http_settings_for_file_biller",
                "base_url and biller_public_key are for HTTP billers only",
                field="base_url" if base_url is not None else "biller_public_key",
            )
        if base_url is not None:
            biller.base_url = _check_url(base_url)
            changed.append("base_url")
        if biller_public_key is not None:
            biller.biller_public_key = _public_key(biller_public_key, "biller_public_key").to_hex()
            changed.append("biller_public_key")
    if active is not None:
        biller.active = active
        changed.append("active")
    biller.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="bills.biller_updated",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"changed": ",".join(changed)},
    )
    return biller


def get_biller(session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID) -> Biller:
    biller = session.get(Biller, biller_id)
    if biller is None or biller.institution_id != institution_id:
        raise NotFound("bills.biller_not_found", "no such biller", field="biller_id")
    return biller


def get_biller_by_code(session: Session, *, institution_id: uuid.UUID, code: str) -> Biller:
    biller = session.scalar(
        select(Biller).where(Biller.institution_id == institution_id, Biller.code == code)
    )
    if biller is None:
        raise NotFound("bills.biller_not_found", f"no biller with code {code}", field="biller")
    return biller


def list_billers(session: Session, *, institution_id: uuid.UUID) -> Sequence[Biller]:
    return session.scalars(
        select(Biller).where(Biller.institution_id == institution_id).order_by(Biller.code)
    ).all()


def settlement_balance(session: Session, biller: Biller) -> int:
    account = ledger.get_account(
        session, institution_id=biller.institution_id, account_id=biller.settlement_account_id
    )
    return account.credits_posted - account.debits_posted


def endpoint(session: Session, biller: Biller) -> BillerEndpoint:
    """How to reach an HTTP biller: its URL and keys, our key unwrapped."""
    if biller.protocol != BillerProtocol.http:
        raise InvalidInput(
            "bills.not_an_http_biller", "this biller takes bill files only", field="biller_id"
        )
    assert biller.base_url and biller.biller_public_key and biller.our_private_key_wrapped
    institution = institutions.get_institution(session, institution_id=biller.institution_id)
    our_key = SM2PrivateKey.from_hex(
        sm4_gcm_decrypt(_wrap_key(), biller.our_private_key_wrapped, aad=_key_aad(biller.id)).hex()
    )
    return BillerEndpoint(
        base_url=biller.base_url,
        caller=institution.code,
        our_key=our_key,
        biller_key=SM2PublicKey.from_hex(biller.biller_public_key),
    )


# --------------------------------------------------------------------------- bills


def get_bill(
    session: Session, *, institution_id: uuid.UUID, bill_id: uuid.UUID, lock: bool = False
) -> Bill:
    statement = select(Bill).where(Bill.id == bill_id, Bill.institution_id == institution_id)
    if lock and is_postgres(session):
        statement = statement.with_for_update()
    bill = session.scalar(statement)
    if bill is None:
        raise NotFound("bills.bill_not_found", "no such bill", field="bill_id")
    return bill


def list_bills(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID | None = None,
    reference: str | None = None,
    status: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 100,
) -> Sequence[Bill]:
    statement = select(Bill).where(Bill.institution_id == institution_id)
    if biller_id is not None:
        statement = statement.where(Bill.biller_id == biller_id)
    if reference is not None:
        statement = statement.where(Bill.reference == reference)
    if status is not None:
        statement = statement.where(Bill.status == _check_choice(status, BillStatus, "status"))
    if after is not None:
        statement = statement.where(Bill.id > after)
    return session.scalars(statement.order_by(Bill.id).limit(limit)).all()


@dataclass(frozen=True)
class ImportResult:
    bill_file: BillFile
    replayed: bool  # the same file was imported before: nothing new written


def _existing_bills(
    session: Session, institution_id: uuid.UUID, biller_id: uuid.UUID, references: set[str]
) -> dict[tuple[str, str], Bill]:
    found: dict[tuple[str, str], Bill] = {}
    ordered = sorted(references)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for bill in session.scalars(
            select(Bill).where(
                Bill.institution_id == institution_id,
                Bill.biller_id == biller_id,
                Bill.reference.in_(chunk),
            )
        ):
            found[(bill.reference, bill.period)] = bill
    return found


def import_bill_file(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    data: bytes,
    filename: str | None = None,
    encoding: str | None = None,
    actor: Principal | None = None,
) -> ImportResult:
    """Import a biller's bill file: all rows or none.

    Idempotent twice over: the same file (by SM3 digest) returns its first import; a row
    already on record with the same amount and due date (from an earlier, overlapping file)
    is skipped. A row that contradicts a bill on record is an error of that row.
    """
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            "bills.file_too_large", f"a bill file is at most {MAX_FILE_BYTES} bytes", field="file"
        )
    digest = sm3(data).hex()
    earlier = session.scalar(
        select(BillFile).where(
            BillFile.institution_id == institution_id,
            BillFile.biller_id == biller.id,
            BillFile.digest == digest,
        )
    )
    if earlier is not None:
        return ImportResult(earlier, replayed=True)
    parsed = files.parse_bill_file(data, encoding=encoding)
    if not parsed.ok:
        raise FileRejected(parsed.errors, what="bill file")
    existing = _existing_bills(
        session, institution_id, biller.id, {r.reference for r in parsed.rows}
    )
    errors: list[files.RowError] = []
    new_rows: list[files.BillRow] = []
    for row in parsed.rows:
        bill = existing.get((row.reference, row.period))
        if bill is None:
            new_rows.append(row)
        elif bill.amount_due != row.amount or bill.due_date != row.due_date:
            errors.append(
                files.RowError(
                    row.row,
                    "amount",
                    f"a bill for this reference and period is on record with amount "
                    f"{files.format_yuan(bill.amount_due)} and due date {bill.due_date}",
                )
            )
    if errors:
        raise FileRejected(errors, what="bill file")
    now = clock.now()
    bill_file = BillFile(
        id=uuid7(),
        institution_id=institution_id,
        biller_id=biller.id,
        digest=digest,
        filename=(filename or None) and filename[-255:],
        encoding=parsed.encoding,
        row_count=len(parsed.rows),
        new_bills=len(new_rows),
        total_amount=sum(r.amount for r in parsed.rows),
        imported_at=now,
    )
    session.add(bill_file)
    session.flush()
    session.add_all(
        Bill(
            id=uuid7(),
            institution_id=institution_id,
            biller_id=biller.id,
            reference=row.reference,
            period=row.period,
            amount_due=row.amount,
            due_date=row.due_date,
            status=BillStatus.open,
            source=BillSource.file,
            bill_file_id=bill_file.id,
            biller_bill_id=row.bill_number,
            created_at=now,
            paid_at=None,
        )
        for row in new_rows
    )
    session.flush()
    audit.record(
        session,
        action="bills.bill_file_imported",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_file",
        object_id=str(bill_file.id),
        detail={
            "biller_id": str(biller.id),
            "rows": bill_file.row_count,
            "new_bills": bill_file.new_bills,
            "total_amount": bill_file.total_amount,
        },
    )
    return ImportResult(bill_file, replayed=False)


def store_remote_bills(
    session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID, remote: list[RemoteBill]
) -> list[Bill]:
    """Record what an HTTP biller answered to a query. The biller is authoritative for a bill
    we have not paid: its amount wins, and a bill it no longer holds open is closed here
    (``cancelled``: we can no longer collect it)."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    existing = _existing_bills(session, institution_id, biller.id, {r.reference for r in remote})
    out: list[Bill] = []
    for item in remote:
        try:
            reference = files.parse_reference(item.reference)
            period = files.parse_period(item.period)
        except ValueError:
            continue  # the biller's own oddity; never stored
        if not 0 < item.amount <= MAX_FEN:
            continue
        bill = existing.get((reference, period))
        if bill is None:
            if item.status != "open":
                continue
            bill = Bill(
                id=uuid7(),
                institution_id=institution_id,
                biller_id=biller.id,
                reference=reference,
                period=period,
                amount_due=item.amount,
                due_date=item.due_date,
                status=BillStatus.open,
                source=BillSource.http,
                bill_file_id=None,
                biller_bill_id=item.bill_id[:64],
                created_at=clock.now(),
                paid_at=None,
            )
            session.add(bill)
        elif bill.status == BillStatus.open:
            bill.amount_due = item.amount
            bill.due_date = item.due_date
            bill.biller_bill_id = item.bill_id[:64]
            if item.status != "open":
                bill.status = BillStatus.cancelled
        out.append(bill)
    session.flush()
    return out


def refresh_bills(
    factory: sessionmaker[Session],
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    reference: str,
) -> list[uuid.UUID]:
    """Query an HTTP biller for a reference's bills and record them; the ids of the bills
    it answered, open ones first. Raises :class:`BillerError` when the biller fails."""
    try:
        reference = files.parse_reference(reference)
    except ValueError as exc:
        raise InvalidInput("bills.invalid_reference", str(exc), field="reference") from exc

    def load(session: Session) -> BillerEndpoint:
        biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
        return endpoint(session, biller)

    remote = BillerClient(run_in_transaction(factory, load)).query(reference)
    remote = [r for r in remote if r.reference == reference]
    bills = run_in_transaction(
        factory,
        lambda s: [
            (b.status != BillStatus.open, b.period, b.id)
            for b in store_remote_bills(
                s, institution_id=institution_id, biller_id=biller_id, remote=remote
            )
        ],
    )
    return [bill_id for *_, bill_id in sorted(bills)]


# --------------------------------------------------------------------------- paying


def _transfer_id(institution_id: uuid.UUID, client_id: str, leg: str) -> uuid.UUID:
    return uuid.uuid5(TRANSFER_ID_NAMESPACE, f"{institution_id}/{client_id}/{leg}")


_LEDGER_REFUSALS = {
    CreateTransferResult.exceeds_credits: (
        "ledger.exceeds_credits",
        "insufficient funds: the available balance is lower than the amount",
        "amount",
    ),
    CreateTransferResult.debit_account_already_closed: (
        "ledger.account_closed",
        "the paying account is closed",
        "account_number",
    ),
    CreateTransferResult.accounts_must_have_the_same_ledger: (
        "ledger.ledger_must_match",
        "the account is not in the biller's currency",
        "account_number",
    ),
}


def pay_bill(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    bill_id: uuid.UUID,
    account: Account,
    amount: int,
    channel: str,
    actor: Principal | None = None,
) -> BillPayment:
    """Pay a bill from the payer's deposit ``account`` (counter, service point or web hall).

    Refuses: a paid bill (409 ``bills.already_paid``), a cancelled one (409), an amount other
    than the amount due (422 ``bills.wrong_amount``), insufficient funds (409). The same
    ``client_id`` with the same content returns the first payment; with other content, 409.
    """
    _check_choice(channel, Channel, "channel")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_FEN:
        raise InvalidInput(
            "bills.invalid_amount", "the amount is whole fen, above zero", field="amount"
        )
    earlier = session.scalar(
        select(BillPayment).where(
            BillPayment.institution_id == institution_id, BillPayment.client_id == client_id
        )
    )
    if earlier is not None:
        same = (
            earlier.bill_id == bill_id
            and earlier.debit_account_id == account.id
            and earlier.amount == amount
            and earlier.channel == channel
        )
        if not same:
            raise Conflict(
                "bills.client_id_reused",
                "this client id was used for another payment; use a new one",
                field="client_id",
            )
        return earlier
    if account.institution_id != institution_id or account.code != AccountCode.customer_deposits:
        raise NotFound(
            "ledger.account_not_found",
            "no deposit account with this number",
            field="account_number",
        )
    bill = get_bill(session, institution_id=institution_id, bill_id=bill_id, lock=True)
    if bill.status == BillStatus.paid:
        raise Conflict("bills.already_paid", "this bill has been paid already", field="bill_id")
    if bill.status == BillStatus.cancelled:
        raise Conflict("bills.bill_cancelled", "this bill is cancelled", field="bill_id")
    if amount != bill.amount_due:
        raise InvalidInput(
            "bills.wrong_amount",
            f"the amount due is {files.format_yuan(bill.amount_due)} yuan ({bill.amount_due} fen)",
            field="amount",
        )
    biller = get_biller(session, institution_id=institution_id, biller_id=bill.biller_id)
    if not biller.active:
        raise Conflict("bills.biller_inactive", "this biller takes no payments", field="bill_id")
    transfer_id = _transfer_id(institution_id, client_id, "bill")
    results = ledger.create_transfers(
        session,
        institution_id=institution_id,
        batch=[
            TransferInput(
                id=transfer_id,
                debit_account_id=account.id,
                credit_account_id=biller.settlement_account_id,
                amount=amount,
                ledger=account.ledger,
                code=TransferCode.bill_payment,
                reference=str(bill.id),
            )
        ],
    )
    for result in results:
        if not result.result.applied:
            code, message, field_name = _LEDGER_REFUSALS.get(
                result.result,
                (f"ledger.{result.result.value}", f"the ledger refused: {result.result}", None),
            )
            raise Conflict(code, message, field=field_name)
    now = clock.now()
    institution = institutions.get_institution(session, institution_id=institution_id)
    bill.status = BillStatus.paid
    bill.paid_at = now
    payment = BillPayment(
        id=uuid7(),
        institution_id=institution_id,
        client_id=client_id,
        bill_id=bill.id,
        biller_id=biller.id,
        debit_account_id=account.id,
        credit_account_id=biller.settlement_account_id,
        transfer_id=transfer_id,
        amount=amount,
        currency=account.ledger,
        channel=channel,
        business_date=institution.business_date,
        confirmation=Confirmation.pending
        if biller.protocol == BillerProtocol.http
        else Confirmation.not_required,
        confirmation_attempts=0,
        last_confirmation_error=None,
        biller_receipt=None,
        confirmed_at=None,
        settled_by_id=None,
        created_at=now,
    )
    session.add(payment)
    # The bill row is locked (PostgreSQL) or the database is (SQLite's BEGIN IMMEDIATE), so a
    # concurrent payment of this bill waits and then sees it paid; the unique bill_id is the
    # last line of defence (its violation makes the entry point retry and answer 409).
    session.flush()
    audit.record(
        session,
        action="bills.paid",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_payment",
        object_id=str(payment.id),
        detail={
            "bill_id": str(bill.id),
            "biller_id": str(biller.id),
            "amount": amount,
            "channel": channel,
            "transfer_id": str(transfer_id),
        },
    )
    return payment


def pay_bill_from_account_number(
    session: Session,
    *,
    institution_id: uuid.UUID,
    client_id: str,
    bill_id: uuid.UUID,
    account_number: str,
    amount: int,
    channel: str,
    actor: Principal | None = None,
) -> BillPayment:
    account = payments.deposit_account(
        session, institution_id=institution_id, account_number=account_number
    )
    return pay_bill(
        session,
        institution_id=institution_id,
        client_id=client_id,
        bill_id=bill_id,
        account=account,
        amount=amount,
        channel=channel,
        actor=actor,
    )


def get_payment(
    session: Session, *, institution_id: uuid.UUID, payment_id: uuid.UUID
) -> BillPayment:
    payment = session.get(BillPayment, payment_id)
    if payment is None or payment.institution_id != institution_id:
        raise NotFound("bills.payment_not_found", "no such bill payment", field="payment_id")
    return payment


# --------------------------------------------------------------------------- confirmation


@dataclass(frozen=True)
class ConfirmationOutcome:
    payment_id: uuid.UUID
    confirmation: str
    error: str | None = None


def confirm_payment(
    factory: sessionmaker[Session], *, institution_id: uuid.UUID, payment_id: uuid.UUID
) -> ConfirmationOutcome:
    """Confirm one payment to its HTTP biller, outside any transaction, then record the
    outcome. Never raises for the biller's failure: the payment stays pending and the reason
    is recorded (the money has moved; only the biller's knowing of it is late)."""

    def load(session: Session) -> tuple[str, BillerEndpoint | None, dict[str, object]]:
        payment = get_payment(session, institution_id=institution_id, payment_id=payment_id)
        if payment.confirmation != Confirmation.pending:
            return payment.confirmation, None, {}
        bill = session.get(Bill, payment.bill_id)
        biller = session.get(Biller, payment.biller_id)
        assert bill is not None and biller is not None and bill.paid_at is not None
        return (
            payment.confirmation,
            endpoint(session, biller),
            {
                "payment_id": str(payment.id),
                "bill_id": bill.biller_bill_id,
                "reference": bill.reference,
                "period": bill.period,
                "amount": payment.amount,
                "paid_at": payment.created_at,
            },
        )

    state, target, request = run_in_transaction(factory, load)
    if target is None:
        return ConfirmationOutcome(payment_id, state)
    try:
        receipt = BillerClient(target).confirm(**request)  # type: ignore[arg-type]
        error = None
    except BillerError as exc:
        receipt, error = None, f"{exc.code}: {exc.message}"[:200]

    def record(session: Session) -> ConfirmationOutcome:
        payment = get_payment(session, institution_id=institution_id, payment_id=payment_id)
        if payment.confirmation != Confirmation.pending:
            return ConfirmationOutcome(payment_id, payment.confirmation)
        payment.confirmation_attempts += 1
        if receipt is not None:
            payment.confirmation = Confirmation.confirmed
            payment.biller_receipt = receipt.receipt
            payment.confirmed_at = clock.now()
            payment.last_confirmation_error = None
        else:
            payment.last_confirmation_error = error
        session.flush()
        audit.record(
            session,
            action="bills.confirmation",
            institution_id=institution_id,
            object_type="bill_payment",
            object_id=str(payment.id),
            outcome="ok" if receipt is not None else "failed",
            detail={"attempt": payment.confirmation_attempts},
        )
        return ConfirmationOutcome(payment_id, payment.confirmation, error)

    return run_in_transaction(factory, record)


@dataclass
class ConfirmSummary:
    confirmed: int = 0
    still_pending: int = 0
    errors: list[str] = field(default_factory=list)


def pending_confirmations(
    session: Session,
    *,
    institution_id: uuid.UUID | None = None,
    biller_id: uuid.UUID | None = None,
    limit: int = 10_000,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(institution id, payment id) of payments whose confirmation is pending, oldest first."""
    statement = select(BillPayment.institution_id, BillPayment.id).where(
        BillPayment.confirmation == Confirmation.pending
    )
    if institution_id is not None:
        statement = statement.where(BillPayment.institution_id == institution_id)
    if biller_id is not None:
        statement = statement.where(BillPayment.biller_id == biller_id)
    rows = session.execute(statement.order_by(BillPayment.id).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def confirm_pending(
    factory: sessionmaker[Session],
    *,
    institution_id: uuid.UUID | None = None,
    biller_id: uuid.UUID | None = None,
    on_each: Callable[[], object] | None = None,
) -> ConfirmSummary:
    """Retry every pending confirmation (of one institution or biller, or all)."""
    todo = run_in_transaction(
        factory,
        lambda s: pending_confirmations(s, institution_id=institution_id, biller_id=biller_id),
    )
    summary = ConfirmSummary()
    for owner, payment_id in todo:
        outcome = confirm_payment(factory, institution_id=owner, payment_id=payment_id)
        if outcome.confirmation == Confirmation.confirmed:
            summary.confirmed += 1
        elif outcome.confirmation == Confirmation.pending:
            summary.still_pending += 1
            if outcome.error:
                summary.errors.append(f"{payment_id}: {outcome.error}")
        if on_each is not None:
            on_each()
    return summary


# --------------------------------------------------------------------------- settlement


def day_payments(
    session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID, business_date: date
) -> list[tuple[BillPayment, Bill]]:
    rows = session.execute(
        select(BillPayment, Bill)
        .join(Bill, Bill.id == BillPayment.bill_id)
        .where(
            BillPayment.institution_id == institution_id,
            BillPayment.biller_id == biller_id,
            BillPayment.business_date == business_date,
        )
        .order_by(BillPayment.created_at, BillPayment.id)
    ).all()
    return [(payment, bill) for payment, bill in rows]


def settlement_file(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    business_date: date,
    actor: Principal | None = None,
) -> tuple[bytes, files.SettlementTotals]:
    """The day's settlement file for one biller and its totals."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    lines = [
        files.SettlementLine(str(p.id), b.reference, b.period, p.amount, p.created_at)
        for p, b in day_payments(
            session, institution_id=institution_id, biller_id=biller.id, business_date=business_date
        )
    ]
    audit.record(
        session,
        action="bills.settlement_file",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"business_date": business_date.isoformat(), "count": len(lines)},
    )
    return files.write_settlement_file(lines), files.settlement_totals(lines)


# --------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    payment_reference: str
    reference: str | None
    our_amount: int | None
    their_amount: int | None
    their_row: int | None


def compare(
    ours: dict[str, tuple[str, int]], theirs: Sequence[files.ReturnRow]
) -> tuple[list[str], list[Mismatch]]:
    """Pure comparison. ``ours``: payment id -> (reference, fen). Returns the payment ids
    that match exactly once, and every mismatch."""
    counts = Counter(row.payment_id for row in theirs)
    mismatches: list[Mismatch] = []
    matched: list[str] = []
    reported_duplicates: set[str] = set()
    for row in theirs:
        mine = ours.get(row.payment_id)
        if counts[row.payment_id] > 1:
            if row.payment_id not in reported_duplicates:
                reported_duplicates.add(row.payment_id)
                mismatches.append(
                    Mismatch(
                        MismatchKind.duplicate,
                        row.payment_id,
                        row.reference,
                        mine[1] if mine else None,
                        row.amount,
                        row.row,
                    )
                )
            continue
        if mine is None:
            mismatches.append(
                Mismatch(
                    MismatchKind.missing_on_our_side,
                    row.payment_id,
                    row.reference,
                    None,
                    row.amount,
                    row.row,
                )
            )
        elif mine[1] != row.amount:
            mismatches.append(
                Mismatch(
                    MismatchKind.amount_differs,
                    row.payment_id,
                    mine[0],
                    mine[1],
                    row.amount,
                    row.row,
                )
            )
        else:
            matched.append(row.payment_id)
    for payment_id, (reference, amount) in ours.items():
        if payment_id not in counts:
            mismatches.append(
                Mismatch(
                    MismatchKind.missing_on_their_side, payment_id, reference, amount, None, None
                )
            )
    return matched, mismatches


def reconcile(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    data: bytes,
    business_date: date | None = None,
    encoding: str | None = None,
    settle: bool = True,
    actor: Principal | None = None,
) -> BillReconciliation:
    """Reconcile a biller's return file with our payments of ``business_date`` (by default
    the date of our payments the file names), store every mismatch, and settle the matched
    payments not settled before (see the module docstring). The same file again returns the
    stored result."""
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    digest = sm3(data).hex()
    earlier = session.scalar(
        select(BillReconciliation).where(
            BillReconciliation.institution_id == institution_id,
            BillReconciliation.biller_id == biller.id,
            BillReconciliation.digest == digest,
        )
    )
    if earlier is not None:
        return earlier
    parsed = files.parse_return_file(data, encoding=encoding)
    if not parsed.ok:
        raise FileRejected(parsed.errors, what="return file")
    if business_date is None:
        named = {_as_uuid(r.payment_id) for r in parsed.rows} - {None}
        dates = set(
            session.scalars(
                select(BillPayment.business_date).where(
                    BillPayment.institution_id == institution_id,
                    BillPayment.biller_id == biller.id,
                    BillPayment.id.in_(list(named)[:10_000]),
                )
            )
        )
        if len(dates) != 1:
            raise InvalidInput(
                "bills.business_date_required",
                "the file does not name payments of exactly one day; give the business date",
                field="business_date",
            )
        business_date = dates.pop()
    payments_of_day = day_payments(
        session, institution_id=institution_id, biller_id=biller.id, business_date=business_date
    )
    by_id = {str(p.id): p for p, _ in payments_of_day}
    ours = {str(p.id): (b.reference, p.amount) for p, b in payments_of_day}
    matched, mismatches = compare(ours, parsed.rows)
    to_settle = [by_id[m] for m in matched if by_id[m].settled_by_id is None]
    settled_amount = sum(p.amount for p in to_settle)
    reconciliation = BillReconciliation(
        id=uuid7(),
        institution_id=institution_id,
        biller_id=biller.id,
        business_date=business_date,
        digest=digest,
        their_count=len(parsed.rows),
        their_amount=sum(r.amount for r in parsed.rows),
        our_count=len(ours),
        our_amount=sum(amount for _, amount in ours.values()),
        matched_count=len(matched),
        matched_amount=sum(by_id[m].amount for m in matched),
        mismatch_count=len(mismatches),
        settled_amount=0,
        settlement_transfer_id=None,
        created_at=clock.now(),
    )
    session.add(reconciliation)
    session.flush()
    session.add_all(
        BillReconciliationItem(
            id=uuid7(),
            institution_id=institution_id,
            reconciliation_id=reconciliation.id,
            kind=m.kind,
            payment_reference=m.payment_reference[:64],
            reference=m.reference[:64] if m.reference else None,
            our_amount=m.our_amount,
            their_amount=m.their_amount,
            their_row=m.their_row,
        )
        for m in mismatches
    )
    if settle and settled_amount:
        settlement = ledger.get_account(
            session, institution_id=institution_id, account_id=biller.settlement_account_id
        )
        clearing = ledger.system_account(
            session,
            institution_id=institution_id,
            code=AccountCode.clearing,
            ledger=settlement.ledger,
        )
        transfer_id = _transfer_id(institution_id, f"reconciliation/{reconciliation.id}", "settle")
        results = ledger.create_transfers(
            session,
            institution_id=institution_id,
            batch=[
                TransferInput(
                    id=transfer_id,
                    debit_account_id=settlement.id,
                    credit_account_id=clearing.id,
                    amount=settled_amount,
                    ledger=settlement.ledger,
                    code=TransferCode.biller_settlement,
                    reference=str(reconciliation.id),
                )
            ],
        )
        if not results[0].result.applied:
            raise Conflict(
                f"ledger.{results[0].result.value}",
                f"the settlement transfer was refused: {results[0].result}",
            )
        reconciliation.settled_amount = settled_amount
        reconciliation.settlement_transfer_id = transfer_id
        for payment in to_settle:
            payment.settled_by_id = reconciliation.id
    session.flush()
    audit.record(
        session,
        action="bills.reconciled",
        institution_id=institution_id,
        actor=actor,
        object_type="bill_reconciliation",
        object_id=str(reconciliation.id),
        detail={
            "biller_id": str(biller.id),
            "business_date": business_date.isoformat(),
            "matched": reconciliation.matched_count,
            "mismatches": reconciliation.mismatch_count,
            "settled_amount": reconciliation.settled_amount,
        },
    )
    return reconciliation


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def get_reconciliation(
    session: Session, *, institution_id: uuid.UUID, reconciliation_id: uuid.UUID
) -> BillReconciliation:
    found = session.get(BillReconciliation, reconciliation_id)
    if found is None or found.institution_id != institution_id:
        raise NotFound(
            "bills.reconciliation_not_found", "no such reconciliation", field="reconciliation_id"
        )
    return found


def reconciliation_items(
    session: Session, *, reconciliation: BillReconciliation
) -> Sequence[BillReconciliationItem]:
    return session.scalars(
        select(BillReconciliationItem)
        .where(BillReconciliationItem.reconciliation_id == reconciliation.id)
        .order_by(BillReconciliationItem.kind, BillReconciliationItem.payment_reference)
    ).all()
