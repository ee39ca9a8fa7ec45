"""Who may see which journal event: the relation facts the policy decides on, per event.

A compliance officer audits its own member's accesses and the accesses to its own records and
insured (policy rule ``common-compliance-read-event``), never another AMC's accesses
(``common-amc-never-sees-other-amc-access``). For each event the gateway computes, for the
calling member (``policy.RELATION_FACTS``)::

    actor_kind                   kind of the member that made the journaled call ("AMO",
                                 "AMC", or "none" for a call that was never authenticated)
    principal_is_actor           the caller made the journaled call
    principal_is_submitter       the event touched a record the caller owns: its own member
                                 entry (``members/{caller}``) or a suspicion it submitted
    principal_is_recipient       the event touched a suspicion distributed to the caller
    principal_covers_beneficiary the event names a beneficiary pseudonym the caller covers
                                 (declared coverage or its own claim lines)

Facts come from the event's personal fields: once retention erased them only
``principal_is_actor`` can still hold, so old events are visible to their actor alone.
Computed per batch of events in a few indexed queries, in the caller's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.journal.queries import JournalRecord
from gateway.store._members import SqlMemberRegistry
from gateway.store._suspicions import member_covers
from gateway.store._suspicions_models import SuspicionRecipientRow, SuspicionRow

__all__ = ["NO_ACTOR_KIND", "event_attributes"]

NO_ACTOR_KIND: Final = "none"
_SUSPICION: Final = "suspicions/"
_MEMBER: Final = "members/"


def _suspicion_ids(records: Sequence[JournalRecord]) -> set[str]:
    return {
        ref.removeprefix(_SUSPICION)
        for r in records
        if r.personal is not None
        for ref in r.personal.record_refs
        if ref.startswith(_SUSPICION)
    }


def event_attributes(
    session: Session, member_id: str, records: Sequence[JournalRecord]
) -> list[dict[str, Any]]:
    """The policy attributes of each event for ``member_id`` (same order as ``records``).

    Returns:
        One dict per record: ``actor_kind`` plus the relation facts named in the module
        docstring (all booleans).
    """
    # 1. Actor kinds from the member registry (one read; members are few).
    kinds = {m.member_id: m.kind for m in SqlMemberRegistry().all(session)}
    # 2. Suspicions the events touched: which the caller submitted, which it received.
    ids = sorted(_suspicion_ids(records))
    submitted: set[str] = set()
    received: set[str] = set()
    if ids:
        submitted = set(
            session.scalars(
                select(SuspicionRow.id).where(
                    SuspicionRow.id.in_(ids), SuspicionRow.submitter_member == member_id
                )
            )
        )
        received = set(
            session.scalars(
                select(SuspicionRecipientRow.suspicion_id).where(
                    SuspicionRecipientRow.suspicion_id.in_(ids),
                    SuspicionRecipientRow.member_id == member_id,
                )
            )
        )
    # 3. Beneficiaries the caller covers, among every pseudonym the events name.
    pseudonyms = {
        p for r in records if r.personal is not None for p in r.personal.subject_pseudonyms
    }
    covered = member_covers(session, member_id, pseudonyms) if pseudonyms else set()
    out: list[dict[str, Any]] = []
    for r in records:
        refs = r.personal.record_refs if r.personal is not None else ()
        subjects = r.personal.subject_pseudonyms if r.personal is not None else ()
        suspicions = {ref.removeprefix(_SUSPICION) for ref in refs if ref.startswith(_SUSPICION)}
        out.append(
            {
                "actor_kind": kinds.get(r.event.member_id, NO_ACTOR_KIND),
                "principal_is_actor": bool(member_id) and r.event.member_id == member_id,
                "principal_is_submitter": f"{_MEMBER}{member_id}" in refs
                or bool(suspicions & submitted),
                "principal_is_recipient": bool(suspicions & received),
                "principal_covers_beneficiary": any(p in covered for p in subjects),
            }
        )
    return out
