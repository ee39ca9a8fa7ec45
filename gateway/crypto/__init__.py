"""Pseudonymisation and encryption at rest.

- :func:`validate_nir`: NIR normalisation and validation (key mod 97, Corsica, provisional).
- :func:`first_level_token`: members' HMAC-SHA-256 token of a beneficiary (client side).
- :class:`Rekeyer`: the gateway's second-level re-keying under a versioned :class:`KeyRing`.
- :class:`Envelope`: AES-256-GCM sealing of free text bound to a record and field.
- :func:`load_key_file` / :func:`generate_key_file`: owner-only base64 key files.

Design and rotation procedure: ``docs/adr/0001-pseudonymisation-and-pki.md``.
"""

from gateway.crypto._aead import Envelope, Sealed, field_aad
from gateway.crypto._errors import CryptoError, KeyMaterialError, TamperedCiphertextError
from gateway.crypto._keyfile import generate_key_file, load_key_file, load_key_ring
from gateway.crypto._keys import MIN_KEY_BYTES, KeyRing, SecretKey
from gateway.crypto._nir import contains_nir, nir_key, normalise_nir, validate_nir
from gateway.crypto._pseudonym import (
    TOKEN1_LENGTH,
    Rekeyer,
    first_level_message,
    first_level_token,
    parse_token1,
    split_pseudonym,
)

__all__ = [
    "MIN_KEY_BYTES",
    "TOKEN1_LENGTH",
    "CryptoError",
    "Envelope",
    "KeyMaterialError",
    "KeyRing",
    "Rekeyer",
    "Sealed",
    "SecretKey",
    "TamperedCiphertextError",
    "contains_nir",
    "field_aad",
    "first_level_message",
    "first_level_token",
    "generate_key_file",
    "load_key_file",
    "load_key_ring",
    "nir_key",
    "normalise_nir",
    "parse_token1",
    "split_pseudonym",
    "validate_nir",
]
