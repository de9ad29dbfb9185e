"""Billers (收费单位) and their keys: the power and water utilities, telecom carriers and
resident insurance schemes whose bills we collect, each with its settlement account and, for
an HTTP biller, the keys of its signed round trip.

**Settlement account.** Each biller owns one liability account, code 2314 (代理业务负债,
agency business liabilities): money we collected for the biller and hold until we settle
with it. Paying a bill credits it; the settlement of a reconciled day debits it.

**HTTP billers.** A biller is either a *file* biller (bills arrive as files, see
:mod:`huinong.payments.bills.intake`) or an *HTTP* biller, queried and confirmed over its
signed API. An HTTP biller has its ``base_url``, its SM2 public key (verifies its answers)
and our own SM2 key pair for it: the public half is given to the biller, the private half is
stored wrapped with SM4-GCM under a key derived from the keyring (purpose
``biller-key-wrap``), bound to the biller's id as associated data. :func:`endpoint`
unwraps it to call the biller.

Functions that take a session never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.errors import Conflict, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.institutions import service as institutions
from huinong.ledger import service as ledger
from huinong.ledger.types import AccountType
from huinong.payments.bills.client import BillerEndpoint
from huinong.payments.bills.common import check_choice
from huinong.payments.bills.models import Biller, BillerKind, BillerProtocol
from huinong.security import keyring
from huinong.security.audit import service as audit
from huinong.security.crypto import (
    SM2PrivateKey,
    SM2PublicKey,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from huinong.security.principals import Principal

KEY_WRAP_PURPOSE = "biller-key-wrap"
# 代理业务负债 (agency business liabilities): what we collected for a biller and owe it. One
# account per biller, owned by the biller row. Not in ``ledger.chart.AccountCode``: the
# standard chart opens one account per code for every institution, and these are per biller.
AGENCY_PAYABLES = 2314


def _wrap_key() -> bytes:
    return keyring.derived_key(KEY_WRAP_PURPOSE, length=16)


def _key_aad(biller_id: uuid.UUID) -> bytes:
    return b"huinong/biller-key/" + biller_id.bytes


def _public_key(text: str, field_name: str) -> SM2PublicKey:
    try:
        return SM2PublicKey.from_hex(text)
    except ValueError as exc:
        raise InvalidInput(
            "bills.invalid_public_key",
            "an SM2 public key in hex (04 || x || y, 130 hex digits)",
            field=field_name,
        ) from exc


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > 500 or " " in url:
        raise InvalidInput("bills.invalid_base_url", "an http:// or https:// URL", field="base_url")
    return url.rstrip("/")


def create_biller(
    session: Session,
    *,
    institution_id: uuid.UUID,
    code: str,
    name: str,
    kind: str,
    protocol: str = BillerProtocol.file,
    base_url: str | None = None,
    biller_public_key: str | None = None,
    actor: Principal | None = None,
    currency: str = "CNY",
) -> Biller:
    """A biller and its settlement account. An HTTP biller also gets our SM2 key pair for
    it (give ``our_public_key`` to the biller); its own public key verifies its answers."""
    code = code.strip()
    if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(
            "bills.invalid_biller_code", "1 to 32 letters, digits, - or _", field="code"
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput("bills.invalid_name", "1 to 200 characters", field="name")
    check_choice(kind, BillerKind, "kind")
    check_choice(protocol, BillerProtocol, "protocol")
    http = protocol == BillerProtocol.http
    if http and (not base_url or not biller_public_key):
        missing = "base_url" if not base_url else "biller_public_key"
        raise InvalidInput(
            "bills.http_settings_required",
            "an HTTP biller needs its base_url and its biller_public_key",
            field=missing,
        )
    if not http and (base_url or biller_public_key):
        raise InvalidInput(
            "bills.http_settings_for_file_biller",
            "base_url and biller_public_key are for HTTP billers only",
            field="base_url" if base_url else "biller_public_key",
        )
    taken = session.scalar(
        select(Biller.id).where(Biller.institution_id == institution_id, Biller.code == code)
    )
    if taken is not None:
        raise Conflict("bills.biller_code_taken", f"a biller with code {code} exists", field="code")
    biller_id = uuid7()
    account = ledger.create_account(
        session,
        institution_id=institution_id,
        ledger=currency,
        type=AccountType.liability,
        code=AGENCY_PAYABLES,
        name=f"代理业务负债 {name.strip()}"[:200],
        owner_id=biller_id,
        debits_must_not_exceed_credits=True,
    )
    our_key = SM2PrivateKey.generate() if http else None
    now = clock.now()
    biller = Biller(
        id=biller_id,
        institution_id=institution_id,
        code=code,
        name=name.strip(),
        kind=kind,
        protocol=protocol,
        settlement_account_id=account.id,
        base_url=_check_url(base_url) if http and base_url else None,
        biller_public_key=_public_key(biller_public_key, "biller_public_key").to_hex()
        if http and biller_public_key
        else None,
        our_public_key=our_key.public_key.to_hex() if our_key else None,
        our_private_key_wrapped=sm4_gcm_encrypt(
            _wrap_key(), bytes.fromhex(our_key.to_hex()), aad=_key_aad(biller_id)
        )
        if our_key
        else None,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(biller)
    session.flush()
    audit.record(
        session,
        action="bills.biller_created",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"code": code, "kind": kind, "protocol": protocol},
    )
    return biller


def update_biller(
    session: Session,
    *,
    institution_id: uuid.UUID,
    biller_id: uuid.UUID,
    name: str | None = None,
    base_url: str | None = None,
    biller_public_key: str | None = None,
    active: bool | None = None,
    actor: Principal | None = None,
) -> Biller:
    biller = get_biller(session, institution_id=institution_id, biller_id=biller_id)
    changed: list[str] = []
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("bills.invalid_name", "1 to 200 characters", field="name")
        biller.name = name.strip()
        changed.append("name")
    if base_url is not None or biller_public_key is not None:
        if biller.protocol != BillerProtocol.http:
            raise InvalidInput(
                "bills.http_settings_for_file_biller",
                "base_url and biller_public_key are for HTTP billers only",
                field="base_url" if base_url is not None else "biller_public_key",
            )
        if base_url is not None:
            biller.base_url = _check_url(base_url)
            changed.append("base_url")
        if biller_public_key is not None:
            biller.biller_public_key = _public_key(biller_public_key, "biller_public_key").to_hex()
            changed.append("biller_public_key")
    if active is not None:
        biller.active = active
        changed.append("active")
    biller.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        action="bills.biller_updated",
        institution_id=institution_id,
        actor=actor,
        object_type="biller",
        object_id=str(biller.id),
        detail={"changed": ",".join(changed)},
    )
    return biller


def get_biller(session: Session, *, institution_id: uuid.UUID, biller_id: uuid.UUID) -> Biller:
    biller = session.get(Biller, biller_id)
    if biller is None or biller.institution_id != institution_id:
        raise NotFound("bills.biller_not_found", "no such biller", field="biller_id")
    return biller


def get_biller_by_code(session: Session, *, institution_id: uuid.UUID, code: str) -> Biller:
    biller = session.scalar(
        select(Biller).where(Biller.institution_id == institution_id, Biller.code == code)
    )
    if biller is None:
        raise NotFound("bills.biller_not_found", f"no biller with code {code}", field="biller")
    return biller


def list_billers(session: Session, *, institution_id: uuid.UUID) -> Sequence[Biller]:
    return session.scalars(
        select(Biller).where(Biller.institution_id == institution_id).order_by(Biller.code)
    ).all()


def settlement_balance(session: Session, biller: Biller) -> int:
    account = ledger.get_account(
        session, institution_id=biller.institution_id, account_id=biller.settlement_account_id
    )
    return account.credits_posted - account.debits_posted


def endpoint(session: Session, biller: Biller) -> BillerEndpoint:
    """How to reach an HTTP biller: its URL and keys, our key unwrapped."""
    if biller.protocol != BillerProtocol.http:
        raise InvalidInput(
            "bills.not_an_http_biller", "this biller takes bill files only", field="biller_id"
        )
    assert biller.base_url and biller.biller_public_key and biller.our_private_key_wrapped
    institution = institutions.get_institution(session, institution_id=biller.institution_id)
    our_key = SM2PrivateKey.from_hex(
        sm4_gcm_decrypt(_wrap_key(), biller.our_private_key_wrapped, aad=_key_aad(biller.id)).hex()
    )
    return BillerEndpoint(
        base_url=biller.base_url,
        caller=institution.code,
        our_key=our_key,
        biller_key=SM2PublicKey.from_hex(biller.biller_public_key),
    )
