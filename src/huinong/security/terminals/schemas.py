"""API models of the terminal registry. Coordinates travel as decimal-degree strings
(``"30.274084"``), never JSON numbers: they are exact values, like money."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from huinong.inputs import RequestModel
from huinong.security.terminals.rules import BindingKind, KeyStatus, TerminalKind, TerminalStatus

DEGREES = r"^[+-]?[0-9]{1,3}(\.[0-9]{1,12})?$"
PUBLIC_KEY_DESCRIPTION = (
    "the terminal's SM2 public key: hex '04' + x + y, or a PEM PUBLIC KEY block (its line "
    "breaks may be kept, escaped as \\n in JSON, or replaced by spaces)"
)


def _pem_lines_as_spaces(value: object) -> object:
    # A PEM block's line breaks are the only control characters an input may carry; they are
    # whitespace to PEM, so they become spaces before the no-control-characters rule looks.
    if isinstance(value, str) and "-----BEGIN" in value:
        return " ".join(value.split())
    return value


class GeofenceSet(RequestModel):
    latitude: str = Field(
        max_length=20, pattern=DEGREES, description="WGS-84 decimal degrees", examples=["30.274084"]
    )
    longitude: str = Field(
        max_length=20,
        pattern=DEGREES,
        description="WGS-84 decimal degrees",
        examples=["120.155070"],
    )
    radius_metres: int = Field(ge=10, le=1_000_000)


class TerminalCreate(RequestModel):
    code: str = Field(min_length=1, max_length=32, examples=["SP0042-POS1"])
    label: str | None = Field(default=None, max_length=200)
    kind: TerminalKind
    binding_kind: BindingKind
    binding_reference: str = Field(
        min_length=1,
        max_length=64,
        description="the institution's number of the service point or merchant (until service "
        "points and merchants are registered in Huinong)",
    )
    public_key: str = Field(min_length=128, max_length=1000, description=PUBLIC_KEY_DESCRIPTION)
    geofence: GeofenceSet | None = None

    _public_key = field_validator("public_key", mode="before")(_pem_lines_as_spaces)


class KeyRotate(RequestModel):
    public_key: str = Field(min_length=128, max_length=1000, description=PUBLIC_KEY_DESCRIPTION)

    _public_key = field_validator("public_key", mode="before")(_pem_lines_as_spaces)


class GeofenceRead(BaseModel):
    latitude: str
    longitude: str
    radius_metres: int


class TerminalKeyRead(BaseModel):
    serial: int
    status: KeyStatus
    public_key: str
    fingerprint: str
    created_at: datetime
    retired_at: datetime | None


class TerminalRead(BaseModel):
    id: uuid.UUID
    code: str
    label: str | None
    kind: TerminalKind
    binding_kind: BindingKind
    binding_reference: str
    status: TerminalStatus
    geofence: GeofenceRead | None
    active_key_serial: int | None
    keys: list[TerminalKeyRead]
    created_at: datetime
    status_changed_at: datetime


class TerminalPage(BaseModel):
    items: list[TerminalRead]
    next_cursor: str | None


class GeofenceAlertRead(BaseModel):
    id: uuid.UUID
    terminal_id: uuid.UUID
    occurred_at: datetime
    latitude: str
    longitude: str
    distance_metres: int
    geofence: GeofenceRead
    key_serial: int
    method: str
    request_id: str | None


class GeofenceAlertPage(BaseModel):
    items: list[GeofenceAlertRead]
    next_cursor: str | None


class PlatformKeyRead(BaseModel):
    institution_code: str
    algorithm: str = "SM2"
    signer_id: str = "1234567812345678"
    serial: int
    public_key: str = Field(description="hex '04' + x + y")
    public_key_pem: str
    fingerprint: str = Field(description="SM3 of the DER SubjectPublicKeyInfo, hex")
