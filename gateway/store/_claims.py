"""SQL side of claims: the :class:`~gateway.domain.ingestion.ClaimStore` port and alert reads.

- :class:`SqlClaimStore` / :class:`SqlClaimUnit`: insert lines idempotently (``ON CONFLICT DO
  NOTHING`` on ``(member_id, member_reference)`` with ``RETURNING``, one round trip per chunk),
  read a chunk's neighbourhood, record matches, raise/update/withdraw alerts.
- :class:`SessionClaimStore`: the same port over a session someone else owns (the gateway's
  call transaction, so that an upload and its journal event commit together); each unit is a
  SAVEPOINT, so an all-or-nothing upload rolls back its lines and keeps the journal event.
  Hooks see what each unit inserted and which alerts it changed (journal records, delivery).
- :class:`SqlAlertStore`: what the alert service and the notification stream read (the caller's
  session, no commit here): a member's alerts, one alert, the undelivered outbox.

Concurrency: on PostgreSQL a unit takes a transaction-level advisory lock per beneficiary of
the chunk (in key order) before reading its neighbourhood, so two uploads of the two sides of
the same care event are serialised and cannot both miss each other. SQLite transactions begin
``IMMEDIATE`` (one writer at a time), which gives the same guarantee.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.domain import ClaimHistory, ClaimLine, ClaimRecord, ProviderLevel, Reason, Sector
from gateway.domain.claims import CLAIM_FIELDS
from gateway.domain.ingestion import AlertCounts, AlertUpdate, StoredClaim
from gateway.domain.scoring import AlertLevel
from gateway.ids import MemberId
from gateway.store._claims_models import AlertRow, ClaimLineRow
from gateway.store._db import Database
from gateway.store._history_sql import ProviderStatsCache, SqlClaimHistory, record_from_row

__all__ = [
    "ALERT_LEVELS",
    "SessionClaimStore",
    "SqlAlertStore",
    "SqlClaimStore",
    "SqlClaimUnit",
    "StoredAlert",
    "new_alert_id",
]

_CLAIMS = cast(sa.Table, ClaimLineRow.__table__)
_ALERTS = cast(sa.Table, AlertRow.__table__)
_LEVEL_RANK: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}
ALERT_LEVELS: tuple[AlertLevel, ...] = ("none", "low", "medium", "high")
InsertedHook = Callable[[Session, Sequence[StoredClaim]], None]
ScoredHook = Callable[[Session, Sequence[int]], None]


def new_alert_id() -> str:
    """A random public alert id, ``al_`` and 26 base32 characters (128 random bits)."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"al_{raw}"


_LINE_COLUMNS = [
    _CLAIMS.c.beneficiary if f == "beneficiary_token" else _CLAIMS.c[f] for f in CLAIM_FIELDS
]

_INSERT_COLUMNS = [*(c for c in CLAIM_FIELDS if c != "beneficiary_token"), "beneficiary",
                   "member_id", "received_at", "match_state"]  # fmt: skip
_PG_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]  # untyped in stubs
_PG_TYPES = {c: _CLAIMS.c[c].type.compile(dialect=_PG_DIALECT) for c in _INSERT_COLUMNS}
_PG_COLUMNS = ", ".join(_INSERT_COLUMNS)
_PG_ARRAYS = ", ".join(f"CAST(:{c} AS {_PG_TYPES[c]}[])" for c in _INSERT_COLUMNS)
# Built from the model's own column names and types only; every value is a bound parameter.
_PG_INSERT = (
    f"INSERT INTO claim_lines ({_PG_COLUMNS}) SELECT * FROM unnest({_PG_ARRAYS}) "  # noqa: S608
    "ON CONFLICT (member_id, member_reference) DO NOTHING RETURNING id, member_reference"
)
_TEXTS = postgresql.ARRAY(sa.String())


def _row(member: MemberId, line: ClaimLine, received_at: datetime) -> dict[str, Any]:
    values = line.model_dump()
    values["beneficiary"] = values.pop("beneficiary_token")
    values.update(member_id=member, received_at=received_at, match_state="unmatched")
    return values


