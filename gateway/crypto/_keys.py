"""Secret keys and versioned key rings (pure: no I/O; files are read by ``_keyfile``).

Key size: at least 256 bits. CNIL and ANSSI ask for symmetric keys of at least 128 bits (ANSSI,
"Guide des mécanismes cryptographiques", symmetric key size rules; DOMAIN.md §2). HMAC-SHA-256
and AES-256 are keyed with 256 bits, so we ask for 32 bytes and refuse less.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Final, NoReturn

from gateway.crypto._errors import KeyMaterialError
from gateway.ids import KeyId

__all__ = ["MIN_KEY_BYTES", "KeyRing", "SecretKey", "check_key_id"]

MIN_KEY_BYTES: Final = 32
_MAX_KEY_BYTES: Final = 64
# Key ids appear in stored pseudonyms ("<key id>:...") and sealed records: no ":" or ".".
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


def check_key_id(key_id: str) -> KeyId:
    """Check a key id's syntax (1-32 of ``A-Z a-z 0-9 _ -``).

    Raises:
        KeyMaterialError: The key id is malformed.
    """
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise KeyMaterialError("key id: must be 1-32 characters of A-Z a-z 0-9 _ -")
    return KeyId(key_id)


class SecretKey:
    """Symmetric key material that never shows itself in ``repr``, ``str``, logs or pickles."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        """Wrap key material.

        Raises:
            KeyMaterialError: Not bytes, shorter than 32 bytes, or longer than 64 bytes.
        """
        if not isinstance(material, bytes):
            raise KeyMaterialError("key: must be bytes")
        if len(material) < MIN_KEY_BYTES:
            raise KeyMaterialError("key: must be at least 32 bytes (256 bits)")
        if len(material) > _MAX_KEY_BYTES:
            raise KeyMaterialError("key: must be at most 64 bytes")
        self._material = material

    def reveal(self) -> bytes:
        """Return the raw material (for the HMAC/AEAD call only; never store or log it)."""
        return self._material

    def __len__(self) -> int:
        return len(self._material)

    def __repr__(self) -> str:
        return f"SecretKey(<redacted {len(self._material)} bytes>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._material, other._material)

    __hash__ = None  # type: ignore[assignment]  # mutable-free but unhashable: never a dict key

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled")


def as_secret_key(key: bytes | SecretKey) -> SecretKey:
    """Accept raw bytes or a :class:`SecretKey`.

    Raises:
        KeyMaterialError: The key is too short or not bytes.
    """
    return key if isinstance(key, SecretKey) else SecretKey(key)


class KeyRing:
    """Versioned secrets ``KeyId -> SecretKey`` with exactly one current key for new writes.

    Older keys stay in the ring for lookups and decryption until every record made under them
    is gone or re-keyed (see ``docs/adr/0001-pseudonymisation-and-pki.md``).
    """

    __slots__ = ("_current", "_keys")

    def __init__(self, keys: Mapping[str, bytes | SecretKey], current: str) -> None:
        """Build a ring.

        Args:
            keys: Key id to material (at least 32 bytes each).
            current: The key id used for new pseudonyms and new sealed values.

        Raises:
            KeyMaterialError: Empty ring, malformed key id, short key, duplicate material,
                or ``current`` not in ``keys``.
        """
        if not keys:
            raise KeyMaterialError("key ring: must hold at least one key")
        built = {check_key_id(kid): as_secret_key(material) for kid, material in keys.items()}
        materials = [k.reveal() for k in built.values()]
        if len(set(materials)) != len(materials):
            raise KeyMaterialError("key ring: two key ids share the same material")
        current_id = check_key_id(current)
        if current_id not in built:
            raise KeyMaterialError("key ring: the current key id is not in the ring")
        self._keys: dict[KeyId, SecretKey] = built
        self._current = current_id

    @property
    def current_id(self) -> KeyId:
        """The key id used for new writes."""
        return self._current

    @property
    def current(self) -> SecretKey:
        """The key used for new writes."""
        return self._keys[self._current]

    def get(self, key_id: str) -> SecretKey:
        """Return the key of ``key_id``.

        Raises:
            KeyMaterialError: The key id is not in the ring (retired or never known).
        """
        try:
            return self._keys[KeyId(key_id)]
        except KeyError:
            raise KeyMaterialError("key ring: unknown key id") from None

    def ids(self) -> tuple[KeyId, ...]:
        """All key ids, the current one first."""
        return (self._current, *(k for k in self._keys if k != self._current))

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[KeyId]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.ids())!r}, current={self._current!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyRing cannot be pickled")
