"""Distribution, retraction and the members' notification outbox.

- :func:`distribute`: once a suspicion reaches the bundle's sharing threshold, every member
  the policy entitles (need-to-know, decided by Cedar with action ``StreamNotifications``) gets
  a recipient row with a reference of its own and a ``SHARED`` notification carrying the
  minimised view for its kind and purpose (DESIGN flow 5).
- :func:`retract`: a dismissed or cleared suspicion sends ``RETRACTED`` to every recipient,
  online or not; clearance deletes the payload at once (draft L.114-9-1; CNIL AU-039).
- :func:`notifications_after` / :func:`acknowledge` / :func:`resume_position`: the outbox is
  durable; members resume after the last sequence they processed and acknowledge each one.

Payloads are sealed at rest (AES-256-GCM, bound to the member, subject and kind): a view for an
AMO may carry the facts summary, which never sits in clear in the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from gateway.crypto import Envelope, Sealed, field_aad
from gateway.domain._suspicion_model import (
    ERASED_STATUSES,
    RETRACTING_STATUSES,
    Suspicion,
    Transition,
    check_case_reference,
    new_opaque_id,
)
from gateway.domain._suspicion_records import (
    get_suspicion,
    minimised_view,
    relation_facts,
    transition_suspicion,
)
from gateway.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from gateway.store import Member
from gateway.store._suspicions import erase_suspicion_payload, insert_notification
from gateway.store._suspicions_models import (
    NotificationRow,
    SuspicionRecipientRow,
    SuspicionRow,
)
from policy import AccessRequest, PolicyEngine, Principal, Resource

__all__ = [
    "DISTRIBUTION_ACTION",
    "NOTIFICATION_KINDS",
    "Notification",
    "NotificationKind",
    "acknowledge",
    "apply_transition",
    "distribute",
    "enqueue_notification",
    "notification_of",
    "notifications_after",
    "resume_position",
    "retract",
]

NotificationKind = Literal["SHARED", "RETRACTED", "ALERT"]
NOTIFICATION_KINDS: Final = ("SHARED", "RETRACTED", "ALERT")
DISTRIBUTION_ACTION: Final = "StreamNotifications"
"""The Cedar action asked for each candidate recipient (reading the suspicion as a stream)."""
MAX_NOTIFICATIONS_PAGE: Final = 1000


class Notification(BaseModel):
    """One outbox entry. ``payload`` is ``None`` once erased (clearance, purge) or not opened."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sequence: int
    member_id: str
    kind: NotificationKind
    subject_ref: str
    payload: dict[str, Any] | None
    created_at: datetime
    acknowledged_at: datetime | None

    def __repr__(self) -> str:
        return f"Notification({self.sequence}, {self.kind}, {self.subject_ref})"


def _aad(member_id: str, subject_ref: str, kind: str) -> bytes:
    return field_aad(f"{member_id}/{subject_ref}", f"notification.{kind}")


def enqueue_notification(
    session: Session,
    member_id: str,
    kind: NotificationKind,
    subject_ref: str,
    payload: Mapping[str, Any],
    envelope: Envelope,
    now: datetime,
) -> int:
    """Append a notification (payload already minimised by the caller) to a member's outbox.

    Alerts use it with kind ``ALERT`` and the alert id as ``subject_ref``.

    Returns:
        The notification's sequence.

    Raises:
        InvalidArgumentError: unknown kind.
    """
    if kind not in NOTIFICATION_KINDS:
        raise InvalidArgumentError.for_field("kind", "must be SHARED, RETRACTED or ALERT")
    body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode("utf-8")
    sealed = envelope.seal(body, _aad(member_id, subject_ref, kind)).to_text()
    return insert_notification(
        session, member_id=member_id, kind=kind, subject_ref=subject_ref, payload=sealed, now=now
    )


def _entitled(
    engine: PolicyEngine,
    member: Member,
    suspicion: Suspicion,
    facts: Mapping[str, bool],
    purpose: str,
) -> bool:
    request = AccessRequest(
        principal=Principal(member_id=member.member_id, kind=member.kind, roles=member.roles),
        action=DISTRIBUTION_ACTION,
        purpose=purpose,
        resource=Resource(
            type="suspicion",
            id=suspicion.id,
            attributes={**suspicion.policy_attributes(), **facts},
        ),
    )
    return engine.decide(request).allowed


