"""Blind peer review (背靠背评议): validating one rating and aggregating a panel's ratings.

A village credit campaign asks a review panel (联合评议组) — village cadres and community key
persons (外部关键人) — to rate every surveyed household on their own, never seeing each other's
ratings: integrity 1-4 (4 best), a suggested credit limit in fen, recommend yes/no, and a
comment. Blindness is enforced where ratings are read (the API); this module holds the pure
arithmetic that turns the ratings into one aggregate per household.

**Robust to one outlying reviewer.** A panel is small (3-7 people) and one member may be
partial — a relative, a creditor, a feud. The mean gives that one person unlimited pull: a
single suggested limit of 10 million fen drags the mean of three reviewers anywhere. The
aggregate therefore uses order statistics:

* integrity: the **median** (a ``Decimal``; with an even count the midpoint of the two middle
  ratings, e.g. ``3.5``);
* suggested limit: the **median** in fen (the two middle values averaged, ROUND_HALF_UP);
* recommend: a strict **majority** of yes.

With n >= 3 reviewers, the k-th smallest of all ratings lies between the (k-1)-th and k-th
smallest of the *other* n-1 ratings; the middle order statistics (k in 2..n-1) therefore always
lie within [min, max] of the others, whatever the remaining reviewer wrote. So changing one
reviewer's rating, however wildly, moves the median at most to the edge of the range of the
others; and if all the others agree on recommend, their n-1 > n/2 votes carry the majority.
That is why the quorum's minimum count is at least 3: with two reviewers the median is their
mean and either one moves it anywhere. (A trimmed mean would also resist one outlier when it
trims one rating at each end, but with 3-5 reviewers it trims to the median anyway; the median
is simpler to explain to a panel.)

**Disagreement is flagged, not hidden.** The median absorbs an outlier; the account manager
should still see that the panel split. Dispersion is reported as the integrity range
(max - min) and the limit's median absolute deviation relative to the median limit; a range of
2 or more integrity points, a relative deviation above 0.5, or a recommend vote neither
unanimous nor near it (a minority above a third) flags ``disagreement``. These thresholds are
the fields of :class:`DisagreementRule`.

**Quorum.** A household is scored only when enough of the panel rated it: at least
``min_count`` ratings and at least ``min_share`` of the panel (rounded up). Below quorum the
result is :class:`Pending` — not a low score: a household nobody has rated yet is not a bad
household.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from huinong.errors import InvalidInput
from huinong.money import MAX_FEN

INTEGRITY_MIN = 1
INTEGRITY_MAX = 4
MAX_COMMENT = 500
# No single household's pre-approved line in a village campaign comes near 100 million yuan;
# a bigger suggestion is a typing error (an extra 0 or yuan typed as fen).
MAX_SUGGESTED_LIMIT_FEN = 10_000_000_000
ERROR_CODE = "credit.peer_review.invalid_rating"


@dataclass(frozen=True)
class Rating:
    """One reviewer's rating of one household."""

    reviewer: Hashable  # the reviewer's id
    household: Hashable  # the household's id or survey reference
    integrity: int  # 1 (poor) .. 4 (excellent)
    suggested_limit_fen: int
    recommend: bool
    comment: str | None = None


@dataclass(frozen=True)
class RatingProblem:
    field: str
    message: str


