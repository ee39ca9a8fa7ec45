"""SQL side of the suspicion exchange: the queries, in the caller's session (no commit here).

The domain (``gateway.domain.suspicions``) owns the rules; these functions only read and write
rows, the same way on SQLite and PostgreSQL. Relation facts need two sources:

- ``member_coverage``: beneficiaries a member declared it covers (its own pseudonyms list);
- ``claim_lines`` (created by the claims migration, possibly absent): a member that uploaded a
  line for a beneficiary covers them; a member that uploaded a line naming a provider paid that
  provider. :func:`claim_lines_table` finds the table and its columns by inspection, so this
  module works before and after that migration (hook: :data:`CLAIM_LINES`).
"""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.store._idempotency import IdempotencyStore
from gateway.store._models import MemberRow
from gateway.store._suspicions_models import (
    MemberCoverageRow,
    NotificationRow,
    SuspicionRecipientRow,
    SuspicionRow,
    SuspicionTransitionRow,
)

__all__ = [
    "CLAIM_LINES",
    "ClaimColumns",
    "ClaimLinesSpec",
    "ProviderIds",
    "claim_lines_table",
    "covering_members",
    "decode_cursor",
    "delete_suspicion_rows",
    "encode_cursor",
    "erase_suspicion_payload",
    "insert_notification",
    "lock_member_stream",
    "member_claim_references",
    "member_covers",
    "member_paid",
    "paying_members",
    "suspicion_page",
]


@dataclass(frozen=True, slots=True)
class ClaimLinesSpec:
    """Where claim lines live: table name and candidate column names (first match wins)."""

    table: str = "claim_lines"
    member: tuple[str, ...] = ("member_id", "member")
    beneficiary: tuple[str, ...] = ("beneficiary", "beneficiary_pseudonym", "beneficiary_token")
    rpps: tuple[str, ...] = ("provider_rpps",)
    am_number: tuple[str, ...] = ("provider_am_number",)
    finess: tuple[str, ...] = ("provider_finess",)
    reference: tuple[str, ...] = ("member_reference",)


CLAIM_LINES: Final = ClaimLinesSpec()
"""Hook: the claims migration's table and columns. Relation facts read claims through it."""


@dataclass(frozen=True, slots=True)
class ProviderIds:
    """A provider as named by a suspicion subject (each identifier optional)."""

    rpps: str | None = None
    am_number: str | None = None
    finess: str | None = None

    def any(self) -> bool:
        return bool(self.rpps or self.am_number or self.finess)


@dataclass(frozen=True, slots=True)
class ClaimColumns:
    table: sa.TableClause
    member: sa.ColumnClause[Any]
    beneficiary: sa.ColumnClause[Any] | None
    providers: dict[str, sa.ColumnClause[Any]]
    reference: sa.ColumnClause[Any] | None = None


_known_claim_tables: weakref.WeakKeyDictionary[sa.Engine, dict[ClaimLinesSpec, ClaimColumns]] = (
    weakref.WeakKeyDictionary()
)


def claim_lines_table(session: Session, spec: ClaimLinesSpec | None = None) -> ClaimColumns | None:
    """The claim-lines table as a lightweight clause, or ``None`` while it does not exist.

    A found table is remembered per engine (migrations run before serving); absence is
    re-checked each time so the table counts as soon as its migration ran. ``spec`` defaults
    to the module's :data:`CLAIM_LINES`, read at call time.
    """
    spec = spec if spec is not None else CLAIM_LINES
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    known = _known_claim_tables.setdefault(engine, {})
    if spec in known:
        return known[spec]
    inspector = sa.inspect(session.connection())
    if not inspector.has_table(spec.table):
        return None
    names = {c["name"] for c in inspector.get_columns(spec.table)}

    def pick(candidates: tuple[str, ...]) -> str | None:
        return next((c for c in candidates if c in names), None)

    member = pick(spec.member)
    if member is None:
        return None
    chosen = {
        "beneficiary": pick(spec.beneficiary),
        "rpps": pick(spec.rpps),
        "am_number": pick(spec.am_number),
        "finess": pick(spec.finess),
        "reference": pick(spec.reference),
    }
    columns: list[sa.ColumnClause[Any]] = [sa.column(member)] + [
        sa.column(n) for n in chosen.values() if n
    ]
    table = sa.table(spec.table, *columns)
    found = ClaimColumns(
        table=table,
        member=table.c[member],
        beneficiary=table.c[chosen["beneficiary"]] if chosen["beneficiary"] else None,
        providers={
            level: table.c[name]
            for level in ("rpps", "am_number", "finess")
            if (name := chosen[level]) is not None
        },
        reference=table.c[chosen["reference"]] if chosen["reference"] else None,
    )
    known[spec] = found
    return found


