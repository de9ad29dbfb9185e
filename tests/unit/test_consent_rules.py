"""The rules of consent without a database: states, the guard's decision, the purge plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from huinong.errors import InvalidInput
from huinong.security.consent import rules
from huinong.security.consent.rules import ConsentState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Terms:
    granted_at: datetime = T0
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    purpose: str = "marketing"
    category_names: tuple[str, ...] = ("contact",)
    purged_at: datetime | None = None


def test_states():
    consent = Terms(expires_at=T0 + 10 * DAY)
    assert rules.state_at(consent, T0 - DAY) is ConsentState.pending
    assert rules.state_at(consent, T0) is ConsentState.live
    assert rules.state_at(consent, T0 + 10 * DAY - timedelta(microseconds=1)) is ConsentState.live
    assert rules.state_at(consent, T0 + 10 * DAY) is ConsentState.expired
    revoked = Terms(expires_at=T0 + 10 * DAY, revoked_at=T0 + DAY)
    assert rules.state_at(revoked, T0 + DAY) is ConsentState.revoked  # at once
    assert rules.state_at(revoked, T0 + 20 * DAY) is ConsentState.revoked
    assert rules.state_at(Terms(), T0 + 10_000 * DAY) is ConsentState.live


def test_decide():
    at = T0 + 5 * DAY
    decision, chosen = rules.decide([], at)
    assert (decision.allowed, decision.code, chosen) == (False, "consent.missing", None)

    expired = Terms(expires_at=T0 + DAY)
    revoked = Terms(revoked_at=T0 + 2 * DAY)
    decision, chosen = rules.decide([expired, revoked], at)
    assert (decision.code, chosen) == ("consent.revoked", revoked)  # the one that ended last
    decision, chosen = rules.decide([expired, Terms(revoked_at=T0 + timedelta(hours=1))], at)
    assert (decision.code, chosen) == ("consent.expired", expired)

    short, endless = Terms(expires_at=T0 + 6 * DAY), Terms()
    decision, chosen = rules.decide([expired, short, endless], at)
    assert decision.allowed and decision.code is None and chosen is endless

    pending = Terms(granted_at=T0 + 6 * DAY)
    decision, _ = rules.decide([pending], at)
    assert decision.code == "consent.missing"


def test_purge_plan_removes_pairs_without_a_live_consent_and_keeps_the_others():
    at = T0 + 5 * DAY
    ended = Terms(category_names=("contact", "identity"), revoked_at=T0 + DAY)
    live = Terms(category_names=("contact",))
    other_purpose = Terms(category_names=("identity",), purpose="credit_assessment")
    plan, done = rules.purge_plan([ended, live, other_purpose], at)
    assert plan.purge == (("identity", "marketing"),)
    assert plan.kept == (("contact", "marketing"),)
    assert done == [ended]


def test_purge_plan_skips_consents_dealt_with_and_those_not_ended():
    at = T0 + 5 * DAY
    dealt = Terms(expires_at=T0 + DAY, purged_at=T0 + 2 * DAY)
    live = Terms(purpose="account_opening")
    plan, done = rules.purge_plan([dealt, live], at)
    assert plan.purge == () and plan.kept == () and done == []


def test_terms():
    assert rules.check_terms(
        categories=["identity", "contact", "identity"], granted_at=T0, expires_at=None
    ) == ["contact", "identity"]
    with pytest.raises(InvalidInput) as empty:
        rules.check_terms(categories=[], granted_at=T0, expires_at=None)
    assert empty.value.field == "categories"
    with pytest.raises(InvalidInput) as backwards:
        rules.check_terms(categories=["credit"], granted_at=T0, expires_at=T0)
    assert (backwards.value.code, backwards.value.field) == (
        "consent.expiry_not_after_grant",
        "expires_at",
    )
