"""What scoring needs to know about the past: the :class:`ClaimHistory` port and its in-memory form.

The port is a few query-shaped methods, each one indexed query in SQL (the store's
implementation): a beneficiary's lines in one sector over a date range, a provider's profile and
its peers' distribution at one level (RPPS person, AM-number billing site, FINESS establishment),
and open suspicions touching a beneficiary or providers. Derived notions (previous equipment,
follow-ups after a fitting, counterparts on the other side) are pure functions over
``beneficiary_lines`` so the pre-payment check needs one beneficiary query, not five.

Provider metrics count *items* (one care event, whichever sides were uploaded), so a provider is
not penalised because its patients have a complementary insurer:

* ``lines_per_day``: items per active day (volume).
* ``share_100_sante``: share of equipment items in the sector's 100 % Santé class (class mix).
* ``young_share``: share of items whose beneficiary is under 30 in the care year (age mix).
* ``bilateral_share``: share of per-eye/ear items whose other side was fitted the same day.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from gateway.domain._claims import (
    EQUIPMENT_GROUPING_CODES,
    HUNDRED_PERCENT_CLASS,
    LATERAL_GROUPING_CODES,
    ClaimLine,
    ClaimRecord,
    Sector,
    age_in_year,
)

__all__ = [
    "PROVIDER_LEVELS",
    "PROVIDER_METRICS",
    "ClaimHistory",
    "InMemoryHistory",
    "MetricDistribution",
    "PeerDistribution",
    "ProviderLevel",
    "ProviderProfile",
    "SuspicionTouch",
    "follow_ups",
    "previous_equipment",
    "provider_ids",
]

ProviderLevel = Literal["rpps", "am_number", "finess"]
PROVIDER_LEVELS: tuple[ProviderLevel, ...] = ("rpps", "am_number", "finess")
PROVIDER_METRICS = ("lines_per_day", "share_100_sante", "young_share", "bilateral_share")
_YOUNG_AGE = 30


def provider_ids(line: ClaimLine) -> list[tuple[ProviderLevel, str]]:
    """The provider identifiers a line carries, per level (RPPS and FINESS are optional)."""
    ids: list[tuple[ProviderLevel, str]] = []
    if line.provider_rpps:
        ids.append(("rpps", line.provider_rpps))
    ids.append(("am_number", line.provider_am_number))
    if line.provider_finess:
        ids.append(("finess", line.provider_finess))
    return ids


def _same_renewal_family(a: ClaimLine, b: ClaimLine) -> bool:
    """Same kind of equipment on the same eye/ear/tooth (optique: frame vs lenses)."""
    if a.laterality != b.laterality or a.tooth != b.tooth:
        return False
    if a.sector == "optique":
        return (a.grouping_code == "MONTURE") == (b.grouping_code == "MONTURE")
    return a.grouping_code == b.grouping_code


def previous_equipment(
    lines: Iterable[ClaimRecord], line: ClaimLine, *, exclude_within_days: int
) -> ClaimRecord | None:
    """Latest earlier equipment of the same kind on the same eye/ear/tooth (any side, member).

    ``lines`` are the beneficiary's lines in the sector (:meth:`ClaimHistory.beneficiary_lines`).
    Lines at most ``exclude_within_days`` before ``line`` are the same care event (the other
    side) or duplicates, not a previous equipment.
    """
    best: ClaimRecord | None = None
    for o in lines:
        ol = o.line
        if (
            ol.grouping_code in EQUIPMENT_GROUPING_CODES
            and (line.care_date - ol.care_date).days > exclude_within_days
            and _same_renewal_family(line, ol)
            and (best is None or ol.care_date > best.line.care_date)
        ):
            best = o
    return best


def follow_ups(lines: Iterable[ClaimRecord], fitting: ClaimLine, until: date) -> list[ClaimRecord]:
    """Follow-up (SUIVI) lines after ``fitting``, up to ``until``, for the same ear or none."""
    return [
        o
        for o in lines
        if o.line.grouping_code == "SUIVI"
        and fitting.care_date < o.line.care_date <= until
        and o.line.laterality in (fitting.laterality, "")
    ]


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """One provider's activity in one sector over a period (see module docstring)."""

    items: int
    active_days: int
    lines_per_day: float
    share_100_sante: float
    young_share: float
    bilateral_share: float
    class_mix: Mapping[str, int] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        """Value of one of :data:`PROVIDER_METRICS`."""
        value: float = getattr(self, name)
        return value


