"""Blind peer review (背靠背评议) of a campaign's households by its review panel.

The panel is named per campaign: staff users holding the ``reviewer`` role (village cadres and
community key persons get such an account for the campaign), each with their kind. A reviewer
rates every household once — integrity 1–4, a suggested limit, recommend or not, a comment —
and may correct their own rating until the campaign is signed off. Blindness is kept at two
levels: these functions give a reviewer only their own ratings (``my_ratings``), and the API
grants the panel-wide reads (all ratings, aggregates) to bank roles only, so a reviewer asking
for them is refused with 403 before any query runs.

A household's aggregate (``peer_review.aggregate``: medians and a strict majority, robust to
one outlying reviewer) exists once the panel's quorum has rated it; until then it is pending
and the decision treats the peer facts as missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit.campaigns import peer_review
from huinong.credit.campaigns.models import (
    Campaign,
    PeerRating,
    Reviewer,
    ReviewerKind,
)
from huinong.credit.campaigns.service import (
    campaign_households,
    get_campaign,
    get_campaign_household,
    require_open,
)
from huinong.credit.features.peer_review import peer_facts
from huinong.errors import Conflict, Forbidden, InvalidInput, NotFound
from huinong.ids import uuid7
from huinong.security.identities import staff_users
from huinong.security.principals import Role


def add_reviewer(
    session: Session,
    *,
    institution_id: uuid.UUID,
    campaign_id: uuid.UUID,
    staff_user_id: uuid.UUID,
    kind: ReviewerKind,
) -> Reviewer:
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    require_open(campaign, "changed")
    user = staff_users.get_staff_user(session, institution_id=institution_id, user_id=staff_user_id)
    if Role.reviewer not in {Role(r.role) for r in user.roles}:
        raise InvalidInput(
            "credit.review.not_a_reviewer",
            "a panel member is a staff user with the reviewer role",
            field="staff_user_id",
        )
    taken = session.scalars(
        select(Reviewer).where(
            Reviewer.campaign_id == campaign.id, Reviewer.staff_user_id == user.id
        )
    ).one_or_none()
    if taken is not None:
        raise Conflict(
            "credit.review.already_on_panel", "already on the panel", field="staff_user_id"
        )
    reviewer = Reviewer(
        id=uuid7(),
        campaign_id=campaign.id,
        staff_user_id=user.id,
        kind=str(ReviewerKind(kind)),
        created_at=clock.now(),
    )
    session.add(reviewer)
    session.flush()
    return reviewer


def panel(session: Session, *, campaign: Campaign) -> list[Reviewer]:
    return list(
        session.scalars(
            select(Reviewer).where(Reviewer.campaign_id == campaign.id).order_by(Reviewer.id)
        )
    )


def reviewer_of(session: Session, *, campaign: Campaign, staff_user_id: uuid.UUID) -> Reviewer:
    """The caller's seat on the panel; a staff user not on it is refused."""
    reviewer = session.scalars(
        select(Reviewer).where(
            Reviewer.campaign_id == campaign.id, Reviewer.staff_user_id == staff_user_id
        )
    ).one_or_none()
    if reviewer is None:
        raise Forbidden(
            "credit.review.not_on_panel",
            "you are not on this campaign's review panel",
            field="campaign_id",
        )
    return reviewer


