"""Billers, bills and bill payment (代缴费).

* Billers: ``POST/GET /billers``, ``GET/PATCH /billers/{biller_id}``.
* Bills: a bill file is posted to ``/billers/{biller_id}/bill-files`` as the raw CSV body
  (``Content-Type: text/csv``) or as ``multipart/form-data`` with a ``file`` field; a bad
  file answers 422 with ``errors`` listing every problem by ``row`` and ``column``, and
  writes nothing. ``POST /billers/{biller_id}/bill-queries`` asks an HTTP biller for a
  reference's bills. ``GET /bills`` and ``/bills/{bill_id}`` read what is on record.
* ``POST /bill-payments`` (with an ``Idempotency-Key``) pays a bill from a deposit account:
  the channel is the caller's — ``counter`` for staff, ``service_point`` for a signed agent
  terminal. For an HTTP biller the bill is queried first and the payment confirmed after our
  commit; if the biller fails, the answer is still 201 with ``confirmation: pending`` (the
  money has moved) and ``POST /bill-payments/{payment_id}/confirmation`` or
  ``huinong bills confirm-pending`` retries.
* ``GET /billers/{biller_id}/settlement-file?date=`` downloads the day's settlement file;
  ``POST /billers/{biller_id}/reconciliations`` takes the biller's return file (raw CSV) and
  answers the stored reconciliation with every mismatch; ``GET
  /bill-reconciliations/{reconciliation_id}`` reads it again.
"""

from __future__ import annotations

import email.parser
import email.policy
import uuid
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from huinong.api.deps import Database, DatabaseDep, IdempotencyKeyDep, PrincipalDep, run_idempotent
from huinong.api.pagination import decode_id, encode_id
from huinong.api.problems import problem
from huinong.api.responses import FastJSONResponse
from huinong.errors import InvalidInput
from huinong.payments.bills import billers, confirmations, intake, paying, settlement
from huinong.payments.bills.common import FileRejected
from huinong.payments.bills.models import BillerProtocol, BillStatus, Channel
from huinong.payments.bills.schemas import (
    BillerCreate,
    BillerPage,
    BillerRead,
    BillerUpdate,
    BillFileRead,
    BillPage,
    BillPaymentCreate,
    BillPaymentRead,
    BillQuery,
    BillRead,
    MismatchRead,
    ReconciliationRead,
)
from huinong.security.principals import Principal, PrincipalKind

router = APIRouter(tags=["bills"])


def _rejected(exc: FileRejected) -> Response:
    return problem(
        exc.status,
        exc.code,
        exc.message,
        field=exc.field,
        errors=[
            {
                "field": e.column or "file",
                "row": e.row,
                "column": e.column,
                "message": e.message,
            }
            for e in exc.errors[:1000]
        ],
    )


def _uploaded(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """The file of a request: its raw body, or the ``file`` field of a multipart form."""
    if not content_type.lower().startswith("multipart/form-data"):
        return body, None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True)
                return (payload if isinstance(payload, bytes) else b""), part.get_filename()
    raise InvalidInput(
        "bills.file_missing", "send the file as a form field named file", field="file"
    )


def _channel(principal: Principal) -> str:
    if principal.kind == PrincipalKind.terminal:
        return Channel.service_point
    if principal.kind == PrincipalKind.customer:
        return Channel.web_hall
    return Channel.counter


# --------------------------------------------------------------------------- billers


@router.post("/billers", status_code=201, response_model=BillerRead)
def create_biller(body: BillerCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: BillerRead.model_validate(
            billers.create_biller(
                s,
                institution_id=principal.institution_id,
                actor=principal,
                currency=principal.currency,
                **body.model_dump(),
            )
        )
    )


@router.get("/billers", response_model=BillerPage)
def list_billers(principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: BillerPage(
            items=[
                BillerRead.model_validate(b)
                for b in billers.list_billers(s, institution_id=principal.institution_id)
            ]
        )
    )


@router.get("/billers/{biller_id}", response_model=BillerRead)
def get_biller(biller_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: BillerRead.model_validate(
            billers.get_biller(s, institution_id=principal.institution_id, biller_id=biller_id)
        )
    )