def _provider_clause(claims: ClaimColumns, provider: ProviderIds) -> sa.ColumnElement[bool] | None:
    terms = [
        claims.providers[level] == value
        for level, value in (
            ("rpps", provider.rpps),
            ("am_number", provider.am_number),
            ("finess", provider.finess),
        )
        if value and level in claims.providers
    ]
    return sa.or_(*terms) if terms else None


def covering_members(session: Session, beneficiary: str) -> set[str]:
    """Members that cover a beneficiary pseudonym: declared coverage, or claims of theirs."""
    found = set(
        session.scalars(
            sa.select(MemberCoverageRow.member_id).where(
                MemberCoverageRow.beneficiary == beneficiary
            )
        )
    )
    claims = claim_lines_table(session)
    if claims is not None and claims.beneficiary is not None:
        found.update(
            session.scalars(
                sa.select(claims.member).where(claims.beneficiary == beneficiary).distinct()
            )
        )
    return found


def paying_members(session: Session, provider: ProviderIds) -> set[str]:
    """Members with at least one claim line naming the provider (by any of its identifiers)."""
    claims = claim_lines_table(session)
    if claims is None or not provider.any():
        return set()
    clause = _provider_clause(claims, provider)
    if clause is None:
        return set()
    return set(session.scalars(sa.select(claims.member).where(clause).distinct()))


def member_covers(session: Session, member_id: str, beneficiaries: Collection[str]) -> set[str]:
    """Which of ``beneficiaries`` (pseudonyms) ``member_id`` covers."""
    wanted = [b for b in set(beneficiaries) if b]
    if not wanted:
        return set()
    found = set(
        session.scalars(
            sa.select(MemberCoverageRow.beneficiary).where(
                MemberCoverageRow.member_id == member_id,
                MemberCoverageRow.beneficiary.in_(wanted),
            )
        )
    )
    claims = claim_lines_table(session)
    if claims is not None and claims.beneficiary is not None:
        found.update(
            session.scalars(
                sa.select(claims.beneficiary)
                .where(claims.member == member_id, claims.beneficiary.in_(wanted))
                .distinct()
            )
        )
    return found


def member_paid(session: Session, member_id: str, provider: ProviderIds) -> bool:
    """Whether ``member_id`` has a claim line naming the provider."""
    claims = claim_lines_table(session)
    if claims is None:
        return False
    clause = _provider_clause(claims, provider)
    if clause is None:
        return False
    query = sa.select(sa.literal(1)).select_from(claims.table)
    return session.scalar(query.where(claims.member == member_id, clause).limit(1)) is not None


def member_claim_references(
    session: Session,
    member_id: str,
    beneficiary: str | None,
    provider: ProviderIds,
    *,
    limit: int = 100,
) -> list[str]:
    """``member_id``'s own claim line references a suspicion concerns, sorted (at most ``limit``).

    A line is concerned when it names the subject: the beneficiary and the provider when the
    suspicion names both, else the one it names. Only the member's own lines are read, so the
    answer never names another member's claims. Empty while the claim-lines table (or its
    reference column) does not exist.
    """
    claims = claim_lines_table(session)
    if claims is None or claims.reference is None:
        return []
    terms: list[sa.ColumnElement[bool]] = []
    if beneficiary and claims.beneficiary is not None:
        terms.append(claims.beneficiary == beneficiary)
    clause = _provider_clause(claims, provider)
    if clause is not None:
        terms.append(clause)
    if not terms:
        return []
    query = (
        sa.select(claims.reference)
        .where(claims.member == member_id, *terms)
        .distinct()
        .order_by(claims.reference)
        .limit(limit)
    )
    return [str(r) for r in session.scalars(query)]


def _related_clause(session: Session, member_id: str) -> sa.ColumnElement[bool]:
    """Rows the member has a relation with (submitter, recipient, coverage, claims)."""
    terms: list[sa.ColumnElement[bool]] = [
        SuspicionRow.submitter_member == member_id,
        sa.exists().where(
            SuspicionRecipientRow.suspicion_id == SuspicionRow.id,
            SuspicionRecipientRow.member_id == member_id,
        ),
        sa.exists().where(
            MemberCoverageRow.member_id == member_id,
            MemberCoverageRow.beneficiary == SuspicionRow.subject_beneficiary,
        ),
    ]
    claims = claim_lines_table(session)
    if claims is not None:
        if claims.beneficiary is not None:
            terms.append(
                sa.exists().where(
                    claims.member == member_id,
                    claims.beneficiary == SuspicionRow.subject_beneficiary,
                )
            )
        for level, column in (
            ("rpps", SuspicionRow.subject_provider_rpps),
            ("am_number", SuspicionRow.subject_provider_am_number),
            ("finess", SuspicionRow.subject_provider_finess),
        ):
            if level in claims.providers:
                terms.append(
                    sa.exists().where(claims.member == member_id, claims.providers[level] == column)
                )
    return sa.or_(*terms)