def _lock_key(beneficiary: str) -> int:
    """A signed 64-bit advisory-lock key for one beneficiary pseudonym."""
    digest = hashlib.sha256(b"vigie/claims/beneficiary\x00" + beneficiary.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _reasons_json(reasons: Sequence[Reason]) -> list[dict[str, Any]]:
    return [
        {"code": r.code, "explanation": r.explanation, "strength": r.strength,
         "contribution": r.contribution, "amc_data": r.amc_data}
        for r in reasons
    ]  # fmt: skip


class SqlClaimUnit:
    """One transaction of :class:`SqlClaimStore` (port: ``gateway.domain.ingestion.ClaimUnit``)."""

    def __init__(
        self,
        session: Session,
        cache: ProviderStatsCache,
        *,
        on_inserted: InsertedHook | None = None,
        on_scored: ScoredHook | None = None,
    ) -> None:
        self._session = session
        self._history = SqlClaimHistory(session, cache=cache)
        self._pg = session.get_bind().dialect.name == "postgresql"
        self._on_inserted, self._on_scored = on_inserted, on_scored

    @property
    def history(self) -> ClaimHistory:
        """The scoring history inside this transaction."""
        return self._history

    def insert_new(
        self, member: MemberId, lines: Sequence[ClaimLine], received_at: datetime
    ) -> list[StoredClaim]:
        """Insert the lines whose ``(member, member_reference)`` is new; return those, by id."""
        if not lines:
            return []
        rows = [_row(member, line, received_at) for line in lines]
        if self._pg:
            # One statement with one array per column: psycopg parses a short query instead of
            # a multi-row VALUES list of ~30 parameters per line.
            result = self._session.execute(
                sa.text(_PG_INSERT), {c: [r[c] for r in rows] for c in _INSERT_COLUMNS}
            )
        else:
            stmt = (
                sqlite.insert(_CLAIMS)
                .on_conflict_do_nothing(index_elements=["member_id", "member_reference"])
                .returning(_CLAIMS.c.id, _CLAIMS.c.member_reference)
            )
            result = self._session.execute(stmt, rows)
        ids: dict[str, int] = {ref: i for i, ref in result}
        by_ref = {line.member_reference: line for line in lines}
        stored = [StoredClaim(int(i), ClaimRecord(member, by_ref[ref])) for ref, i in ids.items()]
        stored.sort(key=lambda c: c.id)
        if self._on_inserted is not None:
            self._on_inserted(self._session, stored)
        return stored

    def lines_around(
        self, keys: Collection[tuple[str, Sector]], start: date, end: date
    ) -> list[StoredClaim]:
        """Lock the beneficiaries (PostgreSQL), then read their lines over ``[start, end]``."""
        beneficiaries = sorted({b for b, _ in keys})
        if not beneficiaries:
            return []
        if self._pg:
            locks = sorted({_lock_key(b) for b in beneficiaries})
            self._session.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(k) FROM "
                    "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS ordered"
                ),
                {"keys": locks},
            )
        c = _CLAIMS.c
        query = (
            sa.select(c.id, c.matched_line_id, c.member_id, *_LINE_COLUMNS)
            .where(
                c.beneficiary == sa.any_(sa.bindparam("bs", beneficiaries, type_=_TEXTS))
                if self._pg
                else c.beneficiary.in_(beneficiaries),
                c.care_date >= start,
                c.care_date <= end,
            )
            .order_by(c.id)
        )
        # No sector condition: with stale statistics after a bulk load, PostgreSQL would pick the
        # (sector, care_date) index over the beneficiary one; sectors are filtered here instead.
        wanted = set(keys)
        out = []
        for r in self._session.execute(query):
            record = record_from_row(r[2], r[3:])
            if (record.line.beneficiary_token, record.line.sector) in wanted:
                out.append(StoredClaim(int(r[0]), record, r[1]))
        return out

    def suspected(
        self, beneficiaries: Collection[str], providers: Collection[tuple[ProviderLevel, str]]
    ) -> tuple[frozenset[str], frozenset[tuple[ProviderLevel, str]]]:
        """See :meth:`SqlClaimHistory.suspected`."""
        return self._history.suspected(beneficiaries, providers)

    def set_matches(self, matches: Mapping[int, int]) -> None:
        """Mark each line matched with the given counterpart."""
        if not matches:
            return
        stmt = (
            sa.update(_CLAIMS)
            .where(_CLAIMS.c.id == sa.bindparam("line_id"))
            .values(matched_line_id=sa.bindparam("other_id"), match_state="matched")
        )
        self._session.connection().execute(
            stmt, [{"line_id": k, "other_id": v} for k, v in matches.items()]
        )

    def save_scores(
        self, updates: Sequence[AlertUpdate], *, min_level: AlertLevel, now: datetime
    ) -> AlertCounts:
        """Raise, update or withdraw each line's alert (changed alerts become undelivered)."""
        if not updates:
            return AlertCounts()
        a = _ALERTS.c
        existing = {
            r.claim_line_id: r
            for r in self._session.execute(
                sa.select(a.id, a.claim_line_id, a.score, a.level, a.reasons, a.ruleset_hash,
                          a.withdrawn_at)
                .where(a.claim_line_id.in_([u.claim_line_id for u in updates]))
            )
        }  # fmt: skip
        threshold = _LEVEL_RANK[min_level]
        inserts: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        withdrawals: list[dict[str, Any]] = []
        for u in updates:
            s = u.score
            alert = _LEVEL_RANK[s.level] >= threshold and s.level != "none"
            old = existing.get(u.claim_line_id)
            values = {
                "score": s.score, "level": s.level, "reasons": _reasons_json(s.reasons),
                "ruleset_version": s.ruleset_version, "ruleset_hash": s.ruleset_hash,
                "amount_at_stake_cents": s.amount_at_stake_cents, "updated_at": now,
                "delivered": False,
            }  # fmt: skip
            if old is None:
                if alert:
                    inserts.append({**values, "public_id": new_alert_id(), "member_id": u.member,
                                    "claim_line_id": u.claim_line_id, "created_at": now,
                                    "withdrawn_at": None})  # fmt: skip
            elif alert:
                same = (old.score, old.level, old.reasons, old.ruleset_hash) == (
                    s.score, s.level, values["reasons"], s.ruleset_hash)  # fmt: skip
                if not same or old.withdrawn_at is not None:
                    changes.append({**values, "alert_id": old.id, "withdrawn_at": None})
            elif old.withdrawn_at is None:  # keep what was said; mark it withdrawn
                withdrawals.append({"alert_id": old.id, "withdrawn_at": now, "updated_at": now,
                                    "delivered": False})  # fmt: skip
        if inserts:
            self._session.execute(sa.insert(_ALERTS), inserts)
        for batch in (changes, withdrawals):
            if batch:
                self._session.connection().execute(
                    sa.update(_ALERTS)
                    .where(a.id == sa.bindparam("alert_id"))
                    .values({k: sa.bindparam(k) for k in batch[0] if k != "alert_id"}),
                    batch,
                )
        if self._on_scored is not None and (inserts or changes or withdrawals):
            self._on_scored(self._session, [u.claim_line_id for u in updates])
        return AlertCounts(len(inserts), len(changes), len(withdrawals))