@dataclass(frozen=True, slots=True)
class MetricDistribution:
    """Median and scaled MAD of one metric across peers (robust statistics)."""

    median: float
    scale: float
    """1.4826 * MAD, or 1.2533 * mean absolute deviation when the MAD is 0; 0 if no spread."""
    count: int

    def robust_z(self, value: float) -> float | None:
        """``(value - median) / scale``, or ``None`` when peers show no spread."""
        if self.scale <= 0:
            return None
        return (value - self.median) / self.scale

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricDistribution:
        """Robust location and scale of ``values`` (Iglewicz and Hoaglin's modified z-score)."""
        if not values:
            return cls(0.0, 0.0, 0)
        med = statistics.median(values)
        mad = statistics.median(abs(v - med) for v in values)
        if mad > 0:
            return cls(med, 1.4826 * mad, len(values))
        mean_ad = statistics.fmean(abs(v - med) for v in values)
        return cls(med, 1.2533 * mean_ad, len(values))


@dataclass(frozen=True, slots=True)
class PeerDistribution:
    """Per-metric distribution across the providers of one sector at one level."""

    providers: int
    metrics: Mapping[str, MetricDistribution]


@dataclass(frozen=True, slots=True)
class SuspicionTouch:
    """How many open suspicions (submitted, qualified, confirmed) touch the line's parties."""

    beneficiary: int = 0
    provider: int = 0


class ClaimHistory(Protocol):
    """The past that scoring reads. Implementations: :class:`InMemoryHistory`, the SQL store."""

    def beneficiary_lines(
        self, beneficiary: str, sector: Sector, start: date, end: date
    ) -> Sequence[ClaimRecord]:
        """Every line (both sides, all members) of one beneficiary in one sector, care date in
        ``[start, end]``."""
        ...

    def provider_profile(
        self, level: ProviderLevel, provider_id: str, sector: Sector, start: date, end: date
    ) -> ProviderProfile | None:
        """The provider's profile over ``[start, end]``, or ``None`` if it has no item."""
        ...

    def peer_distribution(
        self, level: ProviderLevel, sector: Sector, start: date, end: date, min_items: int
    ) -> PeerDistribution:
        """Distribution of each metric across providers with at least ``min_items`` items."""
        ...

    def open_suspicions(
        self, beneficiary: str, providers: Sequence[tuple[ProviderLevel, str]]
    ) -> SuspicionTouch:
        """Open suspicions touching the beneficiary or any of the providers."""
        ...


_ItemKey = tuple[str, date, str, str, int]


def _profile(lines: Iterable[ClaimLine]) -> ProviderProfile | None:
    items: dict[_ItemKey, ClaimLine] = {}
    for line in lines:
        key = (line.beneficiary_token, line.care_date, line.grouping_code, line.laterality,
               line.tooth)  # fmt: skip
        items.setdefault(key, line)
    if not items:
        return None
    days = {k[1] for k in items}
    equipment = [ln for ln in items.values() if ln.grouping_code in EQUIPMENT_GROUPING_CODES]
    class_mix: dict[str, int] = defaultdict(int)
    for ln in equipment:
        class_mix[ln.product_class] += 1
    hundred = sum(1 for ln in equipment if ln.product_class == HUNDRED_PERCENT_CLASS[ln.sector])
    young = sum(1 for ln in items.values() if age_in_year(ln.birth_year, ln.care_date) < _YOUNG_AGE)
    lateral = [k for k in items if k[2] in LATERAL_GROUPING_CODES]
    sides = {(k[0], k[1], k[2], k[3]) for k in lateral}
    bilateral = sum(
        1 for b, d, g, lat, _ in lateral
        if (b, d, g, "right" if lat == "left" else "left") in sides
    )  # fmt: skip
    n = len(items)
    return ProviderProfile(
        items=n,
        active_days=len(days),
        lines_per_day=n / len(days),
        share_100_sante=hundred / len(equipment) if equipment else 0.0,
        young_share=young / n,
        bilateral_share=bilateral / len(lateral) if lateral else 0.0,
        class_mix=dict(class_mix),
    )


