"""One-time codes that authorise a withdrawal by farmer code (一码通 + 动态验证码).

A farmer who has no PIN in their head but has their card shows the agent the farmer code; the
terminal asks the platform to send a one-time code to the phone on the customer's record, the
farmer reads it to the agent, and the terminal sends the code with the withdrawal. The code
proves the customer holds the phone as well as the card.

A code authorises one thing: this amount from this account at this service point, once, for
five minutes. Asking again replaces the earlier code (it expires at once), five wrong tries
spend it, and the digest stored is HMAC-SM3 under a key derived for this purpose and bound to
the row's id — a database reader learns nothing it could type into a terminal. As with PINs, a
wrong code is raised as ``pins.CheckRefused`` so the try is counted after the withdrawal rolls
back.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, Forbidden
from huinong.ids import uuid7
from huinong.ledger.models import Account
from huinong.parties import farmer_codes
from huinong.parties import service as parties
from huinong.payments import service as payments
from huinong.payments.service_points import points, rules
from huinong.payments.service_points.models import ServicePoint, WithdrawalCode
from huinong.payments.service_points.pins import CheckRefused
from huinong.security import keyring
from huinong.security.audit import service as audit
from huinong.security.crypto import hmac_sm3
from huinong.security.identities.rules import new_one_time_code
from huinong.security.principals import Principal

CODE_LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class CodeToSend:
    """What the entry point hands to the sender once the transaction has committed."""

    challenge: WithdrawalCode
    phone: str
    code: str


def _digest(challenge_id: uuid.UUID, code: str) -> str:
    key = keyring.derived_key("withdrawal-one-time-code")
    return hmac_sm3(key, f"{challenge_id}:{code}".encode()).hex()


def card_holder_account(
    session: Session, *, point: ServicePoint, farmer_code: str
) -> tuple[Account, uuid.UUID]:
    """The default deposit account of the farmer code's customer, and the customer's id."""
    customer = farmer_codes.customer_by_farmer_code(
        session, institution_id=point.institution_id, code=farmer_code
    )
    account = payments.default_deposit_account(
        session, institution_id=point.institution_id, customer_id=customer.id
    )
    if account is None:
        raise Conflict(
            "agents.no_deposit_account",
            "the card holder has no open deposit account; they open one at an outlet",
            field="farmer_code",
        )
    return account, customer.id


def request_code(
    session: Session, *, principal: Principal, farmer_code: str, amount: int
) -> CodeToSend:
    """Make a code for withdrawing ``amount`` at the caller's service point."""
    point = points.service_point_of(session, principal=principal)
    rules.check_withdrawal(points.get_terms(session, institution_id=point.institution_id), amount)
    account, customer_id = card_holder_account(session, point=point, farmer_code=farmer_code)
    customer = parties.get_customer(
        session, institution_id=point.institution_id, customer_id=customer_id
    )
    phone = parties.identifiers(session, customer).phone
    if phone is None:
        raise Conflict(
            "agents.no_phone_on_record",
            "the card holder has no phone on record; use the PIN, or record a phone at an outlet",
            field="farmer_code",
        )
    now = clock.now()
    session.execute(
        update(WithdrawalCode)
        .where(
            WithdrawalCode.service_point_id == point.id,
            WithdrawalCode.account_id == account.id,
            WithdrawalCode.used_at.is_(None),
            WithdrawalCode.expires_at > now,
        )
        .values(expires_at=now)
    )
    code = new_one_time_code()
    challenge_id = uuid7()
    challenge = WithdrawalCode(
        id=challenge_id,
        institution_id=point.institution_id,
        service_point_id=point.id,
        account_id=account.id,
        amount=amount,
        code_digest=_digest(challenge_id, code),
        expires_at=now + CODE_LIFETIME,
        attempts=0,
        created_at=now,
    )
    session.add(challenge)
    session.flush()
    audit.record(
        session,
        action="agents.withdrawal_code_sent",
        institution_id=point.institution_id,
        actor=principal,
        object_type="account",
        object_id=str(account.id),
        detail={"service_point": point.code, "amount": amount},
    )
    return CodeToSend(challenge=challenge, phone=phone, code=code)


def consume_code(
    session: Session, *, point: ServicePoint, account: Account, code: str, amount: int
) -> None:
    """Spend the code in force for this account at this point, or refuse."""
    now = clock.now()
    challenge = session.scalars(
        select(WithdrawalCode)
        .where(
            WithdrawalCode.service_point_id == point.id,
            WithdrawalCode.account_id == account.id,
            WithdrawalCode.used_at.is_(None),
        )
        .order_by(WithdrawalCode.created_at.desc(), WithdrawalCode.id.desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if challenge is None or challenge.expires_at <= now or challenge.attempts >= MAX_ATTEMPTS:
        raise Forbidden(
            "agents.one_time_code_expired",
            "no one-time code is in force for this card here: send a new one",
            field="one_time_code",
        )
    if not hmac.compare_digest(challenge.code_digest, _digest(challenge.id, code)):
        challenge_id = challenge.id
        raise CheckRefused(
            Forbidden(
                "agents.wrong_one_time_code", "the one-time code is wrong", field="one_time_code"
            ),
            lambda s: record_code_failure(s, challenge_id=challenge_id),
        )
    if challenge.amount != amount:
        raise Conflict(
            "agents.one_time_code_amount_mismatch",
            f"the code was sent for {challenge.amount} fen; send a new code for this amount",
            field="amount",
        )
    challenge.used_at = now
    session.flush()


def record_code_failure(session: Session, *, challenge_id: uuid.UUID) -> None:
    session.execute(
        update(WithdrawalCode)
        .where(WithdrawalCode.id == challenge_id)
        .values(attempts=WithdrawalCode.attempts + 1)
    )
    challenge = session.get(WithdrawalCode, challenge_id)
    if challenge is None:
        return
    audit.record(
        session,
        action="agents.wrong_one_time_code",
        institution_id=challenge.institution_id,
        object_type="account",
        object_id=str(challenge.account_id),
        outcome="denied",
        detail={"attempts": challenge.attempts},
    )
