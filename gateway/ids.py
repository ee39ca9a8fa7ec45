"""Distinct types for distinct identifiers: a pseudonym can never be passed as a member id."""

from __future__ import annotations

from typing import NewType

__all__ = [
    "CaseReference",
    "CertFingerprint",
    "KeyId",
    "LeafHash",
    "MemberId",
    "Pseudonym",
    "RequestId",
    "RootHash",
    "RuleId",
    "Token1",
]

MemberId = NewType("MemberId", str)
"""A member organisation, e.g. ``cpam-75`` or ``mut-alpha``."""

CertFingerprint = NewType("CertFingerprint", str)
"""Hex SHA-256 of a certificate's SubjectPublicKeyInfo (DER)."""

Token1 = NewType("Token1", str)
"""First-level beneficiary token: base64url HMAC-SHA-256 of a NIR under the members' key."""

Pseudonym = NewType("Pseudonym", str)
"""Second-level pseudonym: the gateway's re-keyed token, as stored (``<key id>:<base64url>``)."""

KeyId = NewType("KeyId", str)
RequestId = NewType("RequestId", str)
RuleId = NewType("RuleId", str)
CaseReference = NewType("CaseReference", str)
LeafHash = NewType("LeafHash", bytes)
RootHash = NewType("RootHash", bytes)
