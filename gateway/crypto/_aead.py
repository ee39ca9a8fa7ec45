"""AES-256-GCM envelope for free text at rest, under a versioned key ring (pure, no I/O).

Construction (NIST SP 800-38D):
1. the key is the ring's current 32-byte key (AES-256); a key of another size is refused;
2. the nonce is 96 random bits from the OS CSPRNG (SP 800-38D §8.2.2). With random nonces a
   key must seal fewer than 2^32 values (§8.3); rotate the ring's current key well before;
3. the associated data is ``b"vigie/v1/field\\0" || key id || b"\\0" || aad``, so a value sealed
   for one record and field, or under one key id, does not open anywhere else;
   :func:`field_aad` builds ``aad`` from a record id and a field name;
4. opening looks the key up by the stored key id, so older keys keep opening old values.

Any change to key id, nonce, ciphertext, tag, record id or field name raises
:class:`TamperedCiphertextError`.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto._errors import KeyMaterialError, TamperedCiphertextError
from gateway.crypto._keys import KeyRing, check_key_id
from gateway.ids import KeyId

__all__ = ["FIELD_DOMAIN", "Envelope", "Sealed", "field_aad"]

FIELD_DOMAIN: Final = b"vigie/v1/field\x00"
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
_TEXT_PREFIX: Final = "v1"


def field_aad(record_id: str, field_name: str) -> bytes:
    """Bind a sealed value to one record and one field: length-prefixed UTF-8 of both.

    Raises:
        ValueError: Either part is empty.
    """
    if not record_id or not field_name:
        raise ValueError("record id and field name must be non-empty")
    rid, name = record_id.encode("utf-8"), field_name.encode("utf-8")
    return len(rid).to_bytes(4, "big") + rid + len(name).to_bytes(4, "big") + name


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value as stored: key id, 96-bit nonce, ciphertext with its 128-bit tag."""

    key_id: KeyId
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"

    def to_text(self) -> str:
        """One-column text form ``v1.<key id>.<b64url nonce>.<b64url ciphertext>``."""
        nonce = base64.urlsafe_b64encode(self.nonce).decode("ascii")
        body = base64.urlsafe_b64encode(self.ciphertext).decode("ascii")
        return f"{_TEXT_PREFIX}.{self.key_id}.{nonce}.{body}"

    @classmethod
    def from_text(cls, text: str) -> Sealed:
        """Parse :meth:`to_text` output.

        Raises:
            TamperedCiphertextError: The text is not a well-formed sealed value.
        """
        parts = text.split(".")
        if len(parts) != 4 or parts[0] != _TEXT_PREFIX:
            raise TamperedCiphertextError("sealed value: malformed")
        try:
            key_id = check_key_id(parts[1])
            nonce = base64.b64decode(parts[2].encode("ascii"), altchars=b"-_", validate=True)
            body = base64.b64decode(parts[3].encode("ascii"), altchars=b"-_", validate=True)
        except (KeyMaterialError, binascii.Error, ValueError, UnicodeEncodeError):
            raise TamperedCiphertextError("sealed value: malformed") from None
        if len(nonce) != NONCE_BYTES or len(body) < TAG_BYTES:
            raise TamperedCiphertextError("sealed value: malformed")
        return cls(key_id, nonce, body)


class Envelope:
    """Seal and open free-text fields with AES-256-GCM under a :class:`KeyRing`."""

    __slots__ = ("_ring",)

    def __init__(self, ring: KeyRing) -> None:
        """Use ``ring``; every key in it must be exactly 32 bytes.

        Raises:
            KeyMaterialError: A key is not 32 bytes.
        """
        if any(len(ring.get(kid)) != 32 for kid in ring.ids()):
            raise KeyMaterialError("AEAD key ring: AES-256-GCM keys must be exactly 32 bytes")
        self._ring = ring

    @staticmethod
    def _aad(key_id: str, aad: bytes) -> bytes:
        return FIELD_DOMAIN + key_id.encode("ascii") + b"\x00" + aad

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        """Encrypt and authenticate ``plaintext`` under the current key.

        Args:
            plaintext: The bytes to protect.
            aad: Context bound to the value, normally :func:`field_aad` (record id, field).

        Returns:
            The sealed value (store all three parts).

        Raises:
            TypeError: ``plaintext`` or ``aad`` is not bytes.
        """
        if not isinstance(plaintext, bytes) or not isinstance(aad, bytes):
            raise TypeError("plaintext and aad must be bytes")
        key_id = self._ring.current_id
        nonce = os.urandom(NONCE_BYTES)  # step 2
        cipher = AESGCM(self._ring.current.reveal())
        return Sealed(key_id, nonce, cipher.encrypt(nonce, plaintext, self._aad(key_id, aad)))

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        """Authenticate and decrypt a sealed value.

        Raises:
            TamperedCiphertextError: Authentication failed (altered value, wrong aad, wrong
                key) or the nonce is malformed.
            KeyMaterialError: The key id was retired from the ring.
        """
        secret = self._ring.get(sealed.key_id)  # step 4
        if len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) < TAG_BYTES:
            raise TamperedCiphertextError("sealed value: malformed nonce or ciphertext")
        try:
            return AESGCM(secret.reveal()).decrypt(
                sealed.nonce, sealed.ciphertext, self._aad(sealed.key_id, aad)
            )
        except InvalidTag:
            raise TamperedCiphertextError("sealed value: authentication failed") from None

    def __repr__(self) -> str:
        return f"Envelope({self._ring!r})"
