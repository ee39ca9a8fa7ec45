"""Suspicions at rest: create, read, list, move, relation facts and the reader's view.

Every function works in the caller's SQLAlchemy session (one transaction with the journal
event, opened by the service) and never commits. Free text is sealed with AES-256-GCM bound to
the record and field (:func:`gateway.crypto.field_aad`); the beneficiary is stored only as the
gateway's second-level pseudonym.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.crypto import Envelope, Rekeyer, Sealed, field_aad
from gateway.domain._suspicion_model import (
    SUSPICION_STATUSES,
    Suspicion,
    SuspicionDraft,
    Transition,
    new_opaque_id,
    transition,
)
from gateway.errors import InvalidArgumentError, NotFoundError
from gateway.store import Member
from gateway.store._suspicions import (
    ProviderIds,
    decode_cursor,
    encode_cursor,
    member_covers,
    member_paid,
    suspicion_page,
)
from gateway.store._suspicions_models import (
    MemberCoverageRow,
    SuspicionRecipientRow,
    SuspicionRow,
    SuspicionTransitionRow,
)
from policy import PolicyEngine

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MaySee",
    "RelationFacts",
    "create_suspicion",
    "declare_coverage",
    "get_suspicion",
    "list_suspicions",
    "minimised_view",
    "open_evidence",
    "open_facts",
    "own_reference",
    "relation_facts",
    "suspicion_fields",
    "suspicion_view",
    "transition_suspicion",
    "transitions_of",
    "withdraw_coverage",
]

RelationFacts = dict[str, bool]
MaySee = Callable[[Suspicion, RelationFacts], bool]
"""The lead's per-item policy check: ``may_see(suspicion, relation_facts) -> allowed``."""

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
FACTS_FIELD: Final = "facts_summary"
EVIDENCE_FIELD: Final = "evidence_refs"


def _to_suspicion(row: SuspicionRow) -> Suspicion:
    return Suspicion.model_validate(
        {
            "id": row.id,
            "submitter_member": row.submitter_member,
            "submitter_kind": row.submitter_kind,
            "status": row.status,
            "sector": row.sector,
            "fraud_type": row.fraud_type,
            "subject_beneficiary": row.subject_beneficiary,
            "subject_provider_rpps": row.subject_provider_rpps,
            "subject_provider_am_number": row.subject_provider_am_number,
            "subject_provider_finess": row.subject_provider_finess,
            "facts_sealed": row.facts_sealed,
            "evidence_sealed": row.evidence_sealed,
            "estimated_amount_cents": row.estimated_amount_cents,
            "case_reference": row.case_reference,
            "act_grouping_codes": tuple(row.act_grouping_codes),
            "act_codes": tuple(row.act_codes),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "outcome": row.outcome,
            "decided_at": row.decided_at,
            "closed_at": row.closed_at,
            "cleared_at": row.cleared_at,
            "erased_at": row.erased_at,
        },
        strict=False,  # rows come from our own schema (CHECK constraints); tuples from JSON lists
    )


def _provider(s: Suspicion) -> ProviderIds:
    return ProviderIds(
        s.subject_provider_rpps, s.subject_provider_am_number, s.subject_provider_finess
    )


def create_suspicion(
    session: Session,
    draft: SuspicionDraft,
    submitter: Member,
    rekeyer: Rekeyer,
    envelope: Envelope,
    now: datetime,
) -> Suspicion:
    """Store a new suspicion in status ``submitted``.

    Steps:
    1. draw a random opaque id ``s_<base32>``;
    2. re-key the beneficiary's first-level token to the second-level pseudonym (the token is
       never stored);
    3. seal the facts summary and the evidence references (AES-256-GCM, bound to the id and
       field);
    4. insert the row (the caller's transaction commits it with the journal event).

    Raises:
        InvalidArgumentError: the beneficiary token is malformed.
    """
    suspicion_id = new_opaque_id("s")  # 1
    token = draft.subject.beneficiary_token
    pseudonym = rekeyer.rekey(token) if token else None  # 2
    facts = envelope.seal(draft.facts_summary.encode("utf-8"), field_aad(suspicion_id, FACTS_FIELD))
    evidence: Sealed | None = None
    if draft.evidence_refs:
        evidence = envelope.seal(
            json.dumps(list(draft.evidence_refs)).encode("utf-8"),
            field_aad(suspicion_id, EVIDENCE_FIELD),
        )  # 3
    row = SuspicionRow(
        id=suspicion_id,
        submitter_member=submitter.member_id,
        submitter_kind=submitter.kind,
        status="submitted",
        sector=draft.sector,
        fraud_type=draft.fraud_type,
        subject_beneficiary=pseudonym,
        subject_provider_rpps=draft.subject.provider_rpps,
        subject_provider_am_number=draft.subject.provider_am_number,
        subject_provider_finess=draft.subject.provider_finess,
        facts_sealed=facts.to_text(),
        evidence_sealed=evidence.to_text() if evidence else None,
        seal_key_id=facts.key_id,
        estimated_amount_cents=draft.estimated_amount_cents,
        case_reference=draft.case_reference,
        act_grouping_codes=list(draft.act_grouping_codes),
        act_codes=list(draft.act_codes),
        created_at=now,
        updated_at=now,
        outcome=None,
        decided_at=None,
        closed_at=None,
        cleared_at=None,
        erased_at=None,
    )
    session.add(row)  # 4
    session.flush()
    return _to_suspicion(row)


