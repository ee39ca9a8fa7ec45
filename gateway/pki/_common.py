"""Names and small builders shared by issuing, revocation and verification."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.ids import CertFingerprint

__all__ = ["MEMBER_URI_PREFIX", "MemberKind", "build_crl", "member_uri", "spki_fingerprint"]

MemberKind = Literal["AMO", "AMC"]
MEMBER_URI_PREFIX: Final = "urn:vigie:member:"


def member_uri(kind: str, member_id: str) -> str:
    """The SAN URI naming a member: ``urn:vigie:member:<kind>:<member id>``."""
    return f"{MEMBER_URI_PREFIX}{kind}:{member_id}"


def spki_fingerprint(cert: x509.Certificate) -> CertFingerprint:
    """Hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as in RFC 7469 §2.4 pins.

    It survives re-issuing a certificate for the same key and names the key, not the paper.
    """
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertFingerprint(hashlib.sha256(spki).hexdigest())


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    revoked: Iterable[x509.RevokedCertificate],
    *,
    number: int,
    now: dt.datetime,
    days: int,
) -> x509.CertificateRevocationList:
    """Sign a CRL (RFC 5280 §5): thisUpdate ``now``, nextUpdate ``now + days``, CRL number."""
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca_key, hashes.SHA256())