class InMemoryHistory:
    """:class:`ClaimHistory` over records held in memory (tests, evaluation, small batches).

    Profiles and peer distributions are cached per query window: build a new instance after
    adding lines.
    """

    def __init__(
        self,
        records: Iterable[ClaimRecord] = (),
        *,
        suspected_beneficiaries: Iterable[str] = (),
        suspected_providers: Iterable[str] = (),
    ) -> None:
        self._by_beneficiary: dict[tuple[str, str], list[ClaimRecord]] = defaultdict(list)
        self._by_provider: dict[tuple[str, str, str], list[ClaimLine]] = defaultdict(list)
        self._suspected_beneficiaries = frozenset(suspected_beneficiaries)
        self._suspected_providers = frozenset(suspected_providers)
        self._profiles: dict[tuple[str, str, str, date, date], ProviderProfile | None] = {}
        self._peers: dict[tuple[str, str, date, date, int], PeerDistribution] = {}
        for r in records:
            line = r.line
            self._by_beneficiary[(line.beneficiary_token, line.sector)].append(r)
            for level, pid in provider_ids(line):
                self._by_provider[(level, pid, line.sector)].append(line)

    def beneficiary_lines(
        self, beneficiary: str, sector: Sector, start: date, end: date
    ) -> Sequence[ClaimRecord]:
        """See :meth:`ClaimHistory.beneficiary_lines`."""
        return [
            r
            for r in self._by_beneficiary.get((beneficiary, sector), ())
            if start <= r.line.care_date <= end
        ]

    def provider_profile(
        self, level: ProviderLevel, provider_id: str, sector: Sector, start: date, end: date
    ) -> ProviderProfile | None:
        """See :meth:`ClaimHistory.provider_profile`."""
        key = (level, provider_id, sector, start, end)
        if key not in self._profiles:
            lines = self._by_provider.get((level, provider_id, sector), ())
            self._profiles[key] = _profile(ln for ln in lines if start <= ln.care_date <= end)
        return self._profiles[key]

    def peer_distribution(
        self, level: ProviderLevel, sector: Sector, start: date, end: date, min_items: int
    ) -> PeerDistribution:
        """See :meth:`ClaimHistory.peer_distribution`."""
        key = (level, sector, start, end, min_items)
        if key not in self._peers:
            profiles = [
                p
                for (lvl, pid, sec) in list(self._by_provider)
                if lvl == level and sec == sector
                and (p := self.provider_profile(level, pid, sector, start, end)) is not None
                and p.items >= min_items
            ]  # fmt: skip
            self._peers[key] = PeerDistribution(
                providers=len(profiles),
                metrics={
                    m: MetricDistribution.of([p.metric(m) for p in profiles])
                    for m in PROVIDER_METRICS
                },
            )
        return self._peers[key]

    def open_suspicions(
        self, beneficiary: str, providers: Sequence[tuple[ProviderLevel, str]]
    ) -> SuspicionTouch:
        """See :meth:`ClaimHistory.open_suspicions`."""
        return SuspicionTouch(
            beneficiary=int(beneficiary in self._suspected_beneficiaries),
            provider=sum(1 for _, pid in providers if pid in self._suspected_providers),
        )
