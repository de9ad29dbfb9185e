"""Cross-checks of a village survey: rule checks and an anomaly score, as flags with reasons.

A survey is what households and cadres *say*; before the bank grants a whole village
pre-approved lines it compares the answers with what is known and with each other. Nothing
here decides anything: every check yields a :class:`Flag` — household, code, severity, a
reason a person can read, and the figures behind it — for the account manager to look into.

Rule checks (:func:`land_flags`, :func:`income_flags`, :func:`shared_key_flags`):

* **Land against the village register.** The land register (土地承包经营权确权登记) gives each
  household's contracted land. The survey's own contracted land is its cultivated land minus
  what it rents in (rented land is someone else's contract). A difference above
  ``max(land_tolerance_mu, land_tolerance_share × registered)`` is flagged: the absolute part
  (1 mu by default) absorbs rounding and small plots, the share (10 %) the measuring
  differences between a tape and the register's survey. A household missing from the register
  while declaring contracted land is flagged too.
* **Income against land and labour.** Defaults, in yuan (the settings hold fen):
  planting income per cultivated mu between **50 and 20,000**: a wheat-maize rotation grosses
  about 2,000-2,500 yuan per mu a year, vegetables and fruit 5,000-10,000, greenhouse
  vegetables up to about 20,000; above that the area is understated or other income was
  counted as planting, and below 50 on a household that says it farms (>= 1 mu) the land is
  idle or the income missing. Total income per labourer between **3,000 and 300,000**: in
  2023 a migrant worker earned about 4,780 yuan a month (NBS migrant-worker monitoring
  report) and rural disposable income was 21,691 yuan a head; under 3,000 a labourer's year
  is unaccounted for, over 300,000 — five times a migrant wage — only a business earns it.
  Earned income (planting, breeding, wages, business) with no labourer, and planting income
  with no cultivated land, are flagged outright.
* **Phones or ID numbers shared across households.** The caller passes opaque hashable keys
  — the blind index of the normalised value, or the value itself — so this module never
  needs to see personal data. One person in two households (an ID number) is serious; a
  shared phone is common between related households, but it is also how loans taken in
  others' names (冒名贷款) show up, so it is flagged at medium severity.

**Anomaly score** (:func:`anomaly_flags`): scikit-learn's IsolationForest over the numeric
facts of the village's households (people, labour, land, each income source, assets, debts,
livestock), each as ``log1p`` — the amounts are skewed over orders of magnitude and a log
keeps one rich household from flattening the rest. These floats are model inputs, never
money. The forest is seeded and the households are sorted by reference first, so the same
survey always flags the same households. The ``contamination`` share with the lowest scores
is flagged (rounded half up; none below ``min_households_for_anomaly`` households, where an
isolation forest has nothing to learn from), and the reason names the features that deviate
most by robust z-score — the distance from the village median in units of the median
absolute deviation (× 1.4826, which makes it comparable with a standard deviation), falling
back to the mean absolute deviation (× 1.2533) where more than half the village shares one
value (e.g. no cattle), as in Iglewicz and Hoaglin's modified z-score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

import numpy as np
from sklearn.ensemble import IsolationForest

from huinong.errors import InvalidInput
from huinong.parties.households import archive

INCOME_SOURCES = ("planting", "breeding", "wages", "business", "transfer", "other")
EARNED_SOURCES = ("planting", "breeding", "wages", "business")
FEATURES = (
    "member_count",
    "labour_count",
    "cultivated_land_mu",
    "rented_in_land_mu",
    "forest_land_mu",
    *(f"{source}_income" for source in INCOME_SOURCES),
    "assets",
    "bank_debt",
    "informal_debt",
    "livestock_heads",
)
_MAD_TO_SD = 1.4826
_MEAN_AD_TO_SD = 1.2533


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


@dataclass(frozen=True)
class HouseholdFacts:
    """What the checks need of one surveyed household."""

    ref: str
    member_count: int
    labour_count: int
    cultivated_land_mu: Decimal
    rented_in_land_mu: Decimal
    forest_land_mu: Decimal
    income_fen: Mapping[str, int]  # by source, keys of INCOME_SOURCES
    assets_fen: int
    bank_debt_fen: int
    informal_debt_fen: int
    livestock_heads: int
    phone_keys: tuple[Hashable, ...] = ()  # blind indexes (or values) of the phones given
    id_keys: tuple[Hashable, ...] = ()  # of the head's and members' ID numbers

    @property
    def contracted_land_mu(self) -> Decimal:
        return self.cultivated_land_mu - self.rented_in_land_mu

    @property
    def total_income_fen(self) -> int:
        return sum(self.income_fen.values())


def facts_from_archive(
    ref: str,
    content: archive.ArchiveContent,
    *,
    phone_keys: Iterable[Hashable] = (),
    id_keys: Iterable[Hashable] = (),
) -> HouseholdFacts:
    income = content.income
    summary = archive.summary(content)
    return HouseholdFacts(
        ref=ref,
        member_count=content.member_count,
        labour_count=content.labour_count,
        cultivated_land_mu=content.cultivated_land_mu,
        rented_in_land_mu=content.rented_in_land_mu,
        forest_land_mu=content.forest_land_mu,
        income_fen={s: getattr(income, s) if income else 0 for s in INCOME_SOURCES},
        assets_fen=summary.total_assets_fen,
        bank_debt_fen=summary.bank_debt_fen,
        informal_debt_fen=summary.informal_debt_fen,
        livestock_heads=summary.livestock_heads,
        phone_keys=tuple(phone_keys),
        id_keys=tuple(id_keys),
    )


@dataclass(frozen=True)
class Settings:
    """The thresholds of the checks; the defaults are explained in the module docstring."""

    land_tolerance_mu: Decimal = Decimal(1)
    land_tolerance_share: Decimal = Decimal("0.10")
    min_farming_land_mu: Decimal = Decimal(1)
    planting_income_per_mu_min_fen: int = 5_000
    planting_income_per_mu_max_fen: int = 2_000_000
    income_per_labourer_min_fen: int = 300_000
    income_per_labourer_max_fen: int = 30_000_000
    contamination: Decimal = Decimal("0.10")
    min_households_for_anomaly: int = 10
    anomaly_seed: int = 0
    anomaly_trees: int = 200
    reason_features: int = 3


@dataclass(frozen=True)
class Flag:
    ref: str
    code: str
    severity: Severity
    reason: str
    details: dict[str, object] = field(default_factory=dict)  # JSON-ready: str, int, lists


def _yuan(fen: int | Decimal) -> str:
    return f"{(Decimal(fen) / 100).quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def land_flags(
    households: Iterable[HouseholdFacts],
    register_mu: Mapping[str, Decimal],
    settings: Settings = Settings(),
) -> list[Flag]:
    """Declared contracted land against the register (by household reference)."""
    flags = []
    for facts in households:
        declared = facts.contracted_land_mu
        registered = register_mu.get(facts.ref)
        if registered is None:
            if declared > settings.land_tolerance_mu:
                flags.append(
                    Flag(
                        facts.ref,
                        "land_not_registered",
                        Severity.medium,
                        f"declares {declared} mu of contracted land; the register has none",
                        {"declared_mu": str(declared)},
                    )
                )
            continue
        tolerance = max(settings.land_tolerance_mu, settings.land_tolerance_share * registered)
        if abs(declared - registered) > tolerance:
            flags.append(
                Flag(
                    facts.ref,
                    "land_mismatch",
                    Severity.medium,
                    f"declares {declared} mu of contracted land, the register {registered} mu "
                    f"(tolerance {tolerance.normalize()} mu)",
                    {
                        "declared_mu": str(declared),
                        "registered_mu": str(registered),
                        "tolerance_mu": str(tolerance),
                    },
                )
            )
    return flags


def income_flags(
    households: Iterable[HouseholdFacts],
    settings: Settings = Settings(),
) -> list[Flag]:
    """Planting income per mu and income per labourer outside plausible bounds."""
    flags = []
    for facts in households:
        planting = facts.income_fen.get("planting", 0)
        land = facts.cultivated_land_mu
        if planting > 0 and land == 0:
            flags.append(
                Flag(
                    facts.ref,
                    "planting_income_without_land",
                    Severity.medium,
                    f"planting income of {_yuan(planting)} yuan with no cultivated land",
                    {"planting_income_fen": planting},
                )
            )
        elif land >= settings.min_farming_land_mu:
            per_mu = (Decimal(planting) / land).quantize(Decimal(1), ROUND_HALF_UP)
            low, high = (
                settings.planting_income_per_mu_min_fen,
                settings.planting_income_per_mu_max_fen,
            )
            if not low <= per_mu <= high:
                flags.append(
                    Flag(
                        facts.ref,
                        "planting_income_per_mu",
                        Severity.low if per_mu < low else Severity.medium,
                        f"planting income of {_yuan(per_mu)} yuan per mu on {land} mu, outside "
                        f"{_yuan(low)}-{_yuan(high)}",
                        {"per_mu_fen": int(per_mu), "min_fen": low, "max_fen": high},
                    )
                )
        earned = sum(facts.income_fen.get(s, 0) for s in EARNED_SOURCES)
        if facts.labour_count == 0:
            if earned > 0:
                flags.append(
                    Flag(
                        facts.ref,
                        "income_without_labour",
                        Severity.medium,
                        f"earned income of {_yuan(earned)} yuan with no labourer",
                        {"earned_income_fen": earned},
                    )
                )
            continue
        per_labourer = (Decimal(facts.total_income_fen) / facts.labour_count).quantize(
            Decimal(1), ROUND_HALF_UP
        )
        low, high = settings.income_per_labourer_min_fen, settings.income_per_labourer_max_fen
        if not low <= per_labourer <= high:
            flags.append(
                Flag(
                    facts.ref,
                    "income_per_labourer",
                    Severity.low if per_labourer < low else Severity.medium,
                    f"income of {_yuan(per_labourer)} yuan per labourer, outside "
                    f"{_yuan(low)}-{_yuan(high)}",
                    {"per_labourer_fen": int(per_labourer), "min_fen": low, "max_fen": high},
                )
            )
    return flags


def shared_key_flags(households: Sequence[HouseholdFacts]) -> list[Flag]:
    """Households that give the same phone, or name the same ID number."""
    flags = []
    for kind, code, severity in (
        ("phone", "shared_phone", Severity.medium),
        ("ID number", "shared_id_number", Severity.high),
    ):
        holders: defaultdict[Hashable, list[str]] = defaultdict(list)
        for facts in households:
            keys = facts.phone_keys if kind == "phone" else facts.id_keys
            for key in dict.fromkeys(keys):
                holders[key].append(facts.ref)
        others_of: defaultdict[str, set[str]] = defaultdict(set)
        for refs in holders.values():
            if len(set(refs)) > 1:
                for ref in refs:
                    others_of[ref].update(r for r in refs if r != ref)
        for facts in households:
            others = sorted(others_of.get(facts.ref, ()))
            if others:
                flags.append(
                    Flag(
                        facts.ref,
                        code,
                        severity,
                        f"the same {kind} is given by household(s) {', '.join(others)}",
                        {"other_households": others},
                    )
                )
    return flags


def feature_matrix(households: Sequence[HouseholdFacts]) -> np.ndarray:
    """``log1p`` of each household's :data:`FEATURES` (amounts in yuan), one row each."""
    rows = [
        [
            facts.member_count,
            facts.labour_count,
            facts.cultivated_land_mu,
            facts.rented_in_land_mu,
            facts.forest_land_mu,
            *(Decimal(facts.income_fen.get(s, 0)) / 100 for s in INCOME_SOURCES),
            Decimal(facts.assets_fen) / 100,
            Decimal(facts.bank_debt_fen) / 100,
            Decimal(facts.informal_debt_fen) / 100,
            facts.livestock_heads,
        ]
        for facts in households
    ]
    return np.log1p(np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES)))


