"""Terminal use cases: the registry (enrol, change status, rotate keys, set geofences), the
verification of signed requests, and the geofence alerts.

Every registry query filters on the caller's institution: a terminal of another institution
is "not found". Status changes and key rotations lock the terminal's row first
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers
anyway), so two administrators acting at once cannot both win a transition or both add
serial 2.

:func:`verify_signed_request` is the whole server side of the protocol described in
``signing.py``, as a function of the request's parts and the time, so it is tested without
HTTP. It is the one place that decides whether a terminal may act; the API calls it and turns
the terminal into a :class:`~huinong.security.principals.Principal`.

A refusal for a position outside the geofence must leave an alert even though the request
fails, and the request's transaction rolls back. So :func:`verify_signed_request` raises
:class:`OutsideGeofence` carrying what the alert needs, and the entry point records it with
:func:`record_geofence_alert` in a transaction of its own (which also remembers the nonce, so
replaying the refused request cannot pile up alerts).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.config import get_settings
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.security.audit import service as audit
from huinong.security.crypto import CryptoError, SM2PublicKey
from huinong.security.principals import Principal, PrincipalKind
from huinong.security.terminals import geofence, rules, signing
from huinong.security.terminals.models import GeofenceAlert, Terminal, TerminalKey
from huinong.security.terminals.nonces import DatabaseNonceStore, NonceStore
from huinong.security.terminals.rules import (
    BindingKind,
    KeyStatus,
    TerminalKind,
    TerminalStatus,
)

# ---------------------------------------------------------------------------- registry


def parse_public_key(text: str) -> SM2PublicKey:
    """An SM2 public key given as hex (``04 || x || y``, or ``x || y``) or as a PEM
    ``PUBLIC KEY`` block; 422 ``terminals.invalid_public_key`` otherwise (including a point
    that is not on the curve)."""
    try:
        if "-----BEGIN" in text:
            return SM2PublicKey.from_der(_pem_body(text))
        return SM2PublicKey.from_hex(text)
    except (CryptoError, ValueError) as exc:
        raise InvalidInput(
            "terminals.invalid_public_key",
            f"not an SM2 public key: {exc}; give hex '04' + x + y or a PEM PUBLIC KEY block",
            field="public_key",
        ) from None


_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.DOTALL)


def _pem_body(text: str) -> bytes:
    """The DER inside a ``PUBLIC KEY`` PEM block, whatever whitespace it is wrapped in (JSON
    clients send the block with its line breaks escaped, or flattened to spaces)."""
    match = _PEM.search(text)
    if match is None:
        raise ValueError(
            "expected one -----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY----- block"
        )
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error:
        raise ValueError("the PEM block is not base64") from None


def make_fence(
    *, latitude: str, longitude: str, radius_metres: int, prefix: str = ""
) -> geofence.Fence:
    """A geofence from decimal-degree strings; 422 naming the field at fault."""
    try:
        latitude_micro = geofence.degrees_to_micro(latitude)
        geofence.Point(latitude_micro, 0)
    except ValueError as exc:
        raise InvalidInput(
            "terminals.invalid_latitude", str(exc), field=prefix + "latitude"
        ) from None
    try:
        longitude_micro = geofence.degrees_to_micro(longitude)
        centre = geofence.Point(latitude_micro, longitude_micro)
    except ValueError as exc:
        raise InvalidInput(
            "terminals.invalid_longitude", str(exc), field=prefix + "longitude"
        ) from None
    try:
        return geofence.Fence(centre, radius_metres)
    except ValueError as exc:
        raise InvalidInput(
            "terminals.invalid_radius", str(exc), field=prefix + "radius_metres"
        ) from None


def fence_of(terminal: Terminal) -> geofence.Fence | None:
    if (
        terminal.geofence_latitude_micro is None
        or terminal.geofence_longitude_micro is None
        or terminal.geofence_radius_metres is None
    ):
        return None
    return geofence.Fence(
        geofence.Point(terminal.geofence_latitude_micro, terminal.geofence_longitude_micro),
        terminal.geofence_radius_metres,
    )


def _check_key_unused(session: Session, institution_id: uuid.UUID, key: SM2PublicKey) -> str:
    fingerprint = key.fingerprint()
    taken = session.scalar(
        select(TerminalKey.id).where(
            TerminalKey.institution_id == institution_id, TerminalKey.fingerprint == fingerprint
        )
    )
    if taken is not None:
        raise Conflict(
            "terminals.public_key_taken",
            "this public key is already enrolled; every device (and every rotation) needs a "
            "key pair of its own",
            field="public_key",
        )
    return fingerprint


def _audit(
    session: Session, action: str, terminal: Terminal, actor: Principal | None, **detail: Any
) -> None:
    audit.record(
        session,
        action=action,
        institution_id=terminal.institution_id,
        actor=actor,
        object_type="terminal",
        object_id=str(terminal.id),
        detail=detail or None,
    )


def enrol_terminal(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    kind: TerminalKind,
    binding_kind: BindingKind,
    binding_reference: str,
    public_key: str,
    label: str | None = None,
    fence: geofence.Fence | None = None,
    actor: Principal | None = None,
) -> Terminal:
    """Register a device, pending, with its first public key (serial 1)."""
    code = rules.check_code(code)
    binding_reference = rules.check_binding_reference(binding_reference)
    key = parse_public_key(public_key)
    taken = session.scalar(
        select(Terminal.id).where(Terminal.institution_id == institution_id, Terminal.code == code)
    )
    if taken is not None:
        raise Conflict(
            "terminals.code_taken", "a terminal with this code is enrolled", field="code"
        )
    fingerprint = _check_key_unused(session, institution_id, key)
    now = clock.now()
    terminal = Terminal(
        id=uuid7(),
        institution_id=institution_id,
        code=code,
        label=label.strip() if label and label.strip() else None,
        kind=TerminalKind(kind),
        binding_kind=BindingKind(binding_kind),
        binding_reference=binding_reference,
        status=TerminalStatus.pending,
        created_at=now,
        status_changed_at=now,
    )
    _apply_fence(terminal, fence)
    session.add(terminal)
    session.flush()
    session.add(
        TerminalKey(
            id=uuid7(),
            institution_id=institution_id,
            terminal_id=terminal.id,
            serial=1,
            public_key=key.to_hex(),
            fingerprint=fingerprint,
            status=KeyStatus.active,
            created_at=now,
            retired_at=None,
        )
    )
    session.flush()
    _audit(session, "terminals.enrolled", terminal, actor, binding=str(terminal.binding_kind))
    return terminal


def _apply_fence(terminal: Terminal, fence: geofence.Fence | None) -> None:
    terminal.geofence_latitude_micro = fence.centre.latitude_micro if fence else None
    terminal.geofence_longitude_micro = fence.centre.longitude_micro if fence else None
    terminal.geofence_radius_metres = fence.radius_metres if fence else None


def _not_found() -> NotFound:
    return NotFound("terminals.not_found", "no such terminal", field="terminal_id")


def get_terminal(
    session: Session, *, institution_id: uuid.UUID, terminal_id: uuid.UUID, lock: bool = False
) -> Terminal:
    terminal = session.get(Terminal, terminal_id, with_for_update=lock or None)
    if terminal is None or terminal.institution_id != institution_id:
        raise _not_found()
    return terminal


def get_terminal_by_code(session: Session, *, institution_id: uuid.UUID, code: str) -> Terminal:
    terminal = session.scalar(
        select(Terminal).where(Terminal.institution_id == institution_id, Terminal.code == code)
    )
    if terminal is None:
        raise NotFound("terminals.not_found", "no terminal has this code", field="code")
    return terminal


def list_terminals(
    session: Session,
    *,
    institution_id: uuid.UUID,
    status: TerminalStatus | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Terminal]:
    query = select(Terminal).where(Terminal.institution_id == institution_id)
    if status is not None:
        query = query.where(Terminal.status == TerminalStatus(status).value)
    if after is not None:
        query = query.where(Terminal.id > after)
    return list(session.scalars(query.order_by(Terminal.id).limit(limit)))


def keys_of(
    session: Session, *, terminal_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TerminalKey]]:
    """The keys of each terminal, oldest serial first."""
    found: dict[uuid.UUID, list[TerminalKey]] = {terminal_id: [] for terminal_id in terminal_ids}
    if not terminal_ids:
        return found
    query = (
        select(TerminalKey)
        .where(TerminalKey.terminal_id.in_(list(terminal_ids)))
        .order_by(TerminalKey.terminal_id, TerminalKey.serial)
    )
    for key in session.scalars(query):
        found[key.terminal_id].append(key)
    return found


def change_status(
    session: Session,
    *,
    institution_id: uuid.UUID,
    terminal_id: uuid.UUID,
    target: TerminalStatus,
    actor: Principal | None = None,
) -> Terminal:
    """Activate, suspend or revoke a terminal (see ``rules.ALLOWED_TRANSITIONS``). The next
    signed request sees the new status: nothing about a terminal's standing is cached."""
    terminal = get_terminal(
        session, institution_id=institution_id, terminal_id=terminal_id, lock=True
    )
    terminal.status = rules.check_transition(
        TerminalStatus(terminal.status), TerminalStatus(target)
    )
    terminal.status_changed_at = clock.now()
    session.flush()
    _audit(session, f"terminals.{target}", terminal, actor)
    return terminal


