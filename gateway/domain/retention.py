"""The retention purge of the suspicion exchange (``vigie retention run``, and periodically).

Periods come from the loaded policy bundle (``retention:`` in ``bundle.yaml``), so a new decree
changes them without new code, and a shortened period applies at the next run. Rules, each
with its bundle category (DOMAIN.md §1, retention table):

1. ``alert_not_qualified`` (CNIL AU-039: qualify within 6 months, else delete): a suspicion
   still ``submitted`` that long after its creation is deleted; any recipient is told first.
2. ``not_relevant_or_cleared`` (AU-039; draft L.114-9-1 "deleted immediately when the person is
   cleared"): the payload of a cleared suspicion is erased (normally already done by
   :func:`~gateway.domain.suspicions.retract`) and every recipient told; the payload-free
   tombstone is deleted once the period elapsed and every recipient acknowledged the
   retraction, and at the latest after ``closed_without_action``.
3. ``closed_without_action`` (décret 2015-389: dismissed, closed without action: 1 year): a
   dismissed suspicion (closed or not) is deleted that long after the dismissal.
4. ``final_decision`` (décret 2015-389; AU-039: 5 years after the decision): a confirmed
   suspicion is deleted that long after it was closed; while it is open the action goes on.
5. Acknowledged notifications older than ``acknowledged_notification_days`` are deleted.

The run returns a :class:`PurgeReport` (counts and opaque ids, no personal data) and records it
in ``retention_runs``. :func:`run_retention_journaled` (what ``vigie retention run`` and the
server's periodic job call) also journals it, in the same transaction: an event
``suspicions.retention`` naming the suspicions deleted or erased (DESIGN flow 6: the purge is
itself journaled).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from gateway.crypto import Envelope
from gateway.domain._suspicion_exchange import enqueue_notification, retract
from gateway.domain._suspicion_records import get_suspicion
from gateway.store import AccessEvent, SqlAuditStore
from gateway.store._suspicions import delete_suspicion_rows, erase_suspicion_payload
from gateway.store._suspicions_models import (
    NotificationRow,
    RetentionRunRow,
    SuspicionRecipientRow,
    SuspicionRow,
)
from policy import PolicyEngine

__all__ = [
    "DEFAULT_ACKNOWLEDGED_NOTIFICATION_DAYS",
    "RETENTION_METHOD",
    "PurgeReport",
    "run_retention",
    "run_retention_journaled",
]

RETENTION_METHOD: Final = "suspicions.retention"
"""The journal ``method`` of a retention run's event."""

DEFAULT_ACKNOWLEDGED_NOTIFICATION_DAYS: Final = 30
_CATEGORIES: Final = (
    "alert_not_qualified",
    "not_relevant_or_cleared",
    "closed_without_action",
    "final_decision",
)