@router.patch("/billers/{biller_id}", response_model=BillerRead)
def update_biller(
    biller_id: uuid.UUID, body: BillerUpdate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: BillerRead.model_validate(
            billers.update_biller(
                s,
                institution_id=principal.institution_id,
                biller_id=biller_id,
                actor=principal,
                **body.model_dump(),
            )
        )
    )


# --------------------------------------------------------------------------- bills


@router.post("/billers/{biller_id}/bill-files", status_code=201, response_model=BillFileRead)
async def import_bill_file(
    biller_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    encoding: Annotated[str | None, Query(pattern=r"^(?i:utf-?8|gbk|gb18030)$")] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    """Import a bill file (CSV, UTF-8 or GBK): all rows or none. The same file again
    answers 200 with its first import (``replayed: true``)."""
    body = await request.body()
    data, form_name = _uploaded(body, request.headers.get("content-type", ""))

    def unit(session: Session) -> tuple[int, Any]:
        result = intake.import_bill_file(
            session,
            institution_id=principal.institution_id,
            biller_id=biller_id,
            data=data,
            filename=filename or form_name,
            encoding=encoding,
            actor=principal,
        )
        read = BillFileRead.model_validate(result.bill_file)
        read.replayed = result.replayed
        return (200 if result.replayed else 201), read.model_dump(mode="json")

    try:
        status, content = await run_in_threadpool(database.run, unit)
    except FileRejected as exc:
        return _rejected(exc)
    return FastJSONResponse(content, status_code=status)


@router.post("/billers/{biller_id}/bill-queries", response_model=BillPage)
def query_bills(
    biller_id: uuid.UUID, body: BillQuery, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Ask an HTTP biller for a reference's bills (open ones first) and keep them on record."""
    ids = intake.refresh_bills(
        database.factory,
        institution_id=principal.institution_id,
        biller_id=biller_id,
        reference=body.reference,
    )

    def read(session: Session) -> BillPage:
        bills = [
            intake.get_bill(session, institution_id=principal.institution_id, bill_id=bill_id)
            for bill_id in ids
        ]
        return BillPage(items=[BillRead.model_validate(b) for b in bills], next_cursor=None)

    return database.run(read)


@router.get("/bills", response_model=BillPage)
def list_bills(
    principal: PrincipalDep,
    database: DatabaseDep,
    biller_id: uuid.UUID | None = None,
    reference: Annotated[str | None, Query(max_length=64)] = None,
    status: BillStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    def unit(session: Session) -> BillPage:
        bills = intake.list_bills(
            session,
            institution_id=principal.institution_id,
            biller_id=biller_id,
            reference=reference,
            status=status,
            after=decode_id(cursor),
            limit=limit,
        )
        return BillPage(
            items=[BillRead.model_validate(b) for b in bills],
            next_cursor=encode_id(bills[-1].id) if len(bills) == limit else None,
        )

    return database.run(unit)


@router.get("/bills/{bill_id}", response_model=BillRead)
def get_bill(bill_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: BillRead.model_validate(
            intake.get_bill(s, institution_id=principal.institution_id, bill_id=bill_id)
        )
    )


# --------------------------------------------------------------------------- paying


@router.post("/bill-payments", status_code=201, response_model=BillPaymentRead)
def pay_bill(
    body: BillPaymentCreate,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    """Pay a bill from a deposit account, once per Idempotency-Key."""
    institution_id = principal.institution_id

    def look(session: Session) -> tuple[uuid.UUID, str, str, str]:
        bill = intake.get_bill(session, institution_id=institution_id, bill_id=body.bill_id)
        biller = billers.get_biller(
            session, institution_id=institution_id, biller_id=bill.biller_id
        )
        return biller.id, biller.protocol, bill.status, bill.reference

    biller_id, protocol, status, reference = database.run(look)
    if protocol == BillerProtocol.http and status == BillStatus.open:
        # The biller is authoritative for an unpaid bill: ask it before taking money.
        intake.refresh_bills(
            database.factory,
            institution_id=institution_id,
            biller_id=biller_id,
            reference=reference,
        )

    def work(session: Session) -> tuple[int, Any]:
        payment = paying.pay_bill_from_account_number(
            session,
            institution_id=institution_id,
            client_id=key,
            bill_id=body.bill_id,
            account_number=body.account_number,
            amount=body.amount,
            channel=_channel(principal),
            actor=principal,
        )
        return 201, BillPaymentRead.model_validate(payment).model_dump(mode="json")

    response = run_idempotent(
        request=request,
        database=database,
        principal=principal,
        key=key,
        body=body,
        work=work,
        action="bills.pay",
        object_type="bill_payment",
    )
    if response.status_code != 201:
        return response
    payment_id = uuid.UUID(orjson.loads(response.body)["id"])
    return _after_confirming(database, institution_id, payment_id, response.headers)


def _after_confirming(
    database: Database, institution_id: uuid.UUID, payment_id: uuid.UUID, headers: Any
) -> Response:
    # Confirming never raises for the biller's failure; the state is read back either way.
    confirmations.confirm_payment(
        database.factory, institution_id=institution_id, payment_id=payment_id
    )
    content = database.run(
        lambda s: BillPaymentRead.model_validate(
            paying.get_payment(s, institution_id=institution_id, payment_id=payment_id)
        ).model_dump(mode="json")
    )
    kept = {k: v for k, v in headers.items() if k.lower() == "idempotent-replayed"}
    return FastJSONResponse(content, status_code=201, headers=kept or None)


@router.get("/bill-payments/{payment_id}", response_model=BillPaymentRead)
def get_bill_payment(payment_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: BillPaymentRead.model_validate(
            paying.get_payment(s, institution_id=principal.institution_id, payment_id=payment_id)
        )
    )


@router.post("/bill-payments/{payment_id}/confirmation", response_model=BillPaymentRead)
def confirm_bill_payment(
    payment_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Retry the biller's confirmation of one payment (a no-op once confirmed)."""
    institution_id = principal.institution_id
    database.run(
        lambda s: paying.get_payment(s, institution_id=institution_id, payment_id=payment_id)
    )
    response = _after_confirming(database, institution_id, payment_id, {})
    response.status_code = 200
    return response


# --------------------------------------------------------------------------- settlement


@router.get("/billers/{biller_id}/settlement-file")
def settlement_file(
    biller_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    business_date: Annotated[date, Query(alias="date")],
) -> Response:
    """The biller's settlement file of one business date (CSV, UTF-8, with a TOTAL row)."""
    data, totals = database.run(
        lambda s: settlement.settlement_file(
            s,
            institution_id=principal.institution_id,
            biller_id=biller_id,
            business_date=business_date,
            actor=principal,
        )
    )
    name = f"settlement-{biller_id}-{business_date.isoformat()}.csv"
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Total-Count": str(totals.count),
            "X-Total-Amount": str(totals.amount),
        },
    )


def _reconciliation_read(session: Session, reconciliation: Any) -> dict[str, Any]:
    read = ReconciliationRead.model_validate(reconciliation)
    read.mismatches = [
        MismatchRead.model_validate(item)
        for item in settlement.reconciliation_items(session, reconciliation=reconciliation)
    ]
    return read.model_dump(mode="json")


@router.post(
    "/billers/{biller_id}/reconciliations", status_code=201, response_model=ReconciliationRead
)
async def reconcile(
    biller_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    business_date: Annotated[date | None, Query(alias="date")] = None,
    settle: bool = True,
) -> Any:
    """Reconcile the biller's return file (raw CSV or multipart ``file``) and settle the
    matched payments; the same file again answers the stored result."""
    body = await request.body()
    data, _ = _uploaded(body, request.headers.get("content-type", ""))

    def unit(session: Session) -> dict[str, Any]:
        reconciliation = settlement.reconcile(
            session,
            institution_id=principal.institution_id,
            biller_id=biller_id,
            data=data,
            business_date=business_date,
            settle=settle,
            actor=principal,
        )
        return _reconciliation_read(session, reconciliation)

    try:
        content = await run_in_threadpool(database.run, unit)
    except FileRejected as exc:
        return _rejected(exc)
    return FastJSONResponse(content, status_code=201)


@router.get("/bill-reconciliations/{reconciliation_id}", response_model=ReconciliationRead)
def get_reconciliation(
    reconciliation_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: _reconciliation_read(
            s,
            settlement.get_reconciliation(
                s, institution_id=principal.institution_id, reconciliation_id=reconciliation_id
            ),
        )
    )
