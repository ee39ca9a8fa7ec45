"""Read and write secret key files (the only I/O of the crypto package).

Allowlisted format: one line holding the standard base64 (RFC 4648 §4, with its ``=`` padding)
of exactly 32 random bytes (44 characters), optionally followed by one newline. Nothing else is
accepted: no PEM, no raw binary, no hex (64 hex digits would decode as 48 base64 bytes, so
the exact size also catches a hex key written by mistake), no comments.

Permissions: the file must not be readable, writable or executable by group or others (mode
``0600`` or ``0400``); it is opened with ``O_NOFOLLOW`` and checked with ``fstat`` on the open
descriptor, so a swapped path cannot slip past the check.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from gateway.crypto._errors import KeyMaterialError
from gateway.crypto._keys import MIN_KEY_BYTES, KeyRing, SecretKey

__all__ = ["KEY_FILE_BYTES", "generate_key_file", "load_key_file", "load_key_ring"]

KEY_FILE_BYTES: Final = MIN_KEY_BYTES
_MAX_FILE_BYTES: Final = 256


def load_key_file(path: str | os.PathLike[str]) -> SecretKey:
    """Load a secret key from a base64 key file with owner-only permissions.

    Steps:
    1. open without following a final symlink;
    2. ``fstat`` the descriptor: regular file, no group/other permission bits, small;
    3. decode strict canonical base64 (one line) and check the size (exactly 32 bytes).

    Args:
        path: The key file.

    Returns:
        The key.

    Raises:
        KeyMaterialError: Missing or unreadable file, group/world permissions, not a regular
            file, or content not in the allowlisted format. The message names the path and the
            rule, never the content.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # step 1
    except OSError as e:
        raise KeyMaterialError(f"key file {name}: cannot open ({e.strerror})") from e
    try:
        info = os.fstat(fd)  # step 2
        if not stat.S_ISREG(info.st_mode):
            raise KeyMaterialError(f"key file {name}: not a regular file")
        if info.st_mode & 0o077:
            raise KeyMaterialError(
                f"key file {name}: readable or writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600"
            )
        if info.st_size > _MAX_FILE_BYTES:
            raise KeyMaterialError(f"key file {name}: too large for a key file")
        data = os.read(fd, _MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    text = data[:-1] if data.endswith(b"\n") else data  # step 3
    try:
        material = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"key file {name}: not one line of base64") from None
    if base64.b64encode(material) != text:
        raise KeyMaterialError(f"key file {name}: not canonical base64") from None
    if len(material) != KEY_FILE_BYTES:
        raise KeyMaterialError(f"key file {name}: must hold exactly 32 bytes (256 bits)")
    try:
        return SecretKey(material)
    except KeyMaterialError as e:
        raise KeyMaterialError(f"key file {name}: {e.message}") from None


def load_key_ring(files: Mapping[str, str | os.PathLike[str]], current: str) -> KeyRing:
    """Load a key ring from one key file per key id.

    Args:
        files: Key id to key file path.
        current: The key id for new writes.

    Returns:
        The ring.

    Raises:
        KeyMaterialError: A file fails :func:`load_key_file` or the ring is inconsistent.
    """
    return KeyRing({kid: load_key_file(p) for kid, p in files.items()}, current)


def generate_key_file(path: str | os.PathLike[str]) -> SecretKey:
    """Create a new random key file, mode 0600 from creation (never widened, never chmod-ed).

    Args:
        path: The file to create; it must not exist.

    Returns:
        The new key.

    Raises:
        KeyMaterialError: The file exists or cannot be created.
    """
    key = SecretKey(secrets.token_bytes(KEY_FILE_BYTES))
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except OSError as e:
        raise KeyMaterialError(f"key file {target}: cannot create ({e.strerror})") from e
    try:
        os.write(fd, base64.b64encode(key.reveal()) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
