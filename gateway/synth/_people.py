"""Synthetic people: beneficiaries (with NIRs that never leave this module's callers), providers
and prescribers, drawn deterministically from the seed.

Every random draw comes from a :class:`random.Random` seeded by :func:`derive_seed` from the
run's seed, a label and an index, so beneficiary ``i`` is the same whatever the size of the run
and whatever the fraud rates.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Final

from gateway.crypto import first_level_token, nir_key
from gateway.domain._identifiers import luhn_complete
from gateway.synth._config import SynthConfig

__all__ = [
    "Beneficiary",
    "Population",
    "Prescriber",
    "Provider",
    "add_months",
    "build_population",
    "derive_seed",
    "draw_beneficiary",
    "make_nir",
]

SECTORS: Final = ("optique", "audio", "dentaire")
_DEPARTEMENTS: Final = (
    *(f"{d:02d}" for d in range(1, 20)),
    "2A",
    "2B",
    *(f"{d:02d}" for d in range(21, 96)),
)
_NIR_SPACE: Final = len(_DEPARTEMENTS) * 990 * 999
_NIR_STRIDE: Final = 7919  # prime, coprime with _NIR_SPACE: index -> slot is a bijection
# (min age, max age, weight) at the start of the window: a rough French age pyramid.
_AGE_PYRAMID: Final = (
    (0, 5, 0.055),
    (6, 15, 0.12),
    (16, 29, 0.16),
    (30, 44, 0.18),
    (45, 59, 0.19),
    (60, 74, 0.18),
    (75, 99, 0.115),
)
_AGE_CUM: Final = tuple(accumulate(w for _, _, w in _AGE_PYRAMID))
_UNCOVERED_SHARE: Final = 0.07  # about 4-7 % of people have no complementary insurance
_OUTLIER_VOLUME_FACTOR: Final = 4.0
_OUTLIER_SITES: Final = 4


def derive_seed(seed: int, label: str, index: int = 0) -> int:
    """A 64-bit seed for one purpose (``label``) and one item (``index``) of a run."""
    digest = hashlib.sha256(f"vigie-synth:{seed}:{label}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clamped to the end of the month."""
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month + 1, day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def make_nir(index: int, sex: int, birth_year: int, birth_month: int) -> str:
    """A valid NIR (mod-97 key, DOMAIN.md §2), unique per ``index`` (< about 95 million).

    The (département, commune, order) slot is a bijection of the index, so two beneficiaries of
    one run never share a NIR (hence never share a token).
    """
    slot = (index * _NIR_STRIDE + 12345) % _NIR_SPACE
    dep_i, rest = divmod(slot, 990 * 999)
    commune, order = divmod(rest, 999)
    first13 = (
        f"{sex}{birth_year % 100:02d}{birth_month:02d}{_DEPARTEMENTS[dep_i]}"
        f"{commune + 1:03d}{order + 1:03d}"
    )
    return f"{first13}{nir_key(first13):02d}"


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider (optician, audiologist, dentist): RPPS and billing site(s)."""

    sector: str
    rpps: str
    am_numbers: tuple[str, ...]
    finess: str
    role: str  # "regular", "outlier", "ring"
    scheme_id: str = ""

    def am_number_on(self, day: date) -> str:
        """Billing site used on ``day``: outliers rotate sites every quarter."""
        if len(self.am_numbers) == 1:
            return self.am_numbers[0]
        quarter = day.year * 4 + (day.month - 1) // 3
        return self.am_numbers[quarter % len(self.am_numbers)]


@dataclass(frozen=True, slots=True)
class Prescriber:
    """A prescriber: RPPS and specialty."""

    rpps: str
    specialty: str
    role: str  # "regular", "ring"


@dataclass(frozen=True, slots=True)
class Population:
    """Providers and prescribers of a run (small: kept in memory)."""

    providers: dict[str, tuple[Provider, ...]]
    cum_weights: dict[str, tuple[float, ...]]
    ophthalmologists: tuple[Prescriber, ...]
    orls: tuple[Prescriber, ...]
    gps: tuple[Prescriber, ...]
    ring_young: Provider
    ring_young_prescriber: Prescriber
    ring_fictitious: Provider
    ring_fictitious_prescriber: Prescriber

    def pick_provider(self, rng: random.Random, sector: str) -> Provider:
        """Draw a provider of ``sector``; outliers weigh several times their peers."""
        cum = self.cum_weights[sector]
        i = bisect_right(cum, rng.random() * cum[-1])
        return self.providers[sector][min(i, len(cum) - 1)]


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One insured person, as the generator knows them (the NIR is not kept)."""

    index: int
    token: str
    birth_year: int
    amc: str  # "" when the person has no complementary insurance
    contract: float  # share of the contrat responsable ceilings the AMC contract pays
    optician: Provider
    audiologist: Provider
    dentist: Provider
    ophthalmologist: Prescriber
    ear_prescriber: Prescriber

    def age(self, on: date) -> int:
        """Age in the calendar year of ``on`` (only the birth year travels on lines)."""
        return on.year - self.birth_year


