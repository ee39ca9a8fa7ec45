"""Idempotent writes (AIP-155): the first answer to (member, method, request id) is kept.

A retry with the same request id and the same request gets the stored answer and changes nothing;
the same request id with a different request is refused.

The stored answer is what the member was sent, so it may hold what is otherwise only stored
sealed (a suspicion's facts summary, for its AMO submitter). Therefore:

1. answers are sealed with AES-256-GCM (``gateway.crypto.Envelope``) bound to their key
   (member, method, request id), never stored in clear;
2. each answer names the resource it is about (``subject_ref``, e.g. ``suspicions/<id>``), so
   that erasing a resource (a cleared person: draft L.114-9-1, CNIL AU-039) also erases every
   stored answer about it (:meth:`IdempotencyStore.forget`). The key itself stays, so that a
   late retry of the write that made the resource is refused (FAILED_PRECONDITION
   ``ANSWER_ERASED``) instead of making it again.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.crypto import Envelope, Sealed, field_aad
from gateway.errors import FailedPreconditionError
from gateway.store._models import IdempotencyRow

__all__ = ["IdempotencyStore", "request_digest"]


def request_digest(request_bytes: bytes) -> str:
    return hashlib.sha256(request_bytes).hexdigest()


def _aad(member_id: str, method: str, request_id: str) -> bytes:
    return field_aad(f"{member_id}|{method}|{request_id}", "idempotency.response")


class IdempotencyStore:
    def __init__(self, envelope: Envelope) -> None:
        self._envelope = envelope

    def lookup(
        self, session: Session, member_id: str, method: str, request_id: str, digest: str
    ) -> bytes | None:
        """Return the stored answer, or None if this request id was never used.

        Raises:
            FailedPreconditionError: the request id was used for a different request.
        """
        row = session.get(IdempotencyRow, (member_id, method, request_id))
        if row is None:
            return None
        if row.request_hash != digest:
            raise FailedPreconditionError(
                "request_id was already used for a different request", reason="REQUEST_ID_REUSED"
            )
        if not row.response:
            raise FailedPreconditionError(
                "the answer to this request was erased with the record it concerned",
                reason="ANSWER_ERASED",
            )
        sealed = Sealed.from_text(row.response.decode("ascii"))
        return self._envelope.open(sealed, _aad(member_id, method, request_id))

    def store(
        self,
        session: Session,
        member_id: str,
        method: str,
        request_id: str,
        digest: str,
        response: bytes,
        *,
        subject_ref: str | None = None,
    ) -> None:
        sealed = self._envelope.seal(response, _aad(member_id, method, request_id))
        session.add(
            IdempotencyRow(
                member_id=member_id,
                method=method,
                request_id=request_id,
                request_hash=digest,
                response=sealed.to_text().encode("ascii"),
                subject_ref=subject_ref,
                created_at=datetime.now(UTC),
            )
        )
        session.flush()

    @staticmethod
    def forget(session: Session, subject_ref: str) -> int:
        """Erase every stored answer about ``subject_ref`` (keys stay); returns how many."""
        query = (
            update(IdempotencyRow)
            .where(IdempotencyRow.subject_ref == subject_ref, IdempotencyRow.response != b"")
            .values(response=b"")
        )
        result = session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)
