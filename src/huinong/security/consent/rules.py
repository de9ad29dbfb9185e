"""The rules of consent, without a database: when a consent is live, what the guard answers,
and what the purge may remove.

A consent is **live** at ``t`` when ``granted_at <= t`` and it has neither expired
(``t < expires_at``) nor been revoked (``t < revoked_at``). Revocation takes effect at the
instant it is recorded: a check at that same instant already refuses.

The **guard** looks at every consent of the customer for the category, purpose and grantee:
any live one allows the use (the one lasting longest is returned); otherwise the answer says
why, from the consent that ended last — ``consent.revoked`` or ``consent.expired`` — or
``consent.missing`` when there never was one.

The **purge** deals with consents that have ended and that it has not dealt with before. For
each (category, purpose) such a consent covered, the data collected for it is removed unless
another consent of the same customer for that category and purpose is live (whatever its
grantee: the data holders keep data per customer, category and purpose). Either way the ended
consent is then marked as dealt with, so running the purge again does nothing; a later consent
that ends is dealt with when it ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from huinong.errors import InvalidInput


class ConsentState(StrEnum):
    pending = "pending"  # granted_at in the future
    live = "live"
    expired = "expired"
    revoked = "revoked"


class ConsentTerms(Protocol):
    @property
    def granted_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


T = TypeVar("T", bound=ConsentTerms)


def state_at(consent: ConsentTerms, at: datetime) -> ConsentState:
    if consent.revoked_at is not None and consent.revoked_at <= at:
        return ConsentState.revoked
    if consent.expires_at is not None and consent.expires_at <= at:
        return ConsentState.expired
    if consent.granted_at > at:
        return ConsentState.pending
    return ConsentState.live


def ended_at(consent: ConsentTerms) -> datetime | None:
    """When the consent stopped (or will stop) allowing use; ``None``: not yet decided."""
    ends = [t for t in (consent.revoked_at, consent.expires_at) if t is not None]
    return min(ends) if ends else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str | None  # consent.missing / consent.expired / consent.revoked when refused
    message: str


def decide(candidates: Sequence[T], at: datetime) -> tuple[Decision, T | None]:
    """The guard's answer from the consents that match (customer, category, purpose,
    grantee), and the consent it rests on (the live one, else the one that ended last)."""
    live = [c for c in candidates if state_at(c, at) is ConsentState.live]
    if live:
        # The longest-lasting: "no expiry" sorts after every date.
        chosen = max(live, key=lambda c: (c.expires_at is None, c.expires_at or c.granted_at))
        return Decision(True, None, "a live consent allows this use"), chosen
    ended = [
        c for c in candidates if state_at(c, at) in (ConsentState.expired, ConsentState.revoked)
    ]
    if not ended:
        return (
            Decision(
                False,
                "consent.missing",
                "the customer has not consented to this use of this data",
            ),
            None,
        )
    last = max(ended, key=lambda c: ended_at(c) or c.granted_at)
    if state_at(last, at) is ConsentState.revoked:
        return (
            Decision(False, "consent.revoked", "the customer revoked consent to this use"),
            last,
        )
    return Decision(False, "consent.expired", "the customer's consent to this use expired"), last


class PurgeableConsent(ConsentTerms, Protocol):
    @property
    def purpose(self) -> str: ...
    @property
    def category_names(self) -> Sequence[str]: ...
    @property
    def purged_at(self) -> datetime | None: ...


P = TypeVar("P", bound=PurgeableConsent)


@dataclass(frozen=True)
class PurgePlan:
    # (category, purpose) pairs whose collected data is to be removed.
    purge: tuple[tuple[str, str], ...]
    # (category, purpose) pairs of ended consents kept because another consent is live.
    kept: tuple[tuple[str, str], ...]


def purge_plan(consents: Iterable[P], at: datetime) -> tuple[PurgePlan, list[P]]:
    """What the purge does for one customer, given all their consents; and the ended consents
    it deals with (to be marked purged)."""
    consents = list(consents)
    live_pairs = {
        (category, c.purpose)
        for c in consents
        if state_at(c, at) is ConsentState.live
        for category in c.category_names
    }
    done = [
        c
        for c in consents
        if c.purged_at is None and state_at(c, at) in (ConsentState.expired, ConsentState.revoked)
    ]
    ended_pairs = {(category, c.purpose) for c in done for category in c.category_names}
    return (
        PurgePlan(
            purge=tuple(sorted(ended_pairs - live_pairs)),
            kept=tuple(sorted(ended_pairs & live_pairs)),
        ),
        done,
    )


def check_terms(
    *, categories: Sequence[str], granted_at: datetime, expires_at: datetime | None
) -> list[str]:
    """The categories, deduplicated and sorted; refuses an empty list or an expiry that is
    not after the grant."""
    if not categories:
        raise InvalidInput(
            "consent.categories_required",
            "name at least one data category",
            field="categories",
        )
    if expires_at is not None and expires_at <= granted_at:
        raise InvalidInput(
            "consent.expiry_not_after_grant",
            "a consent must expire after it is given",
            field="expires_at",
        )
    return sorted(set(categories))
