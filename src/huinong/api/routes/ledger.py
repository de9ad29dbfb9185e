"""Ledger accounts, transfers, balances and statements.

``POST /ledger/transfers`` takes a batch and answers one result per item with TigerBeetle's
codes. The HTTP status speaks of the request (a malformed batch is a 422 and nothing runs);
each item's ``result`` speaks of that transfer: ``ok`` and ``exists`` mean it is in the
ledger, any other code means that item wrote nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from huinong.api.deps import DatabaseDep, IdempotencyKeyDep, PrincipalDep, run_idempotent
from huinong.api.pagination import (
    decode_id,
    decode_position,
    encode_id,
    encode_position,
    utc_time,
)
from huinong.api.responses import FastJSONResponse
from huinong.ledger import service
from huinong.ledger.models import Transfer
from huinong.ledger.schemas import (
    AccountCreate,
    AccountPage,
    AccountRead,
    BalanceRead,
    StatementPage,
    TransferBatch,
    TransferBatchResult,
    TransferPage,
    TransferRead,
)
from huinong.ledger.types import TransferInput, flag_names, flags_from_names

router = APIRouter(prefix="/ledger", tags=["ledger"])
Limit = Annotated[int, Query(ge=1, le=500)]


def transfer_json(t: Transfer) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "debit_account_id": str(t.debit_account_id),
        "credit_account_id": str(t.credit_account_id),
        "amount": t.amount,
        "ledger": t.ledger,
        "code": t.code,
        "flags": flag_names(t.flags),
        "pending_id": str(t.pending_id) if t.pending_id else None,
        "timeout": t.timeout,
        "reference": t.reference,
        "metadata": t.metadata_,
        "timestamp": t.timestamp.isoformat(),
    }


@router.post("/accounts", status_code=201, response_model=AccountRead)
def create_account(body: AccountCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    fields = body.model_dump()
    fields["account_id"] = fields.pop("id")
    return database.run(
        lambda s: AccountRead.model_validate(
            service.create_account(s, institution_id=principal.institution_id, **fields)
        )
    )


@router.get("/accounts", response_model=AccountPage)
def list_accounts(
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 50,
    owner_id: uuid.UUID | None = None,
    code: Annotated[int | None, Query(ge=1)] = None,
) -> Any:
    after = decode_id(cursor)
    accounts = database.run(
        lambda s: [
            AccountRead.model_validate(a)
            for a in service.list_accounts(
                s,
                institution_id=principal.institution_id,
                after=after,
                limit=limit,
                owner_id=owner_id,
                code=code,
            )
        ]
    )
    next_cursor = encode_id(accounts[-1].id) if len(accounts) == limit else None
    return AccountPage(items=accounts, next_cursor=next_cursor)


@router.get("/accounts/{account_id}", response_model=AccountRead)
def get_account(account_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: AccountRead.model_validate(
            service.get_account(s, institution_id=principal.institution_id, account_id=account_id)
        )
    )


@router.get("/accounts/{account_id}/balance", response_model=BalanceRead)
def get_balance(
    account_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    as_of: datetime | None = None,
) -> Any:
    """Balances now, or as they stood at ``as_of`` (an ISO 8601 time with a zone)."""
    if as_of is not None:
        as_of = utc_time(as_of, field="as_of")
    return database.run(
        lambda s: BalanceRead.model_validate(
            service.balance(
                s, institution_id=principal.institution_id, account_id=account_id, as_of=as_of
            )
        )
    )


@router.get("/accounts/{account_id}/statement", response_model=StatementPage)
def get_statement(
    account_id: uuid.UUID,
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Any:
    after = decode_position(cursor)

    def unit(session):  # type: ignore[no-untyped-def]
        lines = service.statement(
            session,
            institution_id=principal.institution_id,
            account_id=account_id,
            after=after,
            limit=limit,
        )
        return [
            {
                "transfer": transfer_json(line.transfer),
                "side": line.side,
                "posted_change": line.posted_change,
                "pending_change": line.pending_change,
                "balance_after": line.balance_after,
            }
            for line in lines
        ], lines

    items, lines = database.run(unit)
    last = lines[-1].transfer if len(lines) == limit else None
    return FastJSONResponse(
        {
            "account_id": str(account_id),
            "items": items,
            "next_cursor": encode_position(last.timestamp, last.id) if last else None,
        }
    )


@router.post(
    "/transfers",
    response_model=TransferBatchResult,
    responses={200: {"description": "one result per transfer, in order"}},
)
def create_transfers(
    body: TransferBatch,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    key: IdempotencyKeyDep,
) -> Any:
    batch = [
        TransferInput(
            id=t.id,
            debit_account_id=t.debit_account_id,
            credit_account_id=t.credit_account_id,
            amount=t.amount,
            ledger=t.ledger,
            code=t.code,
            flags=int(flags_from_names(t.flags)),
            pending_id=t.pending_id,
            timeout=t.timeout,
            reference=t.reference,
            metadata=t.metadata,
        )
        for t in body.transfers
    ]

    def work(session):  # type: ignore[no-untyped-def]
        results = service.create_transfers(
            session, institution_id=principal.institution_id, batch=batch
        )
        return 200, {
            "results": [
                {
                    "index": r.index,
                    "id": str(r.id),
                    "result": r.result.value,
                    "timestamp": r.timestamp.isoformat() if r.timestamp else None,
                    "amount": r.amount,
                }
                for r in results
            ]
        }

    return run_idempotent(
        request=request,
        database=database,
        principal=principal,
        key=key,
        body=body,
        work=work,
        action="ledger.create_transfers",
        object_type="transfer_batch",
    )


@router.get("/transfers", response_model=TransferPage)
def list_transfers(
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 50,
    reference: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
) -> Any:
    after = decode_position(cursor)

    def unit(session):  # type: ignore[no-untyped-def]
        return service.list_transfers(
            session,
            institution_id=principal.institution_id,
            after=after,
            limit=limit,
            reference=reference,
        )

    transfers = database.run(unit)
    last = transfers[-1] if len(transfers) == limit else None
    return FastJSONResponse(
        {
            "items": [transfer_json(t) for t in transfers],
            "next_cursor": encode_position(last.timestamp, last.id) if last else None,
        }
    )


@router.get("/transfers/{transfer_id}", response_model=TransferRead)
def get_transfer(transfer_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return FastJSONResponse(
        database.run(
            lambda s: transfer_json(
                service.get_transfer(
                    s, institution_id=principal.institution_id, transfer_id=transfer_id
                )
            )
        )
    )
