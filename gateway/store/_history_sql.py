"""The scoring history on SQL: :class:`SqlClaimHistory`, the ``ClaimHistory`` port on a session.

Same answers as :class:`~gateway.domain.InMemoryHistory` on the same lines (a contract test
loads both and compares every method), on SQLite and PostgreSQL:

- ``beneficiary_lines``: one range scan of ``ix_claim_lines_beneficiary_sector_care_date``.
- ``provider_profile``: three aggregates over the provider's lines in the window (index per
  level: RPPS, AM number, FINESS). An *item* is one (beneficiary, care date, grouping code,
  laterality, tooth) whatever the sides uploaded; its representative is its first stored line
  (lowest id), as the in-memory history keeps the first line it was given.
- ``peer_distribution``: the same aggregates over every provider of the sector and level. It is
  the expensive query, so it is cached (decision recorded here): computed lazily
  on first use per (level, sector, window, minimum items), kept in process and in the shared
  ``provider_peer_stats`` table for ``ttl_seconds`` (default 300 s), so replicas share one
  computation and the pre-payment check never pays for it twice. Profiles of every provider are
  cached alongside. Consequence: lines ingested in the last TTL do not yet move the peers nor the
  provider profiles; beneficiary lines and open suspicions are always read live.
- ``open_suspicions``: the suspicions table (``status`` submitted, qualified or confirmed), by
  level (``subject_provider_rpps`` / ``_am_number`` / ``_finess``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.domain import (
    PROVIDER_METRICS,
    ClaimLine,
    ClaimRecord,
    MetricDistribution,
    PeerDistribution,
    ProviderLevel,
    ProviderProfile,
    Sector,
    SuspicionTouch,
)
from gateway.domain.claims import (
    CLAIM_FIELDS,
    EQUIPMENT_GROUPING_CODES,
    HUNDRED_PERCENT_CLASS,
    LATERAL_GROUPING_CODES,
)
from gateway.ids import MemberId
from gateway.store._claims_models import ClaimLineRow, ProviderPeerStatsRow
from gateway.store._db import Database

__all__ = ["OPEN_STATUSES", "ProviderStatsCache", "SqlClaimHistory", "record_from_row"]

T = TypeVar("T")

OPEN_STATUSES = ("submitted", "qualified", "confirmed")
_YOUNG_AGE = 30  # as gateway.domain._history: items of beneficiaries under 30 in the care year

_CLAIMS = cast(sa.Table, ClaimLineRow.__table__)
_LEVEL_COLUMN: dict[str, sa.ColumnElement[Any]] = {
    "rpps": _CLAIMS.c.provider_rpps,
    "am_number": _CLAIMS.c.provider_am_number,
    "finess": _CLAIMS.c.provider_finess,
}
_SUSPICIONS = sa.table(
    "suspicions",
    sa.column("status"),
    sa.column("subject_beneficiary"),
    sa.column("subject_provider_rpps"),
    sa.column("subject_provider_am_number"),
    sa.column("subject_provider_finess"),
)
_SUSPECT_COLUMN = {
    "rpps": _SUSPICIONS.c.subject_provider_rpps,
    "am_number": _SUSPICIONS.c.subject_provider_am_number,
    "finess": _SUSPICIONS.c.subject_provider_finess,
}
_LINE_COLUMNS = [
    _CLAIMS.c.beneficiary if f == "beneficiary_token" else _CLAIMS.c[f] for f in CLAIM_FIELDS
]


# Statements built once (their compiled form is cached by SQLAlchemy): the pre-payment check
# runs them on every call, and building the expression trees cost more than executing them.
_BENEFICIARY_LINES = (
    sa.select(_CLAIMS.c.member_id, *_LINE_COLUMNS)
    .where(
        _CLAIMS.c.beneficiary == sa.bindparam("beneficiary"),
        _CLAIMS.c.sector == sa.bindparam("sector"),
        _CLAIMS.c.care_date >= sa.bindparam("start"),
        _CLAIMS.c.care_date <= sa.bindparam("end"),
    )
    .order_by(_CLAIMS.c.id)
)
_SUSPECTED = sa.select(
    _SUSPICIONS.c.subject_beneficiary,
    _SUSPICIONS.c.subject_provider_rpps,
    _SUSPICIONS.c.subject_provider_am_number,
    _SUSPICIONS.c.subject_provider_finess,
).where(
    _SUSPICIONS.c.status.in_(OPEN_STATUSES),
    sa.or_(
        _SUSPICIONS.c.subject_beneficiary.in_(sa.bindparam("beneficiaries", expanding=True)),
        *(
            _SUSPECT_COLUMN[level].in_(sa.bindparam(level, expanding=True))
            for level in ("rpps", "am_number", "finess")
        ),
    ),
)


def record_from_row(member: str, values: Sequence[Any]) -> ClaimRecord:
    """A stored line back as a :class:`ClaimRecord` (``values`` in ``CLAIM_FIELDS`` order).

    The line's ``beneficiary_token`` then carries the stored second-level pseudonym.
    """
    return ClaimRecord(
        MemberId(member), ClaimLine.model_construct(**dict(zip(CLAIM_FIELDS, values, strict=True)))
    )


class ProviderStatsCache:
    """Provider profiles and peer distributions kept for ``ttl_seconds`` (shared by sessions).

    One instance per process (the gateway's) or per test; ``ttl_seconds=0`` disables caching,
    including the shared ``provider_peer_stats`` table.
    """

    def __init__(
        self, ttl_seconds: float = 300.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._peers: dict[tuple[str, str, date, date, int], tuple[float, PeerDistribution]] = {}
        self._all: dict[tuple[str, str, date, date], tuple[float, dict[str, ProviderProfile]]] = {}

    def _fresh(self, entry: tuple[float, T] | None) -> T | None:
        if entry is None or self.ttl_seconds <= 0 or entry[0] < self._clock():
            return None
        return entry[1]

    def _expiry(self) -> float:
        return self._clock() + self.ttl_seconds

    def clear(self) -> None:
        """Forget everything (e.g. after a bulk load)."""
        self._peers.clear()
        self._all.clear()


@dataclass(frozen=True, slots=True)
class _Aggregates:
    items: int
    days: int
    equipment: int
    hundred: int
    young: int
    lateral: int
    bilateral: int
    class_mix: dict[str, int]

    def profile(self) -> ProviderProfile:
        return ProviderProfile(
            items=self.items,
            active_days=self.days,
            lines_per_day=self.items / self.days,
            share_100_sante=self.hundred / self.equipment if self.equipment else 0.0,
            young_share=self.young / self.items,
            bilateral_share=self.bilateral / self.lateral if self.lateral else 0.0,
            class_mix=self.class_mix,
        )


def _profiles(
    session: Session,
    level: ProviderLevel,
    sector: Sector,
    start: date,
    end: date,
    provider_id: str | None,
) -> dict[str, ProviderProfile]:
    """Profiles of every provider (or one) at ``level`` in ``sector`` over ``[start, end]``."""
    c, pid = _CLAIMS.c, _LEVEL_COLUMN[level]
    # 1. Items: one row per (provider, beneficiary, day, grouping, eye/ear, tooth), first line.
    where = [c.sector == sector, c.care_date >= start, c.care_date <= end, pid != ""]
    if provider_id is not None:
        where.append(pid == provider_id)
    keys = (c.beneficiary, c.care_date, c.grouping_code, c.laterality, c.tooth)
    items = (
        sa.select(pid.label("pid"), *keys, sa.func.min(c.id).label("rep"))
        .where(*where)
        .group_by(pid, *keys)
        .subquery("items")
    )
    rep = _CLAIMS.alias("rep")
    i = items.c
    joined = items.join(rep, rep.c.id == i.rep)
    equipment = i.grouping_code.in_(sorted(EQUIPMENT_GROUPING_CODES))
    lateral = i.grouping_code.in_(sorted(LATERAL_GROUPING_CODES))
    age = sa.extract("year", i.care_date) - rep.c.birth_year

    def count_if(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((cond, 1), else_=0))

    # 2. Volume, class mix, age mix and lateral items per provider.
    totals = session.execute(
        sa.select(
            i.pid,
            sa.func.count(),
            sa.func.count(sa.distinct(i.care_date)),
            count_if(equipment),
            count_if(sa.and_(equipment, rep.c.product_class == HUNDRED_PERCENT_CLASS[sector])),
            count_if(age < _YOUNG_AGE),
            count_if(lateral),
        )
        .select_from(joined)
        .group_by(i.pid)
    ).all()
    if not totals:
        return {}
    # 3. Bilateral items: both eyes/ears of the same grouping, same beneficiary and day (a
    #    lateral item always has tooth 0 and laterality left or right, so a pair is 2 items).
    pairs = (
        sa.select(i.pid)
        .where(lateral)
        .group_by(i.pid, i.beneficiary, i.care_date, i.grouping_code)
        .having(sa.func.count() == 2)
        .subquery("pairs")
    )
    bilateral: dict[str, int] = {
        p: int(n)
        for p, n in session.execute(sa.select(pairs.c.pid, sa.func.count()).group_by(pairs.c.pid))
    }
    mix: dict[str, dict[str, int]] = {}
    for p, klass, n in session.execute(
        sa.select(i.pid, rep.c.product_class, sa.func.count())
        .select_from(joined)
        .where(equipment)
        .group_by(i.pid, rep.c.product_class)
    ):
        mix.setdefault(p, {})[klass] = int(n)
    return {
        p: _Aggregates(
            items=int(n), days=int(days), equipment=int(eq), hundred=int(h), young=int(y),
            lateral=int(lat), bilateral=2 * int(bilateral.get(p, 0)), class_mix=mix.get(p, {}),
        ).profile()
        for p, n, days, eq, h, y, lat in totals
    }  # fmt: skip


def _distribution(profiles: Iterable[ProviderProfile], min_items: int) -> PeerDistribution:
    peers = [p for p in profiles if p.items >= min_items]
    return PeerDistribution(
        providers=len(peers),
        metrics={m: MetricDistribution.of([p.metric(m) for p in peers]) for m in PROVIDER_METRICS},
    )


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class SqlClaimHistory:
    """:class:`~gateway.domain.ClaimHistory` on the claims tables (SQLite and PostgreSQL).

    Args:
        source: a session (queries join the caller's transaction: what it inserted is seen) or a
            :class:`~gateway.store.Database` (each query runs in its own short transaction).
        cache: provider statistics shared across sessions; default: a private 300 s cache.
    """

    def __init__(self, source: Session | Database, *, cache: ProviderStatsCache | None = None):
        self._source = source
        self.cache = cache if cache is not None else ProviderStatsCache()

    def _run(self, fn: Callable[[Session], T]) -> T:
        if isinstance(self._source, Session):
            return fn(self._source)
        return self._source.run_sync(fn)

    def beneficiary_lines(
        self, beneficiary: str, sector: Sector, start: date, end: date
    ) -> Sequence[ClaimRecord]:
        """See :meth:`gateway.domain.ClaimHistory.beneficiary_lines`."""
        params = {"beneficiary": beneficiary, "sector": sector, "start": start, "end": end}
        rows = self._run(lambda s: s.execute(_BENEFICIARY_LINES, params).all())
        return [record_from_row(r[0], r[1:]) for r in rows]

    def provider_profile(
        self, level: ProviderLevel, provider_id: str, sector: Sector, start: date, end: date
    ) -> ProviderProfile | None:
        """See :meth:`gateway.domain.ClaimHistory.provider_profile`.

        With caching on, a miss computes every provider's profile of the level, sector and
        window in one aggregate (the peers need them anyway) and serves the rest from memory.
        """
        if self.cache.ttl_seconds <= 0:
            found = self._run(lambda s: _profiles(s, level, sector, start, end, provider_id))
            return found.get(provider_id)
        return self._all_profiles(level, sector, start, end).get(provider_id)

    def _all_profiles(
        self,
        level: ProviderLevel,
        sector: Sector,
        start: date,
        end: date,
        session: Session | None = None,
    ) -> dict[str, ProviderProfile]:
        cache, key = self.cache, (level, sector, start, end)
        every = cache._fresh(cache._all.get(key))
        if every is None:
            compute: Callable[[Session], dict[str, ProviderProfile]] = lambda s: _profiles(  # noqa: E731
                s, level, sector, start, end, None
            )
            every = compute(session) if session is not None else self._run(compute)
            cache._all[key] = (cache._expiry(), every)
        return every

    def peer_distribution(
        self, level: ProviderLevel, sector: Sector, start: date, end: date, min_items: int
    ) -> PeerDistribution:
        """See :meth:`gateway.domain.ClaimHistory.peer_distribution` (cached, see module)."""
        cache = self.cache
        key = (level, sector, start, end, min_items)
        hit = cache._fresh(cache._peers.get(key))
        if hit is not None:
            return hit
        if cache.ttl_seconds <= 0:
            return _distribution(
                self._run(lambda s: _profiles(s, level, sector, start, end, None)).values(),
                min_items,
            )
        found = self._run(lambda s: self._shared_peers(s, key))
        cache._peers[key] = (cache._expiry(), found)
        return found

    def _shared_peers(
        self, session: Session, key: tuple[ProviderLevel, Sector, date, date, int]
    ) -> PeerDistribution:
        level, sector, start, end, min_items = key
        now = datetime.now(UTC)
        t = cast(sa.Table, ProviderPeerStatsRow.__table__)
        where = (t.c.level == level, t.c.sector == sector, t.c.window_start == start,
                 t.c.window_end == end, t.c.min_items == min_items)  # fmt: skip
        row = session.execute(sa.select(t.c.providers, t.c.metrics, t.c.computed_at).where(*where))
        stored = row.first()
        if stored is not None and stored[2] >= now - timedelta(seconds=self.cache.ttl_seconds):
            return PeerDistribution(
                providers=int(stored[0]),
                metrics={m: MetricDistribution(**v) for m, v in stored[1].items()},
            )
        profiles = self._all_profiles(level, sector, start, end, session)
        dist = _distribution(profiles.values(), min_items)
        values = {
            "level": level, "sector": sector, "window_start": start, "window_end": end,
            "min_items": min_items, "providers": dist.providers, "computed_at": now,
            "metrics": {
                m: {"median": d.median, "scale": d.scale, "count": d.count}
                for m, d in dist.metrics.items()
            },
        }  # fmt: skip
        stmt = _insert(session)(t).values(values)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["level", "sector", "window_start", "window_end", "min_items"],
                set_={k: stmt.excluded[k] for k in ("providers", "metrics", "computed_at")},
            )
        )
        return dist

    def suspected(
        self, beneficiaries: Collection[str], providers: Collection[tuple[ProviderLevel, str]]
    ) -> tuple[frozenset[str], frozenset[tuple[ProviderLevel, str]]]:
        """Which of these beneficiaries and (level, provider id) an open suspicion touches.

        One query for a whole batch (ingestion); :meth:`open_suspicions` is its one-line form.
        """
        if not beneficiaries and not providers:
            return frozenset(), frozenset()
        levels: dict[str, set[str]] = {"rpps": set(), "am_number": set(), "finess": set()}
        for level, pid in providers:
            levels[level].add(pid)
        params = {
            "beneficiaries": sorted(beneficiaries),
            **{k: sorted(v) for k, v in levels.items()},
        }
        rows = self._run(lambda ses: ses.execute(_SUSPECTED, params).all())
        found_b = {r[0] for r in rows if r[0] in beneficiaries}
        found_p: set[tuple[ProviderLevel, str]] = set()
        for r in rows:
            for level, value in (("rpps", r[1]), ("am_number", r[2]), ("finess", r[3])):
                if value and (level, value) in providers:
                    found_p.add((level, value))
        return frozenset(found_b), frozenset(found_p)

    def open_suspicions(
        self, beneficiary: str, providers: Sequence[tuple[ProviderLevel, str]]
    ) -> SuspicionTouch:
        """See :meth:`gateway.domain.ClaimHistory.open_suspicions` (providers matched by level)."""
        wanted = set(providers)
        found_b, found_p = self.suspected({beneficiary}, wanted)
        return SuspicionTouch(
            beneficiary=int(beneficiary in found_b),
            provider=sum(1 for p in providers if p in found_p),
        )
