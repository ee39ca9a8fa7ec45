"""Certificate revocation: a CA-signed X.509 CRL file (RFC 5280 §5) and its hot reload.

The CRL file is the revocation state: :func:`revoke` reads it, verifies it, adds the entry,
bumps the CRL number and atomically replaces it. The gateway reloads it when the file changes
(:class:`CrlReloader`) and refuses every client once its nextUpdate has passed (fail closed).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from gateway.pki._common import build_crl
from gateway.pki._files import locked, write_file
from gateway.pki._issue import CRL_DAYS, CaPaths, load_ca

__all__ = ["CrlReloader", "load_crl", "refresh_crl", "revoke"]

_MAX_CRL_BYTES: Final = 16 * 1024 * 1024


def load_crl(
    path: str | Path, ca_cert: x509.Certificate | None = None
) -> x509.CertificateRevocationList:
    """Load a PEM (or DER) CRL, and verify it against ``ca_cert`` when given.

    Raises:
        FailedPreconditionError: Unreadable or malformed file, or (with ``ca_cert``) an issuer
            or signature that is not the CA's.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise FailedPreconditionError(f"{p}: cannot read CRL ({e.strerror})") from e
    if len(data) > _MAX_CRL_BYTES:
        raise FailedPreconditionError(f"{p}: CRL too large")
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
    except ValueError as e:
        raise FailedPreconditionError(f"{p}: malformed CRL") from e
    if ca_cert is not None:
        public_key = ca_cert.public_key()
        if (
            crl.issuer != ca_cert.subject
            or not isinstance(public_key, ec.EllipticCurvePublicKey)
            or not crl.is_signature_valid(public_key)
        ):
            raise FailedPreconditionError(f"{p}: CRL is not signed by the CA")
    return crl


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def _reissue(
    directory: str | Path,
    extra: x509.RevokedCertificate | None,
    *,
    now: dt.datetime | None,
    crl_days: int,
) -> x509.CertificateRevocationList:
    paths = CaPaths.of(directory)
    ca_cert, ca_key = load_ca(directory)
    with locked(paths.directory):
        current = load_crl(paths.crl, ca_cert)
        entries = list(current)
        if extra is not None:
            if current.get_revoked_certificate_by_serial_number(extra.serial_number) is not None:
                return current  # already revoked: idempotent
            entries.append(extra)
        crl = build_crl(
            ca_cert,
            ca_key,
            entries,
            number=_crl_number(current) + 1,
            now=_now(now),
            days=crl_days,
        )
        data = crl.public_bytes(serialization.Encoding.PEM)
        write_file(paths.crl, data, private=False, replace=True)
    return crl


def revoke(
    directory: str | Path,
    target: int | str | Path,
    *,
    reason: x509.ReasonFlags | None = None,
    now: dt.datetime | None = None,
    crl_days: int = CRL_DAYS,
) -> x509.CertificateRevocationList:
    """Revoke a certificate by serial number or certificate file, and rewrite the CRL.

    Steps:
    1. resolve the serial (an int, or read from the certificate file, which must have been
       issued by this CA);
    2. under the directory lock, verify the current CRL, add the entry (revocation date
       ``now``, optional reason code, RFC 5280 §5.3.1), bump the CRL number and sign;
    3. atomically replace ``crl.pem``. Revoking twice changes nothing.

    Args:
        directory: The PKI directory.
        target: A serial number, or the path of a certificate (PEM).
        reason: Optional CRL reason code.
        now: Revocation time (tests).
        crl_days: nextUpdate distance of the new CRL.

    Returns:
        The CRL now in force.

    Raises:
        InvalidArgumentError: ``target`` is neither a serial number nor a path.
        NotFoundError: The certificate file does not exist.
        FailedPreconditionError: No usable CA or CRL, or the certificate is not from this CA.
    """
    if isinstance(target, bool):
        raise InvalidArgumentError.for_field("target", "must be a serial number or a path")
    if isinstance(target, int):  # step 1
        serial = target
    else:
        cert_path = Path(target)
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"{cert_path}: no such certificate") from None
        except ValueError as e:
            raise FailedPreconditionError(f"{cert_path}: malformed certificate") from e
        ca_cert, _ = load_ca(directory)
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise FailedPreconditionError(f"{cert_path}: not issued by this CA") from None
        serial = cert.serial_number
    builder = (
        x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_now(now))
    )  # step 2
    if reason is not None:
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    return _reissue(directory, builder.build(), now=now, crl_days=crl_days)  # step 3


def refresh_crl(
    directory: str | Path, *, now: dt.datetime | None = None, crl_days: int = CRL_DAYS
) -> x509.CertificateRevocationList:
    """Re-sign the CRL with new thisUpdate/nextUpdate (run before nextUpdate passes).

    Raises:
        FailedPreconditionError: No usable CA or CRL.
    """
    return _reissue(directory, None, now=now, crl_days=crl_days)


class CrlReloader:
    """Serve the current CRL, reloading the file when it changes (mtime, size or inode).

    A replacement that does not verify against the CA is ignored and the last good CRL kept
    (``last_error`` says why): a corrupted or forged file must neither open the door nor
    shut it. The CRL's own nextUpdate still bounds how long the last good one is honoured.
    """

    def __init__(self, path: str | Path, ca_cert: x509.Certificate) -> None:
        """Load the CRL once.

        Raises:
            FailedPreconditionError: The initial CRL is missing, malformed or not the CA's.
        """
        self._path = Path(path)
        self._ca_cert = ca_cert
        self._stamp = self._stat()
        self._crl = load_crl(self._path, ca_cert)
        self.last_error: str | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> x509.CertificateRevocationList:
        """The CRL in force (reloaded first if the file changed)."""
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self._crl = load_crl(self._path, self._ca_cert)
                self.last_error = None
            except FailedPreconditionError as e:
                self.last_error = e.message
            self._stamp = stamp
        return self._crl
