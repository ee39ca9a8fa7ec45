"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note, golang.org/x/mod/sumdb/note).

A note is a UTF-8 text ending in a newline, a blank line, then signature lines::

    <text, ending in \\n>
    \\n
    — <key name> base64(key ID (4 bytes, big-endian) || Ed25519 signature (64 bytes))\\n

    key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]

Verifier keys are written as in golang.org/x/mod/sumdb/note::

    <name>+<key ID as 8 hex digits>+base64(0x01 || 32-byte Ed25519 public key)

Only Ed25519 (signature type 0x01) is accepted, when loading keys and when verifying: any other
key type or algorithm byte is refused (STYLE.md: allowlist key types).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.journal._errors import JournalKeyError, NoteError

__all__ = [
    "ED25519_ALG",
    "MAX_SIGNATURES",
    "NoteVerifier",
    "key_id",
    "load_signing_key",
    "open_note",
    "parse_vkey",
    "sign_note",
    "vkey_for",
]

ED25519_ALG: Final = 0x01
MAX_SIGNATURES: Final = 100  # the spec asks for at least 16; Go's reference stops at 100
_SIG_PREFIX: Final = "\u2014 "  # em dash, space
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _b64decode_canonical(text: str) -> bytes | None:
    """Standard base64 (RFC 4648 §4), padded, in its one canonical spelling; else None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of an Ed25519 note key (c2sp.org/signed-note, "Ed25519 signatures")."""
    data = name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + _raw_public(public_key)
    return hashlib.sha256(data).digest()[:4]


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name, key ID and public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @property
    def vkey(self) -> str:
        """The key in golang.org/x/mod/sumdb/note verifier-key form."""
        return vkey_for(self.name, self.public_key)


def vkey_for(name: str, public_key: Ed25519PublicKey) -> str:
    """Encode ``<name>+<hex key ID>+<base64(0x01 || public key)>``.

    Raises:
        JournalKeyError: ``name`` is empty or contains a space or ``+``, or the key is not
            Ed25519.
    """
    if not isinstance(public_key, Ed25519PublicKey):
        raise JournalKeyError("only Ed25519 note keys are accepted")
    if not _valid_name(name):
        raise JournalKeyError("note key name must be non-empty, without spaces or '+'")
    encoded = base64.b64encode(bytes([ED25519_ALG]) + _raw_public(public_key)).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse and check a verifier key string (golang.org/x/mod/sumdb/note ``NewVerifier``).

    Raises:
        JournalKeyError: malformed, wrong key ID, or an algorithm other than Ed25519.
    """
    # 1. Split <name>+<hash>+<key>; the key's base64 may itself contain '+'.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise JournalKeyError("verifier key: expected <name>+<key id>+<key>")
    name, hash16, key64 = parts
    raw = _b64decode_canonical(key64)
    if (
        not _valid_name(name)
        or not re.fullmatch(r"[0-9a-f]{8}", hash16)
        or raw is None
        or len(raw) == 0
    ):
        raise JournalKeyError("verifier key: malformed")
    # 2. The key ID commits to name, algorithm byte and key.
    expected = hashlib.sha256(name.encode("utf-8") + b"\n" + raw).digest()[:4]
    if not hmac.compare_digest(expected, bytes.fromhex(hash16)):
        raise JournalKeyError("verifier key: key ID does not match name and key")
    # 3. Allowlist: Ed25519 only, 32-byte keys.
    if raw[0] != ED25519_ALG or len(raw) != 33:
        raise JournalKeyError("verifier key: only Ed25519 keys are accepted")
    return NoteVerifier(name, expected, Ed25519PublicKey.from_public_bytes(raw[1:]))


def load_signing_key(pem: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """Load a PKCS#8 PEM private key, refusing every type but Ed25519.

    Raises:
        JournalKeyError: unreadable key or a key type outside the allowlist.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as e:
        raise JournalKeyError("signing key: unreadable PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise JournalKeyError("signing key: only Ed25519 keys are accepted")
    return key


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Sign ``text`` as a C2SP note with one Ed25519 key named ``name``.

    Raises:
        JournalKeyError: the key is not Ed25519 or the name is invalid.
        NoteError: the text is empty, lacks its final newline or holds control characters.
    """
    if not isinstance(private_key, Ed25519PrivateKey):
        raise JournalKeyError("only Ed25519 note keys are accepted")
    if not _valid_name(name):
        raise JournalKeyError("note key name must be non-empty, without spaces or '+'")
    if not text.endswith("\n") or _CONTROL.search(text):
        raise NoteError("note text must end in a newline and hold no control characters")
    body = text.encode("utf-8")
    signature = key_id(name, private_key.public_key()) + private_key.sign(body)
    line = f"{_SIG_PREFIX}{name} {base64.b64encode(signature).decode('ascii')}\n"
    return body + b"\n" + line.encode("utf-8")


def open_note(note: bytes, verifier: NoteVerifier) -> str:
    """Verify ``note`` with the trusted ``verifier`` and return its text.

    c2sp.org/signed-note: signatures of unknown keys are ignored; a signature by the trusted
    key (same name *and* key ID) must verify; at least one must.

    Raises:
        NoteError: malformed note, bad signature by the trusted key, or none by it.
    """
    # 1. Valid UTF-8 without control characters other than newline.
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NoteError("note: not valid UTF-8") from e
    if _CONTROL.search(decoded):
        raise NoteError("note: control character")
    # 2. Text and signature block are separated by the last blank line.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("note: no signature block")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note: signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note: too many signatures")
    verified = False
    for line in lines:
        # 3. "— <name> <base64>", name valid, signature at least key ID + 1 byte.
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("note: malformed signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode_canonical(b64)
        if not _valid_name(name) or raw is None or len(raw) < 5:
            raise NoteError("note: malformed signature line")
        # 4. Unknown keys (name or key ID differ) are ignored.
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        # 5. The trusted key's signature must verify over the text.
        try:
            verifier.public_key.verify(raw[4:], text.encode("utf-8"))
        except InvalidSignature as e:
            raise NoteError(f"note: invalid signature for key {verifier.name}") from e
        verified = True
    # 6. At least one signature by the trusted key.
    if not verified:
        raise NoteError(f"note: no signature by trusted key {verifier.name}")
    return text
