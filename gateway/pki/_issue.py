"""Development and operations PKI: a CA, the gateway's server certificate, member certificates.

Choices (``docs/adr/0001-pseudonymisation-and-pki.md``): ECDSA P-256 with SHA-256 (RFC 5480,
RFC 5758; ANSSI-approved curve, universally supported by TLS stacks and grpcio); CA 5 years,
leaf certificates 1 year; random 159-bit serials (RFC 5280 §4.1.2.2). A member certificate
names its organisation twice: subject ``O=<member id>, OU=<kind>, CN=<member id>`` for humans
and a SAN URI ``urn:vigie:member:<kind>:<member id>`` that the gateway reads.

Directory layout (0700; private keys 0600, certificates and CRL 0644)::

    <dir>/ca.crt  ca.key  server.crt  server.key  crl.pem
    <dir>/members/<member id>.crt  <member id>.key  <member id>.json
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError
from gateway.ids import CertFingerprint, MemberId
from gateway.pki._common import MemberKind, build_crl, member_uri, spki_fingerprint
from gateway.pki._files import ensure_private_dir, write_file

__all__ = [
    "CA_DAYS",
    "LEAF_DAYS",
    "ROLES",
    "CaPaths",
    "IssuedCertificate",
    "KeyType",
    "init_ca",
    "issue_member",
    "load_ca",
]

KeyType = Literal["p256", "p384", "ed25519", "rsa2048"]
"""``rsa2048`` exists only so tests can check that the gateway refuses it."""

ROLES: Final = ("submitter", "analyst", "compliance_officer", "operator")
CA_DAYS: Final = 5 * 365
LEAF_DAYS: Final = 365
CRL_DAYS: Final = 30
_BACKDATE: Final = dt.timedelta(minutes=5)  # tolerate small clock skew between hosts
_MEMBER_ID_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")

_PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class CaPaths:
    """Files of a PKI directory."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    crl: Path

    @classmethod
    def of(cls, directory: str | Path) -> CaPaths:
        """The standard layout under ``directory`` (files may not exist yet)."""
        d = Path(directory)
        return cls(d, d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key", d / "crl.pem")


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A member certificate just issued, with what the member registry needs."""

    member_id: MemberId
    kind: MemberKind
    roles: tuple[str, ...]
    cert_path: Path
    key_path: Path
    metadata_path: Path
    serial: int
    fingerprint: CertFingerprint
    not_before: dt.datetime
    not_after: dt.datetime


def _now(now: dt.datetime | None) -> dt.datetime:
    value = now or dt.datetime.now(dt.UTC)
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(dt.UTC)


def _new_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise InvalidArgumentError.for_field("key_type", f"must be one of {get_args(KeyType)}")


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _leaf_builder(
    subject: x509.Name,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in ("localhost", "127.0.0.1", "::1", *names):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in out:
            out.append(entry)
    return out


def init_ca(
    directory: str | Path,
    *,
    common_name: str = "Vigie CA",
    server_names: Sequence[str] = (),
    ca_days: int = CA_DAYS,
    server_days: int = LEAF_DAYS,
    crl_days: int = CRL_DAYS,
    now: dt.datetime | None = None,
) -> CaPaths:
    """Create a CA (ECDSA P-256, 5 years), the gateway's server certificate and an empty CRL.

    Calling it on another directory makes an independent CA (e.g. for "wrong CA" tests).

    Steps:
    1. create the directory 0700; refuse if a CA key is already there;
    2. CA: self-signed, BasicConstraints CA path length 0, KeyUsage keyCertSign + cRLSign
       (RFC 5280 §4.2.1.9, §4.2.1.3);
    3. server: SAN localhost, 127.0.0.1, ::1 and ``server_names`` (DNS or IP), EKU serverAuth;
    4. CRL number 1 with no entries, valid ``crl_days`` (RFC 5280 §5).

    Args:
        directory: The PKI directory.
        common_name: The CA's CN.
        server_names: Extra DNS names or IP addresses for the server certificate.
        ca_days: CA validity.
        server_days: Server certificate validity.
        crl_days: Time until the CRL's nextUpdate; the gateway refuses clients once it passes.
        now: The issuing time (tests); timezone-aware.

    Returns:
        The paths written.

    Raises:
        AlreadyExistsError: The directory already holds a CA.
        FailedPreconditionError: The directory is unsafe (group/world-writable).
    """
    paths = CaPaths.of(directory)
    ensure_private_dir(paths.directory)  # step 1
    if paths.ca_key.exists() or paths.ca_cert.exists():
        raise AlreadyExistsError(f"{paths.directory}: a CA already exists here")
    issued_at = _now(now)
    start = issued_at - _BACKDATE

    ca_key = ec.generate_private_key(ec.SECP256R1())  # step 2
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(issued_at + dt.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_file(paths.ca_key, _key_pem(ca_key), private=True)
    write_file(paths.ca_cert, _cert_pem(ca_cert), private=False)

    server_key = ec.generate_private_key(ec.SECP256R1())  # step 3
    server_cert = (
        _leaf_builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigie-gateway")]),
            ca_cert,
            server_key.public_key(),
            start,
            issued_at + dt.timedelta(days=server_days),
        )
        .add_extension(x509.SubjectAlternativeName(_general_names(server_names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_file(paths.server_key, _key_pem(server_key), private=True)
    write_file(paths.server_cert, _cert_pem(server_cert), private=False)

    crl = build_crl(ca_cert, ca_key, [], number=1, now=issued_at, days=crl_days)  # step 4
    write_file(paths.crl, crl.public_bytes(serialization.Encoding.PEM), private=False)
    return paths


def load_ca(directory: str | Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA certificate and key of a PKI directory.

    Raises:
        FailedPreconditionError: Missing files, a CA key readable by group/others, or a key
            that is not the certificate's.
    """
    paths = CaPaths.of(directory)
    try:
        if paths.ca_key.stat().st_mode & 0o077:
            raise FailedPreconditionError(f"{paths.ca_key}: readable by group or others")
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise FailedPreconditionError(f"{paths.directory}: no usable CA ({e})") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise FailedPreconditionError(f"{paths.directory}: CA key does not match ca.crt")
    return cert, key


def issue_member(
    directory: str | Path,
    member_id: str,
    kind: str,
    roles: Sequence[str] = (),
    *,
    days: int = LEAF_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key_type: KeyType = "p256",
    client_auth: bool = True,
    replace: bool = False,
    now: dt.datetime | None = None,
) -> IssuedCertificate:
    """Issue a member's client certificate signed by the directory's CA.

    Steps:
    1. check member id (``[a-z0-9_-]``, 1-64, starts and ends alphanumeric), kind and roles;
    2. subject ``O=<member id>, OU=<kind>, CN=<member id>``; SAN URI
       ``urn:vigie:member:<kind>:<member id>``; EKU clientAuth; KeyUsage digitalSignature;
    3. write ``members/<member id>.key`` (0600), ``.crt`` and a ``.json`` record (member id,
       kind, roles, serial, SPKI fingerprint, validity) for the member registry.

    Args:
        directory: The PKI directory (made by :func:`init_ca`).
        member_id: The member organisation, e.g. ``cpam-75``.
        kind: ``"AMO"`` or ``"AMC"``.
        roles: Roles for the registry record (the certificate itself carries none).
        days: Validity from ``now`` when ``not_after`` is not given.
        not_before: Explicit start (tests: a not-yet-valid certificate).
        not_after: Explicit end (tests: an expired certificate).
        key_type: ``p256`` (default), ``p384``, ``ed25519``; ``rsa2048`` for refusal tests.
        client_auth: False leaves out the clientAuth EKU (refusal tests only).
        replace: Atomically replace an existing certificate of this member (re-issue).
        now: The issuing time (tests); timezone-aware.

    Returns:
        What was issued and where.

    Raises:
        InvalidArgumentError: Bad member id, kind, role, or an empty validity window.
        AlreadyExistsError: The member already has a certificate and ``replace`` is false.
        FailedPreconditionError: No usable CA in ``directory``.
    """
    if not isinstance(member_id, str) or not _MEMBER_ID_RE.fullmatch(member_id):  # step 1
        raise InvalidArgumentError.for_field(
            "member_id", "format: 1-64 of a-z 0-9 _ -, starting and ending alphanumeric"
        )
    if kind not in get_args(MemberKind):
        raise InvalidArgumentError.for_field("kind", "must be AMO or AMC")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidArgumentError.for_field("roles", f"unknown role(s); allowed: {ROLES}")
    issued_at = _now(now)
    start = _now(not_before) if not_before else issued_at - _BACKDATE
    end = _now(not_after) if not_after else issued_at + dt.timedelta(days=days)
    if end <= start:
        raise InvalidArgumentError.for_field("not_after", "must be after not_before")
    ca_cert, ca_key = load_ca(directory)

    key = _new_key(key_type)  # step 2
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, member_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
            x509.NameAttribute(NameOID.COMMON_NAME, member_id),
        ]
    )
    builder = _leaf_builder(subject, ca_cert, key.public_key(), start, end).add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(member_uri(kind, member_id))]),
        critical=False,
    )
    if client_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())

    members = ensure_private_dir(Path(directory) / "members")  # step 3
    key_path, cert_path = members / f"{member_id}.key", members / f"{member_id}.crt"
    meta_path = members / f"{member_id}.json"
    if not replace and any(p.exists() for p in (key_path, cert_path, meta_path)):
        raise AlreadyExistsError(f"{cert_path}: member already has a certificate")
    fingerprint = spki_fingerprint(cert)
    issued = IssuedCertificate(
        member_id=MemberId(member_id),
        kind=kind,  # type: ignore[arg-type]  # checked against MemberKind above
        roles=tuple(roles),
        cert_path=cert_path,
        key_path=key_path,
        metadata_path=meta_path,
        serial=cert.serial_number,
        fingerprint=fingerprint,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    record = {
        "member_id": member_id,
        "kind": kind,
        "roles": list(roles),
        "serial": f"{cert.serial_number:x}",
        "spki_sha256": fingerprint,
        "not_before": issued.not_before.isoformat(),
        "not_after": issued.not_after.isoformat(),
    }
    write_file(key_path, _key_pem(key), private=True, replace=replace)
    write_file(cert_path, _cert_pem(cert), private=False, replace=replace)
    write_file(
        meta_path, (json.dumps(record, indent=2) + "\n").encode(), private=False, replace=replace
    )
    return issued
