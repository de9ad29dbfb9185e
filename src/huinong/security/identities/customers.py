"""Customers of the web hall: their sign-in credentials, one-time codes, and signing them in.

A customer is let in at the counter, identity checked: a credential ties the customer to a
mainland mobile phone and a password. The phone is not stored, only a keyed digest of it
(``phone_index``), found by exact match and unreadable without the key. Signing in takes
the password *and* a one-time code sent to that phone; a new code replaces the ones before
it, and a code is spent by its last allowed attempt. A failed attempt counts towards the
same lockout as a staff user's, and the session it opens is the one of ``sessions``.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta

from sqlalchemy import Uuid, column, select, table, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions.models import Institution
from huinong.security import keyring
from huinong.security.crypto import hmac_sm3
from huinong.security.identities import passwords, rules
from huinong.security.identities.credentials import (
    account_locked,
    check_password,
    invalid_credentials,
    record_failure,
)
from huinong.security.identities.models import (
    CustomerCredential,
    OneTimeCode,
    SessionSubject,
    UserStatus,
)
from huinong.security.identities.sessions import (
    SignInFailure,
    SignInResult,
    audited,
    customer_principal,
    institution_or_none,
    open_session,
)

# The customers table belongs to parties, a higher layer: named here, not imported.
_CUSTOMERS = table("customers", column("id", Uuid), column("institution_id", Uuid))


def phone_index(phone: str) -> str:
    """Keyed digest of a sign-in phone: found by exact match, unreadable without the key."""
    return hmac_sm3(keyring.derived_key("sign-in-phone"), phone.encode()).hex()


def _code_digest(code: str, credential_id: uuid.UUID) -> str:
    return hmac_sm3(keyring.derived_key("one-time-code"), f"{credential_id}:{code}".encode()).hex()


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
    check_password(password, username="")
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
    institution = institution_or_none(session, institution_code)
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
    return audited(
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
    institution = institution_or_none(session, institution_code)
    credential = _credential_by_phone(session, institution, phone)
    institution_id = institution.id if institution else None
    if credential is not None and rules.is_locked(credential.locked_until, now):
        assert credential.locked_until is not None
        failure = account_locked(credential.locked_until)
        failure.field = "phone"
        return SignInFailure(failure, credential.customer_id, institution_id)
    password_ok = passwords.verify_password(
        credential.password_hash if credential else None, password
    )
    if credential is None or institution is None:
        return SignInFailure(invalid_credentials("password"), None, institution_id)
    code_ok = _code_matches(session, credential, code)
    if not (password_ok and code_ok) or credential.status != UserStatus.active:
        record_failure(credential, now)
        session.flush()
        field = "code" if password_ok else "password"
        return SignInFailure(invalid_credentials(field), credential.customer_id, institution.id)
    state = rules.after_success()
    credential.failed_sign_ins, credential.locked_until = state.failures, state.locked_until
    return open_session(
        session,
        institution=institution,
        subject=SessionSubject.customer,
        principal_for=lambda _: customer_principal(credential, institution),
        customer_credential_id=credential.id,
    )