def rating_problems(rating: Rating) -> list[RatingProblem]:
    """Every field of ``rating`` that breaks a rule (empty when valid)."""
    found: list[RatingProblem] = []
    integrity = rating.integrity
    if isinstance(integrity, bool) or not isinstance(integrity, int):
        found.append(RatingProblem("integrity", "a whole number from 1 to 4"))
    elif not INTEGRITY_MIN <= integrity <= INTEGRITY_MAX:
        found.append(RatingProblem("integrity", "from 1 (poor) to 4 (excellent)"))
    limit = rating.suggested_limit_fen
    if isinstance(limit, bool) or not isinstance(limit, int):
        found.append(RatingProblem("suggested_limit_fen", "an integer number of fen"))
    elif not 0 <= limit <= min(MAX_SUGGESTED_LIMIT_FEN, MAX_FEN):
        found.append(
            RatingProblem(
                "suggested_limit_fen",
                f"from 0 to {MAX_SUGGESTED_LIMIT_FEN // 100} yuan (the amount is in fen)",
            )
        )
    if not isinstance(rating.recommend, bool):
        found.append(RatingProblem("recommend", "true or false"))
    if rating.comment is not None:
        comment = rating.comment
        if not comment.strip():
            found.append(RatingProblem("comment", "leave it out rather than blank"))
        elif len(comment) > MAX_COMMENT:
            found.append(RatingProblem("comment", f"at most {MAX_COMMENT} characters"))
        elif any((ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F for c in comment):
            found.append(RatingProblem("comment", "no control characters"))
    return found


def check_rating(rating: Rating) -> Rating:
    """``rating`` if valid, else :class:`InvalidInput` naming the first bad field."""
    found = rating_problems(rating)
    if found:
        raise InvalidInput(ERROR_CODE, found[0].message, field=found[0].field)
    return rating


@dataclass(frozen=True)
class Quorum:
    """How many of the panel must rate a household before it is scored."""

    min_count: int = 3
    min_share: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        if self.min_count < 3:
            # Below 3 the median is a mean of two and one reviewer decides it (module docstring).
            raise InvalidInput(
                "credit.peer_review.invalid_quorum",
                "a quorum is at least 3 reviewers: with fewer, one reviewer decides the result",
                field="min_count",
            )
        if not Decimal(0) <= self.min_share <= Decimal(1):
            raise InvalidInput(
                "credit.peer_review.invalid_quorum",
                "the share of the panel is from 0 to 1",
                field="min_share",
            )

    def required(self, panel_size: int) -> int:
        """Ratings needed for a panel of ``panel_size``."""
        share = int((self.min_share * panel_size).to_integral_value(rounding=ROUND_CEILING))
        return max(self.min_count, share)


@dataclass(frozen=True)
class DisagreementRule:
    """When a scored household's panel is said to disagree (see the module docstring)."""

    integrity_range: int = 2
    limit_relative_mad: Decimal = Decimal("0.5")
    recommend_minority_share: Decimal = Decimal(1) / 3


@dataclass(frozen=True)
class Pending:
    """Below quorum: not scored yet."""

    household: Hashable
    reviewer_count: int
    required: int
    status: str = "pending"


@dataclass(frozen=True)
class Aggregate:
    """A household's scored peer review."""

    household: Hashable
    reviewer_count: int
    integrity: Decimal  # median, 1..4, possibly .5
    suggested_limit_fen: int  # median
    recommend: bool  # strict majority
    recommend_share: Decimal  # share of yes, 4 places
    integrity_range: int  # max - min
    limit_relative_mad: Decimal | None  # median absolute deviation / median, 4 places
    disagreement: bool
    status: str = "scored"


def aggregate(
    household: Hashable,
    ratings: Sequence[Rating],
    *,
    panel: Iterable[Hashable],
    quorum: Quorum,
    disagreement: DisagreementRule | None = None,
) -> Aggregate | Pending:
    """The panel's aggregate for one household, or :class:`Pending` below quorum.

    Every rating must be valid, of ``household``, by a member of ``panel``, one per reviewer;
    anything else is :class:`InvalidInput` (the caller stores ratings that already passed
    :func:`check_rating`, so this is a guard against mixing up households or panels).
    """
    members = set(panel)
    seen: set[Hashable] = set()
    for rating in ratings:
        check_rating(rating)
        if rating.household != household:
            raise InvalidInput(
                "credit.peer_review.wrong_household",
                "a rating of another household",
                field="household",
            )
        if rating.reviewer not in members:
            raise InvalidInput(
                "credit.peer_review.not_on_panel",
                "the reviewer is not on the panel",
                field="reviewer",
            )
        if rating.reviewer in seen:
            raise InvalidInput(
                "credit.peer_review.duplicate_rating",
                "one rating per reviewer and household",
                field="reviewer",
            )
        seen.add(rating.reviewer)
    required = quorum.required(len(members))
    if len(ratings) < required:
        return Pending(household, len(ratings), required)
    rule = disagreement or DisagreementRule()
    integrities = [r.integrity for r in ratings]
    limits = [r.suggested_limit_fen for r in ratings]
    yes = sum(1 for r in ratings if r.recommend)
    median_limit = _median_fen(limits)
    relative_mad = (
        None
        if median_limit == 0
        else (
            Decimal(_median_fen([abs(v - median_limit) for v in limits])) / Decimal(median_limit)
        ).quantize(Decimal("0.0001"))
    )
    share = (Decimal(yes) / Decimal(len(ratings))).quantize(Decimal("0.0001"))
    minority = min(share, 1 - share)
    integrity_range = max(integrities) - min(integrities)
    return Aggregate(
        household=household,
        reviewer_count=len(ratings),
        integrity=_median(integrities),
        suggested_limit_fen=median_limit,
        recommend=yes * 2 > len(ratings),
        recommend_share=share,
        integrity_range=integrity_range,
        limit_relative_mad=relative_mad,
        disagreement=(
            integrity_range >= rule.integrity_range
            or (relative_mad is not None and relative_mad > rule.limit_relative_mad)
            or minority > rule.recommend_minority_share
        ),
    )


def aggregate_all(
    households: Iterable[Hashable],
    ratings: Iterable[Rating],
    *,
    panel: Iterable[Hashable],
    quorum: Quorum,
    disagreement: DisagreementRule | None = None,
) -> dict[Hashable, Aggregate | Pending]:
    """:func:`aggregate` for every household of a campaign, in the order given."""
    by_household: dict[Hashable, list[Rating]] = {h: [] for h in households}
    for rating in ratings:
        if rating.household not in by_household:
            raise InvalidInput(
                "credit.peer_review.wrong_household",
                "a rating of a household outside the campaign",
                field="household",
            )
        by_household[rating.household].append(rating)
    members = list(panel)
    return {
        household: aggregate(
            household, found, panel=members, quorum=quorum, disagreement=disagreement
        )
        for household, found in by_household.items()
    }


def _median(values: Sequence[int]) -> Decimal:
    """The median of integers, exactly: with an even count, the midpoint of the middle two."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[middle])
    return Decimal(ordered[middle - 1] + ordered[middle]) / 2


def _median_fen(values: Sequence[int]) -> int:
    """The median of amounts in integer fen: a half fen (even count) rounds up — still
    between the two middle values, so still within the range of the ratings."""
    return int(_median(values).to_integral_value(rounding=ROUND_HALF_UP))
