"""Blind peer review: rating validation, quorum, and aggregates robust to one outlier."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huinong.credit.campaigns import peer_review as pr
from huinong.errors import InvalidInput

PANEL = ["cadre-1", "cadre-2", "elder-1", "teacher-1", "doctor-1"]
QUORUM = pr.Quorum(min_count=3, min_share=Decimal("0.6"))


def rating(reviewer: str, integrity: int, limit_fen: int, recommend: bool = True) -> pr.Rating:
    return pr.Rating(reviewer, "GJZ-001", integrity, limit_fen, recommend)


def test_a_valid_rating_passes_and_each_bad_field_is_named() -> None:
    good = pr.Rating("cadre-1", "GJZ-001", 4, 5_000_000, True, "勤劳守信")
    assert pr.check_rating(good) is good
    bad = pr.Rating("cadre-1", "GJZ-001", 5, -1, "yes", " ")  # type: ignore[arg-type]
    assert [p.field for p in pr.rating_problems(bad)] == [
        "integrity",
        "suggested_limit_fen",
        "recommend",
        "comment",
    ]
    with pytest.raises(InvalidInput) as caught:
        pr.check_rating(pr.Rating("cadre-1", "GJZ-001", True, 0, True))  # type: ignore[arg-type]
    assert caught.value.code == "credit.peer_review.invalid_rating"
    assert caught.value.field == "integrity"


def test_comments_are_bounded_and_clean() -> None:
    long = pr.Rating("cadre-1", "h", 3, 0, True, "好" * 501)
    control = pr.Rating("cadre-1", "h", 3, 0, True, "ok\x00")
    multi_line = pr.Rating("cadre-1", "h", 3, 0, True, "第一行\n第二行")
    assert [p.field for p in pr.rating_problems(long)] == ["comment"]
    assert [p.field for p in pr.rating_problems(control)] == ["comment"]
    assert pr.rating_problems(multi_line) == []


def test_below_quorum_is_pending_not_scored() -> None:
    # 60 % of a panel of 5 is 3 ratings; 2 are not enough.
    result = pr.aggregate(
        "GJZ-001",
        [rating("cadre-1", 4, 5_000_000), rating("cadre-2", 4, 5_000_000)],
        panel=PANEL,
        quorum=QUORUM,
    )
    assert result == pr.Pending("GJZ-001", reviewer_count=2, required=3)


def test_quorum_takes_the_larger_of_count_and_share() -> None:
    assert pr.Quorum(min_count=3, min_share=Decimal("0.5")).required(4) == 3
    assert pr.Quorum(min_count=3, min_share=Decimal("0.5")).required(9) == 5  # ceil(4.5)
    assert pr.Quorum(min_count=3, min_share=Decimal("1")).required(7) == 7


def test_a_quorum_below_three_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        pr.Quorum(min_count=2)
    assert caught.value.field == "min_count"
    with pytest.raises(InvalidInput):
        pr.Quorum(min_share=Decimal("1.5"))


def test_the_median_ignores_one_wild_reviewer_and_flags_the_split() -> None:
    ratings = [
        rating("cadre-1", 4, 5_000_000),
        rating("cadre-2", 3, 6_000_000),
        rating("elder-1", 4, 5_500_000),
        rating("teacher-1", 1, 900_000_000, recommend=False),  # a feud, and a typing error
    ]
    result = pr.aggregate("GJZ-001", ratings, panel=PANEL, quorum=QUORUM)
    assert isinstance(result, pr.Aggregate)
    assert result.integrity == Decimal("3.5")
    assert result.suggested_limit_fen == 5_750_000
    assert result.recommend is True and result.recommend_share == Decimal("0.75")
    assert result.integrity_range == 3
    assert result.disagreement is True
    assert result.reviewer_count == 4


def test_an_agreeing_panel_is_not_flagged() -> None:
    ratings = [
        rating("cadre-1", 3, 5_000_000),
        rating("cadre-2", 3, 5_000_000),
        rating("elder-1", 4, 6_000_000),
    ]
    result = pr.aggregate("GJZ-001", ratings, panel=PANEL, quorum=QUORUM)
    assert isinstance(result, pr.Aggregate)
    assert (result.integrity, result.suggested_limit_fen) == (Decimal(3), 5_000_000)
    assert result.limit_relative_mad == Decimal(0)
    assert result.disagreement is False


def test_a_split_vote_is_disagreement_even_with_equal_integrity() -> None:
    ratings = [
        rating("cadre-1", 3, 5_000_000, recommend=True),
        rating("cadre-2", 3, 5_000_000, recommend=False),
        rating("elder-1", 3, 5_000_000, recommend=True),
        rating("teacher-1", 3, 5_000_000, recommend=False),
    ]
    result = pr.aggregate("GJZ-001", ratings, panel=PANEL, quorum=QUORUM)
    assert isinstance(result, pr.Aggregate)
    assert result.recommend is False  # a tie is not a majority
    assert result.disagreement is True


def test_a_zero_median_limit_has_no_relative_deviation() -> None:
    ratings = [rating(r, 2, 0, recommend=False) for r in PANEL[:3]]
    result = pr.aggregate("GJZ-001", ratings, panel=PANEL, quorum=QUORUM)
    assert isinstance(result, pr.Aggregate)
    assert result.limit_relative_mad is None and result.suggested_limit_fen == 0


@pytest.mark.parametrize(
    ("ratings", "code"),
    [
        ([rating("stranger", 3, 0)], "credit.peer_review.not_on_panel"),
        ([rating("cadre-1", 3, 0), rating("cadre-1", 4, 0)], "credit.peer_review.duplicate_rating"),
        ([pr.Rating("cadre-1", "GJZ-002", 3, 0, True)], "credit.peer_review.wrong_household"),
        ([rating("cadre-1", 0, 0)], "credit.peer_review.invalid_rating"),
    ],
)
def test_ratings_that_do_not_belong_are_refused(ratings: list[pr.Rating], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        pr.aggregate("GJZ-001", ratings, panel=PANEL, quorum=QUORUM)
    assert caught.value.code == code


def test_aggregate_all_covers_every_household_in_order() -> None:
    ratings = [pr.Rating(r, "A", 4, 1_000_000, True) for r in PANEL[:3]]
    ratings.append(pr.Rating("cadre-1", "B", 2, 0, False))
    results = pr.aggregate_all(["B", "A", "C"], ratings, panel=PANEL, quorum=QUORUM)
    assert list(results) == ["B", "A", "C"]
    assert isinstance(results["A"], pr.Aggregate) and results["A"].integrity == 4
    assert results["B"] == pr.Pending("B", 1, 3)
    assert results["C"] == pr.Pending("C", 0, 3)
    with pytest.raises(InvalidInput):
        pr.aggregate_all(["A"], [pr.Rating("cadre-1", "Z", 3, 0, True)], panel=PANEL, quorum=QUORUM)


ratings_strategy = st.tuples(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=pr.MAX_SUGGESTED_LIMIT_FEN),
    st.booleans(),
)


@given(
    others=st.lists(ratings_strategy, min_size=2, max_size=6),
    replacement=ratings_strategy,
    original=ratings_strategy,
)
def test_one_reviewer_moves_the_aggregate_at_most_to_the_range_of_the_others(
    others: list[tuple[int, int, bool]],
    original: tuple[int, int, bool],
    replacement: tuple[int, int, bool],
) -> None:
    panel = [f"r{i}" for i in range(len(others) + 1)]
    quorum = pr.Quorum(min_count=3, min_share=Decimal(0))
    fixed = [pr.Rating(panel[i + 1], "h", *values) for i, values in enumerate(others)]
    for outlier in (original, replacement):
        result = pr.aggregate(
            "h", [pr.Rating("r0", "h", *outlier), *fixed], panel=panel, quorum=quorum
        )
        assert isinstance(result, pr.Aggregate)
        integrities = [r.integrity for r in fixed]
        limits = [r.suggested_limit_fen for r in fixed]
        assert min(integrities) <= result.integrity <= max(integrities)
        assert min(limits) <= result.suggested_limit_fen <= max(limits)
        votes = {r.recommend for r in fixed}
        if len(votes) == 1:
            assert result.recommend in votes


@given(st.lists(ratings_strategy, min_size=3, max_size=7), st.randoms())
def test_the_aggregate_does_not_depend_on_the_order_of_ratings(
    values: list[tuple[int, int, bool]], random: object
) -> None:
    panel = [f"r{i}" for i in range(len(values))]
    ratings = [pr.Rating(panel[i], "h", *v) for i, v in enumerate(values)]
    shuffled = list(ratings)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    quorum = pr.Quorum()
    assert pr.aggregate("h", ratings, panel=panel, quorum=quorum) == pr.aggregate(
        "h", shuffled, panel=panel, quorum=quorum
    )