def get_suspicion(session: Session, suspicion_id: str, *, for_update: bool = False) -> Suspicion:
    """Read one suspicion (no access check: ask the policy before answering).

    Raises:
        NotFoundError: no such suspicion (also what a caller the policy denies must get).
    """
    query = select(SuspicionRow).where(SuspicionRow.id == suspicion_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError("suspicion not found", reason="SUSPICION_NOT_FOUND")
    return _to_suspicion(row)


def _recipient_ids(session: Session, member_id: str, suspicion_ids: Collection[str]) -> set[str]:
    if not suspicion_ids:
        return set()
    return set(
        session.scalars(
            select(SuspicionRecipientRow.suspicion_id).where(
                SuspicionRecipientRow.member_id == member_id,
                SuspicionRecipientRow.suspicion_id.in_(list(suspicion_ids)),
            )
        )
    )


def _facts_for(
    session: Session, member_id: str, suspicions: Sequence[Suspicion]
) -> dict[str, RelationFacts]:
    recipient = _recipient_ids(session, member_id, [s.id for s in suspicions])
    covered = member_covers(
        session, member_id, [s.subject_beneficiary for s in suspicions if s.subject_beneficiary]
    )
    paid: dict[ProviderIds, bool] = {}
    out: dict[str, RelationFacts] = {}
    for s in suspicions:
        provider = _provider(s)
        if provider not in paid:
            paid[provider] = provider.any() and member_paid(session, member_id, provider)
        out[s.id] = {
            "principal_is_submitter": s.submitter_member == member_id,
            "principal_is_recipient": s.id in recipient,
            "principal_covers_beneficiary": s.subject_beneficiary is not None
            and s.subject_beneficiary in covered,
            "principal_paid_provider": paid[provider],
        }
    return out


def relation_facts(session: Session, suspicion: Suspicion, member_id: str) -> RelationFacts:
    """The object-level facts the policy needs for (member, suspicion) (``policy.RELATION_FACTS``).

    ``principal_covers_beneficiary`` comes from ``member_coverage`` and the member's own claim
    lines; ``principal_paid_provider`` from its claim lines naming the subject provider.
    """
    return _facts_for(session, member_id, [suspicion])[suspicion.id]


def _filters_digest(member_id: str, filters: Mapping[str, Any]) -> str:
    canonical = json.dumps({"m": member_id, **filters}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def list_suspicions(
    session: Session,
    member_id: str,
    *,
    may_see: MaySee,
    sector: str | None = None,
    statuses: Collection[str] = (),
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    beneficiaries: Collection[str] = (),
    page_size: int = 0,
    page_token: str = "",
    related_only: bool = True,
) -> tuple[list[Suspicion], str]:
    """One page of the suspicions ``member_id`` may see, newest first (AIP-158).

    Every candidate goes through ``may_see`` with its relation facts; a page token only ever
    names an item the member saw, and ``next_page_token`` is set only when at least one more
    visible item exists, so neither leaks records the member may not see.

    Args:
        session: the caller's session.
        member_id: the reader.
        may_see: the policy's per-item decision.
        sector, statuses, created_from, created_before: filters (``created_before`` exclusive).
        beneficiaries: restrict to these subject pseudonyms (all key versions of a token).
        page_size: 0 for the default (50); at most 500.
        page_token: ``""`` or the ``next_page_token`` of the same query.
        related_only: pre-filter in SQL to suspicions the member has a relation with (every
            shipped bundle requires one); pass ``False`` for a bundle that grants wider reads.

    Returns:
        The page's items and the next page token (``""`` on the last page).

    Raises:
        InvalidArgumentError: bad ``page_size``, ``sector``, ``statuses`` or ``page_token``
            (malformed, or issued for other filters).
    """
    if isinstance(page_size, bool) or not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgumentError.for_field("page_size", f"must be in 0..{MAX_PAGE_SIZE}")
    if sector is not None and sector not in ("optique", "audio", "dentaire"):
        raise InvalidArgumentError.for_field("sector", "must be one of optique, audio, dentaire")
    if any(s not in SUSPICION_STATUSES for s in statuses):
        raise InvalidArgumentError.for_field("status", "must be suspicion statuses")
    size = page_size or DEFAULT_PAGE_SIZE
    filters = {
        "sector": sector,
        "statuses": sorted(statuses),
        "from": created_from.isoformat() if created_from else None,
        "before": created_before.isoformat() if created_before else None,
        "beneficiaries": sorted(beneficiaries),
        "related": related_only,
    }
    digest = _filters_digest(member_id, filters)
    cursor: tuple[datetime, str] | None = None
    if page_token:
        parsed = decode_cursor(page_token)
        try:
            if parsed is None or parsed.get("v") != 1:
                raise ValueError
            cursor = (datetime.fromisoformat(str(parsed["c"])), str(parsed["i"]))
            if cursor[0].tzinfo is None:
                raise ValueError
        except (KeyError, ValueError):
            raise InvalidArgumentError.for_field("page_token", "malformed page token") from None
        if parsed.get("q") != digest:
            raise InvalidArgumentError.for_field(
                "page_token", "was issued for another query (member or filters differ)"
            )
    batch = min(max(2 * (size + 1), 50), MAX_PAGE_SIZE)
    visible: list[Suspicion] = []
    while len(visible) <= size:
        rows = suspicion_page(
            session,
            member_id=member_id,
            related_only=related_only,
            after=cursor,
            limit=batch,
            sector=sector,
            statuses=statuses,
            created_from=created_from,
            created_before=created_before,
            beneficiaries=beneficiaries,
        )
        if not rows:
            break
        suspicions = [_to_suspicion(r) for r in rows]
        facts = _facts_for(session, member_id, suspicions)
        for s in suspicions:
            if may_see(s, dict(facts[s.id])):
                visible.append(s)
                if len(visible) > size:
                    break
        cursor = (rows[-1].created_at, rows[-1].id)
        if len(rows) < batch:
            break
    items = visible[:size]
    next_token = ""
    if len(visible) > size:
        last = items[-1]
        next_token = encode_cursor(
            {"v": 1, "c": last.created_at.isoformat(), "i": last.id, "q": digest}
        )
    return items, next_token


def transition_suspicion(
    session: Session,
    suspicion_id: str,
    to: str,
    actor: Member,
    reason: str | None,
    envelope: Envelope,
    now: datetime,
    *,
    actor_principal: str = "",
) -> tuple[Suspicion, Transition]:
    """Move a stored suspicion (row locked) and record who, when and why (reason sealed).

    ``actor_principal`` is the certificate subject of the caller (kept with the member id).

    The caller asked the policy first (action ``TransitionSuspicion``); after a move to a
    sharing status it calls :func:`distribute`, after dismissed/cleared :func:`retract`
    (or :func:`apply_transition`, which does all three).

    Raises:
        NotFoundError: no such suspicion.
        InvalidArgumentError: ``to`` is not a status, or the reason is malformed.
        FailedPreconditionError: the move is illegal from the current status.
    """
    current = get_suspicion(session, suspicion_id, for_update=True)
    moved, record = transition(
        current, to, actor.member_id, actor.kind, reason, now, actor_principal=actor_principal
    )
    row = session.get(SuspicionRow, suspicion_id)
    assert row is not None
    row.status = moved.status
    row.updated_at = now
    row.outcome = moved.outcome
    row.decided_at = moved.decided_at
    row.cleared_at = moved.cleared_at
    row.closed_at = moved.closed_at
    t = SuspicionTransitionRow(
        suspicion_id=suspicion_id,
        from_status=record.from_status,
        to_status=record.to_status,
        actor_member=record.actor_member,
        actor_kind=record.actor_kind,
        reason_sealed=None,
        at=now,
        actor_principal=actor_principal or None,
    )
    session.add(t)
    session.flush()
    if reason is not None:
        t.reason_sealed = envelope.seal(
            reason.encode("utf-8"), field_aad(suspicion_id, f"transitions.{t.id}.reason")
        ).to_text()
        session.flush()
    return moved, record


def transitions_of(session: Session, suspicion: Suspicion, envelope: Envelope) -> list[Transition]:
    """The suspicion's lifecycle history, oldest first, reasons opened (``None`` once erased).

    Raises:
        TamperedCiphertextError: a sealed reason does not authenticate.
    """
    rows = session.scalars(
        select(SuspicionTransitionRow)
        .where(SuspicionTransitionRow.suspicion_id == suspicion.id)
        .order_by(SuspicionTransitionRow.id)
    ).all()
    out: list[Transition] = []
    for r in rows:
        reason = None
        if r.reason_sealed is not None:
            aad = field_aad(suspicion.id, f"transitions.{r.id}.reason")
            reason = envelope.open(Sealed.from_text(r.reason_sealed), aad).decode("utf-8")
        out.append(
            Transition.model_validate(
                {
                    "suspicion_id": suspicion.id,
                    "from_status": r.from_status,
                    "to_status": r.to_status,
                    "actor_member": r.actor_member,
                    "actor_kind": r.actor_kind,
                    "reason": reason,
                    "at": r.at,
                    "actor_principal": r.actor_principal or "",
                },
                strict=False,
            )
        )
    return out


def open_facts(suspicion: Suspicion, envelope: Envelope) -> str | None:
    """The facts summary in clear, or ``None`` once erased.

    Raises:
        TamperedCiphertextError: the sealed value does not authenticate for this record.
    """
    if suspicion.facts_sealed is None:
        return None
    aad = field_aad(suspicion.id, FACTS_FIELD)
    return envelope.open(Sealed.from_text(suspicion.facts_sealed), aad).decode("utf-8")


def open_evidence(suspicion: Suspicion, envelope: Envelope) -> list[str]:
    """The evidence references in clear (empty once erased).

    Raises:
        TamperedCiphertextError: the sealed value does not authenticate for this record.
    """
    if suspicion.evidence_sealed is None:
        return []
    aad = field_aad(suspicion.id, EVIDENCE_FIELD)
    refs = json.loads(envelope.open(Sealed.from_text(suspicion.evidence_sealed), aad))
    return [str(r) for r in refs]


def suspicion_fields(
    session: Session,
    suspicion: Suspicion,
    wanted: Collection[str],
    envelope: Envelope,
    *,
    own_reference: str | None,
) -> dict[str, Any]:
    """Every field name of the bundles' suspicion views that ``wanted`` asks for, JSON-ready.

    Sealed fields are opened only when wanted. Datetimes are ISO 8601 strings.
    """
    fields: dict[str, Any] = {
        "id": suspicion.id,
        "status": suspicion.status,
        "sector": suspicion.sector,
        "fraud_type": suspicion.fraud_type,
        "subject_beneficiary": suspicion.subject_beneficiary,
        "subject_provider_rpps": suspicion.subject_provider_rpps,
        "subject_provider_am_number": suspicion.subject_provider_am_number,
        "subject_provider_finess": suspicion.subject_provider_finess,
        "estimated_amount_cents": suspicion.estimated_amount_cents,
        "act_grouping_codes": list(suspicion.act_grouping_codes),
        "act_codes": list(suspicion.act_codes),
        "submitter_member": suspicion.submitter_member,
        "submitter_kind": suspicion.submitter_kind,
        "own_reference": own_reference,
        "created_at": suspicion.created_at.isoformat(),
        "updated_at": suspicion.updated_at.isoformat(),
    }
    if "facts_summary" in wanted:
        fields["facts_summary"] = open_facts(suspicion, envelope)
    if "evidence_refs" in wanted:
        fields["evidence_refs"] = open_evidence(suspicion, envelope)
    if "transitions" in wanted:
        fields["transitions"] = [
            {
                "from_status": t.from_status,
                "to_status": t.to_status,
                "actor_member": t.actor_member,
                "actor_kind": t.actor_kind,
                "actor_principal": t.actor_principal,
                "reason": t.reason,
                "at": t.at.isoformat(),
            }
            for t in transitions_of(session, suspicion, envelope)
        ]
    return {k: v for k, v in fields.items() if k in wanted}


def minimised_view(
    session: Session,
    suspicion: Suspicion,
    reader: Member,
    engine: PolicyEngine,
    purpose: str,
    envelope: Envelope,
    *,
    own_reference: str | None,
    view: Collection[str] | None = None,
) -> dict[str, Any]:
    """The fields ``reader`` may receive (bundle view for its kind and purpose), minimised.

    ``view``, when given, is the view of the policy decision that allowed this read (it is
    intersected with the bundle's view, never widened). An AMC never learns another AMC's
    identity: a suspicion submitted by another AMC loses ``submitter_member`` whatever the view
    says (DESIGN invariant).
    """
    allowed = engine.view("suspicion", reader.kind, purpose)
    if view is not None:
        allowed = allowed & frozenset(view)
    fields = suspicion_fields(session, suspicion, allowed, envelope, own_reference=own_reference)
    out = {k: v for k, v in fields.items() if k in allowed}
    if (
        reader.kind == "AMC"
        and suspicion.submitter_kind == "AMC"
        and suspicion.submitter_member != reader.member_id
    ):
        out.pop("submitter_member", None)
    if reader.kind == "AMC" and "transitions" in out:
        # Same invariant for the lifecycle: another AMC's moves keep their status and time only.
        out["transitions"] = [
            t
            if t["actor_kind"] != "AMC" or t["actor_member"] == reader.member_id
            else {**t, "actor_member": None, "actor_principal": None, "reason": None}
            for t in out["transitions"]
        ]
    return out


def suspicion_view(
    session: Session,
    suspicion: Suspicion,
    reader: Member,
    engine: PolicyEngine,
    purpose: str,
    envelope: Envelope,
    *,
    view: Collection[str] | None = None,
) -> dict[str, Any]:
    """What GetSuspicion/ListSuspicions return to ``reader`` once the policy allowed it.

    ``own_reference`` is the reader's own reference (:func:`own_reference`), absent when it
    has none. ``view``: the allowing decision's view (see :func:`minimised_view`).

    Raises:
        TamperedCiphertextError: a sealed field does not authenticate.
    """
    own = own_reference(session, suspicion, reader.member_id)
    out = minimised_view(
        session, suspicion, reader, engine, purpose, envelope, own_reference=own, view=view
    )
    if own is None:
        out.pop("own_reference", None)
    return out


def own_reference(session: Session, suspicion: Suspicion, member_id: str) -> str | None:
    """The member's own reference to a suspicion, never another member's.

    The submitter's case reference for the submitter; for a recipient, the case reference it
    attached when acknowledging, else the random reference the gateway gave it when sharing;
    ``None`` for anyone else.
    """
    if suspicion.submitter_member == member_id:
        return suspicion.case_reference
    row = session.execute(
        select(SuspicionRecipientRow.case_reference, SuspicionRecipientRow.reference).where(
            SuspicionRecipientRow.suspicion_id == suspicion.id,
            SuspicionRecipientRow.member_id == member_id,
        )
    ).one_or_none()
    if row is None:
        return None
    attached: str | None = row.case_reference
    return attached or str(row.reference)


def declare_coverage(
    session: Session, member_id: str, pseudonyms: Collection[str], now: datetime
) -> int:
    """Record that ``member_id`` covers these beneficiaries (second-level pseudonyms).

    Returns:
        How many were new (declaring one twice changes nothing).

    Raises:
        InvalidArgumentError: a pseudonym is empty or longer than 128 characters.
    """
    wanted = sorted(set(pseudonyms))
    if any(not p or len(p) > 128 for p in wanted):
        raise InvalidArgumentError.for_field("beneficiaries", "must be pseudonyms (1..128 chars)")
    if not wanted:
        return 0
    known = set(
        session.scalars(
            select(MemberCoverageRow.beneficiary).where(
                MemberCoverageRow.member_id == member_id,
                MemberCoverageRow.beneficiary.in_(wanted),
            )
        )
    )
    fresh = [p for p in wanted if p not in known]
    session.add_all(
        MemberCoverageRow(member_id=member_id, beneficiary=p, declared_at=now) for p in fresh
    )
    session.flush()
    return len(fresh)


def withdraw_coverage(session: Session, member_id: str, pseudonyms: Collection[str]) -> int:
    """Forget that ``member_id`` covers these beneficiaries; returns how many were removed."""
    wanted = list(set(pseudonyms))
    if not wanted:
        return 0
    rows = session.scalars(
        select(MemberCoverageRow).where(
            MemberCoverageRow.member_id == member_id,
            MemberCoverageRow.beneficiary.in_(wanted),
        )
    ).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)
