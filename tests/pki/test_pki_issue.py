"""PKI issuing: file permissions, certificate contents, identity parsing."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import AlreadyExistsError, InvalidArgumentError
from gateway.pki import (
    CaPaths,
    init_ca,
    issue_member,
    load_ca,
    load_crl,
    parse_member_identity,
    spki_fingerprint,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pki(tmp_path: Path) -> CaPaths:
    return init_ca(tmp_path / "pki", server_names=["gateway.example", "10.0.0.7"])


def test_private_keys_are_0600_and_directories_0700(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO", ["submitter", "analyst"])
    assert _mode(pki.directory) == 0o700
    assert _mode(pki.directory / "members") == 0o700
    for key in (pki.ca_key, pki.server_key, issued.key_path):
        assert _mode(key) == 0o600, key
    for public in (pki.ca_cert, pki.server_cert, pki.crl, issued.cert_path):
        assert _mode(public) & 0o077 in (0o044, 0o004, 0o040, 0), public


def test_ca_is_p256_five_years_and_a_path_length_zero_ca(pki: CaPaths) -> None:
    ca, key = load_ca(pki.directory)
    assert isinstance(key.curve, ec.SECP256R1)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=5 * 365) <= lifetime <= dt.timedelta(days=5 * 365, minutes=10)


def test_server_certificate_names_local_and_configured_hosts(pki: CaPaths) -> None:
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "gateway.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.7"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < dt.timedelta(days=366)


def test_initial_crl_is_empty_and_signed_by_the_ca(pki: CaPaths) -> None:
    ca, _ = load_ca(pki.directory)
    assert len(load_crl(pki.crl, ca)) == 0


def test_init_refuses_to_overwrite_a_ca(pki: CaPaths) -> None:
    with pytest.raises(AlreadyExistsError):
        init_ca(pki.directory)


def test_member_certificate_names_member_and_kind(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "mut-alpha", "AMC", ["submitter"])
    cert = x509.load_pem_x509_certificate(issued.cert_path.read_bytes())
    assert parse_member_identity(cert) == ("mut-alpha", "AMC")
    subject = {a.oid: a.value for a in cert.subject}
    assert subject == {
        NameOID.ORGANIZATION_NAME: "mut-alpha",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "AMC",
        NameOID.COMMON_NAME: "mut-alpha",
    }
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:vigie:member:AMC:mut-alpha"
    ]
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert issued.fingerprint == spki_fingerprint(cert) and len(issued.fingerprint) == 64
    assert issued.serial == cert.serial_number
    record = json.loads(issued.metadata_path.read_text())
    assert record["roles"] == ["submitter"] and record["spki_sha256"] == issued.fingerprint


def test_reissue_needs_replace_and_keeps_0600(pki: CaPaths) -> None:
    first = issue_member(pki.directory, "cpam-75", "AMO")
    with pytest.raises(AlreadyExistsError):
        issue_member(pki.directory, "cpam-75", "AMO")
    second = issue_member(pki.directory, "cpam-75", "AMO", replace=True)
    assert second.serial != first.serial and second.fingerprint != first.fingerprint
    assert _mode(second.key_path) == 0o600
    assert not list((pki.directory / "members").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("member_id", "kind", "roles", "field"),
    [
        ("../evil", "AMO", (), "member_id"),
        ("CPAM", "AMO", (), "member_id"),
        ("", "AMO", (), "member_id"),
        ("a" * 65, "AMO", (), "member_id"),
        ("cpam-75-", "AMO", (), "member_id"),
        ("cpam-75", "OTHER", (), "kind"),
        ("cpam-75", "AMO", ("pricing",), "roles"),
    ],
)
def test_bad_member_parameters_are_refused(
    pki: CaPaths, member_id: str, kind: str, roles: tuple[str, ...], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        issue_member(pki.directory, member_id, kind, roles)
    assert info.value.violations[0].field == field


def test_empty_validity_window_is_refused(pki: CaPaths) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(InvalidArgumentError):
        issue_member(pki.directory, "cpam-75", "AMO", not_before=now, not_after=now)


def test_two_ca_directories_are_independent(tmp_path: Path) -> None:
    a, b = init_ca(tmp_path / "a"), init_ca(tmp_path / "b")
    ca_a, _ = load_ca(a.directory)
    ca_b, _ = load_ca(b.directory)
    assert ca_a.public_key() != ca_b.public_key()
