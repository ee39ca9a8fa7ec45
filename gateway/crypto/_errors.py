"""Errors of the crypto package (input errors use :class:`gateway.errors.InvalidArgumentError`)::

    VigieError
    └── CryptoError                 key material or sealed data that cannot be used
        ├── KeyMaterialError        short key, unsafe or malformed key file, unknown key id
        └── TamperedCiphertextError AEAD authentication failed (altered data, wrong record/field)

Messages name the rule, never a key, a token or a plaintext.
"""

from __future__ import annotations

from gateway.errors import VigieError

__all__ = ["CryptoError", "KeyMaterialError", "TamperedCiphertextError"]


class CryptoError(VigieError):
    """Base of crypto failures that are not the caller's input."""

    reason = "CRYPTO_ERROR"


class KeyMaterialError(CryptoError):
    """A key is too short, a key file is unsafe or malformed, or a key id is unknown."""

    reason = "KEY_MATERIAL"


class TamperedCiphertextError(CryptoError):
    """A sealed value failed authentication: altered, or opened with the wrong record/field."""

    reason = "TAMPERED_CIPHERTEXT"
