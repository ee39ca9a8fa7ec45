"""Member registry: which organisation a pinned client certificate belongs to, and its roles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol

from cryptography import x509
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.ids import CertFingerprint, MemberId
from gateway.store._models import MemberCertificateRow, MemberRow

__all__ = ["Member", "MemberRegistry", "SqlMemberRegistry"]

Role = Literal["submitter", "analyst", "compliance_officer", "operator"]
ROLES: frozenset[str] = frozenset({"submitter", "analyst", "compliance_officer", "operator"})


class Member(BaseModel):
    """A registered member organisation (a CPAM, a mutuelle, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    member_id: str
    display_name: str
    kind: Literal["AMO", "AMC"]
    roles: frozenset[str]
    active: bool = True


class MemberRegistry(Protocol):
    def by_fingerprint(self, session: Session, fingerprint: CertFingerprint) -> Member | None: ...
    def get(self, session: Session, member_id: MemberId) -> Member | None: ...
    def all(self, session: Session) -> Sequence[Member]: ...


def _member(row: MemberRow) -> Member:
    return Member(
        member_id=row.member_id,
        display_name=row.display_name,
        kind=row.kind,  # type: ignore[arg-type]  # CHECK constraint guarantees AMO|AMC
        roles=frozenset(row.roles),
        active=row.active,
    )


class SqlMemberRegistry:
    """The registry on the gateway's database (SQLite or PostgreSQL)."""

    def register(
        self,
        session: Session,
        member: Member,
        *,
        fingerprint: CertFingerprint | None = None,
        subject: str = "",
        not_after: datetime | None = None,
    ) -> None:
        """Create or update a member and, if given, pin one of its certificates.

        Raises:
            ValueError: unknown role, or the fingerprint is pinned to another member.
        """
        unknown = member.roles - ROLES
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        now = datetime.now(UTC)
        row = session.get(MemberRow, member.member_id)
        if row is None:
            session.add(
                MemberRow(
                    member_id=member.member_id,
                    display_name=member.display_name,
                    kind=member.kind,
                    roles=sorted(member.roles),
                    active=member.active,
                    created_at=now,
                )
            )
        else:
            row.display_name, row.kind = member.display_name, member.kind
            row.roles, row.active = sorted(member.roles), member.active
        if fingerprint is not None:
            pinned = session.get(MemberCertificateRow, fingerprint)
            if pinned is not None and pinned.member_id != member.member_id:
                raise ValueError("certificate already pinned to another member")
            if pinned is None:
                session.flush()
                session.add(
                    MemberCertificateRow(
                        spki_fingerprint=fingerprint,
                        member_id=member.member_id,
                        subject=subject,
                        not_after=not_after or now,
                        added_at=now,
                    )
                )

    def register_certificate(
        self, session: Session, member: Member, certificate: x509.Certificate
    ) -> None:
        """Create or update ``member`` and pin ``certificate`` to it (by SPKI fingerprint).

        Raises:
            ValueError: unknown role, or the certificate is pinned to another member.
        """
        from gateway.pki import spki_fingerprint

        self.register(
            session,
            member,
            fingerprint=spki_fingerprint(certificate),
            subject=certificate.subject.rfc4514_string(),
            not_after=certificate.not_valid_after_utc,
        )

    def by_fingerprint(self, session: Session, fingerprint: CertFingerprint) -> Member | None:
        row = session.execute(
            select(MemberRow)
            .join(MemberCertificateRow, MemberCertificateRow.member_id == MemberRow.member_id)
            .where(MemberCertificateRow.spki_fingerprint == fingerprint)
        ).scalar_one_or_none()
        return None if row is None else _member(row)

    def get(self, session: Session, member_id: MemberId) -> Member | None:
        row = session.get(MemberRow, member_id)
        return None if row is None else _member(row)

    def all(self, session: Session) -> Sequence[Member]:
        rows = session.execute(select(MemberRow).order_by(MemberRow.member_id)).scalars()
        return [_member(r) for r in rows]