class _Ids:
    """Unique RPPS, AM numbers and FINESS for one run."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def _unique(self, make: str) -> str:
        while True:
            rng = self._rng
            if make == "rpps":
                value = luhn_complete("10" + f"{rng.randrange(10**8):08d}")
            elif make == "am":
                value = f"{rng.randint(1, 95):02d}" + f"{rng.randrange(10**7):07d}"
            else:
                value = luhn_complete(f"{rng.randint(1, 95):02d}" + f"{rng.randrange(10**6):06d}")
            if value not in self._seen:
                self._seen.add(value)
                return value

    def provider(self, sector: str, role: str, sites: int = 1, scheme_id: str = "") -> Provider:
        finess = self._unique("finess") if self._rng.random() < 0.3 else ""
        ams = tuple(self._unique("am") for _ in range(sites))
        return Provider(sector, self._unique("rpps"), ams, finess, role, scheme_id)

    def prescriber(self, specialty: str, role: str = "regular") -> Prescriber:
        return Prescriber(self._unique("rpps"), specialty, role)


def build_population(config: SynthConfig) -> Population:
    """Draw the providers and prescribers of a run, outliers and fraud rings included."""
    rng = random.Random(derive_seed(config.seed, "population"))  # noqa: S311 (synthetic data)
    ids = _Ids(rng)
    counts = {
        "optique": config.opticians,
        "audio": config.audiologists,
        "dentaire": config.dentists,
    }
    rate = config.rate("provider_volume_outlier")
    outliers = {s: min(int(rate * n), n - 1) for s, n in counts.items()}
    if rate > 0 and sum(outliers.values()) == 0:
        outliers = {s: (1 if s == "audio" and counts[s] > 1 else 0) for s in counts}
    providers: dict[str, tuple[Provider, ...]] = {}
    cum_weights: dict[str, tuple[float, ...]] = {}
    for sector in SECTORS:
        regular = [
            ids.provider(sector, "regular") for _ in range(counts[sector] - outliers[sector])
        ]
        extra = [
            ids.provider(sector, "outlier", _OUTLIER_SITES, f"outlier-{sector}-{k + 1}")
            for k in range(outliers[sector])
        ]
        providers[sector] = (*regular, *extra)
        weights = [1.0] * len(regular) + [_OUTLIER_VOLUME_FACTOR] * len(extra)
        cum_weights[sector] = tuple(accumulate(weights))
    n = config.prescribers
    n_oph, n_orl = max(1, n * 2 // 5), max(1, n // 5)
    return Population(
        providers=providers,
        cum_weights=cum_weights,
        ophthalmologists=tuple(ids.prescriber("ophtalmologie") for _ in range(n_oph)),
        orls=tuple(ids.prescriber("orl") for _ in range(n_orl)),
        gps=tuple(ids.prescriber("generaliste") for _ in range(max(1, n - n_oph - n_orl))),
        ring_young=ids.provider("audio", "ring", 1, "ring-young-audio"),
        ring_young_prescriber=ids.prescriber("generaliste", "ring"),
        ring_fictitious=ids.provider("audio", "ring", 1, "ring-fictitious-audio"),
        ring_fictitious_prescriber=ids.prescriber("generaliste", "ring"),
    )


def draw_beneficiary(
    config: SynthConfig, population: Population, index: int
) -> tuple[Beneficiary, str]:
    """Draw beneficiary ``index`` and return it with its NIR (for the token only).

    The caller turns the NIR into the token and drops it: no NIR is ever written.
    """
    rng = random.Random(derive_seed(config.seed, "beneficiary", index))  # noqa: S311 (synthetic data)
    group = bisect_right(_AGE_CUM, rng.random() * _AGE_CUM[-1])
    low, high, _ = _AGE_PYRAMID[min(group, len(_AGE_PYRAMID) - 1)]
    birth_year = config.start_date.year - rng.randint(low, high)
    sex, month = rng.choice((1, 2)), rng.randint(1, 12)
    nir = make_nir(index, sex, birth_year, month)
    amcs = config.amc_members
    amc = ""
    if rng.random() >= _UNCOVERED_SHARE:
        amc = rng.choices(amcs, weights=[1.0 / (k + 1) for k in range(len(amcs))])[0]
    ear = population.orls if rng.random() < 0.7 else population.gps
    beneficiary = Beneficiary(
        index=index,
        token=_token(nir, config.shared_key),
        birth_year=birth_year,
        amc=amc,
        contract=rng.choice((0.6, 0.8, 1.0)),
        optician=population.pick_provider(rng, "optique"),
        audiologist=population.pick_provider(rng, "audio"),
        dentist=population.pick_provider(rng, "dentaire"),
        ophthalmologist=rng.choice(population.ophthalmologists),
        ear_prescriber=rng.choice(ear),
    )
    return beneficiary, nir


def _token(nir: str, key: bytes) -> str:
    """First-level token, computed as a member would (canonical SDK function)."""
    return str(first_level_token(nir, key))
