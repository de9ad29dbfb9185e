"""``huinong terminal``: the terminal registry from the server — enrol a device, change its
status, rotate its key, set its geofence, print the platform key it pins, make a development
key pair, and sweep expired nonces.

A terminal is named by its code (``SP0042-POS1``) or its id. Enrolling from here does what
``POST /api/v1/terminals`` does; the protocol a terminal then speaks is documented in
``huinong.security.terminals.signing``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock
from huinong.cli.common import console, fail, institution_id_by_code, session_factory
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.security.crypto import SM2PrivateKey
from huinong.security.terminals import geofence, nonces, platform_keys, service
from huinong.security.terminals.models import Terminal
from huinong.security.terminals.rules import BindingKind, TerminalKind, TerminalStatus

app = typer.Typer(
    help="Terminals (smart terminals, POS, mobiles) and their keys.", no_args_is_help=True
)

Institution = Annotated[str, typer.Option(help="institution code")]
TerminalName = Annotated[str, typer.Argument(help="the terminal's code or id")]


def _public_key_text(value: str) -> str:
    """A public key given inline (hex or PEM) or as the path of a file that holds one."""
    path = Path(value)
    if len(value) < 4096 and "-----BEGIN" not in value and path.is_file():
        return path.read_text()
    return value


def _find(session: Session, institution_id: uuid.UUID, name: str) -> Terminal:
    try:
        terminal_id = uuid.UUID(name)
    except ValueError:
        return service.get_terminal_by_code(session, institution_id=institution_id, code=name)
    return service.get_terminal(session, institution_id=institution_id, terminal_id=terminal_id)


def _institution(factory: sessionmaker[Session], institution: str) -> uuid.UUID:
    institution_id = institution_id_by_code(factory, institution)
    assert institution_id is not None
    return institution_id


@app.command("enroll")
def enroll(
    institution: Institution,
    code: Annotated[str, typer.Option(help="the terminal's code, e.g. SP0042-POS1")],
    public_key: Annotated[
        str, typer.Option(help="the terminal's SM2 public key: hex, PEM, or a file holding one")
    ],
    binding_reference: Annotated[
        str, typer.Option("--reference", help="number of the service point or merchant")
    ],
    kind: Annotated[TerminalKind, typer.Option()] = TerminalKind.pos,
    binding: Annotated[BindingKind, typer.Option()] = BindingKind.service_point,
    label: Annotated[str | None, typer.Option()] = None,
    activate: Annotated[bool, typer.Option(help="activate it at once")] = False,
) -> None:
    """Enrol a terminal with its public key (pending unless --activate)."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    key_text = _public_key_text(public_key)

    def unit(session: Session) -> tuple[str, str]:
        terminal = service.enrol_terminal(
            session,
            institution_id=institution_id,
            code=code,
            kind=kind,
            binding_kind=binding,
            binding_reference=binding_reference,
            public_key=key_text,
            label=label,
        )
        if activate:
            service.change_status(
                session,
                institution_id=institution_id,
                terminal_id=terminal.id,
                target=TerminalStatus.active,
            )
        return str(terminal.id), str(terminal.status)

    try:
        terminal_id, status = run_in_transaction(factory, unit)
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"terminal {code} enrolled ({status}): id {terminal_id}, key serial 1")


@app.command("list")
def list_terminals(
    institution: Institution,
    status: Annotated[TerminalStatus | None, typer.Option()] = None,
) -> None:
    """List an institution's terminals."""
    factory = session_factory()
    institution_id = _institution(factory, institution)

    def unit(session: Session) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        after = None
        while True:
            page = service.list_terminals(
                session, institution_id=institution_id, status=status, after=after, limit=500
            )
            keys = service.keys_of(session, terminal_ids=[t.id for t in page])
            for t in page:
                active = [k.serial for k in keys[t.id] if k.status == "active"]
                fence = service.fence_of(t)
                rows.append(
                    (
                        t.code,
                        str(t.id),
                        t.kind,
                        f"{t.binding_kind} {t.binding_reference}",
                        t.status,
                        str(active[0]) if active else "-",
                        f"{fence.centre.text()} r={fence.radius_metres} m" if fence else "-",
                    )
                )
            if len(page) < 500:
                return rows
            after = page[-1].id

    table = Table("code", "id", "kind", "binding", "status", "key", "geofence")
    for row in run_in_transaction(factory, unit):
        table.add_row(*row)
    console.print(table)


def _change(institution: str, name: str, target: TerminalStatus) -> None:
    factory = session_factory()
    institution_id = _institution(factory, institution)

    def unit(session: Session) -> str:
        terminal = _find(session, institution_id, name)
        service.change_status(
            session, institution_id=institution_id, terminal_id=terminal.id, target=target
        )
        return terminal.code

    try:
        code = run_in_transaction(factory, unit)
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"terminal {code} is now {target}")