def rotate_key(
    session: Session,
    *,
    institution_id: uuid.UUID,
    terminal_id: uuid.UUID,
    public_key: str,
    actor: Principal | None = None,
) -> TerminalKey:
    """Retire the terminal's active key and enrol the next serial. Requests signed with the
    retired key are refused from now on (401 ``terminals.key_retired``): the device switches
    to its new key as soon as the rotation is confirmed to it."""
    key = parse_public_key(public_key)
    terminal = get_terminal(
        session, institution_id=institution_id, terminal_id=terminal_id, lock=True
    )
    if terminal.status == TerminalStatus.revoked:
        raise Conflict(
            "terminals.terminal_revoked",
            "a revoked terminal gets no new keys; enrol a new terminal",
            field="terminal_id",
        )
    fingerprint = _check_key_unused(session, institution_id, key)
    now = clock.now()
    for old in session.scalars(
        select(TerminalKey).where(
            TerminalKey.terminal_id == terminal.id, TerminalKey.status == KeyStatus.active.value
        )
    ):
        old.status = KeyStatus.retired
        old.retired_at = now
    # The retirement must reach the database before the new active key: the partial unique
    # index allows one active key per terminal at any moment.
    session.flush()
    last = session.scalar(
        select(func.max(TerminalKey.serial)).where(TerminalKey.terminal_id == terminal.id)
    )
    new_key = TerminalKey(
        id=uuid7(),
        institution_id=institution_id,
        terminal_id=terminal.id,
        serial=(last or 0) + 1,
        public_key=key.to_hex(),
        fingerprint=fingerprint,
        status=KeyStatus.active,
        created_at=now,
        retired_at=None,
    )
    session.add(new_key)
    session.flush()
    _audit(session, "terminals.key_rotated", terminal, actor, key_serial=new_key.serial)
    return new_key


