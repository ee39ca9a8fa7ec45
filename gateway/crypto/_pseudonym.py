"""Two-level pseudonymisation of beneficiaries (pure: bytes in, strings out, no I/O).

Level 1, at the member (the SDK calls :func:`first_level_token`)::

    token1 = base64url(HMAC-SHA-256(K_members, canonical(nir, birth_date, rank)))

Level 2, at the gateway, before anything is stored (:class:`Rekeyer`)::

    pseudonym = key_id ":" base64url(HMAC-SHA-256(K_gateway[key_id],
                                                  b"vigie/v1/rekey\\0" || token1 bytes))

Why two keyed levels: the NIR space (~10^11) makes any unkeyed or salted hash reversible by
brute force (DOMAIN.md §2); EDPB guidelines 01/2025 on pseudonymisation ask for keyed one-way
functions whose secrets are held apart from the data. A member holds ``K_members`` but not the
gateway's secret; a stolen gateway database holds neither. See
``docs/adr/0001-pseudonymisation-and-pki.md``.

Canonical level-1 message (every field ASCII, so no field can contain the separator ``\\0``)::

    b"vigie/v1/beneficiary\\0" || NIR (15, normalised) || b"\\0" || birth date ("YYYY-MM-DD" or "")
                               || b"\\0" || rank (decimal "1".."9" or "")

A beneficiary with their own NIR is tokenised from the NIR alone. A dependent known by the
holder's ("ouvrant droit") NIR adds their birth date and rank, as SNDS does, so that the holder,
their children and twins (same birth date, told apart by the rank) get different tokens.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from typing import Final

from gateway.crypto._errors import KeyMaterialError
from gateway.crypto._keys import KeyRing, SecretKey, as_secret_key, check_key_id
from gateway.crypto._nir import validate_nir
from gateway.errors import InvalidArgumentError
from gateway.ids import KeyId, Pseudonym, Token1

__all__ = [
    "BENEFICIARY_DOMAIN",
    "REKEY_DOMAIN",
    "TOKEN1_LENGTH",
    "Rekeyer",
    "first_level_message",
    "first_level_token",
    "parse_token1",
    "split_pseudonym",
]

BENEFICIARY_DOMAIN: Final = b"vigie/v1/beneficiary\x00"
REKEY_DOMAIN: Final = b"vigie/v1/rekey\x00"
TOKEN1_LENGTH: Final = 43  # base64url of 32 bytes, no padding
_DIGEST_BYTES: Final = 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode_canonical(text: str) -> bytes | None:
    """Decode unpadded base64url, or None if not the one canonical encoding of 32 bytes."""
    if len(text) != TOKEN1_LENGTH or not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        return None
    # Reject non-alphabet characters (urlsafe_b64decode discards them) and non-zero pad bits.
    if len(raw) != _DIGEST_BYTES or _b64url(raw) != text:
        return None
    return raw


def first_level_message(
    nir: str, *, birth_date: str | None = None, rank: int | None = None
) -> bytes:
    """Build the canonical level-1 message (exposed for vectors and other-language SDKs).

    Raises:
        InvalidArgumentError: Invalid NIR, birth date not ``YYYY-MM-DD``, rank not 1-9, or a
            rank without a birth date.
    """
    normalised = validate_nir(nir)
    date_part = b""
    if birth_date is not None:
        if not isinstance(birth_date, str) or len(birth_date) != 10 or not birth_date.isascii():
            raise InvalidArgumentError.for_field("birth_date", "format: must be YYYY-MM-DD")
        try:
            dt.date.fromisoformat(birth_date)
        except ValueError:
            raise InvalidArgumentError.for_field(
                "birth_date", "format: must be a real date YYYY-MM-DD"
            ) from None
        date_part = birth_date.encode("ascii")
    rank_part = b""
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= 9:
            raise InvalidArgumentError.for_field("rank", "range: must be an integer 1-9")
        if birth_date is None:
            raise InvalidArgumentError.for_field("rank", "requires birth_date")
        rank_part = str(rank).encode("ascii")
    return (
        BENEFICIARY_DOMAIN + normalised.encode("ascii") + b"\x00" + date_part + b"\x00" + rank_part
    )


def first_level_token(
    nir: str,
    key: bytes | SecretKey,
    *,
    birth_date: str | None = None,
    rank: int | None = None,
) -> Token1:
    """Compute a beneficiary's first-level token under the members' shared key.

    Args:
        nir: The NIR (the beneficiary's own, or the holder's for a dependent); normalised and
            validated first.
        key: The members' shared key, at least 32 bytes.
        birth_date: The dependent's birth date ``YYYY-MM-DD`` when ``nir`` is the holder's.
        rank: The dependent's rank (1-9, "rang gémellaire"); requires ``birth_date``.

    Returns:
        43-character unpadded base64url of HMAC-SHA-256 (RFC 2104, FIPS 180-4).

    Raises:
        InvalidArgumentError: Invalid NIR, birth date or rank (the value is never named).
        KeyMaterialError: The key is shorter than 32 bytes.
    """
    secret = as_secret_key(key)
    message = first_level_message(nir, birth_date=birth_date, rank=rank)
    return Token1(_b64url(hmac.digest(secret.reveal(), message, hashlib.sha256)))


def parse_token1(token1: str, *, field: str = "token1") -> bytes:
    """Check a first-level token's syntax and return its 32 bytes.

    Raises:
        InvalidArgumentError: Not the canonical 43-character base64url of 32 bytes.
    """
    raw = _b64url_decode_canonical(token1) if isinstance(token1, str) else None
    if raw is None:
        raise InvalidArgumentError.for_field(
            field, "format: must be 43 characters of unpadded base64url (32 bytes)"
        )
    return raw


def split_pseudonym(pseudonym: str) -> tuple[KeyId, str]:
    """Split a stored pseudonym into its key id and its base64url digest.

    Raises:
        KeyMaterialError: Not ``<key id>:<43 characters>``.
    """
    key_id, sep, digest = pseudonym.partition(":")
    if not sep or _b64url_decode_canonical(digest) is None:
        raise KeyMaterialError("pseudonym: must be <key id>:<43 characters of base64url>")
    return check_key_id(key_id), digest


class Rekeyer:
    """Second-level re-keying under the gateway's versioned secrets.

    Rotation (the procedure is numbered in the ADR): new writes use ``ring.current_id``; a
    lookup tries :meth:`rekey_all_versions`, one pseudonym per live key; :meth:`migrate` turns a
    stored old-key pseudonym into the current one when the member sends the token again. A
    stored pseudonym cannot be migrated without its token1: that is the point of a keyed
    one-way function.
    """

    __slots__ = ("_ring",)

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    @property
    def ring(self) -> KeyRing:
        """The key ring in use."""
        return self._ring

    @staticmethod
    def _digest(secret: SecretKey, token_bytes: bytes) -> str:
        return _b64url(hmac.digest(secret.reveal(), REKEY_DOMAIN + token_bytes, hashlib.sha256))

    def rekey(self, token1: str) -> Pseudonym:
        """Re-key a first-level token under the current gateway key.

        Raises:
            InvalidArgumentError: ``token1`` is malformed.
        """
        return self.rekey_with(token1, self._ring.current_id)

    def rekey_with(self, token1: str, key_id: str) -> Pseudonym:
        """Re-key under a given key id (current or older).

        Raises:
            InvalidArgumentError: ``token1`` is malformed.
            KeyMaterialError: ``key_id`` is not in the ring.
        """
        raw = parse_token1(token1)
        secret = self._ring.get(key_id)
        return Pseudonym(f"{key_id}:{self._digest(secret, raw)}")

    def rekey_all_versions(self, token1: str) -> tuple[Pseudonym, ...]:
        """The token's pseudonym under every live key, current first (for lookups in rotation).

        Raises:
            InvalidArgumentError: ``token1`` is malformed.
        """
        raw = parse_token1(token1)
        return tuple(
            Pseudonym(f"{kid}:{self._digest(self._ring.get(kid), raw)}") for kid in self._ring.ids()
        )

    def matches(self, token1: str, stored: str) -> bool:
        """Whether ``stored`` is ``token1``'s pseudonym under its own key id (constant-time).

        Raises:
            InvalidArgumentError: ``token1`` is malformed.
            KeyMaterialError: ``stored`` is malformed or its key id was retired.
        """
        key_id, _ = split_pseudonym(stored)
        expected = self.rekey_with(token1, key_id)
        return hmac.compare_digest(expected.encode("ascii"), stored.encode("ascii"))

    def needs_migration(self, stored: str) -> bool:
        """Whether a stored pseudonym was made under a key other than the current one.

        Raises:
            KeyMaterialError: ``stored`` is malformed.
        """
        key_id, _ = split_pseudonym(stored)
        return key_id != self._ring.current_id

    def migrate(self, token1: str, stored: str) -> Pseudonym:
        """Return the current-key pseudonym that replaces ``stored`` (same person, new key).

        Raises:
            InvalidArgumentError: ``token1`` is malformed or is not the token of ``stored``
                (field ``token1``, rule "does not match the stored pseudonym").
            KeyMaterialError: ``stored`` is malformed or its key id was retired.
        """
        if not self.matches(token1, stored):
            raise InvalidArgumentError.for_field("token1", "does not match the stored pseudonym")
        return self.rekey(token1)

    def __repr__(self) -> str:
        return f"Rekeyer({self._ring!r})"
