"""Use cases of identities: staff users and roles, customer credentials, signing in and out.

Signing in is two facts, each in the caller's transaction: a failed attempt is *recorded*
(the failure count, perhaps a lock) and reported as a result rather than raised, so the
entry point commits it before answering 401; a successful one opens a sign-in session and
hands out an access token and a refresh token. Every request then turns its access token into
a ``Principal`` through ``principal_for_session``, which reads the session and its user as
they are now.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, column, select, table, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.config import get_settings
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution, Office
from huinong.security import keyring
from huinong.security.audit import service as audit
from huinong.security.crypto import hmac_sm3
from huinong.security.identities import passwords, rules, tokens
from huinong.security.identities.models import (
    CustomerCredential,
    OneTimeCode,
    SessionSubject,
    SignInSession,
    StaffRole,
    StaffUser,
    UserStatus,
)
from huinong.security.principals import STAFF_ROLES, Principal, PrincipalKind, Role


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


def phone_index(phone: str) -> str:
    """Keyed digest of a sign-in phone: found by exact match, unreadable without the key."""
    return hmac_sm3(keyring.derived_key("sign-in-phone"), phone.encode()).hex()


def _code_digest(code: str, credential_id: uuid.UUID) -> str:
    return hmac_sm3(keyring.derived_key("one-time-code"), f"{credential_id}:{code}".encode()).hex()


# --- staff users -------------------------------------------------------------------------


def _check_roles(roles: Sequence[str]) -> list[Role]:
    checked = []
    for name in roles:
        try:
            role = Role(name)
        except ValueError:
            role = None
        if role is None or role not in STAFF_ROLES:
            raise InvalidInput(
                "staff.unknown_role",
                f"{name!r} is not a staff role; one of {', '.join(sorted(STAFF_ROLES))}",
                field="roles",
            )
        checked.append(role)
    if not checked:
        raise InvalidInput("staff.roles_required", "give at least one role", field="roles")
    return sorted(set(checked))


def generate_password() -> str:
    """A random initial password that meets the rules (for an administrator to hand over)."""
    while True:
        candidate = tokens.new_secret()[:16]
        if not passwords.password_problems(candidate) and any(c.isdigit() for c in candidate):
            return candidate


def _check_password(password: str, *, username: str, field: str = "password") -> None:
    problems = passwords.password_problems(password, username=username)
    if problems:
        raise InvalidInput("auth.weak_password", "password: " + "; ".join(problems), field=field)


def create_staff_user(
    session: Session,
    *,
    institution_id: uuid.UUID,
    username: str,
    display_name: str,
    roles: Sequence[str],
    password: str,
    office_id: uuid.UUID | None = None,
    must_change_password: bool = True,
    actor: Principal | None = None,
) -> StaffUser:
    problem = rules.username_problem(username)
    if problem:
        raise InvalidInput("staff.invalid_username", f"username: {problem}", field="username")
    if not display_name.strip():
        raise InvalidInput(
            "staff.display_name_required", "the display name must not be empty", field="name"
        )
    checked = _check_roles(roles)
    _check_password(password, username=username)
    if office_id is not None:
        office = session.get(Office, office_id)
        if office is None or office.institution_id != institution_id:
            raise NotFound("institutions.office_not_found", "no such office", field="office")
    taken = session.scalar(
        select(StaffUser.id).where(
            StaffUser.institution_id == institution_id, StaffUser.username == username
        )
    )
    if taken is not None:
        raise Conflict("staff.username_taken", f"{username} is taken", field="username")
    user = StaffUser(
        id=uuid7(),
        institution_id=institution_id,
        office_id=office_id,
        username=username,
        display_name=display_name.strip(),
        password_hash=passwords.hash_password(password),
        status=UserStatus.active,
        must_change_password=must_change_password,
        failed_sign_ins=0,
        created_at=clock.now(),
        roles=[StaffRole(role=role.value) for role in checked],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="staff.created",
        institution_id=institution_id,
        actor=actor,
        object_type="staff_user",
        object_id=str(user.id),
        detail={"roles": [role.value for role in checked]},
    )
    return user


def get_staff_user(session: Session, *, institution_id: uuid.UUID, user_id: uuid.UUID) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None or user.institution_id != institution_id:
        raise NotFound("staff.not_found", "no such staff user", field="user_id")
    return user


def list_staff_users(
    session: Session, *, institution_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> Sequence[StaffUser]:
    query = select(StaffUser).where(StaffUser.institution_id == institution_id)
    if after is not None:
        query = query.where(StaffUser.id > after)
    return session.scalars(query.order_by(StaffUser.id).limit(limit)).all()


def _audit_staff(
    session: Session, action: str, actor: Principal, user: StaffUser, **detail: Any
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=user.institution_id,
        actor=actor,
        object_type="staff_user",
        object_id=str(user.id),
        detail=detail or None,
    )


def set_roles(
    session: Session, *, actor: Principal, user_id: uuid.UUID, roles: Sequence[str]
) -> StaffUser:
    """Replace a user's roles (audited with the roles before and after)."""
    user = get_staff_user(session, institution_id=actor.institution_id, user_id=user_id)
    before = [r.role for r in user.roles]
    user.roles = [StaffRole(role=role.value) for role in _check_roles(roles)]
    session.flush()
    after = [r.role for r in user.roles]
    _audit_staff(session, "staff.roles_changed", actor, user, before=before, after=after)
    return user


