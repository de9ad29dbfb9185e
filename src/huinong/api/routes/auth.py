"""Signing in and out: staff with username and password, customers of the web hall with
phone, password and a one-time code; refresh tokens; the caller's own identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from huinong import clock
from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.security.identities import customers, sessions, staff_users
from huinong.security.identities.schemas import (
    CustomerCodeRequest,
    CustomerSignIn,
    MeRead,
    PasswordChange,
    Refresh,
    SignIn,
    TokenRead,
)
from huinong.security.identities.sessions import SignInFailure, SignInResult, TokenPair

router = APIRouter(tags=["auth"])


def token_read(pair: TokenPair) -> TokenRead:
    return TokenRead(
        access_token=pair.access_token,
        expires_in=max(0, int((pair.access_expires_at - clock.now()).total_seconds())),
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at,
        must_change_password=pair.must_change_password,
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _signed_in(request: Request, database: DatabaseDep, attempt: Any) -> TokenRead:
    throttle = request.app.state.sign_in_throttle
    address = _address(request)
    throttle.check(address)
    result: SignInResult = await run_in_threadpool(database.run, attempt)
    if isinstance(result, SignInFailure):
        throttle.failed(address)
        raise result.error
    return token_read(result)


@router.post("/auth/sign-in", response_model=TokenRead)
async def sign_in(body: SignIn, request: Request, database: DatabaseDep) -> Any:
    return await _signed_in(
        request,
        database,
        lambda s: sessions.sign_in_staff(
            s, institution_code=body.institution, username=body.username, password=body.password
        ),
    )


@router.post("/auth/refresh", response_model=TokenRead)
def refresh(body: Refresh, request: Request, database: DatabaseDep) -> Any:
    result = database.run(lambda s: sessions.refresh(s, refresh_token=body.refresh_token))
    if isinstance(result, SignInFailure):
        # A reused refresh token may just have ended a session this worker has cached.
        request.app.state.sessions.forget_all()
        raise result.error
    return token_read(result)


@router.post("/auth/sign-out", status_code=204)
def sign_out(request: Request, principal: PrincipalDep, database: DatabaseDep) -> Response:
    session_id = request.state.session_id
    if session_id is not None:
        database.run(lambda s: sessions.sign_out(s, principal=principal, session_id=session_id))
        request.app.state.sessions.forget(session_id)
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeRead)
def me(principal: PrincipalDep) -> Any:
    return MeRead(
        kind=principal.kind,
        subject_id=principal.subject_id,
        institution=principal.institution_code,
        roles=sorted(principal.roles),
        display=principal.display,
        office_id=principal.office_id,
        must_change_password=principal.must_change_password,
    )


@router.post("/auth/password", status_code=204)
def change_password(
    body: PasswordChange, request: Request, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    database.run(
        lambda s: staff_users.change_password(
            s,
            principal=principal,
            current_password=body.current_password,
            new_password=body.new_password,
        )
    )
    if request.state.session_id is not None:
        request.app.state.sessions.forget(request.state.session_id)
    return Response(status_code=204)


@router.post("/auth/customer/one-time-code", status_code=202)
def send_one_time_code(body: CustomerCodeRequest, request: Request, database: DatabaseDep) -> Any:
    """Sends a code when the phone may sign in; answers alike when it may not, so the answer
    never tells whether a phone number is a customer's."""
    issued = database.run(
        lambda s: customers.issue_one_time_code(
            s, institution_code=body.institution, phone=body.phone
        )
    )
    if issued is not None:
        phone, code = issued
        request.app.state.otp_sender.send(institution_code=body.institution, phone=phone, code=code)
    return {"status": "sent if the phone may sign in"}


@router.post("/auth/customer/sign-in", response_model=TokenRead)
async def customer_sign_in(body: CustomerSignIn, request: Request, database: DatabaseDep) -> Any:
    return await _signed_in(
        request,
        database,
        lambda s: customers.sign_in_customer(
            s,
            institution_code=body.institution,
            phone=body.phone,
            password=body.password,
            code=body.code,
        ),
    )
