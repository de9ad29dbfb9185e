"""The default catalogue and ``compute``: facts table in, features table out, vectorized.

:data:`CATALOGUE` registers the built-in sources. Households are computed from
:data:`HOUSEHOLD_SOURCES`; transport operators (客运贷) from :data:`OPERATOR_SOURCES`. A source
added later (produce sales) is registered on :data:`CATALOGUE` by its own module and named in
the ``sources`` of the callers that want it; this module does not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from huinong.credit.features import archive, bureau, flows, household, peer_review, telematics
from huinong.credit.features.catalogue import Catalogue

CATALOGUE = Catalogue(
    [
        household.SOURCE,
        archive.SOURCE,
        flows.SOURCE,
        peer_review.SOURCE,
        bureau.SOURCE,
        telematics.SOURCE,
    ]
)
HOUSEHOLD_SOURCES = ("household", "archive", "ledger", "peer_review", "bureau")
OPERATOR_SOURCES = ("telematics",)


def compute(
    facts: pd.DataFrame,
    *,
    as_of: dt.date,
    sources: Iterable[str] = HOUSEHOLD_SOURCES,
    catalogue: Catalogue = CATALOGUE,
) -> pd.DataFrame:
    """The features of every row of ``facts`` as of ``as_of``, with the facts' index."""
    return catalogue.compute(facts, as_of=as_of, sources=sources)


def numeric_columns(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every column as float64, missing as NaN and flags as 1.0 / 0.0: the input scorecards
    and rule conditions take (``np.asarray`` would turn a nullable flag into an object array).
    Money stays exact (below 2**53 fen); compute an amount to pay from the Int64 columns."""
    return {
        name: features[name].to_numpy(dtype=np.float64, na_value=np.nan)
        for name in features.columns
    }
