"""Client certificate checks, run by the identity interceptor before any handler.

gRPC's TLS stack already verifies the chain during the handshake; these checks run again on
the presented certificate so that the decision, and its precise reason, is Vigie's own and is
journaled (DESIGN.md "Connect"), and so that revocation and key policy are enforced at all
(grpcio has no CRL hook). Every refusal is an :class:`UnauthenticatedError` whose message is
the reason; ``reason`` is a stable machine code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import UnauthenticatedError
from gateway.ids import CertFingerprint, MemberId
from gateway.pki._common import MEMBER_URI_PREFIX, MemberKind, spki_fingerprint

__all__ = [
    "ClientIdentity",
    "check_client_certificate",
    "load_certificate",
    "parse_member_identity",
]

_ALLOWED_CURVES: Final = (ec.SECP256R1, ec.SECP384R1)
_MAX_CERT_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who a verified client certificate names."""

    member_id: MemberId
    kind: MemberKind
    fingerprint: CertFingerprint
    serial: int
    not_after: dt.datetime


def _refuse(message: str, reason: str) -> UnauthenticatedError:
    return UnauthenticatedError(message, reason=reason)


def load_certificate(data: bytes | str | x509.Certificate) -> x509.Certificate:
    """Parse a certificate given as PEM (bytes or text), DER, or already parsed.

    Raises:
        UnauthenticatedError: ``CERT_MALFORMED`` if it does not parse.
    """
    if isinstance(data, x509.Certificate):
        return data
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if not isinstance(raw, bytes) or len(raw) > _MAX_CERT_BYTES:
        raise _refuse("malformed certificate", "CERT_MALFORMED")
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise _refuse("malformed certificate", "CERT_MALFORMED") from None


def parse_member_identity(cert: x509.Certificate) -> tuple[MemberId, MemberKind]:
    """Read ``(member id, kind)`` from the SAN URI ``urn:vigie:member:<kind>:<member id>``.

    Exactly one such URI must be present, and the subject's O and OU, when present, must agree.

    Raises:
        UnauthenticatedError: ``MEMBER_IDENTITY_MISSING`` or ``MEMBER_IDENTITY_CONFLICT``.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = list(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = []
    found = [u[len(MEMBER_URI_PREFIX) :] for u in uris if u.startswith(MEMBER_URI_PREFIX)]
    if not found:
        raise _refuse("member identity missing", "MEMBER_IDENTITY_MISSING")
    if len(found) > 1:
        raise _refuse("member identity ambiguous", "MEMBER_IDENTITY_CONFLICT")
    kind, sep, member_id = found[0].partition(":")
    if not sep or not member_id or kind not in get_args(MemberKind):
        raise _refuse("member identity missing", "MEMBER_IDENTITY_MISSING")
    for oid, expected in (
        (x509.NameOID.ORGANIZATION_NAME, member_id),
        (x509.NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
    ):
        values = [a.value for a in cert.subject.get_attributes_for_oid(oid)]
        if values and values != [expected]:
            raise _refuse("member identity conflicts with subject", "MEMBER_IDENTITY_CONFLICT")
    return MemberId(member_id), kind  # type: ignore[return-value]  # kind checked above


def _as_utc(now: dt.datetime | None) -> dt.datetime:
    value = now or dt.datetime.now(dt.UTC)
    if value.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return value.astimezone(dt.UTC)


def check_client_certificate(
    cert: bytes | str | x509.Certificate,
    ca_cert: x509.Certificate,
    crl: x509.CertificateRevocationList,
    now: dt.datetime | None = None,
) -> ClientIdentity:
    """Decide whether a presented client certificate authenticates a member.

    Steps (RFC 5280 §6.1.3 for the basic checks; reason code in brackets):
    1. parse PEM or DER [CERT_MALFORMED];
    2. issued by ``ca_cert``: issuer name and signature [UNKNOWN_ISSUER];
    3. validity window: not before notBefore [CERT_NOT_YET_VALID], not after notAfter
       [CERT_EXPIRED];
    4. revocation: the CRL is the CA's [CRL_INVALID], is current (nextUpdate not passed)
       [CRL_EXPIRED], and does not list the serial [CERT_REVOKED] (RFC 5280 §6.3);
    5. key type allowlist: EC P-256, EC P-384, Ed25519 [KEY_TYPE_NOT_ALLOWED];
    6. an end-entity (BasicConstraints CA false) [CERT_IS_CA] with the clientAuth EKU
       (RFC 5280 §4.2.1.12) [CLIENT_AUTH_NOT_PERMITTED];
    7. the member identity in the SAN URI [MEMBER_IDENTITY_MISSING / _CONFLICT].

    Args:
        cert: The peer certificate (PEM as gRPC's auth context gives it, DER, or parsed).
        ca_cert: The members' CA.
        crl: The CA's current revocation list.
        now: The decision time (tests); timezone-aware.

    Returns:
        The member, kind, SPKI fingerprint, serial and expiry.

    Raises:
        UnauthenticatedError: The first check that fails, e.g. "certificate expired".
    """
    at = _as_utc(now)
    leaf = load_certificate(cert)  # step 1

    if leaf.issuer != ca_cert.subject:  # step 2
        raise _refuse("unknown issuer", "UNKNOWN_ISSUER")
    try:
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise _refuse("unknown issuer", "UNKNOWN_ISSUER") from None

    if at < leaf.not_valid_before_utc:  # step 3
        raise _refuse("certificate not yet valid", "CERT_NOT_YET_VALID")
    if at > leaf.not_valid_after_utc:
        raise _refuse("certificate expired", "CERT_EXPIRED")

    ca_key = ca_cert.public_key()  # step 4
    if (
        crl.issuer != ca_cert.subject
        or not isinstance(ca_key, ec.EllipticCurvePublicKey)
        or not crl.is_signature_valid(ca_key)
    ):
        raise _refuse("revocation list not signed by the CA", "CRL_INVALID")
    next_update = crl.next_update_utc
    if next_update is None or at > next_update:
        raise _refuse("revocation list expired", "CRL_EXPIRED")
    if crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None:
        raise _refuse("certificate revoked", "CERT_REVOKED")

    key = leaf.public_key()  # step 5
    allowed = isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _ALLOWED_CURVES)
    )
    if not allowed:
        raise _refuse("key type not allowed", "KEY_TYPE_NOT_ALLOWED")

    try:  # step 6
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise _refuse("CA certificate used as a client", "CERT_IS_CA")
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise _refuse("client authentication not permitted", "CLIENT_AUTH_NOT_PERMITTED")

    member_id, kind = parse_member_identity(leaf)  # step 7
    return ClientIdentity(
        member_id=member_id,
        kind=kind,
        fingerprint=spki_fingerprint(leaf),
        serial=leaf.serial_number,
        not_after=leaf.not_valid_after_utc,
    )