class PurgeReport(BaseModel):
    """What one retention run deleted (suspicion ids are random and carry no personal data).

    Attributes:
        ran_at: the run's reference time.
        bundle_name, bundle_hash: the bundle whose periods applied.
        deleted: retention category -> ids of the suspicions deleted under it.
        erased: ids of suspicions whose payload this run erased (clearance not yet applied).
        retractions_sent: retractions this run had to send before deleting.
        notifications_deleted: acknowledged notifications deleted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    ran_at: datetime
    bundle_name: str
    bundle_hash: str
    deleted: dict[str, tuple[str, ...]]
    erased: tuple[str, ...]
    retractions_sent: int
    notifications_deleted: int

    @property
    def deleted_ids(self) -> tuple[str, ...]:
        """Every suspicion id deleted, sorted."""
        return tuple(sorted(i for ids in self.deleted.values() for i in ids))

    def counts(self) -> dict[str, int]:
        """Per-category counts plus erased, retractions and notifications (for the journal)."""
        out = {k: len(v) for k, v in self.deleted.items()}
        out["erased"] = len(self.erased)
        out["retractions_sent"] = self.retractions_sent
        out["notifications_deleted"] = self.notifications_deleted
        return out


def _ids(session: Session, *where: sa.ColumnElement[bool]) -> list[str]:
    return list(session.scalars(sa.select(SuspicionRow.id).where(*where).order_by(SuspicionRow.id)))


def _unacknowledged_retractions(session: Session, suspicion_id: str) -> bool:
    query = sa.select(sa.literal(1)).where(
        SuspicionRecipientRow.suspicion_id == suspicion_id,
        SuspicionRecipientRow.retraction_acknowledged_at.is_(None),
    )
    return session.scalar(query.limit(1)) is not None


def run_retention(
    session: Session,
    engine: PolicyEngine,
    envelope: Envelope,
    now: datetime,
    *,
    acknowledged_notification_days: int = DEFAULT_ACKNOWLEDGED_NOTIFICATION_DAYS,
) -> PurgeReport:
    """Apply the bundle's retention periods to suspicions and notifications (numbered above).

    Runs in the caller's transaction; journal the returned report in the same one.

    Raises:
        ValueError: ``acknowledged_notification_days`` is negative.
        EvaluationError: the bundle lacks a retention category (a broken bundle).
    """
    if acknowledged_notification_days < 0:
        raise ValueError("acknowledged_notification_days must be >= 0")
    period = {c: engine.retention(c) for c in _CATEGORIES}
    deleted: dict[str, list[str]] = {c: [] for c in _CATEGORIES}
    erased: list[str] = []
    retractions = 0
    # 1. Not qualified in time: tell any recipient (a bundle may share at "submitted"), delete.
    for sid in _ids(
        session,
        SuspicionRow.status == "submitted",
        SuspicionRow.created_at <= now - period["alert_not_qualified"],
    ):
        rows = session.scalars(
            sa.select(SuspicionRecipientRow).where(
                SuspicionRecipientRow.suspicion_id == sid,
                SuspicionRecipientRow.retracted_at.is_(None),
            )
        ).all()
        for r in rows:
            payload = {"id": sid, "own_reference": r.reference, "status": "deleted"}
            enqueue_notification(session, r.member_id, "RETRACTED", sid, payload, envelope, now)
            retractions += 1
        deleted["alert_not_qualified"].append(sid)
    # 2. Cleared: erase at once (safety net), tell recipients, delete the tombstone when due.
    for sid in _ids(session, SuspicionRow.cleared_at.is_not(None)):
        row = session.get(SuspicionRow, sid)
        assert row is not None and row.cleared_at is not None
        if row.erased_at is None:
            erased.append(sid)
        retractions += len(retract(session, get_suspicion(session, sid), envelope, now))
        if row.erased_at is None:
            erase_suspicion_payload(session, sid, now)
        due = row.cleared_at + period["not_relevant_or_cleared"] <= now
        late = row.cleared_at + period["closed_without_action"] <= now
        if (due and not _unacknowledged_retractions(session, sid)) or late:
            deleted["not_relevant_or_cleared"].append(sid)
    # 3. Dismissed (closed or not): retraction safety net, then delete after the period.
    for sid in _ids(session, SuspicionRow.outcome == "dismissed"):
        row = session.get(SuspicionRow, sid)
        assert row is not None and row.decided_at is not None
        retractions += len(retract(session, get_suspicion(session, sid), envelope, now))
        if row.decided_at + period["closed_without_action"] <= now:
            deleted["closed_without_action"].append(sid)
    # 4. Final decision: closed after confirmation, kept five years after the closing.
    deleted["final_decision"] = _ids(
        session,
        SuspicionRow.outcome == "confirmed",
        SuspicionRow.closed_at.is_not(None),
        SuspicionRow.closed_at <= now - period["final_decision"],
    )
    delete_suspicion_rows(session, [i for ids in deleted.values() for i in ids])
    # 5. Acknowledged notifications past their keep period.
    cutoff = now - timedelta(days=acknowledged_notification_days)
    result = session.execute(
        sa.delete(NotificationRow).where(
            NotificationRow.acknowledged_at.is_not(None), NotificationRow.acknowledged_at <= cutoff
        )
    )
    report = PurgeReport(
        ran_at=now,
        bundle_name=engine.bundle_name,
        bundle_hash=engine.bundle_hash,
        deleted={c: tuple(ids) for c, ids in deleted.items()},
        erased=tuple(erased),
        retractions_sent=retractions,
        notifications_deleted=int(getattr(result, "rowcount", 0) or 0),
    )
    session.add(
        RetentionRunRow(
            ran_at=now,
            bundle_name=engine.bundle_name,
            bundle_hash=engine.bundle_hash,
            report={"counts": report.counts(), "deleted": {c: list(v) for c, v in deleted.items()}},
        )
    )
    session.flush()
    return report


def run_retention_journaled(
    session: Session,
    engine: PolicyEngine,
    envelope: Envelope,
    now: datetime,
    *,
    principal: str = "vigie-retention",
    acknowledged_notification_days: int = DEFAULT_ACKNOWLEDGED_NOTIFICATION_DAYS,
) -> tuple[PurgeReport, int]:
    """Run :func:`run_retention` and journal what it did, in the caller's transaction.

    Steps:
    1. apply the bundle's retention periods (:func:`run_retention`);
    2. append one journal event ``suspicions.retention`` (decision allow, purpose
       ``operations``): the retention categories that deleted or erased something as rule ids,
       the bundle hash, and the opaque ids of the suspicions deleted or erased as its records
       (no personal data: ids are random). Both commit together or not at all.

    Returns:
        The report and the journal sequence number of its event.

    Raises:
        ValueError: ``acknowledged_notification_days`` is negative.
        EvaluationError: the bundle lacks a retention category (a broken bundle).
    """
    report = run_retention(
        session,
        engine,
        envelope,
        now,
        acknowledged_notification_days=acknowledged_notification_days,
    )  # 1
    touched = sorted(set(report.deleted_ids) | set(report.erased))
    categories = [c for c in _CATEGORIES if report.deleted[c]]
    if report.erased and "not_relevant_or_cleared" not in categories:
        categories.append("not_relevant_or_cleared")
    seq = SqlAuditStore().append(
        session,
        AccessEvent(
            time=now,
            principal=principal,
            method=RETENTION_METHOD,
            purpose="operations",
            decision="allow",
            rule_ids=tuple(f"retention.{c}" for c in categories),
            bundle_hash=engine.bundle_hash,
            outcome="OK",
            record_count=len(touched),
            record_refs=tuple(f"suspicions/{i}" for i in touched),
        ),
    )  # 2
    return report, seq