def suspicion_page(
    session: Session,
    *,
    member_id: str,
    related_only: bool,
    after: tuple[datetime, str] | None,
    limit: int,
    sector: str | None = None,
    statuses: Collection[str] = (),
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    beneficiaries: Collection[str] = (),
) -> Sequence[SuspicionRow]:
    """Candidate rows, newest first (``created_at`` then ``id``, descending), after a cursor."""
    query = sa.select(SuspicionRow)
    if related_only:
        query = query.where(_related_clause(session, member_id))
    if sector is not None:
        query = query.where(SuspicionRow.sector == sector)
    if statuses:
        query = query.where(SuspicionRow.status.in_(list(statuses)))
    if created_from is not None:
        query = query.where(SuspicionRow.created_at >= created_from)
    if created_before is not None:
        query = query.where(SuspicionRow.created_at < created_before)
    if beneficiaries:
        query = query.where(SuspicionRow.subject_beneficiary.in_(list(beneficiaries)))
    if after is not None:
        at, last_id = after
        query = query.where(
            sa.or_(
                SuspicionRow.created_at < at,
                sa.and_(SuspicionRow.created_at == at, SuspicionRow.id < last_id),
            )
        )
    query = query.order_by(SuspicionRow.created_at.desc(), SuspicionRow.id.desc()).limit(limit)
    return session.scalars(query).all()


def lock_member_stream(session: Session, member_id: str) -> None:
    """Serialise notification inserts per member so sequences commit in order.

    On PostgreSQL a sequence value is taken at insert time and committed later: two concurrent
    transactions could commit 11 before 10, and a member resuming after 11 would miss 10.
    Locking the member's registry row first makes one member's inserts commit in sequence
    order. SQLite already serialises writers (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.select(MemberRow.member_id).where(MemberRow.member_id == member_id).with_for_update()
        )


def insert_notification(
    session: Session,
    *,
    member_id: str,
    kind: str,
    subject_ref: str,
    payload: str | None,
    now: datetime,
) -> int:
    """Append one notification to a member's outbox and return its sequence."""
    lock_member_stream(session, member_id)
    row = NotificationRow(
        member_id=member_id,
        kind=kind,
        subject_ref=subject_ref,
        payload=payload,
        created_at=now,
        acknowledged_at=None,
    )
    session.add(row)
    session.flush()
    return row.sequence


def erase_suspicion_payload(session: Session, suspicion_id: str, now: datetime) -> None:
    """Delete a suspicion's personal payload (subject, facts, evidence, acts, reasons, views).

    The recipients' attached case references go too; who received it and when stay (the
    retractions and their acknowledgements must remain provable). The answers kept for
    idempotent retries about it are erased as well (they held the submitter's view).
    """
    IdempotencyStore.forget(session, f"suspicions/{suspicion_id}")
    session.execute(
        sa.update(SuspicionRow)
        .where(SuspicionRow.id == suspicion_id)
        .values(
            subject_beneficiary=None,
            subject_provider_rpps=None,
            subject_provider_am_number=None,
            subject_provider_finess=None,
            facts_sealed=None,
            evidence_sealed=None,
            seal_key_id=None,
            case_reference=None,
            act_grouping_codes=[],
            act_codes=[],
            erased_at=now,
        )
    )
    session.execute(
        sa.update(SuspicionTransitionRow)
        .where(SuspicionTransitionRow.suspicion_id == suspicion_id)
        .values(reason_sealed=None)
    )
    session.execute(
        sa.update(SuspicionRecipientRow)
        .where(SuspicionRecipientRow.suspicion_id == suspicion_id)
        .values(case_reference=None)
    )
    session.execute(
        sa.update(NotificationRow)
        .where(NotificationRow.subject_ref == suspicion_id, NotificationRow.kind == "SHARED")
        .values(payload=None)
    )


def delete_suspicion_rows(session: Session, suspicion_ids: Iterable[str]) -> int:
    """Delete suspicions with their transitions and recipients; their shared views are erased.

    Notification rows stay (a member may still have to read and acknowledge a retraction) but
    lose their payload. Returns how many suspicions were deleted.
    """
    ids = list(suspicion_ids)
    if not ids:
        return 0
    session.execute(
        sa.update(NotificationRow)
        .where(NotificationRow.subject_ref.in_(ids), NotificationRow.kind == "SHARED")
        .values(payload=None)
    )
    session.execute(
        sa.delete(SuspicionTransitionRow).where(SuspicionTransitionRow.suspicion_id.in_(ids))
    )
    session.execute(
        sa.delete(SuspicionRecipientRow).where(SuspicionRecipientRow.suspicion_id.in_(ids))
    )
    result = session.execute(sa.delete(SuspicionRow).where(SuspicionRow.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def encode_cursor(payload: dict[str, Any]) -> str:
    """Opaque page token: unpadded base64url of compact JSON (AIP-158)."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str) -> dict[str, Any] | None:
    """Parse :func:`encode_cursor` output, or ``None`` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
