"""Facts of households read from the database, as of a date, for the features step.

For each household this gathers what ``features.facts.household_facts`` turns into one facts
row: the head's ID number (for age), every archive survey on or before the date, the posted
activity of the members' deposit accounts over the twelve complete months before it, the
peer-review aggregate when there is one, and the bureau reports dated on or before it.

Consent comes first (issue 5 §6): the archive is read only under the head's live consent for
the purpose (``parties.households`` refuses otherwise), and account activity only when the same
consent covers ``transactions``, and bureau reports only when it covers ``credit`` — without it
those facts stay missing, which the rule set treats as it was written to (the household is not
scored on data it did not allow). Bureau reports are matched by the blind index of the head's
ID number, never by the number.

Account activity for a whole village is two queries (``ledger.service.account_activity``), not
one per household; the archive and identity reads are per household, which is fine at the
size of a village (hundreds) and is what a county-wide batch would move to set-based SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from huinong import clock
from huinong.credit.features import bureau, flows
from huinong.credit.features.facts import facts_frame, household_facts
from huinong.credit.models import BureauReportRow
from huinong.ledger import service as ledger
from huinong.parties import service as parties
from huinong.parties.households import service as households
from huinong.parties.households.models import Household
from huinong.payments import service as payments
from huinong.security.consent import service as consent
from huinong.security.consent.models import DataCategory, Purpose

# Twelve complete months and the one in progress: the window the flow facts look at.
_FLOW_MONTHS = 13


def _window(as_of: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = flows.add_months(flows.last_complete_month(as_of), -(_FLOW_MONTHS - 1))
    until = as_of + dt.timedelta(days=1)
    return clock.start_of_local_day(start), clock.start_of_local_day(until)


def _allows(
    session: Session,
    institution_id: uuid.UUID,
    customer_id: uuid.UUID,
    category: DataCategory,
    purpose: Purpose,
) -> bool:
    decision, _ = consent.consent_decision(
        session,
        customer_id=customer_id,
        category=category,
        purpose=purpose,
        grantee_institution_id=institution_id,
    )
    return decision.allowed


def _member_customers(session: Session, household: Household) -> list[uuid.UUID]:
    return [
        m.customer_id
        for m in households.members(session, household=household)
        if m.customer_id is not None
    ]


def _monthly_flows(
    session: Session,
    institution_id: uuid.UUID,
    accounts_by_household: Mapping[uuid.UUID, list[uuid.UUID]],
    as_of: dt.date,
) -> dict[uuid.UUID, list[flows.MonthlyFlow]]:
    since, until = _window(as_of)
    all_accounts = [a for accounts in accounts_by_household.values() for a in accounts]
    activity = ledger.account_activity(
        session, institution_id=institution_id, account_ids=all_accounts, since=since, until=until
    )
    household_of = {a: h for h, accounts in accounts_by_household.items() for a in accounts}
    postings: dict[uuid.UUID, list[flows.Posting]] = defaultdict(list)
    for account_id, stamp, change in activity.changes:
        postings[household_of[account_id]].append(flows.Posting(stamp, change))
    result = {}
    for household_id, accounts in accounts_by_household.items():
        opening = sum(activity.opening.get(a, 0) for a in accounts)
        months = flows.monthly_from_postings(postings[household_id], opening_balance_fen=opening)
        result[household_id] = months
    return result


def _bureau_reports(
    session: Session, institution_id: uuid.UUID, index: str, as_of: dt.date
) -> list[bureau.BureauReport]:
    rows = session.scalars(
        select(BureauReportRow).where(
            BureauReportRow.institution_id == institution_id,
            BureauReportRow.id_number_index == index,
            BureauReportRow.report_date <= as_of,
        )
    )
    return [
        bureau.BureauReport(
            id_number=index,
            report_date=row.report_date,
            overdue_count=row.overdue_count,
            max_overdue_days=row.max_overdue_days,
            overdue_fen=row.overdue_fen,
            outstanding_loans=row.outstanding_loans,
            outstanding_fen=row.outstanding_fen,
            blacklisted=row.blacklisted,
            row=0,
        )
        for row in rows
    ]


def facts_of_households(
    session: Session,
    *,
    institution_id: uuid.UUID,
    household_ids: Sequence[uuid.UUID],
    as_of: dt.date,
    purpose: Purpose,
    peer: Mapping[uuid.UUID, Mapping[str, object]] | None = None,
) -> pd.DataFrame:
    """The facts table (indexed by household id) of ``household_ids`` as of ``as_of``.

    ``peer`` gives each household's peer-review facts (``features.peer_review.peer_facts``);
    a household without an entry has a review pending. Raises ``Forbidden`` (consent) when a
    head has not consented to the archive's use for ``purpose``."""
    loaded = [
        households.get_household(session, institution_id=institution_id, household_id=h)
        for h in household_ids
    ]
    accounts: dict[uuid.UUID, list[uuid.UUID]] = {}
    for household in loaded:
        allowed = _allows(
            session, institution_id, household.head_customer_id, DataCategory.transactions, purpose
        )
        accounts[household.id] = (
            [
                account.id
                for customer_id in _member_customers(session, household)
                for account in payments.deposit_accounts_of(
                    session, institution_id=institution_id, customer_id=customer_id
                )
            ]
            if allowed
            else []
        )
    monthly = _monthly_flows(session, institution_id, accounts, as_of)
    rows = []
    for household in loaded:
        head = parties.get_customer(
            session, institution_id=institution_id, customer_id=household.head_customer_id
        )
        history = households.archive_history(
            session,
            institution_id=institution_id,
            household_id=household.id,
            as_of=as_of,
            purpose=purpose,
        )
        rows.append(
            household_facts(
                as_of=as_of,
                head_id_number=parties.identifiers(session, head).id_number,
                archive_versions=history,
                monthly_flows=monthly[household.id] if accounts[household.id] else (),
                peer=(peer or {}).get(household.id),
                bureau_reports=_bureau_reports(
                    session, institution_id, head.id_number_index, as_of
                ),
            )
        )
    return facts_frame(rows, as_of=as_of, index=pd.Index([h.id for h in loaded]))