def unlock_staff_user(session: Session, *, actor: Principal, user_id: uuid.UUID) -> StaffUser:
    user = get_staff_user(session, institution_id=actor.institution_id, user_id=user_id)
    user.failed_sign_ins = 0
    user.locked_until = None
    session.flush()
    _audit_staff(session, "staff.unlocked", actor, user)
    return user


def disable_staff_user(session: Session, *, actor: Principal, user_id: uuid.UUID) -> StaffUser:
    """Disable a user and end every session it has: its tokens stop working at once."""
    user = get_staff_user(session, institution_id=actor.institution_id, user_id=user_id)
    user.status = UserStatus.disabled
    session.execute(
        update(SignInSession)
        .where(SignInSession.staff_user_id == user.id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason="user_disabled")
    )
    session.flush()
    _audit_staff(session, "staff.disabled", actor, user)
    return user


def reset_password(session: Session, *, institution_id: uuid.UUID, username: str) -> str:
    """The platform operator's reset: a new one-time password (returned to be handed over),
    the lock lifted, a new password required at the next sign-in."""
    user = session.scalar(
        select(StaffUser).where(
            StaffUser.institution_id == institution_id, StaffUser.username == username
        )
    )
    if user is None:
        raise NotFound("staff.not_found", f"no staff user {username}", field="username")
    password = generate_password()
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = True
    user.failed_sign_ins = 0
    user.locked_until = None
    session.flush()
    audit.record(
        session,
        action="staff.password_reset",
        institution_id=institution_id,
        object_type="staff_user",
        object_id=str(user.id),
    )
    return password


def change_password(
    session: Session, *, principal: Principal, current_password: str, new_password: str
) -> None:
    if principal.kind != PrincipalKind.staff:
        raise Forbidden("auth.staff_only", "only staff users change passwords here")
    user = get_staff_user(
        session, institution_id=principal.institution_id, user_id=principal.subject_id
    )
    if not passwords.verify_password(user.password_hash, current_password):
        raise InvalidInput(
            "auth.wrong_password", "the current password is wrong", field="current_password"
        )
    _check_password(new_password, username=user.username, field="new_password")
    if passwords.verify_password(user.password_hash, new_password):
        raise InvalidInput(
            "auth.password_unchanged",
            "choose a password different from the current one",
            field="new_password",
        )
    user.password_hash = passwords.hash_password(new_password)
    user.must_change_password = False
    session.flush()
    _audit_staff(session, "auth.password_changed", principal, user)


# --- signing in ----------------------------------------------------------------------------


