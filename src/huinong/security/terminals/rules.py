"""The rules of the terminal registry, as pure functions: kinds, bindings, the status life cycle
and the roles a terminal acts with.

A terminal moves through four statuses::

    pending ──activate──> active <──activate── suspended
       │                   │   └───suspend────────^ │
       └──────revoke───────┴──────revoke────────────┘──> revoked (final)

It is enrolled *pending* (its key is known, but it may not transact until an administrator
has checked the device in the field), *active* while in service, *suspended* for a while (a
lost device that may turn up, an agent under review), and *revoked* for good: a revoked
terminal is never reactivated, a replacement device is enrolled instead. Asking for the
status a terminal already has is refused too, so a double click cannot hide a lost race.

A terminal is bound to a service point (it then acts for the agent who runs it) or to a produce
merchant (it acts for the buyer). Service points and merchants are registered by a later issue;
until then the binding is a kind plus a free reference string (the service point's or merchant's
number in the institution's own books).
"""

from __future__ import annotations

import re
from enum import StrEnum

from huinong.errors import Conflict, InvalidInput
from huinong.security.principals import Role


class TerminalKind(StrEnum):
    smart_terminal = "smart_terminal"  # 智能终端 / 双屏终端 at a service point
    pos = "pos"  # 手持 POS in the field
    mobile = "mobile"  # a phone app of an agent or a buyer


class BindingKind(StrEnum):
    service_point = "service_point"
    merchant = "merchant"


class TerminalStatus(StrEnum):
    pending = "pending"
    active = "active"
    suspended = "suspended"
    revoked = "revoked"


class KeyStatus(StrEnum):
    active = "active"
    retired = "retired"


ALLOWED_TRANSITIONS: dict[TerminalStatus, frozenset[TerminalStatus]] = {
    TerminalStatus.pending: frozenset({TerminalStatus.active, TerminalStatus.revoked}),
    TerminalStatus.active: frozenset({TerminalStatus.suspended, TerminalStatus.revoked}),
    TerminalStatus.suspended: frozenset({TerminalStatus.active, TerminalStatus.revoked}),
    TerminalStatus.revoked: frozenset(),
}


def check_transition(current: TerminalStatus, target: TerminalStatus) -> TerminalStatus:
    """``target`` if a terminal in ``current`` may move there; otherwise a 409 naming both."""
    if target not in ALLOWED_TRANSITIONS[current]:
        if current is TerminalStatus.revoked:
            message = "the terminal is revoked, which is final; enrol a new terminal instead"
        else:
            message = f"a {current} terminal cannot become {target}"
        raise Conflict("terminals.invalid_transition", message, field="status")
    return target


ROLES_BY_BINDING: dict[BindingKind, frozenset[Role]] = {
    BindingKind.service_point: frozenset({Role.agent}),
    BindingKind.merchant: frozenset({Role.buyer}),
}


def roles_for(binding_kind: BindingKind) -> frozenset[Role]:
    """The roles a terminal acts with: a service point's acts for its agent, a merchant's for
    the buyer. Never a back-office role: a terminal in a village shop is not a teller."""
    return ROLES_BY_BINDING[binding_kind]


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def check_code(code: str) -> str:
    """A terminal's code: what staff and audit records call it (``SP0042-POS1``). 1-32 of
    letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit."""
    if not _CODE.match(code):
        raise InvalidInput(
            "terminals.invalid_code",
            "a terminal code is 1-32 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
            field="code",
        )
    return code


def check_binding_reference(reference: str) -> str:
    reference = reference.strip()
    if not reference:
        raise InvalidInput(
            "terminals.binding_reference_required",
            "name the service point or merchant the terminal belongs to",
            field="binding_reference",
        )
    return reference
