"""Idempotent writes (AIP-155): the first answer to (member, method, request id) is kept.

A retry with the same request id and the same request gets the stored answer and changes nothing;
the same request id with a different request is refused.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway.errors import FailedPreconditionError
from gateway.store._models import IdempotencyRow

__all__ = ["IdempotencyStore", "request_digest"]


def request_digest(request_bytes: bytes) -> str:
    return hashlib.sha256(request_bytes).hexdigest()


class IdempotencyStore:
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
        return row.response

    def store(
        self,
        session: Session,
        member_id: str,
        method: str,
        request_id: str,
        digest: str,
        response: bytes,
    ) -> None:
        session.add(
            IdempotencyRow(
                member_id=member_id,
                method=method,
                request_id=request_id,
                request_hash=digest,
                response=response,
                created_at=datetime.now(UTC),
            )
        )
        session.flush()
