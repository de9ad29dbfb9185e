"""Masks of personal data, and who sees which field in full.

The masks keep just enough for a person to recognise their own number, following the
examples of JR/T 0171-2020 Annex A (信息屏蔽) and issue 3 §4:

* identity-document number: first 6 (the area code) and last 4 — ``110105********002X``;
* mobile phone: first 3 and last 4 — ``138****8000``;
* name: the first character, the rest starred — ``张*``, ``欧阳娜娜`` → ``欧***``;
* card or account number: first 6 and last 4, as printed on card receipts.

A value too short to keep both ends while hiding the middle is starred whole.

**Who sees what** — decided as a data-protection officer would, by minimum necessary use
(JR/T 0171-2020 §5 and §7):

* Ordinary responses (create, read, list, look up) show **identity-document numbers and
  phones masked to everyone**. Nobody's daily work needs the full number on screen: a teller
  checks the card in the customer's hand and finds the customer by typing the number (an
  exact blind-index lookup, which needs no decryption), an account manager recognises a
  farmer by name and the last four digits.
* **Names** are shown in full to the roles that serve or decide on the customer — teller,
  account manager, approver, risk officer — and masked to everyone else: administrators run
  the system, not customer relationships; auditors check processes and work on record ids;
  agents, buyers, partners and government viewers see only what a transaction needs.
* The **full identity-document number or phone** is disclosed only by the explicit reveal use
  case (``POST /api/v1/customers/{id}/reveal``), which names the fields and states a purpose,
  and is allowed to: teller and account manager (filling a form the customer signs, calling
  the customer back) and, for the ID number, the risk officer (anti-money-laundering reports
  to the regulator carry it). Each reveal is a read of personal data and so leaves an audit
  record. Nobody else — including administrators and auditors — can obtain a full value
  through the API.
* A principal with several roles gets the most any of its roles gets.

The tables below are the policy; code asks :func:`shows_in_full` and :func:`may_reveal`, never
checks role names itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from huinong.security.principals import Role

# Roles whose work is a customer relationship or a decision on it.
SERVING_ROLES = frozenset({Role.teller, Role.account_manager, Role.approver, Role.risk_officer})

# Fields shown in full in ordinary responses, by role; any field not named is always masked.
FULL_IN_RESPONSES: dict[str, frozenset[Role]] = {
    "name": SERVING_ROLES,
    "id_number": frozenset(),
    "phone": frozenset(),
    "card_number": frozenset(),
    "account_number": SERVING_ROLES,
}

# Fields the reveal use case may disclose, by role.
REVEALABLE: dict[str, frozenset[Role]] = {
    "id_number": frozenset({Role.teller, Role.account_manager, Role.risk_officer}),
    "phone": frozenset({Role.teller, Role.account_manager}),
}


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_id_number(number: str) -> str:
    """``11010519491231002X`` -> ``110105********002X``."""
    return mask("id_number", number)


def mask_phone(phone: str | None) -> str | None:
    """``13800138000`` -> ``138****8000``."""
    return None if phone is None else mask("phone", phone)


def mask_name(name: str) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``; a one-character name stays as it is (there
    is nothing left to hide that the first character does not show)."""
    return name[:1] + "*" * (len(name) - 1)


def mask_account_number(number: str | None) -> str | None:
    """``6228480402564890018`` -> ``622848*********0018``."""
    return None if number is None else mask("account_number", number)


# What each number-like field keeps visible: (leading, trailing) characters.
_KEPT_ENDS = {"id_number": (6, 4), "phone": (3, 4), "account_number": (6, 4), "card_number": (6, 4)}


def mask(field: str, value: str) -> str:
    """The mask of ``field``; a field without a mask of its own is starred whole."""
    if field == "name":
        return mask_name(value)
    if field not in _KEPT_ENDS:
        return "*" * len(value)
    return _keep(value, *_KEPT_ENDS[field])


def shows_in_full(field: str, roles: Iterable[Role]) -> bool:
    return not FULL_IN_RESPONSES.get(field, frozenset()).isdisjoint(roles)


def present(field: str, value: str | None, roles: Iterable[Role]) -> str | None:
    """``value`` as a principal with ``roles`` may see it in an ordinary response."""
    if value is None:
        return None
    return value if shows_in_full(field, roles) else mask(field, value)


def may_reveal(field: str, roles: Iterable[Role]) -> bool:
    return not REVEALABLE.get(field, frozenset()).isdisjoint(roles)
