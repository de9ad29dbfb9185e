"""API models of signing in, staff users and customer credentials."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from huinong.inputs import RequestModel

InstitutionCode = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
Password = Field(min_length=1, max_length=128)
Phone = Field(min_length=11, max_length=20)


class SignIn(RequestModel):
    institution: str = InstitutionCode
    username: str = Field(min_length=1, max_length=64)
    password: str = Password


class Refresh(RequestModel):
    refresh_token: str = Field(min_length=16, max_length=128)


class CustomerCodeRequest(RequestModel):
    institution: str = InstitutionCode
    phone: str = Phone


class CustomerSignIn(RequestModel):
    institution: str = InstitutionCode
    phone: str = Phone
    password: str = Password
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class PasswordChange(RequestModel):
    current_password: str = Password
    new_password: str = Password


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    must_change_password: bool


class MeRead(BaseModel):
    kind: str
    subject_id: uuid.UUID
    institution: str
    roles: list[str]
    display: str
    office_id: uuid.UUID | None
    must_change_password: bool


class StaffUserCreate(RequestModel):
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=100)
    roles: list[str] = Field(min_length=1, max_length=12)
    password: str = Password
    office_id: uuid.UUID | None = None


class RolesUpdate(RequestModel):
    roles: list[str] = Field(min_length=1, max_length=12)


class StaffUserRead(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    roles: list[str]
    office_id: uuid.UUID | None
    status: str
    must_change_password: bool
    locked: bool
    created_at: datetime


class StaffUserPage(BaseModel):
    items: list[StaffUserRead]
    next_cursor: str | None


class CustomerCredentialCreate(RequestModel):
    customer_id: uuid.UUID
    phone: str = Phone
    password: str = Password


class CustomerCredentialRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    status: str
    created_at: datetime


class PermissionRead(BaseModel):
    method: str
    path: str
    roles: list[str]


class PermissionTable(BaseModel):
    public: list[PermissionRead]
    routes: list[PermissionRead]
