"""The journal's own retention: erase personal fields of old events, keep every proof valid.

Access logs may keep personal data (record references, subject pseudonyms) 6 to 12 months, up to
3 years if justified (CNIL recommendation 2021-122; DOMAIN.md §1). The journal itself must stay
verifiable longer, so (ADR 0003 §5)::

    1. delete the ``journal_personal`` rows (salt and fields) of events older than the cutoff;
       their ``journal_subjects`` index rows go with them (ON DELETE CASCADE), so the erased
       events are no longer found "by person";
    2. keep ``journal_events`` untouched: the leaf covers the salted commitment, not the fields,
       so every inclusion and consistency proof still verifies, and without the salt the erased
       values can no longer be confirmed by guessing;
    3. journal the erasure itself (DESIGN.md flow 6: a purge is journaled), in the same
       transaction: an event ``journal.erase``, decision allow, ``record_count`` = rows erased,
       plus a ``journal_erasures`` row with the cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from gateway.errors import InvalidArgumentError
from gateway.journal._sql import JournalErasureRow
from gateway.store._journal import AccessEvent, SqlAuditStore
from gateway.store._models import JournalEventRow, JournalPersonalRow

__all__ = ["ERASE_METHOD", "MIN_RETENTION", "erase_personal_before", "retention_cutoff"]

ERASE_METHOD: Final = "journal.erase"
MIN_RETENTION: Final = timedelta(days=182)
"""Six months: the lower bound of CNIL recommendation 2021-122 for access logs."""


def retention_cutoff(retention: timedelta, now: datetime | None = None) -> datetime:
    """The cutoff for a retention period: events strictly older are erased.

    Raises:
        InvalidArgumentError: ``retention`` is shorter than six months (CNIL 2021-122 keeps
            access logs at least that long so that abuses can be detected).
    """
    if retention < MIN_RETENTION:
        raise InvalidArgumentError.for_field("retention", "must be at least six months")
    return (now or datetime.now(UTC)) - retention


def erase_personal_before(
    session: Session,
    cutoff: datetime,
    *,
    principal: str = "vigie-retention",
    rule_ids: Sequence[str] = (),
    bundle_hash: str = "",
    now: datetime | None = None,
) -> int:
    """Erase salt and personal fields of every event older than ``cutoff``; journal it.

    Runs in the caller's transaction: the erasure and its journal event commit together.

    Args:
        session: an open session (the erasure commits with it).
        cutoff: events with ``time < cutoff`` lose their personal fields.
        principal: who runs the erasure (recorded in its journal event).
        rule_ids: the retention rule(s) of the policy bundle that require it.
        bundle_hash: the policy bundle's content hash.
        now: the time of the erasure (default: now).

    Returns:
        How many events had their personal fields erased (0 when nothing was left to erase).

    Raises:
        InvalidArgumentError: ``cutoff`` is naive or in the future.
    """
    moment = now or datetime.now(UTC)
    if cutoff.utcoffset() is None:
        raise InvalidArgumentError.for_field("cutoff", "must be timezone-aware")
    if cutoff > moment:
        raise InvalidArgumentError.for_field("cutoff", "must not be in the future")
    # Step 1. Salt and fields of old events (their subject index rows cascade).
    old = select(JournalEventRow.seq).where(JournalEventRow.time < cutoff)
    result = session.execute(
        delete(JournalPersonalRow).where(JournalPersonalRow.seq.in_(old)),
        execution_options={"synchronize_session": False},
    )
    count = max(0, cast(CursorResult[Any], result).rowcount)
    # Step 2 needs nothing: journal_events rows and the tree are untouched.
    # Step 3. The erasure is itself journaled, in the same transaction.
    seq = SqlAuditStore().append(
        session,
        AccessEvent(
            time=moment,
            principal=principal,
            method=ERASE_METHOD,
            purpose="operations",
            decision="allow",
            rule_ids=tuple(rule_ids),
            bundle_hash=bundle_hash,
            outcome="OK",
            record_count=count,
        ),
    )
    session.add(
        JournalErasureRow(event_seq=seq, cutoff=cutoff, erased_count=count, erased_at=moment)
    )
    session.flush()
    return count
