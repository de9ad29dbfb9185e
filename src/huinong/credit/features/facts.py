"""The facts table: one row per household, built from what each source's extractor returned.

The lead's service fetches a household's archive versions, ledger postings, peer-review
aggregate and bureau reports, and :func:`household_facts` turns them into one facts row as of a
date — every extractor drops what is dated after it. :func:`facts_frame` stacks rows into a
DataFrame with the dtypes the catalogue declares (so money stays exact and missing is
represented one way) and records ``as_of`` in ``frame.attrs``, which ``compute`` checks: features
computed for another date than the facts were extracted for would silently mix two dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from huinong.credit.features import archive, bureau, flows, household, peer_review
from huinong.credit.features.catalogue import Catalogue, FeaturesInvalid
from huinong.credit.features.compute import CATALOGUE, HOUSEHOLD_SOURCES
from huinong.parties.households.archive import ArchiveContent


def household_facts(
    *,
    as_of: dt.date,
    head_id_number: str | None,
    archive_versions: Iterable[tuple[dt.date, ArchiveContent]] = (),
    monthly_flows: Iterable[flows.MonthlyFlow] = (),
    peer: Mapping[str, object] | None = None,
    bureau_reports: Iterable[bureau.BureauReport] = (),
) -> dict[str, object]:
    """One household's facts row as of ``as_of``. ``monthly_flows`` may come from
    :func:`~huinong.credit.features.flows.monthly_from_postings`; ``peer`` is
    :func:`~huinong.credit.features.peer_review.peer_facts`'s result, ``None`` while pending."""
    return {
        **household.household_facts(head_id_number),
        **archive.archive_facts(archive_versions, as_of),
        **flows.flow_facts(monthly_flows, as_of),
        **(peer_review.pending() if peer is None else peer),
        **bureau.bureau_facts(bureau_reports, as_of),
    }


def facts_frame(
    rows: Sequence[Mapping[str, object]],
    *,
    as_of: dt.date,
    index: Sequence[object] | None = None,
    sources: Iterable[str] = HOUSEHOLD_SOURCES,
    catalogue: Catalogue = CATALOGUE,
) -> pd.DataFrame:
    """The facts table of ``rows`` with the declared dtypes, stamped with ``as_of``."""
    columns = catalogue.facts_columns(sources)
    data: dict[str, pd.Series] = {}
    for column in columns:
        values = [row.get(column.name) for row in rows]
        try:
            if column.dtype == "datetime64[s]":
                data[column.name] = pd.Series(
                    pd.to_datetime(values), dtype="datetime64[s]", index=index
                )
            else:
                data[column.name] = pd.Series(
                    pd.array(values, dtype=column.dtype), index=index, copy=False
                )
        except (TypeError, ValueError) as exc:
            raise FeaturesInvalid(
                "credit.features.bad_facts",
                f"{column.name} cannot be read as {column.dtype}: {exc}",
                field=column.name,
            ) from None
    frame = pd.DataFrame(data, index=index)
    frame.attrs["as_of"] = as_of
    return frame
