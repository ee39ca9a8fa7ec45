"""Who is calling: the mTLS client certificate, checked and mapped to a registered member.

The TLS handshake already refused clients with no certificate, a certificate from another CA,
or an expired one (OpenSSL chain verification). This module adds what TLS does not do here:

1. revocation: the CRL file, reloaded when it changes on disk (``gateway.pki.CrlReloader``);
2. ``gateway.pki.check_client_certificate`` again (issuer, validity window, key type allowlist,
   clientAuth usage), in case the TLS layer is ever configured more loosely;
3. the member registry: the certificate's SPKI fingerprint must be pinned to an active member,
   and the member id and kind written in the certificate must be that member's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy.orm import Session

from gateway import pki
from gateway.errors import UnauthenticatedError
from gateway.ids import CertFingerprint
from gateway.store import Member, MemberRegistry

__all__ = ["Identity", "IdentityResolver"]

_CACHE_TTL = timedelta(seconds=30)

RunInSession = Callable[[Callable[[Session], Member | None]], Member | None]


@dataclass(frozen=True, slots=True)
class Identity:
    member: Member
    principal: str
    fingerprint: CertFingerprint
    not_after: datetime


class IdentityResolver:
    """Turns a peer certificate into an :class:`Identity` or raises ``UnauthenticatedError``."""

    def __init__(
        self,
        ca_path: Path,
        crl_path: Path,
        registry: MemberRegistry,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        self._crls = pki.CrlReloader(crl_path, self._ca)
        self._registry = registry
        self._clock = clock
        # peer certificate digest -> (identity, cache expiry, CRL it was checked against)
        self._cache: dict[str, tuple[Identity, datetime, object]] = {}

    def resolve(self, run: RunInSession, peer_pem: bytes | None) -> Identity:
        """Check ``peer_pem`` and find its member (blocking: run it off the event loop).

        Raises:
            UnauthenticatedError: no, invalid, revoked or unregistered certificate.
        """
        if not peer_pem:
            raise UnauthenticatedError("a client certificate is required", reason="NO_CLIENT_CERT")
        crl = self._crls.current()
        now = self._clock()
        key = hashlib.sha256(peer_pem).hexdigest()
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached[2] is crl
            and cached[1] > now
            and cached[0].not_after > now
        ):
            return cached[0]
        # 1-2. Issuer, validity window, revocation, key type, usage.
        checked = pki.check_client_certificate(peer_pem, self._ca, crl, now)
        # 3. Registry: the pinned fingerprint decides; the certificate's claims must agree.
        member = run(lambda s: self._registry.by_fingerprint(s, checked.fingerprint))
        if member is None:
            raise UnauthenticatedError("certificate is not registered", reason="UNKNOWN_MEMBER")
        if member.member_id != checked.member_id or member.kind != checked.kind:
            raise UnauthenticatedError(
                "certificate identity does not match its registration", reason="IDENTITY_MISMATCH"
            )
        if not member.active:
            raise UnauthenticatedError("member is suspended", reason="MEMBER_SUSPENDED")
        cert = pki.load_certificate(peer_pem)
        identity = Identity(
            member=member,
            principal=cert.subject.rfc4514_string(),
            fingerprint=checked.fingerprint,
            not_after=checked.not_after,
        )
        # Registry changes (a suspended member) reach every replica within the cache TTL.
        self._cache[key] = (identity, now + _CACHE_TTL, crl)
        return identity

    def forget(self) -> None:
        """Drop cached identities (after a registry change)."""
        self._cache.clear()