@app.command("activate")
def activate(name: TerminalName, institution: Institution) -> None:
    """pending or suspended -> active."""
    _change(institution, name, TerminalStatus.active)


@app.command("suspend")
def suspend(name: TerminalName, institution: Institution) -> None:
    """active -> suspended (its signed requests are refused until reactivated)."""
    _change(institution, name, TerminalStatus.suspended)


@app.command("revoke")
def revoke(name: TerminalName, institution: Institution) -> None:
    """-> revoked, for good."""
    _change(institution, name, TerminalStatus.revoked)


@app.command("rotate-key")
def rotate_key(
    name: TerminalName,
    institution: Institution,
    public_key: Annotated[str, typer.Option(help="the new public key: hex, PEM, or a file")],
) -> None:
    """Enrol the terminal's next key and retire the current one."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    key_text = _public_key_text(public_key)

    def unit(session: Session) -> int:
        terminal = _find(session, institution_id, name)
        return service.rotate_key(
            session, institution_id=institution_id, terminal_id=terminal.id, public_key=key_text
        ).serial

    try:
        serial = run_in_transaction(factory, unit)
    except HuinongError as exc:
        fail(exc.message)
    console.print(f"terminal {name}: key serial {serial} active, the previous key retired")


@app.command("geofence")
def set_geofence(
    name: TerminalName,
    institution: Institution,
    latitude: Annotated[str | None, typer.Option(help="centre, decimal degrees")] = None,
    longitude: Annotated[str | None, typer.Option(help="centre, decimal degrees")] = None,
    radius: Annotated[int | None, typer.Option(help="radius in metres")] = None,
    clear: Annotated[bool, typer.Option(help="remove the geofence")] = False,
) -> None:
    """Set (or --clear) the circle a terminal must report itself inside."""
    if clear == (latitude is not None or longitude is not None or radius is not None):
        fail("give either --latitude, --longitude and --radius, or --clear")
    factory = session_factory()
    institution_id = _institution(factory, institution)
    try:
        fence = (
            None
            if clear
            else service.make_fence(
                latitude=latitude or "", longitude=longitude or "", radius_metres=radius or 0
            )
        )

        def unit(session: Session) -> None:
            terminal = _find(session, institution_id, name)
            service.set_geofence(
                session, institution_id=institution_id, terminal_id=terminal.id, fence=fence
            )

        run_in_transaction(factory, unit)
    except HuinongError as exc:
        fail(exc.message)
    if fence is None:
        console.print(f"terminal {name}: geofence removed")
    else:
        console.print(
            f"terminal {name}: geofence {fence.centre.text()}, radius {fence.radius_metres} m"
        )


@app.command("alerts")
def alerts(institution: Institution) -> None:
    """Requests refused because the terminal was outside its geofence."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    table = Table("time", "terminal", "position", "distance (m)", "radius (m)", "request id")
    for alert in run_in_transaction(
        factory, lambda s: service.list_alerts(s, institution_id=institution_id, limit=500)
    ):
        table.add_row(
            alert.occurred_at.astimezone(clock.DISPLAY_TIMEZONE).isoformat(timespec="seconds"),
            str(alert.terminal_id),
            geofence.Point(alert.latitude_micro, alert.longitude_micro).text(),
            str(alert.distance_metres),
            str(alert.fence_radius_metres),
            alert.request_id or "-",
        )
    console.print(table)


@app.command("platform-key")
def platform_key(
    institution: Institution,
    pem: Annotated[bool, typer.Option(help="print PEM instead of hex")] = False,
) -> None:
    """Print the institution's platform public key, which terminals pin (created if needed)."""
    factory = session_factory()
    institution_id = _institution(factory, institution)
    serial, key = run_in_transaction(
        factory, lambda s: platform_keys.public_key(s, institution_id=institution_id)
    )
    if pem:
        typer.echo(key.to_pem(), nl=False)
    else:
        typer.echo(key.to_hex())
    console.print(f"serial {serial}, fingerprint (SM3) {key.fingerprint()}", style="dim")


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option(help="where to write the private key (PEM, mode 0600)")],
) -> None:
    """Make an SM2 key pair for a development terminal and print its public key. A real
    device makes its own and never lets the private key leave it."""
    if out.exists():
        fail(f"{out} exists; choose another path (keys are never overwritten)")
    key = SM2PrivateKey.generate()
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.to_pem())
    typer.echo(key.public_key.to_hex())


@app.command("purge-nonces")
def purge_nonces() -> None:
    """Delete the expired nonces of signed requests (each terminal's own requests sweep its
    nonces too; this catches terminals that went quiet)."""
    factory = session_factory()
    removed = run_in_transaction(factory, lambda s: nonces.purge_expired(s, now=clock.now()))
    console.print(f"{removed} expired nonces deleted")
