"""Staff users of an institution and their roles: the use cases of administering them.

An administrator of the institution creates users (with an initial password they must
change at the first sign-in), lists them, replaces their roles, lifts a lock and disables a
user, which ends every session it has at once; the platform operator resets a forgotten
password; a user changes its own. Each change is audited, role changes with the roles before
and after. Signing in is in ``sessions``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions.models import Office
from huinong.security.audit import service as audit
from huinong.security.identities import passwords, rules, tokens
from huinong.security.identities.credentials import check_password
from huinong.security.identities.models import SignInSession, StaffRole, StaffUser, UserStatus
from huinong.security.principals import STAFF_ROLES, Principal, PrincipalKind, Role


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
    check_password(password, username=username)
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
    check_password(new_password, username=user.username, field="new_password")
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
