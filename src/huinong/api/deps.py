"""Request dependencies: the database, the principal's institution, idempotent execution.

Until the security issue adds authentication, the principal is named by the
``X-Institution`` header (an institution code) and the server binds 127.0.0.1 only. The
institution always comes from the principal, never from a request body.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from huinong import idempotency
from huinong.api.responses import FastJSONResponse
from huinong.db import run_in_transaction
from huinong.errors import Unauthenticated
from huinong.institutions import service as institutions

T = TypeVar("T")


@dataclass
class Database:
    factory: sessionmaker[Session]

    def run(self, work: Callable[[Session], T]) -> T:
        """One use case = one transaction, retried whole on transient conflicts."""
        return run_in_transaction(self.factory, work)


@dataclass(frozen=True)
class Principal:
    institution_id: uuid.UUID
    institution_code: str
    currency: str


# The dependencies are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool,
# one hop each per request; these do no blocking work but for a principal's first lookup.


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(get_database)]


async def current_principal(
    request: Request,
    database: DatabaseDep,
    x_institution: Annotated[
        str | None, Header(description="code of the caller's institution (until auth lands)")
    ] = None,
) -> Principal:
    if not x_institution:
        raise Unauthenticated(
            "auth.institution_required",
            "send the X-Institution header with your institution's code",
            field="X-Institution",
        )
    cache: dict[str, Principal] = request.app.state.principals
    principal = cache.get(x_institution)
    if principal is None:
        institution = await run_in_threadpool(
            database.run, lambda s: institutions.get_institution_by_code(s, code=x_institution)
        )
        principal = Principal(institution.id, institution.code, institution.currency)
        cache[x_institution] = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="required on every call that moves money"),
    ] = None,
) -> str:
    return idempotency.check_key(key)


IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]


def run_idempotent(
    *,
    request: Request,
    database: Database,
    principal: Principal,
    key: str,
    body: BaseModel | None,
    work: Callable[[Session], tuple[int, Any]],
) -> FastJSONResponse:
    """Run a money-moving use case once per Idempotency-Key.

    The key is claimed (inserted) before the use case runs, so a concurrent request with the
    same key waits for this one and then sees its outcome; the response is stored in the use
    case's own transaction, so it exists exactly when the effects do. A replay returns it with
    ``Idempotent-Replayed: true``.
    """
    payload = body.model_dump_json().encode() if body is not None else b""
    print_ = idempotency.fingerprint(request.method, request.url.path, payload)

    def unit(session: Session) -> tuple[int, Any, bool]:
        stored = idempotency.lookup(
            session, institution_id=principal.institution_id, key=key, request_fingerprint=print_
        )
        if stored is not None:
            return stored.status_code, stored.body, True
        claimed = idempotency.claim(
            session, institution_id=principal.institution_id, key=key, request_fingerprint=print_
        )
        status, content = work(session)
        idempotency.complete(session, record=claimed, status_code=status, body=content)
        return status, content, False

    status, content, replayed = database.run(unit)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return FastJSONResponse(content, status_code=status, headers=headers)
