"""Who is calling: the principal every authenticated request carries, and the roles.

A principal is one of three kinds: a staff user (or a partner system's service account)
signed in with a password, a customer signed in to the web hall, or a registered terminal
whose request carried a valid SM2 signature. Its institution always comes from the
credential, never from the request. Roles decide which routes it may call
(``huinong.security.permissions``); the institution decides which rows it may see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    teller = "teller"
    account_manager = "account_manager"
    approver = "approver"
    risk_officer = "risk_officer"
    auditor = "auditor"
    agent = "agent"  # runs a village service point (助农服务点)
    buyer = "buyer"  # produce merchant (收购商)
    gov_viewer = "gov_viewer"  # local government, read-only
    partner = "partner"  # another institution's system
    reviewer = "reviewer"  # a review panel member of village credit campaigns (联合评议组)
    customer = "customer"  # a farmer or business in the web hall


STAFF_ROLES = frozenset(Role) - {Role.customer}


class PrincipalKind(StrEnum):
    staff = "staff"
    customer = "customer"
    terminal = "terminal"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject_id: uuid.UUID  # staff user, customer or terminal id
    institution_id: uuid.UUID
    institution_code: str
    currency: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    office_id: uuid.UUID | None = None
    # The name an audit record shows: a username, a terminal's code, a customer's masked phone.
    display: str = ""
    # A staff user signed in with a password an administrator set: until it is changed the
    # principal may only change it, look at itself, or sign out.
    must_change_password: bool = False

    def has_any(self, roles: frozenset[Role]) -> bool:
        return not self.roles.isdisjoint(roles)