def distribute(
    session: Session,
    suspicion: Suspicion,
    engine: PolicyEngine,
    members: Sequence[Member],
    envelope: Envelope,
    now: datetime,
    *,
    purpose: str = "control",
) -> list[str]:
    """Share a suspicion that reached the sharing threshold with every entitled member.

    Steps (DESIGN flow 5; bundle ``sharing_threshold``; issue 4 "Distribution"):
    1. re-read the suspicion with its row locked; below the threshold nothing happens;
    2. candidates: active members other than the submitter that are not yet recipients;
    3. each candidate's relation facts go to the policy (action ``StreamNotifications``,
       ``principal_is_recipient`` false): allowed means entitled by need-to-know;
    4. each entitled member gets a recipient row with a random reference of its own and a
       ``SHARED`` notification with the view minimised for its kind and ``purpose``, carrying
       that reference; no view names the other recipients.

    Calling it again (after a later transition or new coverage) only reaches new members.

    Returns:
        The ids of the members newly reached, sorted.
    """
    current = get_suspicion(session, suspicion.id, for_update=True)  # 1
    if not engine.threshold_met(current.policy_attributes()):
        return []
    already = set(
        session.scalars(
            sa.select(SuspicionRecipientRow.member_id).where(
                SuspicionRecipientRow.suspicion_id == current.id
            )
        )
    )
    reached: list[str] = []
    for member in sorted(members, key=lambda m: m.member_id):  # 2
        if (
            not member.active
            or member.member_id == current.submitter_member
            or member.member_id in already
        ):
            continue
        facts = relation_facts(session, current, member.member_id)
        facts["principal_is_recipient"] = False
        if not _entitled(engine, member, current, facts, purpose):  # 3
            continue
        reference = new_opaque_id("r")  # 4
        session.add(
            SuspicionRecipientRow(
                suspicion_id=current.id,
                member_id=member.member_id,
                reference=reference,
                recipient_kind=member.kind,
                shared_at=now,
                retracted_at=None,
                retraction_acknowledged_at=None,
            )
        )
        view = minimised_view(
            session, current, member, engine, purpose, envelope, own_reference=reference
        )
        enqueue_notification(session, member.member_id, "SHARED", current.id, view, envelope, now)
        already.add(member.member_id)
        reached.append(member.member_id)
    session.flush()
    return reached


def retract(session: Session, suspicion: Suspicion, envelope: Envelope, now: datetime) -> list[str]:
    """Tell every recipient that a dismissed or cleared suspicion is withdrawn.

    Steps (DESIGN flow 6; CNIL AU-039 "tell every recipient"; draft L.114-9-1):
    1. re-read with the row locked; only dismissed or cleared suspicions (closed since or not)
       are retracted;
    2. every recipient not yet told gets a ``RETRACTED`` notification (id, its reference, the
       new status) whether or not it ever read its stream, and ``retracted_at`` is set;
    3. when the person is cleared, the payload is deleted at once: subject pseudonym, provider
       ids, sealed facts and evidence, act codes, transition reasons and the shared views.

    Returns:
        The ids of the members sent a retraction now, sorted.

    Raises:
        FailedPreconditionError: the suspicion was neither dismissed nor cleared.
    """
    current = get_suspicion(session, suspicion.id, for_update=True)  # 1
    if current.outcome not in RETRACTING_STATUSES:  # dismissed or cleared, then maybe closed
        raise FailedPreconditionError(
            f"only dismissed or cleared suspicions are retracted, not {current.status!r}",
            reason="NOT_RETRACTABLE",
        )
    rows = session.scalars(
        sa.select(SuspicionRecipientRow)
        .where(
            SuspicionRecipientRow.suspicion_id == current.id,
            SuspicionRecipientRow.retracted_at.is_(None),
        )
        .order_by(SuspicionRecipientRow.member_id)
    ).all()
    told: list[str] = []
    for row in rows:  # 2
        row.retracted_at = now
        payload = {"id": current.id, "own_reference": row.reference, "status": current.outcome}
        enqueue_notification(
            session, row.member_id, "RETRACTED", current.id, payload, envelope, now
        )
        told.append(row.member_id)
    if current.outcome in ERASED_STATUSES and current.erased_at is None:  # 3
        erase_suspicion_payload(session, current.id, now)
    session.flush()
    return told


def apply_transition(
    session: Session,
    suspicion_id: str,
    to: str,
    actor: Member,
    reason: str | None,
    *,
    engine: PolicyEngine,
    members: Sequence[Member],
    envelope: Envelope,
    now: datetime,
    purpose: str = "control",
    actor_principal: str = "",
) -> tuple[Suspicion, Transition, list[str]]:
    """Move a suspicion, then distribute or retract as the new status requires.

    Returns:
        The moved suspicion (re-read: erased after clearance), the transition, and the members
        notified (newly shared, or retracted).

    Raises:
        NotFoundError, InvalidArgumentError, FailedPreconditionError: see
            :func:`transition_suspicion`.
    """
    moved, record = transition_suspicion(
        session, suspicion_id, to, actor, reason, envelope, now, actor_principal=actor_principal
    )
    if moved.status in RETRACTING_STATUSES:
        notified = retract(session, moved, envelope, now)
    else:
        notified = distribute(session, moved, engine, members, envelope, now, purpose=purpose)
    return get_suspicion(session, suspicion_id), record, notified


