"""Request dependencies: the database, who is calling and whether they may, idempotent execution.

Every route under ``/api/v1`` is guarded by ``authorize``: it finds the route's row in the
permission table (``huinong.security.permissions``), lets public routes through, and
otherwise needs a principal whose roles the row grants (401 without one, 403 with the wrong
roles). The principal comes from one of two credentials:

* ``Authorization: Bearer <access token>`` — a staff user or a customer signed in with
  ``/api/v1/auth/...``; the token names a sign-in session, read as it is now (a revoked
  session or a changed role counts at once on this worker, and within
  ``SESSION_CACHE_SECONDS`` on the others);
* an SM2-signed terminal request (``X-Terminal-Id`` and the other signature headers; see
  ``huinong.security.terminals.signing``).

The institution always comes from the credential, never from the request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from huinong import idempotency
from huinong.api.responses import FastJSONResponse
from huinong.api.terminal_auth import authenticate_terminal
from huinong.db import run_in_transaction
from huinong.errors import Forbidden, HuinongError, Unauthenticated
from huinong.security import permissions
from huinong.security.audit import service as audit
from huinong.security.identities import sessions
from huinong.security.principals import Principal

T = TypeVar("T")

SESSION_CACHE_SECONDS = 1.0
# What a principal that must change its password may still do.
PASSWORD_CHANGE_ROUTES = frozenset(
    {
        ("POST", "/api/v1/auth/password"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/sign-out"),
    }
)


@dataclass
class Database:
    factory: sessionmaker[Session]

    def run(self, work: Callable[[Session], T]) -> T:
        """One use case = one transaction, retried whole on transient conflicts."""
        return run_in_transaction(self.factory, work)


@dataclass
class SessionCache:
    """Principals of recently seen sign-in sessions, for ``SESSION_CACHE_SECONDS``: spares a
    database round trip on every request of a busy session."""

    entries: dict[uuid.UUID, tuple[float, Principal]] = field(default_factory=dict)

    def get(self, session_id: uuid.UUID) -> Principal | None:
        entry = self.entries.get(session_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, session_id: uuid.UUID, principal: Principal) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[session_id] = (time.monotonic() + SESSION_CACHE_SECONDS, principal)

    def forget(self, session_id: uuid.UUID) -> None:
        self.entries.pop(session_id, None)

    def forget_all(self) -> None:
        """After a change that may touch any session (roles, a disabled user, a reused
        refresh token): the next request of every session reads it afresh."""
        self.entries.clear()


# The dependencies are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool,
# one hop each per request; these do no blocking work but for a session's first lookup.


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(get_database)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated(
            "auth.required",
            "sign in (POST /api/v1/auth/sign-in) and send Authorization: Bearer <access token>",
            field="Authorization",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "auth.token_invalid",
            "the Authorization header must read: Bearer <access token>",
            field="Authorization",
        )
    return token.strip()


async def _from_bearer(request: Request, database: Database) -> tuple[uuid.UUID, Principal]:
    token = bearer_token(request)
    session_id = sessions.session_id_of(token)
    cache: SessionCache = request.app.state.sessions
    principal = cache.get(session_id)
    if principal is None:
        principal = await run_in_threadpool(
            database.run,
            lambda s: sessions.principal_for_session(s, session_id=session_id),
        )
        cache.put(session_id, principal)
    return session_id, principal


async def current_principal(request: Request, database: DatabaseDep) -> Principal:
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    if "x-terminal-id" in request.headers:
        principal = await authenticate_terminal(request, database)
        request.state.session_id = None
    else:
        request.state.session_id, principal = await _from_bearer(request, database)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


API_PREFIX = "/api/v1"


def route_key(request: Request) -> tuple[str, str]:
    """(method, path template) as the permission table names the route. Routers are mounted
    under ``API_PREFIX``; FastAPI may keep an included route's path relative to it."""
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    path: str = getattr(route, "path", request.url.path)
    if not path.startswith(API_PREFIX + "/"):
        path = API_PREFIX + path
    return method, path


async def authorize(request: Request, database: DatabaseDep) -> None:
    """The guard of every ``/api/v1`` route: the permission table, row by row."""
    method, path = route_key(request)
    if permissions.is_public(method, path):
        return
    principal = await current_principal(request, database)
    if principal.must_change_password and (method, path) not in PASSWORD_CHANGE_ROUTES:
        raise Forbidden(
            "auth.password_change_required",
            "change the password an administrator set first (POST /api/v1/auth/password)",
        )
    if not principal.has_any(permissions.allowed_roles(method, path)):
        held = ", ".join(sorted(principal.roles)) or "none"
        raise Forbidden("auth.forbidden", f"your roles ({held}) do not allow {method} {path}")


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="required on every call that moves money"),
    ] = None,
) -> str:
    return idempotency.check_key(key)


IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]


class _Replay(Exception):
    """A stored response found after the use case had started: it rolls its work back."""

    def __init__(self, stored: idempotency.StoredResponse) -> None:
        self.stored = stored


def run_idempotent(
    *,
    request: Request,
    database: Database,
    principal: Principal,
    key: str,
    body: BaseModel | None,
    work: Callable[[Session], tuple[int, Any]],
    action: str,
    object_type: str,
) -> FastJSONResponse:
    """Run a money-moving use case once per Idempotency-Key (the protocol:
    ``huinong.idempotency``).

    The response is stored in the use case's own transaction, so it exists exactly when the
    effects do. A replay returns it with ``Idempotent-Replayed: true``: found up front when a
    first try lost the key to a committed request, or after the use case failed with a
    domain error (the first request may have spent what this one needs). The movement is
    audited (``action`` on ``object_type``, the object's id taken from the response) in the
    same transaction; a replay moves nothing and is not.
    """
    institution_id = principal.institution_id
    payload = body.model_dump_json().encode() if body is not None else b""
    print_ = idempotency.fingerprint(request.method, request.url.path, payload)
    tries = 0

    def stored(session: Session) -> idempotency.StoredResponse | None:
        return idempotency.find(
            session, institution_id=institution_id, key=key, request_fingerprint=print_
        )

    def unit(session: Session) -> tuple[int, Any, bool]:
        nonlocal tries
        tries += 1
        if tries > 1 and (found := stored(session)) is not None:
            return found.status_code, found.body, True
        try:
            status, content = work(session)
        except HuinongError:
            if (found := stored(session)) is not None:
                raise _Replay(found) from None
            raise
        idempotency.remember(
            session,
            institution_id=institution_id,
            key=key,
            request_fingerprint=print_,
            status_code=status,
            body=content,
        )
        audit.record(
            session,
            action=action,
            institution_id=institution_id,
            actor=principal,
            object_type=object_type,
            object_id=str(content["id"]) if isinstance(content, dict) and "id" in content else None,
            outcome="ok" if status < 400 else "failed",
            detail={"idempotency_key": key, "status": status},
        )
        return status, content, False

    try:
        status, content, replayed = database.run(unit)
    except _Replay as replay:
        status, content, replayed = replay.stored.status_code, replay.stored.body, True
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return FastJSONResponse(content, status_code=status, headers=headers)
