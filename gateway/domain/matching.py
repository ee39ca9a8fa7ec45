"""Link the AMO and AMC sides of one care event, and spot one item claimed from several AMCs.

Pure functions over :class:`~gateway.domain.claims.ClaimRecord` (no I/O). DOMAIN.md §3 and §5:
since 2021 the AMO sees manufacturer-level LPP codes while AMC flows carry grouping codes, so the
natural matching key is the beneficiary, the billing site (AM number), the sector and grouping
code, the eye/ear/tooth, and the care date within a window; amounts break ties.

Two sides match when they share :func:`item_key` and their care dates are at most
``window_days`` apart. When several candidates exist the closest care date wins, then the
closest billed amount, then the lowest member reference (deterministic); the choice and why are
reported as :class:`AmbiguousMatch`. An AMO line pairs with at most one line of each AMC: a
second AMC paying the same item is the cross-AMC signal, reported per line as a bare count
(:class:`CrossAmcSignal`) that never names the other insurer (DESIGN.md invariant "an AMC can
never ... learn which AMC holds a claim").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.domain._claims import ClaimLine, ClaimRecord
from gateway.ids import MemberId

__all__ = [
    "AMOUNT_BILLED_DIFFERS",
    "DEFAULT_WINDOW_DAYS",
    "PAID_EXCEEDS_BILLED",
    "AmbiguousMatch",
    "CrossAmcSignal",
    "MatchResult",
    "MatchedPair",
    "cross_amc_count",
    "find_counterparts",
    "item_key",
    "match_claims",
    "pair_amount_issues",
]

DEFAULT_WINDOW_DAYS = 3
"""Default tolerance between the care dates of the two sides (delivery vs invoice dates)."""

AMOUNT_BILLED_DIFFERS = "AMOUNT_BILLED_DIFFERS"
PAID_EXCEEDS_BILLED = "PAID_EXCEEDS_BILLED"

ItemKey = tuple[str, str, str, str, str, int]


def item_key(line: ClaimLine) -> ItemKey:
    """The matching key: beneficiary, billing site, sector, grouping code, laterality, tooth."""
    return (
        line.beneficiary_token,
        line.provider_am_number,
        line.sector,
        line.grouping_code,
        line.laterality,
        line.tooth,
    )


def pair_amount_issues(amo: ClaimLine, amc: ClaimLine) -> tuple[str, ...]:
    """Amount consistency of two matched sides.

    ``AMOUNT_BILLED_DIFFERS``: the sides declare different billed amounts.
    ``PAID_EXCEEDS_BILLED``: AMO paid + AMC paid exceed the amount billed (AMO side's figure).
    """
    issues: list[str] = []
    if amo.amount_billed_cents != amc.amount_billed_cents:
        issues.append(AMOUNT_BILLED_DIFFERS)
    if amo.amo_paid_cents + amc.amc_paid_cents > amo.amount_billed_cents:
        issues.append(PAID_EXCEEDS_BILLED)
    return tuple(issues)


@dataclass(frozen=True, slots=True)
class MatchedPair:
    """The two sides of one care event."""

    amo: ClaimRecord
    amc: ClaimRecord
    date_distance_days: int
    amount_issues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AmbiguousMatch:
    """A line that had several candidates on the other side: which was chosen and why."""

    line: ClaimRecord
    candidates: int
    chosen: ClaimRecord
    reason: str


@dataclass(frozen=True, slots=True)
class CrossAmcSignal:
    """An AMC line whose item was also claimed from other AMCs; carries a count, never who."""

    member: MemberId
    member_reference: str
    other_amc_count: int

    @property
    def explanation(self) -> str:
        """Human text for the line's owner (names no insurer)."""
        return f"also claimed from {self.other_amc_count} other complementary insurer(s)"


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Everything matching found; a gateway-internal view (use :meth:`visible_to` to share)."""

    pairs: tuple[MatchedPair, ...]
    unmatched_amo: tuple[ClaimRecord, ...]
    unmatched_amc: tuple[ClaimRecord, ...]
    """AMC complements with no AMO side: phantom complement candidates."""
    ambiguous: tuple[AmbiguousMatch, ...]
    cross_amc: tuple[CrossAmcSignal, ...]

    def visible_to(self, member: MemberId) -> MatchResult:
        """The part of the result about ``member``'s own lines.

        An AMC's view holds its own lines, their AMO counterparts and bare counts: no record,
        reference or identity of another AMC.
        """
        return MatchResult(
            pairs=tuple(p for p in self.pairs if member in (p.amo.member, p.amc.member)),
            unmatched_amo=tuple(r for r in self.unmatched_amo if r.member == member),
            unmatched_amc=tuple(r for r in self.unmatched_amc if r.member == member),
            ambiguous=tuple(a for a in self.ambiguous if a.line.member == member),
            cross_amc=tuple(s for s in self.cross_amc if s.member == member),
        )


def _distance(a: ClaimLine, b: ClaimLine) -> int:
    return abs((a.care_date - b.care_date).days)


def _cost(line: ClaimLine, other: ClaimLine) -> tuple[int, int, str]:
    return (
        _distance(line, other),
        abs(line.amount_billed_cents - other.amount_billed_cents),
        other.member_reference,
    )


def find_counterparts(
    record: ClaimRecord, others: Iterable[ClaimRecord], *, window_days: int = DEFAULT_WINDOW_DAYS
) -> list[ClaimRecord]:
    """Other-side lines that could be ``record``'s counterpart, best first.

    Best means closest care date, then closest billed amount, then lowest member reference.
    """
    line = record.line
    key = item_key(line)
    found = [
        o
        for o in others
        if o.line.side != line.side
        and item_key(o.line) == key
        and _distance(o.line, line) <= window_days
    ]
    found.sort(key=lambda o: _cost(line, o.line))
    return found


def cross_amc_count(
    record: ClaimRecord, others: Iterable[ClaimRecord], *, window_days: int = DEFAULT_WINDOW_DAYS
) -> int:
    """How many *other* AMCs claimed the same item (same key, care dates within the window)."""
    line = record.line
    key = item_key(line)
    members = {
        o.member
        for o in others
        if o.line.side == "AMC"
        and o.member != record.member
        and item_key(o.line) == key
        and _distance(o.line, line) <= window_days
    }
    return len(members)


def _why(chosen: tuple[int, int, str], ranked: Sequence[tuple[int, int, str]]) -> str:
    best = ranked[0]
    if chosen != best:
        return "closer candidates were already matched to other lines"
    runner_up = ranked[1]
    if chosen[0] < runner_up[0]:
        return "closest care date"
    if chosen[1] < runner_up[1]:
        return "same care-date distance; closest billed amount"
    return "equal on care date and amount; lowest member reference"


def match_claims(
    records: Iterable[ClaimRecord], *, window_days: int = DEFAULT_WINDOW_DAYS
) -> MatchResult:
    """Match AMO and AMC sides, keep unmatched lines, report ambiguity and cross-AMC claims.

    Greedy on a global order of candidate pairs (closest date, closest amount, references): each
    AMC line pairs at most once; an AMO line pairs at most once per AMC member.

    Args:
        records: lines of both sides and any members, in any order.
        window_days: maximum distance between the two sides' care dates.

    Raises:
        ValueError: ``window_days`` is negative.
    """
    if window_days < 0:
        raise ValueError("window_days must be >= 0")
    amo_by_key: dict[ItemKey, list[ClaimRecord]] = defaultdict(list)
    amc_by_key: dict[ItemKey, list[ClaimRecord]] = defaultdict(list)
    for r in records:
        (amo_by_key if r.line.side == "AMO" else amc_by_key)[item_key(r.line)].append(r)

    edges: list[tuple[tuple[int, int, str], str, str, int, int, ClaimRecord, ClaimRecord]] = []
    amc_candidates: dict[int, list[tuple[int, int, str]]] = {}
    for key, amcs in amc_by_key.items():
        amos = amo_by_key.get(key, [])
        for amc in amcs:
            costs = []
            for amo in amos:
                if _distance(amo.line, amc.line) <= window_days:
                    cost = _cost(amc.line, amo.line)
                    costs.append(cost)
                    edges.append(
                        (cost, amc.line.member_reference, amc.member, id(amc), id(amo), amc, amo)
                    )
            amc_candidates[id(amc)] = sorted(costs)
    edges.sort(key=lambda e: e[:3])

    taken_amc: set[int] = set()
    taken_amo: set[tuple[int, MemberId]] = set()
    paired_amo: set[int] = set()
    pairs: list[MatchedPair] = []
    ambiguous: list[AmbiguousMatch] = []
    for cost, _, _, amc_id, amo_id, amc, amo in edges:
        if amc_id in taken_amc or (amo_id, amc.member) in taken_amo:
            continue
        taken_amc.add(amc_id)
        taken_amo.add((amo_id, amc.member))
        paired_amo.add(amo_id)
        pairs.append(MatchedPair(amo, amc, cost[0], pair_amount_issues(amo.line, amc.line)))
        ranked = amc_candidates[amc_id]
        if len(ranked) > 1:
            ambiguous.append(AmbiguousMatch(amc, len(ranked), amo, _why(cost, ranked)))

    # An AMO line with several same-member AMC candidates is ambiguous from its side too.
    for pair in pairs:
        amo = pair.amo
        own = [
            _cost(amo.line, c.line)
            for c in amc_by_key[item_key(amo.line)]
            if c.member == pair.amc.member and _distance(c.line, amo.line) <= window_days
        ]
        if len(own) > 1:
            chosen = _cost(amo.line, pair.amc.line)
            ambiguous.append(AmbiguousMatch(amo, len(own), pair.amc, _why(chosen, sorted(own))))

    signals: list[CrossAmcSignal] = []
    for amcs in amc_by_key.values():
        if len({r.member for r in amcs}) < 2:
            continue
        for r in amcs:
            n = cross_amc_count(r, amcs, window_days=window_days)
            if n:
                signals.append(CrossAmcSignal(r.member, r.line.member_reference, n))

    all_amo = [r for rs in amo_by_key.values() for r in rs]
    all_amc = [r for rs in amc_by_key.values() for r in rs]
    return MatchResult(
        pairs=tuple(pairs),
        unmatched_amo=tuple(r for r in all_amo if id(r) not in paired_amo),
        unmatched_amc=tuple(r for r in all_amc if id(r) not in taken_amc),
        ambiguous=tuple(ambiguous),
        cross_amc=tuple(signals),
    )