def _notification(row: NotificationRow, envelope: Envelope | None) -> Notification:
    payload: dict[str, Any] | None = None
    if row.payload is not None and envelope is not None:
        sealed = Sealed.from_text(row.payload)
        body = envelope.open(sealed, _aad(row.member_id, row.subject_ref, row.kind))
        payload = json.loads(body)
    return Notification.model_validate(
        {
            "sequence": row.sequence,
            "member_id": row.member_id,
            "kind": row.kind,
            "subject_ref": row.subject_ref,
            "payload": payload,
            "created_at": row.created_at,
            "acknowledged_at": row.acknowledged_at,
        },
        strict=False,
    )


def notifications_after(
    session: Session, member_id: str, after_sequence: int, limit: int, envelope: Envelope
) -> list[Notification]:
    """The member's own notifications with a sequence above ``after_sequence``, in order.

    Raises:
        InvalidArgumentError: ``after_sequence`` negative or ``limit`` not in 1..1000.
        TamperedCiphertextError: a stored payload does not authenticate.
    """
    if isinstance(after_sequence, bool) or after_sequence < 0:
        raise InvalidArgumentError.for_field("after_sequence", "must be >= 0")
    if isinstance(limit, bool) or not 1 <= limit <= MAX_NOTIFICATIONS_PAGE:
        raise InvalidArgumentError.for_field("limit", f"must be in 1..{MAX_NOTIFICATIONS_PAGE}")
    rows = session.scalars(
        sa.select(NotificationRow)
        .where(NotificationRow.member_id == member_id, NotificationRow.sequence > after_sequence)
        .order_by(NotificationRow.sequence)
        .limit(limit)
    ).all()
    return [_notification(r, envelope) for r in rows]


def acknowledge(
    session: Session,
    member_id: str,
    sequence: int,
    now: datetime,
    *,
    case_reference: str | None = None,
) -> Notification:
    """Record that ``member_id`` processed its notification ``sequence`` (idempotent).

    Acknowledging a ``RETRACTED`` notification records the retraction's acknowledgement on the
    recipient row (issue 4: "whose acknowledgement is recorded"). The first acknowledgement
    time is kept. The returned notification carries no payload.

    ``case_reference`` (``SHARED`` only) is the recipient's own reference for the suspicion,
    returned to it from then on; it is not kept once the suspicion's payload was erased (the
    person is cleared) or the suspicion deleted.

    Raises:
        NotFoundError: no such notification for this member (another member's is not found).
        InvalidArgumentError: a ``case_reference`` for a notification that is not ``SHARED``,
            or a malformed one.
    """
    if case_reference is not None:
        check_case_reference(case_reference)
    row = session.scalars(
        sa.select(NotificationRow)
        .where(NotificationRow.sequence == sequence, NotificationRow.member_id == member_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError("notification not found", reason="NOTIFICATION_NOT_FOUND")
    if case_reference is not None:
        if row.kind != "SHARED":
            raise InvalidArgumentError.for_field(
                "case_reference", "only a SHARED notification takes a case reference"
            )
        shared = session.get(SuspicionRecipientRow, (row.subject_ref, member_id))
        target = session.get(SuspicionRow, row.subject_ref)
        if shared is not None and target is not None and target.erased_at is None:
            shared.case_reference = case_reference
    if row.acknowledged_at is None:
        row.acknowledged_at = now
    if row.kind == "RETRACTED":
        recipient = session.get(SuspicionRecipientRow, (row.subject_ref, member_id))
        if recipient is not None and recipient.retraction_acknowledged_at is None:
            recipient.retraction_acknowledged_at = now
    session.flush()
    return _notification(row, None)


def notification_of(session: Session, member_id: str, sequence: int) -> Notification:
    """One notification of ``member_id``'s own feed, without its payload.

    Raises:
        NotFoundError: no such notification for this member (another member's is not found).
    """
    row = session.scalars(
        sa.select(NotificationRow).where(
            NotificationRow.sequence == sequence, NotificationRow.member_id == member_id
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("notification not found", reason="NOTIFICATION_NOT_FOUND")
    return _notification(row, None)


def resume_position(session: Session, member_id: str) -> int:
    """The sequence to resume after: everything up to it is acknowledged (0 if nothing is).

    A stream that restarts from here loses nothing: the first unacknowledged notification and
    everything after it are delivered again.
    """
    first_open = session.scalar(
        sa.select(sa.func.min(NotificationRow.sequence)).where(
            NotificationRow.member_id == member_id, NotificationRow.acknowledged_at.is_(None)
        )
    )
    if first_open is not None:
        return int(first_open) - 1
    last = session.scalar(
        sa.select(sa.func.max(NotificationRow.sequence)).where(
            NotificationRow.member_id == member_id
        )
    )
    return int(last or 0)
