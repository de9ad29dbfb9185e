"""Terminals: the registry (enrol, activate, suspend, revoke, rotate a key, set a geofence),
the geofence alerts, and the institution's platform public key that terminals pin.

How a terminal signs its requests is in ``huinong.security.terminals.signing``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from huinong.api.deps import DatabaseDep, PrincipalDep
from huinong.api.pagination import decode_id, encode_id
from huinong.errors import NotFound
from huinong.security.principals import PrincipalKind
from huinong.security.terminals import geofence, platform_keys, service
from huinong.security.terminals.models import GeofenceAlert, Terminal, TerminalKey
from huinong.security.terminals.rules import KeyStatus, TerminalStatus
from huinong.security.terminals.schemas import (
    GeofenceAlertPage,
    GeofenceAlertRead,
    GeofenceRead,
    GeofenceSet,
    KeyRotate,
    PlatformKeyRead,
    TerminalCreate,
    TerminalKeyRead,
    TerminalPage,
    TerminalRead,
)

router = APIRouter(tags=["terminals"])


def fence_read(fence: geofence.Fence | None) -> GeofenceRead | None:
    if fence is None:
        return None
    return GeofenceRead(
        latitude=geofence.micro_to_text(fence.centre.latitude_micro),
        longitude=geofence.micro_to_text(fence.centre.longitude_micro),
        radius_metres=fence.radius_metres,
    )


def terminal_read(terminal: Terminal, keys: list[TerminalKey]) -> TerminalRead:
    active = [key.serial for key in keys if key.status == KeyStatus.active]
    return TerminalRead(
        id=terminal.id,
        code=terminal.code,
        label=terminal.label,
        kind=terminal.kind,
        binding_kind=terminal.binding_kind,
        binding_reference=terminal.binding_reference,
        status=terminal.status,
        geofence=fence_read(service.fence_of(terminal)),
        active_key_serial=active[0] if active else None,
        keys=[
            TerminalKeyRead(
                serial=key.serial,
                status=key.status,
                public_key=key.public_key,
                fingerprint=key.fingerprint,
                created_at=key.created_at,
                retired_at=key.retired_at,
            )
            for key in keys
        ],
        created_at=terminal.created_at,
        status_changed_at=terminal.status_changed_at,
    )


def _read(session: Session, terminal: Terminal) -> TerminalRead:
    return terminal_read(
        terminal, service.keys_of(session, terminal_ids=[terminal.id])[terminal.id]
    )


def _fence(body: GeofenceSet | None, prefix: str = "") -> geofence.Fence | None:
    if body is None:
        return None
    return service.make_fence(
        latitude=body.latitude,
        longitude=body.longitude,
        radius_metres=body.radius_metres,
        prefix=prefix,
    )


@router.post("/terminals", status_code=201, response_model=TerminalRead)
def enrol_terminal(body: TerminalCreate, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Enrol a device with its SM2 public key. It starts ``pending``: activate it once the
    device is installed where it belongs."""
    fence = _fence(body.geofence, prefix="geofence.")

    def unit(session: Session) -> TerminalRead:
        terminal = service.enrol_terminal(
            session,
            institution_id=principal.institution_id,
            code=body.code,
            kind=body.kind,
            binding_kind=body.binding_kind,
            binding_reference=body.binding_reference,
            public_key=body.public_key,
            label=body.label,
            fence=fence,
            actor=principal,
        )
        return _read(session, terminal)

    return database.run(unit)


