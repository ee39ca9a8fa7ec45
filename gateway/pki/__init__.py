"""Members' PKI: CA, server and member certificates, revocation, client certificate checks.

A library: the ``vigie pki`` CLI and the identity interceptor call it. Refusals of a client
certificate raise :class:`gateway.errors.UnauthenticatedError` with a precise reason; operator
mistakes raise the shared errors (``AlreadyExistsError``, ``FailedPreconditionError``,
``InvalidArgumentError``, ``NotFoundError``). Choices and procedures:
``docs/adr/0001-pseudonymisation-and-pki.md``.
"""

from gateway.pki._common import MemberKind, member_uri, spki_fingerprint
from gateway.pki._crl import CrlReloader, load_crl, refresh_crl, revoke
from gateway.pki._issue import (
    CA_DAYS,
    CRL_DAYS,
    LEAF_DAYS,
    ROLES,
    CaPaths,
    IssuedCertificate,
    KeyType,
    init_ca,
    issue_member,
    load_ca,
)
from gateway.pki._verify import (
    ClientIdentity,
    check_client_certificate,
    load_certificate,
    parse_member_identity,
)

__all__ = [
    "CA_DAYS",
    "CRL_DAYS",
    "LEAF_DAYS",
    "ROLES",
    "CaPaths",
    "ClientIdentity",
    "CrlReloader",
    "IssuedCertificate",
    "KeyType",
    "MemberKind",
    "check_client_certificate",
    "init_ca",
    "issue_member",
    "load_ca",
    "load_certificate",
    "load_crl",
    "member_uri",
    "parse_member_identity",
    "refresh_crl",
    "revoke",
    "spki_fingerprint",
]