class SqlClaimStore:
    """:class:`~gateway.domain.ingestion.ClaimStore` on a :class:`~gateway.store.Database`.

    Args:
        database: the gateway's database.
        stats_cache: provider statistics shared by every unit and check (one per process).
    """

    def __init__(self, database: Database, *, stats_cache: ProviderStatsCache | None = None):
        self.database = database
        self.stats_cache = stats_cache if stats_cache is not None else ProviderStatsCache()

    @contextmanager
    def unit(self) -> Iterator[SqlClaimUnit]:
        """One transaction (committed at the end of the block, rolled back on any exception).

        Raises:
            UnavailableError: the database failed.
        """
        with self.database.transaction() as session:
            yield SqlClaimUnit(session, self.stats_cache)

    @contextmanager
    def reading(self) -> Iterator[ClaimHistory]:
        """One short transaction to read the scoring history (the pre-payment check).

        Raises:
            UnavailableError: the database failed.
        """
        with self.database.transaction() as session:
            yield SqlClaimHistory(session, cache=self.stats_cache)


class SessionClaimStore:
    """:class:`~gateway.domain.ingestion.ClaimStore` inside a transaction the caller owns.

    Set :attr:`session` before each use (the gateway sets it at the start of the call's write
    transaction and clears it after). Each :meth:`unit` is a SAVEPOINT of that transaction:
    left normally it is released (the caller's commit makes it durable), left by an exception
    it is rolled back alone, so the caller may still commit its journal event.

    Args:
        stats_cache: provider statistics shared by every unit and check (one per process).
        on_inserted: called with the lines each ``insert_new`` stored (new ones only).
        on_scored: called with the claim line ids whose alerts a ``save_scores`` changed.
    """

    def __init__(
        self,
        *,
        stats_cache: ProviderStatsCache | None = None,
        on_inserted: InsertedHook | None = None,
        on_scored: ScoredHook | None = None,
    ) -> None:
        self.stats_cache = stats_cache if stats_cache is not None else ProviderStatsCache()
        self.session: Session | None = None
        self._on_inserted, self._on_scored = on_inserted, on_scored

    def _current(self) -> Session:
        if self.session is None:
            raise RuntimeError("SessionClaimStore used outside its caller's transaction")
        return self.session

    @contextmanager
    def unit(self) -> Iterator[SqlClaimUnit]:
        """A SAVEPOINT of the caller's transaction (rolled back alone on any exception)."""
        session = self._current()
        with session.begin_nested():
            yield SqlClaimUnit(
                session,
                self.stats_cache,
                on_inserted=self._on_inserted,
                on_scored=self._on_scored,
            )

    @contextmanager
    def reading(self) -> Iterator[ClaimHistory]:
        """The scoring history as the caller's transaction sees it."""
        yield SqlClaimHistory(self._current(), cache=self.stats_cache)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as its member sees it: about its own line, by its own reference.

    ``side`` and ``beneficiary`` (the second-level pseudonym) are the line's, for the policy's
    attributes and the journal's subjects; they are not alert fields a member receives.
    """

    id: int
    public_id: str
    member: MemberId
    side: str
    beneficiary: str
    member_reference: str
    sector: str
    care_date: date
    score: int
    level: str
    reasons: tuple[Reason, ...]
    ruleset_version: str
    ruleset_hash: str
    amount_at_stake_cents: int
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None
    delivered: bool

    @property
    def name(self) -> str:
        """The alert's resource name, ``alerts/{public_id}``."""
        return f"alerts/{self.public_id}"

    @property
    def derived_from_amc_data(self) -> bool:
        """Whether the score used data an AMC uploaded (the policy's ``Alert`` attribute)."""
        return self.side == "AMC" or any(r.amc_data for r in self.reasons)