@router.get("/terminals", response_model=TerminalPage)
def list_terminals(
    principal: PrincipalDep,
    database: DatabaseDep,
    status: TerminalStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    after = decode_id(cursor)

    def unit(session: Session) -> list[TerminalRead]:
        terminals = service.list_terminals(
            session,
            institution_id=principal.institution_id,
            status=status,
            after=after,
            limit=limit,
        )
        keys = service.keys_of(session, terminal_ids=[t.id for t in terminals])
        return [terminal_read(t, keys[t.id]) for t in terminals]

    items = database.run(unit)
    return TerminalPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/terminals/self", response_model=TerminalRead)
def terminal_self(principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The calling terminal's own registration: a signed request's simplest round trip, for
    integrators checking their signing code."""
    if principal.kind != PrincipalKind.terminal:
        raise NotFound(
            "terminals.not_a_terminal",
            "only a signed terminal request has a terminal of its own",
            field="X-Terminal-Id",
        )
    return database.run(
        lambda s: _read(
            s,
            service.get_terminal(
                s, institution_id=principal.institution_id, terminal_id=principal.subject_id
            ),
        )
    )


@router.get("/terminals/{terminal_id}", response_model=TerminalRead)
def get_terminal(terminal_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    return database.run(
        lambda s: _read(
            s,
            service.get_terminal(
                s, institution_id=principal.institution_id, terminal_id=terminal_id
            ),
        )
    )


def _transition(
    database: DatabaseDep, principal: PrincipalDep, terminal_id: uuid.UUID, target: TerminalStatus
) -> TerminalRead:
    return database.run(
        lambda s: _read(
            s,
            service.change_status(
                s,
                institution_id=principal.institution_id,
                terminal_id=terminal_id,
                target=target,
                actor=principal,
            ),
        )
    )


@router.post("/terminals/{terminal_id}/activate", response_model=TerminalRead)
def activate_terminal(
    terminal_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """pending or suspended -> active."""
    return _transition(database, principal, terminal_id, TerminalStatus.active)


@router.post("/terminals/{terminal_id}/suspend", response_model=TerminalRead)
def suspend_terminal(terminal_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """active -> suspended: its signed requests are refused (403) until reactivated."""
    return _transition(database, principal, terminal_id, TerminalStatus.suspended)


@router.post("/terminals/{terminal_id}/revoke", response_model=TerminalRead)
def revoke_terminal(terminal_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep) -> Any:
    """Any status but revoked -> revoked, for good."""
    return _transition(database, principal, terminal_id, TerminalStatus.revoked)


@router.post("/terminals/{terminal_id}/keys", status_code=201, response_model=TerminalRead)
def rotate_terminal_key(
    terminal_id: uuid.UUID, body: KeyRotate, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Enrol the terminal's next key (serial + 1) and retire the current one."""

    def unit(session: Session) -> TerminalRead:
        service.rotate_key(
            session,
            institution_id=principal.institution_id,
            terminal_id=terminal_id,
            public_key=body.public_key,
            actor=principal,
        )
        return _read(
            session,
            service.get_terminal(
                session, institution_id=principal.institution_id, terminal_id=terminal_id
            ),
        )

    return database.run(unit)


@router.put("/terminals/{terminal_id}/geofence", response_model=TerminalRead)
def set_terminal_geofence(
    terminal_id: uuid.UUID, body: GeofenceSet, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    """Hold the terminal to a circle: signed requests must then report a position inside it."""
    fence = _fence(body)
    return database.run(
        lambda s: _read(
            s,
            service.set_geofence(
                s,
                institution_id=principal.institution_id,
                terminal_id=terminal_id,
                fence=fence,
                actor=principal,
            ),
        )
    )


@router.delete("/terminals/{terminal_id}/geofence", response_model=TerminalRead)
def remove_terminal_geofence(
    terminal_id: uuid.UUID, principal: PrincipalDep, database: DatabaseDep
) -> Any:
    return database.run(
        lambda s: _read(
            s,
            service.set_geofence(
                s,
                institution_id=principal.institution_id,
                terminal_id=terminal_id,
                fence=None,
                actor=principal,
            ),
        )
    )


def alert_read(alert: GeofenceAlert) -> GeofenceAlertRead:
    fence = geofence.Fence(
        geofence.Point(alert.fence_latitude_micro, alert.fence_longitude_micro),
        alert.fence_radius_metres,
    )
    read = fence_read(fence)
    assert read is not None
    return GeofenceAlertRead(
        id=alert.id,
        terminal_id=alert.terminal_id,
        occurred_at=alert.occurred_at,
        latitude=geofence.micro_to_text(alert.latitude_micro),
        longitude=geofence.micro_to_text(alert.longitude_micro),
        distance_metres=alert.distance_metres,
        geofence=read,
        key_serial=alert.key_serial,
        method=alert.method,
        request_id=alert.request_id,
    )


@router.get("/terminal-alerts", response_model=GeofenceAlertPage)
def list_terminal_alerts(
    principal: PrincipalDep,
    database: DatabaseDep,
    terminal_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Requests refused because the terminal reported a position outside its geofence."""
    after = decode_id(cursor)
    items = database.run(
        lambda s: [
            alert_read(a)
            for a in service.list_alerts(
                s,
                institution_id=principal.institution_id,
                terminal_id=terminal_id,
                after=after,
                limit=limit,
            )
        ]
    )
    return GeofenceAlertPage(
        items=items, next_cursor=encode_id(items[-1].id) if len(items) == limit else None
    )


@router.get("/platform-key", response_model=PlatformKeyRead)
def get_platform_key(principal: PrincipalDep, database: DatabaseDep) -> Any:
    """The public key that signs the platform's answers to terminals: pin it on the device."""
    serial, public_key = database.run(
        lambda s: platform_keys.public_key(s, institution_id=principal.institution_id)
    )
    return PlatformKeyRead(
        institution_code=principal.institution_code,
        serial=serial,
        public_key=public_key.to_hex(),
        public_key_pem=public_key.to_pem(),
        fingerprint=public_key.fingerprint(),
    )