def rate(
    session: Session,
    *,
    institution_id: uuid.UUID,
    campaign_id: uuid.UUID,
    staff_user_id: uuid.UUID,
    campaign_household_id: uuid.UUID,
    integrity: int,
    suggested_limit_fen: int,
    recommend: bool,
    comment: str | None,
) -> PeerRating:
    """The reviewer's rating of one household (a second call corrects it)."""
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    require_open(campaign, "rated")
    reviewer = reviewer_of(session, campaign=campaign, staff_user_id=staff_user_id)
    household = get_campaign_household(
        session, campaign=campaign, campaign_household_id=campaign_household_id
    )
    peer_review.check_rating(
        peer_review.Rating(
            reviewer.id, household.id, integrity, suggested_limit_fen, recommend, comment
        )
    )
    rating = session.scalars(
        select(PeerRating).where(
            PeerRating.reviewer_id == reviewer.id,
            PeerRating.campaign_household_id == household.id,
        )
    ).one_or_none()
    if rating is None:
        rating = PeerRating(
            id=uuid7(),
            campaign_id=campaign.id,
            reviewer_id=reviewer.id,
            campaign_household_id=household.id,
        )
        session.add(rating)
    rating.integrity = integrity
    rating.suggested_limit_fen = suggested_limit_fen
    rating.recommend = recommend
    rating.comment = comment
    rating.rated_at = clock.now()
    session.flush()
    return rating


def my_ratings(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID, staff_user_id: uuid.UUID
) -> list[PeerRating]:
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    reviewer = reviewer_of(session, campaign=campaign, staff_user_id=staff_user_id)
    return list(
        session.scalars(
            select(PeerRating).where(PeerRating.reviewer_id == reviewer.id).order_by(PeerRating.id)
        )
    )


def all_ratings(session: Session, *, campaign: Campaign) -> list[PeerRating]:
    """Every rating of the panel — for the bank's staff, never for a reviewer."""
    return list(
        session.scalars(
            select(PeerRating)
            .where(PeerRating.campaign_id == campaign.id)
            .order_by(PeerRating.campaign_household_id, PeerRating.reviewer_id)
        )
    )


def quorum_of(campaign: Campaign) -> peer_review.Quorum:
    return peer_review.Quorum(
        min_count=campaign.quorum_min_count, min_share=Decimal(campaign.quorum_min_share)
    )


def aggregates(
    session: Session, *, campaign: Campaign
) -> dict[uuid.UUID, peer_review.Aggregate | peer_review.Pending]:
    """Each campaign household's aggregate, or pending while below the quorum."""
    households = [row.id for row in campaign_households(session, campaign=campaign)]
    members = panel(session, campaign=campaign)
    if len(members) < campaign.quorum_min_count:
        return {h: peer_review.Pending(h, 0, campaign.quorum_min_count) for h in households}
    ratings = [
        peer_review.Rating(
            r.reviewer_id,
            r.campaign_household_id,
            r.integrity,
            r.suggested_limit_fen,
            r.recommend,
            r.comment,
        )
        for r in all_ratings(session, campaign=campaign)
    ]
    found: Mapping[Hashable, peer_review.Aggregate | peer_review.Pending] = (
        peer_review.aggregate_all(
            households,
            ratings,
            panel=[m.id for m in members],
            quorum=quorum_of(campaign),
        )
    )
    return {uuid.UUID(str(h)): a for h, a in found.items()}


def peer_facts_of(
    result: peer_review.Aggregate | peer_review.Pending,
) -> dict[str, object] | None:
    """The features' peer-review facts of an aggregate; ``None`` while pending."""
    if isinstance(result, peer_review.Pending):
        return None
    return peer_facts(
        integrity_median=result.integrity,
        suggested_limit_fen=result.suggested_limit_fen,
        recommend_share=result.recommend_share,
        dispersion=Decimal(result.integrity_range),
        reviewer_count=result.reviewer_count,
    )


def campaign_of_reviewer(
    session: Session, *, institution_id: uuid.UUID, campaign_id: uuid.UUID, staff_user_id: uuid.UUID
) -> Campaign:
    """The campaign, for a reviewer on its panel (a reviewer sees no other campaign)."""
    campaign = get_campaign(session, institution_id=institution_id, campaign_id=campaign_id)
    try:
        reviewer_of(session, campaign=campaign, staff_user_id=staff_user_id)
    except Forbidden:
        raise NotFound(
            "credit.campaign.not_found", "no such campaign", field="campaign_id"
        ) from None
    return campaign
