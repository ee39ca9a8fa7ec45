"""check_client_certificate: every refusal with its exact reason, and revocation upkeep."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.errors import FailedPreconditionError, NotFoundError, UnauthenticatedError
from gateway.pki import (
    CaPaths,
    CrlReloader,
    check_client_certificate,
    init_ca,
    issue_member,
    load_ca,
    load_crl,
    refresh_crl,
    revoke,
)

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def pki(tmp_path: Path) -> CaPaths:
    return init_ca(tmp_path / "pki")


def _ca(pki: CaPaths) -> x509.Certificate:
    return load_ca(pki.directory)[0]


def _crl(pki: CaPaths) -> x509.CertificateRevocationList:
    return load_crl(pki.crl, _ca(pki))


def _check(pki: CaPaths, cert: Path | bytes, now: dt.datetime = NOW) -> object:
    data = cert.read_bytes() if isinstance(cert, Path) else cert
    return check_client_certificate(data, _ca(pki), _crl(pki), now)


def test_valid_member_certificate_is_accepted_from_pem_text_and_der(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO", ["analyst"])
    pem = issued.cert_path.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    for form in (pem, pem.decode(), der):
        identity = check_client_certificate(form, _ca(pki), _crl(pki), NOW)
        assert (identity.member_id, identity.kind) == ("cpam-75", "AMO")
        assert identity.fingerprint == issued.fingerprint


@pytest.mark.parametrize("key_type", ["p256", "p384", "ed25519"])
def test_allowlisted_key_types_are_accepted(pki: CaPaths, key_type: str) -> None:
    issued = issue_member(pki.directory, "mut-alpha", "AMC", key_type=key_type)  # type: ignore[arg-type]
    assert _check(pki, issued.cert_path)


def _refused(pki: CaPaths, cert: Path | bytes, now: dt.datetime = NOW) -> UnauthenticatedError:
    with pytest.raises(UnauthenticatedError) as info:
        _check(pki, cert, now)
    return info.value


def test_expired_certificate_is_refused(pki: CaPaths) -> None:
    issued = issue_member(
        pki.directory,
        "cpam-75",
        "AMO",
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=1),
    )
    error = _refused(pki, issued.cert_path)
    assert (error.message, error.reason) == ("certificate expired", "CERT_EXPIRED")


def test_not_yet_valid_certificate_is_refused(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO", not_before=NOW + dt.timedelta(days=1))
    error = _refused(pki, issued.cert_path)
    assert (error.message, error.reason) == ("certificate not yet valid", "CERT_NOT_YET_VALID")


def test_certificate_from_another_ca_is_refused(pki: CaPaths, tmp_path: Path) -> None:
    other = init_ca(tmp_path / "other")
    issued = issue_member(other.directory, "cpam-75", "AMO")
    error = _refused(pki, issued.cert_path)
    assert (error.message, error.reason) == ("unknown issuer", "UNKNOWN_ISSUER")


def test_certificate_from_another_ca_with_the_same_name_is_refused(
    pki: CaPaths, tmp_path: Path
) -> None:
    """Same issuer DN, different key: only the signature check can tell."""
    other = init_ca(tmp_path / "other")
    issued = issue_member(other.directory, "cpam-75", "AMO")
    assert x509.load_pem_x509_certificate(issued.cert_path.read_bytes()).issuer == _ca(pki).subject
    assert _refused(pki, issued.cert_path).reason == "UNKNOWN_ISSUER"


def test_revoked_certificate_is_refused(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO")
    crl = revoke(pki.directory, issued.cert_path, reason=x509.ReasonFlags.key_compromise)
    assert crl.get_revoked_certificate_by_serial_number(issued.serial) is not None
    error = _refused(pki, issued.cert_path)
    assert (error.message, error.reason) == ("certificate revoked", "CERT_REVOKED")


def test_wrong_key_type_is_refused(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO", key_type="rsa2048")
    error = _refused(pki, issued.cert_path)
    assert (error.message, error.reason) == ("key type not allowed", "KEY_TYPE_NOT_ALLOWED")


def test_certificate_without_client_auth_is_refused(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO", client_auth=False)
    error = _refused(pki, issued.cert_path)
    assert error.reason == "CLIENT_AUTH_NOT_PERMITTED"


def test_server_certificate_is_not_a_client_certificate(pki: CaPaths) -> None:
    assert _refused(pki, pki.server_cert).reason == "CLIENT_AUTH_NOT_PERMITTED"


def test_ca_certificate_is_not_a_client_certificate(pki: CaPaths) -> None:
    assert _refused(pki, pki.ca_cert).reason == "CERT_IS_CA"


@pytest.mark.parametrize("garbage", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\n"])
def test_garbage_is_refused_as_malformed(pki: CaPaths, garbage: bytes) -> None:
    assert _refused(pki, garbage).reason == "CERT_MALFORMED"


def test_stale_crl_refuses_everyone(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO")
    error = _refused(pki, issued.cert_path, NOW + dt.timedelta(days=31))
    assert (error.message, error.reason) == ("revocation list expired", "CRL_EXPIRED")


def test_crl_of_another_ca_is_refused(pki: CaPaths, tmp_path: Path) -> None:
    other = init_ca(tmp_path / "other")
    issued = issue_member(pki.directory, "cpam-75", "AMO")
    foreign = load_crl(other.crl)
    with pytest.raises(UnauthenticatedError) as info:
        check_client_certificate(issued.cert_path.read_bytes(), _ca(pki), foreign, NOW)
    assert info.value.reason == "CRL_INVALID"
    with pytest.raises(FailedPreconditionError):
        load_crl(other.crl, _ca(pki))


def test_revoke_by_serial_is_idempotent_and_bumps_the_crl_number(pki: CaPaths) -> None:
    a = issue_member(pki.directory, "cpam-75", "AMO")
    b = issue_member(pki.directory, "mut-alpha", "AMC")
    revoke(pki.directory, a.serial)
    crl = revoke(pki.directory, a.serial)
    assert len(crl) == 1
    crl = revoke(pki.directory, b.cert_path)
    assert {r.serial_number for r in crl} == {a.serial, b.serial}
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert _check(pki, issue_member(pki.directory, "other", "AMC").cert_path)


def test_revoke_refuses_missing_or_foreign_certificates(pki: CaPaths, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        revoke(pki.directory, tmp_path / "nope.crt")
    other = init_ca(tmp_path / "other")
    other_member = issue_member(other.directory, "x", "AMO")
    # Same DN ("Vigie CA") on both CAs: only the signature tells them apart.
    with pytest.raises(FailedPreconditionError, match="not issued by this CA"):
        revoke(pki.directory, other_member.cert_path)


def test_refresh_crl_extends_next_update(pki: CaPaths) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO")
    later = NOW + dt.timedelta(days=29)
    refresh_crl(pki.directory, now=later)
    assert _check(pki, issued.cert_path, NOW + dt.timedelta(days=31))


def test_crl_reloader_picks_up_revocations_and_ignores_forged_files(
    pki: CaPaths, tmp_path: Path
) -> None:
    issued = issue_member(pki.directory, "cpam-75", "AMO")
    reloader = CrlReloader(pki.crl, _ca(pki))
    assert len(reloader.current()) == 0
    revoke(pki.directory, issued.serial)
    assert len(reloader.current()) == 1
    other = init_ca(tmp_path / "other")
    forged = other.crl.read_bytes()
    tmp = pki.crl.with_name("forged.tmp")
    tmp.write_bytes(forged)
    os.replace(tmp, pki.crl)
    assert len(reloader.current()) == 1  # last good CRL kept
    assert reloader.last_error is not None and "not signed by the CA" in reloader.last_error
