"""PINs of deposit accounts, checked at service points.

A teller sets a PIN at the counter; the server keeps only its argon2id hash (JR/T 0171 C3). At
a service point the PIN travels SM2-encrypted to the institution's platform public key (the
key terminals already pin to verify answers), inside the signed request. Three wrong PINs in a
row lock the PIN until a teller sets a new one; a wrong PIN is raised as ``CheckRefused`` so the
entry point can count it in a transaction of its own while the operation rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Forbidden, InvalidInput
from huinong.ledger.models import Account
from huinong.payments import service as payments
from huinong.payments.service_points import rules
from huinong.payments.service_points.models import (
    AccountPin,
)
from huinong.security.audit import service as audit
from huinong.security.crypto import CryptoError
from huinong.security.identities import passwords
from huinong.security.principals import Principal
from huinong.security.terminals import platform_keys

# --------------------------------------------------------------------------- PINs


class CheckRefused(Exception):
    """A wrong PIN or one-time code. The operation rolls back, so the entry point runs
    ``record_failure`` in a transaction of its own (counting towards the lock), then answers
    with ``error``."""

    def __init__(self, error: Forbidden, record_failure: Callable[[Session], None]) -> None:
        super().__init__(error.message)
        self.error = error
        self.record_failure = record_failure


def set_pin(
    session: Session, *, institution_id: uuid.UUID, account_number: str, pin: str, actor: Principal
) -> None:
    """A teller sets (or resets) an account's PIN, which also unlocks it."""
    rules.check_pin_format(pin)
    if rules.weak_pin(pin):
        raise InvalidInput(
            "agents.weak_pin", "choose a PIN that is not a run or a repeated digit", field="pin"
        )
    account = payments.deposit_account(
        session, institution_id=institution_id, account_number=account_number
    )
    record = session.get(AccountPin, account.id, with_for_update=True)
    if record is None:
        record = AccountPin(account_id=account.id, institution_id=institution_id)
        session.add(record)
    record.pin_hash = passwords.hash_password(pin)
    record.failed_attempts = 0
    record.locked = False
    record.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="agents.pin_set",
        institution_id=institution_id,
        actor=actor,
        object_type="account",
        object_id=str(account.id),
    )


def decrypt_pin(session: Session, *, institution_id: uuid.UUID, pin_ciphertext: str) -> str:
    try:
        ciphertext = bytes.fromhex(pin_ciphertext)
        signer = platform_keys.signer(session, institution_id=institution_id)
        pin = signer.private_key.decrypt(ciphertext).decode("ascii")
    except (ValueError, CryptoError, UnicodeDecodeError):
        raise InvalidInput(
            "agents.pin_unreadable",
            "the PIN must be SM2-encrypted (C1C3C2, hex) to the platform public key",
            field="pin_ciphertext",
        ) from None
    return rules.check_pin_format(pin, field="pin_ciphertext")


def check_pin(session: Session, *, account: Account, pin: str) -> None:
    record = session.get(AccountPin, account.id)
    if record is None:
        raise Forbidden(
            "agents.pin_not_set",
            "this account has no PIN; the customer sets one at an outlet",
            field="account_number",
        )
    if record.locked:
        raise Forbidden(
            "agents.pin_locked",
            "the PIN is locked after too many wrong tries; a teller at the outlet resets it",
            field="pin_ciphertext",
        )
    if not passwords.verify_password(record.pin_hash, pin):
        account_id = account.id
        raise CheckRefused(
            Forbidden("agents.wrong_pin", "the PIN is wrong", field="pin_ciphertext"),
            lambda s: record_pin_failure(s, account_id=account_id),
        )
    if record.failed_attempts:
        record.failed_attempts = 0


def record_pin_failure(session: Session, *, account_id: uuid.UUID) -> None:
    record = session.get(AccountPin, account_id, with_for_update=True)
    if record is None:
        return
    record.failed_attempts += 1
    if record.failed_attempts >= rules.PIN_MAX_FAILURES:
        record.locked = True
    record.updated_at = clock.now()
    audit.record(
        session,
        action="agents.wrong_pin",
        institution_id=record.institution_id,
        object_type="account",
        object_id=str(account_id),
        outcome="denied",
        detail={"failed_attempts": record.failed_attempts, "locked": record.locked},
    )
