"""Claim upload and the real-time pre-payment check, over the claim store port (no SQL here).

Upload (:class:`BatchIngestion`, :func:`ingest_batch`), per line then per chunk:

1. validate (:func:`~gateway.domain.claims.parse_claim_line`, violations named ``lines[i].f``)
   and check the line's ``side`` is the uploader's kind;
2. re-key the member's first-level ``beneficiary_token`` into the gateway's second-level
   pseudonym *before* anything is stored (DESIGN.md flow 3; ADR 0001);
3. insert the chunk; a line whose ``(member, member_reference)`` is already stored changes
   nothing and is counted as a duplicate (idempotent re-send after a broken upload);
4. read the neighbourhood (the chunk's beneficiaries over the scoring span), locking those
   beneficiaries so a concurrent upload of the other side cannot miss this one;
5. match each new line with the other side (AMO <-> AMC; best candidate as
   :func:`~gateway.domain.find_counterparts` ranks them; an AMO line pairs once per AMC);
6. score the new lines and the stored lines whose evidence they change (same beneficiary, item
   and eye/ear/tooth within the matching/duplicate window: counterparts, the same item at other
   AMCs, duplicates), and raise, update or withdraw each line's alert for the member that
   uploaded it. Explanations carry counts, never another member's identity (DESIGN.md
   invariant: an AMC never learns which AMC holds a claim).

Memory: lines are pulled from the iterable and handled ``chunk_size`` at a time; nothing keeps
the whole upload (rejections kept in the report are capped; progress carries them all).

Modes (decision): ``per_line`` commits one transaction per chunk, so a broken upload keeps what
was committed and is resumed by re-sending (duplicates are skipped). ``all_or_nothing`` keeps
ONE transaction open for the whole upload, streaming chunks into it: nothing is visible to
others until the end and any refused line rolls everything back, so memory stays bounded while
the upload is atomic. The price is a long transaction: on SQLite it holds the database's write
lock for the whole upload; on PostgreSQL it holds row and beneficiary locks, so very large
atomic uploads should be split by the client into several uploads.

Pre-payment check (:func:`check_claim`): validate, re-key, score against the live history
without storing anything; the score prioritises human review and decides nothing (GDPR art. 22).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from gateway.crypto import Rekeyer, contains_nir
from gateway.domain._claims import ClaimLine, ClaimRecord, Sector, parse_claim_line
from gateway.domain._history import (
    ClaimHistory,
    PeerDistribution,
    ProviderLevel,
    ProviderProfile,
    SuspicionTouch,
    provider_ids,
)
from gateway.domain.matching import find_counterparts
from gateway.domain.scoring import AlertLevel, RuleSet, Score, default_ruleset, score_claim
from gateway.domain.scoring._rules import history_span
from gateway.errors import FieldViolation, InvalidArgumentError
from gateway.ids import MemberId

__all__ = [
    "MAX_REPORTED_REJECTIONS",
    "AlertCounts",
    "AlertUpdate",
    "BatchIngestion",
    "BatchProgress",
    "BatchReport",
    "ClaimStore",
    "ClaimUnit",
    "LineRejection",
    "StoredClaim",
    "UploadMode",
    "check_claim",
    "ingest_batch",
]

UploadMode = Literal["all_or_nothing", "per_line"]
MAX_REPORTED_REJECTIONS = 1000
"""Rejections kept in the final :class:`BatchReport` (progress callbacks get every one)."""


@dataclass(frozen=True, slots=True)
class StoredClaim:
    """A stored line (its ``beneficiary_token`` is the pseudonym) with its id and match link."""

    id: int
    record: ClaimRecord
    matched_line_id: int | None = None


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """The latest score of one stored line, for the member that uploaded it."""

    claim_line_id: int
    member: MemberId
    score: Score


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """What saving scores did to the alerts: raised (new), updated, withdrawn."""

    raised: int = 0
    updated: int = 0
    withdrawn: int = 0

    def __add__(self, other: AlertCounts) -> AlertCounts:
        return AlertCounts(
            self.raised + other.raised,
            self.updated + other.updated,
            self.withdrawn + other.withdrawn,
        )


class ClaimUnit(Protocol):
    """One transaction on the claim store (the SQL implementation: ``SqlClaimUnit``)."""

    @property
    def history(self) -> ClaimHistory:
        """The scoring history as this transaction sees it."""
        ...

    def insert_new(
        self, member: MemberId, lines: Sequence[ClaimLine], received_at: datetime
    ) -> list[StoredClaim]:
        """Insert the lines whose ``(member, member_reference)`` is new; return those only."""
        ...

    def lines_around(
        self, keys: Collection[tuple[str, Sector]], start: date, end: date
    ) -> list[StoredClaim]:
        """Lock these beneficiaries, then return their lines in those sectors over the span."""
        ...

    def suspected(
        self, beneficiaries: Collection[str], providers: Collection[tuple[ProviderLevel, str]]
    ) -> tuple[frozenset[str], frozenset[tuple[ProviderLevel, str]]]:
        """Which beneficiaries and (level, provider id) an open suspicion touches."""
        ...

    def set_matches(self, matches: Mapping[int, int]) -> None:
        """Record ``line id -> matched line id`` (both sides are passed by the caller)."""
        ...

    def save_scores(
        self, updates: Sequence[AlertUpdate], *, min_level: AlertLevel, now: datetime
    ) -> AlertCounts:
        """Raise, update or withdraw the alert of each scored line."""
        ...


class ClaimStore(Protocol):
    """Where claim lines and alerts live (the SQL implementation: ``SqlClaimStore``)."""

    def unit(self) -> AbstractContextManager[ClaimUnit]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        ...

    def reading(self) -> AbstractContextManager[ClaimHistory]:
        """A short read of the scoring history (the pre-payment check)."""
        ...


@dataclass(frozen=True, slots=True)
class LineRejection:
    """A refused line: its 0-based index in the upload, its reference if readable, why."""

    index: int
    member_reference: str
    violations: tuple[FieldViolation, ...]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counters so far, and the rejections since the previous progress report."""

    received: int
    accepted: int
    duplicates: int
    rejected: int
    rejections: tuple[LineRejection, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchReport:
    """How an upload ended. ``accepted``: lines stored (or valid, when rolled back)."""

    outcome: Literal["committed", "rolled_back"]
    received: int
    accepted: int
    duplicates: int
    rejected: int
    rejections: tuple[LineRejection, ...]
    matched: int
    alerts: AlertCounts = field(default_factory=AlertCounts)


class _Rollback(Exception):
    """Raised inside an all-or-nothing unit to roll it back (never escapes this module)."""


class _ChunkHistory:
    """The history for scoring one chunk: its neighbourhood preloaded, the rest delegated."""

    def __init__(
        self,
        around: Iterable[StoredClaim],
        span: tuple[date, date],
        base: ClaimHistory,
        suspected: tuple[frozenset[str], frozenset[tuple[ProviderLevel, str]]],
        providers: frozenset[tuple[ProviderLevel, str]],
    ) -> None:
        self._lines: dict[tuple[str, str], list[ClaimRecord]] = defaultdict(list)
        for c in around:
            self._lines[(c.record.line.beneficiary_token, c.record.line.sector)].append(c.record)
        self._beneficiaries = {b for b, _ in self._lines}
        self._span, self._base = span, base
        self._suspected_b, self._suspected_p = suspected
        self._providers = providers

    def beneficiary_lines(
        self, beneficiary: str, sector: Sector, start: date, end: date
    ) -> Sequence[ClaimRecord]:
        key = (beneficiary, sector)
        if key not in self._lines or start < self._span[0] or end > self._span[1]:
            return self._base.beneficiary_lines(beneficiary, sector, start, end)
        return [r for r in self._lines[key] if start <= r.line.care_date <= end]

    def provider_profile(
        self, level: ProviderLevel, provider_id: str, sector: Sector, start: date, end: date
    ) -> ProviderProfile | None:
        return self._base.provider_profile(level, provider_id, sector, start, end)

    def peer_distribution(
        self, level: ProviderLevel, sector: Sector, start: date, end: date, min_items: int
    ) -> PeerDistribution:
        return self._base.peer_distribution(level, sector, start, end, min_items)

    def open_suspicions(
        self, beneficiary: str, providers: Sequence[tuple[ProviderLevel, str]]
    ) -> SuspicionTouch:
        if beneficiary not in self._beneficiaries or not self._providers.issuperset(providers):
            return self._base.open_suspicions(beneficiary, providers)
        return SuspicionTouch(
            beneficiary=int(beneficiary in self._suspected_b),
            provider=sum(1 for p in providers if p in self._suspected_p),
        )


def _same_item(a: ClaimLine, b: ClaimLine) -> bool:
    return (a.grouping_code, a.laterality, a.tooth) == (b.grouping_code, b.laterality, b.tooth)


def _match(
    new: StoredClaim, around: Sequence[StoredClaim], matched: dict[int, int | None], window: int
) -> set[int]:
    """Pair ``new`` with the other side; update ``matched``; return the ids whose link changed."""
    by_obj = {id(c.record): c for c in around if c.id != new.id}
    ranked = [
        by_obj[id(r)]
        for r in find_counterparts(new.record, [c.record for c in by_obj.values()],
                                   window_days=window)
    ]  # fmt: skip
    member = new.record.member
    changed: set[int] = set()
    if new.record.line.side == "AMC":
        # An AMO line pairs at most once with each AMC: skip those this AMC already holds.
        held = {
            m for c in around
            if c.record.member == member and c.id != new.id and (m := matched.get(c.id))
        }  # fmt: skip
        for amo in ranked:
            if amo.id not in held:
                matched[new.id] = amo.id
                changed.add(new.id)
                if matched.get(amo.id) is None:
                    matched[amo.id] = new.id
                    changed.add(amo.id)
                break
        return changed
    members_done: set[MemberId] = set()
    for amc in ranked:
        if matched.get(amc.id) is not None or amc.record.member in members_done:
            continue
        members_done.add(amc.record.member)
        matched[amc.id] = new.id
        changed.add(amc.id)
        if matched.get(new.id) is None:
            matched[new.id] = amc.id
            changed.add(new.id)
    return changed


def _reference(mapping: object) -> str:
    """The refused line's own reference, echoed to its sender -- unless it holds a NIR."""
    if isinstance(mapping, Mapping):
        ref = mapping.get("member_reference")
        if isinstance(ref, str) and len(ref) <= 64 and not contains_nir(ref):
            return ref
    return ""


class BatchIngestion:
    """One upload, fed message by message (the gRPC stream) or from one iterable.

    Use as a context manager; call :meth:`add` for each batch of lines (line indexes count
    across calls), then :meth:`finish`. See the module docstring for steps and modes.
    """

    def __init__(
        self,
        *,
        member: MemberId,
        member_kind: Literal["AMO", "AMC"],
        mode: UploadMode,
        store: ClaimStore,
        rekeyer: Rekeyer,
        today: date,
        ruleset: RuleSet | None = None,
        chunk_size: int = 1000,
        min_alert_level: AlertLevel = "low",
        progress: Callable[[BatchProgress], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if mode not in ("all_or_nothing", "per_line"):
            raise ValueError("mode must be all_or_nothing or per_line")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self.member, self.kind, self.mode = member, member_kind, mode
        self._store, self._rekeyer, self._today = store, rekeyer, today
        self._ruleset = ruleset if ruleset is not None else default_ruleset()
        self._chunk_size, self._min_level = chunk_size, min_alert_level
        self._progress, self._clock = progress, clock
        rules = self._ruleset.rules
        self._window = self._ruleset.matching_window_days
        self._near = max([self._window, *rules.duplicate_item.window_days.values()])
        self._stack = ExitStack()
        self._unit: ClaimUnit | None = None
        self._received = self._accepted = self._duplicates = self._rejected = self._matched = 0
        self._rejections: list[LineRejection] = []
        self._new_rejections: list[LineRejection] = []
        self._alerts = AlertCounts()
        self._finished = False

    def __enter__(self) -> BatchIngestion:
        if self.mode == "all_or_nothing":
            self._unit = self._stack.enter_context(self._store.unit())
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._finished:  # abandoned or failed: roll back an open transaction
            self._stack.__exit__(_Rollback, _Rollback(), None)

    # 1. Validation and re-keying -------------------------------------------------------------

    def _validate(self, index: int, raw: object) -> ClaimLine | None:
        violations: list[FieldViolation] = []
        line: ClaimLine | None = None
        if not isinstance(raw, Mapping):
            violations.append(FieldViolation(f"lines[{index}]", "must be a claim line"))
        else:
            try:
                line = parse_claim_line(raw, today=self._today, index=index)
            except InvalidArgumentError as e:
                violations.extend(e.violations)
            side = raw.get("side")
            if side in ("AMO", "AMC") and side != self.kind:
                violations.append(
                    FieldViolation(f"lines[{index}].side", "must be the uploader's kind")
                )
        if violations:
            rejection = LineRejection(index, _reference(raw), tuple(violations))
            self._rejected += 1
            self._new_rejections.append(rejection)
            if len(self._rejections) < MAX_REPORTED_REJECTIONS:
                self._rejections.append(rejection)
            return None
        assert line is not None
        # 2. Second-level pseudonym before storage: the first-level token never reaches the store.
        pseudonym = self._rekeyer.rekey(line.beneficiary_token)
        return line.model_copy(update={"beneficiary_token": pseudonym})

    def add(self, lines: Iterable[Mapping[str, object]]) -> BatchProgress:
        """Validate, store, match and score ``lines`` chunk by chunk; report progress.

        Raises:
            UnavailableError: the store failed (a per-line upload keeps the committed chunks).
        """
        if self._finished:
            raise RuntimeError("upload already finished")
        chunk: dict[str, ClaimLine] = {}
        for raw in lines:
            index = self._received
            self._received += 1
            line = self._validate(index, raw)
            if line is None:
                continue
            self._accepted += 1
            if line.member_reference in chunk:
                self._accepted -= 1
                self._duplicates += 1
                continue
            chunk[line.member_reference] = line
            if len(chunk) >= self._chunk_size:
                self._flush(list(chunk.values()))
                chunk.clear()
        if chunk:
            self._flush(list(chunk.values()))
        elif self._new_rejections:
            self._report()
        return self._snapshot()

    def _snapshot(self) -> BatchProgress:
        return BatchProgress(self._received, self._accepted, self._duplicates, self._rejected)

    def _report(self) -> None:
        snap = self._snapshot()
        rejections, self._new_rejections = tuple(self._new_rejections), []
        if self._progress is not None:
            self._progress(
                BatchProgress(snap.received, snap.accepted, snap.duplicates, snap.rejected,
                              rejections)
            )  # fmt: skip

    def _flush(self, lines: list[ClaimLine]) -> None:
        if self.mode == "all_or_nothing":
            if self._rejected == 0:  # after a refusal nothing more is stored; keep validating
                assert self._unit is not None
                self._store_chunk(self._unit, lines)
        else:
            with self._store.unit() as unit:
                self._store_chunk(unit, lines)
        self._report()

    # 3-6. Store, match, score ------------------------------------------------------------------

    def _store_chunk(self, unit: ClaimUnit, lines: list[ClaimLine]) -> None:
        now = self._clock()
        new = unit.insert_new(self.member, lines, now)
        self._duplicates += len(lines) - len(new)
        self._accepted -= len(lines) - len(new)
        if not new:
            return
        spans = [history_span(c.record.line, self._ruleset) for c in new]
        near = timedelta(days=self._near)
        span = (min(s for s, _ in spans) - near, max(e for _, e in spans) + near)
        keys = {(c.record.line.beneficiary_token, c.record.line.sector) for c in new}
        around = unit.lines_around(keys, *span)
        new_ids = {c.id for c in new}
        matched: dict[int, int | None] = {c.id: c.matched_line_id for c in around}
        changed: set[int] = set()
        by_key: dict[tuple[str, str], list[StoredClaim]] = defaultdict(list)
        for c in around:
            by_key[(c.record.line.beneficiary_token, c.record.line.sector)].append(c)
        affected: dict[int, StoredClaim] = {}
        for c in new:
            line = c.record.line
            neighbours = by_key[(line.beneficiary_token, line.sector)]
            changed |= _match(c, neighbours, matched, self._window)
            affected[c.id] = c
            for o in neighbours:
                if (
                    o.id not in new_ids
                    and _same_item(o.record.line, line)
                    and abs((o.record.line.care_date - line.care_date).days) <= self._near
                ):
                    affected[o.id] = o
        links = {i: m for i in changed if (m := matched.get(i)) is not None}
        unit.set_matches(links)
        self._matched += sum(1 for i in links if i in new_ids)
        providers = frozenset(p for c in affected.values() for p in provider_ids(c.record.line))
        beneficiaries = {c.record.line.beneficiary_token for c in affected.values()}
        history = _ChunkHistory(
            around, span, unit.history, unit.suspected(beneficiaries, providers), providers
        )
        updates = [
            AlertUpdate(c.id, c.record.member, self._score(c.record, history))
            for c in sorted(affected.values(), key=lambda c: c.id)
        ]
        self._alerts += unit.save_scores(updates, min_level=self._min_level, now=now)

    def _score(self, record: ClaimRecord, history: ClaimHistory) -> Score:
        return score_claim(record.line, history, self._ruleset, self._today, member=record.member)

    def finish(self) -> BatchReport:
        """Commit (or, all-or-nothing with a refused line, roll back) and report.

        Raises:
            UnavailableError: the store failed while committing.
        """
        if self._finished:
            raise RuntimeError("upload already finished")
        self._finished = True
        outcome: Literal["committed", "rolled_back"] = "committed"
        if self.mode == "all_or_nothing" and self._rejected:
            outcome = "rolled_back"
            self._stack.__exit__(_Rollback, _Rollback(), None)
            self._matched, self._alerts = 0, AlertCounts()
        else:
            self._stack.close()
        return BatchReport(
            outcome=outcome,
            received=self._received,
            accepted=self._accepted,
            duplicates=self._duplicates,
            rejected=self._rejected,
            rejections=tuple(self._rejections),
            matched=self._matched,
            alerts=self._alerts,
        )


def ingest_batch(
    lines: Iterable[Mapping[str, object]],
    *,
    member: MemberId,
    member_kind: Literal["AMO", "AMC"],
    mode: UploadMode,
    store: ClaimStore,
    rekeyer: Rekeyer,
    today: date,
    ruleset: RuleSet | None = None,
    chunk_size: int = 1000,
    progress: Callable[[BatchProgress], None] | None = None,
) -> BatchReport:
    """Upload one side of claim lines: validate, pseudonymise, store, match, score, alert.

    Args:
        lines: raw lines (proto-converted, JSONL or CSV mappings), pulled lazily.
        member: the uploading member; ``member_kind`` its kind (each line's side must equal it).
        mode: ``all_or_nothing`` (one refused line stores nothing) or ``per_line``.
        store: the claim store; ``rekeyer``: the gateway's second-level re-keying.
        today: reference day (dates not in the future, rules waiting for time).
        ruleset: the shared rule set (default: the packaged one).
        chunk_size: lines per chunk (and per transaction in ``per_line`` mode).
        progress: called after every chunk with the counters and the new rejections.

    Returns:
        The report; refused lines carry their index and field violations.

    Raises:
        UnavailableError: the store failed (per-line mode keeps the chunks already committed).
        ValueError: ``mode`` or ``chunk_size`` is invalid.
    """
    with BatchIngestion(
        member=member, member_kind=member_kind, mode=mode, store=store, rekeyer=rekeyer,
        today=today, ruleset=ruleset, chunk_size=chunk_size, progress=progress,
    ) as ingestion:  # fmt: skip
        ingestion.add(lines)
        return ingestion.finish()


def check_claim(
    line_mapping: Mapping[str, object],
    *,
    member: MemberId,
    member_kind: Literal["AMO", "AMC"],
    store: ClaimStore,
    rekeyer: Rekeyer,
    today: date,
    ruleset: RuleSet | None = None,
) -> Score:
    """Score one claim before payment, against the shared history, without storing it.

    The score prioritises human review; it decides nothing (GDPR art. 22).

    Raises:
        InvalidArgumentError: the line is invalid or its side is not the caller's kind.
        UnavailableError: the store failed.
    """
    line = parse_claim_line(line_mapping, today=today)
    if line.side != member_kind:
        raise InvalidArgumentError.for_field("claim_line.side", "must be the caller's kind")
    line = line.model_copy(update={"beneficiary_token": rekeyer.rekey(line.beneficiary_token)})
    rules = ruleset if ruleset is not None else default_ruleset()
    with store.reading() as history:
        return score_claim(line, history, rules, today, member=member)