def _open_session(
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


def _invalid_credentials(field: str) -> Unauthenticated:
    return Unauthenticated(
        "auth.invalid_credentials",
        "the sign-in details are not right; check them and try again",
        field=field,
    )


def _locked(until: datetime) -> Unauthenticated:
    local = until.astimezone(clock.DISPLAY_TIMEZONE)
    return Unauthenticated(
        "auth.account_locked",
        f"too many failed sign-ins: locked until {local:%H:%M} (Beijing time); "
        "ask an administrator to unlock it sooner",
        field="username",
    )


def _record_failure(target: StaffUser | CustomerCredential, now: datetime) -> None:
    settings = get_settings()
    state = rules.after_failure(
        rules.LockoutState(target.failed_sign_ins, target.locked_until),
        now=now,
        max_failures=settings.sign_in_max_failures,
        lockout=timedelta(minutes=settings.sign_in_lockout_minutes),
    )
    target.failed_sign_ins = state.failures
    target.locked_until = state.locked_until


def _institution_or_none(session: Session, code: str) -> Institution | None:
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


def _audited(session: Session, action: str, result: SignInResult) -> SignInResult:
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
    return _audited(
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
    institution = _institution_or_none(session, institution_code)
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
        return SignInFailure(_locked(user.locked_until), user.id, institution_id)
    matched = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or institution is None:
        return SignInFailure(_invalid_credentials("password"), None, institution_id)
    if not matched:
        _record_failure(user, now)
        session.flush()
        return SignInFailure(_invalid_credentials("password"), user.id, institution.id)
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
    return _open_session(
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


def principal_from_access_token(session: Session, *, token: str) -> tuple[uuid.UUID, Principal]:
    claims = tokens.read_access_token(_access_key(), token, now=clock.now())
    return claims.session_id, principal_for_session(session, session_id=claims.session_id)


def session_id_of(token: str) -> uuid.UUID:
    return tokens.read_access_token(_access_key(), token, now=clock.now()).session_id


# --- customers in the web hall --------------------------------------------------------------

# The customers table belongs to parties, a higher layer: named here, not imported.
_CUSTOMERS = table("customers", column("id", Uuid), column("institution_id", Uuid))


def normalise_phone(phone: str) -> str:
    digits = phone.strip().replace(" ", "").replace("-", "")
    if not rules.MOBILE_PHONE.fullmatch(digits):
        raise InvalidInput(
            "auth.invalid_phone",
            "a mainland mobile number has 11 digits starting with 1",
            field="phone",
        )
    return digits


def register_customer_credential(
    session: Session,
    *,
    institution_id: uuid.UUID,
    customer_id: uuid.UUID,
    phone: str,
    password: str,
) -> CustomerCredential:
    """Let a customer sign in to the web hall (done at the counter, identity checked)."""
    phone = normalise_phone(phone)
    _check_password(password, username="")
    owner = session.scalar(
        select(_CUSTOMERS.c.institution_id).where(_CUSTOMERS.c.id == customer_id)
    )
    if owner != institution_id:
        raise NotFound("parties.customer_not_found", "no such customer", field="customer_id")
    index = phone_index(phone)
    clash = session.scalar(
        select(CustomerCredential.customer_id).where(
            CustomerCredential.institution_id == institution_id,
            (CustomerCredential.phone_index == index)
            | (CustomerCredential.customer_id == customer_id),
        )
    )
    if clash is not None:
        raise Conflict(
            "auth.credential_exists",
            "this customer or this phone can already sign in",
            field="phone" if clash != customer_id else "customer_id",
        )
    credential = CustomerCredential(
        id=uuid7(),
        institution_id=institution_id,
        customer_id=customer_id,
        phone_index=index,
        password_hash=passwords.hash_password(password),
        status=UserStatus.active,
        failed_sign_ins=0,
        created_at=clock.now(),
    )
    session.add(credential)
    session.flush()
    return credential


def _credential_by_phone(
    session: Session, institution: Institution | None, phone: str
) -> CustomerCredential | None:
    if institution is None:
        return None
    return session.scalar(
        select(CustomerCredential)
        .where(
            CustomerCredential.institution_id == institution.id,
            CustomerCredential.phone_index == phone_index(phone),
        )
        .with_for_update()
    )


def issue_one_time_code(
    session: Session, *, institution_code: str, phone: str
) -> tuple[str, str] | None:
    """A new sign-in code for the phone's credential, as (phone, code) for the sender; None
    when no customer signs in with that phone (the caller answers alike either way)."""
    phone = normalise_phone(phone)
    institution = _institution_or_none(session, institution_code)
    credential = _credential_by_phone(session, institution, phone)
    if credential is None or credential.status != UserStatus.active:
        return None
    now = clock.now()
    # A new code replaces the ones before it.
    session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.credential_id == credential.id, OneTimeCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = rules.new_one_time_code()
    session.add(
        OneTimeCode(
            id=uuid7(),
            credential_id=credential.id,
            code_digest=_code_digest(code, credential.id),
            expires_at=now + timedelta(minutes=rules.ONE_TIME_CODE_MINUTES),
            attempts=0,
            created_at=now,
        )
    )
    session.flush()
    return phone, code


def _code_matches(session: Session, credential: CustomerCredential, code: str) -> bool:
    now = clock.now()
    current = session.scalar(
        select(OneTimeCode)
        .where(
            OneTimeCode.credential_id == credential.id,
            OneTimeCode.used_at.is_(None),
            OneTimeCode.expires_at > now,
        )
        .order_by(OneTimeCode.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if current is None:
        return False
    current.attempts += 1
    if current.attempts >= rules.ONE_TIME_CODE_MAX_ATTEMPTS:
        current.used_at = now
    if hmac.compare_digest(current.code_digest, _code_digest(code, credential.id)):
        current.used_at = now
        return True
    return False


def sign_in_customer(
    session: Session, *, institution_code: str, phone: str, password: str, code: str
) -> SignInResult:
    """Sign a customer in to the web hall; the attempt is audited whichever way it goes."""
    return _audited(
        session,
        "auth.customer_sign_in",
        _sign_in_customer(
            session, institution_code=institution_code, phone=phone, password=password, code=code
        ),
    )


def _sign_in_customer(
    session: Session, *, institution_code: str, phone: str, password: str, code: str
) -> SignInResult:
    now = clock.now()
    phone = normalise_phone(phone)
    institution = _institution_or_none(session, institution_code)
    credential = _credential_by_phone(session, institution, phone)
    institution_id = institution.id if institution else None
    if credential is not None and rules.is_locked(credential.locked_until, now):
        assert credential.locked_until is not None
        failure = _locked(credential.locked_until)
        failure.field = "phone"
        return SignInFailure(failure, credential.customer_id, institution_id)
    password_ok = passwords.verify_password(
        credential.password_hash if credential else None, password
    )
    if credential is None or institution is None:
        return SignInFailure(_invalid_credentials("password"), None, institution_id)
    code_ok = _code_matches(session, credential, code)
    if not (password_ok and code_ok) or credential.status != UserStatus.active:
        _record_failure(credential, now)
        session.flush()
        field = "code" if password_ok else "password"
        return SignInFailure(_invalid_credentials(field), credential.customer_id, institution.id)
    state = rules.after_success()
    credential.failed_sign_ins, credential.locked_until = state.failures, state.locked_until
    return _open_session(
        session,
        institution=institution,
        subject=SessionSubject.customer,
        principal_for=lambda _: customer_principal(credential, institution),
        customer_credential_id=credential.id,
    )


def list_sessions(
    session: Session, *, institution_id: uuid.UUID, staff_user_id: uuid.UUID
) -> Sequence[SignInSession]:
    return session.scalars(
        select(SignInSession)
        .where(
            SignInSession.institution_id == institution_id,
            SignInSession.staff_user_id == staff_user_id,
        )
        .order_by(SignInSession.created_at)
    ).all()
