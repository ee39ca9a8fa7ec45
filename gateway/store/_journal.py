"""The append-only journal table: one row per call, allowed or refused.

This module only *records* events; the Merkle tree, checkpoints and proofs over these rows are
``gateway.journal``'s. Personal fields (record references, subject pseudonyms) go to a separate
table and the event row keeps their salted commitment (so retention can erase them later while
every proof still verifies).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from gateway.journal._canonical import PersonalFields, commit_personal
from gateway.store._models import JournalEventRow, JournalPersonalRow

__all__ = ["AccessEvent", "AuditStore", "SqlAuditStore"]


class AccessEvent(BaseModel):
    """What the gateway records about one call (DOMAIN.md §1: author, time, nature, records)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    member_id: str = ""
    principal: str = ""
    cert_fingerprint: str = ""
    method: str
    purpose: str = ""
    decision: Literal["allow", "deny"]
    rule_ids: tuple[str, ...] = ()
    bundle_hash: str = ""
    request_id: str = ""
    outcome: str = "OK"
    record_count: int = 0
    record_refs: tuple[str, ...] = ()
    subject_pseudonyms: tuple[str, ...] = ()


class AuditStore(Protocol):
    def append(self, session: Session, event: AccessEvent) -> int: ...


class SqlAuditStore:
    """Writes ``journal_events`` and ``journal_personal`` rows in the caller's transaction."""

    def append(self, session: Session, event: AccessEvent) -> int:
        """Insert one event; returns its sequence number. Commits with the caller's transaction."""
        # 1. Personal fields are committed to with a fresh 256-bit salt (issue 3: erasable fields).
        salt = os.urandom(32)
        personal = PersonalFields(
            record_refs=tuple(event.record_refs),
            subject_pseudonyms=tuple(event.subject_pseudonyms),
        )
        row = JournalEventRow(
            event_id=event.event_id,
            time=event.time,
            member_id=event.member_id,
            principal=event.principal,
            cert_fingerprint=event.cert_fingerprint,
            method=event.method,
            purpose=event.purpose,
            decision=event.decision,
            rule_ids=list(event.rule_ids),
            bundle_hash=event.bundle_hash,
            request_id=event.request_id,
            outcome=event.outcome,
            record_count=event.record_count,
            personal_commitment=commit_personal(personal, salt),
        )
        session.add(row)
        session.flush()
        # 2. The personal fields themselves, kept apart.
        session.add(
            JournalPersonalRow(
                seq=row.seq,
                salt=salt,
                record_refs=list(event.record_refs),
                subject_pseudonyms=list(event.subject_pseudonyms),
            )
        )
        session.flush()
        return row.seq

    def append_many(self, session: Session, events: Sequence[AccessEvent]) -> list[int]:
        return [self.append(session, e) for e in events]
