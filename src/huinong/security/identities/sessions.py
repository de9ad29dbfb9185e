"""Signing in and sign-in sessions: staff sign-in, tokens, refresh, sign-out, and the caller
behind an access token.

Signing in is two facts, each in the caller's transaction: a failed attempt is *recorded*
(the failure count, perhaps a lock) and reported as a result rather than raised, so the
entry point commits it before answering 401; a successful one opens a sign-in session and
hands out an access token and a refresh token. Every attempt, staff's or customer's, is
audited whichever way it goes. Every request then turns its access token into a
``Principal`` through ``principal_for_session``, which reads the session and its user as
they are now. A customer's sign-in (phone, password and one-time code) is in ``customers``,
on the same sessions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.config import get_settings
from huinong.errors import Unauthenticated
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution
from huinong.security import keyring
from huinong.security.audit import service as audit
from huinong.security.identities import passwords, rules, tokens
from huinong.security.identities.credentials import (
    account_locked,
    invalid_credentials,
    record_failure,
)
from huinong.security.identities.models import (
    CustomerCredential,
    SessionSubject,
    SignInSession,
    StaffUser,
    UserStatus,
)
from huinong.security.principals import Principal, PrincipalKind, Role


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    principal: Principal
    must_change_password: bool = False


@dataclass(frozen=True)
class SignInFailure:
    """A refused sign-in, already recorded; the entry point commits, then raises ``error``."""

    error: Unauthenticated
    subject_id: uuid.UUID | None
    institution_id: uuid.UUID | None


SignInResult = TokenPair | SignInFailure


def _access_key() -> bytes:
    return keyring.derived_key("access-token")


def _refresh_key() -> bytes:
    return keyring.derived_key("refresh-token")


def open_session(
    session: Session,
    *,
    institution: Institution,
    subject: SessionSubject,
    principal_for: Callable[[SignInSession], Principal],
    staff_user_id: uuid.UUID | None = None,
    customer_credential_id: uuid.UUID | None = None,
    must_change_password: bool = False,
) -> TokenPair:
    settings = get_settings()
    now = clock.now()
    refresh = tokens.new_secret()
    record = SignInSession(
        id=uuid7(),
        institution_id=institution.id,
        subject_kind=subject,
        staff_user_id=staff_user_id,
        customer_credential_id=customer_credential_id,
        refresh_digest=tokens.secret_digest(_refresh_key(), refresh),
        expires_at=now + timedelta(hours=settings.refresh_token_hours),
        created_at=now,
    )
    session.add(record)
    session.flush()
    return _token_pair(record, refresh, principal_for(record), must_change_password)


def _token_pair(
    record: SignInSession, refresh: str, principal: Principal, must_change_password: bool
) -> TokenPair:
    now = clock.now()
    access_expires = min(
        now + timedelta(minutes=get_settings().access_token_minutes), record.expires_at
    )
    return TokenPair(
        access_token=tokens.issue_access_token(
            _access_key(), session_id=record.id, expires_at=access_expires
        ),
        access_expires_at=access_expires,
        refresh_token=refresh,
        refresh_expires_at=record.expires_at,
        principal=principal,
        must_change_password=must_change_password,
    )


def institution_or_none(session: Session, code: str) -> Institution | None:
    return session.scalar(select(Institution).where(Institution.code == code))


def staff_principal(user: StaffUser, institution: Institution) -> Principal:
    return Principal(
        kind=PrincipalKind.staff,
        subject_id=user.id,
        institution_id=institution.id,
        institution_code=institution.code,
        currency=institution.currency,
        roles=frozenset(Role(r.role) for r in user.roles),
        office_id=user.office_id,
        display=user.username,
        must_change_password=user.must_change_password,
    )


def customer_principal(credential: CustomerCredential, institution: Institution) -> Principal:
    return Principal(
        kind=PrincipalKind.customer,
        subject_id=credential.customer_id,
        institution_id=institution.id,
        institution_code=institution.code,
        currency=institution.currency,
        roles=frozenset({Role.customer}),
        display=f"customer:{credential.customer_id}",
    )


def audited(session: Session, action: str, result: SignInResult) -> SignInResult:
    """Audit a sign-in attempt under ``action``, whichever way it went; returns ``result``."""
    if isinstance(result, TokenPair):
        audit.record(
            session,
            action=action,
            institution_id=result.principal.institution_id,
            actor=result.principal,
            object_type=str(result.principal.kind),
            object_id=str(result.principal.subject_id),
        )
    else:
        audit.record(
            session,
            action=action,
            institution_id=result.institution_id,
            object_type="staff_user" if action == "auth.sign_in" else "customer",
            object_id=str(result.subject_id) if result.subject_id else None,
            outcome="failed",
            detail={"code": result.error.code},
        )
    return result


def sign_in_staff(
    session: Session, *, institution_code: str, username: str, password: str
) -> SignInResult:
    """Sign a staff user in; the attempt is audited whichever way it goes."""
    return audited(
        session,
        "auth.sign_in",
        _sign_in_staff(
            session, institution_code=institution_code, username=username, password=password
        ),
    )


def _sign_in_staff(
    session: Session, *, institution_code: str, username: str, password: str
) -> SignInResult:
    now = clock.now()
    institution = institution_or_none(session, institution_code)
    user = None
    if institution is not None:
        user = session.scalar(
            select(StaffUser)
            .where(StaffUser.institution_id == institution.id, StaffUser.username == username)
            .with_for_update()
        )
    institution_id = institution.id if institution else None
    if user is not None and rules.is_locked(user.locked_until, now):
        assert user.locked_until is not None
        return SignInFailure(account_locked(user.locked_until), user.id, institution_id)
    matched = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or institution is None:
        return SignInFailure(invalid_credentials("password"), None, institution_id)
    if not matched:
        record_failure(user, now)
        session.flush()
        return SignInFailure(invalid_credentials("password"), user.id, institution.id)
    if user.status != UserStatus.active:
        return SignInFailure(
            Unauthenticated(
                "auth.account_disabled",
                "this user is disabled; ask an administrator",
                field="username",
            ),
            user.id,
            institution.id,
        )
    state = rules.after_success()
    user.failed_sign_ins, user.locked_until = state.failures, state.locked_until
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return open_session(
        session,
        institution=institution,
        subject=SessionSubject.staff,
        principal_for=lambda _: staff_principal(user, institution),
        staff_user_id=user.id,
        must_change_password=user.must_change_password,
    )


def refresh(session: Session, *, refresh_token: str) -> SignInResult:
    """Swap a refresh token for a new pair. A token that was already swapped is a copy in
    someone else's hands: the session ends for everyone holding it (recorded, then refused,
    like a failed sign-in)."""
    now = clock.now()
    digest = tokens.secret_digest(_refresh_key(), refresh_token)
    record = session.scalar(
        select(SignInSession).where(SignInSession.refresh_digest == digest).with_for_update()
    )
    if record is None:
        reused = session.scalar(
            select(SignInSession)
            .where(SignInSession.previous_refresh_digest == digest)
            .with_for_update()
        )
        if reused is not None and reused.revoked_at is None:
            reused.revoked_at = now
            reused.revoked_reason = "refresh_reused"
            session.flush()
            audit.record(
                session,
                action="auth.session_revoked",
                institution_id=reused.institution_id,
                object_type="sign_in_session",
                object_id=str(reused.id),
                outcome="denied",
                detail={"reason": "refresh_reused"},
            )
        return SignInFailure(
            Unauthenticated(
                "auth.refresh_invalid",
                "the refresh token is not valid; sign in again",
                field="refresh_token",
            ),
            None,
            reused.institution_id if reused is not None else None,
        )
    if record.revoked_at is not None or record.expires_at <= now:
        return SignInFailure(
            Unauthenticated(
                "auth.session_ended",
                "this session has ended; sign in again",
                field="refresh_token",
            ),
            None,
            record.institution_id,
        )
    principal = principal_for_session(session, session_id=record.id)
    fresh = tokens.new_secret()
    record.previous_refresh_digest = record.refresh_digest
    record.refresh_digest = tokens.secret_digest(_refresh_key(), fresh)
    session.flush()
    return _token_pair(record, fresh, principal, principal.must_change_password)


def sign_out(session: Session, *, principal: Principal, session_id: uuid.UUID) -> None:
    record = session.get(SignInSession, session_id, with_for_update=True)
    if record is not None and record.revoked_at is None:
        record.revoked_at = clock.now()
        record.revoked_reason = "signed_out"
        session.flush()
        audit.record(
            session,
            action="auth.sign_out",
            institution_id=principal.institution_id,
            actor=principal,
            object_type="sign_in_session",
            object_id=str(session_id),
        )


def _session_ended() -> Unauthenticated:
    return Unauthenticated(
        "auth.session_ended", "this session has ended; sign in again", field="Authorization"
    )


def principal_for_session(session: Session, *, session_id: uuid.UUID) -> Principal:
    """The caller behind an access token, as the session and its user are now."""
    record = session.get(SignInSession, session_id)
    now = clock.now()
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        raise _session_ended()
    institution = institutions.get_institution(session, institution_id=record.institution_id)
    if record.staff_user_id is not None:
        user = session.get(StaffUser, record.staff_user_id)
        if user is None or user.status != UserStatus.active:
            raise _session_ended()
        return staff_principal(user, institution)
    credential = session.get(CustomerCredential, record.customer_credential_id)
    if credential is None or credential.status != UserStatus.active:
        raise _session_ended()
    return customer_principal(credential, institution)


def session_id_of(token: str) -> uuid.UUID:
    return tokens.read_access_token(_access_key(), token, now=clock.now()).session_id
