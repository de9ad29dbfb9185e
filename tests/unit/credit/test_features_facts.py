"""Facts as of a date, without look-ahead, and the features computed from them."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.features import flows, telematics
from huinong.credit.features.archive import archive_facts
from huinong.credit.features.bureau import BureauReport, bureau_facts
from huinong.credit.features.catalogue import FeaturesInvalid
from huinong.credit.features.compute import OPERATOR_SOURCES, compute
from huinong.credit.features.facts import facts_frame, household_facts
from huinong.credit.features.flows import MonthlyFlow, Posting, flow_facts, monthly_from_postings
from huinong.credit.features.household import birth_date
from huinong.credit.features.peer_review import peer_facts
from huinong.credit.synthetic import synthetic_households
from huinong.parties.households.archive import ArchiveContent, parse
from huinong.parties.rules import resident_id_check_char

AS_OF = dt.date(2024, 1, 15)
UTC = dt.UTC


def resident_id(birth: str, sequence: str = "123") -> str:
    first17 = f"110105{birth}{sequence}"
    return first17 + resident_id_check_char(first17)


def archive(**fields: object) -> ArchiveContent:
    return parse({"member_count": 4, "labour_count": 2, **fields})


def features_of(row: dict[str, object], as_of: dt.date = AS_OF) -> pd.Series:
    return compute(facts_frame([row], as_of=as_of), as_of=as_of).iloc[0]


# --------------------------------------------------------------- a household by hand


def small_household() -> dict[str, object]:
    surveyed = archive(
        cultivated_land_mu="12.50",
        rented_in_land_mu="2.50",
        livestock=[{"species": "pig", "head_count": 6}, {"species": "cattle", "head_count": 2}],
        machinery=[{"kind": "拖拉机", "value_fen": 3_000_000}, {"kind": "三轮车"}],
        house={"structure": "brick_concrete", "floor_area_m2": "120", "value_fen": 20_000_000},
        income={"year": 2023, "planting": 3_000_000, "wages": 2_000_000, "transfer": 200_000},
        assets=[{"kind": "deposits", "value_fen": 5_000_000}],
        debts=[
            {"lender_kind": "bank", "lender": "农商行", "amount_fen": 1_000_000},
            {"lender_kind": "informal", "lender": "亲戚", "amount_fen": 600_000},
        ],
        subsidies=[
            {"subsidy_type": "耕地地力保护补贴", "year": 2023, "amount_fen": 150_000},
            {"subsidy_type": "耕地地力保护补贴", "year": 2018, "amount_fen": 999_999},
        ],
        entity_flags=["cooperative_member"],
        honours=[{"title": "文明家庭"}],
        veto_facts=[{"kind": "lawsuit", "note": "借款纠纷被告"}],
    )
    earlier = archive(
        subsidies=[{"subsidy_type": "耕地地力保护补贴", "year": 2021, "amount_fen": 140_000}]
    )
    months = [MonthlyFlow(dt.date(2023, m, 1), 100_000, 60_000, 40_000 * m) for m in range(1, 13)]
    return household_facts(
        as_of=AS_OF,
        head_id_number=resident_id("19800229"),
        archive_versions=[(dt.date(2022, 3, 1), earlier), (dt.date(2023, 11, 20), surveyed)],
        monthly_flows=months,
        peer=peer_facts(
            integrity_median=3.5,
            suggested_limit_fen=5_000_000,
            recommend_share=0.8,
            dispersion=0.5,
            reviewer_count=5,
        ),
        bureau_reports=[
            BureauReport(
                resident_id("19800229"), dt.date(2023, 6, 30), 2, 45, 12_345, 1, None, False, 2
            ),
        ],
    )


def test_a_small_household_by_hand() -> None:
    f = features_of(small_household())
    assert f["age_years"] == 43  # born 29 Feb 1980, as of 15 Jan 2024
    assert f["archive_age_months"] == 1  # 20 Nov 2023 → 15 Jan 2024
    assert f["livestock_heads"] == 8
    assert f["machinery_value_fen"] == 3_000_000  # the unvalued tricycle adds nothing
    assert f["house_value_fen"] == 20_000_000
    assert f["total_income_fen"] == 5_200_000
    assert f["income_sources_count"] == 3
    assert f["off_farm_income_share"] == pytest.approx(2_000_000 / 5_200_000)
    assert f["total_debt_fen"] == 1_600_000
    assert f["net_worth_fen"] == 5_000_000 - 1_600_000
    assert f["debt_to_income"] == pytest.approx(1_600_000 / 5_200_000)
    assert f["land_per_labourer_mu"] == 6.25
    assert f["labour_share"] == 0.5
    # 2023 from the latest survey, 2021 from the earlier one; 2018 is outside 2020–2024
    assert f["subsidies_5y_fen"] == 290_000
    assert f["subsidy_years_5y"] == 2
    assert f["veto_count"] == 1 and f["veto_lawsuit"] and not f["veto_bad_loan"]
    assert f["entity_cooperative_member"] and not f["entity_family_farm"]
    assert f["honours_count"] == 1
    # Dec 2023 is the latest complete month; balances 40,000 · month, Jan–Dec 2023
    assert f["flow_months_on_book"] == 12
    assert f["inflow_mean_6m_fen"] == 100_000
    assert f["outflow_mean_12m_fen"] == 60_000
    assert f["net_flow_mean_12m_fen"] == 40_000
    assert f["months_active_12m"] == 12
    assert f["balance_mean_12m_fen"] == 260_000  # 40,000 · 78 / 12
    balances = [40_000 * m for m in range(1, 13)]
    sd = pd.Series(balances).std(ddof=0)
    assert f["balance_cv_12m"] == pytest.approx(sd / 260_000)
    assert f["positive_balance_share_12m"] == 1.0
    assert f["inflow_trend_ratio"] == 1.0
    assert f["peer_integrity_median"] == 3.5 and f["peer_reviewer_count"] == 5
    assert f["bureau_report_age_months"] == 6
    assert f["bureau_overdue_fen"] == 12_345 and f["bureau_max_overdue_days"] == 45
    assert f["bureau_blacklisted"] is False or not f["bureau_blacklisted"]
    assert pd.isna(f["bureau_outstanding_fen"])


def test_a_household_with_nothing_known_has_every_feature_missing_but_the_counts() -> None:
    f = features_of(household_facts(as_of=AS_OF, head_id_number=None))
    assert f["flow_months_on_book"] == 0
    assert f.drop("flow_months_on_book").isna().all()


def test_income_missing_is_not_income_zero() -> None:
    versions = [(dt.date(2023, 5, 1), archive())]
    f = features_of(household_facts(as_of=AS_OF, head_id_number=None, archive_versions=versions))
    assert pd.isna(f["total_income_fen"]) and pd.isna(f["debt_to_income"])
    assert f["total_debt_fen"] == 0 and f["member_count"] == 4


def test_mean_fen_rounds_half_away_from_zero_once() -> None:
    months = [
        MonthlyFlow(dt.date(2023, 11, 1), 1, 0, 1),
        MonthlyFlow(dt.date(2023, 12, 1), 2, 4, -1),
    ]
    f = features_of(household_facts(as_of=AS_OF, head_id_number=None, monthly_flows=months))
    assert f["flow_months_on_book"] == 2
    assert f["inflow_mean_12m_fen"] == 2  # 1.5 → 2
    assert f["net_flow_mean_12m_fen"] == -1  # (1 - 2) / 2 = -0.5 → -1
    assert f["balance_mean_12m_fen"] == 0
    assert pd.isna(f["balance_cv_12m"])  # a mean balance of 0 has no coefficient of variation
    assert pd.isna(f["inflow_trend_ratio"])  # fewer than 6 months


# --------------------------------------------------------------- dates and windows


def test_the_age_counts_completed_years_and_29_february() -> None:
    row = household_facts(as_of=AS_OF, head_id_number=resident_id("20000229"))
    ages = {as_of: features_of(row, as_of)["age_years"] for as_of in (
        dt.date(2001, 2, 28), dt.date(2001, 3, 1), dt.date(2004, 2, 29), dt.date(1999, 1, 1),
    )}  # fmt: skip
    assert ages[dt.date(2001, 2, 28)] == 0
    assert ages[dt.date(2001, 3, 1)] == 1
    assert ages[dt.date(2004, 2, 29)] == 4
    assert pd.isna(ages[dt.date(1999, 1, 1)])  # born after the as-of date: not an age


def test_an_invalid_id_number_is_refused_not_guessed() -> None:
    with pytest.raises(FeaturesInvalid) as error:
        birth_date("110105198002291230")
    assert error.value.field == "head_id_number"


def test_the_window_holds_complete_months_only() -> None:
    months = [MonthlyFlow(dt.date(2024, m, 1), 100 * m, 0, 100 * m) for m in (1, 2, 3)]
    in_march = flow_facts(months, dt.date(2024, 3, 30))
    assert in_march["flow_months_on_book"] == 2 and in_march["inflow_m01_fen"] == 200
    on_last_day = flow_facts(months, dt.date(2024, 3, 31))
    assert on_last_day["flow_months_on_book"] == 3 and on_last_day["inflow_m01_fen"] == 300


def test_months_without_records_carry_the_balance() -> None:
    months = [
        MonthlyFlow(dt.date(2022, 6, 1), 0, 0, 700),
        MonthlyFlow(dt.date(2023, 10, 1), 50, 0, 750),
    ]
    facts = flow_facts(months, AS_OF)
    assert facts["flow_months_on_book"] == 12
    assert facts["balance_m12_fen"] == 700  # Jan 2023 carries June 2022's balance
    assert facts["inflow_m03_fen"] == 50 and facts["balance_m01_fen"] == 750


def test_postings_are_bucketed_by_month_in_shanghai_time() -> None:
    postings = [
        Posting(dt.datetime(2023, 11, 30, 16, 30, tzinfo=UTC), 500),  # 1 Dec in Shanghai
        Posting(dt.datetime(2023, 11, 10, tzinfo=UTC), 300),
        Posting(dt.datetime(2023, 11, 11, tzinfo=UTC), -100),
    ]
    assert monthly_from_postings(postings, opening_balance_fen=1_000) == [
        MonthlyFlow(dt.date(2023, 11, 1), 300, 100, 1_200),
        MonthlyFlow(dt.date(2023, 12, 1), 500, 0, 1_700),
    ]
    with pytest.raises(ValueError, match="time zone"):
        monthly_from_postings([Posting(dt.datetime(2023, 11, 10), 1)])


def test_telematics_facts_by_hand() -> None:
    months = [telematics.TelematicsMonth(dt.date(2023, m, 1), 5_000, 50, 10, m % 2)
              for m in range(1, 13)]  # fmt: skip
    later = telematics.TelematicsMonth(dt.date(2024, 1, 1), 9_999, 999, 999, 9)
    assessments = [telematics.RouteAssessment(dt.date(2023, 9, 1), 88.5),
                   telematics.RouteAssessment(dt.date(2024, 2, 1), 10.0)]  # fmt: skip
    facts = telematics.telematics_facts([*months, later], assessments, AS_OF)
    frame = facts_frame([facts], as_of=AS_OF, sources=OPERATOR_SOURCES)
    f = compute(frame, as_of=AS_OF, sources=OPERATOR_SOURCES).iloc[0]
    assert f["tele_months_observed"] == 12
    assert f["tele_km_monthly_mean"] == 5_000
    assert f["tele_km_monthly_cv"] == 0
    assert f["tele_harsh_braking_per_100km"] == 1.0
    assert f["tele_speeding_per_100km"] == pytest.approx(0.2)
    assert f["tele_violations_12m"] == 6
    assert f["tele_route_score"] == 88.5
    assert f["tele_route_assessment_age_months"] == 4


# --------------------------------------------------------------- no look-ahead

dates = st.dates(dt.date(2019, 1, 1), dt.date(2026, 12, 31))


@st.composite
def archive_versions(draw: st.DrawFn) -> list[tuple[dt.date, ArchiveContent]]:
    versions = []
    for surveyed_on in draw(st.lists(dates, max_size=4)):
        members = draw(st.integers(1, 8))
        content = parse(
            {
                "member_count": members,
                "labour_count": draw(st.integers(0, members)),
                "cultivated_land_mu": str(draw(st.integers(0, 5000)) / 100),
                "income": draw(st.none() | st.builds(
                    lambda planting, year: {"year": year, "planting": planting},
                    st.integers(0, 10**8), st.integers(2015, surveyed_on.year),
                )),
                "debts": [{"lender_kind": "bank", "lender": "b", "amount_fen": amount}
                          for amount in draw(st.lists(st.integers(0, 10**8), max_size=2))],
                "subsidies": [{"subsidy_type": kind, "year": year, "amount_fen": 100 * year}
                              for kind, year in draw(st.sets(st.tuples(
                                  st.sampled_from("ab"), st.integers(2015, surveyed_on.year))))],
                "veto_facts": [{"kind": kind, "note": "n"} for kind in draw(
                    st.lists(st.sampled_from(["lawsuit", "bad_loan", "other"]), max_size=2))],
            },
            surveyed_on=surveyed_on,
        )  # fmt: skip
        versions.append((surveyed_on, content))
    return versions


postings = st.lists(
    st.builds(
        Posting,
        st.datetimes(dt.datetime(2019, 1, 1), dt.datetime(2026, 12, 31), timezones=st.just(UTC)),
        st.integers(-(10**7), 10**7),
    ),
    max_size=30,
)
reports = st.lists(
    st.builds(
        BureauReport, st.just(resident_id("19800229")), dates, st.integers(0, 9),
        st.integers(0, 400), st.integers(0, 10**7), st.integers(0, 5),
        st.none() | st.integers(0, 10**8), st.booleans(), st.integers(2, 100),
    ),
    max_size=4,
)  # fmt: skip


def _shanghai_date(when: dt.datetime | dt.date) -> dt.date:
    assert isinstance(when, dt.datetime)
    return when.astimezone(flows.BUSINESS_TIME_ZONE).date()


@settings(max_examples=60, deadline=None)
@given(as_of=dates, versions=archive_versions(), posted=postings, reported=reports)
def test_data_dated_after_as_of_never_changes_a_fact_or_feature(
    as_of: dt.date,
    versions: list[tuple[dt.date, ArchiveContent]],
    posted: list[Posting],
    reported: list[BureauReport],
) -> None:
    def row(keep_later: bool) -> dict[str, object]:
        def known(on: dt.date) -> bool:
            return keep_later or on <= as_of

        return household_facts(
            as_of=as_of,
            head_id_number=resident_id("19800229"),
            archive_versions=[(on, content) for on, content in versions if known(on)],
            monthly_flows=monthly_from_postings(
                p for p in posted if known(_shanghai_date(p.booked_at))
            ),
            bureau_reports=[r for r in reported if known(r.report_date)],
        )

    with_later, without_later = row(keep_later=True), row(keep_later=False)
    assert with_later == without_later
    pd.testing.assert_frame_equal(
        compute(facts_frame([with_later], as_of=as_of), as_of=as_of),
        compute(facts_frame([without_later], as_of=as_of), as_of=as_of),
    )


@settings(max_examples=40, deadline=None)
@given(as_of=dates, versions=archive_versions())
def test_the_latest_survey_on_or_before_as_of_is_the_one_read(
    as_of: dt.date, versions: list[tuple[dt.date, ArchiveContent]]
) -> None:
    facts = archive_facts(versions, as_of)
    known = [(on, content) for on, content in versions if on <= as_of]
    if not known:
        assert all(value is None for value in facts.values())
        return
    latest = max(on for on, _ in known)
    content = [c for on, c in known if on == latest][-1]
    assert facts["archive_surveyed_on"] == latest
    assert facts["member_count"] == content.member_count


def test_a_later_bureau_report_is_not_seen() -> None:
    early = BureauReport("x", dt.date(2023, 1, 1), 0, 0, 0, 0, None, False, 2)
    late = BureauReport("x", dt.date(2024, 2, 1), 5, 90, 100, 3, None, True, 3)
    assert bureau_facts([early, late], AS_OF)["bureau_blacklisted"] is False
    assert bureau_facts([early, late], dt.date(2024, 2, 1))["bureau_blacklisted"] is True


# --------------------------------------------------------------- one row, same path


def test_one_household_alone_equals_its_row_of_the_batch() -> None:
    as_of = dt.date(2024, 6, 30)
    facts = synthetic_households(300, seed=11, as_of=as_of)
    batch = compute(facts, as_of=as_of)
    for index in (0, 1, 57, 299):
        alone = compute(facts.iloc[[index]], as_of=as_of)
        pd.testing.assert_frame_equal(alone, batch.iloc[[index]])