class SqlAlertStore:
    """Reads of the ``alerts`` table in the caller's session (no commit here)."""

    @staticmethod
    def _query() -> sa.Select[Any]:
        a, c = _ALERTS.c, _CLAIMS.c
        return sa.select(
            a.id, a.public_id, a.member_id, c.side, c.beneficiary, c.member_reference, c.sector,
            c.care_date, a.score, a.level, a.reasons, a.ruleset_version, a.ruleset_hash,
            a.amount_at_stake_cents, a.created_at, a.updated_at, a.withdrawn_at, a.delivered,
        ).select_from(_ALERTS.join(_CLAIMS, c.id == a.claim_line_id))  # fmt: skip

    @staticmethod
    def _alert(r: sa.Row[Any]) -> StoredAlert:
        reasons = tuple(
            Reason(x["code"], x["explanation"], x["strength"], x["contribution"],
                   bool(x.get("amc_data", False)))
            for x in r.reasons
        )  # fmt: skip
        return StoredAlert(
            id=int(r.id), public_id=r.public_id, member=MemberId(r.member_id), side=r.side,
            beneficiary=r.beneficiary, member_reference=r.member_reference,
            sector=r.sector, care_date=r.care_date, score=r.score, level=r.level,
            reasons=reasons, ruleset_version=r.ruleset_version, ruleset_hash=r.ruleset_hash,
            amount_at_stake_cents=r.amount_at_stake_cents,
            created_at=r.created_at, updated_at=r.updated_at, withdrawn_at=r.withdrawn_at,
            delivered=bool(r.delivered),
        )  # fmt: skip

    def page(
        self,
        session: Session,
        member: MemberId,
        *,
        limit: int = 100,
        before_id: int | None = None,
        sector: str | None = None,
        min_level: AlertLevel = "low",
        include_withdrawn: bool = False,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[StoredAlert]:
        """The member's alerts, newest first (page with ``before_id`` = last id seen).

        ``created_from`` is inclusive, ``created_before`` exclusive (``google.type.Interval``).
        """
        a, c = _ALERTS.c, _CLAIMS.c
        levels = [lv for lv, rank in _LEVEL_RANK.items() if rank >= _LEVEL_RANK[min_level]]
        q = self._query().where(a.member_id == member, a.level.in_(levels))
        if before_id is not None:
            q = q.where(a.id < before_id)
        if sector is not None:
            q = q.where(c.sector == sector)
        if created_from is not None:
            q = q.where(a.created_at >= created_from)
        if created_before is not None:
            q = q.where(a.created_at < created_before)
        if not include_withdrawn:
            q = q.where(a.withdrawn_at.is_(None))
        return [self._alert(r) for r in session.execute(q.order_by(a.id.desc()).limit(limit))]

    def get(self, session: Session, member: MemberId, alert_id: int) -> StoredAlert | None:
        """One alert of ``member``; ``None`` when absent *or another member's* (say NOT_FOUND)."""
        a = _ALERTS.c
        row = session.execute(self._query().where(a.id == alert_id, a.member_id == member))
        found = row.first()
        return self._alert(found) if found is not None else None

    def by_public_id(
        self, session: Session, member: MemberId, public_id: str
    ) -> StoredAlert | None:
        """One alert of ``member`` by public id; ``None`` when absent *or another member's*."""
        a = _ALERTS.c
        row = session.execute(
            self._query().where(a.public_id == public_id, a.member_id == member)
        ).first()
        return self._alert(row) if row is not None else None

    def pending_for_lines(
        self, session: Session, claim_line_ids: Sequence[int]
    ) -> list[StoredAlert]:
        """Undelivered alerts (raised, changed or withdrawn) of these lines, oldest first."""
        if not claim_line_ids:
            return []
        a = _ALERTS.c
        q = self._query().where(
            a.delivered.is_(False), a.claim_line_id.in_(sorted(set(claim_line_ids)))
        )
        return [self._alert(r) for r in session.execute(q.order_by(a.id))]

    def undelivered(self, session: Session, *, limit: int = 500) -> list[StoredAlert]:
        """The outbox: raised, changed or withdrawn alerts not yet delivered, oldest first."""
        a = _ALERTS.c
        q = self._query().where(a.delivered.is_(False)).order_by(a.id).limit(limit)
        return [self._alert(r) for r in session.execute(q)]

    def mark_delivered(self, session: Session, alert_ids: Sequence[int]) -> None:
        """Mark alerts delivered (after the notification is committed)."""
        if alert_ids:
            session.execute(
                sa.update(_ALERTS).where(_ALERTS.c.id.in_(list(alert_ids))).values(delivered=True)
            )