def set_geofence(
    session: Session,
    *,
    institution_id: uuid.UUID,
    terminal_id: uuid.UUID,
    fence: geofence.Fence | None,
    actor: Principal | None = None,
) -> Terminal:
    """Set (or, with ``None``, remove) the terminal's geofence."""
    terminal = get_terminal(
        session, institution_id=institution_id, terminal_id=terminal_id, lock=True
    )
    if terminal.status == TerminalStatus.revoked:
        raise Conflict(
            "terminals.terminal_revoked", "a revoked terminal is final", field="terminal_id"
        )
    _apply_fence(terminal, fence)
    session.flush()
    _audit(session, "terminals.geofence_set", terminal, actor, removed=fence is None)
    return terminal


def list_alerts(
    session: Session,
    *,
    institution_id: uuid.UUID,
    terminal_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[GeofenceAlert]:
    """Geofence alerts, oldest first (ids are time-ordered)."""
    query = select(GeofenceAlert).where(GeofenceAlert.institution_id == institution_id)
    if terminal_id is not None:
        query = query.where(GeofenceAlert.terminal_id == terminal_id)
    if after is not None:
        query = query.where(GeofenceAlert.id > after)
    return list(session.scalars(query.order_by(GeofenceAlert.id).limit(limit)))


# ---------------------------------------------------------------------------- signed requests


class OutsideGeofence(Forbidden):
    """The terminal reported a position outside its geofence (403). Carries what the alert
    records; the entry point writes it with :func:`record_geofence_alert`."""

    def __init__(
        self,
        *,
        terminal: Terminal,
        key_serial: int,
        method: str,
        nonce: str,
        nonce_expires_at: datetime,
        position: geofence.Point,
        fence: geofence.Fence,
        distance_metres: float,
        occurred_at: datetime,
    ) -> None:
        super().__init__(
            "terminals.outside_geofence",
            f"the terminal reports a position {round(distance_metres)} m from the centre of "
            f"its geofence (radius {fence.radius_metres} m); it may only be used where it is "
            "registered. The risk officers have been alerted.",
            field=signing.LOCATION_HEADER,
        )
        self.terminal_id = terminal.id
        self.institution_id = terminal.institution_id
        self.key_serial = key_serial
        self.method = method
        self.nonce = nonce
        self.nonce_expires_at = nonce_expires_at
        self.position = position
        self.fence = fence
        self.distance_metres = distance_metres
        self.occurred_at = occurred_at


_STATUS_REFUSALS = {
    TerminalStatus.pending: "the terminal is enrolled but not yet activated by an administrator",
    TerminalStatus.suspended: "the terminal is suspended; ask the institution to reactivate it",
    TerminalStatus.revoked: "the terminal is revoked and can no longer be used",
}


def verify_signed_request(
    session: Session,
    *,
    method: str,
    path_with_query: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    nonces: NonceStore | None = None,
    window_seconds: int | None = None,
) -> Terminal:
    """The terminal that signed this request, or the refusal, checked in the order given in
    ``signing.py`` (each refusal its own 401/403 code). Claims the nonce as a side effect."""
    window = get_settings().signature_window_seconds if window_seconds is None else window_seconds
    nonces = nonces or DatabaseNonceStore()
    parsed = signing.parse_request_headers(headers)
    signing.check_timestamp(parsed.timestamp, now=now, window_seconds=window)

    terminal = session.get(Terminal, parsed.terminal_id)
    if terminal is None:
        raise Unauthenticated(
            "terminals.unknown_terminal",
            "no terminal is enrolled with this id",
            field=signing.TERMINAL_ID_HEADER,
        )
    key = session.scalar(
        select(TerminalKey).where(
            TerminalKey.terminal_id == terminal.id, TerminalKey.serial == parsed.key_serial
        )
    )
    if key is None:
        raise Unauthenticated(
            "terminals.unknown_key_serial",
            "the terminal has no key with this serial",
            field=signing.KEY_SERIAL_HEADER,
        )
    if key.status == KeyStatus.retired:
        raise Unauthenticated(
            "terminals.key_retired",
            "this key was retired by a key rotation; sign with the terminal's current key",
            field=signing.KEY_SERIAL_HEADER,
        )
    public_key = SM2PublicKey.from_hex(key.public_key)
    if not signing.verify_request_signature(
        public_key, parsed, method=method, path_with_query=path_with_query, body=body
    ):
        raise Unauthenticated(
            "terminals.bad_signature",
            "the signature does not verify: sign METHOD, PATH_WITH_QUERY, TIMESTAMP, NONCE, "
            "SM3(body) (and the location, when sent) exactly as sent, with the key named",
            field=signing.SIGNATURE_HEADER,
        )

    status = TerminalStatus(terminal.status)
    if status is not TerminalStatus.active:
        raise Forbidden(
            f"terminals.terminal_{status.value}",
            _STATUS_REFUSALS[status],
            field=signing.TERMINAL_ID_HEADER,
        )

    # Remembered until the timestamp check alone refuses a replay (one second of margin).
    expires_at = datetime.fromtimestamp(parsed.timestamp, tz=now.tzinfo) + timedelta(
        seconds=window + 1
    )
    if not nonces.claim(
        session,
        institution_id=terminal.institution_id,
        terminal_id=terminal.id,
        nonce=parsed.nonce,
        expires_at=expires_at,
        now=now,
    ):
        raise Unauthenticated(
            "terminals.replayed_nonce",
            "this nonce was already used by the terminal; sign every request with a new nonce",
            field=signing.NONCE_HEADER,
        )

    fence = fence_of(terminal)
    if fence is not None:
        if parsed.position is None:
            raise Forbidden(
                "terminals.location_required",
                "the terminal has a geofence: send its position in X-Location (and sign it)",
                field=signing.LOCATION_HEADER,
            )
        distance = geofence.distance_metres(fence.centre, parsed.position)
        if distance > fence.radius_metres:
            raise OutsideGeofence(
                terminal=terminal,
                key_serial=key.serial,
                method=method.upper(),
                nonce=parsed.nonce,
                nonce_expires_at=expires_at,
                position=parsed.position,
                fence=fence,
                distance_metres=distance,
                occurred_at=now,
            )
    return terminal


def record_geofence_alert(
    session: Session,
    *,
    refusal: OutsideGeofence,
    request_id: str | None = None,
    nonces: NonceStore | None = None,
) -> GeofenceAlert:
    """Record the refusal as an alert, in the caller's (separate) transaction, and remember
    the nonce that the refused request's rolled-back transaction could not keep."""
    nonces = nonces or DatabaseNonceStore()
    # A replay of the refused request then gets ``replayed_nonce``, not a second alert. With
    # Redis the nonce is already held and this claim simply reports so.
    nonces.claim(
        session,
        institution_id=refusal.institution_id,
        terminal_id=refusal.terminal_id,
        nonce=refusal.nonce,
        expires_at=refusal.nonce_expires_at,
        now=refusal.occurred_at,
    )
    alert = GeofenceAlert(
        id=uuid7(),
        institution_id=refusal.institution_id,
        terminal_id=refusal.terminal_id,
        occurred_at=refusal.occurred_at,
        latitude_micro=refusal.position.latitude_micro,
        longitude_micro=refusal.position.longitude_micro,
        distance_metres=min(round(refusal.distance_metres), 2**31 - 1),
        fence_latitude_micro=refusal.fence.centre.latitude_micro,
        fence_longitude_micro=refusal.fence.centre.longitude_micro,
        fence_radius_metres=refusal.fence.radius_metres,
        key_serial=refusal.key_serial,
        method=refusal.method[:8],
        nonce=refusal.nonce,
        request_id=request_id[:64] if request_id else None,
    )
    session.add(alert)
    session.flush()
    audit.record(
        session,
        action="terminals.outside_geofence",
        institution_id=refusal.institution_id,
        object_type="terminal",
        object_id=str(refusal.terminal_id),
        outcome="denied",
        detail={"alert_id": str(alert.id), "distance_metres": alert.distance_metres},
    )
    return alert


def principal_for(session: Session, *, terminal: Terminal) -> Principal:
    """The principal a verified terminal acts as: its institution, the roles of its binding,
    its code as the name audit records show."""
    institution = institutions.get_institution(session, institution_id=terminal.institution_id)
    return Principal(
        kind=PrincipalKind.terminal,
        subject_id=terminal.id,
        institution_id=institution.id,
        institution_code=institution.code,
        currency=institution.currency,
        roles=rules.roles_for(BindingKind(terminal.binding_kind)),
        office_id=None,
        display=terminal.code,
    )
