"""Staff users and their roles, customers' web-hall credentials, and the permission table."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from huinong import clock
from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.security import permissions
from huinong.security.identities import customers, rules, staff_users
from huinong.security.identities.models import StaffUser
from huinong.security.identities.schemas import (
    CustomerCredentialCreate,
    CustomerCredentialRead,
    PermissionRead,
    PermissionTable,
    RolesUpdate,
    StaffUserCreate,
    StaffUserPage,
    StaffUserRead,
)

router = APIRouter(tags=["staff"])


def staff_read(user: StaffUser) -> StaffUserRead:
    return StaffUserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=[r.role for r in user.roles],
        office_id=user.office_id,
        status=user.status,
        must_change_password=user.must_change_password,
        locked=rules.is_locked(user.locked_until, clock.now()),
        created_at=user.created_at,
    )


@router.post("/staff-users", status_code=201, response_model=StaffUserRead)
def create_staff_user(body: StaffUserCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: staff_read(
            staff_users.create_staff_user(
                s, institution_id=principal.institution_id, actor=principal, **body.model_dump()
            )
        )
    )


@router.get("/staff-users", response_model=StaffUserPage)
def list_staff_users(
    principal: PrincipalDep,
    database: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)
    items = database.run(
        lambda s: [
            staff_read(u)
            for u in staff_users.list_staff_users(
                s, institution_id=principal.institution_id, after=after, limit=limit
            )
        ]
    )
    return StaffUserPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/staff-users/{user_id}", response_model=StaffUserRead)
def get_staff_user(user_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: staff_read(
            staff_users.get_staff_user(s, institution_id=principal.institution_id, user_id=user_id)
        )
    )


@router.put("/staff-users/{user_id}/roles", response_model=StaffUserRead)
def set_roles(
    user_id: uuid.UUID,
    body: RolesUpdate,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> Any:
    read = database.run(
        lambda s: staff_read(
            staff_users.set_roles(s, actor=principal, user_id=user_id, roles=body.roles)
        )
    )
    request.app.state.sessions.forget_all()
    return read


@router.post("/staff-users/{user_id}/unlock", response_model=StaffUserRead)
def unlock(user_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: staff_read(staff_users.unlock_staff_user(s, actor=principal, user_id=user_id))
    )


@router.post("/staff-users/{user_id}/disable", response_model=StaffUserRead)
def disable(
    user_id: uuid.UUID, request: Request, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    read = database.run(
        lambda s: staff_read(staff_users.disable_staff_user(s, actor=principal, user_id=user_id))
    )
    request.app.state.sessions.forget_all()
    return read


@router.post("/customer-credentials", status_code=201, response_model=CustomerCredentialRead)
def register_customer_credential(
    body: CustomerCredentialCreate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    credential = database.run(
        lambda s: customers.register_customer_credential(
            s, institution_id=principal.institution_id, **body.model_dump()
        )
    )
    return CustomerCredentialRead(
        id=credential.id,
        customer_id=credential.customer_id,
        status=credential.status,
        created_at=credential.created_at,
    )


@router.get("/security/permissions", response_model=PermissionTable)
def permission_table() -> Any:
    return PermissionTable(
        public=[PermissionRead(method=m, path=p, roles=[]) for m, p in sorted(permissions.PUBLIC)],
        routes=[
            PermissionRead(method=m, path=p, roles=sorted(roles))
            for (m, p), roles in sorted(permissions.PERMISSIONS.items())
        ],
    )