def robust_z(matrix: np.ndarray) -> np.ndarray:
    """Each value's distance from its column's median in robust standard deviations."""
    median = np.median(matrix, axis=0)
    deviation = np.abs(matrix - median)
    scale = np.median(deviation, axis=0) * _MAD_TO_SD
    fallback = deviation.mean(axis=0) * _MEAN_AD_TO_SD
    scale = np.where(scale > 0, scale, fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, (matrix - median) / scale, 0.0)


def anomaly_flags(
    households: Sequence[HouseholdFacts],
    settings: Settings = Settings(),
) -> list[Flag]:
    """The ``contamination`` share of households an isolation forest finds most unusual."""
    ordered = sorted(households, key=lambda f: f.ref)
    count = len(ordered)
    flagged = int((settings.contamination * count).to_integral_value(ROUND_HALF_UP))
    if count < settings.min_households_for_anomaly or flagged == 0:
        return []
    matrix = feature_matrix(ordered)
    forest = IsolationForest(
        n_estimators=settings.anomaly_trees, random_state=settings.anomaly_seed
    )
    scores = forest.fit(matrix).score_samples(matrix)  # lower is more anomalous
    z = robust_z(matrix)
    flags = []
    for index in sorted(range(count), key=lambda i: (scores[i], ordered[i].ref))[:flagged]:
        top = sorted(range(len(FEATURES)), key=lambda j: -abs(z[index, j]))[
            : settings.reason_features
        ]
        named = [
            f"{FEATURES[j]} {'high' if z[index, j] > 0 else 'low'} ({z[index, j]:+.1f})"
            for j in top
            if z[index, j] != 0
        ]
        flags.append(
            Flag(
                ordered[index].ref,
                "anomaly",
                Severity.low,
                "unusual for this village: " + (", ".join(named) or "an unusual combination"),
                {
                    "score": f"{scores[index]:.4f}",
                    "robust_z": {FEATURES[j]: f"{z[index, j]:.2f}" for j in top},
                },
            )
        )
    return flags


_SEVERITY_ORDER = {Severity.high: 0, Severity.medium: 1, Severity.low: 2}


def crosscheck(
    households: Sequence[HouseholdFacts],
    *,
    register_mu: Mapping[str, Decimal] | None = None,
    settings: Settings = Settings(),
) -> list[Flag]:
    """Every flag of the survey, by household reference and then by severity (high first).
    Without a land register the land check is skipped."""
    refs = [f.ref for f in households]
    if len(set(refs)) != len(refs):
        raise InvalidInput(
            "credit.crosscheck.duplicate_household",
            "each household is given once",
            field="households",
        )
    flags = [
        *(land_flags(households, register_mu, settings) if register_mu is not None else []),
        *income_flags(households, settings),
        *shared_key_flags(households),
        *anomaly_flags(households, settings),
    ]
    return sorted(flags, key=lambda f: (f.ref, _SEVERITY_ORDER[f.severity], f.code))
